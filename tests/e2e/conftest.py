"""End-to-end fixtures: one pool for the whole session, faults injected at the devnet.

The cluster is the demo's (:class:`kalepool.demo.Cluster`): PostgreSQL (the test server
or an embedded one), the devnet in this process (12 s blocks, 1 s ledgers, wall clock),
the backend as a child process; each test registers its own pooler and farmers through
the API and runs ``kalepool pooler run`` as child processes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from stellar_sdk import Address, TransactionEnvelope, scval
from stellar_sdk import xdr as sx

from kalepool.demo import Cluster
from kalepool.devnet import DevnetServer
from kalepool.kale.networks import DEVNET_PASSPHRASE
from kalepool.testing.postgres import ENV_VAR, test_database_url

INTERVAL = 12
LEDGER_SECONDS = 1.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end to end (PostgreSQL, devnet, backend and pooler processes)")


@dataclass
class Sent:
    """A transaction the devnet received (sendTransaction), decoded when it calls the farm."""

    at: float
    tx_hash: str
    function: str | None
    farmer: str | None
    hash: str | None


@dataclass
class Faults:
    """Wraps the devnet's JSON-RPC handler: records every sendTransaction and, while a
    fault is on, answers JSON-RPC errors (``error``) or stalls every request (``stall``)."""

    server: DevnetServer
    mode: str | None = None
    until: float = 0.0
    stall: float = 0.0
    sent: list[Sent] = field(default_factory=list)
    injected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> None:
        original = self.server.rpc.handle_bytes

        def handle(body: bytes) -> Any:
            self._record(body)
            mode = self.mode if time.monotonic() < self.until else None
            if mode == "error":
                self.injected += 1
                try:
                    rid = json.loads(body).get("id")
                except (ValueError, AttributeError):
                    rid = None
                return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32603, "message": "injected fault"}}
            if mode == "stall":
                self.injected += 1
                time.sleep(self.stall)
            return original(body)

        self.server.rpc.handle_bytes = handle  # type: ignore[method-assign]

    def errors_for(self, seconds: float) -> None:
        self.mode, self.until = "error", time.monotonic() + seconds

    def stall_for(self, seconds: float, stall: float) -> None:
        self.mode, self.until, self.stall = "stall", time.monotonic() + seconds, stall

    def _record(self, body: bytes) -> None:
        try:
            request = json.loads(body)
        except ValueError:
            return
        for item in request if isinstance(request, list) else [request]:
            if not isinstance(item, dict) or item.get("method") != "sendTransaction":
                continue
            try:
                envelope = TransactionEnvelope.from_xdr(item["params"]["transaction"], DEVNET_PASSPHRASE)
            except Exception:
                continue
            function = farmer = digest = None
            ops = envelope.transaction.operations
            host = getattr(ops[0], "host_function", None) if len(ops) == 1 else None
            if host is not None and host.invoke_contract is not None:
                ic = host.invoke_contract
                function = ic.function_name.sc_symbol.decode()
                args = list(ic.args)
                if args and args[0].type == sx.SCValType.SCV_ADDRESS:
                    farmer = Address.from_xdr_sc_address(args[0].address).address
                if function == "work" and len(args) > 1:
                    digest = scval.from_bytes(args[1]).hex()
            with self.lock:
                self.sent.append(Sent(time.monotonic(), envelope.hash_hex(), function, farmer, digest))

    def calls(self, function: str, farmers: set[str], since: float = 0.0) -> list[Sent]:
        with self.lock:
            return [s for s in self.sent if s.function == function and s.farmer in farmers and s.at >= since]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    url = os.environ.get(ENV_VAR) or test_database_url()
    with Cluster(block_interval=INTERVAL, ledger_seconds=LEDGER_SECONDS, database_url=url) as c:
        c.start_database()
        c.start_devnet()
        c.start_backend()
        yield c


@pytest.fixture(scope="session")
def faults(cluster: Cluster) -> Faults:
    assert cluster.devnet is not None
    f = Faults(cluster.devnet)
    f.install()
    return f
