"""Soroban authorization: a pool planting for a farmer with address credentials."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from stellar_sdk import Keypair, TransactionBuilder, TransactionEnvelope, scval
from stellar_sdk import xdr as sx
from stellar_sdk.auth import authorize_entry, authorize_invocation
from stellar_sdk.exceptions import PrepareTransactionException
from stellar_sdk.soroban_rpc import GetTransactionStatus

from kalepool.devnet.testing import DevnetHandle, InvokeResult
from tests.devnet.helpers import KALE, error_contract, kale_balance, pail

Signer = Callable[[sx.SorobanAuthorizationEntry, int], sx.SorobanAuthorizationEntry]


def prepared_plant(devnet: DevnetHandle, pool: Keypair, farmer: Keypair, amount: int) -> TransactionEnvelope:
    server = devnet.soroban_server()
    tx = (
        TransactionBuilder(server.load_account(pool.public_key), devnet.passphrase, base_fee=100)
        .append_invoke_contract_function_op(
            devnet.farm_contract_id, "plant", [scval.to_address(farmer.public_key), scval.to_int128(amount)]
        )
        .set_timeout(300)
        .build()
    )
    return server.prepare_transaction(tx)


def submit(devnet: DevnetHandle, envelope: TransactionEnvelope, pool: Keypair) -> InvokeResult:
    envelope.signatures = []
    envelope.sign(pool)
    return devnet.submit(envelope)


def entries(envelope: TransactionEnvelope) -> list[sx.SorobanAuthorizationEntry]:
    return envelope.transaction.operations[0].auth  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def actors(devnet: DevnetHandle) -> tuple[Keypair, Keypair]:
    return devnet.new_account(), devnet.new_account(kale=10 * KALE)


def test_simulation_records_an_address_credential(
    devnet: DevnetHandle, actors: tuple[Keypair, Keypair]
) -> None:
    pool, farmer = actors
    envelope = prepared_plant(devnet, pool, farmer, KALE)
    (entry,) = entries(envelope)
    assert entry.credentials.type == sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS
    creds = entry.credentials.address
    assert creds is not None and creds.signature.type == sx.SCValType.SCV_VOID
    assert creds.signature_expiration_ledger.uint32 == 0
    data = envelope.transaction.soroban_data
    assert data is not None
    # the nonce entry (temporary, on the farmer's address) is written by the call
    nonce_keys = [
        k
        for k in data.resources.footprint.read_write
        if k.contract_data is not None and k.contract_data.key.type == sx.SCValType.SCV_LEDGER_KEY_NONCE
    ]
    assert len(nonce_keys) == 1
    assert nonce_keys[0].contract_data.key.nonce_key.nonce.int64 == creds.nonce.int64


def test_pool_plants_with_the_farmers_signature(
    devnet: DevnetHandle, actors: tuple[Keypair, Keypair]
) -> None:
    pool, farmer = actors
    envelope = prepared_plant(devnet, pool, farmer, 2 * KALE)
    valid_until = devnet.latest_ledger() + 10
    envelope.transaction.operations[0].auth = [  # type: ignore[attr-defined]
        authorize_entry(e, farmer, valid_until, devnet.passphrase) for e in entries(envelope)
    ]
    result = submit(devnet, envelope, pool)
    assert result.status == "SUCCESS"
    assert kale_balance(devnet, farmer.public_key) == 8 * KALE
    assert pail(devnet, farmer.public_key, 0) is not None
    # replaying the same signed entry: the nonce is spent
    again = prepared_plant_with(devnet, pool, farmer, 2 * KALE, entries(envelope))
    with pytest.raises(PrepareTransactionException) as exc:
        devnet.soroban_server().prepare_transaction(again)
    assert "Error(Auth, ExistingValue)" in str(exc.value.simulate_transaction_response.error)


def prepared_plant_with(
    devnet: DevnetHandle,
    pool: Keypair,
    farmer: Keypair,
    amount: int,
    auth: list[sx.SorobanAuthorizationEntry],
) -> TransactionEnvelope:
    server = devnet.soroban_server()
    return (
        TransactionBuilder(server.load_account(pool.public_key), devnet.passphrase, base_fee=100)
        .append_invoke_contract_function_op(
            devnet.farm_contract_id,
            "plant",
            [scval.to_address(farmer.public_key), scval.to_int128(amount)],
            auth=auth,
        )
        .set_timeout(300)
        .build()
    )


def test_replayed_auth_entry_fails_when_applied(
    devnet: DevnetHandle, actors: tuple[Keypair, Keypair]
) -> None:
    pool, farmer = actors
    first = prepared_plant(devnet, pool, farmer, KALE)
    valid_until = devnet.latest_ledger() + 100
    signed = [authorize_entry(e, farmer, valid_until, devnet.passphrase) for e in entries(first)]
    first.transaction.operations[0].auth = signed  # type: ignore[attr-defined]
    replay = copy.deepcopy(first)
    assert submit(devnet, first, pool).status == "SUCCESS"
    devnet.advance_time(300, close=True)  # a new block, so only the nonce can stop it
    replay.transaction.sequence += 1
    result = submit(devnet, replay, pool)
    assert result.status == "FAILED"
    assert error_contract(result)[1] == "Error(SCE_AUTH, SCEC_EXISTING_VALUE)"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unsigned", "Error(SCE_AUTH, SCEC_INVALID_ACTION)"),
        ("wrong_key", "Error(SCE_AUTH, SCEC_INVALID_ACTION)"),
        ("expired", "Error(SCE_AUTH, SCEC_INVALID_INPUT)"),
        ("other_amount", "Error(SCE_AUTH, SCEC_INVALID_ACTION)"),
        ("no_burn", "Error(SCE_AUTH, SCEC_INVALID_ACTION)"),
    ],
)
def test_bad_address_credentials_fail(
    devnet: DevnetHandle, actors: tuple[Keypair, Keypair], case: str, expected: str
) -> None:
    pool, farmer = actors
    envelope = prepared_plant(devnet, pool, farmer, KALE)
    (entry,) = entries(envelope)
    latest = devnet.latest_ledger()
    if case == "wrong_key":
        entry = authorize_entry(entry, Keypair.random(), latest + 10, devnet.passphrase)
    elif case == "expired":
        entry = authorize_entry(entry, farmer, latest, devnet.passphrase)  # applies in latest + 1
    elif case == "other_amount":
        entry.root_invocation.function.contract_fn.args[1] = scval.to_int128(2 * KALE)
        entry = authorize_entry(entry, farmer, latest + 10, devnet.passphrase)
    elif case == "no_burn":
        entry.root_invocation.sub_invocations = []
        entry = authorize_entry(entry, farmer, latest + 10, devnet.passphrase)
    envelope.transaction.operations[0].auth = [entry]  # type: ignore[attr-defined]
    result = submit(devnet, envelope, pool)
    assert result.status == "FAILED"
    assert error_contract(result)[1] == expected
    assert kale_balance(devnet, farmer.public_key) == 10 * KALE
    assert pail(devnet, farmer.public_key, 0) is None


def test_address_bound_v2_credentials_are_accepted(
    devnet: DevnetHandle, actors: tuple[Keypair, Keypair]
) -> None:
    pool, farmer = actors
    envelope = prepared_plant(devnet, pool, farmer, KALE)
    (recorded,) = entries(envelope)
    v2 = authorize_invocation(
        farmer, None, devnet.latest_ledger() + 10, recorded.root_invocation, devnet.passphrase
    )
    assert v2.credentials.type == sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS_V2
    # its nonce differs from the simulated one: simulate again with it to get the footprint
    fresh = prepared_plant_with(devnet, pool, farmer, KALE, [v2])
    fresh = devnet.soroban_server().prepare_transaction(fresh)  # enforcing simulation
    result = submit(devnet, fresh, pool)
    assert result.status == "SUCCESS"
    assert kale_balance(devnet, farmer.public_key) == 9 * KALE


def test_source_account_credentials_need_the_source(
    devnet: DevnetHandle, actors: tuple[Keypair, Keypair]
) -> None:
    """A farmer planting for itself signs only the envelope; a source-account credential
    names the transaction source, so a pool cannot use one for a farmer."""
    pool, farmer = actors
    own = prepared_plant(devnet, farmer, farmer, KALE)
    assert entries(own)[0].credentials.type == sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_SOURCE_ACCOUNT
    stolen = prepared_plant_with(devnet, pool, farmer, KALE, entries(own))
    with pytest.raises(PrepareTransactionException) as exc:
        devnet.soroban_server().prepare_transaction(stolen)
    assert "Error(Auth, InvalidAction)" in str(exc.value.simulate_transaction_response.error)
    assert submit(devnet, own, farmer).result.status == GetTransactionStatus.SUCCESS  # type: ignore[union-attr]
