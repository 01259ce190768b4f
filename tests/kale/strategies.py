"""Hypothesis strategies for the kale types (shared by the kale and devnet tests)."""

from __future__ import annotations

from hypothesis import strategies as st
from stellar_sdk import StrKey

from kalepool.kale import constants as c
from kalepool.kale.types import Block, FarmInstance, Pail

u32 = st.integers(min_value=0, max_value=c.U32_MAX)
u64 = st.integers(min_value=0, max_value=c.U64_MAX)
i128 = st.integers(min_value=c.I128_MIN, max_value=c.I128_MAX)
# include the edges, which are also the sentinels
u32_edgy = st.one_of(u32, st.sampled_from([0, c.U32_MAX]))
i128_edgy = st.one_of(i128, st.sampled_from([c.I128_MIN, c.I128_MAX, 0, -1]))

accounts = st.binary(min_size=32, max_size=32).map(StrKey.encode_ed25519_public_key)
contracts = st.binary(min_size=32, max_size=32).map(StrKey.encode_contract)
addresses = st.one_of(accounts, contracts)

blocks = st.builds(
    Block,
    timestamp=u64,
    min_gap=u32_edgy,
    min_stake=i128_edgy,
    min_zeros=u32_edgy,
    max_gap=u32_edgy,
    max_stake=i128_edgy,
    max_zeros=u32_edgy,
    entropy=st.binary(min_size=32, max_size=32),
    staked_total=i128_edgy,
    normalized_total=i128_edgy,
)

pails = st.builds(
    Pail,
    sequence=u32,
    gap=st.none() | u32,
    stake=i128_edgy,
    zeros=st.none() | u32,
)

instances = st.builds(
    FarmInstance,
    homesteader=st.none() | addresses,
    asset=st.none() | addresses,
    farm_index=u32_edgy,
    farm_block=st.none() | blocks,
    paused=st.booleans(),
)
