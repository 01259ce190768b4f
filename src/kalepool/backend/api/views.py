"""Rows and service results to response models (the only place that knows both)."""

from __future__ import annotations

from kalepool.backend.api import schemas as s
from kalepool.backend.db.models import (
    BalanceChange,
    BlockOperation,
    Farmer,
    Harvest,
    Payout,
    Planting,
    Pooler,
    Work,
)
from kalepool.backend.enums import Asset, FarmerStatus, FundingState, PoolerStatus
from kalepool.backend.services.farmers import FarmerDetail
from kalepool.backend.services.funding import FundingStatus, FundingStep
from kalepool.backend.services.harvesting import HarvestReport
from kalepool.backend.services.planting import PlantReport
from kalepool.backend.services.poolers import BlockReport, PoolerEarnings, PoolerSummary
from kalepool.backend.services.working import WorkClaim, WorkReport
from kalepool.wire import ErrorCode
from kalepool.wire import pooler as w


def pooler_public(summary: PoolerSummary) -> s.PoolerPublic:
    p: Pooler = summary.pooler
    return s.PoolerPublic(
        pooler_id=p.id,
        name=p.name,
        public_key=p.public_key,
        status=PoolerStatus(p.status),
        reward_share_bps=p.reward_share_bps,
        max_farmers=p.max_farmers,
        farmers=summary.farmers,
        plantable_farmers=summary.plantable_farmers,
        last_heartbeat_at=p.last_heartbeat_at,
        created_at=p.created_at,
    )


def farmer_public(f: Farmer) -> s.FarmerPublic:
    return s.FarmerPublic.model_validate(_farmer_fields(f))


def _farmer_fields(f: Farmer) -> dict[str, object]:
    return {
        "farmer_id": f.id,
        "pooler_id": f.pooler_id,
        "custodial_wallet": f.public_key,
        "payout_wallet": f.payout_wallet,
        "stake_percentage": s.stake_percentage(f.stake_bps),
        "status": FarmerStatus(f.status),
        "funding_state": FundingState(f.funding_state),
        "funded_at": f.funded_at,
        "created_at": f.created_at,
        "updated_at": f.updated_at,
    }


def pooler_farmer(f: Farmer) -> w.PoolerFarmer:
    return w.PoolerFarmer(
        farmer_id=f.id,
        custodial_wallet=f.public_key,
        status=FarmerStatus(f.status),
        funding_state=FundingState(f.funding_state),
        stake_percentage=s.stake_percentage(f.stake_bps),
        created_at=f.created_at,
    )


def _planting(p: Planting) -> s.PlantingPublic:
    return s.PlantingPublic(
        block_index=p.block_index,
        status=p.status,
        stake_amount=p.stake_amount,
        tx_hash=p.tx_hash,
        entropy=s.hex_or_none(p.entropy),
        error_code=p.error_code,
        attributed_to=p.attributed_to,
        created_at=p.created_at,
    )


def _work(w: Work) -> s.WorkPublic:
    return s.WorkPublic(
        block_index=w.block_index,
        status=w.status,
        zeros=w.zeros,
        gap=w.gap,
        hash=s.hex_or_none(w.hash),
        reason=w.reason,
        created_at=w.created_at,
    )


def _harvest(h: Harvest) -> s.HarvestPublic:
    return s.HarvestPublic(
        block_index=h.block_index,
        status=h.status,
        reward=h.reward,
        stake_returned=h.stake_returned,
        tx_hash=h.tx_hash,
        error_code=h.error_code,
        created_at=h.created_at,
    )


def _balance_change(b: BalanceChange) -> s.BalanceChangePublic:
    return s.BalanceChangePublic(
        kind=b.kind,
        asset=b.asset,
        amount=b.amount,
        block_index=b.block_index,
        reference=b.reference,
        usage=b.usage,
        created_at=b.created_at,
    )


def funding_steps(steps: list[FundingStep]) -> list[s.FundingStepPublic]:
    return [s.FundingStepPublic.model_validate(step, from_attributes=True) for step in steps]


def funding(f: FundingStatus) -> s.FundingStatusPublic:
    return s.FundingStatusPublic(
        custodial_wallet=f.account,
        min_xlm_balance=f.min_xlm_balance,
        chain_known=f.chain_known,
        xlm_balance=f.xlm_balance,
        kale_balance=f.kale_balance,
        missing=f.missing,
        ready=f.ready,
        steps=funding_steps(f.steps),
    )


def farmer_detail(d: FarmerDetail, funding_status: FundingStatus) -> s.FarmerDetailPublic:
    balances = s.FarmerBalances(
        kale=d.balances[Asset.KALE],
        xlm=d.balances[Asset.XLM],
        kale_by_kind={k.value: v for k, v in d.balances.by_kind.get(Asset.KALE, {}).items()},
        xlm_by_kind={k.value: v for k, v in d.balances.by_kind.get(Asset.XLM, {}).items()},
    )
    return s.FarmerDetailPublic.model_validate(
        {
            **_farmer_fields(d.farmer),
            "balances": balances,
            "recent_plantings": [_planting(p) for p in d.plantings],
            "recent_works": [_work(w) for w in d.works],
            "recent_harvests": [_harvest(h) for h in d.harvests],
            "recent_balance_changes": [_balance_change(b) for b in d.statement],
            "recent_payouts": [_payout(p) for p in d.payouts],
            "funding": funding(funding_status),
        }
    )


