"""Formatting for the dashboard's templates: amounts from integer stroops (no floats),
percentages from basis points, durations, hash rates, addresses, QR codes.

Each function is a Jinja filter of the same name (:data:`FILTERS`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import segno
from markupsafe import Markup

from kalepool.kale.amounts import amount_text

__all__ = ["FILTERS", "amount", "bps", "qr_svg"]

def amount(stroops: int | None, unit: str = "KALE", *, places: int = 7) -> str:
    """``12,345.67 KALE`` from 123456700000 stroops: exact, at least 2 decimals, at most 7."""
    if stroops is None:
        return "–"
    text = amount_text(int(stroops), unit=unit, min_places=min(2, places), max_places=places)
    return text.replace("-", "−")


def kale(stroops: int | None) -> str:
    return amount(stroops, "KALE")


def xlm(stroops: int | None) -> str:
    return amount(stroops, "XLM")


def bps(value: int | None) -> str:
    """``12.5 %`` from 1250 basis points."""
    if value is None:
        return "–"
    whole, frac = divmod(int(value), 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") + " %"


def hash_rate(per_second: float | None) -> str:
    value = float(per_second or 0.0)
    for unit, size in (("GH/s", 1e9), ("MH/s", 1e6), ("kH/s", 1e3)):
        if value >= size:
            return f"{value / size:,.2f} {unit}"
    return f"{value:,.0f} H/s"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return duration((datetime.now(UTC) - moment).total_seconds()) + " ago"


def when(moment: datetime | None) -> str:
    return "–" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short(key: str | None, keep: int = 6) -> str:
    """``GABCDE…VWXYZ`` for a long address or id."""
    if not key:
        return "–"
    text = str(key)
    return text if len(text) <= 2 * keep + 1 else f"{text[:keep]}…{text[-keep:]}"


def qr_svg(text: str, title: str = "QR code") -> Markup:
    """``text`` as an inline SVG QR code (no scripts, no styles: fine under the CSP)."""
    code = segno.make(text, error="m")
    return Markup(
        code.svg_inline(
            scale=5, border=3, omitsize=True, svgclass="qr", title=title, dark="#14231b", light="#ffffff"
        )
    )


def number(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


FILTERS = {
    "amount": amount,
    "kale": kale,
    "xlm": xlm,
    "bps": bps,
    "hash_rate": hash_rate,
    "duration": duration,
    "ago": ago,
    "when": when,
    "short": short,
    "qr_svg": qr_svg,
    "number": number,
}
