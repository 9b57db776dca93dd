"""The report's Spark side: every function aggregates in Spark and returns a small result.

Nothing here brings a per-user table to the driver: daily totals (one row per day), KPI sums
(one row), counts per segment / tier / reason (tens of rows) and top-N lists (``limit``).
Dates follow the features' point-in-time convention: a report for snapshot S covers the days
before S (S-30 .. S-1 is "the last 30 days"); S itself is not complete yet.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.features import columns as C
from mktpipe.i18n import N_

ACTIVE_USERS, ENGAGEMENTS, REVENUE = "active_users", "engagements", "revenue_usd"
DAILY_SERIES = (ACTIVE_USERS, C.EVENTS, C.VIEWS, ENGAGEMENTS, C.ORDERS, REVENUE)
ENGAGEMENT_EVENTS = ("likes", "comments", "shares")
SEGMENT_DIMENSIONS = ("segment", "rfm_segment", "churn_tier", "intent_tier", "clv_tier",
                      "is_anomalous")
AT_RISK_TIERS = ("immediate_intervention", "retention_campaign")
HIGH_INTENT_TIER = "personalised_offer"


def _days_before(col: str, snapshot: dt.date, first: int, last: int = 1) -> Column:
    """``col`` in [S - first, S - last] (days before the snapshot, both ends inside)."""
    return ((F.col(col) >= F.lit(snapshot - dt.timedelta(days=first)))
            & (F.col(col) <= F.lit(snapshot - dt.timedelta(days=last))))


def daily_totals(daily: DataFrame, snapshot: dt.date, history_days: int = 365) -> pd.DataFrame:
    """silver.user_daily -> per day (``history_days`` before the snapshot): active_users,
    events, views, engagements (likes + comments + shares), orders, revenue_usd. A pandas
    frame indexed by date (one row per day with activity; at most ``history_days`` rows)."""
    engagements = sum((F.col(c) for c in ENGAGEMENT_EVENTS), F.lit(0))
    rows = (
        daily.filter(_days_before(C.ACTIVITY_DATE, snapshot, history_days))
        .groupBy(C.ACTIVITY_DATE)
        .agg(F.count(F.lit(1)).alias(ACTIVE_USERS),  # one row per user per active day
             F.sum(C.EVENTS).alias(C.EVENTS), F.sum(C.VIEWS).alias(C.VIEWS),
             F.sum(engagements).alias(ENGAGEMENTS), F.sum(C.ORDERS).alias(C.ORDERS),
             F.sum(C.SPEND_USD).alias(REVENUE))
        .toPandas()  # one row per day
    )
    if rows.empty:
        return pd.DataFrame(columns=list(DAILY_SERIES), dtype=float)
    rows.index = pd.DatetimeIndex(pd.to_datetime(rows.pop(C.ACTIVITY_DATE)))
    return rows.sort_index().astype(float)


def window_kpis(daily: DataFrame, snapshot: dt.date, days: int = 30) -> dict[str, dict]:
    """{"current": {...}, "previous": {...}}: active users (distinct), events, views, orders,
    revenue_usd over the ``days`` before the snapshot and the ``days`` before those."""
    windows = {"current": _days_before(C.ACTIVITY_DATE, snapshot, days),
               "previous": _days_before(C.ACTIVITY_DATE, snapshot, 2 * days, days + 1)}
    sums = {C.EVENTS: C.EVENTS, C.VIEWS: C.VIEWS, C.ORDERS: C.ORDERS, REVENUE: C.SPEND_USD}
    aggs = []
    for name, inside in windows.items():
        aggs.append(F.count_distinct(F.when(inside, F.col(C.USER_ID))).alias(
            f"{name}__{ACTIVE_USERS}"))
        aggs += [F.coalesce(F.sum(F.when(inside, F.col(src))), F.lit(0)).alias(f"{name}__{out}")
                 for out, src in sums.items()]
    row = (daily.filter(_days_before(C.ACTIVITY_DATE, snapshot, 2 * days))
           .agg(*aggs).first().asDict())
    out: dict[str, dict] = {"current": {}, "previous": {}}
    for key, value in row.items():
        window, name = key.split("__")
        out[window][name] = float(value) if name == REVENUE else int(value)
    return out


def partition_dates(df: DataFrame, col: str = S.SNAPSHOT_DATE) -> list[dt.date]:
    """The distinct values of a (date) partition column, ascending (a handful of rows)."""
    return sorted(r[0] for r in df.select(col).distinct().collect() if r[0] is not None)


def latest_on_or_before(dates: list[dt.date], day: dt.date) -> dt.date | None:
    before = [d for d in dates if d <= day]
    return before[-1] if before else None


def segment_kpis(segments: DataFrame, snapshots: list[dt.date]) -> dict[dt.date, dict]:
    """Per snapshot in ``snapshots``: users, at-risk users (churn_tier in AT_RISK_TIERS),
    total expected 90-day CLV (USD), high-intent users (intent_tier personalised_offer)."""
    rows = (
        segments.filter(F.col(S.SNAPSHOT_DATE).isin(snapshots))
        .groupBy(S.SNAPSHOT_DATE)
        .agg(F.count(F.lit(1)).alias("users"),
             F.count(F.when(F.col("churn_tier").isin(*AT_RISK_TIERS), 1)).alias("at_risk"),
             F.sum("clv_90d").alias("clv_total"),
             F.count(F.when(F.col("intent_tier") == HIGH_INTENT_TIER, 1)).alias("high_intent"))
        .collect()
    )
    return {r[S.SNAPSHOT_DATE]: {k: v for k, v in r.asDict().items() if k != S.SNAPSHOT_DATE}
            for r in rows}


def segment_counts(segments: DataFrame) -> pd.DataFrame:
    """Users per value of each SEGMENT_DIMENSIONS column present: [dimension, value, users]."""
    dims = [d for d in SEGMENT_DIMENSIONS if d in segments.columns]
    if not dims:
        return pd.DataFrame(columns=["dimension", "value", "users"])
    # one (dimension, value) pair per column and user, exploded: a single pass over the table
    # (booleans cast to 'true' / 'false')
    pairs = F.array(*[F.struct(F.lit(d).alias("dimension"),
                               F.coalesce(F.col(d).cast("string"), F.lit("(none)")).alias("value"))
                      for d in dims])
    return (segments.select(F.explode(pairs).alias("p"))
            .groupBy(F.col("p.dimension").alias("dimension"), F.col("p.value").alias("value"))
            .agg(F.count(F.lit(1)).alias("users"))
            .toPandas()  # a few rows per dimension
            .sort_values(["dimension", "users", "value"], ascending=[True, False, True]))


def profile_columns(feature_cols: list[str], windows: list[int]) -> list[str]:
    """Behaviour features for segment profiles, those present in gold.user_features."""
    windows = sorted(set(windows))
    w = 30 if 30 in windows else windows[len(windows) // 2]
    wanted = [C.window_col("active_days", w), C.window_col("views", w),
              C.window_col("engagement_rate", w), "order_count", "monetary_total",
              C.DAYS_SINCE_LAST_ACTIVE]
    return [c for c in wanted if c in feature_cols]


def segment_profiles(segments: DataFrame, features: DataFrame | None,
                     feature_cols: list[str]) -> pd.DataFrame:
    """Per segment: users, mean churn / intent probability, mean CLV and the mean of each of
    ``feature_cols`` (gold.user_features of the same snapshot, joined on user_id)."""
    scores = [c for c in ("churn_probability", "intent_probability", "clv_90d")
              if c in segments.columns]
    df = segments.select(S.USER_ID, F.coalesce(F.col("segment"), F.lit("(none)"))
                         .alias("segment"), *scores)
    if features is not None and feature_cols:
        df = df.join(features.select(S.USER_ID, *feature_cols), on=S.USER_ID, how="left")
    else:
        feature_cols = []
    return (df.groupBy("segment")
            .agg(F.count(F.lit(1)).alias("users"),
                 *[F.avg(c).alias(c) for c in (*scores, *feature_cols)])
            .toPandas()  # one row per segment
            .sort_values(["users", "segment"], ascending=[False, True]))


def top_influencers(metrics: DataFrame, n: int = 10) -> tuple[pd.DataFrame, int]:
    """Top ``n`` users by PageRank of one graph snapshot, and the number of users in it."""
    cols = [c for c in ("user_id", "pagerank", "influence_percentile", "community_id",
                        "community_size", "in_degree", "out_degree") if c in metrics.columns]
    top = metrics.select(*cols).orderBy(F.desc("pagerank"), S.USER_ID).limit(n).toPandas()
    return top, metrics.count()


CENTRALITIES = (("pagerank", "PageRank"), ("eigenvector_centrality", N_("eigenvector")),
                ("betweenness_centrality", N_("betweenness")),
                ("closeness_centrality", N_("closeness")), ("in_degree", N_("incoming links")))


def top_by_centrality(metrics: DataFrame, n: int = 10) -> dict[str, list[str]]:
    """{centrality column: the top ``n`` user ids by it} for each of CENTRALITIES the table
    has with values (a column left null, e.g. path centralities switched off, is skipped; ties
    by user id); one small count, then one small ordered ``limit`` per centrality."""
    present = [col for col, _ in CENTRALITIES if col in metrics.columns]
    counts = metrics.agg(*[F.count(col).alias(col) for col in present]).first() \
        if present else {}
    return {col: [r[0] for r in metrics.orderBy(F.desc(col), S.USER_ID)
                  .select(S.USER_ID).limit(n).collect()]
            for col in present if counts[col]}


def top_communities(communities: DataFrame, n: int = 10) -> tuple[pd.DataFrame, dict]:
    """The ``n`` largest communities of one snapshot and totals (count, users, modularity, and
    the label-propagation baseline's modularity and count where the table has them)."""
    cols = [c for c in ("community_id", "size", "internal_density", "top_creators",
                        "dominant_category") if c in communities.columns]
    top = communities.select(*cols).orderBy(F.desc("size"), "community_id").limit(n).toPandas()
    # tables written before the graph stage ran label propagation lack the lpa_ columns
    baseline = [F.max(c).alias(c) for c in ("lpa_modularity", "lpa_communities")
                if c in communities.columns]
    totals = communities.agg(F.count(F.lit(1)).alias("communities"),
                             F.sum("size").alias("users"),
                             F.max("modularity").alias("modularity"), *baseline).first().asDict()
    return top, totals


def quarantine_counts(tables: list[DataFrame], snapshot: dt.date) -> pd.DataFrame:
    """Quarantined rows landed before the snapshot per (source, reason_code)."""
    if not tables:
        return pd.DataFrame(columns=["source", "reason_code", "rows"])
    parts = [t.filter(F.col(S.INGEST_DATE) < F.lit(snapshot)).select("source", "reason_code")
             for t in tables]
    union = parts[0]
    for p in parts[1:]:
        union = union.unionByName(p)
    return (union.groupBy("source", "reason_code").agg(F.count(F.lit(1)).alias("rows"))
            .toPandas()  # sources x reason codes
            .sort_values(["source", "rows"], ascending=[True, False]))
