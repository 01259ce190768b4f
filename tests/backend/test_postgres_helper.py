"""The embedded server (``kalepool.backend.db.embedded``), throw-away databases, and the
tests' server (``kalepool.testing.postgres``: the env override)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from kalepool.backend.db import embedded as postgres
from kalepool.testing import postgres as test_server


def test_the_environment_names_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(test_server.ENV_VAR, "postgresql://u:p@db.example:5433/postgres")
    assert test_server.test_database_url() == "postgresql+psycopg://u:p@db.example:5433/postgres"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://h/db", "postgresql+psycopg://h/db"),
        ("postgresql+psycopg://h/db?sslmode=off", "postgresql+psycopg://h/db?sslmode=off"),
    ],
)
def test_urls(url: str, expected: str) -> None:
    assert postgres.sqlalchemy_url(url) == expected
    assert postgres.psycopg_url(url) == expected.replace("+psycopg", "")
    assert postgres.with_database(url, "other") == expected.replace("/db", "/other")
    with pytest.raises(ValueError):
        postgres.sqlalchemy_url("mysql://h/db")


def test_create_and_drop_databases(postgres_url: str) -> None:
    url = postgres.create_database(postgres_url)
    copy = postgres.create_database(postgres_url, template=url.rsplit("/", 1)[1])
    with psycopg.connect(postgres.psycopg_url(copy)) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    for made in (copy, url):
        postgres.drop_database(postgres_url, made.rsplit("/", 1)[1])
    postgres.drop_database(postgres_url, "kalepool_never_existed")


@pytest.mark.slow
def test_embedded_server_starts_stops_and_restarts_on_its_data(tmp_path: Path) -> None:
    """Also as root: the binaries then run as the unprivileged ``embedded_postgres`` user."""
    data_dir = tmp_path / "pgdata"
    server = postgres.EmbeddedPostgres(data_dir)
    with pytest.raises(postgres.EmbeddedPostgresError):
        _ = server.url  # not running yet
    with server:
        with psycopg.connect(postgres.psycopg_url(server.url), autocommit=True) as conn:
            conn.execute("create table kept (x int)")
            conn.execute("insert into kept values (42)")
            assert conn.execute("select inet_server_addr()::text").fetchone() == ("127.0.0.1/32",)
        assert "running" in repr(server)
    assert not server.running and (data_dir / "PG_VERSION").exists()
    with (
        postgres.EmbeddedPostgres(data_dir) as again,
        psycopg.connect(postgres.psycopg_url(again.url)) as conn,
    ):
        assert conn.execute("select x from kept").fetchone() == (42,)
    ephemeral = postgres.EmbeddedPostgres(data_dir, ephemeral=True).start()
    ephemeral.stop()
    ephemeral.stop()  # idempotent
    assert not data_dir.exists()


def test_missing_parent_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(postgres.EmbeddedPostgresError, match="parent"):
        postgres.EmbeddedPostgres(tmp_path / "absent" / "pgdata").start()


def test_the_system_user_is_created_by_one_caller_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two suite workers starting their first server at once each ran ``useradd``; one
    chowned its data directory to a uid the other's then replaced. Creation is serialised
    (a file lock), so every caller sees the one user made. The stand-in ``useradd`` below
    checks and creates in two steps, as the real one is not atomic with that check."""
    import threading
    import time
    from types import SimpleNamespace

    users: dict[str, SimpleNamespace] = {}
    inside = []

    def ensure_user_exists(name: str) -> SimpleNamespace:
        inside.append(1)
        concurrent = len(inside)
        try:
            if name not in users:
                time.sleep(0.02)  # the window between the check and the write
                uid = 2000 + len(users) + concurrent
                users[name] = SimpleNamespace(pw_uid=uid, pw_gid=uid)
            return users[name]
        finally:
            inside.pop()

    monkeypatch.setattr(postgres._embedded_package().utils, "ensure_user_exists", ensure_user_exists)
    postgres._system_user.cache_clear()  # the answer is kept per process: start without one
    seen: list[tuple[int, int]] = []
    threads = [
        threading.Thread(target=lambda: seen.append(postgres._system_user("kalepool_test_user")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and set(seen) == {(users["kalepool_test_user"].pw_uid,) * 2}
