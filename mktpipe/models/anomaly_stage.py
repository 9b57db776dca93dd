"""The anomalies stage: users with anomalous engagement, once per snapshot, for train and score.

silver.user_anomalies, partitioned by snapshot_date, one row per user with activity in the
``models.anomaly_lookback_days`` days before the snapshot S (silver.user_daily):

==============  =======  ===================================================================
column          type     meaning
==============  =======  ===================================================================
user_id         string
snapshot_date   date     S (the flags use only days before S)
is_anomalous    boolean  :func:`mktpipe.models.anomalies.detect_anomalies` with
                         ``models.anomalies.method`` (robust z-scores of bursts and levels and
                         impossible watch time, isolation forest, LOF, or their vote)
anomaly_reason  string   null when not anomalous, else the reasons, "; "-joined
max_robust_z    double   the largest z of any kind (null when none could be computed)
_run_id         string
==============  =======  ===================================================================

``train`` leaves the flagged users out of its training sets (``models.exclude_anomalous``)
and ``score`` marks them in gold.customer_segments; both read this table
(:func:`mktpipe.readers.anomaly_flags`) instead of running the detector again.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import USER_ANOMALIES, USER_DAILY
from mktpipe.config import Config
from mktpipe.models import anomalies
from mktpipe.quality import checks as Q
from mktpipe.quality.manifest import StageResult
from mktpipe.readers import anomaly_flags  # noqa: F401  (its old home; kept importable)
from mktpipe.stage import RUN_DAILY_FIRST, StageContext, stage
from mktpipe.storage import TableStore

METRICS = ("events", "views", "likes", "comments", "shares", "watch_seconds")
FLAG_COLUMNS = (S.USER_ID, S.SNAPSHOT_DATE, "is_anomalous", "anomaly_reason", "max_robust_z",
                S.RUN_ID)


def detect_for_snapshot(store: TableStore, config: Config, snapshot_date: dt.date) -> DataFrame:
    """detect_anomalies over silver.user_daily in the lookback window before the snapshot."""
    first = snapshot_date - dt.timedelta(days=config.models.anomaly_lookback_days)
    daily = (store.read(USER_DAILY)
             .filter((F.col(S.ACTIVITY_DATE) >= F.lit(first))
                     & (F.col(S.ACTIVITY_DATE) < F.lit(snapshot_date))))
    return anomalies.detect_anomalies(daily, metrics=list(METRICS),
                                      config=config.models.settings("anomalies"))


def _summary(flags: DataFrame) -> dict:
    row = flags.agg(F.count(F.lit(1)).alias("users"),
                    F.sum(F.col("is_anomalous").cast("int")).alias("anomalous")).first()
    return {"users": int(row["users"]), "anomalous": int(row["anomalous"] or 0)}


def planted_quality(ctx: StageContext, snapshot_date: dt.date) -> dict | None:
    """Precision and recall of the written flags against the generator's planted anomalies
    (``<paths.truth>/anomalies.csv``) whose day lies in the lookback window before the
    snapshot; None when there is no such file (real data)."""
    from mktpipe.generate.bots import TRUTH_FILE, read_truth
    from mktpipe.storage import files

    truth_dir = ctx.config.uri("truth")
    if not files.exists(files.join(truth_dir, TRUTH_FILE)):
        return None
    first = snapshot_date - dt.timedelta(days=ctx.config.models.anomaly_lookback_days)
    planted = read_truth(truth_dir)
    dates = planted["date"].map(dt.date.fromisoformat)
    window = set(planted.loc[(dates >= first) & (dates < snapshot_date), "user_id"])
    flags = ctx.store.read(USER_ANOMALIES).filter(F.col(S.SNAPSHOT_DATE) == F.lit(snapshot_date))
    method = ctx.config.models.settings("anomalies").method
    return {"method": method, **anomalies.detection_quality(flags, window)}


@stage("anomalies")
def run_anomalies(ctx: StageContext, snapshot_date: dt.date) -> StageResult:
    """Flag the users of ``snapshot_date``; check, then replace that partition."""
    ctx.require(USER_DAILY, snapshot_date, RUN_DAILY_FIRST)
    result = ctx.begin(snapshot_date)
    result.tables_read = ctx.versions([USER_DAILY])
    flags = (detect_for_snapshot(ctx.store, ctx.config, snapshot_date)
             .withColumns({S.SNAPSHOT_DATE: F.lit(snapshot_date),
                           S.RUN_ID: F.lit(ctx.run_id)})
             .select(*FLAG_COLUMNS))
    keys = list(USER_ANOMALIES.keys)
    ctx.overwrite(result, flags, USER_ANOMALIES, {S.SNAPSHOT_DATE: snapshot_date},
                  checks=[Q.unique_check(keys), Q.not_null_check(keys, name="not_null_keys")],
                  summary=_summary)
    result.rows_in = result.rows_out
    quality = planted_quality(ctx, snapshot_date)
    if quality is not None:
        result.details["planted"] = quality
    summary = result.details["summary"]
    return ctx.finish(result, "%d of %d users anomalous", summary["anomalous"],
                      summary["users"])
