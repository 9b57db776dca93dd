"""The dashboard's data, aggregated in Spark to a bounded size and brought to the driver.

For snapshot S, over the ``days`` before it and the users scored at S (gold.customer_segments):

* ``cube``: one row per (day, segment, churn tier, community, language) with active users,
  views, engagements, orders and revenue (silver.user_daily joined to each user's attributes
  at S). Its size is bounded by days x segments x tiers x (``top_communities`` + 2) x
  languages, never by users;
* ``users``: scored users per (segment, churn tier, community, language), with their summed
  expected 90-day CLV and mean churn probability;
* ``customers``: the ``per_group`` riskiest users of each (segment, churn tier) with
  pseudonymised ids (``user_key``: the activation export's HMAC-SHA256 with the same key), their
  community, language and scores: the drill-down list. No plain user id leaves Spark.

Communities are named by size among the scored users ("community 1" is the largest; the rest
"other", users outside the graph "none"): Louvain names a community after a member, so its id
is a user id and is not shown. A user's language is bronze.users' ``language`` ("und" when
missing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import BRONZE_USERS, CUSTOMER_SEGMENTS, USER_DAILY
from mktpipe.config import Config
from mktpipe.errors import InputError
from mktpipe.features import columns as C
from mktpipe.storage import TableStore

DIMENSIONS = ("segment", "churn_tier", "community", "language")
MEASURES = ("active_users", "views", "engagements", "orders", "revenue")


@dataclass
class DashboardData:
    snapshot: dt.date
    first_day: dt.date
    last_day: dt.date
    cube: pd.DataFrame
    users: pd.DataFrame
    customers: pd.DataFrame

    def as_json(self) -> dict:
        def records(df: pd.DataFrame) -> list[list]:
            return df.astype(object).where(df.notna(), None).values.tolist()

        cube = self.cube.assign(day=self.cube["day"].astype(str))
        return {"snapshot": self.snapshot.isoformat(), "first_day": self.first_day.isoformat(),
                "last_day": self.last_day.isoformat(),
                "cube": {"columns": list(cube.columns), "rows": records(cube)},
                "users": {"columns": list(self.users.columns), "rows": records(self.users)},
                "customers": {"columns": list(self.customers.columns),
                              "rows": records(self.customers)}}


def attributes(store: TableStore, snapshot: dt.date, top_communities: int) -> DataFrame:
    """Scored users at ``snapshot`` with segment, churn_tier, community, language, scores."""
    if not store.exists(CUSTOMER_SEGMENTS):
        raise InputError(f"dashboard {snapshot}: {CUSTOMER_SEGMENTS} does not exist; run the "
                         "pipeline first (`mktpipe run` or `make run`)")
    scored = store.read(CUSTOMER_SEGMENTS).filter(F.col(S.SNAPSHOT_DATE) == F.lit(snapshot))
    scored = scored.select(S.USER_ID, F.coalesce(F.col("segment"), F.lit("(none)"))
                           .alias("segment"), "churn_tier",
                           F.col("community_id").cast("string").alias("community_id"),
                           "churn_probability", "clv_90d", "intent_probability")
    if scored.limit(1).count() == 0:
        raise InputError(f"dashboard {snapshot}: {CUSTOMER_SEGMENTS} has no scores for "
                         f"{snapshot}; run `mktpipe score --snapshot-date {snapshot}`")
    ranked = (scored.filter(F.col("community_id").isNotNull())
              .groupBy("community_id").agg(F.count(F.lit(1)).alias("n"))
              .orderBy(F.desc("n"), "community_id").limit(top_communities)
              .collect())  # top_communities rows
    names = {r["community_id"]: f"community {i + 1}" for i, r in enumerate(ranked)}
    mapping = F.create_map(*[F.lit(x) for kv in names.items() for x in kv]) if names else None
    community = F.when(F.col("community_id").isNull(), F.lit("none"))
    community = community.otherwise(F.coalesce(mapping[F.col("community_id")], F.lit("other"))) \
        if mapping is not None else community.otherwise(F.lit("other"))
    if store.exists(BRONZE_USERS):
        languages = store.read(BRONZE_USERS).select(S.USER_ID, "language")
        scored_lang = scored.join(languages, S.USER_ID, "left")
    else:
        scored_lang = scored.withColumn("language", F.lit(None).cast("string"))
    return scored_lang.select(S.USER_ID, "segment", F.coalesce("churn_tier", F.lit("(none)"))
                              .alias("churn_tier"), community.alias("community"),
                              F.coalesce("language", F.lit("und")).alias("language"),
                              "churn_probability", "clv_90d", "intent_probability")


def build(store: TableStore, config: Config, snapshot: dt.date, days: int = 90,
          top_communities: int = 8, per_group: int = 50, key: bytes | None = None
          ) -> DashboardData:
    """The dashboard's three tables for ``snapshot`` (module docstring); ``key``: the HMAC
    key of the user ids (default: the activation export's, from the environment)."""
    from mktpipe.score.export import export_key, hmac_sha256

    key = key if key is not None else export_key(config)
    first = snapshot - dt.timedelta(days=days)
    attrs = attributes(store, snapshot, top_communities).persist()
    try:
        daily = (store.read(USER_DAILY)
                 .filter((F.col(C.ACTIVITY_DATE) >= F.lit(first))
                         & (F.col(C.ACTIVITY_DATE) < F.lit(snapshot)))
                 .join(attrs.select(S.USER_ID, *DIMENSIONS), S.USER_ID))
        cube = (daily.groupBy(F.col(C.ACTIVITY_DATE).alias("day"), *DIMENSIONS)
                .agg(F.count(F.lit(1)).alias("active_users"),
                     F.sum(C.VIEWS).alias("views"),
                     F.sum(F.col("likes") + F.col("comments") + F.col("shares"))
                     .alias("engagements"),
                     F.sum(C.ORDERS).alias("orders"),
                     F.round(F.sum(C.SPEND_USD), 2).alias("revenue"))
                .orderBy("day", *DIMENSIONS).toPandas())  # bounded: days x dimension values
        users = (attrs.groupBy(*DIMENSIONS)
                 .agg(F.count(F.lit(1)).alias("users"),
                      F.round(F.sum("clv_90d"), 2).alias("clv_90d"),
                      F.round(F.avg("churn_probability"), 4).alias("churn_probability"))
                 .orderBy(*DIMENSIONS).toPandas())  # one row per dimension combination
        risk = Window.partitionBy("segment", "churn_tier").orderBy(
            F.desc("churn_probability"), S.USER_ID)
        customers = (attrs.withColumn("rank", F.row_number().over(risk))
                     .filter(F.col("rank") <= per_group)
                     .select(hmac_sha256(F.col(S.USER_ID), key).alias("user_key"),
                             *DIMENSIONS, F.round("churn_probability", 4)
                             .alias("churn_probability"), F.round("clv_90d", 2).alias("clv_90d"),
                             F.round("intent_probability", 4).alias("intent_probability"))
                     .orderBy(F.desc("churn_probability"), "user_key")
                     .toPandas())  # per_group rows per (segment, tier)
    finally:
        attrs.unpersist()
    for col in MEASURES:
        if col in cube:
            cube[col] = cube[col].fillna(0)
    return DashboardData(snapshot, first, snapshot - dt.timedelta(days=1), cube, users,
                         customers)
