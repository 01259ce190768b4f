"""docs/operations.md, "Run a pool by hand on the devnet", run as written: every ``bash``
block of the section, in order, so the page cannot rot.

A block whose first line is ``# terminal N: what`` is a terminal left running (its own
process group, stopped with Ctrl-C = SIGINT at the end, which must end it with exit code
0); every other block runs to completion and must exit 0 (``bash -e``). The only change
from the page: free ports instead of 8000 (the devnet), 8080 (the backend) and 5433 (the
database), so the test runs beside others, given as the settings of those ports. The
blocks stay the page's own (20 s blocks, 1 s ledgers; the farmers' KALE comes through the
devnet's ``devnet_fund`` control).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from kalepool.demo.cluster import free_port

pytestmark = pytest.mark.slow

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SECTION = "## Run a pool by hand on the devnet"
TERMINAL = re.compile(r"# terminal (\d+): (.+)")
#: how long the pool may take to harvest two blocks for both farmers (20 s blocks)
HARVEST_DEADLINE = 300.0


def guide_blocks() -> list[str]:
    text = GUIDE.read_text()
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", body, flags=re.S)


def test_the_section_has_every_part() -> None:
    terminals = [TERMINAL.match(b.splitlines()[0]) for b in guide_blocks()]
    names = [m.group(2) for m in terminals if m]
    assert names == ["the devnet", "the database", "the backend", "the workers", "the pooler"]


def _wait(what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None, f"{what} exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what} not ready: {log.read_text()[-3000:]}"
        time.sleep(0.2)


def _answers(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


@pytest.fixture
def terminals() -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    yield running
    for _, proc in running:  # a failed test: nothing is left behind
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_the_guide_runs_a_pool_by_hand(
    tmp_path: Path, terminals: list[tuple[str, subprocess.Popen[bytes]]]
) -> None:
    devnet, database, backend = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALEPOOL_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        KALEPOOL_DEVNET__PORT=str(devnet),
        KALEPOOL_STELLAR__RPC_URLS=json.dumps([f"http://127.0.0.1:{devnet}/"]),
        KALEPOOL_BACKEND__PORT=str(backend),
        KALEPOOL_POOLER__BACKEND_URL=f"http://127.0.0.1:{backend}",
        KALEPOOL_FARMER__BACKEND_URL=f"http://127.0.0.1:{backend}",
        PYTHONUNBUFFERED="1",
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    pool = tmp_path / "pool"
    pool.mkdir()
    ready = {
        "the devnet": lambda log: _answers(f"http://127.0.0.1:{devnet}/devnet"),
        "the database": lambda log: lambda: "database ready: " in log.read_text(),
        "the backend": lambda log: _answers(f"http://127.0.0.1:{backend}/health"),
        "the workers": lambda log: lambda: True,
        "the pooler": lambda log: lambda: "pooler.started" in log.read_text(),
    }

    def run(block: str) -> str:
        done = subprocess.run(
            ["bash", "-e", "-c", block], cwd=pool, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"this block failed:\n{block}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    outputs, last = [], ""
    for block in guide_blocks():
        block = block.replace("127.0.0.1:8000", f"127.0.0.1:{devnet}").replace("5433", str(database))
        first = TERMINAL.match(block.splitlines()[0])
        if first is None:
            outputs.append(run(block))
            last = block
            continue
        name = first.group(2)
        log = logs / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", block],
                cwd=pool,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        terminals.append((name, proc))
        _wait(name, ready[name](log), proc, log)

    # the doctor found nothing wrong, the farmers were told what is missing, step by step
    assert any("ok    network: devnet" in out for out in outputs)
    assert any("missing: nothing: ready to be planted" in out for out in outputs)

    def harvested(name: str) -> list[int]:
        status = subprocess.run(
            ["kalepool", "farmer", "status", "--credentials", f"{name}.json", "--json"],
            cwd=pool,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        data = json.loads(status.stdout)
        return sorted(h["block_index"] for h in data["recent_harvests"] if h["status"] == "succeeded")

    deadline = time.monotonic() + HARVEST_DEADLINE
    while min(len(harvested("alice")), len(harvested("bob"))) < 2:
        for name, proc in terminals:
            assert proc.poll() is None, f"{name} exited early"
        assert time.monotonic() < deadline, "two blocks were not harvested in time"
        time.sleep(2)
    watched = run(last)  # the section's last block again, now: both farmers' harvests
    assert watched.count("succeeded, reward") >= 4, watched

    for name, proc in reversed(terminals):  # Ctrl-C in each terminal: each stops cleanly
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=120)
        assert code == 0, f"{name} exited with {code}: {(logs / f'{name}.log').name}"
