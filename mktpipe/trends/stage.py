"""The trends stage: forecast tournament, trend diagnostics and alerts, once per snapshot.

For snapshot S it builds the KPI series of the ``trends.history_days`` before S in Spark
(:mod:`mktpipe.trends.series`: totals, and per segment of gold.customer_segments where volume
allows), then runs, one group per series with ``applyInPandas`` (so many series fit in
parallel on the executors, nothing per-user reaches the driver):

* the forecast tournament (:mod:`mktpipe.trends.tournament`): rolling-origin backtests of
  every ``trends.models`` forecaster, MAPE / sMAPE / MASE / interval coverage, the winner's
  ``trends.horizon_days`` forecast and its check of the latest ``trends.check_days``;
* the trend diagnostics (:mod:`mktpipe.trends.diagnostics`): trend and seasonal strength,
  noise level, an anomaly score per day, regime changes with a confidence;

and evaluates the alert rules (:mod:`mktpipe.trends.alerts`). Tables, each partitioned by
snapshot_date and replaced whole for S on a re-run:

========================  ====================================================================
table                     one row per
========================  ====================================================================
gold.forecast_backtests   series and model: mape, smape, mase, coverage (means over the
                          folds), folds, seconds, rank, chosen, error (why a model sat out)
gold.kpi_forecasts        series, kind and day: kind ``forecast`` (the horizon after S - 1) or
                          ``check`` (the latest days, with ``actual``); model, mean, lower, upper
gold.trend_daily          series and day: value, trend, seasonal, resid, anomaly_score,
                          anomaly, regime, change_point, change_confidence
gold.trend_diagnostics    series: days, trend_strength, seasonal_strength, noise_level,
                          anomalies, change_points, last_change_day, last_change_confidence,
                          chosen_model, chosen_mase, note
gold.alerts               alert: rule, severity, subject, day, value, threshold, message
========================  ====================================================================
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from mktpipe import schemas as S
from mktpipe.catalog import (
    ALERTS,
    CUSTOMER_SEGMENTS,
    FORECAST_BACKTESTS,
    KPI_FORECASTS,
    TREND_DAILY,
    TREND_DIAGNOSTICS,
    USER_DAILY,
)
from mktpipe.config import Config
from mktpipe.errors import InputError
from mktpipe.quality import checks as Q
from mktpipe.quality.manifest import (
    StageResult,
    latest_per_stage,
    load_manifests,
    stage_results,
)
from mktpipe.stage import RUN_DAILY_FIRST, StageContext, stage
from mktpipe.trends import alerts as A
from mktpipe.trends import series as T
from mktpipe.trends.diagnostics import DiagnosticSettings, diagnose
from mktpipe.trends.tournament import TournamentSettings, run_tournament

log = logging.getLogger(__name__)

_KEYS = f"{T.SERIES_ID} string, {T.KPI} string, {T.SEGMENT} string"
TOURNAMENT_SCHEMA = (
    f"{_KEYS}, kind string, model string, rank double, chosen boolean, folds double, "
    "folds_total double, mape double, smape double, mase double, coverage double, "
    "seconds double, error string, day date, mean double, lower double, upper double, "
    "actual double, note string")
DIAGNOSTICS_SCHEMA = (
    f"{_KEYS}, day date, value double, trend double, seasonal double, resid double, "
    "anomaly_score double, anomaly boolean, regime long, change_point boolean, "
    "change_confidence double, level_before double, level_after double, "
    "trend_strength double, seasonal_strength double, noise_level double, note string")
LEVEL_DAYS = 7  # the mean level on each side of a regime change


def tournament_settings(config: Config) -> TournamentSettings:
    t = config.trends
    return TournamentSettings(models=tuple(t.models), horizon=t.horizon_days,
                              backtest_horizon=t.backtest_horizon_days, folds=t.backtest_folds,
                              alpha=round(1 - t.interval, 10), metric=t.selection_metric,
                              check_days=t.check_days,
                              check_alpha=round(1 - config.alerts.kpi_drop_interval, 10))


def _as_series(pdf: pd.DataFrame, end: dt.date) -> pd.Series:
    """One series' rows -> a value per day from its first day to ``end`` (missing: 0)."""
    values = pd.Series(pdf[T.VALUE].to_numpy(float),
                       index=pd.DatetimeIndex(pd.to_datetime(pdf[T.DAY])))
    values = values.groupby(level=0).sum().sort_index()
    full = pd.date_range(values.index[0], pd.Timestamp(end), freq="D")
    return values.reindex(full, fill_value=0.0)


def _keys(pdf: pd.DataFrame) -> dict:
    first = pdf.iloc[0]
    return {T.SERIES_ID: first[T.SERIES_ID], T.KPI: first[T.KPI],
            T.SEGMENT: None if pd.isna(first[T.SEGMENT]) else first[T.SEGMENT]}


