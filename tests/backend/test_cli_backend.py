"""``kalepool backend ...`` commands against a real database."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest
from typer.testing import CliRunner

from kalepool.backend.custody import Keyring, sealed_of
from kalepool.backend.db import migrate
from kalepool.backend.db.session import Database
from kalepool.cli import app
from kalepool.devnet.testing import DevnetHandle
from tests.backend import factories

runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("KALEPOOL_") and key != "KALEPOOL_TEST_DATABASE_URL":
            monkeypatch.delenv(key)


def test_migrate_and_downgrade(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALEPOOL_DATABASE__URL", empty_database_url)
    result = runner.invoke(app, ["backend", "migrate"])
    assert result.exit_code == 0, result.output
    assert migrate.head_revision() in result.output
    assert migrate.current_revision(empty_database_url) == migrate.head_revision()

    refused = runner.invoke(app, ["backend", "downgrade"])
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert migrate.current_revision(empty_database_url) == migrate.head_revision()

    result = runner.invoke(app, ["backend", "downgrade", "--yes"])
    assert result.exit_code == 0, result.output
    assert migrate.current_revision(empty_database_url) is None


def test_generate_master_key() -> None:
    result = runner.invoke(app, ["backend", "generate-master-key"])
    assert result.exit_code == 0
    assert len(base64.b64decode(result.output.strip())) == 32


def test_rotate_master_key(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    database_url = fresh_database_url
    old_key, new_key = os.urandom(32), os.urandom(32)

    async def seed() -> list[str]:
        db = Database(database_url, pool_size=1)
        async with db.transaction() as s:
            p = await factories.pooler(s)
            farmers = [await factories.farmer(s, p.id, Keyring([old_key])) for _ in range(3)]
        await db.dispose()
        return [f.public_key for f in farmers]

    asyncio.run(seed())
    spec = ",".join(base64.b64encode(k).decode() for k in (new_key, old_key))
    monkeypatch.setenv("KALEPOOL_DATABASE__URL", database_url)
    monkeypatch.setenv("KALEPOOL_BACKEND__MASTER_KEY", spec)
    result = runner.invoke(app, ["backend", "rotate-master-key"])
    assert result.exit_code == 0, result.output
    assert "re-sealed 3" in result.output

    async def check() -> set[str]:
        from sqlalchemy import select

        from kalepool.backend.db.models import Farmer

        db = Database(database_url, pool_size=1)
        async with db.transaction() as s:
            rows = (await s.scalars(select(Farmer))).all()
        await db.dispose()
        only_new = Keyring([new_key])
        for row in rows:
            only_new.open(sealed_of(row), public_key=row.public_key)
        return {row.secret_key_id for row in rows}

    assert asyncio.run(check()) == {Keyring([new_key]).active_key_id}


def test_serve_without_a_master_key_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALEPOOL_DATABASE__URL", "postgresql://nobody@127.0.0.1:1/none")
    result = runner.invoke(app, ["backend", "serve"])
    assert result.exit_code != 0
    assert "master key" in str(result.exception) or "master key" in result.output


def test_workers_once_against_the_devnet(
    fresh_database_url: str, devnet: DevnetHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALEPOOL_DATABASE__URL", fresh_database_url)
    monkeypatch.setenv("KALEPOOL_BACKEND__MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("KALEPOOL_STELLAR__RPC_URLS", json.dumps([devnet.rpc_url]))
    result = runner.invoke(app, ["backend", "workers", "--once"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["harvester"]["farm_index"] == 0 and report["harvester"]["error"] is None
    assert report["reconciler"]["checked"] == 0 and report["reconciler"]["mismatches"] == []
    payouts = report["payouts"]  # nobody to pay in an empty pool; no platform wallet set
    assert (payouts["considered"], payouts["paid"], payouts["errors"]) == (0, 0, 0)
    assert payouts["poolers"]["paid"] == 0 and payouts["platform"]["considered"] == 1


def test_payouts_dry_run_and_one_run_against_the_devnet(
    fresh_database_url: str, devnet: DevnetHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALEPOOL_DATABASE__URL", fresh_database_url)
    monkeypatch.setenv("KALEPOOL_STELLAR__RPC_URLS", json.dumps([devnet.rpc_url]))
    migrate.upgrade(fresh_database_url)
    planned = runner.invoke(app, ["backend", "payouts", "--dry-run"])  # reads only: no master key needed
    assert planned.exit_code == 0, planned.output
    lines = planned.output.strip().splitlines()  # an empty pool: only the platform, with no wallet set
    assert lines[0].split()[:2] == ["platform", "wait"] and "no_destination" in lines[0]
    assert lines[-1] == "would pay 0.0000000 KALE (1 wait); nothing was signed or written"
    as_json = runner.invoke(app, ["backend", "payouts", "--dry-run", "--json"])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["paid"] == 0 and report["actions"] == {"wait": 1}
    assert [(s["payee"], s["code"]) for s in report["steps"]] == [("platform", "no_destination")]

    refused = runner.invoke(app, ["backend", "payouts"])  # a real run signs: the master key first
    assert refused.exit_code == 2 and "master key" in refused.output
    monkeypatch.setenv("KALEPOOL_BACKEND__MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    ran = runner.invoke(app, ["backend", "payouts"])
    assert ran.exit_code == 0, ran.output
    done = json.loads(ran.output[ran.output.index("{") :])
    assert (done["considered"], done["paid"], done["errors"]) == (0, 0, 0)
    assert done["platform"]["considered"] == 1 and done["poolers"]["considered"] == 0
