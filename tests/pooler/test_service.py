"""The pooler service end to end on a wall-clock devnet, against a stand-in backend.

Blocks last 12 s with 1 s ledgers: each test runs the real loop (monitor, plant-request,
mining in a thread, works from two channels, work-complete, harvest-request).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from kalepool.devnet.testing import DevnetHandle
from kalepool.errors import ConfigError
from kalepool.pooler.service import PoolerService
from kalepool.pooler.state import StateJournal
from kalepool.stellar import FarmGateway
from kalepool.wire.pooler import NetworkFacts

from .conftest import INTERVAL, stellar
from .standin_backend import StandInBackend

pytestmark = pytest.mark.slow


async def close_when_done(
    service: PoolerService, gateway: FarmGateway, devnet: DevnetHandle, blocks: int
) -> None:
    """Roll the farm over once the pooler has worked ``blocks`` blocks (it plants no more)."""
    closer = devnet.new_account()
    while service.state.blocks_worked < blocks:
        await asyncio.sleep(0.5)
    while True:
        farm = await gateway.farm_state()
        if farm.block_start is not None and farm.close_time >= farm.block_start + INTERVAL:
            await gateway.plant(closer, 0)
            return
        await asyncio.sleep(0.5)


async def test_two_blocks_planted_mined_worked_reported_and_harvested(
    make_service: Any, backend: StandInBackend, gateway: FarmGateway, devnet: DevnetHandle
) -> None:
    service = make_service(max_blocks=2)
    closer = asyncio.create_task(close_when_done(service, gateway, devnet, 2))
    await asyncio.wait_for(service.run(), timeout=90)
    await closer
    reported = sorted(backend.works)
    assert len(reported) == 2
    for index in reported:
        works = backend.works[index]
        assert {w["farmer_id"] for w in works} == {f.farmer_id for f in backend.farmers}
        assert all(w["gap"] >= 1 and w["zeros"] >= 1 for w in works)
        pails = await gateway.pails((f.keypair.public_key, index) for f in backend.farmers)
        assert all(p is None for p in pails.values())  # harvested: the pails are gone
    assert len(backend.harvests) == 2 * len(backend.farmers)
    assert all(h["reward"] > 0 for h in backend.harvests)
    # one plant-request per block (the stand-in plants on the first)
    assert len(backend.plant_requests) == len(set(backend.plant_requests)) == 2
    # every work transaction of the run: never the same (farmer, block, zeros) twice
    state = StateJournal.read(service.journal.path)
    assert state.blocks == {} and state.harvests == {} and state.blocks_worked == 2
    assert backend.heartbeats >= 1


async def test_farmers_whose_plant_failed_for_the_chain_are_planted_again_in_the_same_block(
    make_service: Any, backend: StandInBackend, gateway: FarmGateway, devnet: DevnetHandle
) -> None:
    """The backend answers "planted 2, failed 1 (rpc_timeout, the chain's)": the pooler mines
    the two, asks again for the third while the block can still be worked, and the third
    joins the mining: all three are worked and reported in that block."""
    late = backend.farmers[1].farmer_id
    backend.fail_plants[late] = 1
    service = make_service(max_blocks=1, early_work_fraction=None, min_mine_seconds=3.0)
    closer = asyncio.create_task(close_when_done(service, gateway, devnet, 1))
    await asyncio.wait_for(service.run(), timeout=60)
    await closer
    (index,) = sorted(backend.works)
    assert backend.plant_requests == [index, index]  # the first, then the replant
    assert {w["farmer_id"] for w in backend.works[index]} == {f.farmer_id for f in backend.farmers}
    assert {i for (f, i) in backend.plantings if f == late} == {index}


async def test_a_lone_pooler_whose_farmers_were_not_ready_asks_again(
    make_service: Any, backend: StandInBackend, gateway: FarmGateway, devnet: DevnetHandle
) -> None:
    """The only pooler asks for the next block while none of its farmers is ready: nobody
    is planted, so nobody opens that block. The pooler must not forget it (it would wait
    for a block only its own plant-request can open): it asks again, plants and works it."""
    farm = await gateway.farm_state()
    while farm.block_start is None or farm.close_time < farm.block_start + INTERVAL:
        await asyncio.sleep(0.5)  # a ripe farm: the next block opens with the next plant
        farm = await gateway.farm_state()
    backend.unready = 2
    service = make_service(max_blocks=1)
    closer = asyncio.create_task(close_when_done(service, gateway, devnet, 1))
    await asyncio.wait_for(service.run(), timeout=60)
    await closer
    (index,) = sorted(backend.works)
    assert index == farm.index + 1
    assert backend.plant_requests == [index, index, index]  # unready twice, then planted
    assert {w["farmer_id"] for w in backend.works[index]} == {f.farmer_id for f in backend.farmers}


async def test_restart_mid_block_resumes_without_double_work(
    make_service: Any, backend: StandInBackend, gateway: FarmGateway, devnet: DevnetHandle
) -> None:
    first = make_service(early_work_fraction=0.5, min_mine_seconds=8.0)

    async def killed() -> None:  # no graceful shutdown: what a SIGKILL leaves behind
        if first.active is not None:
            if first.active.miner is not None:
                first.active.miner.cancel()
            if first.active.task is not None:
                first.active.task.cancel()

    first.shutdown = killed  # type: ignore[method-assign]
    run = asyncio.create_task(first.run())
    # kill it once its early works have landed, before the final ones
    while not any(
        s.status == "applied" for b in first.state.blocks.values() for s in b.submissions.values()
    ):
        await asyncio.sleep(0.1)
    index = next(iter(first.state.blocks))
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    saved = StateJournal.read(first.journal.path)
    assert index in saved.blocks and not saved.blocks[index].reported
    before = saved.blocks[index].submissions
    assert before and all(s.early for s in before.values())

    second = make_service(max_blocks=1, min_mine_seconds=8.0)
    closer = asyncio.create_task(close_when_done(second, gateway, devnet, 1))
    await asyncio.wait_for(second.run(), timeout=60)
    await closer
    assert backend.plant_requests.count(index) == 1  # the restart did not ask again
    assert sorted(backend.works) == [index]
    works = backend.works[index]
    assert {w["farmer_id"] for w in works} == {f.farmer_id for f in backend.farmers}
    after = second.recent[index].submissions
    assert set(before) <= set(after)  # the early works were followed, not re-signed
    # never the same (farmer, zeros) twice: a later work only ever improves
    per_farmer = Counter((s.farmer_id, s.zeros) for s in after.values() if s.status in ("applied", "signed"))
    assert max(per_farmer.values()) == 1
    for w in works:  # what was reported is what the chain holds: the best applied
        best = max(
            (s for s in after.values() if s.farmer_id == w["farmer_id"] and s.status == "applied"),
            key=lambda s: s.zeros,
        )
        assert (w["zeros"], w["gap"], w["tx_hash"]) == (best.zeros, best.gap, best.tx_hash)


async def test_a_stop_during_the_plant_request_still_works_the_planted_farmers(
    make_service: Any, backend: StandInBackend
) -> None:
    """SIGTERM while the backend is planting: the plant lands (stakes burnt), so the pooler
    waits for it and submits works for those farmers at once instead of abandoning them."""
    service = make_service(early_work_fraction=None, min_mine_seconds=8.0)
    run = asyncio.create_task(service.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while service.status().phase != "planting":
        assert loop.time() < deadline, service.status().phase
        await asyncio.sleep(0.005)
    service.request_stop()
    await asyncio.wait_for(run, timeout=60)
    planted = {index for _, index in backend.plantings}
    assert planted, "the plant-request in flight planted nobody"
    for index in planted:
        farmers = {f for f, i in backend.plantings if i == index}
        assert {w["farmer_id"] for w in backend.works.get(index, [])} == farmers, index


async def test_graceful_stop_finishes_the_block_and_the_status_renders(
    make_service: Any, backend: StandInBackend
) -> None:
    import io

    from rich.console import Console

    from kalepool.cli import _pooler_status_view

    service = make_service(early_work_fraction=None, min_mine_seconds=8.0)
    run = asyncio.create_task(service.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while service.status().phase != "mining":  # planted, and its miner started
        assert loop.time() < deadline, service.status().phase
        await asyncio.sleep(0.02)
    status = service.status()
    assert service.active is not None and status.block_index == service.active.block.block_index
    assert len(status.farmers) == 3
    out = io.StringIO()
    Console(file=out, width=120).print(_pooler_status_view(status))
    assert "hash rate" in out.getvalue() and status.farmers[0].farmer_id[:8] in out.getvalue()
    index = service.active.block.block_index
    service.request_stop()  # what SIGINT/SIGTERM do
    await asyncio.wait_for(run, timeout=30)
    # the block was finished: best works submitted at once, then reported
    assert sorted(backend.works) == [index]
    assert {w["farmer_id"] for w in backend.works[index]} == {f.farmer_id for f in backend.farmers}
    assert StateJournal.read(service.journal.path).blocks == {}


async def test_a_backend_on_another_network_stops_the_pooler(
    make_service: Any, backend: StandInBackend, devnet: DevnetHandle
) -> None:
    """The pooler sends the facts it learnt from the network; a backend that works on
    another network refuses them, and the pooler stops saying which fact differs."""
    async with FarmGateway.from_settings(stellar(devnet)) as gateway:
        facts = await gateway.learn_network()
    assert facts.block_interval == INTERVAL  # the devnet's own, not the profile's
    backend.network = {**facts.shared(), "block_interval": 300}
    service = make_service()
    service.client.network = NetworkFacts(**facts.shared())
    with pytest.raises(ConfigError, match=f"block_interval: the backend has 300, the pooler has {INTERVAL}"):
        await asyncio.wait_for(service.run(), timeout=60)
    assert backend.networks_seen[0] == facts.shared()
    assert backend.plant_requests == []
