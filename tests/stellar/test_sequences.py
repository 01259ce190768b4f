"""Per-account locks and cached sequence numbers."""

from __future__ import annotations

import asyncio

import pytest

from kalepool.stellar.sequences import SequenceManager


class Chain:
    def __init__(self) -> None:
        self.seq: dict[str, int] = {"A": 100, "B": 500}
        self.loads = 0

    async def load(self, account: str) -> int:
        self.loads += 1
        await asyncio.sleep(0)
        return self.seq[account]


async def test_one_account_is_serialised_and_numbers_follow() -> None:
    chain = Chain()
    m: SequenceManager[str] = SequenceManager(chain.load)
    inside = 0
    peak = 0
    used: list[int] = []

    async def action() -> None:
        nonlocal inside, peak
        async with m.account("A") as slot:
            inside += 1
            peak = max(peak, inside)
            seq = await slot.current()
            await asyncio.sleep(0.001)
            used.append(seq + 1)
            chain.seq["A"] = seq + 1
            slot.applied(seq + 1)
            inside -= 1

    await asyncio.gather(*(action() for _ in range(20)))
    assert peak == 1
    assert used == list(range(101, 121))
    assert chain.loads == 1  # the cache served the rest


async def test_accounts_run_in_parallel() -> None:
    chain = Chain()
    m: SequenceManager[str] = SequenceManager(chain.load)
    started = asyncio.Event()
    both = asyncio.Event()

    async def a() -> None:
        async with m.account("A") as slot:
            await slot.current()
            started.set()
            await both.wait()
            slot.unused()

    async def b() -> None:
        await started.wait()
        async with m.account("B") as slot:
            assert await slot.current() == 500
            both.set()
            slot.unused()

    await asyncio.wait_for(asyncio.gather(a(), b()), 2)


async def test_settlements() -> None:
    chain = Chain()
    m: SequenceManager[str] = SequenceManager(chain.load)
    async with m.account("A") as slot:
        assert await slot.current() == 100
        slot.unused()
    assert m.cached("A") == 100
    async with m.account("A") as slot:
        await slot.current()
        slot.stale()
    assert m.cached("A") is None
    async with m.account("A") as slot:
        await slot.current()
        slot.in_doubt("tx-1")
    assert m.cached("A") is None and m.doubt("A") == "tx-1"
    async with m.account("A") as slot:
        assert slot.doubt == "tx-1"
        slot.resolved()
        slot.unused()
    assert m.doubt("A") is None


async def test_unsettled_slot_drops_the_cache() -> None:
    chain = Chain()
    m: SequenceManager[str] = SequenceManager(chain.load)
    async with m.account("A") as slot:
        await slot.current()
        slot.applied(101)
    assert m.cached("A") == 101
    with pytest.raises(RuntimeError):
        async with m.account("A") as slot:
            await slot.current()
            raise RuntimeError("boom")
    assert m.cached("A") is None
    assert not m.locked("A")