def tournament_group(settings: TournamentSettings, end: dt.date,
                     pdf: pd.DataFrame) -> pd.DataFrame:
    """applyInPandas: one series' rows -> its score rows, forecast rows and check rows."""
    keys = _keys(pdf)
    result = run_tournament(_as_series(pdf, end), settings)
    note = "; ".join(result.notes) or None
    rows = []
    for r in result.scores.to_dict("records"):
        rows.append({**keys, "kind": "score", **{k: r.get(k) for k in (
            "model", "rank", "chosen", "folds", "folds_total", "mape", "smape", "mase",
            "coverage", "seconds", "error")}, "note": note})
    for kind, frame in (("forecast", result.forecast), ("check", result.check)):
        if frame is None:
            continue
        for day, r in frame.iterrows():
            rows.append({**keys, "kind": kind, "model": result.chosen, "day": day.date(),
                         "mean": r["mean"], "lower": r["lower"], "upper": r["upper"],
                         "actual": r.get("actual", np.nan), "note": note})
    return _frame(rows, TOURNAMENT_SCHEMA)


def diagnostics_group(settings: DiagnosticSettings, pdf_end: dt.date,
                      pdf: pd.DataFrame) -> pd.DataFrame:
    """applyInPandas: one series' rows -> a row per day with the series' diagnostics."""
    keys = _keys(pdf)
    days, summary = diagnose(_as_series(pdf, pdf_end), settings)
    values = days["value"].to_numpy()
    before = np.full(len(days), np.nan)
    after = np.full(len(days), np.nan)
    for i in np.flatnonzero(days["change_point"].to_numpy()):
        before[i] = values[max(0, i - LEVEL_DAYS):i].mean()
        after[i] = values[i:i + LEVEL_DAYS].mean()
    out = days.assign(level_before=before, level_after=after,
                      trend_strength=summary["trend_strength"],
                      seasonal_strength=summary["seasonal_strength"],
                      noise_level=summary["noise_level"], note=summary["note"])
    out = out.assign(**keys, day=[d.date() for d in days.index]).reset_index(drop=True)
    return _frame(out.to_dict("records"), DIAGNOSTICS_SCHEMA)


def _frame(rows: list[dict], schema: str) -> pd.DataFrame:
    """Rows -> a frame with exactly the schema's columns, in order and of its types (absent:
    null), so Arrow converts every column as declared."""
    fields = [part.strip().split(" ")[:2] for part in schema.split(",")]
    frame = pd.DataFrame(rows, columns=[name for name, _ in fields])
    for name, kind in fields:
        col = frame[name]
        if kind == "string":
            frame[name] = col.astype(object).where(col.notna(), None)
        elif kind == "double":
            frame[name] = pd.to_numeric(col, errors="coerce").astype(float)
        elif kind == "boolean":  # plain bool: Arrow takes no pandas extension dtype back here
            frame[name] = col.astype(object).where(col.notna(), False).astype(bool)
        elif kind == "long":
            frame[name] = col.fillna(0).astype("int64")
    return frame


# --- Spark side --------------------------------------------------------------------------------

def build_series(ctx: StageContext, snapshot: dt.date) -> tuple[DataFrame, list[str], list[str]]:
    """Every KPI series of the snapshot (long format), the segment labels kept, and notes."""
    cfg = ctx.config.trends
    daily = T.window(ctx.store.read(USER_DAILY), snapshot, cfg.history_days)
    parts = [T.total_series(daily, list(cfg.kpis))]
    notes, kept = [], []
    column = cfg.segment_column
    if column and cfg.segment_kpis:
        if not ctx.store.exists(CUSTOMER_SEGMENTS):
            notes.append(f"no per-segment series: {CUSTOMER_SEGMENTS} does not exist")
        else:
            segments = ctx.store.read(CUSTOMER_SEGMENTS).filter(
                F.col(S.SNAPSHOT_DATE) == F.lit(snapshot))
            if column not in segments.columns:
                notes.append(f"no per-segment series: {CUSTOMER_SEGMENTS} has no column "
                             f"{column!r} (trends.segment_column)")
            else:
                per_segment, kept = T.segment_series(daily, segments, column,
                                                     list(cfg.segment_kpis),
                                                     cfg.min_segment_active_users)
                parts.append(per_segment)
                if not kept:
                    notes.append(f"no segment of {column!r} reaches "
                                 f"{cfg.min_segment_active_users:g} active users a day")
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out, kept, notes


