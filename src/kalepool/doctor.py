"""``kalepool doctor``: is this machine's configuration one a pool can run on?

Each check gives one line: the settings, the database (reachable, migrated to the head
revision), the master key, the network (the RPC answers and serves the network the
settings name; the facts every part learns from it), the pool's custodial accounts and
the pooler's own account (XLM for their fees), the platform's wallet (it exists and holds
a KALE trustline, or the fee payouts to it fail and wait ``backend.payout_retry_seconds``).
A check that does not apply here (no
pooler secret configured, an embedded database that is not running) is skipped, never
failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kalepool.errors import KalePoolError
from kalepool.settings import Settings

__all__ = ["Check", "run_checks"]

Verdict = Literal["ok", "FAIL", "skip"]
XLM = 10_000_000


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str

    def line(self) -> str:
        return f"{self.verdict:4}  {self.name}: {self.detail}"


def _database_url(settings: Settings) -> tuple[str | None, str]:
    """The database's URL (``None`` when the embedded one is not running) and a description."""
    if settings.database.url is not None:
        from sqlalchemy.engine import make_url

        url = settings.database.url.get_secret_value()
        return url, make_url(url).render_as_string(hide_password=True)
    from kalepool.backend.db.embedded import running_port

    data_dir = settings.database.data_dir.expanduser().resolve()
    port = running_port(data_dir)
    if port is None:
        return None, f"embedded at {data_dir}"
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", f"embedded at {data_dir}, port {port}"


def check_database(settings: Settings) -> Check:
    from kalepool.backend.db import migrate

    url, where = _database_url(settings)
    if url is None:
        return Check(
            "database", "skip", f"{where}: not running (`backend serve` or `backend database` starts it)"
        )
    try:
        current = migrate.current_revision(url)
    except Exception as exc:  # any driver error: the line says what it was
        return Check(
            "database", "FAIL", f"{where}: cannot connect ({type(exc).__name__}: {str(exc).strip()[:160]})"
        )
    head = migrate.head_revision()
    if current != head:
        return Check(
            "database", "FAIL", f"{where}: at revision {current}, not {head}: run `kalepool backend migrate`"
        )
    return Check("database", "ok", f"{where}, migrated ({head})")


def check_master_key(settings: Settings) -> Check:
    from kalepool.backend.runtime import keyring_from

    try:
        keyring = keyring_from(settings)
    except KalePoolError as exc:
        return Check("master key", "FAIL", str(exc))
    return Check("master key", "ok", f"active key {keyring.active_key_id}")


def check_network(settings: Settings) -> Check:
    from kalepool.backend.stellar_chain import learn_network

    try:
        facts = learn_network(settings.stellar)
    except KalePoolError as exc:
        return Check("network", "FAIL", str(exc))
    return Check(
        "network",
        "ok",
        f"{facts.network} at {settings.stellar.profile().rpc_urls[0]}: blocks of {facts.block_interval} s, "
        f"ledgers of ~{facts.ledger_seconds:g} s, farm {facts.farm_contract_id[:8]}…",
    )


async def _custodial_accounts(settings: Settings, url: str) -> Check:
    from sqlalchemy import select

    from kalepool.backend.db.models import Farmer
    from kalepool.backend.db.session import Database
    from kalepool.backend.enums import FarmerStatus, FundingState
    from kalepool.backend.stellar_chain import GatewayChain

    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as session:
            keys = list(
                (
                    await session.scalars(
                        select(Farmer.public_key).where(
                            Farmer.status == FarmerStatus.ACTIVE.value,
                            Farmer.funding_state == FundingState.READY.value,
                        )
                    )
                ).all()
            )
    finally:
        await db.dispose()
    if not keys:
        return Check("pool accounts", "skip", "no farmer is ready yet")
    chain = GatewayChain.from_settings(settings.stellar)
    try:
        accounts = await chain.accounts(keys)
    finally:
        await chain.aclose()
    minimum = settings.backend.min_fee_xlm
    short = [a for a in accounts.values() if a.spendable_xlm < minimum]
    if short:
        return Check(
            "pool accounts",
            "FAIL",
            f"{len(short)} of {len(keys)} ready custodial accounts hold less than {minimum / XLM:g} "
            f"spendable XLM for fees (e.g. {short[0].account_id})",
        )
    return Check("pool accounts", "ok", f"{len(keys)} ready custodial accounts can pay their fees")


