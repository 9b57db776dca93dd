"""gold.user_features: point-in-time features per user per snapshot.

The feature table (names, units, windows) is in the docstring of ``mktpipe.features.columns``.

Point in time: a snapshot S sees only what was known before S 00:00 UTC. Every source is cut
at S where it is read, in the function that reads it: daily rows by ``activity_date < S`` (a
UTC day, so every event in it has ``ts < S``), orders, follows and comments by ``ts < S``,
users by ``signup_date < S``, graph metrics by ``snapshot_date = S`` (the graph stage's own
point-in-time contract). Hard quality checks re-verify it on the output (days since the last
activity, order recency and first order are all >= 1 day) before anything is written.
Tests: tests/unit/test_features.py adds events, orders, follows and comments at and after S
and asserts the whole feature table is unchanged.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.config import Config
from mktpipe.features import columns as C
from mktpipe.features._common import default_run_id, read_or_empty, versions
from mktpipe.features.customer import (
    graph_features,
    profile_features,
    rfm_features,
    sentiment_features,
    sentiment_types,
    social_features,
)
from mktpipe.features.engagement import content_features, engagement_features
from mktpipe.quality import checks as Q
from mktpipe.quality.manifest import StageResult
from mktpipe.storage import TableNotFoundError, TableStore, open_store

log = logging.getLogger(__name__)

GRAPH_TABLE = "silver.graph_metrics"
SENTIMENT_TABLE = "silver.comment_sentiment"
BRONZE = ("bronze.orders", "bronze.users", "bronze.follows")


@dataclass(frozen=True)
class FeatureSources:
    """The inputs of ``build_user_features``, uncut (each builder cuts at the snapshot).

    ``graph_metrics`` / ``comment_sentiment`` None: that stage has not run, so its features
    are null for everyone.
    """

    daily: DataFrame  # silver.user_daily
    orders: DataFrame  # bronze.orders
    users: DataFrame  # bronze.users
    follows: DataFrame  # bronze.follows
    graph_metrics: DataFrame | None = None  # silver.graph_metrics
    comment_sentiment: DataFrame | None = None  # silver.comment_sentiment


def daily_before(daily: DataFrame, snapshot: dt.date, days: int) -> DataFrame:
    """Daily rows of the ``days`` days before the snapshot (S-days .. S-1); pruned by Spark."""
    first = snapshot - dt.timedelta(days=days)
    return daily.filter(
        (F.col(C.ACTIVITY_DATE) >= F.lit(first)) & (F.col(C.ACTIVITY_DATE) < F.lit(snapshot))
    )


def with_nulls(df: DataFrame, types: dict[str, str]) -> DataFrame:
    """Add typed null columns (the stand-in for a source that does not exist yet)."""
    return df.select("*", *[F.lit(None).cast(t).alias(c) for c, t in types.items()])


def fill_missing(df: DataFrame, sentiment_known: bool, comment_count: str) -> DataFrame:
    """Zero counts for users absent from a source that exists (no orders, no follows...)."""
    zeros = {"order_count": 0, "monetary_total": 0.0, "followers": 0, "following": 0}
    if sentiment_known:
        zeros[comment_count] = 0
    return df.fillna(zeros)


def build_user_features(sources: FeatureSources, snapshot: dt.date, config: Config,
                        run_id: str) -> DataFrame:
    """One row per user active in the ``features.active_window_days`` before ``snapshot``;
    columns ``columns.feature_columns(windows)``. Pure: reads nothing but ``sources``."""
    feats = config.features
    windows = sorted(set(feats.windows_days))
    daily = daily_before(sources.daily, snapshot, max(windows[-1], feats.active_window_days))
    sent_days = windows[-1]
    out = (
        engagement_features(daily, snapshot, windows, feats.active_window_days)
        .join(content_features(daily, snapshot, feats.active_window_days), S.USER_ID, "left")
        .join(rfm_features(sources.orders, snapshot), S.USER_ID, "left")
        .join(profile_features(sources.users, snapshot), S.USER_ID, "left")
        .join(social_features(sources.follows, snapshot), S.USER_ID, "left")
    )
    if sources.graph_metrics is not None:
        out = out.join(graph_features(sources.graph_metrics, snapshot), S.USER_ID, "left")
    else:
        out = with_nulls(out, C.GRAPH_TYPES)
    if sources.comment_sentiment is not None:
        sentiment = sentiment_features(sources.comment_sentiment, snapshot, sent_days)
        out = out.join(sentiment, S.USER_ID, "left")
    else:
        out = with_nulls(out, sentiment_types(sent_days))
    return (
        out.transform(fill_missing, sources.comment_sentiment is not None,
                      C.sentiment_cols(sent_days)[3])
        .withColumn(C.SNAPSHOT_DATE, F.lit(snapshot))
        .withColumn(C.RUN_ID, F.lit(run_id))
        .select(*C.feature_columns(windows))
    )


def feature_checks(windows: list[int]) -> list[Q.Check]:
    """Hard: unique keys, no null keys, shares in [0, 1], non-negative counts and amounts,
    scores in [-1, 1], nothing at or after the snapshot. Soft: users missing from bronze.users."""
    keys = [C.USER_ID, C.SNAPSHOT_DATE]
    return [
        Q.unique_check(keys),
        Q.not_null_check(keys, name="not_null_keys"),
        *[Q.range_check(c, 0.0, 1.0, name=f"share_{c}") for c in C.share_columns(windows)],
        *[Q.non_negative_check(c) for c in C.non_negative_columns(windows)],
        *[Q.range_check(c, -1.0, 1.0, name=f"score_{c}") for c in C.score_columns(windows)],
        Q.Check("point_in_time", Q.HARD,
                (F.col(C.DAYS_SINCE_LAST_ACTIVE) < 1) | (F.col("recency_days") < 1)
                | (F.col("first_order_days") < 1) | (F.col("tenure_days") < 1)),
        Q.Check("user_in_bronze_users", Q.SOFT, F.col("tenure_days").isNull()),
    ]


def load_sources(spark: SparkSession, store: TableStore) -> tuple[FeatureSources, list[str]]:
    """Read the feature inputs; notices say which optional sources are missing."""
    if not store.exists(C.DAILY_TABLE):
        raise TableNotFoundError(
            f"{C.DAILY_TABLE} does not exist at {store.path(C.DAILY_TABLE)}; run the daily "
            f"aggregates first (mktpipe.features.daily.run_daily / run_daily_range)"
        )
    notices = []
    optional = {}
    for table, what in ((GRAPH_TABLE, "graph"), (SENTIMENT_TABLE, "sentiment")):
        if store.exists(table):
            optional[table] = store.read(table)
        else:
            optional[table] = None
            notices.append(f"{table} does not exist: the {what} features are null "
                           f"(run the {what} stage before the features to fill them)")
    return FeatureSources(
        daily=store.read(C.DAILY_TABLE),
        orders=read_or_empty(spark, store, "bronze.orders", S.BRONZE_SCHEMAS["orders"]),
        users=read_or_empty(spark, store, "bronze.users", S.BRONZE_SCHEMAS["users"]),
        follows=read_or_empty(spark, store, "bronze.follows", S.BRONZE_SCHEMAS["follows"]),
        graph_metrics=optional[GRAPH_TABLE],
        comment_sentiment=optional[SENTIMENT_TABLE],
    ), notices


def run_features(
    spark: SparkSession,
    config: Config,
    snapshot_date: dt.date,
    store: TableStore | None = None,
    run_id: str | None = None,
) -> StageResult:
    """Build gold.user_features for ``snapshot_date``: check, then replace that partition.

    Raises QualityCheckError (nothing written) when a hard check fails; the check results are
    in ``details["quality"]`` otherwise.
    """
    store = store or open_store(spark, config)
    run_id = run_id or default_run_id("features")
    result = StageResult.begin("features", snapshot_date.isoformat(), store.backend)
    sources, notices = load_sources(spark, store)
    for notice in notices:
        log.warning("features %s: %s", snapshot_date, notice)
    result.tables_read = versions(store, (C.DAILY_TABLE, *BRONZE, GRAPH_TABLE, SENTIMENT_TABLE))
    features = build_user_features(sources, snapshot_date, config, run_id)
    # two actions read it (checks, write): compute once
    features = features.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        quality = Q.run_checks(features, feature_checks(config.features.windows_days),
                               key_cols=[C.USER_ID, C.SNAPSHOT_DATE])
        result.details = {"run_id": run_id, "notices": notices, "quality": quality}
        Q.raise_for_failures(quality, C.FEATURES_TABLE)
        version = store.write(
            features, C.FEATURES_TABLE, mode="overwrite", partition_by=[C.SNAPSHOT_DATE],
            replace_where={C.SNAPSHOT_DATE: snapshot_date.isoformat()},
        )
    finally:
        features.unpersist()
    result.rows_in = quality[0]["rows"]
    result.rows_out = store.last_write.rows
    result.tables_written = {C.FEATURES_TABLE: version}
    result.finish()
    log.info("features %s: %d users (%s v%d, %.1fs)", snapshot_date, result.rows_out,
             C.FEATURES_TABLE, version, result.elapsed_s)
    return result
