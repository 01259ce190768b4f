"""The pool on one machine: PostgreSQL, the devnet, the backend and poolers.

:class:`Cluster` starts the parts the demo (and the end-to-end tests) need, each the
way an operator would run it:

* **PostgreSQL**: an embedded server (``kalepool.backend.db.embedded``), or a fresh database
  on the server of ``KALEPOOL_DATABASE__URL`` when that is set (dropped at the end);
* **the devnet**: in this process (a ledger timer thread, wall clock), with fast timing;
* **the backend**: ``python -m kalepool backend serve --migrate``, a child process
  configured through ``KALEPOOL_*`` environment variables (fresh master key and admin
  token; workers on: auto-harvester and reconciler);
* **poolers**: ``python -m kalepool pooler run --no-status --log-json``, one child
  process each, secrets passed in the environment (never on the command line); their
  JSON log lines are read back as progress events.

Each child writes its output under the work directory (``backend.log``,
``pooler-N.log``). Everything stops when the cluster does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from stellar_sdk import Keypair

from kalepool.devnet import DevnetConfig, DevnetServer
from kalepool.errors import KalePoolError

__all__ = ["Cluster", "ClusterError", "PoolerProcess", "free_port"]

#: The environment of every child: nothing of the caller's ``KALEPOOL_*`` leaks in.
_SCRUB_PREFIX = "KALEPOOL_"


class ClusterError(KalePoolError):
    """A part of the cluster did not start or answer in time."""

    code = "cluster_error"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes] | None, *, kill: bool) -> None:
    """End a child: SIGTERM (or SIGKILL), then SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    if kill:
        proc.kill()
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _child_env(values: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIX)}
    env.update(values)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class PoolerProcess:
    """One ``kalepool pooler run`` child and what it logged (JSON lines)."""

    index: int
    keypair: Keypair
    pooler_id: str
    api_key: str
    state_file: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def last(self, event: str) -> dict[str, Any] | None:
        for item in reversed(self.events):
            if item.get("event") == event:
                found: dict[str, Any] = item
                return found
        return None

    def count(self, event: str) -> int:
        return sum(1 for e in self.events if e.get("event") == event)


