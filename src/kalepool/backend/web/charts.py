"""Server-rendered SVG charts (no library, no script): reward and farmers per block.

The SVG uses presentation attributes and classes only (no ``style``), so it passes the
dashboard's Content-Security-Policy, and a ``viewBox`` so it scales to any width.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from kalepool.backend.services.stats import BlockStats
from kalepool.backend.web.format import kale

__all__ = ["blocks_chart"]

_W, _H = 720, 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 72, 72, 40, 48
#: the widest a bar gets (a few blocks must not look like a bar chart of one)
_MAX_BAR = 40.0
_STROOPS = 10_000_000


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _label(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:,.1f}"


def blocks_chart(blocks: Sequence[BlockStats], *, title: str = "Reward and farmers per block") -> Markup:
    """Bars: the block's reward in KALE (left axis); dots and a line: farmers planted
    (right axis). Oldest block on the left."""
    ordered = sorted(blocks, key=lambda b: b.index)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-labelledby="chart-title chart-desc" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
    ]
    if not ordered:
        parts.append('<desc id="chart-desc">No block yet.</desc>')
        parts.append(
            f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle" class="muted">no block yet</text>'
        )
        parts.append("</svg>")
        return Markup("".join(parts))
    first, last = ordered[0].index, ordered[-1].index
    parts.append(
        f'<desc id="chart-desc">Blocks {first} to {last}: reward in KALE as bars, '
        "farmers planted as a line.</desc>"
    )
    top_reward = _nice_ceiling(max(b.reward for b in ordered) / _STROOPS)
    top_farmers = _nice_ceiling(max(b.planted for b in ordered))
    slot = plot_w / len(ordered)
    bar = min(_MAX_BAR, max(2.0, slot * 0.6))

    def y_reward(stroops: int) -> float:
        return _TOP + plot_h - (stroops / _STROOPS) / top_reward * plot_h

    def y_farmers(count: int) -> float:
        return _TOP + plot_h - count / top_farmers * plot_h

    for fraction in (0.0, 0.5, 1.0):  # grid and axis labels
        y = _TOP + plot_h - fraction * plot_h
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_label(top_reward * fraction)}</text>"
        )
        parts.append(
            f'<text class="axis farmers" x="{_W - _RIGHT + 6}" y="{y + 4:.1f}">'
            f"{_label(top_farmers * fraction)}</text>"
        )
    parts.append(f'<text class="axis title" x="{_LEFT - 6}" y="{_TOP - 16}" text-anchor="end">KALE</text>')
    parts.append(
        f'<text class="axis farmers title" x="{_W - 4}" y="{_TOP - 16}" text-anchor="end">farmers</text>'
    )
    points = []
    every = max(1, len(ordered) // 8)
    for i, b in enumerate(ordered):
        cx = _LEFT + slot * (i + 0.5)
        top = y_reward(b.reward)
        height = _TOP + plot_h - top
        parts.append(
            f'<rect class="bar" x="{cx - bar / 2:.1f}" y="{top:.1f}" width="{bar:.1f}" height="{height:.1f}">'
            f"<title>block {b.index}: {kale(b.reward)}, {b.planted} farmers</title></rect>"
        )
        points.append(f"{cx:.1f},{y_farmers(b.planted):.1f}")
        if i % every == 0 or i == len(ordered) - 1:
            parts.append(
                f'<text class="axis" x="{cx:.1f}" y="{_H - _BOTTOM + 20}" '
                f'text-anchor="middle">{b.index}</text>'
            )
    parts.append(f'<polyline class="line" fill="none" points="{" ".join(points)}"/>')
    for point in points:
        cx_text, cy_text = point.split(",")
        parts.append(f'<circle class="dot" cx="{cx_text}" cy="{cy_text}" r="3.5"/>')
    parts.append(
        f'<text class="axis" x="{_LEFT + plot_w / 2:.1f}" y="{_H - 4}" text-anchor="middle">block</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
