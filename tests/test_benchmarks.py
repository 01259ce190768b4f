"""The benchmark's hand-written C yardstick must compute real KALE hashes."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import reference_miner


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reference_miner.build(tmp_path_factory.mktemp("cref"))


def test_reference_agrees_with_pycryptodome_across_the_32_bit_boundary(binary: Path) -> None:
    reference_miner.check(binary)  # raises on any difference in best nonce or hash


def test_a_wrong_reference_is_caught(binary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The binary fed one wrong preimage bit finds another best than pycryptodome: check must notice.
    lanes = reference_miner._lane_args()
    lanes[5] = f"{int(lanes[5], 16) ^ 1:016x}"
    monkeypatch.setattr(reference_miner, "_lane_args", lambda: lanes)
    with pytest.raises(reference_miner.ReferenceError, match="disagrees"):
        reference_miner.check(binary)
