"""Engines and sessions (psycopg 3). The app uses :class:`Database`, async; migrations sync.

Services open one :meth:`Database.transaction` per unit of work; repositories receive the
session and never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from kalepool.backend.db.account_locks import AccountLocks

__all__ = ["Database", "normalize_url", "sync_engine"]


def normalize_url(url: str) -> str:
    """A PostgreSQL URL with the psycopg 3 driver (``postgresql+psycopg://``)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"database url: not a PostgreSQL URL ({url.split('@')[-1]!r})")


def sync_engine(url: str) -> Engine:
    """A small synchronous engine (migrations, CLI)."""
    return create_engine(normalize_url(url), pool_pre_ping=True, pool_size=2, hide_parameters=True)


class Database:
    """The async engine and session factory of one backend process."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            echo=echo,
            hide_parameters=True,  # never a bound value in an error message or a log line
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        #: the per-account signing locks every process on this database shares
        self.account_locks = AccountLocks(self.url)

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def revision(self) -> str | None:
        """The Alembic revision of the database (``None``: not migrated)."""
        async with self.engine.connect() as conn:
            if (await conn.execute(text("select to_regclass('alembic_version')"))).scalar() is None:
                return None
            revision = (await conn.execute(text("select version_num from alembic_version"))).scalar()
            return None if revision is None else str(revision)

    async def dispose(self) -> None:
        await self.account_locks.aclose()
        await self.engine.dispose()
