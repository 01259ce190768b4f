"""Credentials and the token-bucket rate limiter."""

from __future__ import annotations

import pytest

from kalepool.backend.enums import ApiKeyKind
from kalepool.backend.ratelimit import RateLimiter
from kalepool.backend.security import hash_key, issue_key, key_kind, same_secret


def test_issued_keys_are_random_prefixed_and_stored_hashed() -> None:
    first, second = issue_key(ApiKeyKind.POOLER), issue_key(ApiKeyKind.POOLER)
    assert first.token != second.token
    assert first.token.startswith("kp_pooler_") and len(first.token) > 50
    assert first.key_hash == hash_key(first.token) and len(first.key_hash) == 32
    assert first.token.startswith(first.prefix) and len(first.prefix) < 20
    assert first.token not in repr(first)
    assert key_kind(first.token) is ApiKeyKind.POOLER
    assert key_kind(issue_key(ApiKeyKind.FARMER).token) is ApiKeyKind.FARMER
    assert key_kind("Bearer something") is None


def test_same_secret() -> None:
    assert same_secret("a" * 30, "a" * 30)
    assert not same_secret("a" * 30, "a" * 29 + "b")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k") == pytest.approx(0.5)
    assert limiter.acquire("other") == 0.0  # buckets are per key
    clock.now += 0.5
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("k") > 0
    clock.now += 100  # never more than the burst
    assert [limiter.acquire("k") for _ in range(4)][-1] > 0


def test_the_bucket_table_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=Clock(), max_keys=10)
    for i in range(100):
        limiter.acquire(f"k{i}")
    assert len(limiter._buckets) == 10


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)
