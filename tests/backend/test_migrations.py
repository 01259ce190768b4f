"""Alembic: from an empty database to head and back to base; the migration matches the models."""

from __future__ import annotations

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from kalepool.backend.db import migrate
from kalepool.backend.db.embedded import psycopg_url
from kalepool.backend.db.models import IMMUTABLE_TABLES, Base
from kalepool.backend.db.session import sync_engine

EXPECTED_TABLES = {
    "poolers",
    "farmers",
    "api_keys",
    "plantings",
    "works",
    "harvests",
    "pooler_compensations",
    "balance_changes",
    "pails",
    "block_operations",
    "payouts",
}


def _tables(url: str) -> set[str]:
    with psycopg.connect(psycopg_url(url)) as conn:
        rows = conn.execute("select tablename from pg_tables where schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def _functions(url: str) -> set[str]:
    with psycopg.connect(psycopg_url(url)) as conn:
        rows = conn.execute(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_upgrade_from_empty_then_downgrade_to_base_and_up_again(empty_database_url: str) -> None:
    url = empty_database_url
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    assert _tables(url) >= EXPECTED_TABLES
    assert "kalepool_reject_change" in _functions(url)

    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    assert _tables(url) <= {"alembic_version"}
    assert "kalepool_reject_change" not in _functions(url)

    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()


def test_the_migration_creates_exactly_the_models(database_url: str) -> None:
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_every_immutable_table_has_its_triggers(database_url: str) -> None:
    with psycopg.connect(psycopg_url(database_url)) as conn:
        rows = conn.execute(
            "select event_object_table, trigger_name from information_schema.triggers"
            " where trigger_schema = 'public'"
        ).fetchall()
        truncate = conn.execute(
            "select c.relname from pg_trigger t join pg_class c on c.oid = t.tgrelid"
            " where t.tgname like '%_no_truncate'"
        ).fetchall()
    have = {(table, name) for table, name in rows}
    for table in IMMUTABLE_TABLES:
        assert (table, f"{table}_append_only") in have
    assert {r[0] for r in truncate} == set(IMMUTABLE_TABLES)


def test_upgrade_is_idempotent(database_url: str) -> None:
    migrate.upgrade(database_url)
    assert migrate.current_revision(database_url) == migrate.head_revision()
