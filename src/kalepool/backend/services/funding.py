"""What a farmer's custodial account still lacks to farm, and the funding steps in order.

The order follows the chain: the account must exist with XLM before the backend can add
the KALE trustline (``confirm-funding``), and KALE can only arrive once the trustline is
there; confirming again journals the deposit. Amounts are stroops.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from kalepool.backend import journal
from kalepool.backend.chain import AccountInfo, Chain, ChainError, TrustlineOutcome
from kalepool.backend.db.models import Farmer
from kalepool.backend.enums import Asset, FundingState
from kalepool.backend.logs import get_logger
from kalepool.backend.services import farmers
from kalepool.backend.services.common import ChainOps
from kalepool.backend.services.reconcile import reconcile

__all__ = ["Confirmation", "FundingStatus", "FundingStep", "confirm", "funding_status"]

log = get_logger(__name__)


@dataclass(frozen=True)
class FundingStep:
    number: int
    action: str
    #: stroops to send in this step (``None``: no amount, or any amount)
    amount: int | None
    asset: str | None
    done: bool


@dataclass(frozen=True)
class FundingStatus:
    """The custodial account as the chain shows it, beside the pool's funding rule.

    ``chain_known`` is False when the chain could not be read: the figures are then
    unknown (zeros) and nothing is reported missing."""

    account: str
    funding_state: str
    min_xlm_balance: int
    chain_known: bool
    exists: bool = False
    xlm_balance: int = 0
    kale_balance: int | None = None
    #: KALE journaled as the farmer's own (deposits, rewards... less stakes and payouts)
    journal_kale: int = 0

    @property
    def xlm_missing(self) -> int:
        """Stroops of XLM the account still needs to count as funded."""
        return max(0, self.min_xlm_balance - self.xlm_balance) if self.chain_known else 0

    @property
    def has_trustline(self) -> bool:
        return self.kale_balance is not None

    @property
    def missing(self) -> list[str]:
        """What stops the farmer from being planted: ``xlm``, ``trustline``, ``kale``."""
        if not self.chain_known:
            return []
        out = []
        if not self.exists or self.xlm_missing:
            out.append("xlm")
        if not self.has_trustline or self.funding_state != FundingState.READY.value:
            out.append("trustline")
        if not self.kale_balance:
            out.append("kale")
        return out

    @property
    def ready(self) -> bool:
        return self.chain_known and not self.missing

    @property
    def steps(self) -> list[FundingStep]:
        funded = self.chain_known and self.exists and not self.xlm_missing
        trusted = self.funding_state == FundingState.READY.value
        has_kale = bool(self.kale_balance)
        return [
            FundingStep(
                1,
                "Send XLM to the custodial address (it creates the account)",
                self.min_xlm_balance,
                "XLM",
                funded,
            ),
            FundingStep(2, "Confirm the funding: the pool adds the KALE trustline", None, None, trusted),
            FundingStep(3, "Send the KALE to farm with to the custodial address", None, "KALE", has_kale),
            FundingStep(
                4,
                "Confirm again: the pool records the deposit and plants you from the next block",
                None,
                None,
                trusted and has_kale and self.journal_kale > 0,
            ),
        ]


async def funding_status(
    chain: Chain, farmer: Farmer, *, min_xlm_balance: int, journal_kale: int = 0
) -> FundingStatus:
    """Read the farmer's custodial account and say what it lacks (never raises for the
    chain: an unreadable chain gives ``chain_known=False``)."""
    try:
        info: AccountInfo = await chain.account(farmer.public_key)
    except ChainError:
        return FundingStatus(
            farmer.public_key, farmer.funding_state, min_xlm_balance, False, journal_kale=journal_kale
        )
    return FundingStatus(
        account=farmer.public_key,
        funding_state=farmer.funding_state,
        min_xlm_balance=min_xlm_balance,
        chain_known=True,
        exists=info.exists,
        xlm_balance=info.xlm_balance,
        kale_balance=info.kale_balance,
        journal_kale=journal_kale,
    )


@dataclass(frozen=True)
class Confirmation:
    """What one ``confirm-funding`` did, and what the account still lacks."""

    farmer: Farmer
    #: the KALE trustline this confirmation added (``None``: none was needed yet)
    trustline: TrustlineOutcome | None
    #: stroops of KALE this confirmation journaled as deposits
    deposited: int
    status: FundingStatus


async def confirm(ops: ChainOps, *, farmer_id: uuid.UUID) -> Confirmation:
    """Check the account (adding the KALE trustline once it holds the XLM), then journal
    every deposit not journaled yet: each confirmation records the KALE that arrived
    since the last one. Raises what :func:`farmers.confirm_funding` raises while the
    account is not funded; a chain failure while checking for deposits is logged (the
    reconciler records them later)."""
    minimum = ops.settings.min_xlm_balance
    result = await farmers.confirm_funding(
        ops.db, ops.chain, ops.signer, farmer_id=farmer_id, min_xlm_balance=minimum
    )
    deposited = 0
    try:
        deposited = (await reconcile(ops, farmer_ids=[farmer_id])).deposited
    except ChainError as exc:
        log.warning("deposit check after funding failed", farmer_id=str(farmer_id), error=exc.code)
    async with ops.db.transaction() as session:
        kale = (await journal.farmer_balances(session, farmer_id))[Asset.KALE]
    status = await funding_status(ops.chain, result.farmer, min_xlm_balance=minimum, journal_kale=kale)
    return Confirmation(result.farmer, result.trustline, deposited, status)
