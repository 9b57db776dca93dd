"""Readable numbers for the report: 12,345 · $1.2M · 4.5 % · +12.3 % (never "nan")."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

MISSING = "—"


def is_number(x: Any) -> bool:
    """A finite real number (Python or numpy scalar; not a bool, None or NaN)."""
    return (isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_)
            and math.isfinite(x))


def fmt_int(x: Any) -> str:
    """12345 -> '12,345'; None/NaN -> '—'."""
    return f"{round(x):,}" if is_number(x) else MISSING


def fmt_num(x: Any, digits: int = 3) -> str:
    """A metric value with ``digits`` decimals (0.81234 -> '0.812')."""
    return f"{x:,.{digits}f}" if is_number(x) else MISSING


def fmt_compact(x: Any) -> str:
    """Large numbers shortened: 1234 -> '1,234', 123456 -> '123.5k', 12345678 -> '12.3M'."""
    if not is_number(x):
        return MISSING
    for bound, suffix in ((1e9, "B"), (1e6, "M"), (1e5, "k")):
        if abs(x) >= bound:
            return f"{x / (bound if suffix != 'k' else 1e3):,.1f}{suffix}"
    return fmt_int(x) if float(x).is_integer() or abs(x) >= 100 else f"{x:,.2f}"


def fmt_usd(x: Any, compact: bool = True) -> str:
    """USD amounts: '$12,345' (or '$1.2M' when compact and large); two decimals below $100."""
    if not is_number(x):
        return MISSING
    sign = "-" if x < 0 else ""
    x = abs(x)
    if compact and x >= 1e5:
        return sign + "$" + fmt_compact(x)
    return sign + (f"${x:,.2f}" if x < 100 else f"${x:,.0f}")


def fmt_pct(x: Any, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage: 0.123 -> '12.3 %'."""
    return f"{100 * x:.{digits}f} %" if is_number(x) else MISSING


def fmt_change(current: Any, previous: Any) -> tuple[str, float | None]:
    """Relative change as text ('+12.3 %') and as a number; ('—', None) if not computable."""
    if not (is_number(current) and is_number(previous)) or previous == 0:
        return MISSING, None
    change = (current - previous) / abs(previous)
    return f"{'+' if change >= 0 else '−'}{abs(100 * change):.1f} %", change


def change_class(change: float | None, higher_is_better: bool | None) -> str:
    """CSS class of a change: 'good', 'bad' or 'neutral' (small changes are neutral)."""
    if change is None or higher_is_better is None or abs(change) < 0.005:
        return "neutral"
    return "good" if (change > 0) == higher_is_better else "bad"


def fmt_value(x: Any, unit: str) -> str:
    """Format by unit: 'usd', 'int', 'pct', 'num' (3 decimals), 'compact'."""
    return {"usd": fmt_usd, "int": fmt_int, "pct": fmt_pct, "num": fmt_num,
            "compact": fmt_compact}.get(unit, str)(x)
