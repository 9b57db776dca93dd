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

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import (
    BRONZE_FOLLOWS,
    BRONZE_ORDERS,
    BRONZE_USERS,
    COMMENT_SENTIMENT,
    GRAPH_METRICS,
    PURCHASE_SUMMARY,
    USER_DAILY,
    USER_FEATURES,
)
from mktpipe.config import Config
from mktpipe.features import columns as C
from mktpipe.features.customer import (
    graph_features,
    profile_features,
    purchase_summary,
    rfm_features,
    sentiment_features,
    sentiment_types,
    social_features,
)
from mktpipe.features.engagement import content_features, engagement_features
from mktpipe.quality import checks as Q
from mktpipe.quality.manifest import StageResult
from mktpipe.stage import StageContext, read_or_empty, stage
from mktpipe.storage import TableNotFoundError, TableStore

log = logging.getLogger(__name__)

BRONZE_INPUTS = (BRONZE_ORDERS, BRONZE_USERS, BRONZE_FOLLOWS)


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


def purchase_summary_checks() -> list[Q.Check]:
    """Hard: unique non-null keys, 0 <= recency <= T, frequency and spend not negative."""
    keys = [C.USER_ID, C.SNAPSHOT_DATE]
    return [
        Q.unique_check(keys),
        Q.not_null_check([*keys, C.FREQUENCY, C.RECENCY, C.AGE, C.MONETARY_VALUE],
                         name="not_null"),
        *[Q.non_negative_check(c) for c in (C.FREQUENCY, C.RECENCY, C.MONETARY_VALUE)],
        Q.Check("recency_within_T", Q.HARD, F.col(C.RECENCY) > F.col(C.AGE)),
    ]


def load_sources(spark: SparkSession, store: TableStore) -> tuple[FeatureSources, list[str]]:
    """Read the feature inputs; notices say which optional sources are missing."""
    if not store.exists(USER_DAILY):
        raise TableNotFoundError(
            f"{USER_DAILY} does not exist at {store.path(USER_DAILY)}; run the daily "
            f"aggregates first (mktpipe.features.daily.run_daily / run_daily_range)"
        )
    notices = []
    optional = {}
    for table, what in ((GRAPH_METRICS, "graph"), (COMMENT_SENTIMENT, "sentiment")):
        if store.exists(table):
            optional[table] = store.read(table)
        else:
            optional[table] = None
            notices.append(f"{table} does not exist: the {what} features are null "
                           f"(run the {what} stage before the features to fill them)")
    return FeatureSources(
        daily=store.read(USER_DAILY),
        orders=read_or_empty(spark, store, BRONZE_ORDERS, S.BRONZE_SCHEMAS["orders"]),
        users=read_or_empty(spark, store, BRONZE_USERS, S.BRONZE_SCHEMAS["users"]),
        follows=read_or_empty(spark, store, BRONZE_FOLLOWS, S.BRONZE_SCHEMAS["follows"]),
        graph_metrics=optional[GRAPH_METRICS],
        comment_sentiment=optional[COMMENT_SENTIMENT],
    ), notices


@stage("features")
def run_features(ctx: StageContext, snapshot_date: dt.date) -> StageResult:
    """Build gold.user_features and gold.purchase_summary for ``snapshot_date``: check each,
    then replace its partition (rows_out: feature rows; the summary's buyers are in
    ``details["buyers"]``).

    Raises QualityCheckError (nothing more written) when a hard check fails; the check results
    are in ``details["quality"]`` (features) and ``details["purchase_summary_quality"]``.
    """
    result = ctx.begin(snapshot_date)
    sources, notices = load_sources(ctx.spark, ctx.store)
    for notice in notices:
        log.warning("features %s: %s", snapshot_date, notice)
    result.details["notices"] = notices
    result.tables_read = ctx.versions((USER_DAILY, *BRONZE_INPUTS, GRAPH_METRICS,
                                       COMMENT_SENTIMENT))
    features = build_user_features(sources, snapshot_date, ctx.config, ctx.run_id)
    partition = {C.SNAPSHOT_DATE: snapshot_date}
    ctx.overwrite(result, features, USER_FEATURES, partition,
                  checks=feature_checks(ctx.config.features.windows_days))
    result.rows_in = result.details["quality"][0]["rows"]
    ctx.overwrite(result, purchase_summary(sources.orders, snapshot_date, ctx.run_id),
                  PURCHASE_SUMMARY, partition, checks=purchase_summary_checks(),
                  quality_key="purchase_summary_quality", count_rows=False)
    result.details["buyers"] = ctx.store.last_write.rows
    return ctx.finish(result, "%d users, %d buyers", result.rows_out,
                      result.details["buyers"])
