"""The HTTP calls the demo makes as the operator and as the farmers (real API, real auth)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from kalepool.errors import KalePoolError

__all__ = ["ApiError", "PoolApi", "RegisteredFarmer"]


class ApiError(KalePoolError):
    code = "api_error"

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {body[:300]}")
        self.status = status


@dataclass
class RegisteredFarmer:
    farmer_id: str
    custodial_wallet: str
    token: str
    pooler_index: int
    stake_percentage: float
    deposit: int
    payout_wallet: str


class PoolApi:
    """``/api/v1`` as the operator (admin token) and as farmers (their tokens)."""

    def __init__(self, base_url: str, admin_token: str, *, timeout: float = 120.0) -> None:
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/api/v1", timeout=timeout)
        self.admin = {"Authorization": f"Bearer {admin_token}"}

    async def close(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        anonymous: bool = False,
        body: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200, 201),
        retries: int = 5,
    ) -> Any:
        headers = {} if anonymous else {"Authorization": f"Bearer {token}"} if token else self.admin
        for attempt in range(retries + 1):
            try:
                response = await self.http.request(method, path, json=body, headers=headers)
            except httpx.TransportError:
                if attempt == retries:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            if response.status_code in ok:
                return response.json() if response.content else None
            if response.status_code in (429, 502, 503) and attempt < retries:
                await asyncio.sleep(float(response.headers.get("Retry-After", 0.5 * (attempt + 1))))
                continue
            raise ApiError(method, path, response.status_code, response.text)
        raise AssertionError("unreachable")  # pragma: no cover

    async def create_pooler(self, name: str, public_key: str, reward_share_bps: int) -> tuple[str, str]:
        data = await self.call(
            "POST",
            "/poolers",
            body={"name": name, "public_key": public_key, "reward_share_bps": reward_share_bps},
        )
        return str(data["pooler"]["pooler_id"]), str(data["api_key"])

    async def register_farmer(
        self, pooler_id: str, payout_wallet: str, stake_percentage: float
    ) -> dict[str, Any]:
        body = {"pooler_id": pooler_id, "payout_wallet": payout_wallet, "stake_percentage": stake_percentage}
        data: dict[str, Any] = await self.call(
            "POST",
            "/farmers",
            anonymous=True,
            body=body,
        )
        return data

    async def confirm_funding(self, farmer: RegisteredFarmer) -> dict[str, Any]:
        data: dict[str, Any] = await self.call(
            "POST", f"/farmers/{farmer.farmer_id}/confirm-funding", token=farmer.token
        )
        return data

    async def farmer(self, farmer: RegisteredFarmer) -> dict[str, Any]:
        data: dict[str, Any] = await self.call("GET", f"/farmers/{farmer.farmer_id}", token=farmer.token)
        return data

    async def pooler_farmers(self, api_key: str, *, offset: int = 0) -> dict[str, Any]:
        data: dict[str, Any] = await self.call(
            "GET", f"/pooler/farmers?limit=1000&offset={offset}", token=api_key
        )
        return data

    async def pooler_ready_farmers(self, api_key: str) -> int:
        """How many of the pooler's farmers are ready to plant (every page read)."""
        ready, offset = 0, 0
        while True:
            page = await self.pooler_farmers(api_key, offset=offset)
            ready += sum(1 for f in page["farmers"] if f["funding_state"] == "ready")
            offset += page["count"]
            if not page["count"] or offset >= page["total"]:
                return ready
