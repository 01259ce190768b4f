"""The farm contract emulator against the spec (``kale-contract.md`` §3, §5.4, §9).

The ports are simple in-memory fakes defined here; :class:`Chain` runs each call on a
snapshot and restores it when the call raises, as the devnet must (atomicity).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from stellar_sdk import StrKey, scval

from kalepool.devnet import farm as farm_module
from kalepool.devnet.farm import FarmContract, LedgerContext
from kalepool.kale.constants import BLOCK_REWARD, I128_MAX, U32_MAX
from kalepool.kale.errors import FarmError, FarmErrorCode, TokenError, TokenErrorCode
from kalepool.kale.maths import block_reward
from kalepool.kale.pow import leading_zeros, work_hash
from kalepool.kale.types import Block, FarmInstance, Pail

E = FarmErrorCode



def account(label: str) -> str:
    return StrKey.encode_ed25519_public_key(hashlib.sha256(label.encode()).digest())


HOMESTEADER = account("homesteader")
ASSET = "CB23WRDQWGSP6YPMY4UV5C4OW5CBTXKYN3XEATG7KJEZCXMJBYEHOUOV"
G1 = "GBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"
G2 = "GBIIUZH63Z262QXGKJIP3ZU5DS7L4L2TBTYGPXRIGQXZAF25A72YNULL"
G3 = account("farmer 3")
G4 = account("farmer 4")
C_FARMER = "CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA"
KALE = 10_000_000
DEPLOY_SEQ = 100
DEPLOY_TS = 10_000


# ------------------------------------------------------------------- the fakes


class NotAuthorized(Exception):
    """The fake host's auth failure."""


class MemoryStorage:
    """A FarmStorage in dicts, logging every access like the devnet's footprint."""

    def __init__(self) -> None:
        self.instance = FarmInstance()
        self.blocks: dict[int, Block] = {}
        self.pails: dict[tuple[str, int], Pail] = {}
        self.reads: list[tuple[Any, ...]] = []
        self.writes: list[tuple[Any, ...]] = []
        self.ttl_extensions = 0

    def get_instance(self) -> FarmInstance:
        self.reads.append(("instance",))
        return self.instance

    def put_instance(self, inst: FarmInstance) -> None:
        self.writes.append(("instance",))
        self.instance = inst

    def get_block(self, index: int) -> Block | None:
        self.reads.append(("block", index))
        return self.blocks.get(index)

    def put_block(self, index: int, block: Block) -> None:
        self.writes.append(("block", index))
        self.blocks[index] = block

    def delete_block(self, index: int) -> None:
        self.writes.append(("block", index))
        self.blocks.pop(index, None)

    def get_pail(self, farmer: str, index: int) -> Pail | None:
        self.reads.append(("pail", farmer, index))
        return self.pails.get((farmer, index))

    def put_pail(self, farmer: str, index: int, pail: Pail) -> None:
        self.writes.append(("pail", farmer, index))
        self.pails[(farmer, index)] = pail

    def delete_pail(self, farmer: str, index: int) -> None:
        self.writes.append(("pail", farmer, index))
        del self.pails[(farmer, index)]

    def extend_instance_ttl(self) -> None:
        self.ttl_extensions += 1


class MemoryToken:
    """A TokenPort with balances and trustlines, raising the SAC's errors."""

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.trustlines: set[str] = set()
        self.calls: list[tuple[str, str, int]] = []

    def _check_trustline(self, address: str) -> None:
        if address.startswith("G") and address not in self.trustlines:
            raise TokenError(TokenErrorCode.TRUSTLINE_MISSING)

    def burn(self, from_: str, amount: int) -> None:
        self._check_trustline(from_)
        if self.balances.get(from_, 0) < amount:
            raise TokenError(TokenErrorCode.BALANCE_ERROR)
        self.balances[from_] -= amount
        self.calls.append(("burn", from_, amount))

    def mint(self, to: str, amount: int) -> None:
        self._check_trustline(to)
        self.balances[to] = self.balances.get(to, 0) + amount
        self.calls.append(("mint", to, amount))


