"""Fee policy: a percentile of getFeeStats, capped, floored at the network minimum."""

from __future__ import annotations

import pytest

from kalepool.stellar.errors import NetworkError
from kalepool.stellar.fees import BASE_FEE, FeeDistribution, FeeOracle, FeePolicy, FeeStats


def dist(**values: int) -> FeeDistribution:
    base = {p: 100 for p in (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99)}
    base.update({int(k[1:]): v for k, v in values.items()})
    return FeeDistribution(percentiles=base, max=max(base.values()), min=100, mode=100, transaction_count=9)


def stats(soroban: FeeDistribution, classic: FeeDistribution | None = None) -> FeeStats:
    return FeeStats(soroban=soroban, classic=classic or dist(), latest_ledger=10)


def test_percentile_rounds_up_to_a_reported_one() -> None:
    d = dist(p80=800, p90=1200, p95=2500, p99=4000)
    assert d.at(90) == 1200
    assert d.at(85) == 1200
    assert d.at(91) == 2500
    assert d.at(99) == 4000
    assert d.at(100) == d.max


def test_policy_caps_and_floors() -> None:
    busy = stats(dist(p90=50_000))
    assert FeePolicy(90, max_inclusion_fee=10_000).soroban_fee(busy) == 10_000
    quiet = stats(dist(p90=7))
    assert FeePolicy(90, 10_000).soroban_fee(quiet) == BASE_FEE
    assert FeePolicy(90, 10_000).soroban_fee(None) == BASE_FEE
    normal = stats(dist(p50=300, p90=1_500), classic=dist(p50=120))
    assert FeePolicy(50, 10_000).soroban_fee(normal) == 300
    assert FeePolicy(50, 10_000).classic_fee(normal) == 120


def test_policy_validates() -> None:
    with pytest.raises(ValueError, match="percentile"):
        FeePolicy(0)
    with pytest.raises(ValueError, match="max_inclusion_fee"):
        FeePolicy(90, max_inclusion_fee=10)


def test_from_rpc_model() -> None:
    from stellar_sdk.soroban_rpc import GetFeeStatsResponse

    from .standin import fee_distribution

    response = GetFeeStatsResponse.model_validate(
        {
            "sorobanInclusionFee": fee_distribution(p90=1234),
            "inclusionFee": fee_distribution(),
            "latestLedger": 5,
        }
    )
    d = FeeDistribution.from_rpc(response.soroban_inclusion_fee)
    assert d.at(90) == 1234 and d.transaction_count == 17


async def test_oracle_caches_and_shares_one_fetch() -> None:
    now = [0.0]
    fetches = 0

    async def fetch() -> FeeStats:
        nonlocal fetches
        fetches += 1
        return stats(dist(p90=500 + fetches))

    oracle = FeeOracle(fetch, FeePolicy(90, 10_000), ttl=5.0, clock=lambda: now[0])
    import asyncio

    fees = await asyncio.gather(*(oracle.soroban_fee() for _ in range(10)))
    assert fees == [501] * 10 and fetches == 1
    now[0] = 4.9
    assert await oracle.soroban_fee() == 501
    now[0] = 5.1
    assert await oracle.soroban_fee() == 502 and fetches == 2


async def test_oracle_survives_a_failing_rpc() -> None:
    now = [0.0]
    ok = [True]

    async def fetch() -> FeeStats:
        if not ok[0]:
            raise NetworkError("down")
        return stats(dist(p90=900))

    oracle = FeeOracle(fetch, FeePolicy(90, 10_000), ttl=1.0, clock=lambda: now[0])
    assert await oracle.soroban_fee() == 900
    ok[0] = False
    now[0] = 2.0
    assert await oracle.soroban_fee() == 900  # last known stats
    cold = FeeOracle(fetch, FeePolicy(90, 10_000), ttl=1.0, clock=lambda: now[0])
    assert await cold.soroban_fee() == BASE_FEE  # nothing known: the minimum
