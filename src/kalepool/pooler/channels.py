"""Work channels: the pooler's accounts that submit works in parallel.

A Stellar account applies one Soroban transaction per ledger, so one account submits
at most one work per ledger (~5 s on mainnet). The pooler's own account plus
``channels - 1`` accounts derived from its secret (deterministically: the same after a
restart, nothing more to keep secret) submit works side by side. The pooler creates
and tops them up from its own account, so every fee is still paid by the pooler, and
no farmer secret is ever involved (``work`` needs no authorisation).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import structlog
from stellar_sdk import Keypair, TransactionBuilder

from kalepool.stellar import AccountNotFound, FarmGateway, Payment

__all__ = ["ChannelPool", "derive_channels", "ensure_channels"]

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


def _amount(stroops: int) -> str:
    return f"{stroops // 10_000_000}.{stroops % 10_000_000:07d}"


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
    if create:

        def build(builder: TransactionBuilder) -> None:
            for address in create:
                builder.append_create_account_op(address, _amount(xlm))

        await gateway.pipeline.classic(main, build)
        done.update({a: "created" for a in create})
        log.info("pooler.channels_created", count=len(create))
    if top_up:
        await gateway.pay_many(main, top_up)
        done.update({p.destination: "topped_up" for p in top_up})
        log.info("pooler.channels_topped_up", count=len(top_up))
    return done


class ChannelPool:
    """Lends each channel to one submission at a time."""

    def __init__(self, channels: Sequence[Keypair]) -> None:
        if not channels:
            raise ValueError("channels: at least one")
        self.channels = list(channels)
        self._free: asyncio.Queue[Keypair] = asyncio.Queue()
        for c in self.channels:
            self._free.put_nowait(c)

    def __len__(self) -> int:
        return len(self.channels)

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[Keypair]:
        channel = await self._free.get()
        try:
            yield channel
        finally:
            self._free.put_nowait(channel)
