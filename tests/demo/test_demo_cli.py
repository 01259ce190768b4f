"""``kalepool demo`` as a user runs it: a child process, three blocks, one JSON object.

The demo starts its own PostgreSQL (a fresh database on the test server when
``KALEPOOL_TEST_DATABASE_URL`` is set, else an embedded one), the devnet, the backend
and a pooler (child processes), and must exit 0 with every block complete and the
journal reconciled with the chain.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from kalepool.testing.postgres import ENV_VAR

pytestmark = [pytest.mark.slow]


def test_demo_runs_three_blocks_and_reconciles() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALEPOOL_")}
    if os.environ.get(ENV_VAR):
        env["KALEPOOL_DATABASE__URL"] = os.environ[ENV_VAR]
    args = ["--farmers", "3", "--blocks", "3", "--block-interval", "12", "--ledger-seconds", "1", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "kalepool", "demo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert done.returncode == 0, (report["problems"], done.stderr[-3000:])
    assert report["ok"] and report["reconciled"] and report["differences"] == []
    assert len(report["blocks"]) == 3
    for block in report["blocks"]:
        assert block["planted"] == block["worked"] == block["harvested"] == 3
        assert 1 <= block["zeros_min"] <= block["zeros_max"] and block["reward_total"] > 0
    assert all(f["balance_journal"] == f["balance_chain"] for f in report["farmers"])
    assert report["wall_seconds"] > 0
    assert all(f["net"] == f["reward_total"] - f["fees"] for f in report["farmers"])
    progress = done.stderr  # with --json the progress goes to stderr
    assert "planted" in progress
    assert "waiting for a block to plant and mine in" in progress  # during the first block's wait
    for block in report["blocks"]:  # each harvest line names its block
        named = rf"block [0-9, ]*\b{block['index']}\b[0-9, ]*: \d+ pail\(s\) harvested"
        assert re.search(named, progress), progress

