"""Test helpers: an in-process devnet on a free port, its controls, funded accounts.

    from kalepool.devnet.testing import running_devnet

    with running_devnet(block_interval=30) as devnet:
        farmer = devnet.new_account(kale=100 * KALE)       # XLM + trustline + KALE
        server = devnet.soroban_server()                  # stellar_sdk.SorobanServer
        result = devnet.invoke(farmer, "plant", [scval.to_address(farmer.public_key),
                                                 scval.to_int128(10 * KALE)])
        devnet.close_ledgers(60)                          # no sleeping for the chain

The ledger timer is off by default and the clock is virtual (each closed ledger adds
``ledger_seconds``), so tests are deterministic. Everything goes through HTTP: the
controls are the devnet's ``devnet_*`` JSON-RPC methods.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from stellar_sdk import Keypair, SorobanServer, TransactionBuilder, TransactionEnvelope
from stellar_sdk import xdr as sx
from stellar_sdk.soroban_rpc import GetTransactionResponse, SendTransactionResponse

from kalepool.devnet.engine import ClockMode, DevnetConfig, homesteader_keypair, issuer_keypair
from kalepool.devnet.server import DevnetServer
from kalepool.errors import KalePoolError

KALE = 10_000_000  # stroops per KALE
XLM = 10_000_000


class ControlError(KalePoolError, RuntimeError):
    """A ``devnet_*`` control answered with a JSON-RPC error."""

    code = "devnet_control_error"

    def __init__(self, rpc_code: int, message: str) -> None:
        super().__init__(f"{rpc_code}: {message}")
        self.rpc_code = rpc_code  # the JSON-RPC error code (-32602, ...)
        self.message = message


@dataclass
class InvokeResult:
    """What :meth:`DevnetHandle.invoke` saw: the send and the final getTransaction."""

    envelope: TransactionEnvelope
    send: SendTransactionResponse
    result: GetTransactionResponse | None

    @property
    def status(self) -> str:
        return self.result.status.value if self.result is not None else self.send.status.value

    @property
    def return_value(self) -> sx.SCVal | None:
        if self.result is None or self.result.result_meta_xdr is None:
            return None
        meta = sx.TransactionMeta.from_xdr(self.result.result_meta_xdr)
        assert meta.v4 is not None
        return meta.v4.soroban_meta.return_value if meta.v4.soroban_meta is not None else None


class DevnetHandle:
    """A running devnet and its controls (all over HTTP)."""

    def __init__(self, server: DevnetServer) -> None:
        self.server = server
        self.http = httpx.Client(timeout=30)
        self._ids = itertools.count(1)

    # -------------------------------------------------------------- identity

    @property
    def engine(self) -> Any:
        """The engine, for white-box assertions (prefer the RPC in tests)."""
        return self.server.engine

    @property
    def rpc_url(self) -> str:
        return self.server.rpc_url

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def friendbot_url(self) -> str:
        return self.server.friendbot_url

    @property
    def passphrase(self) -> str:
        return self.server.config.passphrase

    @property
    def farm_contract_id(self) -> str:
        return self.server.config.farm_contract_id

    @property
    def kale_sac_id(self) -> str:
        return self.server.config.kale_sac_id

    @property
    def kale_issuer(self) -> Keypair:
        return issuer_keypair()

    @property
    def homesteader(self) -> Keypair:
        return homesteader_keypair()

    def soroban_server(self) -> SorobanServer:
        return SorobanServer(self.rpc_url)

    def info(self) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/devnet")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    # --------------------------------------------------------------- controls

    def rpc(self, method: str, /, **params: Any) -> Any:
        """Call a JSON-RPC method; raises :class:`ControlError` on an error reply."""
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or None}
        response = self.http.post(self.rpc_url, json=body)
        data = response.json()
        if "error" in data:
            raise ControlError(data["error"]["code"], data["error"]["message"])
        return data["result"]

    def close_ledgers(self, count: int = 1) -> dict[str, Any]:
        result: dict[str, Any] = self.rpc("devnet_closeLedgers", count=count)
        return result

    def advance_time(self, seconds: float, close: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.rpc("devnet_advanceTime", seconds=seconds, close=close)
        return result

    def snapshot(self) -> int:
        return int(self.rpc("devnet_snapshot")["id"])

    def revert(self, snapshot_id: int) -> None:
        self.rpc("devnet_revert", id=snapshot_id)

    def fund(self, address: str, xlm: int | None = None, kale: int = 0) -> dict[str, Any]:
        params: dict[str, Any] = {"address": address, "kale": kale}
        if xlm is not None:
            params["xlm"] = xlm
        result: dict[str, Any] = self.rpc("devnet_fund", **params)
        return result

    def new_account(self, xlm: int = 1_000 * XLM, kale: int = 0) -> Keypair:
        """A random keypair whose account exists with ``xlm`` (and a KALE trustline
        holding ``kale`` when > 0), made in one control call (no ledger closes)."""
        kp = Keypair.random()
        self.fund(kp.public_key, xlm=xlm, kale=kale)
        return kp

    def friendbot(self, address: str) -> httpx.Response:
        return self.http.get(self.friendbot_url, params={"addr": address})

    def latest_ledger(self) -> int:
        return int(self.rpc("getLatestLedger")["sequence"])

    # ---------------------------------------------------------- transactions

    def invoke(
        self,
        source: Keypair,
        function: str,
        args: Sequence[sx.SCVal],
        *,
        contract: str | None = None,
        close: bool = True,
        signers: Sequence[Keypair] = (),
    ) -> InvokeResult:
        """Build, simulate (``prepare_transaction``), sign, send and (with ``close``)
        apply one contract call, all through ``SorobanServer``. ``prepare`` errors
        (a failing simulation) propagate as ``PrepareTransactionException``."""
        server = self.soroban_server()
        account = server.load_account(source.public_key)
        tx = (
            TransactionBuilder(account, self.passphrase, base_fee=100)
            .append_invoke_contract_function_op(contract or self.farm_contract_id, function, list(args))
            .set_timeout(300)
            .build()
        )
        prepared = server.prepare_transaction(tx)
        prepared.sign(source)
        for signer in signers:
            prepared.sign(signer)
        return self.submit(prepared, close=close)

    def submit(self, envelope: TransactionEnvelope, *, close: bool = True) -> InvokeResult:
        server = self.soroban_server()
        sent = server.send_transaction(envelope)
        result = None
        if close and sent.status.value == "PENDING":
            self.close_ledgers(1)
            result = server.get_transaction(sent.hash)
        return InvokeResult(envelope, sent, result)

    def close(self) -> None:
        self.http.close()


@contextmanager
def running_devnet(
    *,
    block_interval: int = 300,
    ledger_seconds: float = 5.0,
    temp_ttl: int = 17_280,
    auto_close: bool = False,
    clock: ClockMode = "virtual",
    state_file: str | Path | None = None,
    seed: int | None = None,
    time_scale: float = 1.0,
) -> Iterator[DevnetHandle]:
    """Start a devnet on a free local port for the duration of the ``with`` block."""
    config = DevnetConfig(
        ledger_seconds=ledger_seconds,
        time_scale=time_scale,
        block_interval=block_interval,
        temp_ttl=temp_ttl,
        clock=clock,
        seed=seed,
    )
    server = DevnetServer(config, port=0, auto_close=auto_close, state_file=state_file)
    server.start()
    handle = DevnetHandle(server)
    try:
        yield handle
    finally:
        handle.close()
        server.stop()
