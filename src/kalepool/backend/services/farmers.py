"""Farmer use cases: register, confirm funding (+ KALE trustline), read, update, re-seal.

Funding rule: a custodial account counts as funded once it exists on chain with at least
``backend.min_xlm_balance`` stroops of XLM (reserves + fees). The backend then adds the
KALE trustline itself, signing with the custodial key, and records the XLM fee it spent
in the journal. Only then (``funding_state = ready``) is the farmer planted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend import journal
from kalepool.backend.chain import Chain, TrustlineOutcome
from kalepool.backend.custody import Keyring, Signer, new_custodial_account, sealed_of
from kalepool.backend.db import repositories as repo
from kalepool.backend.db.models import BalanceChange, Farmer, Harvest, Pail, Payout, Planting, Pooler, Work
from kalepool.backend.db.session import Database
from kalepool.backend.enums import (
    ApiKeyKind,
    Asset,
    FarmerStatus,
    FundingState,
    JournalKind,
    PailState,
    PoolerStatus,
)
from kalepool.backend.errors import Conflict, NotFound
from kalepool.backend.logs import get_logger
from kalepool.backend.security import IssuedKey, issue_key

__all__ = [
    "FarmerDetail",
    "FundingResult",
    "confirm_funding",
    "farmer_detail",
    "get_farmer",
    "register_farmer",
    "rotate_master_key",
    "update_farmer",
]

log = get_logger(__name__)


async def register_farmer(
    db: Database,
    keyring: Keyring,
    *,
    pooler_id: uuid.UUID,
    payout_wallet: str,
    stake_bps: int,
) -> tuple[Farmer, IssuedKey]:
    """A new custodial account for a farmer of ``pooler_id`` and the farmer's token."""
    public_key, sealed = new_custodial_account(keyring)
    token = issue_key(ApiKeyKind.FARMER)
    async with db.transaction() as session:
        pooler = await repo.get_pooler(session, pooler_id)
        if pooler is not None and pooler.max_farmers is not None:
            # a capacity to respect: lock the pooler row so concurrent registrations count in turn
            pooler = await repo.get_pooler(session, pooler_id, for_update=True)
        _check_pooler_accepts(pooler, pooler_id)
        assert pooler is not None
        if pooler.max_farmers is not None and (
            await repo.count_farmers(session, pooler_id=pooler_id) >= pooler.max_farmers
        ):
            raise Conflict(
                f"pooler {pooler.name!r} is full ({pooler.max_farmers} farmers)",
                code="pooler_full",
                field="pooler_id",
            )
        farmer = await repo.add_farmer(
            session,
            pooler_id=pooler_id,
            public_key=public_key,
            sealed=sealed,
            payout_wallet=payout_wallet,
            stake_bps=stake_bps,
        )
        await repo.add_api_key(session, key=token, kind=ApiKeyKind.FARMER, farmer_id=farmer.id)
    log.info("farmer registered", farmer_id=str(farmer.id), pooler_id=str(pooler_id), account=public_key)
    return farmer, token


def _check_pooler_accepts(pooler: Pooler | None, pooler_id: uuid.UUID) -> None:
    if pooler is None:
        raise NotFound(f"no pooler {pooler_id}", code="pooler_not_found", field="pooler_id")
    if pooler.status != PoolerStatus.ACTIVE.value:
        raise Conflict(f"pooler {pooler.name!r} is suspended", code="pooler_suspended", field="pooler_id")


async def get_farmer(db: Database, farmer_id: uuid.UUID) -> Farmer:
    async with db.transaction() as session:
        farmer = await repo.get_farmer(session, farmer_id)
    if farmer is None:
        raise NotFound(f"no farmer {farmer_id}", code="farmer_not_found")
    return farmer


@dataclass(frozen=True)
class FundingResult:
    farmer: Farmer
    trustline: TrustlineOutcome | None
    #: this call made the farmer ready (False: it already was)
    became_ready: bool = False


