"""The block monitor: new and ripe blocks, no false positives on stale reads or errors."""

from __future__ import annotations

from kalepool.kale.types import Block
from kalepool.pooler.monitor import BlockMonitor, ChainClock, NewBlock, RipeBlock
from kalepool.stellar.outcomes import FarmState

INTERVAL = 30


def farm(index: int, ledger: int, close_time: int, start: int, entropy: bytes = b"\x01" * 32) -> FarmState:
    acc = Block.fresh_accumulator(start)
    block = Block(
        timestamp=start, min_gap=0, min_stake=0, min_zeros=0, max_gap=0, max_stake=0, max_zeros=0,
        entropy=entropy, staked_total=0, normalized_total=0,
    )
    return FarmState(
        index=index, farm_block=acc, block=block, block_live_until=None, paused=False,
        latest_ledger=ledger, close_time=close_time, block_interval=300,
    )


def test_first_snapshot_reports_the_current_block() -> None:
    m = BlockMonitor(INTERVAL)
    events = m.observe(farm(3, 100, 1_000, 990), 1_000.5)
    assert events == [NewBlock(3, 990, b"\x01" * 32, 100, first=True)]
    assert m.index == 3 and not m.ripe


def test_new_block_on_index_increase_only() -> None:
    m = BlockMonitor(INTERVAL)
    m.observe(farm(3, 100, 1_000, 990), 1_000)
    assert m.observe(farm(3, 101, 1_001, 990), 1_001) == []
    events = m.observe(farm(4, 105, 1_025, 1_024), 1_025)
    assert events == [NewBlock(4, 1_024, b"\x01" * 32, 105)]


def test_ripe_once_when_ledger_time_passes_start_plus_interval() -> None:
    m = BlockMonitor(INTERVAL)
    m.observe(farm(3, 100, 1_000, 990), 1_000)
    assert m.observe(farm(3, 118, 1_019, 990), 1_019) == []  # 1019 < 1020
    events = m.observe(farm(3, 119, 1_020, 990), 1_020)
    assert events == [RipeBlock(3, 990, 119)]
    assert m.ripe
    assert m.observe(farm(3, 125, 1_030, 990), 1_030) == []  # reported once


def test_a_block_already_ripe_at_start_is_new_and_ripe() -> None:
    m = BlockMonitor(INTERVAL)
    events = m.observe(farm(0, 50, 2_000, 1_000), 2_000)
    assert [type(e) for e in events] == [NewBlock, RipeBlock]


def test_stale_snapshot_is_ignored() -> None:
    m = BlockMonitor(INTERVAL)
    m.observe(farm(4, 120, 1_030, 1_025), 1_030)
    # a lagging RPC answers with an older ledger: an older, already ripe view of block 3
    assert m.observe(farm(3, 110, 1_021, 990), 1_031) == []
    assert m.index == 4 and not m.ripe and m.stale == 1
    # same ledger but an older close time: also stale
    assert m.observe(farm(4, 120, 1_029, 1_025), 1_031) == []
    # an index going down with a newer ledger is inconsistent: ignored as well
    assert m.observe(farm(3, 130, 1_040, 990), 1_040) == []
    assert m.index == 4 and m.stale == 3


def test_rpc_errors_change_nothing() -> None:
    m = BlockMonitor(INTERVAL)
    m.observe(farm(4, 120, 1_030, 1_025), 1_030)
    for _ in range(3):
        m.failed(RuntimeError("boom"))
    assert m.errors == 3 and m.index == 4 and not m.ripe
    m.observe(farm(4, 121, 1_031, 1_025), 1_031)
    assert m.errors == 0


def test_chain_clock_offset_and_ledger_seconds() -> None:
    clock = ChainClock(default_ledger_seconds=5.0)
    assert clock.ledger_seconds == 5.0 and clock.offset == 0.0
    clock.observe(100, 1_000, 1_000.8)  # read 0.8 s after the close
    clock.observe(101, 1_001, 1_001.1)  # read right after
    clock.observe(105, 1_005, 1_005.5)
    assert clock.ledger_seconds == 1.0
    assert abs(clock.offset - (-0.1)) < 1e-9  # the tightest (largest) offset
    assert abs(clock.local_time(1_010) - 1_010.1) < 1e-9
    assert abs(clock.chain_time(1_010.1) - 1_010) < 1e-9


def test_chain_clock_window_forgets_old_offsets() -> None:
    clock = ChainClock(window=3)
    clock.observe(1, 100, 50)  # offset +50 (a devnet running ahead, long ago)
    for i in range(2, 6):
        clock.observe(i, 100 + i, 100 + i)
    assert clock.offset == 0.0


def test_chain_clock_measures_a_fast_devnet_clock() -> None:
    clock = ChainClock(default_ledger_seconds=5.0)
    # 0.5 s ledgers whose close times step 1 s: ledger time runs twice as fast
    for i in range(30):
        clock.observe(100 + i, 1_000 + i, 50.0 + 0.5 * i)
    assert clock.rate == 2.0
    assert clock.ledger_seconds == 0.5  # wall seconds per ledger
    assert clock.local_time(1_049) == 50.0 + 0.5 * 49
    assert clock.chain_time(50.0 + 0.5 * 49) == 1_049


def test_chain_clock_snaps_a_real_network_to_rate_one() -> None:
    clock = ChainClock()
    for i in range(12):  # 5.x s ledgers read at jittered times
        clock.observe(100 + i, 1_000 + 5 * i + (i % 2), 1_000.3 + 5 * i)
    assert clock.rate == 1.0