def _diagnostics_table(diag: DataFrame, scores: DataFrame) -> DataFrame:
    changed = F.when(F.col("change_point"), F.col("day"))
    per_series = diag.groupBy(T.SERIES_ID, T.KPI, T.SEGMENT).agg(
        F.count(F.lit(1)).alias("days"),
        F.first("trend_strength").alias("trend_strength"),
        F.first("seasonal_strength").alias("seasonal_strength"),
        F.first("noise_level").alias("noise_level"),
        F.sum(F.col("anomaly").cast("int")).alias("anomalies"),
        F.sum(F.col("change_point").cast("int")).alias("change_points"),
        F.max(changed).alias("last_change_day"),
        F.max_by(F.col("change_confidence"), changed).alias("last_change_confidence"),
        F.first("note").alias("note"))
    chosen = scores.filter(F.col("chosen")).select(
        T.SERIES_ID, F.col("model").alias("chosen_model"), F.col("mase").alias("chosen_mase"))
    return per_series.join(chosen, T.SERIES_ID, "left")


def output_tables(tour: DataFrame, diag: DataFrame, stamp: dict) -> dict[str, DataFrame]:
    """The four series tables from the tournament's and the diagnostics' rows; ``stamp``:
    the snapshot_date and _run_id columns."""
    scores = (tour.filter(F.col("kind") == "score")
              .select(T.SERIES_ID, T.KPI, T.SEGMENT, "model",
                      F.col("rank").cast("int").alias("rank"), "chosen",
                      F.col("folds").cast("int").alias("folds"), "mape", "smape", "mase",
                      "coverage", "seconds", "error")
              .withColumns(stamp))
    forecasts = (tour.filter(F.col("kind") != "score")
                 .select(T.SERIES_ID, T.KPI, T.SEGMENT, "kind", "day", "model", "mean",
                         "lower", "upper", "actual").withColumns(stamp))
    daily = diag.select(T.SERIES_ID, T.KPI, T.SEGMENT, "day", "value", "trend", "seasonal",
                        "resid", "anomaly_score", "anomaly", "regime", "change_point",
                        "change_confidence").withColumns(stamp)
    return {FORECAST_BACKTESTS: scores, KPI_FORECASTS: forecasts, TREND_DAILY: daily,
            TREND_DIAGNOSTICS: _diagnostics_table(diag, scores).withColumns(stamp)}


def _churn_risk(ctx: StageContext, snapshot: dt.date):
    """((at risk, scored) now, (at risk, scored) at the previous scored snapshot, that day)."""
    if not ctx.store.exists(CUSTOMER_SEGMENTS):
        return None, None, None
    earlier = ctx.snapshots(CUSTOMER_SEGMENTS, before=snapshot)
    previous = earlier[-1] if earlier else None
    wanted = [d for d in (snapshot, previous) if d is not None]
    tiers = list(ctx.config.alerts.churn_risk_tiers)
    rows = (ctx.store.read(CUSTOMER_SEGMENTS).filter(F.col(S.SNAPSHOT_DATE).isin(wanted))
            .groupBy(S.SNAPSHOT_DATE)
            .agg(F.count(F.when(F.col("churn_tier").isin(tiers), 1)).alias("at_risk"),
                 F.count(F.lit(1)).alias("users"))
            .collect())  # at most two rows
    by_day = {r[S.SNAPSHOT_DATE]: (int(r["at_risk"]), int(r["users"])) for r in rows}
    return by_day.get(snapshot), by_day.get(previous), previous


def evaluate_alerts(ctx: StageContext, snapshot: dt.date, forecasts: DataFrame,
                    diag: DataFrame) -> list[A.Alert]:
    cfg = ctx.config.alerts
    data_end = snapshot - dt.timedelta(days=1)
    check = (forecasts.filter(F.col("kind") == "check")
             .select(T.SERIES_ID, T.KPI, T.SEGMENT, "day", "mean", "lower", "upper", "actual")
             .toPandas())  # check_days rows per series
    changes = (diag.filter(F.col("change_point"))
               .select(T.SERIES_ID, T.KPI, T.SEGMENT, "day", "change_confidence",
                       F.col("level_before").alias("before"), F.col("level_after").alias("after"))
               .toPandas())  # a few rows per series
    found = A.kpi_drops(check, cfg.kpi_drop_days, cfg.kpi_drop_segments, cfg.kpi_drop_min_days)
    found += A.regime_changes(changes, data_end, cfg.regime_change_days,
                              cfg.regime_change_min_confidence)
    current, previous, previous_day = _churn_risk(ctx, snapshot)
    found += A.churn_risk_growth(current, previous, previous_day, snapshot,
                                 cfg.churn_risk_max_increase)
    ingest = latest_per_stage([r for r in stage_results(load_manifests(
        ctx.config.uri("warehouse")), snapshot) if r.get("stage") == "ingest"]).get("ingest")
    found += A.data_quality(ingest, cfg.quarantine_max_share)
    return found


