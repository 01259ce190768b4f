"""``FakeChain``: an in-memory stand-in for the chain, for the tests that need no farm.

It implements :class:`kalepool.backend.chain.Chain` over a dict of accounts (funding and
trustlines), records every call, and can be told to fail. Farm actions are not modelled:
the chain-facing tests run the real gateway against the in-process devnet
(``tests/backend/devnet_env.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from stellar_sdk import Keypair

from kalepool.backend.chain import (
    AccountInfo,
    ChainError,
    ChainHealth,
    FarmView,
    HarvestOutcome,
    OnSigned,
    PailInfo,
    PaymentOutcome,
    PlantOutcome,
    TrustlineOutcome,
)
from kalepool.kale.networks import DEVNET, NetworkFacts

TRUSTLINE_FEE = 100


@dataclass
class FakeChain:
    ledger: dict[str, AccountInfo] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    #: raised by the next call (then cleared)
    fail_next: ChainError | None = None
    latest_ledger: int = 1000
    facts: NetworkFacts = field(
        default_factory=lambda: NetworkFacts(
            network="devnet",
            passphrase=DEVNET.passphrase,
            farm_contract_id=DEVNET.farm_contract_id,
            kale_sac_id=DEVNET.kale_sac_id,
            block_interval=DEVNET.block_interval,
            ledger_seconds=5.0,
        )
    )

    def fund(self, account_id: str, xlm: int, kale: int | None = None) -> None:
        self.ledger[account_id] = AccountInfo(
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
        return self.ledger.get(account_id, AccountInfo(account_id, exists=False))

    async def accounts(self, account_ids: Iterable[str]) -> dict[str, AccountInfo]:
        return {a: await self.account(a) for a in account_ids}

    async def ensure_trustline(self, keypair: Keypair) -> TrustlineOutcome:
        self._enter("ensure_trustline", keypair.public_key)
        account = self.ledger[keypair.public_key]
        if account.has_kale_trustline:
            return TrustlineOutcome(created=False)
        self.ledger[keypair.public_key] = replace(
            account, kale_balance=0, xlm_balance=account.xlm_balance - TRUSTLINE_FEE
        )
        tx_hash = hashlib.sha256(b"trust:" + keypair.public_key.encode()).hexdigest()
        return TrustlineOutcome(created=True, tx_hash=tx_hash, fee_charged=TRUSTLINE_FEE)

    async def farm(self) -> FarmView:
        self._enter("farm", "")
        return FarmView(
            index=1,
            entropy=bytes(32),
            ripe=False,
            paused=False,
            latest_ledger=self.latest_ledger,
            close_time=0,
        )

    async def network(self) -> NetworkFacts:
        self._enter("network", "")
        return self.facts

    async def block_entropy(self, block_index: int) -> bytes | None:
        self._enter("block_entropy", str(block_index))
        return bytes(32)

    async def plant(
        self, keypair: Keypair, amount: int, *, on_signed: OnSigned | None = None
    ) -> PlantOutcome:
        self._enter("plant", keypair.public_key)
        raise ChainError("FakeChain does not plant", code="not_implemented")

    async def pails(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], PailInfo | None]:
        pairs = list(pairs)
        self._enter("pails", str(len(pairs)))
        return dict.fromkeys(pairs)

    async def harvest(
        self, keypair: Keypair, block_index: int, *, on_signed: OnSigned | None = None
    ) -> HarvestOutcome:
        self._enter("harvest", keypair.public_key)
        raise ChainError("FakeChain does not harvest", code="not_implemented")

    async def resume(self, tx_hash: str, envelope_xdr: str) -> PlantOutcome | HarvestOutcome | None:
        self._enter("resume", tx_hash)
        raise ChainError("FakeChain resumes nothing", code="not_implemented")

    async def pay(
        self, keypair: Keypair, destination: str, amount: int, *, on_signed: OnSigned | None = None
    ) -> PaymentOutcome:
        self._enter("pay", keypair.public_key)
        raise ChainError("FakeChain does not pay", code="not_implemented")

    async def resume_payment(self, tx_hash: str, envelope_xdr: str) -> PaymentOutcome:
        self._enter("resume_payment", tx_hash)
        raise ChainError("FakeChain resumes nothing", code="not_implemented")
