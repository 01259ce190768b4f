"""Shared fixtures. PostgreSQL: ``$KALEPOOL_TEST_DATABASE_URL``, else an embedded server.

``postgres_url`` is the server (a maintenance database tests never write to);
``empty_database_url`` is a fresh, empty database per test, dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kalepool.backend.db.embedded import create_database, drop_database
from kalepool.testing.postgres import test_database_url
from kalepool.wire.parse import STRICT_ENV

# an answer with a field the wire contract does not know fails the test (and the processes it starts)
os.environ.setdefault(STRICT_ENV, "1")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return test_database_url()


@pytest.fixture
def empty_database_url(postgres_url: str) -> Iterator[str]:
    url = create_database(postgres_url)
    yield url
    drop_database(postgres_url, url.rsplit("/", 1)[1].split("?")[0])
