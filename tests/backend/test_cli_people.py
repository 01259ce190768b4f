"""``kalepool keys / admin / farmer / doctor`` against a backend served over real HTTP
(uvicorn in a thread, PostgreSQL, the in-memory chain): no curl, no token by hand."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from stellar_sdk import Keypair
from typer.testing import CliRunner

from kalepool.backend.api import BackendContext, create_app
from kalepool.backend.custody import Keyring
from kalepool.backend.db.session import Database
from kalepool.cli import app
from kalepool.demo.cluster import free_port
from tests.backend.conftest import ADMIN_TOKEN, backend_settings
from tests.backend.fakes import FakeChain

KALE = 10_000_000


@pytest.fixture
def live(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FakeChain]]:
    """The backend app served on a free port from its own thread and event loop."""
    for key in list(os.environ):
        if key.startswith("KALEPOOL_") and key != "KALEPOOL_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    chain, port, servers = FakeChain(), free_port(), []

    async def serve() -> None:
        db = Database(database_url, pool_size=4)
        context = BackendContext.build(backend_settings(), db=db, chain=chain, keyring=Keyring([bytes(32)]))
        server = uvicorn.Server(
            uvicorn.Config(create_app(context), host="127.0.0.1", port=port, log_config=None)
        )
        servers.append(server)
        try:
            await server.serve()
        finally:
            await db.dispose()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the backend did not start"
        time.sleep(0.05)
    monkeypatch.setenv("KALEPOOL_BACKEND__PORT", str(port))
    monkeypatch.setenv("KALEPOOL_FARMER__BACKEND_URL", url)
    try:
        yield url, chain
    finally:
        servers[0].should_exit = True
        thread.join(timeout=30)


def run(*args: str, code: int = 0) -> str:
    """What the command printed on stdout; for a failure, its ``error:`` line."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    if code == 0:
        return result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_keys_new_writes_a_private_secret_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "pooler.secret"
    public = run("keys", "new", str(path)).strip()
    assert Keypair.from_secret(path.read_text().strip()).public_key == public
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    refused = run("keys", "new", str(path), code=2)
    assert refused.strip() == f"error: {path} exists: a secret file is never overwritten"


def test_the_operator_and_a_farmer_through_the_cli(
    live: tuple[str, FakeChain], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, chain = live
    assert run("admin", "poolers", "list", code=2).startswith("error: the admin token is missing")
    monkeypatch.setenv("KALEPOOL_BACKEND__ADMIN_TOKEN", ADMIN_TOKEN)
    secret = tmp_path / "pooler.secret"
    pooler_account = run("keys", "new", str(secret)).strip()
    key_file = tmp_path / "pooler.key"
    added = run(
        "admin",
        "poolers",
        "add",
        "--name",
        "rig-1",
        "--secret-file",
        str(secret),
        "--api-key-file",
        str(key_file),
    )
    assert pooler_account in added and f"written to {key_file}" in added
    assert key_file.read_text().startswith("kp_pooler_") and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    (pooler,) = json.loads(run("admin", "poolers", "list", "--json"))
    assert pooler["name"] == "rig-1" and pooler["public_key"] == pooler_account
    assert run("admin", "poolers", "id", "rig-1").strip() == pooler["pooler_id"]
    assert run("admin", "poolers", "id", "nope", code=2).strip() == "error: no pooler is called 'nope'"

    creds = tmp_path / "farmer.json"
    payout = Keypair.random().public_key
    registered = run(
        "farmer",
        "register",
        "--pooler-id",
        pooler["pooler_id"],
        "--payout-wallet",
        payout,
        "--stake",
        "50",
        "--save",
        str(creds),
    )
    saved = json.loads(creds.read_text())
    assert saved["token"].startswith("kp_farmer_") and saved["token"] not in registered
    assert "[ ] 1. Send XLM" in registered and "(2.5 XLM at least)" in registered
    assert "missing" not in registered  # not read from the chain at registration

    status = run("farmer", "status", "--credentials", str(creds))
    assert "missing: xlm, trustline, kale" in status
    assert run("farmer", "confirm", "--credentials", str(creds), code=2).startswith(
        "error: POST /farmers/" + saved["farmer_id"] + "/confirm-funding: 409 account_not_found"
    )
    wallet = json.loads(run("farmer", "status", "--credentials", str(creds), "--json"))["custodial_wallet"]
    assert run("farmer", "wallet", "--credentials", str(creds)).strip() == wallet
    chain.fund(wallet, xlm=30 * 10_000_000)
    confirmed = run("farmer", "confirm", "--credentials", str(creds))
    assert "funding ready; KALE trustline added" in confirmed and "missing: kale" in confirmed
    chain.ledger[wallet] = replace(chain.ledger[wallet], kale_balance=250 * KALE)
    again = run("farmer", "confirm", "--credentials", str(creds))
    assert "deposits recorded now: 250 KALE" in again and "missing: nothing" in again
    assert "journal: 250 KALE" in run("farmer", "status", "--credentials", str(creds))

    monkeypatch.setenv("KALEPOOL_FARMER__FARMER_ID", saved["farmer_id"])
    monkeypatch.setenv("KALEPOOL_FARMER__TOKEN", saved["token"])  # the environment instead of the file
    assert "stake 12.5 %" in run("farmer", "update", "--stake", "12.5")
    assert run("farmer", "update", code=2).startswith("error: nothing to change")
    assert "leaving" in run("farmer", "leave")


def test_farmer_commands_without_credentials_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("KALEPOOL_FARMER__"):
            monkeypatch.delenv(key)
    (line,) = run("farmer", "status", code=2).splitlines()
    assert line.startswith("error: no farmer credentials")


def test_doctor_says_what_is_wrong_one_line_each(
    live: tuple[str, FakeChain], database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALEPOOL_DATABASE__URL", database_url)
    monkeypatch.setenv("KALEPOOL_STELLAR__RPC_URLS", f'["http://127.0.0.1:{free_port()}/"]')
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1, result.output
    lines = dict(line.split(":", 1)[0].split(None, 1)[::-1] for line in result.stdout.splitlines())
    expected: dict[str, Any] = {
        "settings": "ok",
        "database": "ok",
        "master key": "FAIL",
        "network": "FAIL",
        "pool accounts": "skip",
        "pooler account": "skip",
        "platform wallet": "skip",
    }
    assert lines == expected, result.output
