"""The KALE proof of work: the 76-byte preimage, its Keccak-256 hash and the zero count.

Layout of the preimage (``kale-contract.md`` §4.1)::

    0..3    index   u32 big-endian (the farm index being worked)
    4..11   nonce   u64 big-endian
    12..43  entropy 32 bytes (``Block(index).entropy``)
    44..75  the last 32 bytes of the farmer's ScAddress XDR: the raw ed25519 key of a
            G account, or the contract id of a C address
"""

from __future__ import annotations

from Crypto.Hash import keccak
from stellar_sdk import StrKey

PREIMAGE_LENGTH = 76
HASH_LENGTH = 32
ENTROPY_LENGTH = 32
MAX_U32 = 2**32 - 1
MAX_U64 = 2**64 - 1
NONCE_OFFSET = 4
ENTROPY_OFFSET = 12
FARMER_OFFSET = 44


def farmer_key_bytes(farmer: str) -> bytes:
    """The 32 bytes a farmer contributes to the preimage (raw key or contract id)."""
    if not isinstance(farmer, str):
        raise ValueError(f"farmer: expected a G... or C... address string, got {type(farmer).__name__}")
    if farmer.startswith("G") and StrKey.is_valid_ed25519_public_key(farmer):
        return StrKey.decode_ed25519_public_key(farmer)
    if farmer.startswith("C") and StrKey.is_valid_contract(farmer):
        return StrKey.decode_contract(farmer)
    raise ValueError(f"farmer: {farmer!r} is not a valid G... account or C... contract address")


def check_index(index: int) -> int:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= MAX_U32:
        raise ValueError(f"index: must be an integer in [0, 2^32), got {index!r}")
    return index


def check_nonce(nonce: int) -> int:
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce <= MAX_U64:
        raise ValueError(f"nonce: must be an integer in [0, 2^64), got {nonce!r}")
    return nonce


def check_entropy(entropy: bytes) -> bytes:
    if not isinstance(entropy, bytes | bytearray) or len(entropy) != ENTROPY_LENGTH:
        got = len(entropy) if isinstance(entropy, bytes | bytearray) else type(entropy).__name__
        raise ValueError(f"entropy: must be exactly 32 bytes, got {got}")
    return bytes(entropy)


def preimage_prefix(index: int, entropy: bytes, farmer: str) -> tuple[bytes, bytes]:
    """The constant parts around the nonce: ``(index bytes, entropy + farmer bytes)``."""
    check_index(index)
    tail = check_entropy(entropy) + farmer_key_bytes(farmer)
    return index.to_bytes(4, "big"), tail


def preimage(index: int, nonce: int, entropy: bytes, farmer: str) -> bytes:
    """The 76-byte message whose Keccak-256 is the proof of work."""
    head, tail = preimage_prefix(index, entropy, farmer)
    return head + check_nonce(nonce).to_bytes(8, "big") + tail


def keccak256(data: bytes) -> bytes:
    """Keccak-256 with the original 0x01 padding (as Ethereum), not SHA3-256."""
    return keccak.new(data=data, digest_bits=256).digest()


def work_hash(index: int, nonce: int, entropy: bytes, farmer: str) -> bytes:
    """The hash the farm recomputes in ``work``."""
    return keccak256(preimage(index, nonce, entropy, farmer))


def leading_zeros(hash_: bytes) -> int:
    """Leading zero hex nibbles of a hash (0..64), the contract's zero count."""
    if not isinstance(hash_, bytes | bytearray):
        raise ValueError(f"hash: expected bytes, got {type(hash_).__name__}")
    zeros = 0
    for byte in hash_:
        if byte == 0:
            zeros += 2
            continue
        if byte < 0x10:
            zeros += 1
        break
    return zeros
