"""RpcClient: failover, timeouts, retries, batching, and SDK errors translated."""

from __future__ import annotations

import socket

import pytest
from stellar_sdk import Keypair

from kalepool.kale.storage import account_ledger_key
from kalepool.stellar.errors import NetworkError, RpcError, RpcTimeout
from kalepool.stellar.rpc import RpcClient

from .standin import LATEST, Reply, StandInRpc, fee_distribution


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


async def test_latest_ledger(standin: StandInRpc) -> None:
    standin.on("getLatestLedger", LATEST)
    async with RpcClient([standin.url], timeout=2) as rpc:
        ledger = await rpc.latest_ledger()
    assert (ledger.sequence, ledger.close_time, ledger.protocol_version) == (100, 1_700_000_000, 23)
    assert ledger.base_reserve is None  # no header sent
    assert standin.calls == [("getLatestLedger", None)]


async def test_http_503_fails_over_and_stays_on_the_good_rpc(
    standin: StandInRpc, standin2: StandInRpc
) -> None:
    standin.on("getLatestLedger", Reply(status=503, body="<html>503 Service Unavailable</html>"))
    standin2.on("getLatestLedger", LATEST)
    async with RpcClient([standin.url, standin2.url], timeout=2, backoff=0.01) as rpc:
        assert (await rpc.latest_ledger()).sequence == 100
        assert rpc.current_url == standin2.url
        await rpc.latest_ledger()
    assert standin.count("getLatestLedger") == 1
    assert standin2.count("getLatestLedger") == 2


async def test_timeout_fails_over(standin: StandInRpc, standin2: StandInRpc) -> None:
    standin.on("getLatestLedger", Reply(result=LATEST, delay=5.0))
    standin2.on("getLatestLedger", LATEST)
    async with RpcClient([standin.url, standin2.url], timeout=1.0, backoff=0.01) as rpc:
        assert (await rpc.latest_ledger()).sequence == 100
        assert rpc.current_url == standin2.url


async def test_connection_refused_fails_over(standin: StandInRpc) -> None:
    standin.on("getLatestLedger", LATEST)
    async with RpcClient([closed_port_url(), standin.url], timeout=1, backoff=0.01) as rpc:
        assert (await rpc.latest_ledger()).sequence == 100


async def test_everything_down_is_a_network_error_after_bounded_tries(standin: StandInRpc) -> None:
    standin.on("getLatestLedger", Reply(status=502, body="bad gateway"))
    async with RpcClient([standin.url], timeout=1, rounds=3, backoff=0.01, max_backoff=0.02) as rpc:
        with pytest.raises(NetworkError, match="HTTP 502"):
            await rpc.latest_ledger()
    assert standin.count("getLatestLedger") == 3


async def test_timeout_is_rpc_timeout(standin: StandInRpc) -> None:
    standin.on("getLatestLedger", Reply(result=LATEST, delay=0.4))
    async with RpcClient([standin.url], timeout=0.1, rounds=1) as rpc:
        with pytest.raises(RpcTimeout):
            await rpc.latest_ledger()


async def test_invalid_params_is_not_retried(standin: StandInRpc, standin2: StandInRpc) -> None:
    standin.on("getTransaction", Reply(error={"code": -32602, "message": "invalid hash"}))
    async with RpcClient([standin.url, standin2.url], timeout=1, backoff=0.01) as rpc:
        with pytest.raises(RpcError) as info:
            await rpc.transaction("ab")
        assert rpc.current_url == standin.url
    assert info.value.rpc_code == -32602
    assert standin.count("getTransaction") == 1 and standin2.count("getTransaction") == 0


async def test_internal_error_is_retried_elsewhere(standin: StandInRpc, standin2: StandInRpc) -> None:
    standin.on("getFeeStats", Reply(error={"code": -32603, "message": "could not submit to core"}))
    standin2.on(
        "getFeeStats",
        {"sorobanInclusionFee": fee_distribution(), "inclusionFee": fee_distribution(), "latestLedger": 9},
    )
    async with RpcClient([standin.url, standin2.url], timeout=1, backoff=0.01) as rpc:
        stats = await rpc.fee_stats()
    assert stats.soroban.at(90) == 1200 and stats.latest_ledger == 9


async def test_malformed_body_is_a_network_error(standin: StandInRpc) -> None:
    standin.on("getLatestLedger", Reply(body='{"unexpected": true}'))
    async with RpcClient([standin.url], timeout=1, rounds=1) as rpc:
        with pytest.raises(NetworkError, match="malformed"):
            await rpc.latest_ledger()


async def test_null_result_is_a_network_error(standin: StandInRpc) -> None:
    standin.on("getLatestLedger", Reply(result=None))
    async with RpcClient([standin.url], timeout=1, rounds=1) as rpc:
        with pytest.raises(NetworkError, match="malformed"):
            await rpc.latest_ledger()


async def test_send_is_never_retried(standin: StandInRpc, standin2: StandInRpc) -> None:
    standin.on("sendTransaction", Reply(status=503, body="down"))
    async with RpcClient([standin.url, standin2.url], timeout=1, backoff=0.01) as rpc:
        with pytest.raises(NetworkError):
            await rpc.send("AAAA")
        assert rpc.current_url == standin2.url  # the next request goes elsewhere
    assert standin.count("sendTransaction") == 1 and standin2.count("sendTransaction") == 0


async def test_ledger_entries_are_batched_by_200(standin: StandInRpc) -> None:
    keys = [account_ledger_key(Keypair.random().public_key) for _ in range(450)]

    def entries(params: dict) -> dict:  # type: ignore[type-arg]
        assert len(params["keys"]) <= 200
        return {"entries": [], "latestLedger": 77}

    standin.on("getLedgerEntries", entries)
    async with RpcClient([standin.url], timeout=2) as rpc:
        latest, found = await rpc.ledger_entries(keys)
    assert latest == 77 and found == {}
    sizes = sorted(len(p["keys"]) for m, p in standin.calls if m == "getLedgerEntries")
    assert sizes == [50, 200, 200]
    sent = {k for _, p in standin.calls for k in p["keys"]}
    assert sent == {k.to_xdr() for k in keys}
