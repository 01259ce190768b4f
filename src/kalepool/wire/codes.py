"""Every machine-readable code the pooler API carries: error bodies and per-farmer results.

A ``StrEnum``: a member equals its text, so the backend stores and compares it as text and
both sides name it as a constant. A code this version does not know (a newer backend)
parses as :attr:`ErrorCode.UNKNOWN` instead of failing the whole answer.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ErrorCode"]


class ErrorCode(StrEnum):
    # --- answers as a whole (the ``error.code`` of a 4xx/5xx body)
    INTERNAL_ERROR = "internal_error"
    INVALID_REQUEST = "invalid_request"
    VALIDATION_ERROR = "validation_error"
    UNAUTHENTICATED = "unauthenticated"
    INVALID_TOKEN = "invalid_token"
    FORBIDDEN = "forbidden"
    POOLER_SUSPENDED = "pooler_suspended"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    SERVICE_UNAVAILABLE = "service_unavailable"
    CHAIN_UNAVAILABLE = "chain_unavailable"
    NETWORK_MISMATCH = "network_mismatch"

    # --- a farmer's planting
    STALE_BLOCK = "stale_block"
    FUTURE_BLOCK = "future_block"
    OVER_CAPACITY = "over_capacity"
    PLANT_IN_PROGRESS = "plant_in_progress"
    ABANDONED = "abandoned"
    ACCOUNT_NOT_FOUND = "account_not_found"
    NO_TRUSTLINE = "no_trustline"
    INSUFFICIENT_XLM = "insufficient_xlm"
    INSUFFICIENT_KALE = "insufficient_kale"
    KALE_DEAUTHORIZED = "kale_deauthorized"
    CUSTODY_ERROR = "custody_error"

    # --- the farm contract's errors (kale.errors.FarmErrorCode, snake case)
    HOMESTEAD_EXISTS = "homestead_exists"
    HOMESTEAD_MISSING = "homestead_missing"
    FARM_BLOCK_MISSING = "farm_block_missing"
    FARM_PAUSED = "farm_paused"
    FARM_NOT_PAUSED = "farm_not_paused"
    PLANT_AMOUNT_TOO_LOW = "plant_amount_too_low"
    ZERO_COUNT_TOO_LOW = "zero_count_too_low"
    PAIL_EXISTS = "pail_exists"
    PAIL_MISSING = "pail_missing"
    WORK_MISSING = "work_missing"
    BLOCK_MISSING = "block_missing"
    BLOCK_INVALID = "block_invalid"
    HASH_INVALID = "hash_invalid"
    HARVEST_NOT_READY = "harvest_not_ready"
    GAP_COUNT_TOO_LOW = "gap_count_too_low"

    # --- the KALE token's errors other than the farmer's (kale.errors.TokenErrorCode)
    TOKEN_INTERNAL_ERROR = "token_internal_error"
    TOKEN_OPERATION_NOT_SUPPORTED = "token_operation_not_supported"
    TOKEN_ALREADY_INITIALIZED = "token_already_initialized"
    TOKEN_UNAUTHORIZED = "token_unauthorized"
    TOKEN_AUTHENTICATION = "token_authentication"
    TOKEN_ACCOUNT_MISSING = "token_account_missing"
    TOKEN_ACCOUNT_IS_NOT_CLASSIC = "token_account_is_not_classic"
    TOKEN_NEGATIVE_AMOUNT = "token_negative_amount"
    TOKEN_ALLOWANCE = "token_allowance"
    TOKEN_OVERFLOW = "token_overflow"

    # --- the network and our gateway (transient unless the farm or the farmer says otherwise)
    BAD_SEQUENCE = "bad_sequence"
    ACCOUNT_BUSY = "account_busy"
    TX_REJECTED = "tx_rejected"
    TX_IN_DOUBT = "tx_in_doubt"
    TX_EXPIRED = "tx_expired"
    TX_THROTTLED = "tx_throttled"
    TX_FAILED = "tx_failed"
    RACE_LOST = "race_lost"
    SIMULATION_FAILED = "simulation_failed"
    RPC_TIMEOUT = "rpc_timeout"
    NETWORK_ERROR = "network_error"
    GATEWAY_ERROR = "gateway_error"
    INVALID_INPUT = "invalid_input"

    # --- a reported work
    DUPLICATE_RESULT = "duplicate_result"
    UNKNOWN_FARMER = "unknown_farmer"
    NOT_PLANTED = "not_planted"
    HASH_MISMATCH = "hash_mismatch"
    ZEROS_MISMATCH = "zeros_mismatch"
    NOT_WORKED_ON_CHAIN = "not_worked_on_chain"
    CHAIN_MISMATCH = "chain_mismatch"
    GAP_MISMATCH = "gap_mismatch"

    # --- a harvest
    NOT_WORKED = "not_worked"
    INVALID_WORK = "invalid_work"
    HARVEST_IN_PROGRESS = "harvest_in_progress"
    PAIL_EXPIRED = "pail_expired"

    #: a code this version does not know (sent by a newer peer)
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> ErrorCode:
        return cls.UNKNOWN
