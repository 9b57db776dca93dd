"""Small helpers shared by the feature, label and sentiment stages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from mktpipe.storage import TableStore


def ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator, null when the denominator is 0 or null (ANSI-safe)."""
    return F.try_divide(numerator.cast("double"), denominator.cast("double"))


def day_range(run_date: dt.date, days_before: int) -> list[dt.date]:
    """[run_date - days_before, ..., run_date]."""
    return [run_date - dt.timedelta(days=n) for n in range(days_before, -1, -1)]


def span(dates: list[dt.date]) -> str:
    """``2026-03-01`` or ``2026-03-01..2026-03-10`` for a manifest's run_date."""
    dates = sorted(dates)
    return str(dates[0]) if len(dates) == 1 else f"{dates[0]}..{dates[-1]}"


def midnight(day: dt.date) -> dt.datetime:
    """00:00 UTC of ``day`` (timestamps compare in UTC: the session time zone is UTC)."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def ts_between(col: str, first: dt.date, end: dt.date) -> Column:
    """``col`` in [first 00:00 UTC, end 00:00 UTC)."""
    return (F.col(col) >= F.lit(midnight(first))) & (F.col(col) < F.lit(midnight(end)))


def read_or_empty(spark: SparkSession, store: TableStore, table: str,
                  schema: StructType) -> DataFrame:
    """The table, or an empty DataFrame with ``schema`` when it has not been written yet."""
    if store.exists(table):
        return store.read(table)
    return spark.createDataFrame([], schema)


def versions(store: TableStore, tables: Iterable[str]) -> dict[str, int]:
    """{table: current version} for the tables that exist (for the run manifest)."""
    return {t: store.version(t) for t in tables if store.exists(t)}


def default_run_id(stage: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{stage}-{now.strftime('%Y%m%dT%H%M%SZ')}"
