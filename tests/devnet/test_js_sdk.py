"""The devnet driven by a client nobody here wrote: the official JavaScript SDK.

``js/farmer.mjs`` (``@stellar/stellar-sdk``, the exact version pinned in
``js/package-lock.json``, installed here with ``npm ci``) plants, works and harvests
through ``contract.Client.from(farm)`` — the client built from the spec in the farm's
code entry — with a pooler paying and the farmer signing its auth entry with
``signAuthEntries()``'s defaults; then it reads getLatestLedger, getLedgers,
getTransactions, getEvents and getAssetBalance. Every value it reports is checked
against what the Python side reads.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stellar_sdk import scval
from stellar_sdk import xdr as sx

from kalepool.devnet.testing import DevnetHandle, running_devnet
from kalepool.kale.errors import FarmErrorCode
from kalepool.kale.maths import reward
from tests.devnet.helpers import KALE, block, farm_instance, kale_balance, mine, pail, plant

JS = Path(__file__).parent / "js"
SDK_VERSION = json.loads((JS / "package.json").read_text())["dependencies"]["@stellar/stellar-sdk"]


@pytest.fixture(scope="session")
def js_sdk() -> Path:
    """``npm ci`` of the pinned SDK (once per lock file; one installer at a time)."""
    npm = shutil.which("npm")
    assert npm is not None and shutil.which("node") is not None, "Node 20 and npm are needed (README)"
    lock = (JS / "package-lock.json").read_bytes()
    stamp = JS / "node_modules" / ".kalepool-lock"
    with (JS / ".npm-install.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.read_text() != hashlib.sha256(lock).hexdigest():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
                cwd=JS,
                check=True,
                capture_output=True,
                timeout=300,
            )
            stamp.write_text(hashlib.sha256(lock).hexdigest())
    installed = json.loads((JS / "node_modules/@stellar/stellar-sdk/package.json").read_text())
    assert installed["version"] == SDK_VERSION
    return JS / "farmer.mjs"


class Farmer:
    """The JS farmer process: one JSON command in, one JSON reply out."""

    def __init__(self, script: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            ["node", str(script), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def __call__(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        assert reply.pop("ok"), reply.get("error")
        return reply

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write('{"op": "exit"}\n')
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)


@pytest.fixture
def ticking() -> Iterator[DevnetHandle]:
    """A devnet whose timer closes a ledger every 0.2 s (one chain second each): the
    SDK waits for its transactions as it would on a network."""
    with running_devnet(seed=11, ledger_seconds=0.2, time_scale=5, auto_close=True) as devnet:
        yield devnet


def tx_status(devnet: DevnetHandle, tx_hash: str) -> dict[str, Any]:
    got: dict[str, Any] = devnet.rpc("getTransaction", hash=tx_hash)
    return got


def wait_applied(devnet: DevnetHandle, tx_hash: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (got := tx_status(devnet, tx_hash))["status"] == "NOT_FOUND":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return got


def test_a_js_sdk_farmer_plants_works_harvests_and_reads_what_python_reads(
    js_sdk: Path, ticking: DevnetHandle
) -> None:
    devnet = ticking
    pooler = devnet.new_account()
    farmer = devnet.new_account(kale=100 * KALE)
    starter = devnet.new_account(kale=10 * KALE)
    start = devnet.latest_ledger()
    wait_applied(devnet, plant(devnet, starter, KALE, close=False).send.hash)  # block i exists
    index = farm_instance(devnet).farm_index
    current = block(devnet, index)
    assert current is not None
    nonce, work_hash = mine(index, current.entropy, farmer.public_key, 1)
    js = Farmer(
        js_sdk,
        devnet.rpc_url,
        devnet.passphrase,
        devnet.farm_contract_id,
        pooler.secret,
        farmer.secret,
        devnet.kale_issuer.public_key,
    )
    try:
        planted = js(op="plant", amount=str(10 * KALE))
        assert planted["signers"] == [farmer.public_key]  # the farmer's auth entry, signed in JS
        assert planted["status"] == "SUCCESS" and tx_status(devnet, planted["hash"])["status"] == "SUCCESS"
        p = pail(devnet, farmer.public_key, index)
        assert p is not None and p.stake == 10 * KALE and p.sequence == planted["ledger"]
        assert kale_balance(devnet, farmer.public_key) == 90 * KALE

        worked = js(op="work", hash=work_hash.hex(), nonce=str(nonce))
        work_ledger = tx_status(devnet, worked["hash"])["ledger"]
        assert worked["status"] == "SUCCESS" and worked["gap"] == work_ledger - p.sequence
        p = pail(devnet, farmer.public_key, index)
        assert p is not None and p.gap == worked["gap"] and p.zeros is not None and p.zeros >= 1

        devnet.advance_time(300)  # block i is over once the next ledger closes; a plant then rolls it over
        after = devnet.latest_ledger()
        while devnet.latest_ledger() == after:
            time.sleep(0.05)
        wait_applied(devnet, plant(devnet, starter, 0, close=False).send.hash)
        final = block(devnet, index)
        assert final is not None
        expected = reward(final, p, index)  # the contract's formula, on what Python reads
        harvested = js(op="harvest", index=index)
        got = tx_status(devnet, harvested["hash"])
        meta = sx.TransactionMeta.from_xdr(got["resultMetaXdr"]).v4
        assert (
            meta is not None and meta.soroban_meta is not None and meta.soroban_meta.return_value is not None
        )
        assert int(harvested["reward"]) == expected == scval.to_native(meta.soroban_meta.return_value)
        assert kale_balance(devnet, farmer.public_key) == 100 * KALE + expected

        seen = js(op="read", startLedger=start)
    finally:
        js.close()

    latest = seen["latest"]
    assert (
        latest["protocolVersion"] == 23
        and latest["headerSequence"] == latest["metaSequence"] == latest["sequence"]
    )
    ledgers = devnet.soroban_server().get_ledgers(start, limit=200)
    hashes = {i.sequence: i.hash for i in ledgers.ledgers}
    assert latest["id"] == latest["metaHash"] == hashes[latest["sequence"]]
    for item in seen["ledgers"]:
        assert item["hash"] == item["headerHash"] == hashes[item["sequence"]]
        python_meta = sx.LedgerCloseMeta.from_xdr(
            next(i.metadata_xdr for i in ledgers.ledgers if i.sequence == item["sequence"])
        )
        assert item["metaTransactions"] == len(python_meta.v2.tx_processing)  # type: ignore[union-attr]
    assert [i["sequence"] for i in seen["ledgers"]] == list(range(start, start + len(seen["ledgers"])))

    transactions = devnet.soroban_server().get_transactions(start, limit=200).transactions
    python_txs = {t.transaction_hash: t for t in transactions}
    for tx in seen["transactions"]:
        mine_ = python_txs[tx["hash"]]
        assert (tx["status"], tx["ledger"], tx["applicationOrder"]) == (
            mine_.status,
            mine_.ledger,
            mine_.application_order,
        )
        assert int(tx["feeCharged"]) == sx.TransactionResult.from_xdr(mine_.result_xdr).fee_charged.int64
        assert tx["feeEvents"] == 2  # charged, then the unused refundable part refunded
    js_hashes = [t["hash"] for t in seen["transactions"]]
    assert {planted["hash"], worked["hash"], harvested["hash"]} <= set(js_hashes)
    by_hash = {t["hash"]: t for t in seen["transactions"]}
    assert by_hash[worked["hash"]]["returnValue"] == str(worked["gap"])
    assert by_hash[harvested["hash"]]["returnValue"] == str(expected)

    events = devnet.rpc(
        "getEvents", startLedger=start, endLedger=latest["sequence"] + 1, pagination={"limit": 1000}
    )
    assert [e["id"] for e in seen["events"]] == [e["id"] for e in events["events"]]
    mints = [e for e in seen["events"] if e["topics"][0] == "mint" and e["txHash"] == harvested["hash"]]
    assert [int(e["value"]) for e in mints] == [10 * KALE + expected]
    assert mints[0]["contractId"] == devnet.kale_sac_id

    assert seen["balance"]["amount"] == str(kale_balance(devnet, farmer.public_key))
    assert seen["wasm"]["valid"] is True
    assert {"plant", "work", "harvest"} <= set(seen["wasm"]["functions"])
    assert seen["errors"] == [[code.contract_name, int(code)] for code in FarmErrorCode]
