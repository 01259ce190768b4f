"""The journal: idempotent recording, derived balances, and the rules of each kind."""

from __future__ import annotations

import uuid

import pytest

from kalepool.backend import journal
from kalepool.backend.db.session import Database
from kalepool.backend.enums import AccountType, Asset, JournalKind
from kalepool.backend.journal import Entry
from tests.backend import factories

STAKE = 10_000_000


def _block_entries(farmer_id: uuid.UUID, pooler_id: uuid.UUID, block: int) -> list[Entry]:
    tx = f"tx{block}"
    return [
        Entry.farmer(
            farmer_id, JournalKind.STAKE_BURNED, -STAKE, f"stake for block {block}", block_index=block
        ),
        Entry.farmer(
            farmer_id, JournalKind.STAKE_RETURNED, STAKE, "stake back", block_index=block, reference=tx
        ),
        Entry.farmer(farmer_id, JournalKind.REWARD, 900, "reward", block_index=block, reference=tx),
        Entry.farmer(farmer_id, JournalKind.POOLER_FEE, -90, "pooler share", block_index=block, reference=tx),
        Entry.farmer(
            farmer_id, JournalKind.PLATFORM_FEE, -45, "platform fee", block_index=block, reference=tx
        ),
        Entry.pooler(pooler_id, JournalKind.POOLER_SHARE, 90, "share", block_index=block, reference=tx),
        Entry.platform(JournalKind.FEE_INCOME, 45, "fee", block_index=block, reference=tx),
        Entry.farmer(
            farmer_id,
            JournalKind.XLM_FEE,
            -100,
            "harvest fee",
            asset=Asset.XLM,
            block_index=block,
            reference=tx,
        ),
    ]


async def test_balances_are_sums_of_the_journal(fresh_db: Database) -> None:
    db = fresh_db  # the platform balance sums the whole table
    async with db.transaction() as s:
        p = await factories.pooler(s)
        f = await factories.farmer(s, p.id)
        assert await journal.record(s, _block_entries(f.id, p.id, 1) + _block_entries(f.id, p.id, 2)) == 16
    async with db.transaction() as s:
        balances = await journal.farmer_balances(s, f.id)
        assert balances[Asset.KALE] == 2 * (900 - 90 - 45)
        assert balances[Asset.XLM] == -200
        assert balances.by_kind[Asset.KALE][JournalKind.REWARD] == 1800
        assert balances.by_kind[Asset.KALE][JournalKind.STAKE_BURNED] == -2 * STAKE
        assert (await journal.pooler_balances(s, p.id))[Asset.KALE] == 180
        assert (await journal.platform_balances(s))[Asset.KALE] == 90
        assert [line.block_index for line in await journal.statement(s, f.id, limit=3)] == [2, 2, 2]


async def test_recording_the_same_facts_twice_credits_once(db: Database) -> None:
    async with db.transaction() as s:
        p = await factories.pooler(s)
        f = await factories.farmer(s, p.id)
        assert await journal.record(s, _block_entries(f.id, p.id, 5)) == 8
    async with db.transaction() as s:  # a retried harvest of the same block
        assert await journal.record(s, _block_entries(f.id, p.id, 5)) == 0
        # same kind and block, but another reference, is another fact
        extra = Entry.farmer(f.id, JournalKind.REWARD, 1, "late", block_index=5, reference="tx-other")
        assert await journal.record(s, [extra]) == 1
        # NULL block indexes compare equal in the idempotency key
        payout = Entry.farmer(f.id, JournalKind.PAYOUT, -10, "payout", reference="payout-1")
        assert await journal.record(s, [payout, payout]) == 1
    async with db.transaction() as s:
        assert (await journal.farmer_balances(s, f.id))[Asset.KALE] == 900 - 90 - 45 + 1 - 10


async def test_an_empty_record_is_a_no_op(db: Database) -> None:
    async with db.transaction() as s:
        assert await journal.record(s, []) == 0
        assert (await journal.farmer_balances(s, uuid.uuid4())).net == {}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda f: Entry.farmer(f, JournalKind.REWARD, -1, "x"), "positive"),
        (lambda f: Entry.farmer(f, JournalKind.STAKE_BURNED, 1, "x"), "negative"),
        (lambda f: Entry.farmer(f, JournalKind.REWARD, 0, "x"), "non-zero"),
        (lambda f: Entry.farmer(f, JournalKind.REWARD, True, "x"), "non-zero"),
        (lambda f: Entry.farmer(f, JournalKind.POOLER_SHARE, 1, "x"), "cannot be held"),
        (lambda f: Entry.farmer(f, JournalKind.XLM_FEE, -1, "x"), "cannot be in"),
        (
            lambda f: Entry(AccountType.FARMER, JournalKind.REWARD, 1, "x", farmer_id=f, pooler_id=f),
            "exactly",
        ),
        (lambda f: Entry(AccountType.PLATFORM, JournalKind.FEE_INCOME, 1, "x", farmer_id=f), "exactly"),
    ],
)
def test_entries_are_validated_before_the_database_sees_them(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(uuid.uuid4())  # type: ignore[operator]
