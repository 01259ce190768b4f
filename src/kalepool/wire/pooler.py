"""The bodies of ``/api/v1/pooler/*``: the requests a pooler sends and the answers it reads.

Requests forbid unknown fields (the backend refuses them: 422). Answers allow them, so an
older pooler can read a newer backend's answer; :func:`kalepool.wire.parse` reports what
it did not know. One name per concept end to end: ``block_index`` is always the block a
thing happened in (for a planted farmer: the block its plant really landed in).
Amounts are integers in stroops; hashes, entropy and transaction hashes lowercase hex.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

from kalepool.wire.codes import ErrorCode
from kalepool.wire.enums import Attribution, FarmerStatus, FundingState

__all__ = [
    "INT32_MAX",
    "MAX_ITEMS",
    "BlockIndex",
    "CompensationPublic",
    "ErrorBody",
    "ErrorResponse",
    "FailedHarvest",
    "FailedPlant",
    "HarvestBlock",
    "HarvestRequest",
    "HarvestResponse",
    "HarvestResult",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "Hex32",
    "Int32",
    "NetworkFacts",
    "PayoutPublic",
    "PlantRequest",
    "PlantResponse",
    "PlantSummary",
    "PlantedFarmer",
    "PoolerEarnings",
    "PoolerFarmer",
    "PoolerFarmerList",
    "ReadyForHarvest",
    "RejectedWork",
    "Stroops",
    "Text",
    "WorkCompleteRequest",
    "WorkCompleteResponse",
    "WorkResult",
]

INT32_MAX = 2**31 - 1
#: the most items one request may list (work results, farmers to harvest): its queries
#: stay far below PostgreSQL's 65,535 bind parameters, its answer a few megabytes
MAX_ITEMS = 10_000

BlockIndex = Annotated[
    int, Field(strict=True, ge=0, le=2**32 - 1, description="KALE farm block index (u32)")
]
#: an integer stored in an INTEGER column (or compared with one)
Int32 = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]
Stroops = Annotated[int, Field(description="amount in stroops (1 KALE = 10,000,000)")]
Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="32 bytes, lowercase hex")]
#: free text from a client: no control characters (NUL cannot be stored)
Text = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]
StakePercentageOut = Annotated[float, PlainSerializer(float, return_type=float)]


class Request(BaseModel):
    """A body the backend reads: unknown fields are refused; an integer field takes a JSON
    integer only (not ``"3"``, ``true`` or ``1e3``), bounded to its column; a number is
    finite; text holds no control character; every list is bounded."""

    model_config = ConfigDict(extra="forbid")


class Answer(BaseModel):
    """A body the pooler reads: unknown fields are kept aside (see :func:`kalepool.wire.parse`)."""

    model_config = ConfigDict(extra="allow")


# --- errors ----------------------------------------------------------------------------------


class ErrorBody(Answer):
    code: str = Field(
        description="machine-readable, stable (kalepool.wire.ErrorCode)", examples=["invalid_token"]
    )
    message: str = Field(description="for humans")
    field: str | None = Field(default=None, description="the request field at fault, if any")


class ErrorResponse(Answer):
    """Every 4xx and 5xx answer has this body."""

    error: ErrorBody


# --- the pooler's farmers and earnings -------------------------------------------------------


class PoolerFarmer(Answer):
    farmer_id: uuid.UUID
    custodial_wallet: str
    status: FarmerStatus
    funding_state: FundingState
    stake_percentage: StakePercentageOut
    created_at: datetime


class PoolerFarmerList(Answer):
    pooler_id: uuid.UUID
    farmers: list[PoolerFarmer]
    count: int = Field(description="farmers in this page")
    total: int = Field(description="farmers matching the filters")


class PayoutPublic(Answer):
    id: int
    kind: str = Field(
        description="payout (rewards or fees to a wallet), or compensation (into a farmer's account)"
    )
    amount: Stroops
    asset: str
    destination: str
    status: str = Field(description="pending, submitted, confirmed or failed")
    tx_hash: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime


class PoolerEarnings(Answer):
    """``GET /pooler/earnings``: the pooler's share of its farmers' rewards, and its payouts."""

    pooler_id: uuid.UUID
    account: str | None = Field(description="the pooler's own Stellar account, where its KALE is sent")
    kale_by_kind: dict[str, Stroops] = Field(
        description="the pooler's journal: pooler_share (+), compensation_owed (-), payout (-), ..."
    )
    claim: Stroops = Field(description="owed to the pooler now: the sum of its journal")
    held_in_custody: Stroops = Field(
        description="its fees still in its farmers' custodial accounts (sent by payout runs, up to the claim)"
    )
    recent_payouts: list[PayoutPublic]


# --- heartbeat -------------------------------------------------------------------------------


class NetworkFacts(Request):
    """The network a pooler works on, as it learnt it from the network (the backend
    compares them with its own: a difference is refused, 409 ``network_mismatch``)."""

    passphrase: Text = Field(max_length=256)
    farm_contract_id: Text = Field(max_length=56)
    kale_sac_id: Text = Field(max_length=56)
    block_interval: Int32


class HeartbeatRequest(Request):
    pooler_id: uuid.UUID
    network: NetworkFacts | None = Field(default=None, description="the pooler's network: checked")
    status: Text | None = Field(default=None, max_length=64, examples=["mining"])
    version: Text | None = Field(default=None, max_length=64)
    hash_rate: float | None = Field(
        default=None, strict=True, allow_inf_nan=False, ge=0, le=1e18, description="hashes per second"
    )
    current_block: BlockIndex | None = None
    farmers_mining: Int32 | None = None


class HeartbeatResponse(Answer):
    pooler_id: uuid.UUID
    received_at: datetime
    plantable_farmers: int = Field(description="its farmers a plant-request would plant now")


# --- plant-request ---------------------------------------------------------------------------


class PlantRequest(Request):
    """Body of ``POST /pooler/plant-request``."""

    block_index: BlockIndex = Field(
        description="the block to plant in: the farm's index, or index + 1 when the block is ripe"
    )
    pooler_id: uuid.UUID
    network: NetworkFacts | None = Field(default=None, description="the pooler's network: checked")
    max_farmers_capacity: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=INT32_MAX,
        description="plant at most this many farmers in the block (already planted count)",
    )


class PlantedFarmer(Answer):
    farmer_id: uuid.UUID
    custodial_wallet: str
    stake_amount: Stroops
    plant_tx_hash: str
    block_index: int = Field(description="the block the plant really landed in: mine against this index")
    entropy: Hex32 = Field(description="Block(block_index).entropy: mine against this")
    already_planted: bool = Field(description="planted by an earlier request (or found planted on chain)")


class FailedPlant(Answer):
    farmer_id: uuid.UUID
    error: ErrorCode = Field(description="machine-readable code")
    message: str
    attributed_to: Attribution

    @property
    def retryable(self) -> bool:
        """Worth asking again in the same block: the chain's or the backend's trouble (an
        RPC stall, a sequence another process used, a claim held elsewhere), not the
        farmer's account nor a wrong block."""
        if self.error in (ErrorCode.STALE_BLOCK, ErrorCode.OVER_CAPACITY):
            return False
        if self.error == ErrorCode.FUTURE_BLOCK:
            return True
        return self.attributed_to in (Attribution.CHAIN, Attribution.BACKEND)


