"""``kalepool devnet``: a real process, its URL, its ledgers, a clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_devnet_command_serves_and_stops(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kalepool",
            "devnet",
            "--port",
            "0",
            "--ledger-seconds",
            "0.2",
            "--time-scale",
            "5",
            "--block-interval",
            "30",
            "--temp-ttl",
            "99",
            "--state",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("kalepool devnet listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1].strip()
        info = json.loads(proc.stdout.readline())
        assert info["rpc_url"] == url and info["block_interval"] == 30 and info["temp_ttl"] == 99
        assert info["time_scale"] == 5 and info["clock"] == "wall"
        assert httpx.get(url.rstrip("/") + "/devnet").json() == info

        def latest() -> int:
            body = {"jsonrpc": "2.0", "id": 1, "method": "getLatestLedger"}
            return int(httpx.post(url, json=body).json()["result"]["sequence"])

        start = latest()
        deadline = time.monotonic() + 10
        while latest() < start + 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the command's own ledger timer is what is under test
        assert latest() >= start + 2
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert json.loads(state.read_text())["ledgers"][-1]["sequence"] >= start + 2


def test_devnet_help_lists_the_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kalepool", "devnet", "--help"], capture_output=True, text=True, check=True
    )
    for option in ("--host", "--port", "--ledger-seconds", "--block-interval", "--temp-ttl", "--state"):
        assert option in out.stdout


def test_sub_second_ledgers_without_a_time_scale_are_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kalepool", "devnet", "--port", "0", "--ledger-seconds", "0.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "set time_scale to 2 or more" in done.stderr
