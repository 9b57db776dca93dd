"""Behavioural features from silver.user_daily: windows, trends, rates, timing, content.

Every function takes daily rows already cut to ``activity_date < snapshot`` (see
``user_features.load_sources``) and the snapshot date; definitions are in the table in
``mktpipe.features.columns``.
"""

from __future__ import annotations

import datetime as dt
import math

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.features import columns as C
from mktpipe.features._common import ratio

_COUNT_MAP = "map<string,bigint>"
_WEEKDAYS = range(1, 8)  # Spark dayofweek: 1 = Sunday .. 7 = Saturday


def _since(snapshot: dt.date, days: int) -> Column:
    """activity_date within the ``days`` days before the snapshot (S-days .. S-1)."""
    return F.col(C.ACTIVITY_DATE) >= F.lit(snapshot - dt.timedelta(days=days))


def _sum_if(condition: Column, value: Column) -> Column:
    return F.sum(F.when(condition, value).otherwise(F.lit(0)))


def _metric_value(metric: str) -> Column:
    # a daily row is an active day, so active_days sums ones
    return F.lit(1) if metric == C.ACTIVE_DAYS else F.col(metric)


def _window_sums(snapshot: dt.date, windows: list[int]) -> list[Column]:
    exprs = []
    for w in windows:
        inside = _since(snapshot, w)
        exprs += [_sum_if(inside, _metric_value(m)).alias(C.window_col(m, w))
                  for m in C.WINDOW_METRICS]
        exprs += [
            _sum_if(inside, F.col(C.COMPLETION_SUM)).alias(f"_csum_{w}"),
            _sum_if(inside, F.col(C.COMPLETION_VIEWS)).alias(f"_cviews_{w}"),
        ]
    return exprs


def _timing_sums(snapshot: dt.date, active_days: int) -> list[Column]:
    inside = _since(snapshot, active_days)
    weekday = F.dayofweek(C.ACTIVITY_DATE)
    return [
        F.max(F.when(inside, F.col(C.ACTIVITY_DATE))).alias("_last_active"),
        _sum_if(inside, F.col(C.EVENTS)).alias("_events"),
        _sum_if(inside & weekday.isin(1, 7), F.col(C.EVENTS)).alias("_weekend"),
        *[_sum_if(inside, F.col(C.daypart_events(name))).alias(f"_part_{name}")
          for name, _, _ in C.DAYPARTS],
        *[_sum_if(inside & (weekday == d), F.col(C.EVENTS)).alias(f"_wd_{d}") for d in _WEEKDAYS],
    ]


def entropy(counts: list[Column], total: Column) -> Column:
    """Shannon entropy (nats) of ``counts``; null when ``total`` is 0."""
    terms = [
        F.when(c > 0, -(c / total) * F.log(c / total)).otherwise(F.lit(0.0)) for c in counts
    ]
    return F.when(total > 0, sum(terms[1:], terms[0]))


def window_aggregates(daily: DataFrame, snapshot: dt.date, windows: list[int],
                      active_days: int) -> DataFrame:
    """One pass over the daily rows: per user, every window's sums and the timing sums.

    Keeps only users active in the ``active_days`` days before the snapshot.
    """
    return (
        daily.groupBy(S.USER_ID)
        .agg(*_window_sums(snapshot, windows), *_timing_sums(snapshot, active_days))
        .filter(F.col("_last_active").isNotNull())
    )


def with_trends(df: DataFrame, windows: list[int]) -> DataFrame:
    """(m_a / a) / (m_b / b) for consecutive windows a < b; null when m_b is 0."""
    trends = [
        ratio(F.col(C.window_col(m, a)) / a, F.col(C.window_col(m, b)) / b).alias(
            C.trend_col(m, a, b)
        )
        for a, b in C.window_pairs(windows)
        for m in C.TREND_METRICS
    ]
    return df.select("*", *trends)


