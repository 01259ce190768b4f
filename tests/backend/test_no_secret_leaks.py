"""A custodial secret never shows in an API response or a log line (logs captured)."""

from __future__ import annotations

import base64
import io
import logging
import os

import pytest
from sqlalchemy import select
from stellar_sdk import Keypair

from kalepool.backend.custody import Keyring, sealed_of
from kalepool.backend.db.models import Farmer
from kalepool.backend.db.session import Database
from kalepool.backend.logs import REDACTED, get_logger
from tests.backend.conftest import make_api
from tests.backend.fakes import FakeChain


async def test_secrets_never_leave_custody(
    db: Database, verbose_logs: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    master_key = os.urandom(32)
    keyring = Keyring([master_key])
    chain = FakeChain()
    api = await make_api(db, keyring, chain)
    bodies: list[str] = []
    async with api.client:
        created = await api.client.post("/api/v1/poolers", json={"name": "p"}, headers=api.admin)
        pooler_id, pooler_key = created.json()["pooler"]["pooler_id"], created.json()["api_key"]
        registrations = []
        for _ in range(2):
            body = {
                "pooler_id": pooler_id,
                "payout_wallet": Keypair.random().public_key,
                "stake_percentage": 10,
            }
            registrations.append((await api.client.post("/api/v1/farmers", json=body)).json())
        alice = registrations[0]
        chain.fund(alice["custodial_wallet"], xlm=100_000_000)
        auth = api.bearer(alice["farmer_token"])
        url = f"/api/v1/farmers/{alice['farmer_id']}"
        responses = [
            await api.client.post(url + "/confirm-funding", headers=auth),  # opens the secret to sign
            await api.client.post(url + "/confirm-funding", headers=auth),
            await api.client.get(url, headers=auth),
            await api.client.patch(url, json={"stake_percentage": 20}, headers=auth),
            await api.client.patch(url, json={"secret": "x"}, headers=auth),
            await api.client.get("/api/v1/pooler/farmers", headers=api.bearer(pooler_key)),
            await api.client.post(
                "/api/v1/pooler/heartbeat", json={"pooler_id": pooler_id}, headers=api.bearer(pooler_key)
            ),
            await api.client.get(f"/api/v1/farmers/{registrations[1]['farmer_id']}", headers=auth),
            await api.client.get("/api/v1/poolers", headers=api.admin),
            await api.client.get("/metrics"),
            await api.client.get("/openapi.json"),
        ]
        bodies += [r.text for r in responses]
        # a keyring without the key: the signer fails, and says nothing about the key
        api.context.signer.keyring = Keyring([os.urandom(32)])
        bob = registrations[1]
        chain.fund(bob["custodial_wallet"], xlm=100_000_000)
        failed = await api.client.post(
            f"/api/v1/farmers/{bob['farmer_id']}/confirm-funding", headers=api.bearer(bob["farmer_token"])
        )
        assert failed.status_code == 500 and failed.json()["error"]["code"] == "custody_error"
        bodies.append(failed.text)

    assert responses[0].status_code == 200 and responses[2].status_code == 200

    async with db.transaction() as s:
        rows = (await s.scalars(select(Farmer))).all()
    forbidden = [base64.b64encode(master_key).decode(), master_key.hex()]
    for row in rows:
        seed = keyring.open(sealed_of(row), public_key=row.public_key)
        forbidden += [Keypair.from_raw_ed25519_seed(seed).secret, seed.hex(), base64.b64encode(seed).decode()]
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    rendered = verbose_logs.getvalue()
    assert "farmer funded" in rendered and "secret_ciphertext" in rendered  # the logs were really captured
    for secret in forbidden:
        for text in (*bodies, logged, rendered):
            assert secret not in text
    # the credentials shown once are not repeated anywhere else
    for token in [pooler_key] + [r["farmer_token"] for r in registrations]:
        assert not any(token in body for body in bodies)
        assert token not in logged and token not in rendered


def test_secret_shaped_strings_are_scrubbed_from_log_lines(verbose_logs: io.StringIO) -> None:
    secret = Keypair.random().secret
    api_key = "kp_farmer_" + "Ab1_-" * 9
    get_logger("kalepool.test").warning("oops", secret=secret, nested={"k": [api_key]})
    logging.getLogger("some.library").warning("seed %s in a %s message", secret, "stdlib")
    err = verbose_logs.getvalue()
    assert secret not in err and api_key not in err
    assert err.count(REDACTED) == 3
    assert "stdlib message" in err
