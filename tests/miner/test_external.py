"""The external-miner adapter against a stand-in kale-miner script."""

from __future__ import annotations

import base64
import sys
import threading
import time
from pathlib import Path

import pytest

from kalepool.kale import pow as kale_pow
from kalepool.miner import ExternalMiner, ExternalMinerError, MinerError, Solution, parse_answer

from .conftest import G_NULL, V3_ENTROPY

FAKE = str(Path(__file__).with_name("fake_kale_miner.py"))


def miner(mode: str = "correct", **kwargs: object) -> ExternalMiner:
    return ExternalMiner([sys.executable, FAKE, "--mode", mode], **kwargs)  # type: ignore[arg-type]


def test_command_line_follows_kale_miner() -> None:
    m = ExternalMiner("kale-miner --gpu", batch_size=1234, extra_args=["--device", "1"])
    argv = m.argv(40000, V3_ENTROPY, G_NULL, 17, 6, 4)
    assert argv == [
        "kale-miner", "--gpu", "40000", base64.b64encode(V3_ENTROPY).decode(), "17", "6", G_NULL,
        "--max-threads", "4", "--batch-size", "1234", "--device", "1",
    ]  # fmt: skip


def test_correct_answers_climb_to_the_target() -> None:
    m = miner(max_threads=2)
    seen: list[Solution] = []
    sol = m(40000, V3_ENTROPY, G_NULL, target_zeros=3, on_improvement=seen.append)
    assert sol.zeros >= 3
    assert sol.hash == kale_pow.work_hash(40000, sol.nonce, V3_ENTROPY, G_NULL)
    assert sol.hashes_done == sol.nonce + 1  # nonces 0 .. nonce are covered
    difficulties = [int(run[-6]) for run in m.runs]  # the <difficulty> argument
    assert difficulties[0] == 1 and difficulties == sorted(difficulties)
    starts = [int(run[-7]) for run in m.runs]
    assert starts[0] == 0 and starts == sorted(starts)
    assert [s.zeros for s in seen] == sorted(s.zeros for s in seen)
    assert seen[-1].nonce == sol.nonce
    # the first nonce with >= 3 zeros from 0, like a sequential miner would find
    first = next(
        n
        for n in range(100_000)
        if kale_pow.leading_zeros(kale_pow.work_hash(40000, n, V3_ENTROPY, G_NULL)) >= 3
    )
    assert sol.nonce == first


def test_banner_lines_are_ignored() -> None:
    sol = miner("banner")(40000, V3_ENTROPY, G_NULL, target_zeros=1, start_nonce=1000)
    assert sol.zeros >= 1 and sol.nonce >= 1000


@pytest.mark.parametrize("mode,message", [
    ("wrong_hash", "hash for nonce"),
    ("wrong_nonce", "hash for nonce"),
    ("low_zeros", "below the difficulty"),
    ("garbage", "no .* JSON answer"),
    ("fail", "status 3"),
])  # fmt: skip
def test_wrong_answers_are_refused(mode: str, message: str) -> None:
    with pytest.raises(ExternalMinerError, match=message) as err:
        miner(mode)(40000, V3_ENTROPY, G_NULL, target_zeros=2)
    assert isinstance(err.value, MinerError)


def test_time_limit_returns_the_best_so_far(tmp_path: Path) -> None:
    m = miner("hang_after:2", env={"FAKE_MINER_COUNTER": str(tmp_path / "n")})
    t0 = time.monotonic()
    sol = m(40000, V3_ENTROPY, G_NULL, seconds=4.0, target_zeros=10)
    assert time.monotonic() - t0 < 4.0 + 2.0  # the hanging run was stopped
    assert len(m.runs) == 3
    assert sol.zeros >= 2  # difficulty 1, then 2, each answered and verified


def test_no_answer_in_time_is_an_error() -> None:
    t0 = time.monotonic()
    with pytest.raises(ExternalMinerError, match="no answer"):
        miner("hang")(40000, V3_ENTROPY, G_NULL, seconds=0.5)
    assert time.monotonic() - t0 < 3.0


def test_cancel_stops_the_process() -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(ExternalMinerError):
        miner("hang")(40000, V3_ENTROPY, G_NULL, cancel=cancel)
    assert time.monotonic() - t0 < 2.0


def test_max_hashes_bounds_the_climb() -> None:
    m = miner()
    sol = m(40000, V3_ENTROPY, G_NULL, max_hashes=50, target_zeros=64)
    assert sol.nonce < 50 or len(m.runs) == 1


def test_missing_program() -> None:
    with pytest.raises(ExternalMinerError, match="cannot start"):
        ExternalMiner(["/nonexistent/kale-miner"])(1, V3_ENTROPY, G_NULL, target_zeros=1)


def test_start_nonce_must_fit_kale_miner() -> None:
    with pytest.raises(ValueError):
        miner()(1, V3_ENTROPY, G_NULL, start_nonce=2**63, target_zeros=1)


def test_parse_answer() -> None:
    h = "00" * 32
    assert parse_answer('[GPU] CUDA\n{\n  "hash": "' + h + '",\n  "nonce": 42\n}\n') == (42, bytes(32))
    assert parse_answer('{"x": 1}\n{"hash": "' + h + '", "nonce": "7"}') == (7, bytes(32))
    with pytest.raises(ExternalMinerError):
        parse_answer('{"hash": "zz", "nonce": 1}')
    with pytest.raises(ExternalMinerError):
        parse_answer("nothing here")
