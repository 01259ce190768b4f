"""Request and response bodies of ``/api/v1``: one model per direction.

The pooler API's bodies live in the shared wire contract (:mod:`kalepool.wire.pooler`,
with the field types both use); the operator's and farmers' are here.

Inbound models forbid unknown fields and are strict where JSON has the type: an integer
field takes a JSON integer only (not ``"3"``, ``true`` or ``1e3``), bounded to its column
(``Int32``, ``BlockIndex``, ``U64``); a number is finite; text holds no control character
(PostgreSQL cannot store NUL); every list is bounded. No outbound model has a field for a
secret: the sealed secret lives only on the ``farmers`` row. Amounts are integers in
stroops; hashes, entropy and transaction hashes are lowercase hex; ``stake_percentage`` is
a JSON number from 0 to 100 with at most two decimals (stored as basis points).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)
from stellar_sdk import StrKey

from kalepool.backend.enums import FarmerStatus, FundingState, PoolerStatus
from kalepool.wire.pooler import (
    PayoutPublic,
    StakePercentageOut,
    Stroops,
)

# --- field types -----------------------------------------------------------------------------


def _check_account(value: str) -> str:
    if not StrKey.is_valid_ed25519_public_key(value):
        raise ValueError("must be a Stellar account address (G..., 56 characters)")
    return value


StellarAccount = Annotated[
    str,
    Field(
        min_length=56, max_length=56, examples=["GBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"]
    ),
    AfterValidator(_check_account),
]
#: offsets of paged listings
MAX_OFFSET = 1_000_000



def _stake_number(value: Any) -> Any:
    """A JSON number only (not a string, not a boolean); a float that is a multiple of 0.01
    up to float rounding (``0.07`` arrives as ``0.07000000000000001`` from some clients) is
    taken as that multiple."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a JSON number")
    if isinstance(value, float):
        if not -1e6 < value < 1e6:  # NaN, infinities and the far out of range
            raise ValueError("must be a number from 0 to 100")
        exact = Decimal(repr(value))
        rounded = exact.quantize(Decimal("0.01"))
        return rounded if abs(exact - rounded) < Decimal("1e-9") else exact
    return value


def number_from_form(text: str) -> int | Decimal | str:
    """An HTML form's number field as the number a JSON client sends (forms send text,
    these models take JSON numbers only): an int, or a Decimal; the text itself when it is
    not a finite number, so that validation names the field."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return text
    if not value.is_finite():
        return text
    return int(value) if value == value.to_integral_value() and "." not in text else value


StakePercentageIn = Annotated[
    Decimal,
    BeforeValidator(_stake_number),
    Field(ge=0, le=100, decimal_places=2),
    WithJsonSchema(
        {
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "multipleOf": 0.01,
            "description": "share of the KALE balance staked, % (at most two decimals)",
        }
    ),
]


def stake_bps(percentage: Decimal) -> int:
    return int(percentage * 100)


def stake_percentage(bps: int) -> float:
    return bps / 100


def _not_null(kind: Any) -> WithJsonSchema:
    """The JSON schema of ``kind`` for an optional field that may be left out, not sent
    as null."""
    return WithJsonSchema(TypeAdapter(kind).json_schema())


class Inbound(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors ----------------------------------------------------------------------------------


# --- health ----------------------------------------------------------------------------------


class Health(BaseModel):
    status: str = Field(examples=["ok", "degraded"])
    version: str
    checks: dict[str, str] = Field(
        default_factory=dict, description="reconciliation: ok, mismatch, error or not_run (this process)"
    )


class DatabaseHealth(BaseModel):
    status: str
    revision: str | None = Field(description="the Alembic revision of the database")
    expected_revision: str


class StellarHealth(BaseModel):
    status: str
    network_passphrase: str | None = None
    latest_ledger: int | None = None
    detail: str | None = None


# --- operator --------------------------------------------------------------------------------


class PoolerCreate(Inbound):
    """Body of ``POST /poolers``."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    public_key: StellarAccount | None = Field(default=None, description="the pooler's own account")
    reward_share_bps: int = Field(
        default=0, strict=True, ge=0, le=10_000, description="share of its farmers' rewards"
    )
    max_farmers: int | None = Field(default=None, strict=True, ge=1, le=1_000_000)


class PoolerPublic(BaseModel):
    pooler_id: uuid.UUID
    name: str
    public_key: str | None
    status: PoolerStatus
    reward_share_bps: int
    max_farmers: int | None
    farmers: int = Field(description="farmers that have not departed")
    plantable_farmers: int = Field(description="active, funded, with the KALE trustline")
    last_heartbeat_at: datetime | None
    created_at: datetime


class PoolerCreated(BaseModel):
    """The new pooler and its API key. The key is shown only in this answer."""

    pooler: PoolerPublic
    api_key: str


class PoolerList(BaseModel):
    poolers: list[PoolerPublic]
    count: int


class BlockOperationPublic(BaseModel):
    pooler_id: uuid.UUID
    entropy: str | None
    plant_requested_at: datetime | None
    plant_completed_at: datetime | None
    work_reported_at: datetime | None
    harvest_completed_at: datetime | None
    farmers_planted: int
    farmers_failed: int
    works_accepted: int
    works_rejected: int
    harvests_succeeded: int
    harvests_failed: int
    total_staked: Stroops
    total_rewards: Stroops
    total_compensation: Stroops
    xlm_fees: Stroops


