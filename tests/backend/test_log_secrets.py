"""No credential of a test run appears anywhere in the backend's logs, in either format.

A live server (uvicorn in a thread, its own error logging included) answers the three
kinds of callers, then is made to fail: forced 500s on an admin, a pooler and a farmer
route (one a real SQL error with a bound secret, one an exception with a 100 kB message),
then a database outage (a server whose database does not answer, password in its URL).
Everything the root logger receives is rendered by the backend's own handler, console
and JSON, and searched for every credential and key the run used.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError
from stellar_sdk import Keypair

from kalepool.backend.custody import Keyring
from kalepool.backend.logs import MAX_TEXT, REDACTED, describe, protect, redact
from kalepool.backend.services import farmers, poolers
from tests.backend.conftest import ADMIN_TOKEN
from tests.backend.fakes import FakeChain
from tests.backend.live import captured_logs, serving

SQL_SECRET = "bound-parameter-" + secrets.token_hex(16)


@pytest.fixture(params=["console", "json"])
def captured(request: pytest.FixtureRequest) -> Iterator[tuple[str, io.StringIO]]:
    with captured_logs(json=request.param == "json") as stream:
        yield request.param, stream


def _client(url: str) -> httpx.Client:
    # one connection per request: uvicorn closes the connection of a request that raised
    return httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_keepalive_connections=0))


def _forced_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    async def list_poolers(db: Any) -> Any:
        raise RuntimeError("forced failure on an operator route")

    async def pooler_farmers(db: Any, **kwargs: Any) -> Any:
        async with db.transaction() as session:  # a real database error, with a bound value
            await session.execute(text("select cast(:value as integer)"), {"value": SQL_SECRET})

    async def farmer_detail(db: Any, **kwargs: Any) -> Any:
        raise ValueError("x" * 100_000)

    monkeypatch.setattr(poolers, "list_poolers", list_poolers)
    monkeypatch.setattr(poolers, "pooler_farmers", pooler_farmers)
    monkeypatch.setattr(farmers, "farmer_detail", farmer_detail)


def test_no_credential_in_any_log_line(
    captured: tuple[str, io.StringIO], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_format, stream = captured
    master_key = os.urandom(32)
    keyring = Keyring([master_key])
    db_password = "db-password-" + secrets.token_hex(12)
    with serving(database_url, keyring, FakeChain()) as url, _client(url) as http:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        created = http.post("/api/v1/poolers", json={"name": f"p-{secrets.token_hex(4)}"}, headers=admin)
        assert created.status_code == 201, created.text
        pooler_id, pooler_key = created.json()["pooler"]["pooler_id"], created.json()["api_key"]
        registration = {"pooler_id": pooler_id, "payout_wallet": Keypair.random().public_key}
        farmer = http.post("/api/v1/farmers", json={**registration, "stake_percentage": 5}).json()
        farmer_auth = {"Authorization": f"Bearer {farmer['farmer_token']}"}
        pooler_auth = {"Authorization": f"Bearer {pooler_key}"}
        _forced_failures(monkeypatch)
        for path, headers in (
            ("/api/v1/poolers", admin),
            ("/api/v1/pooler/farmers", pooler_auth),
            (f"/api/v1/farmers/{farmer['farmer_id']}", farmer_auth),
        ):
            response = http.get(path, headers=headers)
            assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    monkeypatch.undo()

    dead = f"postgresql://kalepool:{db_password}@127.0.0.1:1/kalepool"
    with serving(dead, keyring, FakeChain()) as url, _client(url) as http:
        for path, headers in (
            ("/api/v1/poolers", admin),
            ("/api/v1/pooler/farmers", pooler_auth),
            (f"/api/v1/farmers/{farmer['farmer_id']}", farmer_auth),
            ("/health/db", {}),
        ):
            response = http.get(path, headers=headers)
            assert response.status_code == 503, response.text
            if path.startswith("/api/"):
                assert response.json()["error"]["code"] == "database_unavailable"
                assert response.headers["Retry-After"] == "5"

    logged = stream.getvalue()
    lines = logged.splitlines()
    # each forced failure was logged once, with its traceback; the outage in one line each
    if log_format == "json":
        events = [json.loads(line) for line in lines]
        failures = [e for e in events if e.get("exception")]
        assert [e["event"] for e in failures] == ["unhandled error"] * 3
        for event in failures:
            for exc in event["exception"]:
                assert exc["exc_type"] and exc["frames"]
                assert all(set(frame) == {"filename", "lineno", "name", "line"} for frame in exc["frames"])
        assert sum(e["event"] == "database unavailable" for e in events) == 3
    else:
        assert logged.count("unhandled error") == 3
        assert logged.count("database unavailable") == 3
    assert "Exception in ASGI application" not in logged
    assert "forced failure on an operator route" in logged
    assert "cast(%(value)s as integer)" in logged  # the SQL error, without its parameter
    # every line stays short, whatever the exception said
    assert max(len(line) for line in lines) < 16 * MAX_TEXT

    credentials = {
        "admin token": ADMIN_TOKEN,
        "pooler key": pooler_key,
        "farmer token": farmer["farmer_token"],
        "master key (base64)": base64.b64encode(master_key).decode(),
        "master key (hex)": master_key.hex(),
        "database password": db_password,
        "bound SQL parameter": SQL_SECRET,
    }
    leaked = {name: logged.count(value) for name, value in credentials.items() if value in logged}
    assert not leaked, f"{log_format} logs leak {leaked}"


def test_the_final_line_is_redacted_once_for_every_secret_shape() -> None:
    seed = Keypair.random().secret
    protected = "operator-" + secrets.token_urlsafe(24)
    protect(protected)
    line = json.dumps(
        {
            "seed": seed,
            "key": "kp_pooler_" + "Ab1_-" * 9,
            "header": "Authorization: Bearer some.opaque-token",
            "rpc": "https://rpc.example.net:443/v1/KEY123?apikey=abc",
            "db": "postgresql://kalepool:pw@db.internal:5432/kalepool",
            "bare": "http://127.0.0.1:8000",
            "admin": f"token {protected} was sent",
        }
    )
    cleaned = redact(line)
    assert json.loads(cleaned) == {  # still one JSON line
        "seed": REDACTED,
        "key": REDACTED,
        "header": f"Authorization: Bearer {REDACTED}",
        "rpc": f"https://rpc.example.net:443/{REDACTED}",
        "db": f"postgresql://db.internal:5432/{REDACTED}",
        "bare": "http://127.0.0.1:8000",
        "admin": f"token {REDACTED} was sent",
    }


def test_database_errors_are_logged_without_the_values_they_quote() -> None:
    statement_error = DataError(
        "select cast(%(value)s as integer)",
        {"value": "secret-value"},
        ValueError('invalid input syntax for type integer: "secret-value"'),
        hide_parameters=True,
    )
    said = describe(statement_error)
    assert "secret-value" not in said
    assert "invalid input syntax for type integer" in said and "select cast(%(value)s as integer)" in said
    assert len(describe(RuntimeError("y" * 10_000))) < MAX_TEXT + 100
