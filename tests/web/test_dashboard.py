"""The dashboard in a real browser (Chromium), against a real pool: PostgreSQL, the
devnet, ``kalepool backend serve`` and ``kalepool pooler run`` as processes.

A farmer registers through the form, sees its token once, the QR code and the funding
steps, funds its account on the devnet, watches its page (refreshing by itself) show a
block planted, worked and harvested and the statement line appear, changes its stake and
leaves; the operator registers the pooler and sees the unfunded farmer's alert; the
pooler signs in and sees its farmers. Forms without a valid CSRF token, cross-site posts
and cross-user requests are refused. Every page is saved as a screenshot (desktop and
375 px wide).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time

import httpx
import pytest
from playwright.async_api import Page, expect
from stellar_sdk import Keypair

from kalepool.backend.web.format import kale
from kalepool.demo import Cluster, Pool
from kalepool.demo.runner import _friendbot
from kalepool.devnet import issuer_keypair
from kalepool.pool_api import PoolApi, RegisteredFarmer
from kalepool.settings import StellarSettings
from kalepool.stellar import FarmGateway, Payment
from tests.e2e.helpers import close_and_harvest, rows

from .conftest import PHONE, NewContext, Shots

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

KALE = 10_000_000


async def friendbot(cluster: Cluster, address: str) -> None:
    assert cluster.devnet is not None
    async with httpx.AsyncClient(timeout=60) as http:
        await _friendbot(http, cluster.devnet.friendbot_url, address)


async def sign_in(page: Page, token: str, lands_on: str) -> None:
    await page.goto("/sign-in")
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(re.escape(lands_on) + "$"))


async def pail_states(page: Page, index: int, until: str, timeout: float) -> list[str]:
    """The states the statement line of block ``index`` shows, in order, as the page
    refreshes itself (no reload), until it shows ``until``."""
    cell = page.locator(f'[data-test=statement] tr[data-block="{index}"] [data-test=pail-state]')
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = (await cell.text_content(timeout=5_000) or "").strip()
        if not seen or seen[-1] != text:
            seen.append(text)
        if text == until:
            return seen
        await asyncio.sleep(0.25)
    raise AssertionError(f"block {index} never showed {until!r}: {seen}")


async def test_farmer_pooler_and_operator_in_the_browser(
    web_cluster: Cluster, new_context: NewContext, shots: Shots
) -> None:
    cluster = web_cluster
    started = time.monotonic()
    pooler_keys, payout = Keypair.random(), Keypair.random()
    await asyncio.gather(friendbot(cluster, pooler_keys.public_key), friendbot(cluster, payout.public_key))
    name = f"web-pooler-{secrets.token_hex(2)}"

    # the operator registers the pooler; its API key is shown once
    operator = await (await new_context()).new_page()
    await sign_in(operator, cluster.admin_token, "/operator")
    await operator.get_by_label("Name").fill(name)
    await operator.get_by_label("Its Stellar account").fill(pooler_keys.public_key)
    await operator.get_by_label("Share of its farmers' rewards").fill("10")
    await operator.get_by_role("button", name="Register pooler").click()
    api_key = await operator.locator("[data-test=pooler-key]").input_value()
    assert api_key.startswith("kp_pooler_")
    [(pooler_id,)] = rows(cluster, "select id::text from poolers where name = %s", name)
    await operator.reload()  # a reload re-sends nothing and shows no key again
    assert api_key not in await operator.content()

    # a farmer joins through the form: token once, custodial address, QR code, steps
    farmer = await (await new_context()).new_page()
    await farmer.goto("/")
    await farmer.get_by_role("link", name="Become a farmer", exact=True).click()
    await farmer.get_by_label("Pooler").select_option(pooler_id)
    await farmer.get_by_label("Stake per block").fill("50")
    await farmer.get_by_label("Payout wallet").fill(payout.public_key)
    await farmer.get_by_role("button", name="Register").click()
    await expect(farmer.get_by_role("heading", name="Save your farmer token now")).to_be_visible()
    token = await farmer.locator("[data-test=farmer-token]").input_value()
    address = (await farmer.locator("[data-test=custodial-address]").text_content() or "").strip()
    assert token.startswith("kp_farmer_") and re.fullmatch(r"G[A-Z2-7]{55}", address)
    qr = farmer.locator("svg.qr")
    await expect(qr).to_be_visible()
    assert (await qr.bounding_box() or {"width": 0})["width"] >= 150
    steps = farmer.locator("[data-test=funding-steps] li")
    await expect(steps).to_have_count(4)
    await expect(steps.nth(0)).to_contain_text("at least 2.50 XLM")
    await expect(steps.nth(1)).to_contain_text("KALE trustline")
    await shots.take(farmer, "02-joined")

    # the operator sees the new farmer's account as not funded
    await operator.goto("/operator")
    await expect(operator.locator("[data-kind=not_ready]", has_text=address)).to_contain_text("unfunded")
    await shots.take(operator, "03-operator-unfunded-alert")

    # funding on the devnet: XLM, check (the pool adds the trustline), KALE, check again
    await farmer.goto("/farmer")
    await expect(farmer.locator("[data-test=missing]")).to_contain_text("2.50 XLM more")
    await friendbot(cluster, address)
    await farmer.get_by_role("button", name="Check funding").click()
    await expect(farmer.locator("[data-test=funding-state]")).to_have_text("ready")
    gateway = FarmGateway.from_settings(
        StellarSettings(network="devnet", rpc_urls=[cluster.rpc_url], poll_interval=0.25)
    )
    await gateway.pay_many(issuer_keypair(), [Payment(address, 100 * KALE, "KALE")])
    await farmer.get_by_role("button", name="Check funding").click()
    await expect(farmer.locator("[data-test=kale-journal]")).to_have_text("100.00 KALE")
    await expect(farmer.locator("[data-test=ready]")).to_be_visible()

    # the pooler runs one block; the farmer's page follows it by itself
    pooler = cluster.add_pooler(pooler_keys, pooler_id, api_key)
    [(farmer_id,)] = rows(cluster, "select id::text from farmers where public_key = %s", address)
    pool = Pool(
        cluster,
        PoolApi(cluster.backend_url, cluster.admin_token),
        gateway,
        farmers=[RegisteredFarmer(farmer_id, address, token, 0, 50.0, 100 * KALE, payout.public_key)],
        poolers=[pooler],
    )
    cluster.start_pooler(pooler, blocks=1, threads=1)
    try:
        line = farmer.locator("[data-test=statement] tbody tr[data-block]").first
        await expect(line).to_be_visible(timeout=60_000)
        index = int(await line.get_attribute("data-block") or -1)
        watch = pail_states(farmer, index, "harvested", 120)
        seen, _ = await asyncio.gather(watch, close_and_harvest(pool, 1))
    finally:
        await pool.close()
    assert seen[-1] == "harvested" and {"planted", "worked"} & set(seen), seen
    [(reward, pooler_fee, platform_fee)] = rows(
        cluster,
        "select sum(amount) filter (where kind = 'reward'), sum(amount) filter (where kind = 'pooler_fee'),"
        " sum(amount) filter (where kind = 'platform_fee') from balance_changes"
        " where farmer_id = %s and block_index = %s",
        farmer_id,
        index,
    )
    assert reward > 0 and pooler_fee < 0 and platform_fee < 0
    row = farmer.locator(f'[data-test=statement] tr[data-block="{index}"]')
    await expect(row.locator("[data-test=net]")).to_contain_text(kale(reward + pooler_fee + platform_fee))
    await expect(row).to_contain_text(kale(-pooler_fee))
    await shots.take(farmer, "04-farmer-harvested")

    # the pool page shows the block in its table and its chart
    visitor = await (await new_context()).new_page()
    await visitor.goto("/")
    block = visitor.locator(f'table.blocks tr[data-block="{index}"]')
    await expect(block).to_contain_text(kale(reward))
    assert await visitor.locator("svg.chart rect.bar").count() >= 1
    await shots.take(visitor, "01-pool")

    # the pooler signs in and sees its farmer
    pooler_page = await (await new_context()).new_page()
    await sign_in(pooler_page, api_key, "/pooler")
    await expect(pooler_page.locator("[data-test=pooler-farmer-table]")).to_contain_text(address)
    await expect(pooler_page.locator("table.blocks")).to_contain_text(str(index))
    await shots.take(pooler_page, "05-pooler")

    # the farmer halves its stake, then leaves (with a confirmation step)
    await farmer.get_by_label("Stake per block").fill("25")
    await farmer.get_by_role("button", name="Save settings").click()
    await expect(farmer.locator("[data-test=stake]")).to_have_text("25 %")
    await farmer.get_by_role("link", name="Leave the pool…").click()
    await expect(farmer).to_have_url(re.compile("/farmer/leave$"))
    await shots.take(farmer, "06-leave-confirm")
    await farmer.get_by_role("button", name="Yes, leave the pool").click()
    await expect(farmer.locator("[data-test=farmer-status]")).to_have_text("leaving")
    after = rows(cluster, "select status, stake_bps from farmers where id = %s", farmer_id)
    assert after == [("leaving", 2500)]
    await operator.goto("/operator")
    await shots.take(operator, "07-operator")
    print(f"browser journey: {time.monotonic() - started:.1f} s; screenshots in {shots.folder}")


async def test_forged_cross_site_and_cross_user_requests_are_refused(
    web_cluster: Cluster, new_context: NewContext, shots: Shots
) -> None:
    cluster = web_cluster
    api = PoolApi(cluster.backend_url, cluster.admin_token)
    try:
        name = f"web-refusals-{secrets.token_hex(2)}"
        pooler_id = (await api.create_pooler(name, Keypair.random().public_key, 0))["pooler"]["pooler_id"]
        a = await api.register_farmer(pooler_id, Keypair.random().public_key, 50)
        b = await api.register_farmer(pooler_id, Keypair.random().public_key, 50)
    finally:
        await api.close()
    context_a, context_b = await new_context(PHONE), await new_context()
    page_a, page_b = await context_a.new_page(), await context_b.new_page()
    await sign_in(page_a, a["farmer_token"], "/farmer")
    await sign_in(page_b, b["farmer_token"], "/farmer")

    # the phone layout fits 375 px: nothing scrolls sideways but the tables' own boxes
    assert await page_a.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await expect(page_a.locator("[data-test=custodial-address]")).to_have_text(a["custodial_wallet"])
    assert b["custodial_wallet"] not in await page_a.content()
    await shots.take(page_a, "08-farmer-unfunded")

    change = {"stake_percentage": "1", "payout_wallet": a["payout_wallet"], "pooler_id": pooler_id}
    # no CSRF token, with A's cookie: refused
    missing = await context_a.request.post("/farmer/settings", form=change, max_redirects=0)
    # B's CSRF token with A's cookie: refused (a token is bound to its session)
    token_b = await page_b.locator("input[name=csrf]").first.input_value()
    foreign = await context_a.request.post(
        "/farmer/settings", form={**change, "csrf": token_b}, max_redirects=0
    )
    # A signed in as a farmer cannot open the operator's or a pooler's page
    operator = await context_a.request.get("/operator", max_redirects=0)
    pooler = await context_a.request.get("/pooler", max_redirects=0)
    assert (missing.status, foreign.status, operator.status, pooler.status) == (403, 403, 403, 403)

    # a form on another site posting to the dashboard, even with A's own CSRF token leaked
    # to it: the SameSite=Strict cookie stays home (so the token matches no session)
    token_a = await page_a.locator("input[name=csrf]").first.input_value()
    await page_a.goto("about:blank")
    await page_a.set_content(
        f'<form method="post" action="{cluster.backend_url}/farmer/leave">'
        f'<input name="csrf" value="{token_a}"><input name="confirm" value="leave">'
        "<button>win a prize</button></form>"
    )
    async with page_a.expect_navigation():
        await page_a.get_by_role("button", name="win a prize").click()
    assert page_a.url == cluster.backend_url + "/farmer/leave"
    await expect(page_a.get_by_role("heading", name="Form expired")).to_be_visible()
    await expect(page_a.get_by_role("link", name="Sign in")).to_be_visible()  # no session came along
    await shots.take(page_a, "09-cross-site-refused")

    # without JavaScript the pages read and the forms work: they are plain HTML forms
    no_js = await (await new_context(java_script_enabled=False)).new_page()
    await sign_in(no_js, b["farmer_token"], "/farmer")
    await no_js.get_by_label("Stake per block").fill("30")
    await no_js.get_by_role("button", name="Save settings").click()
    await expect(no_js.locator("[data-test=stake]")).to_have_text("30 %")

    assert rows(
        cluster,
        "select status, stake_bps from farmers where id = any(%s::uuid[]) order by stake_bps",
        [a["farmer_id"], b["farmer_id"]],
    ) == [("active", 3000), ("active", 5000)]  # B's own change (no JS) only
