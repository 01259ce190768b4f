"""A small stand-in for the backend's pooler API, planting and harvesting on a devnet.

It holds the farmers' keypairs (as the real backend holds custodial keys), answers the
pooler's five calls with the wire contract's models (:mod:`kalepool.wire.pooler`), and
records what it was asked, so tests can drive :class:`~kalepool.pooler.service.PoolerService` end to end
on the devnet without PostgreSQL. Idempotent like the real one: a farmer is planted at
most once per block; a repeated plant-request answers with the plantings already made.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from stellar_sdk import Keypair

from kalepool.kale.errors import ContractError
from kalepool.stellar import FarmGateway, GatewayError
from kalepool.wire import Attribution, ErrorCode
from kalepool.wire import pooler as w


def _json(model: w.Answer, status: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status)


def _code(exc: BaseException) -> ErrorCode:
    name = getattr(exc, "name", None) or getattr(exc, "code", "")
    return ErrorCode("".join("_" + c.lower() if c.isupper() else c for c in str(name)).lstrip("_"))


@dataclass
class StandInFarmer:
    keypair: Keypair
    stake: int
    farmer_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class StandInBackend:
    gateway: FarmGateway
    harvester: Keypair
    farmers: list[StandInFarmer]
    interval: int = 300
    pooler_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    plant_requests: list[int] = field(default_factory=list)
    plantings: dict[tuple[str, int], w.PlantedFarmer] = field(default_factory=dict)
    works: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    harvests: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: int = 0
    plantable: int | None = None  # heartbeat answer (default: every farmer)
    fail_next: int = 0  # answer 503 to this many requests first
    unready: int = 0  # answer this many plant-requests with nobody eligible (not funded yet)
    fail_plants: dict[str, int] = field(default_factory=dict)  # farmer id -> plants to fail (rpc_timeout)
    #: the backend's network facts: a request naming others is refused (409 network_mismatch)
    network: dict[str, Any] | None = None
    networks_seen: list[dict[str, Any]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/pooler/farmers", self._farmers, methods=["GET"]),
                Route("/api/v1/pooler/heartbeat", self._heartbeat, methods=["POST"]),
                Route("/api/v1/pooler/plant-request", self._plant, methods=["POST"]),
                Route("/api/v1/pooler/work-complete", self._work, methods=["POST"]),
                Route("/api/v1/pooler/harvest-request", self._harvest, methods=["POST"]),
            ]
        )

    def _unavailable(self) -> JSONResponse | None:
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"error": {"code": "unavailable", "message": "try later"}}, 503)
        return None

    async def _farmers(self, request: Request) -> JSONResponse:
        return _json(w.PoolerFarmerList(pooler_id=uuid.UUID(self.pooler_id), farmers=[], count=0, total=0))

    def _other_network(self, body: dict[str, Any]) -> JSONResponse | None:
        theirs = body.get("network")
        if theirs is not None:
            self.networks_seen.append(theirs)
        for fact, ours in (self.network or {}).items():
            if theirs is not None and theirs.get(fact) != ours:
                message = f"{fact}: the backend has {ours!r}, the pooler has {theirs.get(fact)!r}"
                return JSONResponse({"error": {"code": "network_mismatch", "message": message}}, 409)
        return None

    async def _heartbeat(self, request: Request) -> JSONResponse:
        w.HeartbeatRequest.model_validate(await request.json())
        self.heartbeats += 1
        if (refused := self._other_network(await request.json())) is not None:
            return refused
        plantable = len(self.farmers) if self.plantable is None else self.plantable
        return _json(
            w.HeartbeatResponse(
                pooler_id=uuid.UUID(self.pooler_id),
                received_at=datetime.now(UTC),
                plantable_farmers=plantable,
            )
        )

    async def _plant(self, request: Request) -> JSONResponse:
        if (busy := self._unavailable()) is not None:
            return busy
        raw = await request.json()
        if (refused := self._other_network(raw)) is not None:
            return refused
        body = w.PlantRequest.model_validate(raw)
        target = body.block_index
        async with self.lock:
            self.plant_requests.append(target)
            farm = await self.gateway.farm_state()
            ripe = farm.block_start is not None and farm.close_time >= farm.block_start + self.interval
            current = farm.index + 1 if ripe else farm.index
            todo = [f for f in self.farmers if (f.farmer_id, current) not in self.plantings]
            eligible = len(self.farmers)
            if self.unready > 0:
                self.unready -= 1
                todo, eligible = [], 0
            failed: list[w.FailedPlant] = []
            for farmer in [f for f in todo if self.fail_plants.get(f.farmer_id, 0) > 0]:
                self.fail_plants[farmer.farmer_id] -= 1
                todo.remove(farmer)
                failed.append(
                    w.FailedPlant(
                        farmer_id=uuid.UUID(farmer.farmer_id),
                        error=ErrorCode.RPC_TIMEOUT,
                        message="RPC request timed out (all endpoints)",
                        attributed_to=Attribution.CHAIN,
                    )
                )
            results = await asyncio.gather(
                *(self.gateway.plant(f.keypair, f.stake) for f in todo), return_exceptions=True
            )
            for farmer, result in zip(todo, results, strict=True):
                if isinstance(result, ContractError | GatewayError):
                    failed.append(
                        w.FailedPlant(
                            farmer_id=uuid.UUID(farmer.farmer_id),
                            error=_code(result),
                            message=str(result),
                            attributed_to=Attribution.FARMER,
                        )
                    )
                    continue
                if isinstance(result, BaseException):
                    raise result
                state = await self.gateway.farm_state()
                entropy = state.entropy if state.index == result.index else None
                self.plantings[(farmer.farmer_id, result.index)] = w.PlantedFarmer(
                    farmer_id=uuid.UUID(farmer.farmer_id),
                    custodial_wallet=farmer.keypair.public_key,
                    stake_amount=farmer.stake,
                    plant_tx_hash=result.tx_hash,
                    block_index=result.index,
                    entropy=(entropy or bytes(32)).hex(),
                    already_planted=False,
                )
            index = max((i for _, i in self.plantings), default=current)
            planted = [p for (f, i), p in self.plantings.items() if i == index]
        summary = w.PlantSummary(
            requested_block_index=target,
            farm_index=farm.index,
            eligible=eligible,
            planted=len(planted),
            already_planted=0,
            failed=len(failed),
            skipped_capacity=0,
            total_staked=sum(p.stake_amount for p in planted),
            xlm_fees=0,
            duration_ms=0,
        )
        return _json(w.PlantResponse(planted_farmers=planted, failed_plants=failed, summary=summary))

    async def _work(self, request: Request) -> JSONResponse:
        if (busy := self._unavailable()) is not None:
            return busy
        body = w.WorkCompleteRequest.model_validate(await request.json())
        index = body.block_index
        self.works.setdefault(index, []).extend(r.model_dump(mode="json") for r in body.work_results)
        planted = {f for (f, i) in self.plantings if i == index}
        reported = {str(r.farmer_id) for r in body.work_results}
        return _json(
            w.WorkCompleteResponse(
                block_index=index,
                work_recorded=len(body.work_results),
                rejected=[],
                compensation_amount=1_000 * len(planted - reported),
                compensations=[],
                ready_for_harvest=[
                    w.ReadyForHarvest(farmer_id=uuid.UUID(f), block_index=index) for f in sorted(reported)
                ],
            )
        )

    async def _harvest(self, request: Request) -> JSONResponse:
        if (busy := self._unavailable()) is not None:
            return busy
        body = w.HarvestRequest.model_validate(await request.json())
        keys = {f.farmer_id: f.keypair.public_key for f in self.farmers}
        results: list[w.HarvestResult] = []
        failed: list[w.FailedHarvest] = []
        for block in body.harvest_blocks:
            for farmer_uuid in block.farmer_ids:
                farmer_id = str(farmer_uuid)
                try:
                    out = await self.gateway.harvest(self.harvester, keys[farmer_id], block.block_index)
                except (ContractError, GatewayError) as exc:
                    failed.append(
                        w.FailedHarvest(
                            farmer_id=farmer_uuid,
                            block_index=block.block_index,
                            error=_code(exc),
                            message=str(exc),
                            attributed_to=Attribution.CHAIN,
                        )
                    )
                    continue
                entry = w.HarvestResult(
                    farmer_id=farmer_uuid,
                    block_index=out.index,
                    reward=out.reward,
                    stake_returned=0,
                    harvest_tx_hash=out.tx_hash,
                    pooler_share=0,
                    platform_fee=0,
                    farmer_reward=out.reward,
                    already_harvested=False,
                )
                results.append(entry)
                self.harvests.append(entry.model_dump(mode="json"))
        total = sum(r.reward for r in results)
        return _json(w.HarvestResponse(harvest_results=results, failed_harvests=failed, total_rewards=total))
