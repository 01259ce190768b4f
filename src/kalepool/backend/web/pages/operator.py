"""The operator's page (admin token): poolers (register one), health, the payout queue,
alerts and failures by attribution."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from kalepool.backend.api import schemas as s
from kalepool.backend.errors import ServiceError
from kalepool.backend.services import poolers, stats
from kalepool.backend.services.alerts import alerts, pool_health
from kalepool.backend.services.auth import Role
from kalepool.backend.web.core import checked_form, principal, render, web_of
from kalepool.backend.web.pages.public import field_errors

router = APIRouter(include_in_schema=False, prefix="/operator")


async def _page(
    request: Request,
    *,
    status: int = 200,
    created: tuple[object, str] | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    await principal(request, Role.ADMIN)
    context = web_of(request).backend
    settings = context.settings
    overview, health, queue, found, counts, blocks = await asyncio.gather(
        stats.pool_overview(context.db, offline_after=settings.pooler_offline_seconds),
        pool_health(context.db, context.chain, context.reconcile_status),
        stats.payout_queue(context.db, limit=30),
        alerts(
            context.db,
            context.chain,
            context.reconcile_status,
            min_fee_xlm=settings.min_fee_xlm,
            offline_after=settings.pooler_offline_seconds,
        ),
        stats.failure_counts(context.db, hours=24),
        stats.recent_blocks(context.db, limit=12),
    )
    return render(
        request,
        "operator.html",
        status=status,
        overview=overview,
        health=health,
        queue=queue,
        alerts=found,
        counts=counts,
        blocks=blocks,
        created=created,
        values=values or {"reward_share_percent": "10"},
        errors=errors or {},
        platform_fee_bps=settings.platform_fee_bps,
    )


@router.get("")
async def operator_page(request: Request) -> Response:
    return await _page(request)


@router.post("/poolers")
async def create_pooler(request: Request) -> Response:
    """Register a pooler (``POST /api/v1/poolers``'s service and validation); its API key
    is on this one answer only."""
    form = await checked_form(request)
    await principal(request, Role.ADMIN)
    values = {
        k: form.get(k, "").strip() for k in ("name", "public_key", "reward_share_percent", "max_farmers")
    }
    try:
        share = values["reward_share_percent"] or "0"
        try:
            bps = int((Decimal(share) * 100).to_integral_value())
        except InvalidOperation:
            return await _page(
                request, status=422, values=values, errors={"reward_share_percent": "a number from 0 to 100"}
            )
        body = s.PoolerCreate.model_validate(
            {
                "name": values["name"],
                "public_key": values["public_key"] or None,
                "reward_share_bps": bps,
                "max_farmers": s.number_from_form(values["max_farmers"]) if values["max_farmers"] else None,
            }
        )
        pooler, key = await poolers.create_pooler(
            web_of(request).backend.db,
            name=body.name,
            public_key=body.public_key,
            reward_share_bps=body.reward_share_bps,
            max_farmers=body.max_farmers,
        )
    except ValidationError as exc:
        errors = field_errors(exc)
        if "reward_share_bps" in errors:
            errors["reward_share_percent"] = "a number from 0 to 100"
        return await _page(request, status=422, values=values, errors=errors)
    except ServiceError as exc:
        return await _page(
            request, status=exc.status, values=values, errors={exc.field or "form": exc.message}
        )
    return await _page(request, status=201, created=(pooler, key.token))
