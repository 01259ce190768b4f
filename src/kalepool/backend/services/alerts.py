"""What needs the operator's attention, and the pool's health in one place.

Alerts: pails at risk of expiring before their harvest, custodial accounts low on XLM,
farmers whose account is not ready yet, poolers offline, reconciliation differences.
Health: the database (migrated to this code's revision), the chain, the reconciler's last
run. Read-only; the chain is read in batches and a chain failure is itself reported.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from kalepool.backend.chain import Chain, ChainError
from kalepool.backend.db.migrate import head_revision
from kalepool.backend.db.models import Farmer, Pail, Pooler
from kalepool.backend.db.session import Database
from kalepool.backend.enums import FarmerStatus, FundingState, PailState, PoolerStatus
from kalepool.backend.services.reconcile import ReconcileStatus
from kalepool.backend.services.stats import farmers_not_ready

__all__ = ["Alert", "PoolHealth", "alerts", "pool_health"]

_CHECK_TIMEOUT = 5.0


@dataclass(frozen=True)
class PoolHealth:
    database: str
    database_revision: str | None
    chain: str
    latest_ledger: int | None
    reconciliation: str

    @property
    def ok(self) -> bool:
        return self.database == "ok" and self.chain == "ok" and self.reconciliation in ("ok", "not_run")


async def pool_health(db: Database, chain: Chain, reconcile_status: ReconcileStatus) -> PoolHealth:
    """The same checks as ``/health/db``, ``/health/stellar`` and ``/health``, together."""
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            revision = await db.revision()
        database = "ok" if revision == head_revision() else "not_migrated"
    except Exception:
        revision, database = None, "unavailable"
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            latest: int | None = (await chain.health()).latest_ledger
        chain_state = "ok"
    except (ChainError, TimeoutError):
        latest, chain_state = None, "unavailable"
    return PoolHealth(database, revision, chain_state, latest, reconcile_status.state)


@dataclass(frozen=True)
class Alert:
    """One thing to look at: ``kind`` is stable (``pail_expiring``, ``low_xlm``,
    ``not_ready``, ``pooler_offline``, ``reconciliation``, ``chain``)."""

    kind: str
    subject: str
    detail: str
    farmer_id: uuid.UUID | None = None


async def alerts(
    db: Database,
    chain: Chain,
    reconcile_status: ReconcileStatus,
    *,
    min_fee_xlm: int,
    offline_after: float,
    expiry_margin_ledgers: int = 720,
    limit: int = 50,
    accounts_checked: int = 500,
) -> list[Alert]:
    """Every alert, most urgent kinds first (each kind capped at ``limit``)."""
    out: list[Alert] = []
    now = datetime.now(UTC)
    async with db.transaction() as session:
        at_risk = (
            await session.execute(
                select(
                    Pail.farmer_id, Pail.block_index, Pail.state, Pail.live_until_ledger, Farmer.public_key
                )
                .join(Farmer, Farmer.id == Pail.farmer_id)
                .where(
                    Pail.state.in_([PailState.WORKED.value, PailState.HARVESTING.value]),
                    Pail.live_until_ledger.is_not(None),
                )
                .order_by(Pail.live_until_ledger)
                .limit(limit)
            )
        ).all()
        poolers = (
            await session.scalars(select(Pooler).where(Pooler.status == PoolerStatus.ACTIVE.value))
        ).all()
        funded = (
            await session.execute(
                select(Farmer.id, Farmer.public_key)
                .where(
                    Farmer.status != FarmerStatus.DEPARTED.value,
                    Farmer.funding_state == FundingState.READY.value,
                )
                .order_by(Farmer.created_at.desc())
                .limit(accounts_checked)
            )
        ).all()
    latest: int | None = None
    infos = {}
    try:
        latest = (await chain.health()).latest_ledger
        infos = await chain.accounts([key for _, key in funded])
    except ChainError as exc:
        out.append(Alert("chain", "the chain", f"cannot be read ({exc.code}): balances and expiry unchecked"))
    if latest is not None:
        for farmer_id, block, state, live_until, _key in at_risk:
            left = int(live_until or 0) - latest
            if left <= expiry_margin_ledgers:
                what = "expired" if left < 0 else f"expires in {left} ledgers"
                out.append(Alert("pail_expiring", f"block {block}", f"{state} pail {what}", farmer_id))
    for farmer_id, key in funded:
        info = infos.get(key)
        if info is not None and info.spendable_xlm < min_fee_xlm:
            out.append(
                Alert(
                    "low_xlm",
                    key,
                    f"{info.spendable_xlm} stroops of spendable XLM, {min_fee_xlm} needed per transaction",
                    farmer_id,
                )
            )
    rows, total = await farmers_not_ready(db, limit=limit)
    for farmer in rows:
        state = (
            "no XLM yet" if farmer.funding_state == FundingState.UNFUNDED.value else "no KALE trustline yet"
        )
        out.append(
            Alert(
                "not_ready",
                farmer.public_key,
                f"{farmer.funding_state}: {state} (registered {farmer.created_at:%Y-%m-%d %H:%M} UTC)",
                farmer.id,
            )
        )
    if total > len(rows):
        out.append(Alert("not_ready", "more farmers", f"{total - len(rows)} more accounts not ready"))
    for pooler in poolers:
        beat = pooler.last_heartbeat_at
        if beat is None or now - beat > timedelta(seconds=offline_after):
            seen = "never" if beat is None else f"last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC"
            out.append(Alert("pooler_offline", pooler.name, f"offline: {seen}"))
    last = reconcile_status.last
    if last is not None:
        for m in last.mismatches[:limit]:
            out.append(
                Alert(
                    "reconciliation",
                    m.account,
                    f"on chain {m.onchain}, journal {m.journal} (difference {m.difference} stroops)",
                    m.farmer_id,
                )
            )
        if last.error is not None:
            out.append(Alert("reconciliation", "the reconciler", f"last run failed: {last.error}"))
    return out
