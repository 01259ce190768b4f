"""What the database itself enforces: immutability, one success per (farmer, block), checks."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from kalepool.backend import journal
from kalepool.backend.db.models import IMMUTABLE_TABLES, Pail, PoolerCompensation
from kalepool.backend.db.session import Database
from kalepool.backend.enums import EventStatus, JournalKind, PailState, WorkStatus
from tests.backend import factories


async def _one_of_each(db: Database) -> uuid.UUID:
    """One row in every immutable table, all of one new farmer; returns the farmer's id."""
    async with db.transaction() as s:
        p = await factories.pooler(s)
        f = await factories.farmer(s, p.id)
        s.add_all([factories.planting(f, 7), factories.work(f, 7), factories.harvest(f, 7)])
        s.add(
            PoolerCompensation(pooler_id=p.id, farmer_id=f.id, block_index=7, reason="not_worked", amount=5)
        )
        await journal.record(
            s, [journal.Entry.farmer(f.id, JournalKind.REWARD, 123, "reward", block_index=7)]
        )
    return f.id


@pytest.mark.parametrize("table", IMMUTABLE_TABLES)
@pytest.mark.parametrize(
    "statement",
    ["UPDATE {t} SET created_at = now()", "DELETE FROM {t}", "TRUNCATE {t} CASCADE"],
    ids=["update", "delete", "truncate"],
)
async def test_event_tables_are_append_only(db: Database, table: str, statement: str) -> None:
    farmer_id = await _one_of_each(db)
    with pytest.raises(IntegrityError, match="append-only"):
        async with db.transaction() as s:
            await s.execute(text(statement.format(t=table)))
    async with db.transaction() as s:
        count = text(f"select count(*) from {table} where farmer_id = :f")
        assert (await s.execute(count, {"f": farmer_id})).scalar_one() == 1


async def test_mutable_tables_stay_mutable(db: Database) -> None:
    async with db.transaction() as s:
        p = await factories.pooler(s)
        f = await factories.farmer(s, p.id)
        s.add(Pail(farmer_id=f.id, pooler_id=p.id, block_index=1, state=PailState.PLANTED.value))
    async with db.transaction() as s:
        await s.execute(text("UPDATE pails SET state = 'worked' WHERE farmer_id = :f"), {"f": f.id})
        await s.execute(text("UPDATE farmers SET stake_bps = 100 WHERE id = :f"), {"f": f.id})


@pytest.mark.parametrize("kind", ["planting", "harvest"])
async def test_one_successful_planting_and_harvest_per_farmer_and_block(db: Database, kind: str) -> None:
    make = getattr(factories, kind)
    async with db.transaction() as s:
        p = await factories.pooler(s)
        f = await factories.farmer(s, p.id)
        # failures may repeat, and a success may follow them
        s.add_all([make(f, 1, EventStatus.FAILED), make(f, 1, EventStatus.FAILED), make(f, 1)])
        s.add(make(f, 2))  # another block is another pail
    with pytest.raises(IntegrityError, match="one_success"):
        async with db.transaction() as s:
            s.add(make(f, 1))
    async with db.transaction() as s:  # a failure after the success is still recorded
        s.add(make(f, 1, EventStatus.FAILED))


async def test_one_accepted_work_per_farmer_and_block(db: Database) -> None:
    async with db.transaction() as s:
        p = await factories.pooler(s)
        f = await factories.farmer(s, p.id)
        s.add_all([factories.work(f, 1, WorkStatus.REJECTED), factories.work(f, 1), factories.work(f, 2)])
    with pytest.raises(IntegrityError, match="one_accepted"):
        async with db.transaction() as s:
            s.add(factories.work(f, 1))