def with_rates(df: DataFrame, windows: list[int]) -> DataFrame:
    """engagement_rate_<w>d (interactions per view) and completion_rate_<w>d per window."""
    rates = []
    for w in windows:
        interactions = sum(F.col(C.window_col(m, w)) for m in ("likes", "comments", "shares"))
        rates.append(ratio(interactions, F.col(C.window_col("views", w))).alias(
            C.window_col("engagement_rate", w)))
        rates.append(ratio(F.col(f"_csum_{w}"), F.col(f"_cviews_{w}")).alias(
            C.window_col(C.COMPLETION_RATE, w)))
    return df.select("*", *rates)


def with_timing(df: DataFrame, snapshot: dt.date) -> DataFrame:
    """days_since_last_active, weekend and daypart shares, weekday concentration."""
    total = F.col("_events")
    weekdays = [F.col(f"_wd_{d}") for d in _WEEKDAYS]
    timing = [
        F.datediff(F.lit(snapshot), F.col("_last_active")).alias(C.DAYS_SINCE_LAST_ACTIVE),
        ratio(F.col("_weekend"), total).alias(C.WEEKEND_SHARE),
        *[ratio(F.col(f"_part_{name}"), total).alias(C.daypart_share(name))
          for name, _, _ in C.DAYPARTS],
        # clamp: floating error can put a one-weekday user a hair outside [0, 1]; null
        # without events (an order-only user), as the shares (greatest() skips a null)
        F.when(total > 0, F.least(F.greatest(1.0 - entropy(weekdays, total) / math.log(7),
                                             F.lit(0.0)), F.lit(1.0))
               ).alias(C.WEEKDAY_CONCENTRATION),
    ]
    return df.select("*", *timing)


def engagement_features(daily: DataFrame, snapshot: dt.date, windows: list[int],
                        active_days: int) -> DataFrame:
    """Per user active in the window: windowed sums, trends, rates and timing features."""
    windows = sorted(set(windows))
    out = (
        daily.transform(window_aggregates, snapshot, windows, active_days)
        .transform(with_trends, windows)
        .transform(with_rates, windows)
        .transform(with_timing, snapshot)
    )
    return out.select(*[c for c in out.columns if not c.startswith("_")])


def merged_counts(map_col: str) -> Column:
    """Aggregate: the per-key sum of a ``map<string, long>`` column over the group's rows."""
    def add(acc: Column, counts: Column) -> Column:
        return F.map_zip_with(acc, counts,
                              lambda _, a, b: F.coalesce(a, F.lit(0)) + F.coalesce(b, F.lit(0)))

    return F.aggregate(F.collect_list(map_col), F.create_map().cast(_COUNT_MAP), add)


def content_features(daily: DataFrame, snapshot: dt.date, active_days: int) -> DataFrame:
    """category_entropy, top_category and creator_loyalty over the active window.

    One aggregation per user merges the daily count maps (a user has a few dozen days of a
    few keys each), then the features are folded from the merged maps: entropy =
    ln T - sum(n ln n) / T, the top category is the largest count (ties: the smallest key).
    Measured against exploding the maps into one row per (user, key) and aggregating those:
    2.9 s vs 4.7 s at 20,000 users, same values.
    """
    per_user = daily.filter(_since(snapshot, active_days)).groupBy(S.USER_ID).agg(
        merged_counts(C.VIEWS_BY_CATEGORY).alias("_cat"),
        merged_counts(C.VIEWS_BY_CREATOR).alias("_creator"),
    )

    def total(counts: Column) -> Column:
        return F.aggregate(counts, F.lit(0).cast("long"), lambda acc, n: acc + n)

    cat_counts, creator_counts = F.map_values("_cat"), F.map_values("_creator")
    cat_total = total(cat_counts).cast("double")
    nlogn = F.aggregate(cat_counts, F.lit(0.0), lambda acc, n: acc + n * F.log(n))
    top = F.array_min(F.transform(F.map_entries("_cat"), lambda e: F.struct(
        (-e["value"]).alias("neg"), e["key"].alias("k"))))
    return per_user.select(
        S.USER_ID,
        F.when(cat_total > 0, F.greatest(F.log(cat_total) - nlogn / cat_total,
                                         F.lit(0.0))).alias(C.CATEGORY_ENTROPY),
        top["k"].alias(C.TOP_CATEGORY),
        ratio(F.array_max(creator_counts), total(creator_counts)).alias(C.CREATOR_LOYALTY),
    )