class Chain:
    """Ledger clock, auth and atomic calls around one farm."""

    def __init__(self, block_interval: int = 300) -> None:
        self.storage = MemoryStorage()
        self.token = MemoryToken()
        self.sequence = DEPLOY_SEQ
        self.timestamp = DEPLOY_TS
        self.block_interval = block_interval
        self.signers: set[str] | None = None  # None: everyone has authorised
        self.auth_log: list[str] = []

    def require_auth(self, address: str) -> None:
        self.auth_log.append(address)
        if self.signers is not None and address not in self.signers:
            raise NotAuthorized(address)

    def state(self) -> tuple[Any, ...]:
        s, t = self.storage, self.token
        return copy.deepcopy((s.instance, s.blocks, s.pails, t.balances, t.trustlines, t.calls))

    def call(self, method: str, *args: Any) -> Any:
        """Apply one contract call in the current ledger; roll back if it raises."""
        self.storage.reads.clear()
        self.storage.writes.clear()
        self.auth_log.clear()
        self.storage.ttl_extensions = 0
        saved = self.state()
        contract = FarmContract(
            self.storage,
            self.token,
            LedgerContext(self.sequence, self.timestamp),
            self.require_auth,
            block_interval=self.block_interval,
        )
        try:
            return getattr(contract, method)(*args)
        except BaseException:
            s, t = self.storage, self.token
            s.instance, s.blocks, s.pails, t.balances, t.trustlines, t.calls = saved
            raise

    def close(self, ledgers: int = 1, seconds_each: int = 5) -> None:
        self.sequence += ledgers
        self.timestamp += ledgers * seconds_each

    def fund(self, farmer: str, amount: int) -> None:
        self.token.trustlines.add(farmer)
        self.token.balances[farmer] = self.token.balances.get(farmer, 0) + amount

    @property
    def inst(self) -> FarmInstance:
        return self.storage.instance

    @property
    def acc(self) -> Block:
        assert self.storage.instance.farm_block is not None
        return self.storage.instance.farm_block

    def block(self, index: int) -> Block:
        return self.storage.blocks[index]

    def pail(self, farmer: str, index: int) -> Pail | None:
        return self.storage.pails.get((farmer, index))

    def roll_over(self, planter: str = G4) -> None:
        """Move time past the interval and plant 0 to open the next block."""
        self.timestamp = max(self.timestamp, self.acc.timestamp + self.block_interval)
        self.close()
        self.call("plant", planter, 0)


@pytest.fixture
def chain() -> Chain:
    c = Chain()
    c.call("construct", HOMESTEADER, ASSET)
    for farmer in (G1, G2, G3, G4):
        c.fund(farmer, 100 * KALE)
    c.close()
    return c


@contextlib.contextmanager
def raises(code: FarmErrorCode) -> Iterator[None]:
    """``pytest.raises`` for one farm error code."""
    with pytest.raises(FarmError) as info:
        yield
    assert info.value.code is code, f"expected {code!r}, got {info.value}"


def nonce_with(index: int, entropy: bytes, farmer: str, zeros: int, start: int = 0) -> tuple[int, bytes]:
    """The first nonce ≥ start whose hash has exactly ``zeros`` leading zeros."""
    nonce = start
    while True:
        h = work_hash(index, nonce, entropy, farmer)
        if leading_zeros(h) == zeros:
            return nonce, h
        nonce += 1


