"""Assembling a backend process from the settings (what ``kalepool backend ...`` runs).

The chain is the Stellar gateway for ``[stellar]`` (the devnet by default); with
``backend.workers`` the auto-harvester and the reconciler run inside the server process.

With ``database.url`` unset, the backend runs on an embedded PostgreSQL under
``database.data_dir`` (started for the command, stopped after it) and migrates it itself;
:func:`run_database` runs that server alone, for several processes to share. With a URL,
migrations are an explicit step (``kalepool backend migrate``, or ``serve --migrate``).

The long-running commands (:func:`serve`, :func:`run_workers`, :func:`run_database`) stop
on SIGINT and SIGTERM alike, stopping what they started, and return normally.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from kalepool.backend.api import BackendContext, create_app
from kalepool.backend.chain import Chain, ChainError, UnavailableChain
from kalepool.backend.custody import Keyring
from kalepool.backend.db import migrate
from kalepool.backend.db.session import Database
from kalepool.backend.logs import configure_logging, get_logger, protect
from kalepool.lifecycle import sigterm_as_interrupt
from kalepool.settings import BackendSettings, Settings

if TYPE_CHECKING:
    from kalepool.backend.services.payouts import PayoutPlan

__all__ = [
    "DatabaseTarget",
    "database_target",
    "default_chain",
    "keyring_from",
    "payout_plan",
    "rotate_master_key",
    "run_database",
    "run_payouts",
    "run_workers",
    "serve",
    "uvicorn_options",
]

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class DatabaseTarget:
    url: str
    embedded: bool


@contextmanager
def database_target(settings: Settings) -> Iterator[DatabaseTarget]:
    """The configured database, or an embedded server on ``database.data_dir`` for the duration."""
    if settings.database.url is not None:
        yield DatabaseTarget(settings.database.url.get_secret_value(), embedded=False)
        return
    from kalepool.backend.db.embedded import EmbeddedPostgres

    data_dir = settings.database.data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with EmbeddedPostgres(data_dir, durable=True) as server:
        log.info("embedded PostgreSQL started", data_dir=str(data_dir), port=server.port)
        yield DatabaseTarget(server.url, embedded=True)


def _logging(settings: Settings) -> None:
    """Configure logging, and redact the configured secrets from every line."""
    import re

    from sqlalchemy.engine import make_url

    configure_logging(settings.log_level, json=settings.log_json)
    backend = settings.backend
    values: list[str | None] = [backend.admin_token.get_secret_value() if backend.admin_token else None]
    if backend.master_key is not None:
        values += re.split(r"[,\s]+", backend.master_key.get_secret_value())
    if settings.database.url is not None:
        with contextlib.suppress(Exception):  # an unparsable URL fails later, with its own message
            values.append(make_url(settings.database.url.get_secret_value()).password)
    protect(*values)


def keyring_from(settings: Settings) -> Keyring:
    backend = settings.backend
    key = backend.master_key.get_secret_value() if backend.master_key else None
    return Keyring.from_settings(key, backend.master_key_file)


def check_network(settings: Settings) -> None:
    """Before a process starts: the RPC must serve the network the settings name (a
    mismatch is a one-line error). One that cannot be reached yet is only logged: the
    chain learns the network on first use."""
    from kalepool.backend.stellar_chain import learn_network

    try:
        facts = learn_network(settings.stellar)
    except ChainError as exc:
        log.warning("the network cannot be read yet: it is learnt on first use", error=exc.message)
        return
    log.info("network", **facts.as_json())


def default_chain(settings: Settings) -> Chain:
    """The Stellar gateway for ``settings.stellar`` (the devnet unless configured otherwise)."""
    from kalepool.backend.stellar_chain import GatewayChain

    return GatewayChain.from_settings(settings.stellar)


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    run_migrations: bool = False,
    chain_factory: Callable[[Settings], Chain] | None = None,
) -> None:
    """Run the HTTP server until interrupted."""
    import uvicorn

    _logging(settings)
    keyring = keyring_from(settings)  # fail before starting anything if the key is missing
    if settings.backend.admin_token is None:
        log.warning("backend.admin_token is not set: the operator endpoints refuse every request")
    if chain_factory is None:
        check_network(settings)
    chain = (chain_factory or default_chain)(settings)
    if isinstance(chain, UnavailableChain):
        log.warning("no Stellar gateway configured: chain calls answer 503", reason=chain.reason)
    else:
        log.info(
            "chain", network=settings.stellar.network, rpc_urls=list(settings.stellar.profile().rpc_urls)
        )
    # uvicorn stops gracefully on either signal, then raises it again: SIGTERM becomes
    # SIGINT, whose KeyboardInterrupt unwinds the database (an embedded server is stopped)
    with sigterm_as_interrupt(), _stopped_by_signals("serve"), database_target(settings) as target:
        if run_migrations or target.embedded:
            migrate.upgrade(target.url)
        db = Database(target.url, pool_size=settings.database.pool_size)
        context = BackendContext.build(settings.backend, db=db, chain=chain, keyring=keyring)
        app = create_app(context, dispose_on_shutdown=True, run_workers=settings.backend.workers)
        uvicorn.run(
            app,
            host=host or settings.backend.host,
            port=port if port is not None else settings.backend.port,
            **uvicorn_options(settings.backend),
        )


def uvicorn_options(settings: BackendSettings) -> dict[str, Any]:
    """uvicorn's settings for the backend: our logging, no access log, and forwarded
    headers believed only from ``backend.trusted_proxies`` (uvicorn's own default believes
    127.0.0.1: a client on the same host could then pose as any address)."""
    proxies = settings.trusted_proxies
    return {
        "log_config": None,
        "access_log": False,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": ",".join(proxies) if proxies else "",
    }


@contextmanager
def _stopped_by_signals(what: str) -> Iterator[None]:
    """A SIGINT (or SIGTERM, see :func:`sigterm_as_interrupt`) is this command's normal end."""
    try:
        yield
    except KeyboardInterrupt:
        log.info(f"{what} stopped by a signal")


