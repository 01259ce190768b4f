"""Enums named on the wire (stored as text by the backend, compared by the pooler)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Attribution", "FarmerStatus", "FundingState"]


class Attribution(StrEnum):
    """Who a failure is blamed on (and so who bears its cost)."""

    FARMER = "farmer"  # e.g. not enough KALE or XLM in the custodial account
    POOLER = "pooler"  # e.g. a late plant request, a missing or invalid work
    BACKEND = "backend"  # our own fault (a bug, a database error)
    CHAIN = "chain"  # the network: RPC down, farm paused, fees spiked


class FarmerStatus(StrEnum):
    #: planted every block its pooler asks for
    ACTIVE = "active"
    #: asked to leave: no new plantings, open pails are still harvested, then paid out
    LEAVING = "leaving"
    #: paid out and closed; nothing more happens
    DEPARTED = "departed"


class FundingState(StrEnum):
    #: the custodial account does not exist on chain yet, or holds too little XLM
    UNFUNDED = "unfunded"
    #: enough XLM for fees and reserves; the KALE trustline is not there yet
    FUNDED = "funded"
    #: funded and the KALE trustline exists: the farmer can be planted
    READY = "ready"