ALERTS_SCHEMA = ("alert_id string, rule string, severity string, subject string, "
                 "message string, day date, value double, threshold double")


def alerts_frame(spark, found: list[A.Alert], snapshot: dt.date, run_id: str) -> DataFrame:
    """gold.alerts rows of ``snapshot`` (none: an empty frame, so a re-run clears them)."""
    rows = [a.record() for a in found]
    df = spark.createDataFrame(
        [tuple(r[c.split(" ")[0]] for c in ALERTS_SCHEMA.split(", ")) for r in rows],
        ALERTS_SCHEMA)
    return df.withColumns({S.SNAPSHOT_DATE: F.lit(snapshot), S.RUN_ID: F.lit(run_id)})


@stage("trends")
def run_trends(ctx: StageContext, snapshot_date: dt.date) -> StageResult:
    """Tournament, diagnostics and alerts of ``snapshot_date``; replaces its partitions."""
    ctx.require(USER_DAILY, snapshot_date, RUN_DAILY_FIRST)
    result = ctx.begin(snapshot_date)
    result.tables_read = ctx.versions([t for t in (USER_DAILY, CUSTOMER_SEGMENTS)
                                       if ctx.store.exists(t)])
    data_end = snapshot_date - dt.timedelta(days=1)
    series, kept, notes = build_series(ctx, snapshot_date)
    series = series.persist(StorageLevel.MEMORY_AND_DISK)
    stamp = {S.SNAPSHOT_DATE: F.lit(snapshot_date), S.RUN_ID: F.lit(ctx.run_id)}
    frames = []
    try:
        n_series = series.select(T.SERIES_ID).distinct().count()
        if n_series == 0:
            raise InputError(f"trends {snapshot_date}: {USER_DAILY} has no activity in the "
                             f"{ctx.config.trends.history_days} days before {snapshot_date}")
        grouped = series.groupBy(T.SERIES_ID)
        settings = tournament_settings(ctx.config)
        diagnostic = DiagnosticSettings(penalty=ctx.config.trends.change_penalty)

        def tournament(pdf: pd.DataFrame) -> pd.DataFrame:  # a plain function: Spark reads
            return tournament_group(settings, data_end, pdf)  # its signature

        def diagnostics(pdf: pd.DataFrame) -> pd.DataFrame:
            return diagnostics_group(diagnostic, data_end, pdf)

        tour = grouped.applyInPandas(tournament, TOURNAMENT_SCHEMA) \
            .persist(StorageLevel.MEMORY_AND_DISK)
        diag = grouped.applyInPandas(diagnostics, DIAGNOSTICS_SCHEMA) \
            .persist(StorageLevel.MEMORY_AND_DISK)
        frames = [tour, diag]
        tables = output_tables(tour, diag, stamp)
        scores, forecasts = tables[FORECAST_BACKTESTS], tables[KPI_FORECASTS]
        where = {S.SNAPSHOT_DATE: snapshot_date}
        ctx.overwrite(result, scores, FORECAST_BACKTESTS, where,
                      checks=[Q.unique_check(list(FORECAST_BACKTESTS.keys))],
                      quality_key="quality_backtests")
        ctx.overwrite(result, forecasts, KPI_FORECASTS, where,
                      checks=[Q.unique_check(list(KPI_FORECASTS.keys))],
                      quality_key="quality_forecasts")
        ctx.overwrite(result, tables[TREND_DAILY], TREND_DAILY, where, count_rows=False)
        ctx.overwrite(result, tables[TREND_DIAGNOSTICS], TREND_DIAGNOSTICS, where,
                      count_rows=False)
        found = evaluate_alerts(ctx, snapshot_date, forecasts, diag) \
            if ctx.config.alerts.enabled else []
        ctx.overwrite(result, alerts_frame(ctx.spark, found, snapshot_date, ctx.run_id), ALERTS,
                      where,
                      count_rows=False)
        winners = {r[T.SERIES_ID]: {"model": r["model"], "mase": r["mase"],
                                    "coverage": r["coverage"]}
                   for r in scores.filter(F.col("chosen")).collect()}  # one row per series
    finally:
        for frame in frames:
            frame.unpersist()
        series.unpersist()
    result.rows_in = n_series
    result.details.update({
        "series": n_series, "segments": kept, "notes": notes, "winners": winners,
        "alerts": [{"rule": a.rule, "severity": a.severity, "subject": a.subject,
                    "message": a.message} for a in found]})
    for note in notes:
        log.info("trends %s: %s", snapshot_date, note)
    return ctx.finish(result, "%d series, %d alerts", n_series, len(found))
