"""``kalepool demo --serve``: after its report the pool keeps running, the dashboard
answers on the printed address and the printed tokens sign in; SIGTERM stops it all."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from kalepool.testing.postgres import ENV_VAR

pytestmark = [pytest.mark.slow]

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux ``/proc``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_demo_serve_keeps_the_pool_and_its_dashboard_until_stopped() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALEPOOL_")}
    if os.environ.get(ENV_VAR):
        env["KALEPOOL_DATABASE__URL"] = os.environ[ENV_VAR]
    args = ["--farmers", "2", "--blocks", "1", "--block-interval", "12", "--threads", "1"]
    args += ["--json", "--serve"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kalepool", "demo", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(300, proc.kill)
    watchdog.start()
    try:
        lines: list[str] = []
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("serving until interrupted"):
                break
        printed = "\n".join(lines)
        dashboard = re.search(r"^dashboard: (http://127\.0\.0\.1:\d+/)$", printed, re.M)
        tokens = re.findall(r"^farmer \d+ \(token, stake [0-9.]+ %\): (kp_farmer_\S+)$", printed, re.M)
        assert dashboard and len(tokens) == 2, printed[-3000:]
        assert re.search(r"^operator \(admin token\): \S{24,}$", printed, re.M)
        assert re.search(r"^pooler 1 \(API key\): kp_pooler_\S+$", printed, re.M)
        with httpx.Client(base_url=dashboard.group(1), timeout=30) as browser:
            pool = browser.get("/")
            assert pool.status_code == 200 and 'data-block="1"' in pool.text
            csrf = CSRF.search(browser.get("/sign-in").text)
            assert csrf
            signed = browser.post("/sign-in", data={"csrf": csrf.group(1), "token": tokens[0]})
            assert (signed.status_code, signed.headers["location"]) == (303, "/farmer")
            farm = browser.get("/farmer")
            assert farm.status_code == 200 and "harvested" in farm.text
        children = children_of(proc.pid)
        assert len(children) >= 2  # the backend and the pooler, still running
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    report = json.loads(out)  # the report came first, on stdout
    assert report["ok"] and len(report["blocks"]) == 1
