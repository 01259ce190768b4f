"""Farm and token contract errors: codes, names, messages."""

from __future__ import annotations

import pickle

import pytest

from kalepool.errors import KalePoolError
from kalepool.kale.errors import (
    ContractError,
    FarmError,
    FarmErrorCode,
    TokenError,
    TokenErrorCode,
)

FARM_NAMES = [
    "HomesteadExists", "HomesteadMissing", "FarmBlockMissing", "FarmPaused", "FarmNotPaused",
    "PlantAmountTooLow", "ZeroCountTooLow", "PailExists", "PailMissing", "WorkMissing",
    "BlockMissing", "BlockInvalid", "HashInvalid", "HarvestNotReady", "GapCountTooLow",
]
TOKEN_NAMES = [
    "InternalError", "OperationNotSupported", "AlreadyInitialized", "Unauthorized",
    "Authentication", "AccountMissing", "AccountIsNotClassic", "NegativeAmount", "Allowance",
    "BalanceError", "BalanceDeauthorized", "Overflow", "TrustlineMissing",
]


def test_code_tables() -> None:
    assert [int(c) for c in FarmErrorCode] == list(range(1, 16))
    assert [c.contract_name for c in FarmErrorCode] == FARM_NAMES
    assert [int(c) for c in TokenErrorCode] == list(range(1, 14))
    assert [c.contract_name for c in TokenErrorCode] == TOKEN_NAMES


def test_farm_error() -> None:
    err = FarmError(FarmErrorCode.PAIL_EXISTS)
    assert str(err) == "Error(Contract, #8) PailExists"
    assert err.code is FarmErrorCode.PAIL_EXISTS
    assert err.code == 8
    assert err.contract == "farm"
    assert err.name == "PailExists"
    assert isinstance(err, ContractError)
    assert isinstance(err, KalePoolError)
    assert FarmError(8).code is FarmErrorCode.PAIL_EXISTS
    assert str(FarmError(14, "index 5 >= FarmIndex 5")) == (
        "Error(Contract, #14) HarvestNotReady: index 5 >= FarmIndex 5"
    )
    with pytest.raises(ValueError):
        FarmError(16)


def test_token_error_and_collisions() -> None:
    err = TokenError(TokenErrorCode.TRUSTLINE_MISSING, contract_id="CB23")
    assert str(err) == "Error(Contract, #13) TrustlineMissing"
    assert err.contract == "token"
    assert err.contract_id == "CB23"
    # the same number means different things per contract
    assert str(TokenError(10)) == "Error(Contract, #10) BalanceError"
    assert str(FarmError(10)) == "Error(Contract, #10) WorkMissing"


def test_unknown_contract_error_and_pickle() -> None:
    err = ContractError(99)
    assert str(err) == "Error(Contract, #99) Unknown"
    assert err.contract is None
    again = pickle.loads(pickle.dumps(FarmError(9, "x", contract_id="C1")))
    assert isinstance(again, FarmError)
    assert (again.code, again.detail, again.contract_id) == (FarmErrorCode.PAIL_MISSING, "x", "C1")