@pytest.fixture
def fake_hash(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the farm's hash a function of the nonce: ``nonce`` leading zero nibbles.

    Examples B and C need 6–8 zeros, too costly to mine in a unit test; every other
    rule still runs unchanged (the submitted hash must equal the recomputed one).
    """

    def fake_work_hash(index: int, nonce: int, entropy: bytes, farmer: str) -> bytes:
        return bytes.fromhex("0" * nonce + "f" * (64 - nonce))

    monkeypatch.setattr(farm_module, "work_hash", fake_work_hash)
    yield


def zeros_hash(zeros: int) -> bytes:
    return bytes.fromhex("0" * zeros + "f" * (64 - zeros))


# ------------------------------------------------------------------ example D


def test_example_d_genesis_end_to_end(chain: Chain) -> None:
    # block 0 opens with G1's plant: no bump, Block(0) from the fresh accumulator
    chain.call("plant", G1, KALE)
    assert chain.inst.farm_index == 0
    assert chain.block(0) == Block(chain.timestamp, 0, 0, 0, 0, 0, 0, bytes(32), KALE, 0)
    assert chain.acc.timestamp == DEPLOY_TS  # the deploy time, not the first plant's
    chain.call("plant", G2, 0)
    assert chain.token.calls == [("burn", G1, KALE)]
    plant_seq = chain.sequence

    h1 = bytes.fromhex("0002f8bcd518fc1a86477e2a26035b9521256cfb14743c186494e68f79f1adea")
    h2 = bytes.fromhex("0000f768f96976b94ca2afb180ab001947a9e93a7f778031c6a41a575338bfaf")
    chain.close(3)
    assert chain.call("work", G1, h1, 54) == 3
    assert chain.acc.entropy == h1
    # G2 still hashes against Block(0).entropy (zero), not FarmBlock.entropy
    chain.close(10)
    assert chain.call("work", G2, h2, 39361) == 13
    assert chain.pail(G1, 0) == Pail(plant_seq, 3, KALE, 3)
    assert chain.pail(G2, 0) == Pail(plant_seq, 13, 0, 4)
    assert chain.block(0).normalized_total == 6
    assert chain.block(0).staked_total == 0

    chain.roll_over(G3)
    assert chain.inst.farm_index == 1
    assert chain.block(1) == Block(chain.timestamp, 3, 0, 3, 13, KALE, 4, h2, 0, 0)

    assert chain.call("harvest", G1, 0) == 12_525_000_000
    assert chain.call("harvest", G2, 0) == 12_525_000_000
    assert chain.token.calls == [
        ("burn", G1, KALE),
        ("mint", G1, 12_525_000_000 + KALE),
        ("mint", G2, 12_525_000_000),
    ]
    assert chain.token.balances[G1] == 100 * KALE + 12_525_000_000
    assert chain.token.balances[G2] == 100 * KALE + 12_525_000_000
    assert chain.pail(G1, 0) is None and chain.pail(G2, 0) is None
    assert chain.block(0).normalized_total == 6  # harvest leaves the block alone


# -------------------------------------------------------------- examples B, C

INDEX_B = 40_000
STAKE_A = 100_000_000
STAKE_C = 500_000_000


def setup_block_b(chain: Chain) -> None:
    """Put the farm at index 40,000 whose Block has example B's ranges (set directly)."""
    chain.storage.instance = dataclasses.replace(
        chain.inst, farm_index=INDEX_B, farm_block=Block.fresh_accumulator(chain.timestamp)
    )
    chain.storage.blocks[INDEX_B] = Block(
        chain.timestamp, 2, 0, 5, 40, 1_000_000_000, 9, b"\x11" * 32, 0, 0
    )
    chain.fund(G1, STAKE_A)
    chain.fund(G3, STAKE_C)
    chain.call("plant", G1, STAKE_A)  # farmer A
    chain.call("plant", G2, 0)  # farmer B
    chain.call("plant", G3, STAKE_C)  # farmer C, who never works
    assert chain.inst.farm_index == INDEX_B
    assert chain.block(INDEX_B).staked_total == STAKE_A + STAKE_C


@pytest.mark.usefixtures("fake_hash")
def test_example_b_through_calls(chain: Chain) -> None:
    setup_block_b(chain)
    chain.close(10)
    assert chain.call("work", G2, zeros_hash(6), 6) == 10
    chain.close(20)
    assert chain.call("work", G1, zeros_hash(8), 8) == 30
    block = chain.block(INDEX_B)
    assert block.normalized_total == 2_047_368_421
    assert block.staked_total == STAKE_C

    chain.roll_over()
    assert chain.call("harvest", G1, INDEX_B) == 18_832_124_033
    assert chain.call("harvest", G2, INDEX_B) == 5_465_375_966
    mints = [call for call in chain.token.calls if call[0] == "mint"]
    assert mints == [("mint", G1, 18_832_124_033 + STAKE_A), ("mint", G2, 5_465_375_966)]
    with raises(E.WORK_MISSING):
        chain.call("harvest", G3, INDEX_B)
    assert block_reward(INDEX_B) + STAKE_C - 18_832_124_033 - 5_465_375_966 == 1  # dust


@pytest.mark.usefixtures("fake_hash")
def test_example_c_rework_drift_through_calls(chain: Chain) -> None:
    setup_block_b(chain)
    chain.close(10)
    chain.call("work", G2, zeros_hash(6), 6)
    chain.close(10)
    assert chain.call("work", G1, zeros_hash(7), 7) == 20
    assert chain.block(INDEX_B).normalized_total == 460_526_316 + 1_073_684_210
    chain.close(10)
    assert chain.call("work", G1, zeros_hash(8), 8) == 30  # re-work keeps the new gap
    block = chain.block(INDEX_B)
    assert block.normalized_total == 1_784_210_526
    assert block.staked_total == STAKE_C  # the stake is reclaimed only once
    assert chain.pail(G1, INDEX_B) == Pail(DEPLOY_SEQ + 1, 30, STAKE_A, 8)

    chain.roll_over()
    a = chain.call("harvest", G1, INDEX_B)
    b = chain.call("harvest", G2, INDEX_B)
    assert (a, b) == (21_609_723_451, 6_271_478_617)
    assert a + b == 27_881_202_068 > block_reward(INDEX_B) + STAKE_C  # the over-mint


# ------------------------------------------------------------------ constructor


def test_constructor() -> None:
    chain = Chain()
    chain.call("construct", HOMESTEADER, ASSET)
    assert chain.auth_log == [HOMESTEADER]
    assert chain.storage.ttl_extensions == 1
    assert chain.inst == FarmInstance(
        HOMESTEADER, ASSET, 0, Block.fresh_accumulator(DEPLOY_TS), False
    )
    # FarmIndex and FarmPaused are not written
    names = [scval.to_native(e.key)[0] for e in chain.inst.to_scval_storage()]
    assert names == ["FarmBlock", "HomesteadAsset", "Homesteader"]
    with raises(E.HOMESTEAD_EXISTS):
        chain.call("construct", G1, ASSET)


def test_constructor_requires_auth() -> None:
    chain = Chain()
    chain.signers = {G1}
    with pytest.raises(NotAuthorized):
        chain.call("construct", HOMESTEADER, ASSET)
    assert chain.inst == FarmInstance()


# ------------------------------------------------------------------ rollover


def test_first_plant_after_interval_skips_index_0() -> None:
    chain = Chain()
    chain.call("construct", HOMESTEADER, ASSET)
    chain.timestamp += 300
    chain.close()
    chain.call("plant", G1, 0)
    assert chain.inst.farm_index == 1
    assert 0 not in chain.storage.blocks
    assert chain.acc.timestamp == chain.timestamp


def test_normal_rollover(chain: Chain) -> None:
    chain.call("plant", G1, 3 * KALE)
    chain.call("plant", G2, KALE)
    n1, h1 = nonce_with(0, bytes(32), G1, 1)
    chain.close(2)
    chain.call("work", G1, h1, n1)
    old_block = chain.block(0)

    chain.timestamp = chain.acc.timestamp + 299
    chain.close(0)
    chain.call("plant", G3, 0)  # one second short: still block 0
    assert chain.inst.farm_index == 0

    chain.timestamp = DEPLOY_TS + 300
    chain.close(1, 0)
    chain.call("plant", G4, 2 * KALE)
    assert chain.inst.farm_index == 1
    # HEAD reads no Block(old index) in the rollover branch
    assert ("block", 0) not in chain.storage.reads
    assert ("block", 1) not in chain.storage.reads
    assert chain.block(1) == Block(chain.timestamp, 2, 0, 1, 2, 3 * KALE, 1, h1, 2 * KALE, 0)
    # the accumulator is reset, then takes the rollover plant's stake
    assert chain.acc == dataclasses.replace(
        Block.fresh_accumulator(chain.timestamp), min_stake=2 * KALE, max_stake=2 * KALE
    )
    assert chain.block(0) == old_block
    # G2 planted in block 0 and never worked: its pail now sits at the old index
    chain.close()
    with raises(E.PAIL_MISSING):
        chain.call("work", G2, h1, n1)


def test_plant_once_per_block(chain: Chain) -> None:
    chain.call("plant", G1, 0)
    chain.close()
    with raises(E.PAIL_EXISTS):
        chain.call("plant", G1, 0)
    chain.roll_over()
    chain.close()
    chain.call("plant", G1, 0)  # a new block: allowed again
    assert chain.pail(G1, 1) is not None


# ------------------------------------------------------------------ plant checks


def test_plant_check_order() -> None:
    chain = Chain()
    chain.signers = {G1}
    # 1. auth comes first of all
    with pytest.raises(NotAuthorized):
        chain.call("plant", G2, -1)
    # 2. amount before paused and before the homestead
    with raises(E.PLANT_AMOUNT_TOO_LOW):
        chain.call("plant", G1, -1)
    # 4. no asset
    with raises(E.HOMESTEAD_MISSING):
        chain.call("plant", G1, 0)
    # 3. paused before the asset
    chain.storage.instance = FarmInstance(paused=True)
    with raises(E.FARM_PAUSED):
        chain.call("plant", G1, 0)
    with raises(E.PLANT_AMOUNT_TOO_LOW):
        chain.call("plant", G1, -5)
    # 4. no FarmBlock
    chain.storage.instance = FarmInstance(HOMESTEADER, ASSET, 0, None, False)
    with raises(E.FARM_BLOCK_MISSING):
        chain.call("plant", G1, 0)


def test_plant_token_calls_and_rollback(chain: Chain) -> None:
    chain.call("plant", G1, 0)
    assert chain.token.calls == []  # amount 0: no token call, no trustline needed
    chain.call("plant", C_FARMER, 0)
    before = copy.deepcopy((chain.storage.instance, chain.storage.blocks, chain.storage.pails))
    with pytest.raises(TokenError) as info:
        chain.call("plant", G2, 101 * KALE)
    assert info.value.code is TokenErrorCode.BALANCE_ERROR
    no_trust = account("no trustline")
    with pytest.raises(TokenError) as info:
        chain.call("plant", no_trust, 1)
    assert info.value.code is TokenErrorCode.TRUSTLINE_MISSING
    assert (chain.storage.instance, chain.storage.blocks, chain.storage.pails) == before
    chain.call("plant", G2, 100 * KALE)
    assert chain.token.calls == [("burn", G2, 100 * KALE)]
    assert chain.token.balances[G2] == 0
    assert chain.block(0).staked_total == 100 * KALE
    assert (chain.acc.min_stake, chain.acc.max_stake) == (0, 100 * KALE)


# ------------------------------------------------------------------- work checks


def test_work_gap_zero_before_hash_check(chain: Chain) -> None:
    chain.call("plant", G1, 0)
    with raises(E.GAP_COUNT_TOO_LOW):
        chain.call("work", G1, bytes(32), 0)  # a wrong hash, but the gap fails first
    chain.close()
    with raises(E.HASH_INVALID):
        chain.call("work", G1, bytes(32), 0)


def test_work_needs_strictly_more_zeros(chain: Chain) -> None:
    chain.call("plant", G1, KALE)
    n0, h0 = nonce_with(0, bytes(32), G1, 0)
    n1, h1 = nonce_with(0, bytes(32), G1, 1)
    n1b, h1b = nonce_with(0, bytes(32), G1, 1, start=n1 + 1)
    n2, h2 = nonce_with(0, bytes(32), G1, 2)
    chain.close()
    assert chain.call("work", G1, h1, n1) == 1
    staked = chain.block(0).staked_total
    chain.close()
    for nonce, h in ((n1, h1), (n1b, h1b), (n0, h0)):
        with raises(E.ZERO_COUNT_TOO_LOW):
            chain.call("work", G1, h, nonce)
    assert chain.call("work", G1, h2, n2) == 2
    assert chain.pail(G1, 0) == Pail(DEPLOY_SEQ + 1, 2, KALE, 2)
    assert chain.block(0).staked_total == staked  # reclaimed once only
    assert chain.acc.entropy == h2
    assert (chain.acc.min_zeros, chain.acc.max_zeros) == (1, 2)
    assert (chain.acc.min_gap, chain.acc.max_gap) == (1, 2)
    # genesis block: every normalised value is 1, the re-work nets out to one contribution
    assert chain.block(0).normalized_total == 3


def test_work_missing_state(chain: Chain) -> None:
    # no plant in the current block
    with raises(E.BLOCK_MISSING):
        chain.call("work", G1, bytes(32), 0)  # Block(0) not created yet
    chain.call("plant", G2, 0)
    chain.close()
    with raises(E.PAIL_MISSING):
        chain.call("work", G1, bytes(32), 0)
    # FarmBlock gone
    chain.storage.instance = dataclasses.replace(chain.inst, farm_block=None)
    with raises(E.FARM_BLOCK_MISSING):
        chain.call("work", G2, bytes(32), 0)


def test_work_block_invalid(chain: Chain) -> None:
    chain.roll_over()
    chain.storage.blocks[1] = dataclasses.replace(chain.block(1), min_gap=5, max_gap=4)
    chain.close()
    chain.call("plant", G1, 0)
    nonce, h = nonce_with(1, chain.block(1).entropy, G1, 0)
    chain.close()
    with raises(E.BLOCK_INVALID):
        chain.call("work", G1, h, nonce)


def test_work_ignores_pause_and_block_age(chain: Chain) -> None:
    chain.call("plant", G1, 0)
    chain.call("pause")
    chain.timestamp += 10_000  # long past the interval: nobody planted, block 0 still open
    chain.close()
    nonce, h = nonce_with(0, bytes(32), G1, 0)
    assert chain.call("work", G1, h, nonce) == 1


def test_work_for_contract_farmer_and_no_auth(chain: Chain) -> None:
    chain.call("plant", C_FARMER, 0)
    chain.signers = set()  # nobody signs: work and harvest need no auth
    nonce, h = nonce_with(0, bytes(32), C_FARMER, 0)
    chain.close()
    assert chain.call("work", C_FARMER, h, nonce) == 1
    assert chain.auth_log == []
    chain.signers = None
    chain.roll_over()
    chain.signers = set()
    assert chain.call("harvest", C_FARMER, 0) == BLOCK_REWARD
    assert chain.token.calls == [("mint", C_FARMER, BLOCK_REWARD)]  # C address: no trustline


# ---------------------------------------------------------------- harvest checks


def test_harvest_check_order(chain: Chain) -> None:
    chain.call("plant", G1, KALE)
    chain.call("plant", G2, 0)
    # the current block: #14 with a pail, #9 without, #11 beyond it
    with raises(E.HARVEST_NOT_READY):
        chain.call("harvest", G1, 0)
    with raises(E.PAIL_MISSING):
        chain.call("harvest", G3, 0)
    with raises(E.BLOCK_MISSING):
        chain.call("harvest", G1, 1)
    nonce, h = nonce_with(0, bytes(32), G1, 0)
    chain.close()
    chain.call("work", G1, h, nonce)
    chain.roll_over()
    with raises(E.WORK_MISSING):
        chain.call("harvest", G2, 0)  # planted, never worked
    with raises(E.PAIL_MISSING):
        chain.call("harvest", G3, 0)  # never planted
    # G2's forfeited stake (0 here) and the whole reward go to G1
    assert chain.call("harvest", G1, 0) == BLOCK_REWARD
    with raises(E.PAIL_MISSING):
        chain.call("harvest", G1, 0)  # twice
    assert chain.token.calls == [("burn", G1, KALE), ("mint", G1, BLOCK_REWARD + KALE)]


def test_harvest_block_missing_takes_precedence(chain: Chain) -> None:
    chain.call("plant", G1, 0)
    chain.call("remove_block", 0)
    assert chain.pail(G1, 0) is not None
    with raises(E.BLOCK_MISSING):
        chain.call("harvest", G1, 0)  # not #14 nor #9


def test_harvest_needs_homestead() -> None:
    chain = Chain()
    with raises(E.HOMESTEAD_MISSING):
        chain.call("harvest", G1, 0)


def test_harvest_mint_failure_rolls_back(chain: Chain) -> None:
    chain.call("plant", G1, 0)
    nonce, h = nonce_with(0, bytes(32), G1, 0)
    chain.close()
    chain.call("work", G1, h, nonce)
    chain.roll_over()
    chain.token.trustlines.discard(G1)
    with pytest.raises(TokenError) as info:
        chain.call("harvest", G1, 0)
    assert info.value.code is TokenErrorCode.TRUSTLINE_MISSING
    assert chain.pail(G1, 0) is not None  # still harvestable once the trustline exists
    chain.token.trustlines.add(G1)
    assert chain.call("harvest", G1, 0) == BLOCK_REWARD


def test_harvest_nothing_to_mint(chain: Chain) -> None:
    index = 5_000_000  # far past the end of emission: R = 0
    assert block_reward(index) == 0
    chain.storage.instance = dataclasses.replace(chain.inst, farm_index=index)
    chain.storage.blocks[index] = Block(chain.timestamp, 0, 0, 0, 0, 0, 0, bytes(32), 0, 0)
    chain.call("plant", G1, 0)
    nonce, h = nonce_with(index, bytes(32), G1, 0)
    chain.close()
    chain.call("work", G1, h, nonce)
    chain.roll_over()
    assert chain.call("harvest", G1, index) == 0
    assert chain.token.calls == []
    assert chain.pail(G1, index) is None


# -------------------------------------------------------------------------- admin


def test_pause_blocks_only_plant(chain: Chain) -> None:
    chain.call("plant", G1, KALE)
    chain.signers = {HOMESTEADER}
    chain.call("pause")
    assert chain.inst.paused
    assert chain.auth_log == [HOMESTEADER]
    assert chain.storage.ttl_extensions == 0
    with raises(E.FARM_PAUSED):
        chain.call("pause")
    chain.signers = None
    with raises(E.FARM_PAUSED):
        chain.call("plant", G2, 0)
    nonce, h = nonce_with(0, bytes(32), G1, 0)
    chain.close()
    chain.call("work", G1, h, nonce)  # work goes on
    # no plant, no rollover: harvest of block 0 stays not ready while paused
    with raises(E.HARVEST_NOT_READY):
        chain.call("harvest", G1, 0)
    chain.call("unpause")
    assert chain.storage.ttl_extensions == 1
    assert not chain.inst.paused
    with raises(E.FARM_NOT_PAUSED):
        chain.call("unpause")
    chain.roll_over()
    chain.call("pause")
    assert chain.call("harvest", G1, 0) == BLOCK_REWARD  # harvest goes on


def test_admin_auth_and_homestead() -> None:
    chain = Chain()
    for method, args in (("pause", ()), ("unpause", ()), ("remove_block", (0,))):
        with raises(E.HOMESTEAD_MISSING):
            chain.call(method, *args)
    chain.call("construct", HOMESTEADER, ASSET)
    chain.signers = {G1}
    for method, args in (("pause", ()), ("unpause", ()), ("remove_block", (0,))):
        with pytest.raises(NotAuthorized):
            chain.call(method, *args)
        assert chain.auth_log == [HOMESTEADER]


def test_remove_block_evicted_rollover(chain: Chain) -> None:
    chain.roll_over(G4)  # index 1
    opened = chain.acc.timestamp
    chain.close()
    chain.call("plant", G1, 2 * KALE)
    chain.call("remove_block", 1)
    assert chain.storage.ttl_extensions == 0
    assert 1 not in chain.storage.blocks
    chain.call("remove_block", 1)  # absent: a no-op
    chain.close()
    nonce, h = nonce_with(1, bytes(32), G1, 0)
    with raises(E.BLOCK_MISSING):
        chain.call("work", G1, h, nonce)

    acc_before = chain.acc
    chain.call("plant", G2, KALE)  # within the interval: branch 5c bumps the index
    assert chain.inst.farm_index == 2
    # FarmBlock is not reset: timestamp and accumulators carry over
    assert chain.acc.timestamp == opened
    assert chain.acc == dataclasses.replace(acc_before, min_stake=0, max_stake=2 * KALE)
    assert chain.block(2) == Block(chain.timestamp, 0, 0, 0, 0, 2 * KALE, 0, bytes(32), KALE, 0)
    with raises(E.BLOCK_MISSING):
        chain.call("harvest", G1, 1)


def test_remove_block_at_genesis_recreates_block_0(chain: Chain) -> None:
    chain.call("plant", G1, 0)
    chain.call("remove_block", 0)
    chain.close()
    chain.call("plant", G2, 0)
    assert chain.inst.farm_index == 0  # index 0: no bump
    assert chain.block(0).timestamp == chain.timestamp
    with raises(E.PAIL_EXISTS):  # G1's pail outlived its block
        chain.call("plant", G1, 0)


def test_ttl_extension_per_function(chain: Chain) -> None:
    chain.call("plant", G1, 0)
    assert chain.storage.ttl_extensions == 1
    nonce, h = nonce_with(0, bytes(32), G1, 0)
    chain.close()
    chain.call("work", G1, h, nonce)
    assert chain.storage.ttl_extensions == 1
    chain.roll_over()
    chain.call("harvest", G1, 0)
    assert chain.storage.ttl_extensions == 1


# ------------------------------------------------------------ argument conversion


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("plant", ("not-an-address", 0)),
        ("plant", (G1, I128_MAX + 1)),
        ("work", (G1, bytes(31), 0)),
        ("work", (G1, bytes(32), -1)),
        ("work", (G1, bytes(32), 2**64)),
        ("harvest", (G1, U32_MAX + 1)),
        ("harvest", ("GABC", 0)),
        ("remove_block", (-1,)),
    ],
)
def test_argument_conversion_fails_before_the_contract(
    chain: Chain, method: str, args: tuple[Any, ...]
) -> None:
    with pytest.raises(ValueError):
        chain.call(method, *args)
    assert chain.storage.reads == []


def test_ledger_context_validation() -> None:
    with pytest.raises(ValueError):
        LedgerContext(-1, 0)
    with pytest.raises(ValueError):
        FarmContract(MemoryStorage(), MemoryToken(), LedgerContext(1, 1), lambda _a: None, 0)