class Cluster:
    """Starts and stops the parts; see the module docstring.

    :param on_event: called with ``(pooler_index, event)`` for every JSON log line of a
        pooler (from a reader thread)
    """

    def __init__(
        self,
        *,
        block_interval: int = 30,
        ledger_seconds: float = 1.0,
        temp_ttl: int = 17_280,
        work_dir: Path | None = None,
        database_url: str | None = None,
        on_event: Callable[[int, dict[str, Any]], None] | None = None,
        backend_env: dict[str, str] | None = None,
    ) -> None:
        self.block_interval = block_interval
        self.ledger_seconds = ledger_seconds
        self.temp_ttl = temp_ttl
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="kalepool-demo-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.external_database = database_url or os.environ.get("KALEPOOL_DATABASE__URL") or None
        self.on_event = on_event
        self.extra_backend_env = dict(backend_env or {})
        self.database_url: str | None = None
        self._database_name: str | None = None
        self._postgres: Any = None
        self.devnet: DevnetServer | None = None
        self.backend: subprocess.Popen[bytes] | None = None
        self.workers: subprocess.Popen[bytes] | None = None
        self.backend_port = free_port()
        self.master_key: str | None = None
        self.admin_token = secrets.token_urlsafe(32)
        self.poolers: list[PoolerProcess] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ urls

    @property
    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.backend_port}"

    @property
    def rpc_url(self) -> str:
        assert self.devnet is not None
        return self.devnet.rpc_url

    # ------------------------------------------------------------- lifecycle

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start_database(self) -> str:
        from kalepool.backend.db.embedded import EmbeddedPostgres, create_database

        if self.external_database:
            self.database_url = create_database(self.external_database)
            self._database_name = self.database_url.rsplit("/", 1)[1].split("?")[0]
        else:
            self._postgres = EmbeddedPostgres(self.work_dir / "pgdata", ephemeral=True).start()
            self.database_url = self._postgres.url
        return self.database_url

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """The rows of one read of the pool's database (for reports and checks)."""
        import psycopg

        from kalepool.backend.db.embedded import psycopg_url

        if self.database_url is None:
            raise ClusterError("the cluster's database is not started")
        with psycopg.connect(psycopg_url(self.database_url)) as conn:
            return list(conn.execute(sql, args).fetchall())

    def start_devnet(self) -> DevnetServer:
        config = DevnetConfig(
            ledger_seconds=self.ledger_seconds,
            block_interval=self.block_interval,
            temp_ttl=self.temp_ttl,
            clock="wall",
        )
        self.devnet = DevnetServer(config, port=0, auto_close=True).start()
        return self.devnet

    def stellar_env(self) -> dict[str, str]:
        return {
            "KALEPOOL_STELLAR__NETWORK": "devnet",
            "KALEPOOL_STELLAR__RPC_URLS": json.dumps([self.rpc_url]),
            "KALEPOOL_STELLAR__POLL_INTERVAL": str(min(1.0, max(0.1, self.ledger_seconds / 4))),
            "KALEPOOL_STELLAR__REQUEST_TIMEOUT": "5",  # a local devnet answers in milliseconds
        }

    def backend_environment(self) -> dict[str, str]:
        from kalepool.backend.custody import generate_master_key

        if self.master_key is None:
            self.master_key = generate_master_key()
        assert self.database_url is not None
        env = {
            **self.stellar_env(),
            "KALEPOOL_DATABASE__URL": self.database_url,
            "KALEPOOL_BACKEND__MASTER_KEY": self.master_key,
            "KALEPOOL_BACKEND__ADMIN_TOKEN": self.admin_token,
            "KALEPOOL_BACKEND__HOST": "127.0.0.1",
            "KALEPOOL_BACKEND__PORT": str(self.backend_port),
            "KALEPOOL_BACKEND__ANONYMOUS_RATE_LIMIT_BURST": "10000",
            "KALEPOOL_BACKEND__ANONYMOUS_RATE_LIMIT_RPS": "1000",
            "KALEPOOL_BACKEND__RATE_LIMIT_BURST": "10000",
            "KALEPOOL_BACKEND__RATE_LIMIT_RPS": "1000",
            "KALEPOOL_BACKEND__HARVEST_INTERVAL": str(max(5, self.block_interval // 3)),
            "KALEPOOL_BACKEND__RECONCILE_INTERVAL": str(max(5, self.block_interval // 3)),
            # short blocks: the auto-harvester may take the block that just closed
            "KALEPOOL_BACKEND__AUTO_HARVEST_LAG_BLOCKS": "0",
            "KALEPOOL_LOG_JSON": "true",
        }
        env.update(self.extra_backend_env)
        return env

    def start_backend(self, *, timeout: float = 90.0) -> None:
        """Start ``kalepool backend serve --migrate`` and wait until ``/health`` answers."""
        if self.backend is not None and self.backend.poll() is None:
            raise ClusterError("the backend is already running")
        log = open(self.work_dir / "backend.log", "ab")  # noqa: SIM115 - the child owns it
        self.backend = subprocess.Popen(
            [sys.executable, "-m", "kalepool", "backend", "serve", "--migrate"],
            env=_child_env(self.backend_environment()),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.work_dir,
        )
        log.close()
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as http:
            while True:
                if self.backend.poll() is not None:
                    raise ClusterError(
                        f"the backend exited with {self.backend.returncode}: {self._tail('backend.log')}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{self.backend_url}/health").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"the backend did not answer in {timeout:.0f} s: {self._tail('backend.log')}"
                    )
                time.sleep(0.2)

    def stop_backend(self, *, kill: bool = False) -> None:
        _stop(self.backend, kill=kill)
        self.backend = None

    def start_workers(self, env: dict[str, str] | None = None) -> None:
        """Start ``kalepool backend workers`` (auto-harvester, reconciler, payouts) as its
        own process on the backend's database, as a deployment beside the API would."""
        if self.workers is not None and self.workers.poll() is None:
            raise ClusterError("the workers are already running")
        log = open(self.work_dir / "workers.log", "ab")  # noqa: SIM115 - the child owns it
        self.workers = subprocess.Popen(
            [sys.executable, "-m", "kalepool", "backend", "workers"],
            env=_child_env({**self.backend_environment(), **(env or {})}),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.work_dir,
        )
        log.close()

    def stop_workers(self) -> None:
        _stop(self.workers, kill=False)
        self.workers = None

    def pooler_environment(self, pooler: PoolerProcess, **settings: Any) -> dict[str, str]:
        env = {
            **self.stellar_env(),
            "KALEPOOL_POOLER__BACKEND_URL": self.backend_url,
            "KALEPOOL_POOLER__API_KEY": pooler.api_key,
            "KALEPOOL_POOLER__SECRET": pooler.keypair.secret,
            "KALEPOOL_POOLER__STATE_FILE": str(pooler.state_file),
            "KALEPOOL_POOLER__POLL_INTERVAL": str(min(5.0, max(0.5, self.ledger_seconds))),
            "KALEPOOL_POOLER__HEARTBEAT_INTERVAL": str(max(5, self.block_interval // 2)),
            "KALEPOOL_POOLER__MIN_MINE_SECONDS": str(round(self.block_interval / 3, 1)),
            "KALEPOOL_POOLER__WORK_MARGIN_SECONDS": str(max(1.0, 2 * self.ledger_seconds)),
            "KALEPOOL_LOG_LEVEL": "INFO",
        }
        env.update({f"KALEPOOL_POOLER__{k.upper()}": str(v) for k, v in settings.items()})
        return env

    def add_pooler(self, keypair: Keypair, pooler_id: str, api_key: str) -> PoolerProcess:
        index = len(self.poolers)
        pooler = PoolerProcess(
            index=index,
            keypair=keypair,
            pooler_id=pooler_id,
            api_key=api_key,
            state_file=self.work_dir / f"pooler-{index}.state.json",
            log_file=self.work_dir / f"pooler-{index}.log",
        )
        self.poolers.append(pooler)
        return pooler

    def start_pooler(self, pooler: PoolerProcess, *, blocks: int | None = None, **settings: Any) -> None:
        """Start (or restart) one pooler process; its JSON log lines become events."""
        if pooler.running:
            raise ClusterError(f"pooler {pooler.index} is already running")
        args = [sys.executable, "-m", "kalepool", "pooler", "run", "--no-status", "--log-json"]
        if blocks is not None:
            args += ["--blocks", str(blocks)]
        pooler.process = subprocess.Popen(
            args,
            env=_child_env(self.pooler_environment(pooler, **settings)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=self.work_dir,
        )
        pooler.reader = threading.Thread(
            target=self._read_pooler,
            args=(pooler, pooler.process),
            name=f"pooler-{pooler.index}-log",
            daemon=True,
        )
        pooler.reader.start()

    def _read_pooler(self, pooler: PoolerProcess, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        with open(pooler.log_file, "ab") as log:
            for raw in process.stderr:
                log.write(raw)
                log.flush()
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(event, dict):
                    continue
                with self._lock:
                    pooler.events.append(event)
                if self.on_event is not None:
                    with contextlib.suppress(Exception):
                        self.on_event(pooler.index, event)

    def stop_pooler(self, pooler: PoolerProcess, *, kill: bool = False, timeout: float = 60.0) -> int | None:
        proc = pooler.process
        if proc is None:
            return None
        if proc.poll() is None:
            if kill:
                proc.kill()
            else:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if pooler.reader is not None:
            pooler.reader.join(timeout=5)
        return proc.returncode

    def wait_pooler(self, pooler: PoolerProcess, timeout: float) -> int | None:
        """Wait for a pooler to exit by itself; its exit code, or None on timeout."""
        if pooler.process is None:
            return None
        try:
            code = pooler.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if pooler.reader is not None:
            pooler.reader.join(timeout=5)
        return code

    def stop(self) -> None:
        """Stop everything that was started (poolers, backend, devnet, database)."""
        for pooler in self.poolers:
            with contextlib.suppress(Exception):
                self.stop_pooler(pooler, timeout=20)
        with contextlib.suppress(Exception):
            self.stop_workers()
        with contextlib.suppress(Exception):
            self.stop_backend()
        if self.devnet is not None:
            with contextlib.suppress(Exception):
                self.devnet.stop()
            self.devnet = None
        if self._postgres is not None:
            with contextlib.suppress(Exception):
                self._postgres.stop()
            self._postgres = None
        if self._database_name is not None and self.external_database:
            from kalepool.backend.db.embedded import drop_database

            with contextlib.suppress(Exception):
                drop_database(self.external_database, self._database_name)
            self._database_name = None
        if self._own_dir and not os.environ.get("KALEPOOL_DEMO_KEEP"):
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # --------------------------------------------------------------- helpers

    def _tail(self, name: str, lines: int = 15) -> str:
        path = self.work_dir / name
        if not path.exists():
            return "(no output)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    @contextlib.contextmanager
    def started(self) -> Iterator[Cluster]:
        """Database, devnet and backend started; everything stopped at the end."""
        try:
            self.start_database()
            self.start_devnet()
            self.start_backend()
            yield self
        finally:
            self.stop()
