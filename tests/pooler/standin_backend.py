"""A small stand-in for the backend's pooler API, planting and harvesting on a devnet.

It holds the farmers' keypairs (as the real backend holds custodial keys), answers the
pooler's five calls with the shapes of ``backend/api/schemas.py``, and records what it
was asked, so tests can drive :class:`~kalepool.pooler.service.PoolerService` end to end
on the devnet without PostgreSQL. Idempotent like the real one: a farmer is planted at
most once per block; a repeated plant-request answers with the plantings already made.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from stellar_sdk import Keypair

from kalepool.kale.errors import ContractError
from kalepool.stellar import FarmGateway, GatewayError


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
    plantings: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    works: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    harvests: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: int = 0
    fail_next: int = 0  # answer 503 to this many requests first
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
        return JSONResponse({"pooler_id": self.pooler_id, "farmers": [], "count": 0, "total": 0})

    async def _heartbeat(self, request: Request) -> JSONResponse:
        self.heartbeats += 1
        return JSONResponse({"pooler_id": self.pooler_id, "received_at": "now", "plantable_farmers": 0})

    async def _plant(self, request: Request) -> JSONResponse:
        if (busy := self._unavailable()) is not None:
            return busy
        body = await request.json()
        target = int(body["block_index"])
        async with self.lock:
            self.plant_requests.append(target)
            farm = await self.gateway.farm_state()
            ripe = farm.block_start is not None and farm.close_time >= farm.block_start + self.interval
            current = farm.index + 1 if ripe else farm.index
            todo = [f for f in self.farmers if (f.farmer_id, current) not in self.plantings]
            results = await asyncio.gather(
                *(self.gateway.plant(f.keypair, f.stake) for f in todo), return_exceptions=True
            )
            failed = []
            for farmer, result in zip(todo, results, strict=True):
                if isinstance(result, ContractError | GatewayError):
                    failed.append(
                        {
                            "farmer_id": farmer.farmer_id,
                            "error": getattr(result, "name", result.code),
                            "message": str(result),
                            "attributed_to": "farmer",
                        }
                    )
                    continue
                if isinstance(result, BaseException):
                    raise result
                state = await self.gateway.farm_state()
                entropy = state.entropy if state.index == result.index else None
                self.plantings[(farmer.farmer_id, result.index)] = {
                    "farmer_id": farmer.farmer_id,
                    "custodial_wallet": farmer.keypair.public_key,
                    "stake_amount": farmer.stake,
                    "plant_tx_hash": result.tx_hash,
                    "block_index": result.index,
                    "entropy": (entropy or bytes(32)).hex(),
                }
            index = max((i for _, i in self.plantings), default=current)
            planted = [p for (f, i), p in self.plantings.items() if i == index]
        return JSONResponse(
            {
                "planted_farmers": planted,
                "failed_plants": failed,
                "summary": {"requested": len(self.farmers), "planted": len(planted), "failed": len(failed)},
            }
        )

    async def _work(self, request: Request) -> JSONResponse:
        if (busy := self._unavailable()) is not None:
            return busy
        body = await request.json()
        index = int(body["block_index"])
        self.works.setdefault(index, []).extend(body["work_results"])
        planted = {f for (f, i) in self.plantings if i == index}
        reported = {w["farmer_id"] for w in body["work_results"]}
        return JSONResponse(
            {
                "work_recorded": len(body["work_results"]),
                "rejected": [],
                "compensation_amount": 1_000 * len(planted - reported),
                "ready_for_harvest": [{"farmer_id": f, "block_index": index} for f in reported],
            }
        )

    async def _harvest(self, request: Request) -> JSONResponse:
        if (busy := self._unavailable()) is not None:
            return busy
        body = await request.json()
        keys = {f.farmer_id: f.keypair.public_key for f in self.farmers}
        results, failed, total = [], [], 0
        for block in body["harvest_blocks"]:
            for farmer_id in block["farmer_ids"]:
                try:
                    out = await self.gateway.harvest(self.harvester, keys[farmer_id], block["block_index"])
                except (ContractError, GatewayError) as exc:
                    failed.append(
                        {"farmer_id": farmer_id, "block_index": block["block_index"],
                         "error": getattr(exc, "name", exc.code), "message": str(exc)}
                    )
                    continue
                total += out.reward
                entry = {
                    "farmer_id": farmer_id,
                    "block_index": out.index,
                    "reward": out.reward,
                    "stake_returned": 0,
                    "harvest_tx_hash": out.tx_hash,
                }
                results.append(entry)
                self.harvests.append(entry)
        return JSONResponse({"harvest_results": results, "failed_harvests": failed, "total_rewards": total})
