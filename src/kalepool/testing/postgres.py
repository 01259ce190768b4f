"""The PostgreSQL server the test suites and benchmarks use.

:func:`test_database_url` answers ``KALEPOOL_TEST_DATABASE_URL`` when it is set, otherwise
an embedded server (:class:`kalepool.backend.db.embedded.EmbeddedPostgres`) started once
per process on a temporary directory and stopped at exit.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from kalepool.backend.db.embedded import EmbeddedPostgres, sqlalchemy_url

__all__ = ["ENV_VAR", "test_database_url"]

ENV_VAR = "KALEPOOL_TEST_DATABASE_URL"

_lock = threading.Lock()
_embedded: EmbeddedPostgres | None = None


def test_database_url() -> str:
    """The server tests use: ``$KALEPOOL_TEST_DATABASE_URL``, else a per-process embedded one.

    The answer is a SQLAlchemy URL of a maintenance database on that server, from which
    tests create (and drop) their own databases; nothing is written into it.
    """
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        return sqlalchemy_url(configured)
    global _embedded
    with _lock:
        if _embedded is None or not _embedded.running:
            parent = Path(tempfile.gettempdir())
            data_dir = Path(tempfile.mkdtemp(prefix="kalepool-pg-", dir=parent))
            _embedded = EmbeddedPostgres(data_dir, ephemeral=True).start()
        return _embedded.url
