"""Amounts as text: stroops (integers, 10,000,000 to a KALE or an XLM) written as decimal
units and read back, exactly: no float ever holds money.

:func:`amount_text` writes what a person reads (``1,234.5 KALE``) and what the SDK wants
(``1234.5000000``); :func:`parse_amount` reads the SDK's 7-decimal text.
"""

from __future__ import annotations

from kalepool.kale.constants import STROOPS_PER_KALE

__all__ = ["DECIMALS", "amount_text", "parse_amount"]

#: decimals of a Stellar amount (a stroop is 10^-7 of a unit)
DECIMALS = 7


def amount_text(
    stroops: int,
    *,
    unit: str = "",
    grouping: bool = True,
    min_places: int = DECIMALS,
    max_places: int = DECIMALS,
) -> str:
    """``stroops`` in units: at least ``min_places`` decimals, at most ``max_places`` (cut,
    never rounded up); thousands grouped unless ``grouping`` is false; ``unit`` after a
    space. ``amount_text(12_345_000_000, unit="KALE", min_places=2)`` is ``1,234.50 KALE``."""
    if not 0 <= min_places <= max_places <= DECIMALS:
        raise ValueError(f"places: need 0 <= {min_places} <= {max_places} <= {DECIMALS}")
    sign = "-" if stroops < 0 else ""
    whole, frac = divmod(abs(stroops), STROOPS_PER_KALE)
    digits = f"{frac:0{DECIMALS}d}"[:max_places].rstrip("0").ljust(min_places, "0")
    number = f"{sign}{whole:,}" if grouping else f"{sign}{whole}"
    text = f"{number}.{digits}" if digits else number
    return f"{text} {unit}" if unit else text


def parse_amount(text: str) -> int:
    """Stroops from a decimal amount with at most 7 decimals (``"12.5"`` is 125,000,000)."""
    whole, _, frac = text.strip().partition(".")
    if len(frac) > DECIMALS or not (whole.lstrip("-").isdigit() and (frac.isdigit() or not frac)):
        raise ValueError(f"not an amount with at most {DECIMALS} decimals: {text!r}")
    value = int(whole.lstrip("-")) * STROOPS_PER_KALE + int(frac.ljust(DECIMALS, "0") or 0)
    return -value if whole.startswith("-") else value