def _block_operation(o: BlockOperation) -> s.BlockOperationPublic:
    return s.BlockOperationPublic(
        pooler_id=o.pooler_id,
        entropy=s.hex_or_none(o.entropy),
        plant_requested_at=o.plant_requested_at,
        plant_completed_at=o.plant_completed_at,
        work_reported_at=o.work_reported_at,
        harvest_completed_at=o.harvest_completed_at,
        farmers_planted=o.farmers_planted,
        farmers_failed=o.farmers_failed,
        works_accepted=o.works_accepted,
        works_rejected=o.works_rejected,
        harvests_succeeded=o.harvests_succeeded,
        harvests_failed=o.harvests_failed,
        total_staked=o.total_staked,
        total_rewards=o.total_rewards,
        total_compensation=o.total_compensation,
        xlm_fees=o.xlm_fees,
    )


def block_public(r: BlockReport) -> s.BlockPublic:
    return s.BlockPublic(
        block_index=r.block_index,
        poolers=[_block_operation(o) for o in r.operations],
        plantings=r.counts.get("plantings", {}),
        works=r.counts.get("works", {}),
        harvests=r.counts.get("harvests", {}),
    )


def pooler_earnings(e: PoolerEarnings) -> w.PoolerEarnings:
    return w.PoolerEarnings(
        pooler_id=e.pooler.id,
        account=e.pooler.public_key,
        kale_by_kind={k.value: v for k, v in e.kale_by_kind.items()},
        claim=e.claim,
        held_in_custody=e.held_in_custody,
        recent_payouts=[_payout(p) for p in e.payouts],
    )


def _payout(p: Payout) -> w.PayoutPublic:
    return w.PayoutPublic(
        id=p.id,
        kind="compensation" if p.recipient_farmer_id is not None else "payout",
        amount=p.amount,
        asset=p.asset,
        destination=p.destination,
        status=p.status,
        tx_hash=p.tx_hash,
        error=p.error,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


# --- the pooler's block cycle (kalepool.wire.pooler) ------------------------------------------


def plant_response(report: PlantReport) -> w.PlantResponse:
    return w.PlantResponse(
        planted_farmers=[
            w.PlantedFarmer(
                farmer_id=p.farmer_id,
                custodial_wallet=p.custodial_wallet,
                stake_amount=p.stake_amount,
                plant_tx_hash=p.plant_tx_hash,
                block_index=p.block_index,
                entropy=p.entropy.hex(),
                already_planted=p.already_planted,
            )
            for p in report.planted
        ],
        failed_plants=[
            w.FailedPlant(
                farmer_id=f.farmer_id,
                error=ErrorCode(f.error),
                message=f.message,
                attributed_to=f.attributed_to,
            )
            for f in report.failed
        ],
        summary=w.PlantSummary(
            requested_block_index=report.requested_block_index,
            farm_index=report.farm_index,
            eligible=report.eligible,
            planted=report.newly_planted,
            already_planted=report.already_planted,
            failed=len(report.failed),
            skipped_capacity=report.skipped_capacity,
            total_staked=report.total_staked,
            xlm_fees=report.xlm_fees,
            duration_ms=report.duration_ms,
        ),
    )


def work_claims(body: w.WorkCompleteRequest) -> list[WorkClaim]:
    return [
        WorkClaim(
            farmer_id=r.farmer_id,
            nonce=r.nonce,
            hash=bytes.fromhex(r.hash),
            zeros=r.zeros,
            gap=r.gap,
            tx_hash=r.tx_hash,
        )
        for r in body.work_results
    ]


def work_response(report: WorkReport) -> w.WorkCompleteResponse:
    return w.WorkCompleteResponse(
        block_index=report.block_index,
        work_recorded=report.work_recorded,
        rejected=[
            w.RejectedWork(farmer_id=r.farmer_id, reason=ErrorCode(r.reason), message=r.message)
            for r in report.rejected
        ],
        compensation_amount=report.compensation_amount,
        compensations=[
            w.CompensationPublic(farmer_id=c.farmer_id, reason=c.reason, amount=c.amount)
            for c in report.compensations
        ],
        ready_for_harvest=[
            w.ReadyForHarvest(farmer_id=f, block_index=report.block_index) for f in report.ready_for_harvest
        ],
    )


def harvest_response(report: HarvestReport) -> w.HarvestResponse:
    return w.HarvestResponse(
        harvest_results=[
            w.HarvestResult(
                farmer_id=h.farmer_id,
                block_index=h.block_index,
                reward=h.reward,
                stake_returned=h.stake_returned,
                harvest_tx_hash=h.tx_hash,
                pooler_share=h.pooler_share,
                platform_fee=h.platform_fee,
                farmer_reward=h.farmer_reward,
                already_harvested=h.already_harvested,
            )
            for h in report.results
        ],
        failed_harvests=[
            w.FailedHarvest(
                farmer_id=f.farmer_id,
                block_index=f.block_index,
                error=ErrorCode(f.error),
                message=f.message,
                attributed_to=f.attributed_to,
            )
            for f in report.failed
        ],
        total_rewards=report.total_rewards,
    )
