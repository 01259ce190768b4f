"""Per-account locks shared by processes: PostgreSQL advisory locks, and the gateway under them.

Two backends (or a backend and its workers) each hold a gateway with its own cached
sequence numbers. Every transaction of a custodial account is built and followed under
one advisory lock on the account, and its sequence is read anew under it: concurrent
payments from both "processes" all land, none refused ``txBAD_SEQ``.
"""

from __future__ import annotations

import asyncio

import pytest
from stellar_sdk import Keypair

from kalepool.backend.chain import ChainError
from kalepool.backend.db.account_locks import AccountLocks, lock_key
from kalepool.backend.db.session import Database
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.devnet.testing import DevnetHandle

from .devnet_env import XLM, Controls, gateway_chain, ledger_closer


async def test_a_lock_is_exclusive_across_connections(database_url: str) -> None:
    first, second = AccountLocks(database_url), AccountLocks(database_url, wait=0.2)
    order: list[str] = []
    try:
        async with first.hold("GACCOUNT"):
            order.append("first holds")
            waiter = asyncio.create_task(_take(second, "GACCOUNT", order))
            await asyncio.sleep(0.05)
            assert not waiter.done()  # the second connection waits
            async with second.hold("GOTHER"):  # another account is free
                order.append("other account")
            order.append("first releases")
        await waiter
    finally:
        await first.aclose()
        await second.aclose()
    assert order == ["first holds", "other account", "first releases", "second holds"]


async def test_a_lock_held_too_long_is_account_busy(database_url: str) -> None:
    first, second = AccountLocks(database_url), AccountLocks(database_url, wait=0.1)
    try:
        async with first.hold("GACCOUNT"):
            with pytest.raises(ChainError) as info:
                async with second.hold("GACCOUNT"):
                    pass
            assert info.value.code == "account_busy"
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_dead_connection_releases_its_locks(database_url: str) -> None:
    first, second = AccountLocks(database_url), AccountLocks(database_url, wait=5)
    try:
        async with second.hold("GX"):
            pass  # opens the second connection
        holder = first.hold("GACCOUNT")
        await holder.__aenter__()
        assert first._conn is not None
        await first._conn.close()  # the process died
        async with second.hold("GACCOUNT"):
            pass
        await holder.__aexit__(None, None, None)  # releasing on a dead connection is harmless
    finally:
        await first.aclose()
        await second.aclose()


def test_keys_are_stable_and_spread() -> None:
    keys = {lock_key(Keypair.random().public_key) for _ in range(200)}
    assert len(keys) == 200
    assert lock_key("GABC") == lock_key("GABC")
    assert all(-(2**31) <= k < 2**31 for k in keys)


async def test_two_processes_paying_from_one_account_never_meet_a_bad_sequence(
    devnet: DevnetHandle, controls: Controls, database_url: str
) -> None:
    payer = devnet.new_account(xlm=1_000 * XLM, kale=1_000)
    receiver = devnet.new_account(xlm=10 * XLM, kale=1)
    chains: list[GatewayChain] = []
    dbs: list[Database] = []
    for _ in range(2):  # two processes: each its own database pool, locks and gateway
        db, chain = Database(database_url, pool_size=2), gateway_chain(devnet)
        chain.use_account_lock(db.account_locks.hold)
        chains.append(chain)
        dbs.append(db)
    rebuilt: list[str] = []
    for chain in chains:
        pipeline = chain.gateway.pipeline
        original = pipeline._submit

        async def spy(slot, signed, submitter, _original=original):  # type: ignore[no-untyped-def]
            try:
                return await _original(slot, signed, submitter)
            except Exception as exc:
                rebuilt.append(getattr(exc, "result_code", type(exc).__name__))
                raise

        pipeline._submit = spy  # type: ignore[method-assign]
    try:
        async with ledger_closer(controls):
            outcomes = await asyncio.gather(
                *(chains[i % 2].pay(_signer(payer), receiver.public_key, i + 1) for i in range(12))
            )
    finally:
        for chain, db in zip(chains, dbs, strict=True):
            await chain.aclose()
            await db.dispose()
    assert sorted(o.amount for o in outcomes) == list(range(1, 13))
    assert rebuilt == []  # the lock kept both processes off each other's sequence numbers


async def _take(locks: AccountLocks, account: str, order: list[str]) -> None:
    async with locks.hold(account):
        order.append("second holds")


def _signer(keypair: Keypair) -> Keypair:
    return Keypair.from_secret(keypair.secret)