def run_database(settings: Settings, *, port: int | None = None, announce: Callable[[str], None]) -> None:
    """Run the embedded PostgreSQL on ``database.data_dir`` until SIGINT or SIGTERM, migrated,
    for ``serve`` and ``workers`` in other processes; ``announce`` gets its URL once ready."""
    import time

    from kalepool.backend.db.embedded import EmbeddedPostgres

    _logging(settings)
    data_dir = settings.database.data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with (
        sigterm_as_interrupt(),
        _stopped_by_signals("database"),
        EmbeddedPostgres(data_dir, port=port, durable=True) as server,
    ):
        migrate.upgrade(server.url)
        announce(server.url.replace("postgresql+psycopg://", "postgresql://"))
        while True:
            time.sleep(3600)


def rotate_master_key(settings: Settings) -> int:
    """Re-seal every custodial secret under the active master key; returns how many."""
    from kalepool.backend.services.farmers import rotate_master_key as rotate

    keyring = keyring_from(settings)

    async def run(url: str) -> int:
        db = Database(url, pool_size=2)
        try:
            return await rotate(db, keyring)
        finally:
            await db.dispose()

    with database_target(settings) as target:
        return asyncio.run(run(target.url))


@contextlib.asynccontextmanager
async def _database_and_chain(settings: Settings, url: str) -> AsyncIterator[tuple[Database, Chain]]:
    """The database at ``url`` and the configured chain, closed after the block."""
    db = Database(url, pool_size=settings.database.pool_size)
    chain = default_chain(settings)
    try:
        yield db, chain
    finally:
        close = getattr(chain, "aclose", None)
        if close is not None:
            await close()
        await db.dispose()


def _on_database(settings: Settings, run: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    """``run(url)`` on the configured database (an embedded one migrated first)."""
    with sigterm_as_interrupt(), database_target(settings) as target:
        if target.embedded:
            migrate.upgrade(target.url)
        return asyncio.run(run(target.url))


def payout_plan(settings: Settings) -> PayoutPlan:
    """What one payout run would pay now, and why: reads only (no master key needed)."""
    from kalepool.backend.services.payouts import plan_payouts

    _logging(settings)

    async def run(url: str) -> PayoutPlan:
        async with _database_and_chain(settings, url) as (db, chain):
            return await plan_payouts(db, chain, settings.backend)

    return _on_database(settings, run)


def run_payouts(settings: Settings) -> dict[str, object]:
    """One payout run (farmers, then the poolers' fees, then the platform's): what it did."""
    from dataclasses import asdict

    from kalepool.backend.custody import Signer
    from kalepool.backend.services.common import ChainOps
    from kalepool.backend.workers import Payouts

    _logging(settings)
    keyring = keyring_from(settings)

    async def run(url: str) -> dict[str, object]:
        async with _database_and_chain(settings, url) as (db, chain):
            ops = ChainOps(db=db, chain=chain, signer=Signer(keyring), settings=settings.backend)
            return asdict(await Payouts(ops).run_once())

    return _on_database(settings, run)


def run_workers(settings: Settings, *, once: bool = False) -> dict[str, object] | None:
    """The auto-harvester and the reconciler without the HTTP server (any number of such
    processes may run beside the servers). ``once``: one run of each, returning what
    they did; otherwise loop until interrupted."""
    from dataclasses import asdict

    from kalepool.backend.custody import Signer
    from kalepool.backend.metrics import Metrics
    from kalepool.backend.services.common import ChainOps
    from kalepool.backend.services.reconcile import ReconcileStatus
    from kalepool.backend.workers import AutoHarvester, Payouts, Reconciler, WorkerRunner

    _logging(settings)
    keyring = keyring_from(settings)
    check_network(settings)

    async def run(url: str) -> dict[str, object] | None:
        async with _database_and_chain(settings, url) as (db, chain):
            ops = ChainOps(
                db=db, chain=chain, signer=Signer(keyring), settings=settings.backend, metrics=Metrics()
            )
            if once:
                harvest = await AutoHarvester(ops).run_once()
                reconcile = await Reconciler(ops).run_once()
                payouts = await Payouts(ops).run_once()
                return {
                    "harvester": asdict(harvest),
                    "reconciler": asdict(reconcile),
                    "payouts": asdict(payouts),
                }
            runner = WorkerRunner(ops, ReconcileStatus())
            runner.start()
            try:
                await asyncio.Event().wait()
            finally:
                await runner.stop()
            return None

    with sigterm_as_interrupt(), _stopped_by_signals("workers"), database_target(settings) as target:
        if target.embedded:
            migrate.upgrade(target.url)
        return asyncio.run(run(target.url))
    return None
