"""The farmer's own page (signed in with the farmer token): balances, what is missing,
the statement per block, payouts, settings, leaving. Only ever the signed-in farmer."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from kalepool.backend.accounting import held_fees
from kalepool.backend.api import schemas as s
from kalepool.backend.chain import ChainError
from kalepool.backend.enums import Asset, FarmerStatus, JournalKind
from kalepool.backend.errors import ServiceError
from kalepool.backend.services import farmers, stats
from kalepool.backend.services.auth import Role
from kalepool.backend.services.funding import confirm, funding_status
from kalepool.backend.web.core import checked_form, principal, redirect, render, web_of
from kalepool.backend.web.pages.public import field_errors

router = APIRouter(include_in_schema=False, prefix="/farmer")

NOTICES = {
    "saved": "Settings saved.",
    "funded": "Funding checked: your account is ready to farm.",
    "leaving": "You are leaving the pool: no new blocks; once your open blocks are harvested, "
    "everything you own is paid to your payout wallet.",
}


async def _page(
    request: Request,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    who = await principal(request, Role.FARMER)
    assert who.farmer_id is not None
    context = web_of(request).backend
    settings = context.settings
    detail, blocks, overview = await asyncio.gather(
        farmers.farmer_detail(context.db, farmer_id=who.farmer_id),
        stats.farmer_blocks(context.db, farmer_id=who.farmer_id, limit=20),
        stats.pool_overview(context.db, offline_after=settings.pooler_offline_seconds),
    )
    funding = await funding_status(
        context.chain,
        detail.farmer,
        min_xlm_balance=settings.min_xlm_balance,
        journal_kale=detail.balances[Asset.KALE],
    )
    pooler = next((p for p in overview.poolers if p.pooler_id == detail.farmer.pooler_id), None)
    choices = [p for p in overview.poolers if p.accepts_farmers or p.pooler_id == detail.farmer.pooler_id]
    farmer = detail.farmer
    kale = detail.balances.by_kind.get(Asset.KALE, {})
    return render(
        request,
        "farmer.html",
        status=status,
        farmer=farmer,
        detail=detail,
        balance_kale=detail.balances[Asset.KALE],
        rewards=kale.get(JournalKind.REWARD, 0),
        fees_held=held_fees(kale),
        paid_out=-(kale.get(JournalKind.PAYOUT, 0) + kale.get(JournalKind.PAYOUT_REVERSED, 0)),
        xlm_fees=-detail.balances.by_kind.get(Asset.XLM, {}).get(JournalKind.XLM_FEE, 0),
        funding=funding,
        blocks=blocks,
        pooler=pooler,
        poolers=choices,
        errors=errors or {},
        values=values
        or {
            "stake_percentage": f"{s.stake_percentage(farmer.stake_bps):g}",
            "payout_wallet": farmer.payout_wallet,
            "pooler_id": str(farmer.pooler_id),
        },
        notice=notice or NOTICES.get(request.query_params.get("notice", "")),
        departed=farmer.status == FarmerStatus.DEPARTED.value,
        leaving=farmer.status == FarmerStatus.LEAVING.value,
    )


@router.get("")
async def farmer_page(request: Request) -> Response:
    return await _page(request)


@router.post("/confirm-funding")
async def confirm_funding(request: Request) -> Response:
    """What ``POST /farmers/{id}/confirm-funding`` does: check the account, add the KALE
    trustline once funded, journal KALE already there."""
    await checked_form(request)
    who = await principal(request, Role.FARMER)
    assert who.farmer_id is not None
    context = web_of(request).backend
    try:
        await confirm(context.ops, farmer_id=who.farmer_id)
    except (ServiceError, ChainError) as exc:
        return await _page(request, status=409, errors={"funding": exc.message})
    return redirect(request, "/farmer?notice=funded")


@router.post("/settings")
async def update_settings(request: Request) -> Response:
    form = await checked_form(request)
    who = await principal(request, Role.FARMER)
    assert who.farmer_id is not None
    context = web_of(request).backend
    current = await farmers.get_farmer(context.db, who.farmer_id)
    values = {k: form.get(k, "").strip() for k in ("stake_percentage", "payout_wallet", "pooler_id")}
    try:
        given: dict[str, object] = {k: v for k, v in values.items() if v}
        if "stake_percentage" in given:
            given["stake_percentage"] = s.number_from_form(values["stake_percentage"])
        body = s.FarmerUpdate.model_validate(given)
        await farmers.update_farmer(
            context.db,
            farmer_id=who.farmer_id,
            stake_bps=s.stake_bps(body.stake_percentage) if body.stake_percentage is not None else None,
            payout_wallet=body.payout_wallet if body.payout_wallet != current.payout_wallet else None,
            pooler_id=body.pooler_id,
        )
    except ValidationError as exc:
        return await _page(request, status=422, errors=field_errors(exc), values=values)
    except ServiceError as exc:
        return await _page(
            request, status=exc.status, errors={exc.field or "form": exc.message}, values=values
        )
    return redirect(request, "/farmer?notice=saved")


@router.get("/leave")
async def leave_page(request: Request) -> Response:
    """The confirmation step: what leaving means, and the button that does it."""
    who = await principal(request, Role.FARMER)
    assert who.farmer_id is not None
    farmer = await farmers.get_farmer(web_of(request).backend.db, who.farmer_id)
    return render(request, "farmer_leave.html", farmer=farmer)


@router.post("/leave")
async def leave(request: Request) -> Response:
    form = await checked_form(request)
    who = await principal(request, Role.FARMER)
    assert who.farmer_id is not None
    if form.get("confirm") != "leave":
        return redirect(request, "/farmer/leave")
    try:
        await farmers.leave(web_of(request).backend.db, farmer_id=who.farmer_id)
    except ServiceError as exc:
        return await _page(request, status=exc.status, errors={"leave": exc.message})
    return redirect(request, "/farmer?notice=leaving")
