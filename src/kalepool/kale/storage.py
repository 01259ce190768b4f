"""Storage keys of the farm contract and the ledger keys the farm touches (§2.2, §8.2).

Contract keys are variants of the contract's ``Storage`` enum: a unit variant is
``Vec[Symbol(name)]`` and a tuple variant ``Vec[Symbol(name), field, ...]``. Ledger keys
wrap them as ``LedgerKey::ContractData{contract, key, durability}``; ``Block(i)`` and
``Pail(farmer, i)`` are TEMPORARY, the contract instance is PERSISTENT.
"""

from __future__ import annotations

from stellar_sdk import Address, Asset, Keypair, StrKey, scval
from stellar_sdk import xdr as sx

from kalepool.errors import InvalidInput
from kalepool.kale.types import (
    FARM_BLOCK,
    FARM_INDEX,
    FARM_PAUSED,
    HOMESTEAD_ASSET,
    HOMESTEADER,
    address_scval,
    check_address,
    check_u32,
    unit_key,
)

# ------------------------------------------------------------ contract data keys


def farm_index_key() -> sx.SCVal:
    return unit_key(FARM_INDEX)


def farm_block_key() -> sx.SCVal:
    return unit_key(FARM_BLOCK)


def farm_paused_key() -> sx.SCVal:
    return unit_key(FARM_PAUSED)


def homesteader_key() -> sx.SCVal:
    return unit_key(HOMESTEADER)


def homestead_asset_key() -> sx.SCVal:
    return unit_key(HOMESTEAD_ASSET)


def block_key(index: int) -> sx.SCVal:
    """``Vec[Symbol("Block"), U32(index)]``."""
    return scval.to_vec([scval.to_symbol("Block"), scval.to_uint32(check_u32(index, "index"))])


def pail_key(farmer: str, index: int) -> sx.SCVal:
    """``Vec[Symbol("Pail"), Address(farmer), U32(index)]``."""
    return scval.to_vec(
        [
            scval.to_symbol("Pail"),
            address_scval(farmer),
            scval.to_uint32(check_u32(index, "index")),
        ]
    )


def sac_balance_key(address: str) -> sx.SCVal:
    """A SAC balance's contract-data key: ``Vec[Symbol("Balance"), Address]`` (PERSISTENT,
    on the SAC contract)."""
    return scval.to_vec([scval.to_symbol("Balance"), address_scval(address)])


# ------------------------------------------------------------------- ledger keys


def contract_data_ledger_key(contract_id: str, key_scval: sx.SCVal, temporary: bool) -> sx.LedgerKey:
    """``LedgerKey::ContractData`` of ``key_scval`` in ``contract_id``'s storage."""
    durability = (
        sx.ContractDataDurability.TEMPORARY if temporary else sx.ContractDataDurability.PERSISTENT
    )
    contract = Address(check_address(contract_id, "contract_id")).to_xdr_sc_address()
    return sx.LedgerKey(
        sx.LedgerEntryType.CONTRACT_DATA,
        contract_data=sx.LedgerKeyContractData(contract=contract, key=key_scval, durability=durability),
    )


def instance_ledger_key(contract_id: str) -> sx.LedgerKey:
    """The contract-instance entry: key ``SCV_LEDGER_KEY_CONTRACT_INSTANCE``, PERSISTENT."""
    key = sx.SCVal(sx.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE)
    return contract_data_ledger_key(contract_id, key, temporary=False)


def block_ledger_key(contract_id: str, index: int) -> sx.LedgerKey:
    return contract_data_ledger_key(contract_id, block_key(index), temporary=True)


def pail_ledger_key(contract_id: str, farmer: str, index: int) -> sx.LedgerKey:
    return contract_data_ledger_key(contract_id, pail_key(farmer, index), temporary=True)


def sac_balance_ledger_key(sac_id: str, address: str) -> sx.LedgerKey:
    """The SAC balance entry of a contract (C...) holder."""
    return contract_data_ledger_key(sac_id, sac_balance_key(address), temporary=False)


def account_ledger_key(account: str) -> sx.LedgerKey:
    """``LedgerKey::Account`` of a G... account."""
    return sx.LedgerKey(
        sx.LedgerEntryType.ACCOUNT,
        account=sx.LedgerKeyAccount(_account_id(account)),
    )


def trustline_ledger_key(account: str, asset_code: str, issuer: str) -> sx.LedgerKey:
    """``LedgerKey::TrustLine`` of ``account`` for the classic asset ``asset_code:issuer``."""
    return sx.LedgerKey(
        sx.LedgerEntryType.TRUSTLINE,
        trust_line=sx.LedgerKeyTrustLine(
            account_id=_account_id(account),
            asset=Asset(asset_code, issuer).to_trust_line_asset_xdr_object(),
        ),
    )


def _account_id(account: str) -> sx.AccountID:
    if not isinstance(account, str) or not StrKey.is_valid_ed25519_public_key(account):
        raise InvalidInput("account", f"{account!r} is not a valid G... account")
    return Keypair.from_public_key(account).xdr_account_id()
