"""``kalepool mine`` and ``kalepool mine bench``."""

from __future__ import annotations

import base64
import json

import pytest
from typer.testing import CliRunner

from kalepool.cli import app
from kalepool.kale import pow as kale_pow

from .conftest import G_NULL, V3_ENTROPY

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("kernel_info")


def test_mine_prints_the_best_as_json() -> None:
    b64 = base64.b64encode(V3_ENTROPY).decode()
    result = runner.invoke(
        app, ["mine", "--index", "40000", "--entropy", b64, "--farmer", G_NULL, "--target-zeros", "5"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["nonce"], data["zeros"]) == (381821, 5)
    assert data["hash"] == kale_pow.work_hash(40000, 381821, V3_ENTROPY, G_NULL).hex()
    assert data["entropy"] == b64 and data["index"] == 40000 and data["hashes_done"] >= 381822


def test_mine_accepts_hex_entropy_and_limits() -> None:
    result = runner.invoke(
        app,
        ["mine", "--index", "1", "--entropy", V3_ENTROPY.hex(), "--farmer", G_NULL,
         "--max-hashes", "5000", "--start-nonce", "100", "--threads", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["hashes_done"] == 5000 and 100 <= data["nonce"] < 5100


@pytest.mark.parametrize(
    "args",
    [
        ["mine"],
        ["mine", "--index", "1", "--entropy", "AAAA", "--farmer", G_NULL, "--seconds", "0"],
        ["mine", "--index", "1", "--entropy", V3_ENTROPY.hex(), "--farmer", "GBAD", "--seconds", "0"],
    ],
)
def test_mine_errors(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0


def test_bench_json() -> None:
    result = runner.invoke(app, ["mine", "bench", "--seconds", "0.3", "--threads", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in (
        "mhs_per_core",
        "mhs_total",
        "threads",
        "baseline_mhs_per_core",
        "ratio",
        "cpu_target",
        "jit_seconds",
    ):
        assert key in data
    assert data["threads"] == 2 and data["mhs_per_core"] > 0 and data["ratio"] > 1


def test_bench_text() -> None:
    result = runner.invoke(app, ["mine", "bench", "--seconds", "0.2", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "MH/s per core" in result.output and "ratio" in result.output
