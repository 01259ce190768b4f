"""The proof-of-work preimage, hash and zero count against the spec's vectors (§4, §7)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalepool.kale import pow

G_KALE = "GBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"
G_NULL = "GBIIUZH63Z262QXGKJIP3ZU5DS7L4L2TBTYGPXRIGQXZAF25A72YNULL"
C_FARM = "CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA"

V2_ENTROPY = bytes.fromhex("0000000099be0037e5a48324959cb9dd10965ae59511cfd1996f9b917aad9980")
V3_ENTROPY = bytes.fromhex("0000000009faeb2ff8dc93fb334dabc1398e359a163a6bb538f633fdb9b327ca")

VECTORS = [
    # (index, nonce, entropy, farmer, preimage hex, hash hex, zeros)
    (
        0, 0, bytes(32), G_KALE,
        "00000000" "0000000000000000" + "00" * 32
        + "6079c3ed9c947ace5567887a3b73a71fc0ab5300108d76ba9cf50f3ad7a26c45",
        "8199f325b1eed9cd56c39fe90537cf966f5c05820778aeb42daa4b82f4903e61", 0,
    ),
    (
        30558, 123456789, V2_ENTROPY, C_FARM,
        "0000775e00000000075bcd150000000099be0037e5a48324959cb9dd10965ae59511cfd1996f9b917aad9980"
        "d7fe44bd0af11d602b1091f2f4a1f4df212d444d0321ea32adb3cc1cbbab0a04",
        "a514ba0e724df8b5bf36a709ee48bb244b2d7da3805be727491653edcbe1b931", 0,
    ),
    (
        40000, 381821, V3_ENTROPY, G_NULL,
        "00009c40000000000005d37d0000000009faeb2ff8dc93fb334dabc1398e359a163a6bb538f633fdb9b327ca"
        "508a64fede75ed42e65250fde69d1cbebe2f530cf067de28342f90175d07f586",
        "00000c3c09f4d7fe8d312562ed006096a80ae653a102f7e9ab0a513332d4f0c6", 5,
    ),
]


@pytest.mark.parametrize(("index", "nonce", "entropy", "farmer", "pre", "digest", "zeros"), VECTORS)
def test_vectors_v1_to_v3(index, nonce, entropy, farmer, pre, digest, zeros) -> None:
    image = pow.preimage(index, nonce, entropy, farmer)
    assert len(image) == pow.PREIMAGE_LENGTH
    assert image.hex() == pre
    h = pow.work_hash(index, nonce, entropy, farmer)
    assert h.hex() == digest
    assert pow.leading_zeros(h) == zeros


def test_v3_previous_nonce_has_no_zeros() -> None:
    h = pow.work_hash(40000, 381820, V3_ENTROPY, G_NULL)
    assert h.hex().startswith("1bfcc018")
    assert pow.leading_zeros(h) == 0


def test_example_d_hashes() -> None:
    h1 = pow.work_hash(0, 54, bytes(32), G_KALE)
    assert h1.hex() == "0002f8bcd518fc1a86477e2a26035b9521256cfb14743c186494e68f79f1adea"
    h2 = pow.work_hash(0, 39361, bytes(32), G_NULL)
    assert h2.hex() == "0000f768f96976b94ca2afb180ab001947a9e93a7f778031c6a41a575338bfaf"
    assert (pow.leading_zeros(h1), pow.leading_zeros(h2)) == (3, 4)


def test_keccak_is_not_sha3() -> None:
    assert pow.keccak256(b"").hex().startswith("c5d24601")
    assert pow.keccak256(b"").hex().endswith("5d85a470")
    assert pow.keccak256(b"abc").hex().startswith("4e03657a")
    assert pow.keccak256(b"abc").hex().endswith("a12d6c45")
    assert pow.keccak256(b"abc") != hashlib.sha3_256(b"abc").digest()


@pytest.mark.parametrize(
    ("hex_hash", "zeros"),
    [
        ("00000000075122504cde7b56f7a295ab5588a88eb74f87048d1c0ff9ec083bcb", 9),
        ("00100000000f2ea462db5f7a04090430384433845c3367d55c06f20efd6656", 2),
        ("00000000000f2ea462db5f7a04090430384433845c3367d55c06f20efd6656", 11),
        ("000000e9acb4" + "f" * 52, 6),
        ("000000039a07" + "f" * 52, 7),
        ("0000000064de" + "f" * 52, 8),
        ("00000000013c" + "f" * 52, 9),
        ("0000000f98c4740b898b6584be9e9217f7137d28d45dccbf64c9abac8aafbfb9", 7),
        ("00" * 32, 64),
        ("f" * 64, 0),
    ],
)
def test_zero_count_vectors(hex_hash: str, zeros: int) -> None:
    assert pow.leading_zeros(bytes.fromhex(hex_hash)) == zeros


@given(st.binary(min_size=32, max_size=32))
def test_leading_zeros_matches_hex_rule(h: bytes) -> None:
    assert pow.leading_zeros(h) == len(h.hex()) - len(h.hex().lstrip("0"))


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32))
def test_preimage_layout(index: int, nonce: int, entropy: bytes) -> None:
    image = pow.preimage(index, nonce, entropy, G_KALE)
    assert int.from_bytes(image[0:4], "big") == index
    assert int.from_bytes(image[4:12], "big") == nonce
    assert image[12:44] == entropy
    assert image[44:] == pow.farmer_key_bytes(G_KALE)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"nonce": -1}, "nonce"),
        ({"nonce": 2**64}, "nonce"),
        ({"index": -1}, "index"),
        ({"index": 2**32}, "index"),
        ({"entropy": bytes(31)}, "entropy"),
        ({"entropy": bytes(33)}, "entropy"),
        ({"farmer": "GBAD"}, "farmer"),
        ({"farmer": G_KALE[:-1] + "A"}, "farmer"),
        ({"farmer": "SBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"}, "farmer"),
    ],
)
def test_invalid_inputs_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"index": 1, "nonce": 1, "entropy": bytes(32), "farmer": G_KALE}
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{field}:"):
        pow.preimage(**args)  # type: ignore[arg-type]
