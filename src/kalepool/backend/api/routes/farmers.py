"""Farmer endpoints: registration (open, rate-limited per IP) and the farmer's own record."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, status

from kalepool.backend.api import schemas as s
from kalepool.backend.api import views
from kalepool.backend.api.deps import ContextDep, FarmerDep, anonymous_rate_limit
from kalepool.backend.api.errors import responses
from kalepool.backend.enums import Asset, FundingState
from kalepool.backend.errors import Forbidden
from kalepool.backend.logs import get_logger
from kalepool.backend.services import farmers, funding
from kalepool.backend.services.auth import Principal
from kalepool.backend.services.funding import FundingStatus

router = APIRouter(prefix="/farmers", tags=["farmers"])
log = get_logger(__name__)


def _own(principal: Principal, farmer_id: uuid.UUID) -> uuid.UUID:
    if principal.farmer_id != farmer_id:
        raise Forbidden("this token belongs to another farmer")
    return farmer_id


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=s.FarmerRegistered,
    responses=responses(404, 409, 422, 429),
    dependencies=[Depends(anonymous_rate_limit)],
)
async def register_farmer(body: s.FarmerCreate, context: ContextDep) -> s.FarmerRegistered:
    """Open a custodial account with a pooler. The answer carries the farmer token, shown once."""
    farmer, token = await farmers.register_farmer(
        context.db,
        context.keyring,
        pooler_id=body.pooler_id,
        payout_wallet=body.payout_wallet,
        stake_bps=s.stake_bps(body.stake_percentage),
    )
    minimum = context.settings.min_xlm_balance
    fresh = FundingStatus(farmer.public_key, farmer.funding_state, minimum, chain_known=False)
    return s.FarmerRegistered(
        farmer_id=farmer.id,
        pooler_id=farmer.pooler_id,
        custodial_wallet=farmer.public_key,
        payout_wallet=farmer.payout_wallet,
        stake_percentage=s.stake_percentage(farmer.stake_bps),
        needs_funding=farmer.funding_state != FundingState.READY.value,
        funding=s.FundingInstructions(
            custodial_wallet=farmer.public_key,
            min_xlm_balance=minimum,
            note=(
                f"1. Send at least {minimum / 10_000_000:g} XLM to the custodial wallet (it creates the "
                f"account). 2. POST /api/v1/farmers/{farmer.id}/confirm-funding: the pool adds the KALE "
                "trustline. 3. Send the KALE to farm with. 4. Confirm again: the deposit is recorded."
            ),
            steps=views.funding_steps(fresh.steps),
        ),
        farmer_token=token.token,
    )


@router.post(
    "/{farmer_id}/confirm-funding",
    response_model=s.FundingConfirmed,
    responses=responses(401, 403, 404, 409, 422, 429, 502, 503),
)
async def confirm_funding(
    farmer_id: uuid.UUID, context: ContextDep, principal: FarmerDep
) -> s.FundingConfirmed:
    """Check the custodial account on chain; once funded, the backend adds the KALE trustline,
    and every confirmation journals the KALE that arrived since the last one as a deposit.

    409 ``account_not_found`` / ``insufficient_xlm`` while the account is not funded yet.
    ``funding`` says what the account still lacks, step by step.
    """
    done = await funding.confirm(context.ops, farmer_id=_own(principal, farmer_id))
    return s.FundingConfirmed(
        farmer=views.farmer_public(done.farmer),
        trustline_created=bool(done.trustline and done.trustline.created),
        trustline_tx_hash=done.trustline.tx_hash if done.trustline else None,
        deposits_journaled=done.deposited,
        funding=views.funding(done.status),
    )


@router.post(
    "/{farmer_id}/leave", response_model=s.FarmerPublic, responses=responses(401, 403, 404, 409, 429)
)
async def leave(farmer_id: uuid.UUID, context: ContextDep, principal: FarmerDep) -> s.FarmerPublic:
    """Leave the pool: no new plantings; once its open pails are harvested, everything the
    farmer owns is paid to its payout wallet and it is marked ``departed``. 409 once departed."""
    return views.farmer_public(await farmers.leave(context.db, farmer_id=_own(principal, farmer_id)))


@router.get("/{farmer_id}", response_model=s.FarmerDetailPublic, responses=responses(401, 403, 404, 422, 429))
async def get_farmer(farmer_id: uuid.UUID, context: ContextDep, principal: FarmerDep) -> s.FarmerDetailPublic:
    """Status, balances from the journal, the recent plantings, works, harvests, and what
    the custodial account still lacks to be planted (``funding``, read from the chain)."""
    detail = await farmers.farmer_detail(context.db, farmer_id=_own(principal, farmer_id))
    status = await funding.funding_status(
        context.chain,
        detail.farmer,
        min_xlm_balance=context.settings.min_xlm_balance,
        journal_kale=detail.balances[Asset.KALE],
    )
    return views.farmer_detail(detail, status)


@router.patch(
    "/{farmer_id}", response_model=s.FarmerPublic, responses=responses(401, 403, 404, 409, 422, 429)
)
async def update_farmer(
    farmer_id: uuid.UUID, body: s.FarmerUpdate, context: ContextDep, principal: FarmerDep
) -> s.FarmerPublic:
    """Change the stake percentage, the payout wallet and/or the pooler (409 ``pails_open``
    while a block of the farmer is open, ``pooler_full``, ``pooler_suspended``)."""
    farmer = await farmers.update_farmer(
        context.db,
        farmer_id=_own(principal, farmer_id),
        stake_bps=s.stake_bps(body.stake_percentage) if body.stake_percentage is not None else None,
        payout_wallet=body.payout_wallet,
        pooler_id=body.pooler_id,
    )
    return views.farmer_public(farmer)
