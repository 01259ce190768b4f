"""Devnet fixtures: one in-process devnet per session, reverted to a snapshot after
every test (so each test starts from genesis), plus small helpers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kalepool.devnet.testing import DevnetHandle, running_devnet


@pytest.fixture(scope="session")
def devnet_session() -> Iterator[DevnetHandle]:
    with running_devnet(seed=7) as devnet:
        yield devnet


@pytest.fixture
def devnet(devnet_session: DevnetHandle) -> Iterator[DevnetHandle]:
    """The session devnet, as it was at genesis; everything a test does is reverted."""
    snapshot = devnet_session.snapshot()
    try:
        yield devnet_session
    finally:
        devnet_session.revert(snapshot)