async def confirm_funding(
    db: Database, chain: Chain, signer: Signer, *, farmer_id: uuid.UUID, min_xlm_balance: int
) -> FundingResult:
    """Check the custodial account on chain; when funded, add the KALE trustline.

    Raises :class:`Conflict` (``account_not_found`` / ``insufficient_xlm``) when not funded
    yet, changing nothing; chain failures propagate as ``ChainError``.
    """
    farmer = await get_farmer(db, farmer_id)
    if farmer.status == FarmerStatus.DEPARTED.value:
        raise Conflict("this farmer has departed", code="farmer_departed")
    if farmer.funding_state == FundingState.READY.value:
        return FundingResult(farmer, None)

    account = await chain.account(farmer.public_key)
    if not account.exists:
        raise Conflict(
            f"account {farmer.public_key} does not exist on chain yet: send it at least "
            f"{min_xlm_balance} stroops of XLM",
            code="account_not_found",
        )
    if account.xlm_balance < min_xlm_balance:
        raise Conflict(
            f"account {farmer.public_key} holds {account.xlm_balance} stroops of XLM; "
            f"it needs at least {min_xlm_balance}",
            code="insufficient_xlm",
        )
    if farmer.funding_state == FundingState.UNFUNDED.value:
        farmer = await _set_funding_state(db, farmer_id, FundingState.FUNDED)

    trustline: TrustlineOutcome | None = None
    if not account.has_kale_trustline:
        with signer.keypair(farmer) as keypair:
            trustline = await chain.ensure_trustline(keypair)

    async with db.transaction() as session:
        if trustline is not None and trustline.created and trustline.fee_charged > 0:
            await journal.record(
                session,
                [
                    journal.Entry.farmer(
                        farmer_id,
                        JournalKind.XLM_FEE,
                        -trustline.fee_charged,
                        "fee of the KALE trustline",
                        asset=Asset.XLM,
                        reference=trustline.tx_hash or "",
                    )
                ],
            )
    farmer = await _set_funding_state(db, farmer_id, FundingState.READY)
    log.info(
        "farmer funded", farmer_id=str(farmer_id), trustline_created=bool(trustline and trustline.created)
    )
    return FundingResult(farmer, trustline, became_ready=True)


async def _set_funding_state(db: Database, farmer_id: uuid.UUID, state: FundingState) -> Farmer:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        await session.execute(
            update(Farmer)
            .where(Farmer.id == farmer_id)
            .values(funding_state=state.value, updated_at=now, funded_at=func.coalesce(Farmer.funded_at, now))
        )
        farmer = await repo.get_farmer(session, farmer_id)
        assert farmer is not None
        await session.refresh(farmer)
    return farmer


@dataclass(frozen=True)
class FarmerDetail:
    farmer: Farmer
    balances: journal.Balances
    plantings: Sequence[Planting]
    works: Sequence[Work]
    harvests: Sequence[Harvest]
    statement: Sequence[BalanceChange]
    payouts: Sequence[Payout]


async def farmer_detail(db: Database, *, farmer_id: uuid.UUID, recent: int = 10) -> FarmerDetail:
    """The farmer, its balances from the journal and its most recent events (one snapshot)."""
    async with db.transaction() as session:
        farmer = await repo.get_farmer(session, farmer_id)
        if farmer is None:
            raise NotFound(f"no farmer {farmer_id}", code="farmer_not_found")
        return FarmerDetail(
            farmer=farmer,
            balances=await journal.farmer_balances(session, farmer_id),
            plantings=await repo.recent_plantings(session, farmer_id=farmer_id, limit=recent),
            works=await repo.recent_works(session, farmer_id=farmer_id, limit=recent),
            harvests=await repo.recent_harvests(session, farmer_id=farmer_id, limit=recent),
            statement=await journal.statement(session, farmer_id, limit=2 * recent),
            payouts=(
                await session.scalars(
                    select(Payout)
                    .where(or_(Payout.farmer_id == farmer_id, Payout.recipient_farmer_id == farmer_id))
                    .order_by(Payout.created_at.desc(), Payout.id.desc())
                    .limit(recent)
                )
            ).all(),
        )


