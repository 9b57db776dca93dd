"""Customer features from bronze and other stages' silver tables: RFM, social, demographics,
graph metrics and comment sentiment; and the purchase summary (gold.purchase_summary) the
probabilistic CLV model is fitted on.

Each function cuts its input to what was known before the snapshot itself (timestamps before
``S 00:00 UTC``, dates before ``S``), so callers cannot forget to; definitions are in the table
in ``mktpipe.features.columns``.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import GRAPH_METRICS
from mktpipe.features import columns as C
from mktpipe.features._common import midnight, ratio

_OTHER = "_other"


def before(df: DataFrame, ts_col: str, snapshot: dt.date) -> DataFrame:
    """Rows whose timestamp is before the snapshot (``ts < S 00:00 UTC``)."""
    return df.filter(F.col(ts_col) < F.lit(midnight(snapshot)))


def rfm_features(orders: DataFrame, snapshot: dt.date) -> DataFrame:
    """recency_days, order_count, monetary_total, monetary_mean, first_order_days per buyer.

    Users with no order before the snapshot have no row here; ``fill_missing`` gives them
    order_count 0 and monetary_total 0.0 (recency, mean and first order stay null).
    """
    day = F.lit(snapshot)
    return (
        before(orders, S.TS, snapshot)
        .groupBy(S.USER_ID)
        .agg(
            F.max(F.to_date(S.TS)).alias("_last"),
            F.min(F.to_date(S.TS)).alias("_first"),
            F.count(F.lit(1)).alias("order_count"),
            F.coalesce(F.sum("amount_usd"), F.lit(0.0)).alias("monetary_total"),
        )
        .select(
            S.USER_ID,
            F.datediff(day, F.col("_last")).alias("recency_days"),
            "order_count",
            "monetary_total",
            ratio(F.col("monetary_total"), F.col("order_count")).alias("monetary_mean"),
            F.datediff(day, F.col("_first")).alias("first_order_days"),
        )
    )


def date_lit(cutoff) -> Column:
    """``cutoff`` (a date, datetime or ISO string) as a Spark date literal."""
    if isinstance(cutoff, str):
        cutoff = dt.date.fromisoformat(cutoff)
    if isinstance(cutoff, dt.datetime):
        cutoff = cutoff.date()
    return F.lit(cutoff).cast("date")


def rfm_summary(orders: DataFrame, cutoff, period_days: float = 1.0, user_col: str = "user_id",
                ts_col: str = "ts", amount_col: str = "amount") -> DataFrame:
    """Per customer with an order on or before ``cutoff`` (a date; orders are bucketed by UTC
    calendar day, as lifetimes' ``summary_data_from_transaction_data(freq="D")``):

        frequency       repeat purchase days: distinct order days - 1
        recency         days between the first and the last order day / ``period_days``
        T               days from the first order day to ``cutoff`` / ``period_days``
        monetary_value  mean spend per repeat day (the first day excluded); 0 when frequency 0

    Returns user_col, frequency (long), recency, T, monetary_value (double). Rows with a null
    user or timestamp are ignored; null amounts count as 0 spend.
    """
    if period_days <= 0:
        raise ValueError(f"rfm_summary: period_days must be > 0, got {period_days}")
    S.require_columns(orders, [user_col, ts_col, amount_col], "rfm_summary")
    day, cut = F.to_date(F.col(ts_col)), date_lit(cutoff)
    daily = (orders.filter(F.col(user_col).isNotNull() & (day <= cut))
             .groupBy(F.col(user_col), day.alias("_day"))
             .agg(F.coalesce(F.sum(F.col(amount_col).cast("double")), F.lit(0.0)).alias("_amt")))
    per_user = daily.groupBy(user_col).agg(
        F.min("_day").alias("_first"), F.max("_day").alias("_last"),
        F.count(F.lit(1)).alias("_days"), F.sum("_amt").alias("_total"),
        F.min_by("_amt", "_day").alias("_first_amt"))
    frequency = F.col("_days") - 1
    return per_user.select(
        F.col(user_col), frequency.cast("long").alias(C.FREQUENCY),
        (F.datediff("_last", "_first") / F.lit(float(period_days))).alias(C.RECENCY),
        (F.datediff(cut, "_first") / F.lit(float(period_days))).alias(C.AGE),
        F.when(frequency > 0, (F.col("_total") - F.col("_first_amt")) / frequency)
        .otherwise(F.lit(0.0)).alias(C.MONETARY_VALUE))


def purchase_summary(orders: DataFrame, snapshot: dt.date, run_id: str) -> DataFrame:
    """gold.purchase_summary at ``snapshot``: :func:`rfm_summary` of the orders before S
    (``ts < S 00:00 UTC``) observed up to S - 1, in days, for every buyer; columns
    ``C.PURCHASE_SUMMARY_COLUMNS``."""
    return (rfm_summary(before(orders, S.TS, snapshot), snapshot - dt.timedelta(days=1),
                        amount_col="amount_usd")
            .withColumn(C.SNAPSHOT_DATE, F.lit(snapshot))
            .withColumn(C.RUN_ID, F.lit(run_id))
            .select(*C.PURCHASE_SUMMARY_COLUMNS))


def profile_features(users: DataFrame, snapshot: dt.date) -> DataFrame:
    """tenure_days and demographics of users who signed up before the snapshot."""
    return users.filter(F.col("signup_date") < F.lit(snapshot)).select(
        S.USER_ID,
        F.datediff(F.lit(snapshot), F.col("signup_date")).alias("tenure_days"),
        *C.DEMOGRAPHICS,
    ).dropDuplicates([S.USER_ID])


def social_features(follows: DataFrame, snapshot: dt.date) -> DataFrame:
    """followers, following and follow_back_ratio from follows made before the snapshot.

    Each edge a->b is seen from both ends, grouped per (user, other) and then per user, so
    mutual follows need no self-join.
    """
    edges = before(follows, "followed_at", snapshot).filter(
        F.col(S.FOLLOWER_ID) != F.col(S.FOLLOWEE_ID)
    )
    ends = edges.select(F.inline(F.array(
        F.struct(F.col(S.FOLLOWER_ID).alias(S.USER_ID), F.col(S.FOLLOWEE_ID).alias(_OTHER),
                 F.lit(1).alias("_out"), F.lit(0).alias("_in")),
        F.struct(F.col(S.FOLLOWEE_ID).alias(S.USER_ID), F.col(S.FOLLOWER_ID).alias(_OTHER),
                 F.lit(0).alias("_out"), F.lit(1).alias("_in")),
    )))
    pairs = ends.groupBy(S.USER_ID, _OTHER).agg(
        F.max("_out").alias("_out"), F.max("_in").alias("_in")
    )
    return pairs.groupBy(S.USER_ID).agg(
        F.sum("_in").cast("long").alias("followers"),
        F.sum("_out").cast("long").alias("following"),
        F.sum(F.col("_in") * F.col("_out")).alias("_mutual"),
    ).select(
        S.USER_ID, "followers", "following",
        ratio(F.col("_mutual"), F.col("followers")).alias("follow_back_ratio"),
    )


def graph_features(graph_metrics: DataFrame, snapshot: dt.date) -> DataFrame:
    """pagerank, influence_percentile, community_id, community_size at the snapshot."""
    S.require_columns(graph_metrics, [S.USER_ID, C.SNAPSHOT_DATE, *C.GRAPH],
                      GRAPH_METRICS)
    return (
        graph_metrics.filter(F.col(C.SNAPSHOT_DATE) == F.lit(snapshot))
        .select(S.USER_ID, *[F.col(c).cast(t).alias(c) for c, t in C.GRAPH_TYPES.items()])
        .dropDuplicates([S.USER_ID])
    )


def sentiment_features(comments: DataFrame, snapshot: dt.date, days: int) -> DataFrame:
    """Mean score, last score, negative share and count of comments in the ``days`` before."""
    mean, last, negative, count = C.sentiment_cols(days)
    in_window = (F.col("comment_date") >= F.lit(snapshot - dt.timedelta(days=days))) & (
        F.col("comment_date") < F.lit(snapshot)  # prunes partitions; ts < S decides
    )
    recent = before(comments.filter(in_window), S.TS, snapshot)
    latest = F.max(F.struct(S.TS, S.COMMENT_ID, F.col("sentiment_score").alias("score")))
    return recent.groupBy(S.USER_ID).agg(
        F.avg("sentiment_score").alias(mean),
        latest["score"].alias(last),
        F.avg((F.col("sentiment_label") == "negative").cast("double")).alias(negative),
        F.count(F.lit(1)).alias(count),
    )


def null_columns(spark: SparkSession, types: dict[str, str]) -> DataFrame:
    """An empty per-user frame with ``types`` columns: the stand-in for a missing source."""
    ddl = ", ".join([f"{S.USER_ID} string", *(f"`{c}` {t}" for c, t in types.items())])
    return spark.createDataFrame([], ddl)


def sentiment_types(days: int) -> dict[str, str]:
    mean, last, negative, count = C.sentiment_cols(days)
    return {mean: "double", last: "double", negative: "double", count: "long"}
