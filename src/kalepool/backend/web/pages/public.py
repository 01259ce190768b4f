"""Pages for everyone: the pool, becoming a farmer, signing in and out."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from kalepool.backend.api import schemas as s
from kalepool.backend.api.deps import anonymous_rate_limit
from kalepool.backend.enums import FundingState
from kalepool.backend.errors import RateLimited, ServiceError
from kalepool.backend.services import farmers, stats
from kalepool.backend.services.alerts import pool_health
from kalepool.backend.services.auth import Role, authenticate
from kalepool.backend.services.funding import funding_status
from kalepool.backend.web.charts import blocks_chart
from kalepool.backend.web.core import (
    checked_form,
    client_ip,
    page_error,
    redirect,
    render,
    replace_session,
    role_of_token,
    web_of,
)

router = APIRouter(include_in_schema=False)

HOME = {Role.FARMER: "/farmer", Role.POOLER: "/pooler", Role.ADMIN: "/operator"}


def field_errors(exc: ValidationError) -> dict[str, str]:
    """``{field: message}`` from a pydantic error (the API's own validation rules)."""
    out: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "form"
        out.setdefault(name, str(error["msg"]).removeprefix("Value error, "))
    return out


@router.get("/")
async def pool_page(request: Request) -> Response:
    context = web_of(request).backend
    settings = context.settings
    overview, blocks, farm, health = await asyncio.gather(
        stats.pool_overview(context.db, offline_after=settings.pooler_offline_seconds),
        stats.recent_blocks(context.db, limit=24),
        stats.farm_now(context.chain),
        pool_health(context.db, context.chain, context.reconcile_status),
    )
    return render(
        request,
        "pool.html",
        overview=overview,
        blocks=blocks,
        chart=blocks_chart(blocks),
        farm=farm,
        health=health,
        platform_fee_bps=settings.platform_fee_bps,
        min_xlm_balance=settings.min_xlm_balance,
    )


async def _join_form(
    request: Request,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    context = web_of(request).backend
    overview = await stats.pool_overview(context.db, offline_after=context.settings.pooler_offline_seconds)
    return render(
        request,
        "join.html",
        status=status,
        poolers=[p for p in overview.poolers if p.accepts_farmers],
        platform_fee_bps=context.settings.platform_fee_bps,
        values=values or {"stake_percentage": "50"},
        errors=errors or {},
    )


@router.get("/join")
async def join_page(request: Request) -> Response:
    return await _join_form(request)


@router.post("/join")
async def join(request: Request) -> Response:
    """Register a farmer (the same service and validation as ``POST /api/v1/farmers``),
    sign the browser in as that farmer, and show its token this once."""
    form = await checked_form(request)
    context = web_of(request).backend
    try:
        anonymous_rate_limit(request, context)
        values: dict[str, object] = {k: form.get(k, "").strip() for k in ("pooler_id", "payout_wallet")}
        values["stake_percentage"] = s.number_from_form(form.get("stake_percentage", ""))
        body = s.FarmerCreate.model_validate(values)
        farmer, token = await farmers.register_farmer(
            context.db,
            context.keyring,
            pooler_id=body.pooler_id,
            payout_wallet=body.payout_wallet,
            stake_bps=s.stake_bps(body.stake_percentage),
        )
    except ValidationError as exc:
        return await _join_form(request, status=422, values=form, errors=field_errors(exc))
    except RateLimited as exc:
        raise page_error(exc) from exc
    except ServiceError as exc:
        return await _join_form(
            request, status=exc.status, values=form, errors={exc.field or "form": exc.message}
        )
    web = web_of(request)
    replace_session(request, web.codec.new(token=token.token, role=Role.FARMER.value))
    funding = await funding_status(context.chain, farmer, min_xlm_balance=context.settings.min_xlm_balance)
    return render(
        request,
        "joined.html",
        status=201,
        farmer=farmer,
        token=token.token,
        funding=funding,
        ready=farmer.funding_state == FundingState.READY.value,
    )


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    return render(request, "sign_in.html", error=None)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Check the token as the API would; on success the session holds it (never a URL)."""
    form = await checked_form(request)
    web = web_of(request)
    wait = web.signin_limiter.acquire("ip:" + client_ip(request))
    if wait:
        raise page_error(RateLimited(wait))
    token = form.get("token", "").strip()
    role = role_of_token(token)
    settings = web.backend.settings
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    if not token:
        return render(request, "sign_in.html", status=422, error="Paste your token to sign in.")
    try:
        await authenticate(web.backend.db, token, role=role, admin_token=admin)
    except ServiceError as exc:
        message = exc.message if exc.status == 403 else "That token is not valid (or was revoked)."
        return render(request, "sign_in.html", status=401, error=message)
    replace_session(request, web.codec.new(token=token, role=role.value))
    return redirect(request, HOME[role])


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await checked_form(request)
    replace_session(request, web_of(request).codec.new())
    return redirect(request, "/")
