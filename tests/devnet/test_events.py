"""getEvents: the KALE token's mint/burn/transfer events, filters, pagination, range (the
fee events every transaction also emits are in test_fees.py)."""

from __future__ import annotations

import pytest
from stellar_sdk import scval
from stellar_sdk import xdr as sx
from stellar_sdk.exceptions import SorobanRpcErrorResponse

from kalepool.devnet.testing import DevnetHandle
from tests.devnet.helpers import KALE, error_contract, plant


def names(events) -> list[str]:
    return [scval.to_native(sx.SCVal.from_xdr(e.topic[0])) for e in events]


@pytest.fixture
def busy(devnet: DevnetHandle) -> tuple[DevnetHandle, int]:
    """Three burns (plants) and a transfer, in three ledgers."""
    start = devnet.latest_ledger() + 1
    farmers = [devnet.new_account(kale=10 * KALE) for _ in range(3)]
    for i, farmer in enumerate(farmers):
        assert plant(devnet, farmer, (i + 1) * KALE).status == "SUCCESS"
    a, b = farmers[0], farmers[1]
    result = devnet.invoke(
        a,
        "transfer",
        [scval.to_address(a.public_key), scval.to_address(b.public_key), scval.to_int128(KALE)],
        contract=devnet.kale_sac_id,
    )
    assert result.status == "SUCCESS"
    return devnet, start


def kale_only(devnet: DevnetHandle, topics: list[list[str]] | None = None) -> list[dict]:
    """A filter for the KALE token's events (fees are the native asset's)."""
    kale: dict = {"contractIds": [devnet.kale_sac_id]}
    if topics is not None:
        kale["topics"] = topics
    return [kale]


def test_all_events_in_order(busy: tuple[DevnetHandle, int]) -> None:
    devnet, start = busy
    response = devnet.soroban_server().get_events(start_ledger=start, filters=kale_only(devnet))
    assert names(response.events) == ["burn", "burn", "burn", "transfer"]
    assert [scval.to_native(sx.SCVal.from_xdr(e.value)) for e in response.events] == [
        KALE,
        2 * KALE,
        3 * KALE,
        KALE,
    ]
    ids = [e.id for e in response.events]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert all(e.contract_id == devnet.kale_sac_id and e.event_type == "contract" for e in response.events)
    assert response.latest_ledger == devnet.latest_ledger()


def test_topic_and_contract_filters(busy: tuple[DevnetHandle, int]) -> None:
    devnet, start = busy
    server = devnet.soroban_server()
    transfer = scval.to_symbol("transfer").to_xdr()
    only = server.get_events(
        start_ledger=start, filters=[{"type": "contract", "topics": [[transfer, "*", "*", "*"]]}]
    )
    assert names(only.events) == ["transfer"]
    assert (
        server.get_events(start_ledger=start, filters=[{"topics": [[transfer, "*"]]}]).events == []
    )  # length matters
    prefix = server.get_events(start_ledger=start, filters=kale_only(devnet, [["*", "**"]]))
    assert len(prefix.events) == 4
    other = server.get_events(start_ledger=start, filters=[{"contractIds": [devnet.farm_contract_id]}])
    assert other.events == []  # the farm emits no events of its own


def test_pagination_with_cursor(busy: tuple[DevnetHandle, int]) -> None:
    devnet, start = busy
    server = devnet.soroban_server()
    first = server.get_events(start_ledger=start, limit=3, filters=kale_only(devnet))
    assert len(first.events) == 3 and first.cursor == first.events[-1].id
    rest = server.get_events(cursor=first.cursor, limit=3, filters=kale_only(devnet))
    assert names(rest.events) == ["transfer"]
    done = server.get_events(cursor=rest.cursor, limit=3, filters=kale_only(devnet))
    assert done.events == []


def test_start_ledger_outside_the_window(devnet: DevnetHandle) -> None:
    server = devnet.soroban_server()
    with pytest.raises(SorobanRpcErrorResponse) as exc:
        server.get_events(start_ledger=devnet.latest_ledger() + 10)
    assert exc.value.code == -32600
    with pytest.raises(SorobanRpcErrorResponse) as exc:
        server.get_events(start_ledger=1, filters=[{"contractIds": ["nope"]}])
    assert exc.value.code == -32602


def test_failed_transactions_emit_only_their_fee_events(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=KALE + 1)
    start = devnet.latest_ledger() + 1
    assert plant(devnet, farmer, KALE).status == "SUCCESS"
    devnet.advance_time(300, close=True)
    # a second plant in the next block burns more than is left (1 stroop): FAILED, no event
    from stellar_sdk import TransactionBuilder

    server = devnet.soroban_server()
    tx = (
        TransactionBuilder(server.load_account(farmer.public_key), devnet.passphrase, 100)
        .append_invoke_contract_function_op(
            devnet.farm_contract_id, "plant", [scval.to_address(farmer.public_key), scval.to_int128(1)]
        )
        .set_timeout(60)
        .build()
    )
    prepared = server.prepare_transaction(tx)
    # raise the amount after simulation (the auth entry too): the SAC refuses (#10) at apply
    op = prepared.transaction.operations[0]
    op.host_function.invoke_contract.args[1] = scval.to_int128(2)
    root = op.auth[0].root_invocation
    root.function.contract_fn.args[1] = scval.to_int128(2)
    root.sub_invocations = [
        sx.SorobanAuthorizedInvocation(
            sx.SorobanAuthorizedFunction(
                sx.SorobanAuthorizedFunctionType.SOROBAN_AUTHORIZED_FUNCTION_TYPE_CONTRACT_FN,
                contract_fn=sx.InvokeContractArgs(
                    scval.to_address(devnet.kale_sac_id).address,
                    sx.SCSymbol(b"burn"),
                    [scval.to_address(farmer.public_key), scval.to_int128(2)],
                ),
            ),
            [],
        )
    ]
    prepared.sign(farmer)
    result = devnet.submit(prepared)
    assert result.status == "FAILED"
    assert error_contract(result) == (devnet.kale_sac_id, "Error(Contract, #10)")
    assert names(server.get_events(start_ledger=start, filters=kale_only(devnet)).events) == ["burn"]
    failed = [
        e for e in devnet.rpc("getEvents", startLedger=start)["events"] if e["txHash"] == result.send.hash
    ]
    assert [scval.to_native(sx.SCVal.from_xdr(e["topic"][0])) for e in failed] == ["fee", "fee"]  # and refund
    assert not any(e["inSuccessfulContractCall"] for e in failed)
