"""Bearer credentials: pooler API keys, farmer tokens and the operator's admin token.

A key is ``kp_<kind>_`` + 43 URL-safe characters (32 random bytes). Only its SHA-256 is
stored (``api_keys.key_hash``); with 256 bits of entropy a plain hash is enough (no salt or
slow hash is needed: there is nothing to guess). The clear key is shown once, at creation.
The admin token comes from the settings and is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from kalepool.backend.enums import ApiKeyKind

__all__ = ["IssuedKey", "hash_key", "issue_key", "key_kind", "same_secret"]

PREFIXES = {ApiKeyKind.POOLER: "kp_pooler_", ApiKeyKind.FARMER: "kp_farmer_"}
_PREFIX_SHOWN = 16


@dataclass(frozen=True, repr=False)
class IssuedKey:
    """A new key: the clear ``token`` (show it once) and what is stored."""

    token: str
    key_hash: bytes
    prefix: str

    def __repr__(self) -> str:
        return f"IssuedKey(prefix={self.prefix!r})"


def hash_key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def issue_key(kind: ApiKeyKind) -> IssuedKey:
    token = PREFIXES[kind] + secrets.token_urlsafe(32)
    return IssuedKey(token, hash_key(token), token[:_PREFIX_SHOWN])


def key_kind(token: str) -> ApiKeyKind | None:
    """Which kind of key ``token`` looks like (by its prefix), without a database lookup."""
    for kind, prefix in PREFIXES.items():
        if token.startswith(prefix):
            return kind
    return None


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets (compares their SHA-256 digests)."""
    return hmac.compare_digest(hash_key(given), hash_key(expected))
