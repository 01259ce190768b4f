"""The JSON-RPC surface: the SDK's own models parse every reply, wire types match the
real RPC, and errors carry the real codes."""

from __future__ import annotations

import base64

import httpx
import pytest
from stellar_sdk import Keypair, SorobanServerAsync, StrKey, scval
from stellar_sdk import xdr as sx
from stellar_sdk.exceptions import SorobanRpcErrorResponse
from stellar_sdk.soroban_rpc import GetFeeStatsResponse, GetTransactionStatus

from kalepool.devnet.testing import DevnetHandle
from kalepool.kale.networks import DEVNET, DEVNET_ISSUER, DEVNET_PASSPHRASE, KALE_CODE
from kalepool.kale.storage import account_ledger_key, instance_ledger_key


def post(devnet: DevnetHandle, body: object) -> dict:
    response = httpx.post(devnet.rpc_url, json=body, timeout=10)
    assert response.status_code == 200
    return response.json()


def call(devnet: DevnetHandle, method: str, params: object = None) -> dict:
    return post(devnet, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def test_devnet_document_names_the_network(devnet: DevnetHandle) -> None:
    info = httpx.get(f"{devnet.url}/devnet").json()
    assert info["rpc_url"] == devnet.rpc_url
    assert info["friendbot_url"] == devnet.friendbot_url
    assert info["network_passphrase"] == DEVNET_PASSPHRASE
    assert info["network_passphrase"] not in (
        "Public Global Stellar Network ; September 2015",
        "Test SDF Network ; September 2015",
    )
    assert info["farm_contract_id"] == DEVNET.farm_contract_id
    assert info["kale_asset"] == {"code": KALE_CODE, "issuer": DEVNET_ISSUER}
    assert info["kale_sac_id"] == DEVNET.kale_sac_id
    assert info["block_interval"] == 300
    assert info["ledger_seconds"] == 5.0
    assert StrKey.is_valid_contract(info["farm_contract_id"])


def test_health_network_latest_ledger_parse_with_the_sdk(devnet: DevnetHandle) -> None:
    server = devnet.soroban_server()
    health = server.get_health()
    assert health.status == "healthy"
    assert health.latest_ledger >= health.oldest_ledger >= 1
    network = server.get_network()
    assert network.passphrase == DEVNET_PASSPHRASE
    assert network.friendbot_url == devnet.friendbot_url
    before = server.get_latest_ledger()
    devnet.close_ledgers(2)
    after = server.get_latest_ledger()
    assert after.sequence == before.sequence + 2
    assert after.close_time == before.close_time + 10  # virtual clock: 5 s per ledger
    assert after.id != before.id and len(after.id) == 64
    header = sx.LedgerHeader.from_xdr(after.header_xdr)
    assert header.ledger_seq.uint32 == after.sequence
    assert header.scp_value.close_time.time_point.uint64 == after.close_time


def test_wire_types_match_the_real_rpc(devnet: DevnetHandle) -> None:
    """Fields the real RPC sends as strings are strings (pydantic would hide it)."""
    latest = call(devnet, "getLatestLedger")["result"]
    assert isinstance(latest["closeTime"], str) and isinstance(latest["sequence"], int)
    health = call(devnet, "getHealth")["result"]
    assert isinstance(health["latestLedgerCloseTime"], int)
    missing = call(devnet, "getTransaction", {"hash": "ab" * 32})["result"]
    assert missing["status"] == "NOT_FOUND"
    assert isinstance(missing["latestLedgerCloseTime"], str)
    assert isinstance(missing["oldestLedgerCloseTime"], str)
    fees = call(devnet, "getFeeStats")["result"]
    assert isinstance(fees["sorobanInclusionFee"]["p90"], str)
    assert isinstance(fees["inclusionFee"]["ledgerCount"], int)
    GetFeeStatsResponse.model_validate(fees)


def test_unknown_method_is_32601(devnet: DevnetHandle) -> None:
    reply = call(devnet, "getAccount", {"address": "G"})
    assert reply["error"]["code"] == -32601
    assert reply["id"] == 1


def test_http_as_stellar_rpcs_json_rpc_bridge(devnet: DevnetHandle) -> None:
    url = devnet.rpc_url
    json_type = {"content-type": "application/json"}
    broken = httpx.post(url, content=b"{not json", headers=json_type)
    assert broken.status_code == 500 and broken.text == "[-32600] invalid request\n"  # an HTTP error
    plain = httpx.post(
        url, content=b'{"jsonrpc":"2.0","id":1,"method":"getHealth"}', headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 415
    latin = httpx.post(url, content=b"{}", headers={"content-type": "application/json; charset=latin-1"})
    assert latin.status_code == 415
    got = httpx.get(url)
    assert got.status_code == 405 and got.headers["accept-post"] == "application/json"
    note = httpx.post(url, json={"jsonrpc": "2.0", "method": "getHealth"})
    assert note.status_code == 204 and note.content == b""  # a notification gets no reply
    assert httpx.post(url, json=[]).status_code == 204
    assert post(devnet, {"id": 3, "method": "getHealth"})["error"]["code"] == -32600
    batch = post(
        devnet,
        [{"jsonrpc": "2.0", "id": 1, "method": "getHealth"}, {"jsonrpc": "2.0", "id": 2, "method": "x"}],
    )
    assert [r.get("result", {}).get("status") for r in batch] == ["healthy", None]
    assert batch[1]["error"]["code"] == -32601
    alone = post(
        devnet,
        [{"jsonrpc": "2.0", "method": "getHealth"}, {"jsonrpc": "2.0", "id": 9, "method": "getHealth"}],
    )
    assert alone["id"] == 9 and alone["result"]["status"] == "healthy"  # one reply: sent alone


def test_params_by_position_are_refused(devnet: DevnetHandle) -> None:
    reply = call(devnet, "getTransaction", ["ab" * 32])
    assert reply["error"]["code"] == -32602


def test_malformed_xdr_is_32602(devnet: DevnetHandle) -> None:
    server = devnet.soroban_server()
    with pytest.raises(SorobanRpcErrorResponse) as send:
        server.send_transaction("AAAAbm90IGEgdHJhbnNhY3Rpb24=")
    assert send.value.code == -32602
    garbage = call(devnet, "simulateTransaction", {"transaction": "%%%"})["result"]
    assert garbage == {
        "error": "Could not unmarshal transaction",
        "latestLedger": 0,
    }  # a result, as stellar-rpc
    for method, params in [
        ("sendTransaction", {"transaction": base64.b64encode(b"\x00\x00\x00\x02garbage").decode()}),
        ("getLedgerEntries", {"keys": ["AAAA"]}),
        ("getLedgerEntries", {"keys": []}),
        ("getTransaction", {"hash": "abc"}),
        ("sendTransaction", {}),
    ]:
        assert call(devnet, method, params)["error"]["code"] == -32602, method


def test_get_ledger_entries_limits_and_order(devnet: DevnetHandle) -> None:
    a, b = devnet.new_account(), devnet.new_account()
    keys = [account_ledger_key(x.public_key).to_xdr() for x in (b, Keypair.random(), a)]
    reply = call(devnet, "getLedgerEntries", {"keys": keys})["result"]
    assert [e["key"] for e in reply["entries"]] == [keys[0], keys[2]]  # missing key left out, order kept
    assert all("liveUntilLedgerSeq" not in e for e in reply["entries"])  # classic entries have no TTL
    too_many = [keys[0]] * 201
    error = call(devnet, "getLedgerEntries", {"keys": too_many})["error"]
    assert error["code"] == -32602 and "200" in error["message"]
    ttl_key = sx.LedgerKey(sx.LedgerEntryType.TTL, ttl=sx.LedgerKeyTtl(sx.Hash(bytes(32)))).to_xdr()
    assert call(devnet, "getLedgerEntries", {"keys": [ttl_key]})["error"]["code"] == -32602


def test_contract_instances_have_ttl_and_decode(devnet: DevnetHandle) -> None:
    server = devnet.soroban_server()
    found = server.get_ledger_entries(
        [instance_ledger_key(devnet.farm_contract_id), instance_ledger_key(devnet.kale_sac_id)]
    )
    assert found.entries is not None and len(found.entries) == 2
    farm, sac = (sx.LedgerEntryData.from_xdr(e.xdr).contract_data for e in found.entries)
    assert farm is not None and sac is not None
    assert farm.val.instance is not None
    assert farm.val.instance.executable.type == sx.ContractExecutableType.CONTRACT_EXECUTABLE_WASM
    assert sac.val.instance is not None
    assert sac.val.instance.executable.type == sx.ContractExecutableType.CONTRACT_EXECUTABLE_STELLAR_ASSET
    assert all(e.live_until_ledger and e.live_until_ledger > found.latest_ledger for e in found.entries)


def test_get_transaction_unknown_hash_is_not_found(devnet: DevnetHandle) -> None:
    response = devnet.soroban_server().get_transaction("00" * 32)
    assert response.status == GetTransactionStatus.NOT_FOUND
    assert response.latest_ledger >= response.oldest_ledger


def test_requests_are_recorded(devnet: DevnetHandle) -> None:
    devnet.rpc("devnet_requests", clear=True)
    devnet.soroban_server().get_health()
    devnet.soroban_server().get_network()
    seen = devnet.rpc("devnet_requests", method="getNetwork")["requests"]
    assert seen == [{"method": "getNetwork", "params": None}]


def test_version_info(devnet: DevnetHandle) -> None:
    info = devnet.soroban_server().get_version_info()
    assert info.protocol_version == devnet.soroban_server().get_network().protocol_version


async def test_async_client_works(devnet: DevnetHandle) -> None:
    async with SorobanServerAsync(devnet.rpc_url) as server:
        health = await server.get_health()
        latest = await server.get_latest_ledger()
        account = await server.load_account(devnet.kale_issuer.public_key)
    assert health.status == "healthy"
    assert latest.sequence == health.latest_ledger
    assert account.account.account_id == DEVNET_ISSUER


def test_scval_roundtrip_of_sdk_helpers() -> None:
    """Sanity check of a value the tests rely on: i128 encodes as the SDK does."""
    assert scval.to_native(scval.to_int128(-5)) == -5


def test_bad_simulation_and_event_params(devnet: DevnetHandle) -> None:
    kp = devnet.new_account()
    from stellar_sdk import TransactionBuilder

    tx = (
        TransactionBuilder(devnet.soroban_server().load_account(kp.public_key), devnet.passphrase, 100)
        .append_invoke_contract_function_op(devnet.farm_contract_id, "pause", [])
        .set_timeout(60)
        .build()
    )
    maybe = call(devnet, "simulateTransaction", {"transaction": tx.to_xdr(), "authMode": "maybe"})["result"]
    assert maybe["error"].startswith("optional 'authMode' must be one of enforce,record")
    ok = call(devnet, "simulateTransaction", {"transaction": tx.to_xdr(), "authMode": "record"})["result"]
    assert "error" not in ok and isinstance(ok["minResourceFee"], str)
    assert (
        call(devnet, "getEvents", {"startLedger": 1, "pagination": {"cursor": "1-1"}})["error"]["code"]
        == -32602
    )
    assert (
        call(devnet, "getEvents", {"startLedger": 1, "pagination": {"limit": 10_001}})["error"]["code"]
        == -32602
    )
    assert (
        call(devnet, "getEvents", {"startLedger": 1, "filters": [{"type": "nope"}]})["error"]["code"]
        == -32602
    )
