"""Readable numbers for the report: 12,345 · $1.2M · 4.5 % · +12.3 % (never "nan"), in the
active language's formats (mktpipe.i18n: Spanish gives 12.345 · 1,2 M US$ · 4,5 % · +12,3 %).
"""

from __future__ import annotations

from typing import Any

from mktpipe import i18n

MISSING = i18n.MISSING
is_number = i18n.is_number  # a finite real number (not a bool, None or NaN)


def fmt_int(x: Any) -> str:
    """12345 -> '12,345'; None/NaN -> '—'."""
    return i18n.current().integer(x)


def fmt_num(x: Any, digits: int = 3) -> str:
    """A metric value with ``digits`` decimals (0.81234 -> '0.812')."""
    return i18n.current().number(x, digits)


def fmt_compact(x: Any) -> str:
    """Large numbers shortened: 1234 -> '1,234', 123456 -> '123.5k', 12345678 -> '12.3M'."""
    return i18n.current().compact(x)


def fmt_usd(x: Any, compact: bool = True) -> str:
    """USD amounts: '$12,345' (or '$1.2M' when compact and large); two decimals below $100."""
    return i18n.current().usd(x, compact)


def fmt_pct(x: Any, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage: 0.123 -> '12.3 %'."""
    return i18n.current().percent(x, digits)


def fmt_date(day: Any) -> str:
    """A day: '2026-03-01' in English, '1 mar 2026' in Spanish."""
    return i18n.current().date(day)


def fmt_change(current: Any, previous: Any) -> tuple[str, float | None]:
    """Relative change as text ('+12.3 %') and as a number; ('—', None) if not computable."""
    if not (is_number(current) and is_number(previous)) or previous == 0:
        return MISSING, None
    change = (current - previous) / abs(previous)
    return i18n.current().change(change), change


def change_class(change: float | None, higher_is_better: bool | None) -> str:
    """CSS class of a change: 'good', 'bad' or 'neutral' (small changes are neutral)."""
    if change is None or higher_is_better is None or abs(change) < 0.005:
        return "neutral"
    return "good" if (change > 0) == higher_is_better else "bad"


def fmt_value(x: Any, unit: str) -> str:
    """Format by unit: 'usd', 'int', 'pct', 'num' (3 decimals), 'compact'."""
    return {"usd": fmt_usd, "int": fmt_int, "pct": fmt_pct, "num": fmt_num,
            "compact": fmt_compact}.get(unit, str)(x)
