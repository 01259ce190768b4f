"""A backend on the embedded PostgreSQL stops cleanly on SIGTERM and SIGINT (exit 0, the
server stopped), recovers a server a crash left running, and explains one in use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kalepool.backend.custody import generate_master_key
from kalepool.backend.db.embedded import OWNER_FILE
from kalepool.demo.cluster import free_port

pytestmark = pytest.mark.slow


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALEPOOL_")}
    env.update(
        KALEPOOL_DATABASE__DATA_DIR=str(data_dir),
        KALEPOOL_BACKEND__PORT=str(port),
        KALEPOOL_BACKEND__MASTER_KEY=generate_master_key(),
        KALEPOOL_BACKEND__WORKERS="false",
        KALEPOOL_STELLAR__RPC_URLS=f'["http://127.0.0.1:{free_port()}/"]',  # no chain needed here
    )
    return env


def _postgres_alive(data_dir: Path) -> bool:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def _serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kalepool", "backend", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{env['KALEPOOL_BACKEND__PORT']}/health"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the backend did not start: {log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes], sig: int) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_backend_and_its_postgres(tmp_path: Path, sig: int) -> None:
    """SIGTERM exited 143 and left the embedded PostgreSQL running."""
    data_dir, log = tmp_path / "pgdata", tmp_path / "serve.log"
    proc = _serve(_env(data_dir, free_port()), log)
    assert _postgres_alive(data_dir)
    assert _stop(proc, sig) == 0, log.read_text()[-3000:]
    assert not _postgres_alive(data_dir)
    assert not (data_dir / OWNER_FILE).exists()
    assert "Traceback" not in log.read_text()


def test_a_server_left_by_a_crash_is_stopped_and_one_in_use_explained(tmp_path: Path) -> None:
    """After a crash the next start failed with a 70-line traceback (another server might
    be running)."""
    data_dir, log = tmp_path / "pgdata", tmp_path / "serve.log"
    env = _env(data_dir, free_port())
    crashed = _serve(env, log)
    crashed.kill()  # SIGKILL: nothing is cleaned up
    crashed.wait(timeout=30)
    assert _postgres_alive(data_dir)

    # in use by a live process: one line, nothing stopped
    database = subprocess.Popen(
        [sys.executable, "-m", "kalepool", "backend", "database"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = database.stdout.readline() if database.stdout else ""  # the crash's server: stopped
        assert line.startswith("database ready: postgresql://postgres@127.0.0.1:"), database.stderr
        refused = subprocess.run(
            [sys.executable, "-m", "kalepool", "backend", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 1
        (message,) = refused.stderr.strip().splitlines()[-1:]
        assert message.startswith(f"error: the embedded PostgreSQL on {data_dir} is in use by process")
        assert f"process {database.pid}" in message
        assert _postgres_alive(data_dir)
    finally:
        assert _stop(database, signal.SIGTERM) == 0
    assert not _postgres_alive(data_dir)
    proc = _serve(env, log)  # and the data survived all of it
    assert _stop(proc, signal.SIGTERM) == 0
