"""Rows with unique data, inserted through the repositories (tests only)."""

from __future__ import annotations

import os
import secrets
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from stellar_sdk import Keypair

from kalepool.backend.custody import Keyring, new_custodial_account
from kalepool.backend.db import repositories as repo
from kalepool.backend.db.models import Farmer, Harvest, Planting, Pooler, Work
from kalepool.backend.enums import EventStatus, WorkStatus


async def pooler(session: AsyncSession, **fields: Any) -> Pooler:
    values: dict[str, Any] = {
        "name": f"pooler-{secrets.token_hex(4)}",
        "public_key": None,
        "reward_share_bps": 0,
        "max_farmers": None,
    }
    values.update(fields)
    return await repo.add_pooler(session, **values)


async def farmer(session: AsyncSession, pooler_id: uuid.UUID, keyring: Keyring | None = None) -> Farmer:
    public_key, sealed = new_custodial_account(keyring or Keyring([os.urandom(32)]))
    return await repo.add_farmer(
        session,
        pooler_id=pooler_id,
        public_key=public_key,
        sealed=sealed,
        payout_wallet=Keypair.random().public_key,
        stake_bps=5000,
    )


def planting(f: Farmer, block_index: int, status: EventStatus = EventStatus.SUCCEEDED) -> Planting:
    if status is EventStatus.SUCCEEDED:
        return Planting(
            farmer_id=f.id,
            pooler_id=f.pooler_id,
            block_index=block_index,
            status=status.value,
            stake_amount=1_000,
            tx_hash=secrets.token_hex(32),
            entropy=os.urandom(32),
        )
    return Planting(
        farmer_id=f.id,
        pooler_id=f.pooler_id,
        block_index=block_index,
        status=status.value,
        stake_amount=0,
        error_code="farm_paused",
        attributed_to="chain",
    )


def work(f: Farmer, block_index: int, status: WorkStatus = WorkStatus.ACCEPTED) -> Work:
    return Work(
        farmer_id=f.id,
        pooler_id=f.pooler_id,
        block_index=block_index,
        status=status.value,
        nonce=2**64 - 1,
        hash=os.urandom(32),
        zeros=7,
        gap=20,
        reason=None if status is WorkStatus.ACCEPTED else "hash_mismatch",
    )


def harvest(f: Farmer, block_index: int, status: EventStatus = EventStatus.SUCCEEDED) -> Harvest:
    if status is EventStatus.SUCCEEDED:
        return Harvest(
            farmer_id=f.id,
            pooler_id=f.pooler_id,
            block_index=block_index,
            status=status.value,
            reward=123,
            stake_returned=1_000,
            tx_hash=secrets.token_hex(32),
        )
    return Harvest(
        farmer_id=f.id,
        pooler_id=f.pooler_id,
        block_index=block_index,
        status=status.value,
        error_code="harvest_not_ready",
    )
