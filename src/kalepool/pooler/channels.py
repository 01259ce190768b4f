"""Work channels: the pooler's accounts that submit works in parallel.

A Stellar account has one transaction pending at a time, so one account submits at most
one work per ledger (~5 s on mainnet). The pooler's own account plus accounts derived
from its secret (deterministically: the same after a restart, nothing more to keep
secret) submit works side by side. How many: :func:`channels_for` sizes them so that one
work per farmer goes out in ``submit_rounds`` ledgers. The pooler creates and tops them
up from its own account (through the gateway), so every fee is still paid by the pooler,
and no farmer secret is ever involved (``work`` needs no authorisation).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import structlog
from stellar_sdk import Keypair

from kalepool.stellar import AccountNotFound, FarmGateway, Payment

__all__ = ["ChannelPool", "channels_for", "derive_channels", "ensure_channels"]

#: createAccount or payment operations in one transaction at most
BATCH = 100

log = structlog.get_logger(__name__)

_LABEL = b"kalepool pooler work channel"


def derive_channels(main: Keypair, count: int) -> list[Keypair]:
    """``[main]`` plus ``count - 1`` keypairs derived from the main secret."""
    if count < 1:
        raise ValueError(f"count: must be >= 1, got {count}")
    seed = main.raw_secret_key()
    derived = [
        Keypair.from_raw_ed25519_seed(hashlib.sha256(_LABEL + seed + i.to_bytes(4, "big")).digest())
        for i in range(1, count)
    ]
    return [main, *derived]


def channels_for(farmers: int, *, rounds: int, minimum: int = 1, maximum: int = 1000) -> int:
    """Channels for one work per farmer in ``rounds`` ledgers (within ``[minimum, maximum]``)."""
    if rounds < 1:
        raise ValueError(f"rounds: must be >= 1, got {rounds}")
    return max(minimum, min(maximum, math.ceil(max(farmers, 1) / rounds)))


async def ensure_channels(
    gateway: FarmGateway, main: Keypair, channels: Sequence[Keypair], *, xlm: int
) -> dict[str, str]:
    """Create the derived channels that do not exist and top up the ones running low
    (below a quarter of ``xlm`` spendable), paid from ``main``. Returns what was done
    per channel address (``created``, ``topped_up``, ``ok``)."""
    info = await gateway.account(main.public_key)
    if not info.exists:
        raise AccountNotFound(main.public_key)
    others = [c for c in channels if c.public_key != main.public_key]
    if not others:
        return {}
    infos = await asyncio.gather(*(gateway.account(c.public_key) for c in others))
    create = [c.public_key for c, i in zip(others, infos, strict=True) if not i.exists]
    top_up = [
        Payment(c.public_key, xlm - i.xlm_spendable)
        for c, i in zip(others, infos, strict=True)
        if i.exists and i.xlm_spendable < xlm // 4
    ]
    done = {c.public_key: "ok" for c in others}
    for i in range(0, len(create), BATCH):  # one transaction per 100 (one source: in turn)
        batch = create[i : i + BATCH]
        await gateway.create_accounts(main, [Payment(a, xlm) for a in batch])
        done.update({a: "created" for a in batch})
    for i in range(0, len(top_up), BATCH):
        batch_payments = top_up[i : i + BATCH]
        await gateway.pay_many(main, batch_payments)
        done.update({p.destination: "topped_up" for p in batch_payments})
    if create or top_up:
        log.info("pooler.channels_funded", created=len(create), topped_up=len(top_up))
    return done


class ChannelPool:
    """Lends each channel to one submission at a time; more channels can join."""

    def __init__(self, channels: Sequence[Keypair]) -> None:
        if not channels:
            raise ValueError("channels: at least one")
        self.channels: list[Keypair] = []
        self._free: asyncio.Queue[Keypair] = asyncio.Queue()
        self.add(channels)

    def __len__(self) -> int:
        return len(self.channels)

    def add(self, channels: Sequence[Keypair]) -> None:
        """Lend these too (ready accounts: created and funded)."""
        known = {c.public_key for c in self.channels}
        for c in channels:
            if c.public_key not in known:
                self.channels.append(c)
                self._free.put_nowait(c)

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[Keypair]:
        channel = await self._free.get()
        try:
            yield channel
        finally:
            self._free.put_nowait(channel)