def check_custodial_accounts(settings: Settings) -> Check:
    url, where = _database_url(settings)
    if url is None:
        return Check("pool accounts", "skip", f"the database ({where}) is not running")
    try:
        return asyncio.run(_custodial_accounts(settings, url))
    except Exception as exc:  # the database or the chain: said in one line
        return Check("pool accounts", "FAIL", f"{type(exc).__name__}: {str(exc).strip()[:160]}")


async def _pooler_account(settings: Settings) -> Check:
    from kalepool.pooler.channels import derive_channels
    from kalepool.pooler.runner import load_keypair
    from kalepool.stellar import FarmGateway

    ps = settings.pooler
    keypair = load_keypair(ps.secret.get_secret_value() if ps.secret else None, ps.secret_file)
    channels = derive_channels(keypair, ps.channels)
    async with FarmGateway.from_settings(settings.stellar) as gateway:
        own = await gateway.account(keypair.public_key)
        made = await asyncio.gather(*(gateway.account(c.public_key) for c in channels))
    missing = sum(1 for c in made if not c.exists)
    needed = missing * ps.channel_xlm + XLM  # the channels still to create, and fees
    if not own.exists:
        return Check("pooler account", "FAIL", f"{keypair.public_key} does not exist: fund it with XLM")
    if own.xlm_spendable < needed:
        return Check(
            "pooler account",
            "FAIL",
            f"{keypair.public_key} can spend {own.xlm_spendable / XLM:g} XLM; it needs {needed / XLM:g} "
            f"({missing} channel account(s) to create and fees)",
        )
    return Check(
        "pooler account",
        "ok",
        f"{keypair.public_key}: {own.xlm_spendable / XLM:g} XLM to spend, "
        f"{len(channels) - missing} of {len(channels)} channels made",
    )


def check_pooler_account(settings: Settings) -> Check:
    ps = settings.pooler
    if ps.secret is None and ps.secret_file is None:
        return Check("pooler account", "skip", "no pooler secret configured (pooler.secret_file)")
    try:
        return asyncio.run(_pooler_account(settings))
    except KalePoolError as exc:
        return Check("pooler account", "FAIL", str(exc))


async def _platform_wallet(settings: Settings, wallet: str) -> Check:
    from kalepool.stellar import FarmGateway

    async with FarmGateway.from_settings(settings.stellar) as gateway:
        account = await gateway.account(wallet)
    retry = settings.backend.payout_retry_seconds
    waits = f"the platform's fee payouts fail, each tried again after {retry:g} s"
    if not account.exists:
        return Check("platform wallet", "FAIL", f"{wallet} does not exist: {waits}")
    if not account.kale_trustline:
        return Check("platform wallet", "FAIL", f"{wallet} has no KALE trustline: {waits}")
    return Check("platform wallet", "ok", f"{wallet}: KALE trustline, {account.kale_balance / XLM:g} KALE")


def check_platform_wallet(settings: Settings) -> Check:
    wallet = settings.backend.platform_wallet
    if wallet is None:
        why = "none set (backend.platform_wallet): its fees stay in the pool"
        return Check("platform wallet", "skip", why)
    try:
        return asyncio.run(_platform_wallet(settings, wallet))
    except KalePoolError as exc:
        return Check("platform wallet", "FAIL", str(exc))


CHECKS: tuple[Callable[[Settings], Check], ...] = (
    check_database,
    check_master_key,
    check_network,
    check_custodial_accounts,
    check_pooler_account,
    check_platform_wallet,
)


def run_checks(settings: Settings, report: Callable[[Check], None]) -> list[Check]:
    """Every check in turn, each reported as soon as it is done."""
    done = []
    for check in CHECKS:
        result = check(settings)
        report(result)
        done.append(result)
    return done
