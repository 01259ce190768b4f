"""Assembling a backend process from the settings (what ``kalepool backend ...`` runs).

With ``database.url`` unset, the backend runs on an embedded PostgreSQL under
``database.data_dir`` (started for the command, stopped after it) and migrates it itself.
With a URL, migrations are an explicit step (``kalepool backend migrate``, or ``serve
--migrate``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kalepool.backend.api import BackendContext, create_app
from kalepool.backend.chain import Chain, UnavailableChain
from kalepool.backend.custody import Keyring
from kalepool.backend.db import migrate
from kalepool.backend.db.session import Database
from kalepool.backend.logs import configure_logging, get_logger
from kalepool.settings import Settings

__all__ = ["DatabaseTarget", "database_target", "keyring_from", "rotate_master_key", "serve"]

log = get_logger(__name__)


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
    from kalepool.testing.postgres import EmbeddedPostgres

    data_dir = settings.database.data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with EmbeddedPostgres(data_dir, durable=True) as server:
        log.info("embedded PostgreSQL started", data_dir=str(data_dir), port=server.port)
        yield DatabaseTarget(server.url, embedded=True)


def keyring_from(settings: Settings) -> Keyring:
    backend = settings.backend
    key = backend.master_key.get_secret_value() if backend.master_key else None
    return Keyring.from_settings(key, backend.master_key_file)


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

    configure_logging(settings.log_level, json=settings.log_json)
    keyring = keyring_from(settings)  # fail before starting anything if the key is missing
    if settings.backend.admin_token is None:
        log.warning("backend.admin_token is not set: the operator endpoints refuse every request")
    chain = chain_factory(settings) if chain_factory else UnavailableChain()
    if isinstance(chain, UnavailableChain):
        log.warning("no Stellar gateway configured: chain calls answer 503", reason=chain.reason)
    with database_target(settings) as target:
        if run_migrations or target.embedded:
            migrate.upgrade(target.url)
        db = Database(target.url, pool_size=settings.database.pool_size)
        context = BackendContext.build(settings.backend, db=db, chain=chain, keyring=keyring)
        app = create_app(context, dispose_on_shutdown=True)
        uvicorn.run(
            app,
            host=host or settings.backend.host,
            port=port if port is not None else settings.backend.port,
            log_config=None,
            access_log=False,
        )


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