class PlantSummary(Answer):
    requested_block_index: int
    farm_index: int = Field(description="the farm's index when the request was handled")
    eligible: int = Field(description="the pooler's active farmers with a ready custodial account")
    planted: int = Field(description="planted by this request")
    already_planted: int = Field(description="listed in planted_farmers but planted before")
    failed: int
    skipped_capacity: int = Field(description="left out because of max_farmers_capacity")
    total_staked: Stroops = Field(description="stake burned by this request's plants")
    xlm_fees: Stroops = Field(description="XLM fees this request's transactions paid")
    duration_ms: int


class PlantResponse(Answer):
    planted_farmers: list[PlantedFarmer]
    failed_plants: list[FailedPlant]
    summary: PlantSummary

    def by_block(self) -> dict[int, list[PlantedFarmer]]:
        """The planted farmers grouped by the block their plant landed in."""
        out: dict[int, list[PlantedFarmer]] = {}
        for p in self.planted_farmers:
            out.setdefault(p.block_index, []).append(p)
        return out


# --- work-complete ---------------------------------------------------------------------------


class WorkResult(Request):
    farmer_id: uuid.UUID
    nonce: int = Field(strict=True, ge=0, le=2**64 - 1, description="u64")
    hash: Hex32
    zeros: int = Field(strict=True, ge=0, le=64, description="leading zero nibbles of the hash")
    gap: Int32 | None = Field(default=None, description="ledgers between plant and work, as work returned")
    tx_hash: Hex32 | None = Field(default=None, description="the work transaction")


class WorkCompleteRequest(Request):
    """Body of ``POST /pooler/work-complete``."""

    block_index: BlockIndex
    pooler_id: uuid.UUID
    work_results: list[WorkResult] = Field(max_length=MAX_ITEMS)


class RejectedWork(Answer):
    farmer_id: uuid.UUID
    reason: ErrorCode
    message: str


class CompensationPublic(Answer):
    farmer_id: uuid.UUID
    reason: str = Field(examples=["not_worked", "invalid_work"])
    amount: Stroops = Field(description="owed by the pooler: the stake at risk")


class ReadyForHarvest(Answer):
    farmer_id: uuid.UUID
    block_index: int


class WorkCompleteResponse(Answer):
    block_index: int
    work_recorded: int = Field(description="results of this request accepted (now or by an earlier call)")
    rejected: list[RejectedWork]
    compensation_amount: Stroops = Field(description="the pooler's total compensation for this block")
    compensations: list[CompensationPublic]
    ready_for_harvest: list[ReadyForHarvest]


# --- harvest-request -------------------------------------------------------------------------


class HarvestBlock(Request):
    block_index: BlockIndex
    farmer_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_ITEMS)


class HarvestRequest(Request):
    """Body of ``POST /pooler/harvest-request``: at most 10,000 farmer ids in all."""

    pooler_id: uuid.UUID
    harvest_blocks: list[HarvestBlock] = Field(min_length=1, max_length=1_000)

    @field_validator("harvest_blocks")
    @classmethod
    def _bounded(cls, blocks: list[HarvestBlock]) -> list[HarvestBlock]:
        total = sum(len(b.farmer_ids) for b in blocks)
        if total > MAX_ITEMS:
            raise ValueError(f"{total} farmer ids: at most {MAX_ITEMS} in one request")
        return blocks


class HarvestResult(Answer):
    farmer_id: uuid.UUID
    block_index: int
    reward: Stroops = Field(description="the harvest transaction's return value")
    stake_returned: Stroops
    harvest_tx_hash: str
    pooler_share: Stroops
    platform_fee: Stroops
    farmer_reward: Stroops = Field(description="reward - pooler_share - platform_fee")
    already_harvested: bool


class FailedHarvest(Answer):
    farmer_id: uuid.UUID
    block_index: int
    error: ErrorCode
    message: str
    attributed_to: Attribution


class HarvestResponse(Answer):
    harvest_results: list[HarvestResult]
    failed_harvests: list[FailedHarvest]
    total_rewards: Stroops = Field(description="sum of reward over harvest_results")
