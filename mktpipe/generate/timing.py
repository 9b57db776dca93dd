"""Calendar shape of activity: hour-of-day profile and weekday factors."""

from __future__ import annotations

import numpy as np

from mktpipe.generate import params as P

_HOUR_CDF = np.cumsum(P.HOUR_WEIGHTS) / P.HOUR_WEIGHTS.sum()


def times_of_day(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` seconds-after-midnight drawn from the hour-of-day profile (int64)."""
    hour = np.minimum(np.searchsorted(_HOUR_CDF, rng.random(n), side="right"), 23)
    return hour.astype(np.int64) * 3600 + rng.integers(0, 3600, size=n)


def weekday(epoch_day: int) -> int:
    """Monday = 0 ... Sunday = 6 (1970-01-01 was a Thursday)."""
    return (int(epoch_day) + 3) % 7


def weekday_factor(epoch_day: int) -> float:
    """Relative activity of a calendar day: weekends are busier."""
    return float(P.WEEKDAY_FACTOR[weekday(epoch_day)])
