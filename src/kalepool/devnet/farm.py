"""The KALE farm contract's rules, emulated in Python (``kale-contract.md`` §3).

:class:`FarmContract` applies one contract call — constructor, ``plant``, ``work``,
``harvest`` and the admin functions — with every check in the contract's order and
every error code of the real contract (raised as :class:`~kalepool.kale.errors.FarmError`).
It holds no state of its own: it reads and writes through two small ports that the
devnet ledger implements.

- :class:`FarmStorage`: the farm's instance storage and its temporary ``Block(i)`` and
  ``Pail(farmer, i)`` entries. The ledger records every key read or written (the
  footprint) and handles TTLs: an expired temporary entry reads as absent.
- :class:`TokenPort`: the KALE Stellar Asset Contract (``burn`` in plant, ``mint`` in
  harvest), raising :class:`~kalepool.kale.errors.TokenError`.

**Atomicity is the caller's job.** A call writes through the ports as it goes and may
raise part-way (a contract error, a token error, an auth failure, or an
:class:`ArithmeticError` where the contract would trap on overflow); the real host then
rolls back every write and token movement. The devnet therefore runs each call against a
copy-on-write view of its ledger and commits only if the call returns.

Argument conversion happens before the contract runs, as on the host: a malformed
address, an out-of-range integer or a hash that is not 32 bytes raises
:class:`~kalepool.errors.InvalidInput` (a ``ValueError``) before any check below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kalepool.kale.constants import BLOCK_INTERVAL, U32_MAX
from kalepool.kale.errors import FarmError, FarmErrorCode
from kalepool.kale.maths import IntegerOverflow, checked_i128, contribution, normalize, reward
from kalepool.kale.pow import leading_zeros, work_hash
from kalepool.kale.types import (
    Block,
    FarmInstance,
    Pail,
    check_address,
    check_entropy,
    check_i128,
    check_u32,
    check_u64,
)

E = FarmErrorCode


class FarmStorage(Protocol):
    """The farm contract's storage, as the devnet ledger exposes it to one call.

    The implementation records every key read and written (the transaction footprint):
    the instance entry for ``get_instance``/``put_instance``/``extend_instance_ttl``, and
    the TEMPORARY ``Block(index)`` and ``Pail(farmer, index)`` entries for the others.
    A temporary entry created by ``put_*`` lives ``min_temp_TTL`` ledgers; overwriting it
    keeps its ``live_until``.
    """

    def get_instance(self) -> FarmInstance:
        """The instance storage; ``FarmInstance()`` before the constructor ran."""
        ...

    def put_instance(self, inst: FarmInstance) -> None: ...

    def get_block(self, index: int) -> Block | None:
        """``Block(index)``, or None when absent or expired."""
        ...

    def put_block(self, index: int, block: Block) -> None: ...

    def delete_block(self, index: int) -> None:
        """Remove ``Block(index)``; a no-op when absent (``remove_block``)."""
        ...

    def get_pail(self, farmer: str, index: int) -> Pail | None:
        """``Pail(farmer, index)``, or None when absent or expired."""
        ...

    def put_pail(self, farmer: str, index: int, pail: Pail) -> None: ...

    def delete_pail(self, farmer: str, index: int) -> None: ...

    def extend_instance_ttl(self) -> None:
        """Extend the instance to ``max_ttl`` when fewer than ``max_ttl - WEEK_OF_LEDGERS``
        ledgers remain (§2.3)."""
        ...


class TokenPort(Protocol):
    """The KALE SAC as the farm calls it. Failures raise ``TokenError`` (SAC codes)."""

    def burn(self, from_: str, amount: int) -> None:
        """Burn ``amount`` from ``from_`` (token interface; ``from_`` authorises it)."""
        ...

    def mint(self, to: str, amount: int) -> None:
        """Mint ``amount`` to ``to`` (admin interface: the farm is the SAC admin)."""
        ...


@dataclass(frozen=True, slots=True)
class LedgerContext:
    """The ledger that applies the call: ``now_seq`` and ``now_ts`` of the spec."""

    sequence: int
    timestamp: int

    def __post_init__(self) -> None:
        check_u32(self.sequence, "ledger.sequence")
        check_u64(self.timestamp, "ledger.timestamp")


class FarmContract:
    """One farm contract call's worth of rules over a :class:`FarmStorage`.

    ``require_auth(address)`` must raise when ``address`` has not authorised the current
    invocation (the devnet checks the transaction's auth entries or source account).
    ``block_interval`` is the contract's 300 s; the devnet may shorten it for demos.
    """

    def __init__(
        self,
        storage: FarmStorage,
        token: TokenPort,
        ledger: LedgerContext,
        require_auth: Callable[[str], None],
        block_interval: int = BLOCK_INTERVAL,
    ) -> None:
        if block_interval < 1:
            raise ValueError("block_interval: must be at least 1 second")
        self.storage = storage
        self.token = token
        self.ledger = ledger
        self.require_auth = require_auth
        self.block_interval = block_interval

    # ------------------------------------------------------------- constructor

    def construct(self, homesteader: str, asset: str) -> None:
        """``__constructor(farmer, asset)`` (§3.1)."""
        check_address(homesteader, "homesteader")
        check_address(asset, "asset")
        self.require_auth(homesteader)
        inst = self.storage.get_instance()
        if inst.homesteader is not None:
            raise FarmError(E.HOMESTEAD_EXISTS)
        self.storage.put_instance(
            dataclasses.replace(
                inst,
                homesteader=homesteader,
                asset=asset,
                farm_block=Block.fresh_accumulator(self.ledger.timestamp),
            )
        )
        self.storage.extend_instance_ttl()

    # ------------------------------------------------------------------- plant

    def plant(self, farmer: str, amount: int) -> None:
        """``plant(farmer, amount)`` (§3.3): stake ``amount`` in the current block,
        rolling the farm over to a new block first when one is due."""
        check_address(farmer, "farmer")
        check_i128(amount, "amount")
        now_ts, now_seq = self.ledger.timestamp, self.ledger.sequence

        # 1-3
        self.require_auth(farmer)
        if amount < 0:
            raise FarmError(E.PLANT_AMOUNT_TOO_LOW)
        inst = self.storage.get_instance()
        if inst.paused:
            raise FarmError(E.FARM_PAUSED)
        # 4
        if inst.asset is None:
            raise FarmError(E.HOMESTEAD_MISSING)
        acc = inst.farm_block
        if acc is None:
            raise FarmError(E.FARM_BLOCK_MISSING)
        index = inst.farm_index

        # 5: find the block
        block: Block | None
        if now_ts >= acc.timestamp + self.block_interval:
            # a. normal rollover: freeze the ended block's statistics, reset the accumulator
            block = Block.from_accumulator(acc, now_ts)
            acc = Block.fresh_accumulator(now_ts)
            index = _next_index(index)
            inst = dataclasses.replace(inst, farm_index=index)
            self.storage.put_instance(inst)
        else:
            block = self.storage.get_block(index)
            if block is None:
                # c. genesis (index 0) or an evicted block: the accumulator carries on
                if index > 0:
                    index = _next_index(index)
                    inst = dataclasses.replace(inst, farm_index=index)
                    self.storage.put_instance(inst)
                block = Block.from_accumulator(acc, now_ts)
            # b. otherwise the current block is used as it is

        # 6: one plant per farmer per block
        if self.storage.get_pail(farmer, index) is not None:
            raise FarmError(E.PAIL_EXISTS)
        # 7
        block = dataclasses.replace(
            block, staked_total=checked_i128(block.staked_total + amount, "staked_total")
        )
        # 8
        if amount > 0:
            self.token.burn(farmer, amount)
        # 9
        acc = dataclasses.replace(
            acc, max_stake=max(acc.max_stake, amount), min_stake=min(acc.min_stake, amount)
        )
        # 10
        self.storage.put_pail(farmer, index, Pail(sequence=now_seq, gap=None, stake=amount, zeros=None))
        self.storage.put_block(index, block)
        self.storage.put_instance(dataclasses.replace(inst, farm_block=acc))
        self.storage.extend_instance_ttl()

    # -------------------------------------------------------------------- work

    def work(self, farmer: str, hash_: bytes, nonce: int) -> int:
        """``work(farmer, hash, nonce)`` (§3.4): record a proof of work for the farmer's
        pail in the current block. Returns the gap in ledgers. No auth."""
        check_address(farmer, "farmer")
        hash_ = check_entropy(hash_, "hash")
        check_u64(nonce, "nonce")
        now_seq = self.ledger.sequence

        # 1
        inst = self.storage.get_instance()
        index = inst.farm_index
        acc = inst.farm_block
        if acc is None:
            raise FarmError(E.FARM_BLOCK_MISSING)
        block = self.storage.get_block(index)
        if block is None:
            raise FarmError(E.BLOCK_MISSING)
        pail = self.storage.get_pail(farmer, index)
        if pail is None:
            raise FarmError(E.PAIL_MISSING)
        # 2 (Block(i).entropy, not FarmBlock.entropy)
        expected = work_hash(index, nonce, block.entropy, farmer)
        # 3-5: the gap check comes before the hash check
        gap = now_seq - pail.sequence
        if gap < 0:
            raise IntegerOverflow(f"gap: u32 underflow ({now_seq} - {pail.sequence})")
        if gap == 0:
            raise FarmError(E.GAP_COUNT_TOO_LOW)
        if hash_ != expected:
            raise FarmError(E.HASH_INVALID)
        # 6-8
        zeros = leading_zeros(hash_)
        added = sum(normalize(block, gap, pail.stake, zeros))
        normalized_total = checked_i128(block.normalized_total + added, "normalized_total")
        staked_total = block.staked_total
        if pail.zeros is not None:
            # 9. a re-work must beat the previous zeros; the old contribution is taken
            # back at the NEW gap (the contract's drift, §5.4 C)
            if zeros <= pail.zeros:
                raise FarmError(E.ZERO_COUNT_TOO_LOW)
            removed = contribution(block, gap, pail.stake, pail.zeros)
            normalized_total = checked_i128(normalized_total - removed, "normalized_total")
        else:
            # 10. first work: the stake is reclaimed from the forfeit pool
            staked_total = checked_i128(staked_total - pail.stake, "staked_total")
        block = dataclasses.replace(block, normalized_total=normalized_total, staked_total=staked_total)
        # 11
        acc = dataclasses.replace(
            acc,
            entropy=hash_,
            min_gap=min(acc.min_gap, gap),
            max_gap=max(acc.max_gap, gap),
            min_zeros=min(acc.min_zeros, zeros),
            max_zeros=max(acc.max_zeros, zeros),
        )
        # 12
        self.storage.put_pail(farmer, index, dataclasses.replace(pail, gap=gap, zeros=zeros))
        self.storage.put_block(index, block)
        self.storage.put_instance(dataclasses.replace(inst, farm_block=acc))
        self.storage.extend_instance_ttl()
        # 13
        return gap

    # ----------------------------------------------------------------- harvest

    def harvest(self, farmer: str, index: int) -> int:
        """``harvest(farmer, index)`` (§3.5): pay out a worked pail of a closed block.
        Mints reward + stake to the farmer; returns the reward alone. No auth."""
        check_address(farmer, "farmer")
        check_u32(index, "index")

        # 1
        inst = self.storage.get_instance()
        if inst.asset is None:
            raise FarmError(E.HOMESTEAD_MISSING)
        # 2-5, in this order
        block = self.storage.get_block(index)
        if block is None:
            raise FarmError(E.BLOCK_MISSING)
        pail = self.storage.get_pail(farmer, index)
        if pail is None:
            raise FarmError(E.PAIL_MISSING)
        if index >= inst.farm_index:
            raise FarmError(E.HARVEST_NOT_READY)
        if not pail.worked:
            raise FarmError(E.WORK_MISSING)
        # 6-8
        amount = reward(block, pail, index)
        # 9
        minted = checked_i128(amount + pail.stake, "minted")
        if minted > 0:
            self.token.mint(farmer, minted)
        # 10: Block(index) is left untouched
        self.storage.delete_pail(farmer, index)
        self.storage.extend_instance_ttl()
        # 11
        return amount

    # ------------------------------------------------------------------- admin

    def _authorise_homesteader(self) -> FarmInstance:
        inst = self.storage.get_instance()
        if inst.homesteader is None:
            raise FarmError(E.HOMESTEAD_MISSING)
        self.require_auth(inst.homesteader)
        return inst

    def pause(self) -> None:
        """Block ``plant`` (only plant). No TTL extension."""
        inst = self._authorise_homesteader()
        if inst.paused:
            raise FarmError(E.FARM_PAUSED)
        self.storage.put_instance(dataclasses.replace(inst, paused=True))

    def unpause(self) -> None:
        """Allow ``plant`` again (HEAD behaviour: fails with #5 when not paused)."""
        inst = self._authorise_homesteader()
        if not inst.paused:
            raise FarmError(E.FARM_NOT_PAUSED)
        self.storage.put_instance(dataclasses.replace(inst, paused=False))
        self.storage.extend_instance_ttl()

    def remove_block(self, index: int) -> None:
        """Delete temporary ``Block(index)`` (a no-op when absent). No TTL extension."""
        check_u32(index, "index")
        self._authorise_homesteader()
        self.storage.delete_block(index)


def _next_index(index: int) -> int:
    if index >= U32_MAX:
        raise IntegerOverflow("FarmIndex: u32 overflow")
    return index + 1