async def update_farmer(
    db: Database,
    *,
    farmer_id: uuid.UUID,
    stake_bps: int | None = None,
    payout_wallet: str | None = None,
    pooler_id: uuid.UUID | None = None,
) -> Farmer:
    """Change the stake share, the payout wallet and/or the pooler (not once departed).

    A new pooler must accept farmers (active, not full); the move waits until none of the
    farmer's pails is open (409 ``pails_open``), so no block is worked or harvested by
    two poolers."""
    async with db.transaction() as session:
        farmer = await repo.get_farmer(session, farmer_id, for_update=True)
        if farmer is None:
            raise NotFound(f"no farmer {farmer_id}", code="farmer_not_found")
        if farmer.status == FarmerStatus.DEPARTED.value:
            raise Conflict("this farmer has departed", code="farmer_departed")
        if pooler_id is not None and pooler_id != farmer.pooler_id:
            await _move_to_pooler(session, farmer, pooler_id)
        if payout_wallet is not None and payout_wallet == farmer.public_key:
            raise Conflict(
                "the payout wallet cannot be the custodial account itself",
                code="invalid_payout_wallet",
                field="payout_wallet",
            )
        if stake_bps is not None:
            farmer.stake_bps = stake_bps
        if payout_wallet is not None:
            farmer.payout_wallet = payout_wallet
        farmer.updated_at = datetime.now(UTC)
    return farmer


_OPEN_PAILS = (PailState.PLANTING.value, PailState.PLANTED.value, PailState.WORKED.value,
               PailState.HARVESTING.value)


async def _move_to_pooler(session: AsyncSession, farmer: Farmer, pooler_id: uuid.UUID) -> None:
    pooler = await repo.get_pooler(session, pooler_id, for_update=True)
    _check_pooler_accepts(pooler, pooler_id)
    assert pooler is not None
    if pooler.max_farmers is not None and (
        await repo.count_farmers(session, pooler_id=pooler_id) >= pooler.max_farmers
    ):
        raise Conflict(f"pooler {pooler.name!r} is full ({pooler.max_farmers} farmers)", code="pooler_full",
                       field="pooler_id")
    open_pails = await session.scalar(
        select(func.count(Pail.id)).where(Pail.farmer_id == farmer.id, Pail.state.in_(_OPEN_PAILS))
    )
    if open_pails:
        raise Conflict("a block of this farmer is still open: change the pooler once it is harvested",
                       code="pails_open", field="pooler_id")
    farmer.pooler_id = pooler_id


async def leave(db: Database, *, farmer_id: uuid.UUID) -> Farmer:
    """The farmer asks to leave: no new plantings; its open pails are still harvested, then
    the payout worker sends it everything it owns and marks it departed. Repeating is fine."""
    async with db.transaction() as session:
        farmer = await repo.get_farmer(session, farmer_id, for_update=True)
        if farmer is None:
            raise NotFound(f"no farmer {farmer_id}", code="farmer_not_found")
        if farmer.status == FarmerStatus.DEPARTED.value:
            raise Conflict("this farmer has departed", code="farmer_departed")
        if farmer.status != FarmerStatus.LEAVING.value:
            farmer.status = FarmerStatus.LEAVING.value
            farmer.updated_at = datetime.now(UTC)
            log.info("farmer leaving", farmer_id=str(farmer_id))
    return farmer


async def rotate_master_key(db: Database, keyring: Keyring, *, batch: int = 500) -> int:
    """Re-seal every secret sealed under an older key with the active key; returns how many.

    Safe to run from several processes at once (rows are claimed with SKIP LOCKED), and
    safe to interrupt: each batch commits on its own.
    """
    total = 0
    while True:
        async with db.transaction() as session:
            farmers = await repo.farmers_sealed_under_other_keys(
                session, active_key_id=keyring.active_key_id, limit=batch
            )
            for farmer in farmers:
                sealed = keyring.reseal(sealed_of(farmer), public_key=farmer.public_key)
                farmer.secret_key_id = sealed.key_id
                farmer.secret_nonce = sealed.nonce
                farmer.secret_ciphertext = sealed.ciphertext
        total += len(farmers)
        if len(farmers) < batch:
            return total
