"""The pool backend's REST API as its people call it: the operator (admin token) and the
farmers (their tokens). One httpx client for ``kalepool admin``, ``kalepool farmer`` and
the demo; the pooler's own calls live in :mod:`kalepool.pooler.client`.

Connection failures, 429, 502 and 503 are retried a few times (with the answer's
``Retry-After``); any other answer outside 2xx raises at once. Errors carry the API's
machine-readable ``error.code``: :class:`ApiRejected` (4xx: the request or its credential
must change) and :class:`ApiUnavailable` (no usable answer).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from kalepool.errors import KalePoolError

__all__ = ["API_PREFIX", "ApiRejected", "ApiUnavailable", "PoolApi", "PoolApiError", "RegisteredFarmer"]

API_PREFIX = "/api/v1"
RETRY_STATUSES = (429, 502, 503)


class PoolApiError(KalePoolError):
    """The backend did not do what was asked."""

    code = "pool_api_error"


class ApiUnavailable(PoolApiError):
    """No usable answer: the backend cannot be reached, or kept answering 429/502/503."""

    code = "api_unavailable"


class ApiRejected(PoolApiError, ValueError):
    """A 4xx answer: ``status``, the API's ``error_code`` and ``message``."""

    code = "api_rejected"

    def __init__(self, method: str, path: str, status: int, error_code: str, message: str) -> None:
        super().__init__(f"{method} {path}: {status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message


@dataclass
class RegisteredFarmer:
    """A farmer the demo registered (its token kept to act as that farmer)."""

    farmer_id: str
    custodial_wallet: str
    token: str
    pooler_index: int
    stake_percentage: float
    deposit: int
    payout_wallet: str


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()["error"]
        return str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}", response.text[:300]


class PoolApi:
    """``/api/v1`` of one backend, as the operator (``admin_token``) and as farmers (a
    token per call). Use it as an async context manager, or call :meth:`close`."""

    def __init__(
        self,
        base_url: str,
        admin_token: str | None = None,
        *,
        timeout: float = 120.0,
        retries: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.base_url + API_PREFIX, timeout=timeout, transport=transport
        )
        self.admin_token = admin_token
        self.retries = retries

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> PoolApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        anonymous: bool = False,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """One request (retried while the backend is away); the answer's JSON."""
        credential = None if anonymous else token or self.admin_token
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        for attempt in range(self.retries + 1):
            try:
                response = await self.http.request(method, path, json=body, headers=headers)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ApiUnavailable(f"{method} {path}: cannot reach {self.base_url}: {exc}") from None
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            if response.is_success:
                return response.json() if response.content else None
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                await asyncio.sleep(float(response.headers.get("Retry-After", 0.5 * (attempt + 1))))
                continue
            code, message = _error_of(response)
            if response.status_code < 500:
                raise ApiRejected(method, path, response.status_code, code, message)
            raise ApiUnavailable(f"{method} {path}: {response.status_code} {code}: {message}")
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------- the operator

    async def create_pooler(
        self, name: str, public_key: str, reward_share_bps: int, *, max_farmers: int | None = None
    ) -> dict[str, Any]:
        """``POST /poolers``: ``{"pooler": {...}, "api_key": ...}`` (the key shown only here)."""
        body: dict[str, Any] = {"name": name, "public_key": public_key, "reward_share_bps": reward_share_bps}
        if max_farmers is not None:
            body["max_farmers"] = max_farmers
        data: dict[str, Any] = await self.call("POST", "/poolers", body=body)
        return data

    async def poolers(self) -> list[dict[str, Any]]:
        data = await self.call("GET", "/poolers")
        return list(data["poolers"])

    # -------------------------------------------------------------- the farmers

    async def register_farmer(
        self, pooler_id: str, payout_wallet: str, stake_percentage: float
    ) -> dict[str, Any]:
        """``POST /farmers`` (anonymous): the farmer, its funding steps and its token."""
        body = {"pooler_id": pooler_id, "payout_wallet": payout_wallet, "stake_percentage": stake_percentage}
        data: dict[str, Any] = await self.call("POST", "/farmers", anonymous=True, body=body)
        return data

    async def confirm_funding(self, farmer_id: str, token: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.call("POST", f"/farmers/{farmer_id}/confirm-funding", token=token)
        return data

    async def farmer(self, farmer_id: str, token: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.call("GET", f"/farmers/{farmer_id}", token=token)
        return data

    async def update_farmer(self, farmer_id: str, token: str, **changes: Any) -> dict[str, Any]:
        """``PATCH /farmers/{id}`` with the fields given (stake_percentage, payout_wallet, pooler_id)."""
        body = {k: v for k, v in changes.items() if v is not None}
        data: dict[str, Any] = await self.call("PATCH", f"/farmers/{farmer_id}", token=token, body=body)
        return data

    async def leave(self, farmer_id: str, token: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.call("POST", f"/farmers/{farmer_id}/leave", token=token)
        return data

    # --------------------------------------------------------------- a pooler

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
