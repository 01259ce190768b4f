"""The payout dry run against the devnet: it plans what the worker then pays, and signs,
sends and writes nothing (every table's rows, the payouts' and farmers' states, the
devnet's received transactions are the same before and after)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select

from kalepool.backend.db.models import Base, Farmer, Payout
from kalepool.backend.enums import JournalKind
from kalepool.backend.services.payouts import Planned, format_plan, plan_payouts
from kalepool.backend.services.payouts.plan import Action, Payee
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.backend.workers import Payouts
from kalepool.devnet.testing import DevnetHandle
from tests.backend.conftest import Api
from tests.backend.devnet_env import XLM, Controls, closing
from tests.backend.test_chain_plant import rows
from tests.backend.test_payouts import expected_owed, harvested_farmer, payout_world
from tests.backend.test_pooler_payouts import farmer_of_a_paid_pooler, sums_of

__all__ = ["payout_world"]  # the fixture, used by name


async def snapshot(api: Api) -> dict[str, Any]:
    """Every table's row count, and the rows a payout run changes (payouts, farmers)."""
    async with api.context.db.transaction() as session:
        counts = {
            table.name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for table in Base.metadata.sorted_tables
        }
        payouts = (await session.execute(select(Payout.id, Payout.status, Payout.updated_at))).all()
        farmers = (await session.execute(select(Farmer.id, Farmer.status, Farmer.updated_at))).all()
    return {"counts": counts, "payouts": sorted(payouts), "farmers": sorted(farmers)}


def key(step: Planned) -> tuple[Any, ...]:
    return (step.payee, step.action, step.code, step.farmer_id, step.pooler_id, step.source_id, step.amount)


async def test_a_dry_run_plans_what_the_run_then_does_and_writes_nothing(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    paid, pooler_account, share = await farmer_of_a_paid_pooler(api, devnet, controls, dev_chain)
    stuck, _ = await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=None)  # no trustline
    platform = devnet.new_account(xlm=10 * XLM, kale=1)
    settings = api.context.ops.settings.model_copy(update={"platform_wallet": platform.public_key})
    ops = replace(api.context.ops, settings=settings)
    paid_id, stuck_id = uuid.UUID(paid["farmer_id"]), uuid.UUID(stuck["farmer_id"])
    owed, stuck_owed = await expected_owed(api, paid), await expected_owed(api, stuck)
    platform_fees = {
        fid: -(await sums_of(api, f))[JournalKind.PLATFORM_FEE]
        for fid, f in ((paid_id, paid), (stuck_id, stuck))
    }
    before = await snapshot(api)
    await controls.sent(clear=True)

    plan = await plan_payouts(ops.db, ops.chain, settings)

    assert await controls.sent() == [] and await snapshot(api) == before  # nothing signed, sent or written
    pooler_id, stuck_pooler = uuid.UUID(paid["pooler_id"]), uuid.UUID(stuck["pooler_id"])
    largest_first = sorted(platform_fees, key=lambda fid: (-platform_fees[fid], str(fid)))
    assert [key(s) for s in plan.steps] == [
        (Payee.FARMER, Action.PAY, "rewards", paid_id, None, None, owed),
        (Payee.FARMER, Action.FAIL, "no_trustline", stuck_id, None, None, stuck_owed),
        (Payee.POOLER, Action.PAY, "fees", None, pooler_id, paid_id, share),
        (Payee.POOLER, Action.WAIT, "no_destination", None, stuck_pooler, None, 0),
        *[(Payee.PLATFORM, Action.PAY, "fees", None, None, fid, platform_fees[fid]) for fid in largest_first],
    ]
    assert plan.paid == owed + share + sum(platform_fees.values())
    text = format_plan(plan).splitlines()
    assert (
        len(text) == len(plan.steps) + 1
        and "no_trustline" in text[1]
        and pooler_account.public_key in text[2]
    )
    assert text[-1].startswith("would pay ") and "(1 fail, 4 pay, 1 wait)" in text[-1]
    assert [s["action"] for s in plan.as_json()["steps"]] == ["pay", "fail", "pay", "wait", "pay", "pay"]

    run = await closing(controls, Payouts(ops).run_once())  # the worker does what was planned
    assert run.poolers is not None and run.platform is not None
    assert (run.paid, run.failed, run.poolers.paid, run.platform.paid) == (1, 1, 1, 2)
    assert len(await controls.sent()) == 4
    done = {
        (p.account_type, p.status, p.farmer_id, p.pooler_id, p.source_farmer_id, p.amount)
        for p in await rows(api, Payout)
    }
    status = {Action.PAY: "confirmed", Action.FAIL: "failed"}
    assert done == {
        (s.payee.value, status[s.action], s.farmer_id, s.pooler_id, s.source_id, s.amount)
        for s in plan.steps
        if s.action in status
    }
    again = await plan_payouts(ops.db, ops.chain, settings)  # nothing left but the backoff and the wait
    assert [(s.action, s.code) for s in again.steps if s.action != Action.WAIT] == [
        (Action.SKIP, "backing_off")
    ]
