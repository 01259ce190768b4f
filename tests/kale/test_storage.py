"""Storage and ledger keys against the §2.2 reference encodings."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from stellar_sdk import Address, Asset, Keypair, scval
from stellar_sdk import xdr as sx
from stellar_sdk.base_soroban_server import _build_contract_instance_key

from kalepool.kale import storage

G_KALE = "GBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"
C_FARM = "CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA"
C_SAC = "CB23WRDQWGSP6YPMY4UV5C4OW5CBTXKYN3XEATG7KJEZCXMJBYEHOUOV"
ISSUER = "GBDVX4VELCDSQ54KQJYTNHXAHFLBCA77ZY2USQBM4CSHTTV7DME7KALE"

KEY_SAMPLES = [
    (storage.farm_index_key(), "AAAAEAAAAAEAAAABAAAADwAAAAlGYXJtSW5kZXgAAAA="),
    (storage.farm_block_key(), "AAAAEAAAAAEAAAABAAAADwAAAAlGYXJtQmxvY2sAAAA="),
    (storage.farm_paused_key(), "AAAAEAAAAAEAAAABAAAADwAAAApGYXJtUGF1c2VkAAA="),
    (storage.homesteader_key(), "AAAAEAAAAAEAAAABAAAADwAAAAtIb21lc3RlYWRlcgA="),
    (storage.homestead_asset_key(), "AAAAEAAAAAEAAAABAAAADwAAAA5Ib21lc3RlYWRBc3NldAAA"),
    (storage.block_key(37), "AAAAEAAAAAEAAAACAAAADwAAAAVCbG9jawAAAAAAAAMAAAAl"),
    (
        storage.pail_key(G_KALE, 37),
        "AAAAEAAAAAEAAAADAAAADwAAAARQYWlsAAAAEgAAAAAAAAAAYHnD7ZyUes5VZ4h6O3OnH8CrUwAQjXa6nPUPOteibEUAAAADAAAAJQ==",
    ),
]


@pytest.mark.parametrize(("key", "expected"), KEY_SAMPLES)
def test_key_samples_of_section_2_2(key: sx.SCVal, expected: str) -> None:
    assert key.to_xdr() == expected


def test_ledger_keys() -> None:
    inst = storage.instance_ledger_key(C_FARM)
    assert inst.to_xdr() == _build_contract_instance_key(C_FARM).to_xdr()

    block = storage.block_ledger_key(C_FARM, 37)
    assert block.contract_data is not None
    assert block.contract_data.durability == sx.ContractDataDurability.TEMPORARY
    assert block.contract_data.key.to_xdr() == KEY_SAMPLES[5][1]
    assert Address.from_xdr_sc_address(block.contract_data.contract).address == C_FARM

    pail = storage.pail_ledger_key(C_FARM, G_KALE, 37)
    assert pail.contract_data is not None
    assert pail.contract_data.durability == sx.ContractDataDurability.TEMPORARY
    assert pail.contract_data.key.to_xdr() == KEY_SAMPLES[6][1]

    persistent = storage.contract_data_ledger_key(C_FARM, storage.farm_index_key(), temporary=False)
    assert persistent.contract_data is not None
    assert persistent.contract_data.durability == sx.ContractDataDurability.PERSISTENT


def test_classic_and_sac_keys() -> None:
    account = storage.account_ledger_key(G_KALE)
    account_id = Keypair.from_public_key(G_KALE).xdr_account_id()
    expected = sx.LedgerKey(sx.LedgerEntryType.ACCOUNT, account=sx.LedgerKeyAccount(account_id))
    assert account.to_xdr() == expected.to_xdr()
    trust = storage.trustline_ledger_key(G_KALE, "KALE", ISSUER)
    assert trust.trust_line is not None
    assert trust.trust_line.asset.to_xdr() == Asset("KALE", ISSUER).to_trust_line_asset_xdr_object().to_xdr()

    balance = storage.sac_balance_key(C_FARM)
    assert scval.to_native(balance)[0] == "Balance"
    assert scval.to_native(balance)[1].address == C_FARM
    ledger = storage.sac_balance_ledger_key(C_SAC, C_FARM)
    assert ledger.contract_data is not None
    assert ledger.contract_data.durability == sx.ContractDataDurability.PERSISTENT


@pytest.mark.parametrize(
    "call",
    [
        lambda: storage.block_key(-1),
        lambda: storage.block_key(2**32),
        lambda: storage.pail_key("not an address", 1),
        lambda: storage.pail_key(G_KALE, 2**32),
        lambda: storage.account_ledger_key(C_FARM),
        lambda: storage.instance_ledger_key("nope"),
    ],
)
def test_bad_inputs_raise_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()
