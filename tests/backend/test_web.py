"""The dashboard over HTTP (no browser): pages, session cookie, CSRF, CSP, sign-in limits,
and that nobody sees another user's data. Real PostgreSQL, the app in process, the fake
chain (the browser tests in ``tests/web`` run the whole pool)."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
from sqlalchemy import func, select
from stellar_sdk import Keypair

from kalepool.backend.db.models import Farmer
from kalepool.backend.web import CONTENT_SECURITY_POLICY
from kalepool.backend.web.session import COOKIE
from tests.backend.conftest import ADMIN_TOKEN, Api, make_api

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def browser(api: Api, base_url: str = "http://backend.test") -> httpx.AsyncClient:
    """A client with its own cookie jar, like one browser, on the same app."""
    return httpx.AsyncClient(transport=api.client._transport, base_url=base_url, follow_redirects=False)


async def form_post(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, Any]
) -> httpx.Response:
    """GET ``page`` (for its CSRF token), then POST ``data`` to ``action`` with it."""
    token = csrf_of(await client.get(page))
    return await client.post(action, data={"csrf": token, **data})


async def join(client: httpx.AsyncClient, pooler_id: str, stake: str = "50") -> httpx.Response:
    payout = Keypair.random().public_key
    return await form_post(
        client, "/join", "/join", {"pooler_id": pooler_id, "stake_percentage": stake, "payout_wallet": payout}
    )


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await form_post(client, "/sign-in", "/sign-in", {"token": token})


async def farmers_count(api: Api) -> int:
    async with api.context.db.transaction() as session:
        return int((await session.execute(select(func.count(Farmer.id)))).scalar_one())


async def test_pool_page_has_the_security_headers_and_a_strict_cookie(api: Api) -> None:
    await api.create_pooler()
    async with browser(api) as client:
        page = await client.get("/")
    assert page.status_code == 200
    assert "Recent blocks" in page.text and '<svg class="chart"' in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    async with browser(api, "https://pool.example") as client:
        secure = await client.get("/")
    assert "Secure" in secure.headers["set-cookie"]
    assert secure.headers["strict-transport-security"].startswith("max-age=")
    # the API keeps its own answers (no dashboard CSP, so /docs still loads its assets)
    assert "content-security-policy" not in (await api.client.get("/health")).headers


async def test_no_inline_script_or_style_in_any_page(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    async with browser(api) as client:
        pages = [await client.get(p) for p in ("/", "/join", "/sign-in")]
        pages.append(await join(client, pooler_id))
        pages.append(await client.get("/farmer"))
    for page in pages:
        assert page.status_code in (200, 201), page.text[:300]
        assert "<script>" not in page.text and " style=" not in page.text and "<style" not in page.text
        assert re.findall(r"<script [^>]*>", page.text) == ['<script src="/static/live.js" defer>']


async def test_forms_without_a_valid_csrf_token_are_refused(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    before = await farmers_count(api)
    body = {"pooler_id": pooler_id, "stake_percentage": "10", "payout_wallet": Keypair.random().public_key}
    async with browser(api) as attacker, browser(api) as victim:
        await victim.get("/join")
        missing = await victim.post("/join", data=body)
        forged = await victim.post("/join", data={**body, "csrf": "0" * 64})
        # a token valid for another browser's session is worthless with this one's cookie
        other = await victim.post("/join", data={**body, "csrf": csrf_of(await attacker.get("/join"))})
    assert [r.status_code for r in (missing, forged, other)] == [403, 403, 403]
    assert "Form expired" in missing.text
    assert await farmers_count(api) == before


async def test_joining_shows_the_token_once_the_qr_code_and_the_funding_steps(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    async with browser(api) as client:
        joined = await join(client, pooler_id, stake="25")
        assert joined.status_code == 201, joined.text[:500]
        token = re.search(r"(kp_farmer_[A-Za-z0-9_-]+)", joined.text)
        address = re.search(r'data-test="custodial-address">(G[A-Z2-7]{55})<', joined.text)
        assert token and address
        assert "Save your farmer token now" in joined.text
        assert re.search(r'<svg viewBox="[0-9 ]+" class="qr"><title>', joined.text)
        steps = re.findall(r'<span class="what">([^<]+)</span>', joined.text)
        assert [s.split(" ")[0] for s in steps] == ["Send", "Confirm", "Send", "Confirm"]
        assert "at least <strong>2.50 XLM</strong>" in joined.text  # min_xlm_balance: 25,000,000 stroops
        assert joined.headers["cache-control"] == "no-store"
        farm = await client.get("/farmer")  # signed in by the registration
    assert farm.status_code == 200
    assert address.group(1) in farm.text and "25 %" in farm.text
    assert token.group(1) not in farm.text  # shown once, on the registration answer only
    assert token.group(1) not in (farm.headers.get("set-cookie") or "")
    # the token signs in on another browser too (and only as that farmer)
    async with browser(api) as other:
        signed = await sign_in(other, token.group(1))
        assert (signed.status_code, signed.headers["location"]) == (303, "/farmer")
        assert address.group(1) in (await other.get("/farmer")).text


async def test_bad_registration_input_is_answered_on_the_form(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    before = await farmers_count(api)
    async with browser(api) as client:
        bad_wallet = await form_post(
            client,
            "/join",
            "/join",
            {"pooler_id": pooler_id, "stake_percentage": "10", "payout_wallet": "GXYZ"},
        )
        bad_stake = await form_post(
            client,
            "/join",
            "/join",
            {"pooler_id": pooler_id, "stake_percentage": "101", "payout_wallet": Keypair.random().public_key},
        )
        no_pooler = await form_post(
            client,
            "/join",
            "/join",
            {
                "pooler_id": "00000000-0000-0000-0000-000000000000",
                "stake_percentage": "1",
                "payout_wallet": Keypair.random().public_key,
            },
        )
    assert bad_wallet.status_code == 422 and 'id="payout_wallet-error"' in bad_wallet.text
    assert bad_stake.status_code == 422 and 'id="stake_percentage-error"' in bad_stake.text
    assert no_pooler.status_code == 404 and 'id="pooler_id-error"' in no_pooler.text
    assert await farmers_count(api) == before


async def test_pages_need_the_right_sign_in(api: Api) -> None:
    pooler_id, pooler_key = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    async with browser(api) as anonymous:
        for page, role in (("/farmer", "farmer"), ("/pooler", "pooler"), ("/operator", "admin")):
            answer = await anonymous.get(page)
            assert (answer.status_code, answer.headers["location"]) == (303, f"/sign-in?as={role}")
    async with browser(api) as client:
        assert (await sign_in(client, farmer["farmer_token"])).status_code == 303
        assert (await client.get("/operator")).status_code == 403
        assert (await client.get("/pooler")).status_code == 403
    async with browser(api) as client:
        assert (await sign_in(client, pooler_key)).headers["location"] == "/pooler"
        assert (await client.get("/farmer")).status_code == 403
        assert (await client.get("/operator")).status_code == 403
    async with browser(api) as client:
        wrong = await sign_in(client, "not-the-admin-token-" + secrets.token_hex(8))
        assert wrong.status_code == 401 and "not valid" in wrong.text
        assert (await client.get("/operator")).status_code == 303


async def test_a_pooler_sees_only_its_own_farmers(api: Api) -> None:
    mine, key = await api.create_pooler()
    theirs, _ = await api.create_pooler()
    own = await api.register_farmer(mine)
    other = await api.register_farmer(theirs)
    async with browser(api) as client:
        await sign_in(client, key)
        page = await client.get("/pooler")
    assert page.status_code == 200
    assert own["custodial_wallet"] in page.text
    assert other["custodial_wallet"] not in page.text and other["farmer_id"] not in page.text


async def test_a_farmer_page_shows_only_the_signed_in_farmer(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    me = await api.register_farmer(pooler_id)
    neighbour = await api.register_farmer(pooler_id)
    async with browser(api) as client:
        await sign_in(client, me["farmer_token"])
        page = await client.get("/farmer")
        # the forms act on the session's farmer only: there is no farmer id to change
        saved = await form_post(
            client,
            "/farmer",
            "/farmer/settings",
            {
                "stake_percentage": "12.5",
                "payout_wallet": me["payout_wallet"],
                "farmer_id": neighbour["farmer_id"],
            },
        )
    assert me["custodial_wallet"] in page.text and neighbour["custodial_wallet"] not in page.text
    assert saved.status_code == 303
    detail = (
        await api.client.get(
            f"/api/v1/farmers/{neighbour['farmer_id']}", headers=api.bearer(neighbour["farmer_token"])
        )
    ).json()
    assert detail["stake_percentage"] == 50
    mine = (
        await api.client.get(f"/api/v1/farmers/{me['farmer_id']}", headers=api.bearer(me["farmer_token"]))
    ).json()
    assert mine["stake_percentage"] == 12.5


async def test_the_session_cookie_is_sealed_and_tamper_proof(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    async with browser(api) as client:
        await sign_in(client, farmer["farmer_token"])
        value = client.cookies[COOKIE]
        assert farmer["farmer_token"] not in value and "kp_farmer" not in value
        tampered = value[:-6] + ("AAAAAA" if not value.endswith("AAAAAA") else "BBBBBB")
        client.cookies.set(COOKIE, tampered, domain="backend.test")
        assert (await client.get("/farmer")).status_code == 303


async def test_sign_in_attempts_are_rate_limited_per_client(db: Any, keyring: Any, chain: Any) -> None:
    limited = await make_api(db, keyring, chain, signin_rate_limit_burst=3, signin_rate_limit_per_minute=1)
    async with limited.client, browser(limited) as client:
        answers = [await sign_in(client, "wrong-" + secrets.token_hex(12)) for _ in range(4)]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        assert int(answers[-1].headers["retry-after"]) >= 1
        # even the right token waits: attempts are counted, not only failures
        assert (await sign_in(client, ADMIN_TOKEN)).status_code == 429


async def test_the_operator_registers_a_pooler_and_sees_an_unfunded_farmer(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    waiting = await api.register_farmer(pooler_id)
    name = f"web-{secrets.token_hex(3)}"
    async with browser(api) as client:
        await sign_in(client, ADMIN_TOKEN)
        page = await client.get("/operator")
        assert page.status_code == 200
        assert re.search(
            rf'data-kind="not_ready">.*?{waiting["custodial_wallet"]}.*?unfunded', page.text, re.S
        )
        created = await form_post(
            client,
            "/operator",
            "/operator/poolers",
            {"name": name, "reward_share_percent": "7.5", "max_farmers": "3"},
        )
        duplicate = await form_post(client, "/operator", "/operator/poolers", {"name": name})
    assert created.status_code == 201
    key = re.search(r'data-test="pooler-key">(kp_pooler_[A-Za-z0-9_-]+)<', created.text)
    assert key and "7.5 %" in created.text
    listed = (await api.client.get("/api/v1/poolers", headers=api.admin)).json()["poolers"]
    assert [(p["reward_share_bps"], p["max_farmers"]) for p in listed if p["name"] == name] == [(750, 3)]
    assert duplicate.status_code == 409 and "exists" in duplicate.text
    assert key.group(1) not in duplicate.text
