"""The pooler's hash rate (:class:`kalepool.pooler.mining.HashRate`), on a fake clock."""

from __future__ import annotations

from kalepool.pooler.mining import HashRate


def test_the_rate_is_measured_over_the_last_ten_seconds() -> None:
    now = [0.0]
    rate = HashRate(clock=lambda: now[0])
    assert rate.current(mining=True, fallback=5.0) == 5.0  # no sample yet: the measured one
    assert rate.current(mining=False, fallback=5.0) == 0.0  # not mining: nothing
    for second in range(0, 31):
        now[0] = float(second)
        # 100 hashes a second for 20 s, then 400
        rate.sample(100 * min(second, 20) + 400 * max(second - 20, 0))
    assert rate.current(mining=True, fallback=5.0) == 400.0  # the last 10 s only
    assert rate.samples[0][0] == 20.0


def test_a_restarted_count_falls_back() -> None:
    now = [0.0]
    rate = HashRate(clock=lambda: now[0])
    rate.sample(1_000)
    now[0] = 1.0
    rate.sample(10)  # a new block's miner counts from zero
    assert rate.current(mining=True, fallback=7.0) == 7.0
