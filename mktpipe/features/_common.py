"""Column and date helpers shared by the feature and label computations."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column
from pyspark.sql import functions as F


def ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator, null when the denominator is 0 or null (ANSI-safe)."""
    return F.try_divide(numerator.cast("double"), denominator.cast("double"))


def midnight(day: dt.date) -> dt.datetime:
    """00:00 UTC of ``day`` (timestamps compare in UTC: the session time zone is UTC)."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def ts_between(col: str, first: dt.date, end: dt.date) -> Column:
    """``col`` in [first 00:00 UTC, end 00:00 UTC)."""
    return (F.col(col) >= F.lit(midnight(first))) & (F.col(col) < F.lit(midnight(end)))
