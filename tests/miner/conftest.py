"""Shared fixtures: the kernel is compiled (or loaded from the disk cache) once per session."""

from __future__ import annotations

import random

import pytest
from stellar_sdk import StrKey

from kalepool.miner import KernelInfo, load_kernel

G_NULL = "GBIIUZH63Z262QXGKJIP3ZU5DS7L4L2TBTYGPXRIGQXZAF25A72YNULL"
G_KALE = "GBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"
C_FARM = "CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA"
V3_ENTROPY = bytes.fromhex("0000000009faeb2ff8dc93fb334dabc1398e359a163a6bb538f633fdb9b327ca")


@pytest.fixture(scope="session")
def kernel_info() -> KernelInfo:
    return load_kernel()


def random_farmer(rng: random.Random) -> str:
    key = rng.randbytes(32)
    return StrKey.encode_contract(key) if rng.random() < 0.2 else StrKey.encode_ed25519_public_key(key)


def random_job(rng: random.Random) -> tuple[int, bytes, str]:
    index = rng.choice([0, 1, 30558, 40000, 2**31, 2**32 - 1, rng.randrange(2**32)])
    return index, rng.randbytes(32), random_farmer(rng)
