"""Amounts as text, exactly: the one formatter the SDK, the CLI, the demo and the pages use."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalepool.kale.amounts import amount_text, parse_amount


@pytest.mark.parametrize(
    ("stroops", "kwargs", "text"),
    [
        (125_000_000, {"grouping": False}, "12.5000000"),  # what the SDK wants
        (0, {"grouping": False}, "0.0000000"),
        (12_345_000_000, {"unit": "KALE"}, "1,234.5000000 KALE"),
        (-5, {"unit": "KALE"}, "-0.0000005 KALE"),
        (12_345_000_000, {"unit": "KALE", "min_places": 2}, "1,234.50 KALE"),
        (12_345_678_900, {"min_places": 4, "max_places": 4}, "1,234.5678"),  # cut, not rounded
        (25_000_000, {"unit": "XLM", "min_places": 0}, "2.5 XLM"),
        (20_000_000, {"unit": "XLM", "min_places": 0}, "2 XLM"),
    ],
)
def test_amount_text(stroops: int, kwargs: dict[str, object], text: str) -> None:
    assert amount_text(stroops, **kwargs) == text  # type: ignore[arg-type]


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_the_sdk_text_reads_back(stroops: int) -> None:
    assert parse_amount(amount_text(stroops, grouping=False)) == stroops


def test_bad_amounts_are_refused() -> None:
    for text in ("1.12345678", "abc", "1.2.3", "1e3"):
        with pytest.raises(ValueError):
            parse_amount(text)
    with pytest.raises(ValueError):
        amount_text(1, min_places=3, max_places=2)
