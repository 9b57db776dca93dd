"""gold.user_labels: what happened after a snapshot, for training on gold.user_features.

One row per user of the feature population (any event or order in the
``features.active_window_days`` days before the snapshot S), partitioned by snapshot_date:

================  ======  ===================================================================
column            type    definition (the horizon of H days is S .. S+H-1, UTC days)
================  ======  ===================================================================
user_id           string
snapshot_date     date    S
churned           int     1 = no event and no order in the next ``labels.churn_horizon_days``,
                          0 = some; only for users active in the
                          ``labels.churn_active_before_days`` before S, null for the others
clv_90d           double  USD (amount_usd) of orders in the next ``labels.clv_horizon_days``
will_purchase_7d  int     1 = an order in the next ``labels.purchase_horizon_days``, else 0
data_end          date    the data end the labels were built with (null in partitions
                          written before this column existed): a label of horizon H is
                          final once data_end >= S + H
_run_id           string
================  ======  ===================================================================

Label values come only from data at or after S (the population, from before S, only decides
who gets a row). Data end: the day after the last ``event_date`` in bronze.events. A label whose
horizon runs past the data end is null for every user: the future is not known yet, so it is
never reported as "no churn / no spend / no purchase" (a 0 there would be a false negative,
and keeping only the users seen active would bias the labels).
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import BRONZE_EVENTS, BRONZE_ORDERS, USER_FEATURES, USER_LABELS
from mktpipe.config import Config
from mktpipe.features import columns as C
from mktpipe.features._common import ts_between
from mktpipe.quality import checks as Q
from mktpipe.quality.manifest import StageResult
from mktpipe.readers import built_data_ends, data_end
from mktpipe.readers import labels_final as final
from mktpipe.stage import StageContext, read_or_empty, stage
from mktpipe.storage import TableStore

log = logging.getLogger(__name__)

_DAY, _AMOUNT, _IS_ORDER = "_day", "_amount_usd", "_is_order"


def activity_rows(events: DataFrame, orders: DataFrame) -> DataFrame:
    """(user_id, _day, _amount_usd, _is_order): one row per event day and per order."""
    event_days = events.select(
        S.USER_ID, F.col("event_date").alias(_DAY),
        F.lit(None).cast("double").alias(_AMOUNT), F.lit(False).alias(_IS_ORDER),
    ).distinct()
    order_rows = orders.select(
        S.USER_ID, F.to_date(S.TS).alias(_DAY),
        F.col("amount_usd").alias(_AMOUNT), F.lit(True).alias(_IS_ORDER),
    )
    return event_days.unionByName(order_rows)


def _days(first: dt.date, days: int) -> Column:
    return (F.col(_DAY) >= F.lit(first)) & (F.col(_DAY) < F.lit(first + dt.timedelta(days=days)))


def compute_labels(activity: DataFrame, snapshot: dt.date, end: dt.date | None,
                   config: Config) -> DataFrame:
    """``activity_rows`` -> labels per user of the population (module docstring). Pure."""
    lab, back = config.labels, config.features.active_window_days
    start = snapshot - dt.timedelta(days=back)
    recent = snapshot - dt.timedelta(days=lab.churn_active_before_days)

    def known(horizon: int) -> bool:
        return end is not None and snapshot + dt.timedelta(days=horizon) <= end

    per_user = activity.groupBy(S.USER_ID).agg(
        F.max(_days(start, back).cast("int")).alias("_in_population"),
        F.max(_days(recent, lab.churn_active_before_days).cast("int")).alias("_recent"),
        F.max(_days(snapshot, lab.churn_horizon_days).cast("int")).alias("_ahead"),
        F.sum(F.when(F.col(_IS_ORDER) & _days(snapshot, lab.clv_horizon_days), F.col(_AMOUNT))
              ).alias("_clv"),
        F.max((F.col(_IS_ORDER) & _days(snapshot, lab.purchase_horizon_days)).cast("int")
              ).alias("_buys"),
    )
    unknown_int, unknown_double = F.lit(None).cast("int"), F.lit(None).cast("double")
    churned = F.when(F.col("_recent") == 1, 1 - F.col("_ahead")) if known(
        lab.churn_horizon_days) else unknown_int
    clv = F.coalesce(F.col("_clv"), F.lit(0.0)) if known(lab.clv_horizon_days) else unknown_double
    buys = F.col("_buys") if known(lab.purchase_horizon_days) else unknown_int
    return per_user.filter(F.col("_in_population") == 1).select(
        S.USER_ID,
        F.lit(snapshot).alias(C.SNAPSHOT_DATE),
        churned.cast("int").alias(C.CHURNED),
        clv.cast("double").alias(C.CLV_90D),
        buys.cast("int").alias(C.WILL_PURCHASE_7D),
        F.lit(end).cast("date").alias(C.DATA_END),
    )


def build_labels(store: TableStore, snapshot_date: dt.date, config: Config,
                 end: dt.date | None = None) -> DataFrame:
    """Labels for ``snapshot_date`` (columns.LABEL_COLUMNS) from bronze.events and orders.

    Reads only the event partitions and orders from the population window before the snapshot
    to the longest horizon after it. ``end`` overrides the data end (default: ``data_end``).
    """
    lab = config.labels
    end = end if end is not None else data_end(store)
    back = max(config.features.active_window_days, lab.churn_active_before_days)
    ahead = max(lab.churn_horizon_days, lab.clv_horizon_days, lab.purchase_horizon_days)
    first = snapshot_date - dt.timedelta(days=back)
    stop = snapshot_date + dt.timedelta(days=ahead)
    events = store.read(BRONZE_EVENTS).filter(
        (F.col("event_date") >= F.lit(first)) & (F.col("event_date") < F.lit(stop))
    )
    orders = read_or_empty(store.spark, store, BRONZE_ORDERS, S.BRONZE_SCHEMAS["orders"]).filter(
        ts_between(S.TS, first, stop)
    )
    return compute_labels(activity_rows(events, orders), snapshot_date, end, config)


def label_checks() -> list[Q.Check]:
    keys = list(USER_LABELS.keys)
    return [
        Q.unique_check(keys),
        Q.not_null_check(keys, name="not_null_keys"),
        Q.in_set_check(C.CHURNED, [0, 1]),
        Q.in_set_check(C.WILL_PURCHASE_7D, [0, 1]),
        Q.non_negative_check(C.CLV_90D),
    ]


def _label_summary(labels: DataFrame) -> dict:
    """Label rates and null counts (one small aggregate) for the manifest and the log."""
    row = labels.agg(
        F.count(F.lit(1)).alias("users"),
        F.avg(C.CHURNED).alias("churn_rate"),
        F.count(C.CHURNED).alias("churn_labelled"),
        F.avg(C.CLV_90D).alias("clv_mean"),
        F.avg(C.WILL_PURCHASE_7D).alias("purchase_rate"),
        F.count(C.WILL_PURCHASE_7D).alias("purchase_labelled"),
    ).first()
    return row.asDict()


def _warn_unknown(snapshot: dt.date, end: dt.date | None, config: Config) -> None:
    lab = config.labels
    horizons = {C.CHURNED: lab.churn_horizon_days, C.CLV_90D: lab.clv_horizon_days,
                C.WILL_PURCHASE_7D: lab.purchase_horizon_days}
    unknown = [name for name, days in horizons.items()
               if end is None or snapshot + dt.timedelta(days=days) > end]
    if unknown:
        log.warning("labels %s: the data ends %s (exclusive), inside the horizon of %s: "
                    "those labels are null", snapshot, end, unknown)


@stage("labels")
def run_labels(ctx: StageContext, snapshot_date: dt.date,
               end: dt.date | None = None) -> StageResult:
    """Build gold.user_labels for ``snapshot_date``; check, then replace that partition."""
    result = ctx.begin(snapshot_date)
    result.tables_read = ctx.versions((BRONZE_EVENTS, BRONZE_ORDERS))
    end = end if end is not None else data_end(ctx.store)
    result.details["data_end"] = None if end is None else end.isoformat()
    labels = build_labels(ctx.store, snapshot_date, ctx.config, end=end).withColumn(
        C.RUN_ID, F.lit(ctx.run_id))
    _warn_unknown(snapshot_date, end, ctx.config)
    ctx.overwrite(result, labels, USER_LABELS, {C.SNAPSHOT_DATE: snapshot_date},
                  checks=label_checks(), summary=_label_summary)
    result.rows_in = result.rows_out
    return ctx.finish(result, "%s", result.details["summary"])


def horizons(config: Config) -> list[int]:
    """The label horizons in days, shortest first."""
    lab = config.labels
    return sorted({lab.churn_horizon_days, lab.clv_horizon_days, lab.purchase_horizon_days})


@stage("labels")
def refresh_labels(ctx: StageContext, snapshot_date: dt.date) -> StageResult:
    """The daily run's labels step: rebuild gold.user_labels for every feature snapshot
    before ``snapshot_date`` that has a label whose horizon has closed (by the data end,
    at most ``snapshot_date``) but is not final in the table yet: in a daily run, the
    snapshots ``snapshot_date`` - horizon, plus any a skipped day left behind. Status
    "skipped" when none is due."""
    end = data_end(ctx.store)
    ref = snapshot_date if end is None else min(end, snapshot_date)
    built = built_data_ends(ctx.store)
    due = [s for s in ctx.snapshots(USER_FEATURES, snapshot_date)
           if any(s + dt.timedelta(days=h) <= ref and not final(built.get(s), s, h)
                  for h in horizons(ctx.config))]
    result = ctx.begin(snapshot_date)
    result.tables_read = ctx.versions((USER_FEATURES, USER_LABELS))
    if not due:
        result.status = "skipped"
        result.details["reason"] = "every label whose window has closed is built"
        return ctx.finish(result, "nothing due")
    for s in due:
        one = run_labels(ctx, s, end=end)  # the data end read once above
        result.rows_out += one.rows_out
        result.tables_written.update(one.tables_written)
    result.rows_in = result.rows_out
    result.details["snapshots"] = [str(s) for s in due]
    return ctx.finish(result, "snapshots %s", result.details["snapshots"])
