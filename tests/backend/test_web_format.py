"""The dashboard's formatting (exact amounts from integer stroops) and its SVG chart."""

from __future__ import annotations

import re

from kalepool.backend.services.stats import BlockStats
from kalepool.backend.web.charts import blocks_chart
from kalepool.backend.web.format import amount, bps, duration, hash_rate, kale, qr_svg, short


def test_amounts_are_exact_from_stroops() -> None:
    assert kale(0) == "0.00 KALE"
    assert kale(1) == "0.0000001 KALE"
    assert kale(25_050_000_000) == "2,505.00 KALE"
    assert kale(51_573_529_357) == "5,157.3529357 KALE"
    assert amount(-2_755_000_000, "KALE") == "−275.50 KALE"
    # beyond a float's 53 bits the digits are still exact
    assert amount(9_007_199_254_740_993, "XLM") == "900,719,925.4740993 XLM"
    assert kale(None) == "–"


def test_percentages_durations_rates_and_addresses() -> None:
    assert (bps(1000), bps(1250), bps(1), bps(0)) == ("10 %", "12.5 %", "0.01 %", "0 %")
    assert (duration(9), duration(125), duration(7260)) == ("9 s", "2 min 05 s", "2 h 01 min")
    assert (hash_rate(0), hash_rate(20_980_000)) == ("0 H/s", "20.98 MH/s")
    assert short("GAPLZTZGL6C6HSWTBT7TPQ5Q2GSI2JC744FSZTFD2K4FY7YGPA073K64") == "GAPLZT…073K64"


def test_the_qr_code_is_inline_svg_without_style_or_script() -> None:
    svg = str(qr_svg("GAPLZTZGL6C6HSWTBT7TPQ5Q2GSI2JC744FSZTFD2K4FY7YGPA073K64"))
    assert svg.startswith('<svg viewBox="') and "<path" in svg
    assert "style" not in svg and "script" not in svg


def test_the_chart_draws_one_bar_and_one_dot_per_block() -> None:
    blocks = [BlockStats(index=i, planted=i, reward=i * 10_000_000_000) for i in (5, 3, 4)]
    svg = str(blocks_chart(blocks))
    assert svg.count('<rect class="bar"') == 3 and svg.count('<circle class="dot"') == 3
    # oldest first, each bar taller than the one before (3,000, 4,000 and 5,000 KALE)
    heights = [float(h) for h in re.findall(r'<rect class="bar" [^>]*height="([0-9.]+)"', svg)]
    assert heights == sorted(heights) and heights[0] > 0
    assert "block 3: 3,000.00 KALE, 3 farmers" in svg
    assert " style=" not in svg
    empty = str(blocks_chart([]))
    assert "no block yet" in empty and "<rect" not in empty
