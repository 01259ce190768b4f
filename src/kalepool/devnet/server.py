"""The devnet over HTTP: JSON-RPC at ``POST /``, ``GET /devnet``, ``GET /friendbot``.

:class:`DevnetServer` runs uvicorn in a background thread on a given (or free) port,
and, unless ``auto_close`` is off, a timer thread that closes a ledger every
``ledger_seconds``. With ``state_file`` set, the state is loaded at start (when the file
exists) and saved atomically after every ledger close.

    with DevnetServer(DevnetConfig(), port=0, auto_close=False) as devnet:
        SorobanServer(devnet.rpc_url).get_latest_ledger()
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kalepool.devnet.engine import Devnet, DevnetConfig, DevnetError
from kalepool.devnet.history import transaction_fields
from kalepool.devnet.ledger import LedgerInfo
from kalepool.devnet.rpc import DevnetRPC
from kalepool.devnet.state import StateWriter, load_state

log = logging.getLogger(__name__)

FRIENDBOT_TIMEOUT = 60.0


class DevnetServer:
    """A devnet served on ``host:port`` (``port=0`` picks a free one)."""

    def __init__(
        self,
        config: DevnetConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        auto_close: bool = True,
        state_file: str | Path | None = None,
    ) -> None:
        self.config = config or DevnetConfig()
        self.host = host
        self.port = port
        self.auto_close = auto_close
        self.state_file = Path(state_file) if state_file is not None else None
        pending: list[str] = []
        state = None
        if self.state_file is not None and self.state_file.exists():
            state, pending = load_state(self.state_file, self.config.passphrase)
        self.engine = Devnet(self.config, state)
        for envelope in pending:
            try:
                self.engine.send(envelope)
            except ValueError:
                log.warning("dropping an undecodable queued transaction from the state file")
        self.writer = StateWriter(self.state_file) if self.state_file is not None else None
        if self.writer is not None:
            self.engine.on_close.append(self._save)
        self.rpc = DevnetRPC(self.engine, self.info)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()
        self._socket: socket.socket | None = None
        self.app = self._build_app()

    # --------------------------------------------------------------- URLs

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rpc_url(self) -> str:
        return f"{self.url}/"

    @property
    def friendbot_url(self) -> str:
        return f"{self.url}/friendbot"

    def info(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "rpc_url": self.rpc_url,
            "friendbot_url": self.friendbot_url,
            "network_passphrase": cfg.passphrase,
            "farm_contract_id": cfg.farm_contract_id,
            "kale_asset": {"code": cfg.kale_code, "issuer": cfg.kale_issuer},
            "kale_sac_id": cfg.kale_sac_id,
            "block_interval": cfg.block_interval,
            "ledger_seconds": cfg.ledger_seconds,
            "time_scale": cfg.time_scale,
            "clock": cfg.clock,
            "ahead_seconds": self.engine.ahead_seconds(),
            "temp_ttl": cfg.temp_ttl,
            "auto_close": self.auto_close,
        }

    # -------------------------------------------------------------- lifecycle

    def start(self) -> DevnetServer:
        if self._thread is not None:
            raise RuntimeError("the devnet server is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        self.rpc.friendbot_url = self.friendbot_url
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"devnet-http-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the devnet HTTP server did not start")
            time.sleep(0.01)
        if self.auto_close:
            self._timer = threading.Thread(target=self._close_loop, name="devnet-ledger-timer", daemon=True)
            self._timer.start()
        if self.writer is not None:
            self._save(self.engine.latest())
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout=10)
            self._timer = None
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._server = None
        if self.writer is not None:
            with self.engine.lock:  # a graceful stop also keeps the queued transactions
                self._save(self.engine.latest())

    def __enter__(self) -> DevnetServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close_loop(self) -> None:
        interval = self.config.ledger_seconds
        next_at = time.monotonic() + interval
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            try:
                self.engine.close_ledger()
            except Exception:  # keep the chain going; a bug is logged, not fatal
                log.exception("ledger close failed")
            next_at += interval
            if next_at < time.monotonic():
                next_at = time.monotonic() + interval

    def _save(self, info: LedgerInfo) -> None:
        assert self.writer is not None
        try:
            self.writer.write(
                self.engine.state, self.config.passphrase, [t.envelope_b64 for t in self.engine.queue]
            )
        except OSError:
            log.exception("cannot write the devnet state file %s", self.state_file)

    # ------------------------------------------------------------------- app

    def _build_app(self) -> Starlette:
        async def rpc(request: Request) -> Response:
            body = await request.body()
            reply = self.rpc.handle_http(request.method, request.headers.get("content-type"), body)
            return Response(reply.body, reply.status, headers=reply.headers, media_type=reply.content_type)

        async def devnet_info(request: Request) -> Response:
            return JSONResponse(self.info())

        async def friendbot(request: Request) -> Response:
            address = request.query_params.get("addr")
            if not address:
                return _problem(400, "Bad Request", "addr: the account to fund is required (?addr=G...)")
            try:
                tx_hash = self.engine.friendbot_tx(address)
            except DevnetError as err:
                return _problem(400, "Bad Request", str(err))
            if not self.auto_close:
                self.engine.close_ledger()
            deadline = time.monotonic() + FRIENDBOT_TIMEOUT
            while (record := self.engine.get_transaction(tx_hash)) is None:
                if time.monotonic() > deadline:
                    return _problem(504, "Timeout", "the friendbot transaction was not applied in time")
                await asyncio.sleep(0.05)
            status = 200 if record.successful else 400
            return JSONResponse(
                {
                    "hash": record.hash,
                    "ledger": record.ledger,
                    "successful": record.successful,
                    "envelope_xdr": record.envelope_xdr,
                    "result_xdr": transaction_fields(record)["resultXdr"],
                    "result_meta_xdr": record.meta.get(),
                },
                status_code=status,
            )

        return Starlette(
            routes=[
                Route("/", rpc, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
                Route("/rpc", rpc, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
                Route("/devnet", devnet_info, methods=["GET"]),
                Route("/friendbot", friendbot, methods=["GET", "POST"]),
            ]
        )


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {
            "type": f"https://stellar.org/horizon-errors/{title.lower().replace(' ', '_')}",
            "title": title,
            "status": status,
            "detail": detail,
        },
        status_code=status,
    )