class BlockPublic(BaseModel):
    block_index: int
    poolers: list[BlockOperationPublic]
    plantings: dict[str, int] = Field(description="count by status")
    works: dict[str, int]
    harvests: dict[str, int]


# --- farmers ---------------------------------------------------------------------------------


class FarmerCreate(Inbound):
    """Body of ``POST /farmers``."""

    pooler_id: uuid.UUID
    payout_wallet: StellarAccount
    stake_percentage: StakePercentageIn


class FundingStepPublic(BaseModel):
    number: int
    action: str
    amount: Stroops | None = Field(description="stroops to send in this step (null: none, or any)")
    asset: str | None = Field(description="XLM or KALE when this step sends an asset")
    done: bool


class FundingInstructions(BaseModel):
    custodial_wallet: str
    min_xlm_balance: Stroops = Field(description="XLM the account needs to count as funded")
    note: str
    steps: list[FundingStepPublic] = Field(description="the funding steps, in the order the chain needs")


class FundingStatusPublic(BaseModel):
    """The custodial account as the chain shows it, and what it still lacks."""

    custodial_wallet: str
    min_xlm_balance: Stroops
    chain_known: bool = Field(description="false when the chain could not be read (figures unknown)")
    xlm_balance: Stroops
    kale_balance: Stroops | None = Field(description="null while there is no KALE trustline")
    missing: list[str] = Field(description="what stops planting: xlm, trustline, kale")
    ready: bool
    steps: list[FundingStepPublic]


class FarmerRegistered(BaseModel):
    """The new farmer. ``farmer_token`` is shown only in this answer: keep it."""

    farmer_id: uuid.UUID
    pooler_id: uuid.UUID
    custodial_wallet: str
    payout_wallet: str
    stake_percentage: StakePercentageOut
    needs_funding: bool
    funding: FundingInstructions
    farmer_token: str


class FarmerPublic(BaseModel):
    farmer_id: uuid.UUID
    pooler_id: uuid.UUID
    custodial_wallet: str
    payout_wallet: str
    stake_percentage: StakePercentageOut
    status: FarmerStatus
    funding_state: FundingState
    funded_at: datetime | None
    created_at: datetime
    updated_at: datetime


class FarmerUpdate(Inbound):
    """Body of ``PATCH /farmers/{id}``: at least one field; a field left out is unchanged."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    stake_percentage: Annotated[StakePercentageIn | None, _not_null(StakePercentageIn)] = None
    payout_wallet: Annotated[StellarAccount | None, _not_null(StellarAccount)] = None
    pooler_id: Annotated[uuid.UUID | None, _not_null(uuid.UUID)] = Field(
        default=None, description="move to another pooler (once no block of the farmer is open)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(k for k, v in data.items() if v is None)
            if nulls:
                raise ValueError(f"leave {', '.join(nulls)} out instead of sending null")
        return data

    @model_validator(mode="after")
    def _not_empty(self) -> FarmerUpdate:
        if self.stake_percentage is None and self.payout_wallet is None and self.pooler_id is None:
            raise ValueError("give stake_percentage, payout_wallet, pooler_id or several")
        return self


class FundingConfirmed(BaseModel):
    farmer: FarmerPublic
    trustline_created: bool
    trustline_tx_hash: str | None
    deposits_journaled: Stroops = Field(description="KALE this confirmation recorded as deposits")
    funding: FundingStatusPublic


class PlantingPublic(BaseModel):
    block_index: int
    status: str
    stake_amount: Stroops
    tx_hash: str | None
    entropy: str | None
    error_code: str | None
    attributed_to: str | None
    created_at: datetime


class WorkPublic(BaseModel):
    block_index: int
    status: str
    zeros: int | None
    gap: int | None
    hash: str | None
    reason: str | None
    created_at: datetime


class HarvestPublic(BaseModel):
    block_index: int
    status: str
    reward: Stroops | None
    stake_returned: Stroops | None
    tx_hash: str | None
    error_code: str | None
    created_at: datetime


class BalanceChangePublic(BaseModel):
    kind: str
    asset: str
    amount: Stroops
    block_index: int | None
    reference: str
    usage: str
    created_at: datetime


class FarmerBalances(BaseModel):
    """Net balances from the journal, per asset, and the KALE totals by kind."""

    kale: Stroops
    xlm: Stroops = Field(description="net XLM movements the pool made (fees spent are negative)")
    kale_by_kind: dict[str, int]
    xlm_by_kind: dict[str, int]


class FarmerDetailPublic(FarmerPublic):
    balances: FarmerBalances
    recent_plantings: list[PlantingPublic]
    recent_works: list[WorkPublic]
    recent_harvests: list[HarvestPublic]
    recent_balance_changes: list[BalanceChangePublic]
    recent_payouts: list[PayoutPublic] = Field(description="payments to its payout wallet, newest first")
    funding: FundingStatusPublic


def hex_or_none(value: bytes | None) -> str | None:
    return value.hex() if value is not None else None
