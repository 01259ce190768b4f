"""The pool's money rules: stakes, the split of a reward, and the chain error mapping."""

from __future__ import annotations

import pytest

from kalepool.backend.accounting import BPS, CUSTODIAL_KINDS, split_reward, stake_for
from kalepool.backend.chain import ChainTxExpired, ChainTxInDoubt, ChainUnavailable
from kalepool.backend.enums import Attribution, JournalKind
from kalepool.backend.stellar_chain import translate_error
from kalepool.kale.errors import FarmError, FarmErrorCode, TokenError, TokenErrorCode
from kalepool.stellar import (
    AccountNotFound,
    NetworkError,
    RaceLost,
    RpcTimeout,
    SimulationFailed,
    TxAttempt,
    TxExpired,
    TxFailed,
    TxInDoubt,
    TxRejected,
)
from kalepool.stellar.errors import attach_attempt
from kalepool.wire import ErrorCode


@pytest.mark.parametrize(
    ("balance", "bps", "stake"),
    [(0, 5000, 0), (1, 5000, 0), (3, 5000, 1), (10_000_003, 10_000, 10_000_003), (999, 1, 0), (10_000, 1, 1)],
)
def test_the_stake_is_the_floor_of_the_balance_share(balance: int, bps: int, stake: int) -> None:
    assert stake_for(balance, bps) == stake


@pytest.mark.parametrize("bad", [(-1, 10), (10, -1), (10, BPS + 1), (1.5, 10), (True, 10)])
def test_stake_arguments_are_checked(bad: tuple[object, object]) -> None:
    with pytest.raises(ValueError):
        stake_for(*bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reward", "pooler", "platform"),
    [
        (0, 1000, 200),
        (1, 1000, 200),
        (9, 5000, 5000),
        (161_312_863, 1000, 200),
        (10**12 + 7, 3333, 77),
        (5, 10_000, 100),
    ],
)
def test_a_split_adds_up_and_the_dust_stays_with_the_farmer(reward: int, pooler: int, platform: int) -> None:
    split = split_reward(reward, pooler, platform)
    assert split.pooler_share == reward * pooler // BPS
    assert split.platform_fee == min(reward * platform // BPS, reward - split.pooler_share)
    assert split.pooler_share + split.platform_fee + split.farmer_reward == reward
    assert split.farmer_reward >= 0
    exact = reward * (BPS - pooler - platform) / BPS
    assert split.farmer_reward >= exact - 1e-9 or pooler + platform > BPS


def test_the_example_split() -> None:
    split = split_reward(161_312_863, 1000, 200)  # kale-contract.md §5.4 example A's reward
    assert (split.pooler_share, split.platform_fee, split.farmer_reward) == (
        16_131_286,
        3_226_257,
        141_955_320,
    )


def test_custodial_kinds_are_the_ones_that_move_kale_on_chain() -> None:
    assert JournalKind.REWARD in CUSTODIAL_KINDS and JournalKind.STAKE_BURNED in CUSTODIAL_KINDS
    for claim in (
        JournalKind.POOLER_FEE,
        JournalKind.PLATFORM_FEE,
        JournalKind.COMPENSATION,
        JournalKind.ADJUSTMENT,
    ):
        assert claim not in CUSTODIAL_KINDS


ATTEMPT = TxAttempt("ab" * 32, "AAAA", ledger=7, fee_charged=1234)


def _with_attempt(exc: BaseException) -> BaseException:
    return attach_attempt(exc, ATTEMPT)


@pytest.mark.parametrize(
    ("exc", "code", "blame", "kind"),
    [
        (FarmError(FarmErrorCode.PAIL_EXISTS), "pail_exists", Attribution.CHAIN, None),
        (FarmError(FarmErrorCode.FARM_PAUSED), "farm_paused", Attribution.CHAIN, None),
        (FarmError(FarmErrorCode.PLANT_AMOUNT_TOO_LOW), "plant_amount_too_low", Attribution.BACKEND, None),
        (FarmError(FarmErrorCode.WORK_MISSING), "work_missing", Attribution.CHAIN, None),
        (TokenError(TokenErrorCode.TRUSTLINE_MISSING), "no_trustline", Attribution.FARMER, None),
        (TokenError(TokenErrorCode.BALANCE_ERROR), "insufficient_kale", Attribution.FARMER, None),
        (TokenError(TokenErrorCode.OVERFLOW), "token_overflow", Attribution.CHAIN, None),
        (AccountNotFound("G" * 56), "account_not_found", Attribution.FARMER, None),
        (TxRejected("txINSUFFICIENT_BALANCE"), "insufficient_xlm", Attribution.FARMER, None),
        (TxRejected("txBAD_SEQ"), "bad_sequence", Attribution.CHAIN, None),
        (TxRejected("txTOO_LATE"), "tx_rejected", Attribution.CHAIN, None),
        (TxFailed("txFAILED"), "tx_failed", Attribution.CHAIN, None),
        (RaceLost("moved"), "race_lost", Attribution.CHAIN, None),
        (SimulationFailed("HostError"), "simulation_failed", Attribution.CHAIN, None),
        (RpcTimeout("slow"), "rpc_timeout", Attribution.CHAIN, ChainUnavailable),
        (NetworkError("down"), "network_error", Attribution.CHAIN, ChainUnavailable),
        (TxInDoubt("?"), "tx_in_doubt", Attribution.CHAIN, ChainTxInDoubt),
        (TxExpired("late"), "tx_expired", Attribution.CHAIN, ChainTxExpired),
    ],
)
def test_gateway_errors_get_a_code_and_a_culprit(
    exc: BaseException, code: str, blame: Attribution, kind: type | None
) -> None:
    error = translate_error(_with_attempt(exc))
    assert error.code == code and error.attributed_to is blame
    assert error.tx_hash == ATTEMPT.tx_hash and error.fee_charged == 1234 and error.envelope_xdr == "AAAA"
    if kind is not None:
        assert isinstance(error, kind)
    assert ErrorCode(error.code) is not ErrorCode.UNKNOWN  # the wire contract names it


CONTRACT_ERRORS = [*(FarmError(c) for c in FarmErrorCode), *(TokenError(c) for c in TokenErrorCode)]


@pytest.mark.parametrize("exc", CONTRACT_ERRORS)
def test_every_contract_error_has_a_wire_code(exc: BaseException) -> None:
    assert ErrorCode(translate_error(exc).code) is not ErrorCode.UNKNOWN
