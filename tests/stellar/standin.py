"""Small local stand-in servers: a scriptable JSON-RPC endpoint and a Launchtube.

They run an aiohttp web server on 127.0.0.1 (ephemeral port) inside the test's event
loop and record every request, so tests assert on what went out as well as what came
back. A handler returns a :class:`Reply` (a JSON-RPC result or error, an HTTP status,
a raw body, a delay) or a plain ``dict`` result.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

LATEST = {
    "id": "ab" * 32,
    "protocolVersion": 23,
    "sequence": 100,
    "closeTime": "1700000000",
    "headerXdr": "",
    "metadataXdr": "",
}


def fee_distribution(**overrides: int) -> dict[str, Any]:
    dist: dict[str, Any] = {
        "max": "5000",
        "min": "100",
        "mode": "100",
        "p10": "100",
        "p20": "100",
        "p30": "100",
        "p40": "150",
        "p50": "200",
        "p60": "300",
        "p70": "400",
        "p80": "800",
        "p90": "1200",
        "p95": "2500",
        "p99": "4000",
        "transactionCount": "17",
        "ledgerCount": 50,
    }
    dist.update({k: str(v) for k, v in overrides.items()})
    return dist


@dataclass
class Reply:
    result: Any = None
    error: dict[str, Any] | None = None
    status: int = 200
    body: str | None = None  # a raw body instead of JSON-RPC
    delay: float = 0.0


Handler = Callable[[dict[str, Any]], "Reply | dict[str, Any] | Awaitable[Reply | dict[str, Any]]"]


@dataclass
class StandInRpc:
    """A JSON-RPC server whose methods are scripted per test.

    With ``upstream`` set (a real RPC, e.g. the devnet) it is a relay: methods without
    a handler are forwarded, and a handler may call :meth:`forward` itself (to pass a
    request on and still lose or delay its answer).
    """

    handlers: dict[str, Handler] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    url: str = ""
    upstream: str | None = None
    _runner: web.AppRunner | None = None
    _session: ClientSession | None = None

    async def forward(self, method: str, params: Any) -> Reply:
        """Send the request on to ``upstream`` and return its answer as a Reply."""
        assert self.upstream is not None
        if self._session is None:
            self._session = ClientSession()
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        async with self._session.post(self.upstream, json=body) as response:
            data = await response.json()
        if "error" in data:
            return Reply(error=data["error"])
        return Reply(result=data["result"])

    def on(self, method: str, handler: Handler | Reply | dict[str, Any]) -> None:
        if callable(handler):
            self.handlers[method] = handler
        else:
            self.handlers[method] = lambda _params, h=handler: h

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        method, params, rid = payload["method"], payload.get("params"), payload["id"]
        self.calls.append((method, params))
        handler = self.handlers.get(method)
        if handler is None and self.upstream is not None:
            reply: Reply | dict[str, Any] = await self.forward(method, params)
        elif handler is None:
            reply = Reply(error={"code": -32601, "message": "method not found"})
        else:
            reply = handler(params or {})
            if inspect.isawaitable(reply):
                reply = await reply
        if not isinstance(reply, Reply):
            reply = Reply(result=reply)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.body is not None:
            return web.Response(status=reply.status, text=reply.body)
        envelope: dict[str, Any] = {"jsonrpc": "2.0", "id": rid}
        if reply.error is not None:
            envelope["error"] = reply.error
        else:
            envelope["result"] = reply.result
        return web.Response(status=reply.status, text=json.dumps(envelope), content_type="application/json")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)  # cut held answers short
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"
        return self.url

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class StandInLaunchtube:
    """Launchtube's ``POST /``: checks the bearer token and the form, then replies as scripted.

    ``respond(form) -> (status, body)`` decides the answer; ``posts`` records each form.
    """

    token: str
    respond: Callable[[dict[str, str]], Awaitable[tuple[int, Any]] | tuple[int, Any]]
    posts: list[dict[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.headers.append(dict(request.headers))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=401, text="Unauthorized")
        if not request.content_type.startswith(("application/x-www-form-urlencoded", "multipart/")):
            return web.Response(status=400, text=f"expected form data, got {request.content_type}")
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.posts.append(form)
        answer = self.respond(form)
        if inspect.isawaitable(answer):
            answer = await answer
        status, body = answer
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, text=text, content_type="application/json")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)  # cut held answers short
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
