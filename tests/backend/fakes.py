"""``FakeChain``: an in-memory stand-in for the Stellar gateway, for this slice's tests only.

It implements :class:`kalepool.backend.chain.Chain` over a dict of accounts, records every
call, and can be told to fail. The real gateway (``kalepool.stellar``) replaces it when it
lands; the backend never knows which one it talks to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from stellar_sdk import Keypair

from kalepool.backend.chain import (
    AccountInfo,
    ChainError,
    ChainHealth,
    HarvestOutcome,
    PailInfo,
    PlantOutcome,
    TrustlineOutcome,
)

TRUSTLINE_FEE = 100


@dataclass
class FakeChain:
    accounts: dict[str, AccountInfo] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    #: raised by the next call (then cleared)
    fail_next: ChainError | None = None
    latest_ledger: int = 1000

    def fund(self, account_id: str, xlm: int, kale: int | None = None) -> None:
        self.accounts[account_id] = AccountInfo(
            account_id, exists=True, xlm_balance=xlm, min_balance=10_000_000, kale_balance=kale
        )

    def _enter(self, method: str, subject: str) -> None:
        self.calls.append((method, subject))
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error

    async def health(self) -> ChainHealth:
        self._enter("health", "")
        return ChainHealth("Fake Network ; 2026", self.latest_ledger)

    async def account(self, account_id: str) -> AccountInfo:
        self._enter("account", account_id)
        return self.accounts.get(account_id, AccountInfo(account_id, exists=False))

    async def ensure_trustline(self, keypair: Keypair) -> TrustlineOutcome:
        self._enter("ensure_trustline", keypair.public_key)
        account = self.accounts[keypair.public_key]
        if account.has_kale_trustline:
            return TrustlineOutcome(created=False)
        self.accounts[keypair.public_key] = replace(
            account, kale_balance=0, xlm_balance=account.xlm_balance - TRUSTLINE_FEE
        )
        tx_hash = hashlib.sha256(b"trust:" + keypair.public_key.encode()).hexdigest()
        return TrustlineOutcome(created=True, tx_hash=tx_hash, fee_charged=TRUSTLINE_FEE)

    async def plant(self, keypair: Keypair, amount: int) -> PlantOutcome:  # next slice
        self._enter("plant", keypair.public_key)
        raise ChainError("FakeChain does not plant yet", code="not_implemented")

    async def pail(self, farmer: str, block_index: int) -> PailInfo | None:  # next slice
        self._enter("pail", farmer)
        return None

    async def harvest(self, keypair: Keypair, block_index: int) -> HarvestOutcome:  # next slice
        self._enter("harvest", keypair.public_key)
        raise ChainError("FakeChain does not harvest yet", code="not_implemented")
