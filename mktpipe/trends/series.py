"""The KPI series the trends stage analyses, built in Spark (long format, one row per series
and day).

A series is a KPI summed per day over every user (``series_id`` = the KPI's name, segment
null), or over the users of one segment of ``gold.customer_segments`` at the snapshot
(``series_id`` = ``<kpi>|<segment column>=<value>``: today's segment members, looked back
over their history). A segment gets its series only where volume allows: its mean daily
active users reach ``trends.min_segment_active_users``.

KPIs from silver.user_daily: active_users (users with a row that day), events, views,
engagements (likes + comments + shares), orders, revenue_usd (spend in USD).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.features import columns as C
from mktpipe.i18n import N_

SERIES_ID, KPI, SEGMENT, DAY, VALUE = "series_id", "kpi", "segment", "day", "value"
# each KPI as readers see it (through mktpipe.i18n._)
KPI_LABELS = {"active_users": N_("Active users"), "events": N_("Events"), "views": N_("Views"),
              "engagements": N_("Likes, comments and shares"), "orders": N_("Orders"),
              "revenue_usd": N_("Revenue (USD)")}
SERIES_COLUMNS = (SERIES_ID, KPI, SEGMENT, DAY, VALUE)


def kpi_columns() -> dict[str, Column]:
    """KPI name -> its per-day aggregate over silver.user_daily rows."""
    return {
        "active_users": F.count(F.lit(1)),  # one row per user per active day
        "events": F.sum(C.EVENTS),
        "views": F.sum(C.VIEWS),
        "engagements": F.sum(F.col("likes") + F.col("comments") + F.col("shares")),
        "orders": F.sum(C.ORDERS),
        "revenue_usd": F.sum(C.SPEND_USD),
    }


def _long(wide: DataFrame, kpis: list[str], segment: Column) -> DataFrame:
    """(day, kpi columns...) -> (series_id, kpi, segment, day, value), one row per kpi."""
    pairs = F.explode(F.array(*[F.struct(F.lit(k).alias(KPI), F.col(k).cast("double")
                                         .alias(VALUE)) for k in kpis]))
    out = wide.select(F.col(S.ACTIVITY_DATE).alias(DAY), segment.alias(SEGMENT),
                      pairs.alias("p")).select(DAY, SEGMENT, "p.*")
    series = F.when(F.col(SEGMENT).isNull(), F.col(KPI)).otherwise(
        F.concat(F.col(KPI), F.lit("|"), F.col(SEGMENT)))
    return out.select(series.alias(SERIES_ID), KPI, SEGMENT, DAY,
                      F.coalesce(F.col(VALUE), F.lit(0.0)).alias(VALUE))


def window(daily: DataFrame, snapshot: dt.date, history_days: int) -> DataFrame:
    """silver.user_daily rows of the ``history_days`` days before ``snapshot``."""
    first = snapshot - dt.timedelta(days=history_days)
    return daily.filter((F.col(S.ACTIVITY_DATE) >= F.lit(first))
                        & (F.col(S.ACTIVITY_DATE) < F.lit(snapshot)))


def total_series(daily: DataFrame, kpis: list[str]) -> DataFrame:
    aggs = kpi_columns()
    wide = daily.groupBy(S.ACTIVITY_DATE).agg(*[aggs[k].alias(k) for k in kpis])
    return _long(wide, kpis, F.lit(None).cast("string"))


def segment_series(daily: DataFrame, segments: DataFrame, column: str, kpis: list[str],
                   min_active_users: float) -> tuple[DataFrame, list[str]]:
    """Per-segment series of ``kpis`` (segment labels ``<column>=<value>``) for the segments
    whose mean daily active users reach ``min_active_users``; and the labels kept."""
    aggs = kpi_columns()
    members = segments.select(S.USER_ID, F.concat(F.lit(f"{column}="), F.col(column)
                                                   .cast("string")).alias(SEGMENT)) \
        .filter(F.col(SEGMENT).isNotNull())
    joined = daily.join(members, S.USER_ID)
    days = daily.select(S.ACTIVITY_DATE).distinct().count()
    volume = (joined.groupBy(SEGMENT)
              .agg((F.count(F.lit(1)) / F.lit(max(days, 1))).alias("mean_active"))
              .filter(F.col("mean_active") >= F.lit(min_active_users))
              .orderBy(SEGMENT).collect())  # one row per segment
    kept = [r[SEGMENT] for r in volume]
    wide = (joined.filter(F.col(SEGMENT).isin(kept))
            .groupBy(SEGMENT, S.ACTIVITY_DATE)
            .agg(*[aggs[k].alias(k) for k in kpis]))
    out = _long(wide, kpis, F.col(SEGMENT))
    return out, kept
