"""The pooler's page (signed in with its API key): its farmers, recent blocks, hash rate
and last heartbeat, failures blamed on it, earnings. Only ever the signed-in pooler's."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kalepool.backend.enums import JournalKind
from kalepool.backend.services import poolers, stats
from kalepool.backend.services.auth import Role
from kalepool.backend.web.core import principal, render, web_of

router = APIRouter(include_in_schema=False)


@router.get("/pooler")
async def pooler_page(request: Request) -> Response:
    who = await principal(request, Role.POOLER)
    assert who.pooler_id is not None
    context = web_of(request).backend
    offline_after = context.settings.pooler_offline_seconds
    earnings, (farmers, total), blocks, failures, overview = await asyncio.gather(
        poolers.earnings(context.db, pooler_id=who.pooler_id),
        poolers.pooler_farmers(
            context.db, pooler_id=who.pooler_id, status=None, funding_state=None, limit=200, offset=0
        ),
        stats.recent_blocks(context.db, limit=12, pooler_id=who.pooler_id),
        stats.failures(context.db, pooler_id=who.pooler_id, limit=20),
        stats.pool_overview(context.db, offline_after=offline_after),
    )
    card = next(p for p in overview.poolers if p.pooler_id == who.pooler_id)
    paid = -earnings.kale_by_kind.get(JournalKind.PAYOUT, 0)
    return render(
        request,
        "pooler.html",
        pooler=earnings.pooler,
        card=card,
        earnings=earnings,
        paid=paid,
        farmers=farmers,
        farmers_total=total,
        blocks=blocks,
        failures=failures,
    )