async def test_one_compensation_and_one_pail_per_farmer_and_block(db: Database) -> None:
    async with db.transaction() as s:
        p = await factories.pooler(s)
        f = await factories.farmer(s, p.id)
        s.add(
            PoolerCompensation(pooler_id=p.id, farmer_id=f.id, block_index=3, reason="not_worked", amount=1)
        )
        s.add(Pail(farmer_id=f.id, pooler_id=p.id, block_index=3, state="planted"))
    with pytest.raises(IntegrityError, match="uq_pooler_compensations"):
        async with db.transaction() as s:
            s.add(
                PoolerCompensation(
                    pooler_id=p.id, farmer_id=f.id, block_index=3, reason="invalid_work", amount=1
                )
            )
    with pytest.raises(IntegrityError, match="uq_pails"):
        async with db.transaction() as s:
            s.add(Pail(farmer_id=f.id, pooler_id=p.id, block_index=3, state="planting"))


@pytest.mark.parametrize(
    "sql",
    [
        # a successful planting needs its transaction and 32 bytes of entropy
        "INSERT INTO plantings (farmer_id, pooler_id, block_index, status, stake_amount)"
        " VALUES (:f, :p, 1, 'succeeded', 5)",
        # a failed one needs a code and someone to blame
        "INSERT INTO plantings (farmer_id, pooler_id, block_index, status, stake_amount)"
        " VALUES (:f, :p, 1, 'failed', 0)",
        # block indexes are u32
        "INSERT INTO plantings (farmer_id, pooler_id, block_index, status, stake_amount, error_code,"
        " attributed_to) VALUES (:f, :p, 4294967296, 'failed', 0, 'x', 'chain')",
        # negative stakes do not exist
        "INSERT INTO plantings (farmer_id, pooler_id, block_index, status, stake_amount, error_code,"
        " attributed_to) VALUES (:f, :p, 1, 'failed', -1, 'x', 'chain')",
        # unknown statuses neither
        "UPDATE farmers SET status = 'gone' WHERE id = :f",
        "UPDATE farmers SET stake_bps = 10001 WHERE id = :f",
        # an accepted work is complete
        "INSERT INTO works (farmer_id, pooler_id, block_index, status) VALUES (:f, :p, 1, 'accepted')",
        # nonces are u64
        "INSERT INTO works (farmer_id, pooler_id, block_index, status, reason, nonce)"
        " VALUES (:f, :p, 1, 'rejected', 'x', 18446744073709551616)",
        # the journal: a reward is positive, a stake burn negative, fees in XLM, owners exact
        "INSERT INTO balance_changes (account_type, farmer_id, asset, kind, amount, usage)"
        " VALUES ('farmer', :f, 'KALE', 'reward', -5, 'x')",
        "INSERT INTO balance_changes (account_type, farmer_id, asset, kind, amount, usage)"
        " VALUES ('farmer', :f, 'KALE', 'stake_burned', 5, 'x')",
        "INSERT INTO balance_changes (account_type, farmer_id, asset, kind, amount, usage)"
        " VALUES ('farmer', :f, 'KALE', 'xlm_fee', -5, 'x')",
        "INSERT INTO balance_changes (account_type, pooler_id, asset, kind, amount, usage)"
        " VALUES ('pooler', :p, 'KALE', 'reward', 5, 'x')",
        "INSERT INTO balance_changes (account_type, farmer_id, pooler_id, asset, kind, amount, usage)"
        " VALUES ('farmer', :f, :p, 'KALE', 'reward', 5, 'x')",
        "INSERT INTO balance_changes (account_type, farmer_id, asset, kind, amount, usage)"
        " VALUES ('farmer', :f, 'KALE', 'adjustment', 0, 'x')",
        # API keys are 32-byte hashes
        "INSERT INTO api_keys (kind, farmer_id, key_hash, prefix) VALUES ('farmer', :f, 'short', 'kp')",
    ],
)
async def test_check_constraints(db: Database, sql: str) -> None:
    async with db.transaction() as s:
        p = await factories.pooler(s)
        f = await factories.farmer(s, p.id)
    with pytest.raises((IntegrityError, DBAPIError)):
        async with db.transaction() as s:
            await s.execute(text(sql), {"f": f.id, "p": p.id})
