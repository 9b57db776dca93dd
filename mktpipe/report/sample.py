"""A tiny, deterministic set of report inputs (tables, registry, manifests) for tests and demos.

``build_sample(spark, config, snapshot)`` writes into ``config``'s warehouse / models paths:

- ``silver.user_daily``: 8 users over the 70 days before the snapshot, weekly seasonality, a
  growing population, and one spike day (``SPIKE_DAYS_BEFORE`` before the snapshot) with ten
  times the usual views;
- ``gold.user_features`` (a few profile columns) and ``gold.customer_segments`` for the
  snapshot, plus segments for snapshot - 30 days (for KPI changes);
- ``silver.graph_metrics`` / ``silver.communities`` for snapshot - 7 days and snapshot + 7 days
  (the report must pick the earlier one);
- ``quarantine.events`` / ``quarantine.orders`` rows (one landed on the snapshot: not counted);
- registry files for churn (v1 without a PR curve, v2 latest with one), intent (xgb only) and
  clv (with the BG/NBD comparison); no segments model;
- two run manifests (one for a run date after the snapshot: not shown);
- the trends stage's tables for the snapshot: the tournament (seasonal naive and ETS, two
  folds) and the diagnostics of the views and revenue totals, computed by the stage's own
  per-series functions on the daily rows above, and two alerts (``ALERTS``).

The rows written are returned (``Sample``) so a test can compute expected values itself.
Sizes are a few hundred rows: the whole build is a handful of small Spark jobs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mktpipe import schemas as S
from mktpipe.catalog import (
    ALERTS,
    COMMUNITIES,
    CUSTOMER_SEGMENTS,
    GRAPH_METRICS,
    QUARANTINE,
    USER_DAILY,
    USER_FEATURES,
)
from mktpipe.config import Config
from mktpipe.features import columns as C
from mktpipe.models import artifacts
from mktpipe.quality.manifest import RunManifest, StageResult
from mktpipe.storage import open_store

DAYS = 70
SPIKE_DAYS_BEFORE = 20
USERS = [f"u{i:02d}" for i in range(1, 9)]
WEEKLY = [1.0, 0.9, 0.95, 1.0, 1.2, 1.6, 1.5]  # Monday .. Sunday
_COUNTS = [C.EVENTS, *C.EVENT_COUNTS, C.COMPLETION_VIEWS, C.SESSIONS, C.ORDERS,
           C.CATEGORIES_TOUCHED, *(C.daypart_events(n) for n, _, _ in C.DAYPARTS)]
_DOUBLES = [C.WATCH_SECONDS, C.COMPLETION_SUM, C.COMPLETION_RATE, C.SPEND_USD]
DAILY_SCHEMA = ", ".join(
    f"{c} " + ("string" if c in (C.USER_ID, C.RUN_ID) else "date" if c == C.ACTIVITY_DATE
               else "long" if c in _COUNTS else "double" if c in _DOUBLES
               else "map<string,bigint>") for c in C.DAILY_COLUMNS)
SEGMENTS_SCHEMA = (
    "user_id string, snapshot_date date, churn_probability double, churn_tier string, "
    "clv_90d double, clv_90d_ml double, clv_90d_bgnbd double, clv_tier string, "
    "intent_probability double, intent_tier string, segment string, rfm_segment string, "
    "community_id long, influence_percentile double, is_anomalous boolean, anomaly_reason string, "
    "churn_model_version int, intent_model_version int, clv_model_version int, "
    "segment_model_version int, _run_id string")
FEATURES_SCHEMA = ("user_id string, snapshot_date date, active_days_30d long, views_30d long, "
                   "engagement_rate_30d double, order_count long, monetary_total double, "
                   "days_since_last_active long, _run_id string")
METRICS_SCHEMA = ("user_id string, snapshot_date date, pagerank double, "
                  "influence_percentile double, community_id string, community_size long, "
                  "in_degree long, out_degree long, component_id string, lpa_community string, "
                  "eigenvector_centrality double, betweenness_centrality double, "
                  "closeness_centrality double, _run_id string")
COMMUNITIES_SCHEMA = ("snapshot_date date, community_id string, size long, internal_edges long, "
                      "internal_density double, top_creators array<string>, "
                      "dominant_category string, modularity double, lpa_modularity double, "
                      "lpa_communities long, _run_id string")


@dataclass
class Sample:
    snapshot: dt.date
    daily: list[dict] = field(default_factory=list)
    segments: list[dict] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    graph_snapshot: dt.date | None = None
    spike_day: dt.date | None = None


def daily_rows(snapshot: dt.date, days: int = DAYS, spike: int | None = SPIKE_DAYS_BEFORE,
               seed: int = 7) -> list[dict]:
    """user_daily rows: user i joins on day 6 * i (a growing base), views follow WEEKLY."""
    rng = np.random.default_rng(seed)
    rows = []
    for back in range(days, 0, -1):
        day = snapshot - dt.timedelta(days=back)
        factor = WEEKLY[day.weekday()]
        for i, user in enumerate(USERS):
            day_off = rng.random() < 0.1
            if days - back < 6 * i or day_off:  # not joined yet
                continue
            views = int(round((20 + 3 * i) * factor * rng.uniform(0.75, 1.25)))
            if spike is not None and back == spike:
                views *= 10
            likes, comments, shares = views // 4, views // 10, views // 20
            orders = 1 if (back + i) % 6 == 0 else 0
            rows.append({
                C.USER_ID: user, C.ACTIVITY_DATE: day, C.VIEWS: views, "likes": likes,
                "comments": comments, "shares": shares,
                C.EVENTS: views + likes + comments + shares + orders, "purchases": orders,
                C.ORDERS: orders, C.SPEND_USD: round(orders * (15.0 + 2.5 * i), 2),
                C.WATCH_SECONDS: 8.0 * views, C.SESSIONS: 1 + views // 15,
            })
    return rows


def _daily_tuple(row: dict) -> tuple:
    values = {**{c: 0 for c in _COUNTS}, **{c: 0.0 for c in _DOUBLES},
              C.VIEWS_BY_CATEGORY: {}, C.VIEWS_BY_CREATOR: {}, C.RUN_ID: "sample", **row}
    values[C.COMPLETION_RATE] = None  # the None row of every user-day: no known durations
    return tuple(values[c] for c in C.DAILY_COLUMNS)


def segment_rows(snapshot: dt.date, shift: int = 0, users: int = 12) -> list[dict]:
    """Scores of ``users`` users; ``shift`` moves users between tiers (an older snapshot)."""
    churn = ["immediate_intervention", "retention_campaign", "active_monitoring",
             "passive_monitoring"]
    intent = ["personalised_offer", "nurturing_campaign", "educational_content",
              "brand_awareness"]
    names = ["high views, high orders", "low active days", "average"]
    rfm = ["champions", "loyal", "at_risk", "hibernating", "new"]
    rows = []
    for i in range(users):
        c = (i + shift) % 4
        rows.append({
            "user_id": f"u{i + 1:02d}", "snapshot_date": snapshot,
            "churn_probability": [0.95, 0.8, 0.6, 0.2][c], "churn_tier": churn[c],
            "clv_90d": 10.0 * (i + 1), "clv_90d_ml": 9.0 * (i + 1),
            "clv_90d_bgnbd": 11.0 * (i + 1), "clv_tier": ["vip", "high", "medium", "low"][i % 4],
            "intent_probability": [0.9, 0.7, 0.5, 0.1][(i + 1 + shift) % 4],
            "intent_tier": intent[(i + 1 + shift) % 4], "segment": names[i % 3],
            "rfm_segment": rfm[i % 5], "community_id": i % 2, "influence_percentile": 8.0 * i,
            "is_anomalous": i == 11, "anomaly_reason": "burst" if i == 11 else None,
            "churn_model_version": 2, "intent_model_version": 1,
            "clv_model_version": 1, "segment_model_version": 1, "_run_id": "sample",
        })
    return rows


def _rows(spark, rows: list[dict], schema: str):
    cols = [part.strip().split(" ")[0] for part in schema.split(", ") if " " in part.strip()]
    return spark.createDataFrame([tuple(r.get(c) for c in cols) for r in rows], schema)


def write_tables(spark, config: Config, sample: Sample) -> None:
    store = open_store(spark, config)
    snap = sample.snapshot
    store.write(spark.createDataFrame([_daily_tuple(r) for r in sample.daily], DAILY_SCHEMA)
                .coalesce(1), USER_DAILY, mode="overwrite", partition_by=USER_DAILY.partitions)
    store.write(_rows(spark, sample.segments, SEGMENTS_SCHEMA), CUSTOMER_SEGMENTS,
                mode="overwrite", partition_by=CUSTOMER_SEGMENTS.partitions)
    features = [{"user_id": f"u{i + 1:02d}", "snapshot_date": snap, "active_days_30d": 10 + i,
                 "views_30d": 100 * (i + 1), "engagement_rate_30d": 0.3, "order_count": i % 4,
                 "monetary_total": 20.0 * (i % 4), "days_since_last_active": 1 + i % 5,
                 "_run_id": "sample"} for i in range(12)]
    store.write(_rows(spark, features, FEATURES_SCHEMA), USER_FEATURES, mode="overwrite",
                partition_by=USER_FEATURES.partitions)
    metrics, communities = [], []
    for back in (7, -7):  # the report must use snapshot - 7 (snapshot + 7 is in its future)
        day = snap - dt.timedelta(days=back)
        ranks = np.array([2.0 ** -(i % 10) for i in range(30)]) * (1 if back > 0 else 0.5)
        for i, pr in enumerate(ranks / ranks.sum()):
            metrics.append({"user_id": f"creator{i:02d}" if back > 0 else f"future{i:02d}",
                            "snapshot_date": day, "pagerank": float(pr),
                            "influence_percentile": 100.0 * (29 - i) / 30,
                            "community_id": str(i % 3), "community_size": 10,
                            "in_degree": 30 - i, "out_degree": i, "component_id": "creator00",
                            "lpa_community": str(i % 4),
                            # another order than PageRank's: the top is creator17
                            "eigenvector_centrality": (i * 7) % 30 / 29,
                            # top creator19; closeness left null (switched off): not ranked
                            "betweenness_centrality": (i * 11) % 30 / 29,
                            "closeness_centrality": None, "_run_id": "sample"})
        for k, (size, cat) in enumerate(((14, "beauty"), (10, "food"), (6, None))):
            communities.append({"snapshot_date": day, "community_id": str(k), "size": size,
                                "internal_edges": 3 * size, "internal_density": 0.4 - 0.1 * k,
                                "top_creators": [f"creator{k:02d}", f"creator{k + 3:02d}"],
                                "dominant_category": cat, "modularity": 0.42,
                                "lpa_modularity": 0.37 if back > 0 else 0.11,
                                "lpa_communities": 4 if back > 0 else 9,
                                "_run_id": "sample"})
    store.write(_rows(spark, metrics, METRICS_SCHEMA), GRAPH_METRICS, mode="overwrite",
                partition_by=GRAPH_METRICS.partitions)
    store.write(_rows(spark, communities, COMMUNITIES_SCHEMA), COMMUNITIES,
                mode="overwrite", partition_by=COMMUNITIES.partitions)
    now = dt.datetime(snap.year, snap.month, snap.day, tzinfo=dt.timezone.utc)
    for source in ("events", "orders"):
        rows = [(r["source"], r["raw"], f"landing/{source}/x.json", r["reason"], "detail",
                 f"sha{n}", 1, "sample", now, r["date"])
                for n, r in enumerate(sample.quarantine) if r["source"] == source]
        store.write(spark.createDataFrame(rows, S.QUARANTINE_SCHEMA), QUARANTINE[source],
                    mode="overwrite")


def quarantine_rows(snapshot: dt.date) -> list[dict]:
    day = snapshot - dt.timedelta(days=1)
    spec = [("events", S.REASON_MALFORMED, day)] * 3 + [("events", S.REASON_OUT_OF_RANGE, day)] * 2
    spec += [("orders", S.REASON_WRONG_TYPE, day), ("events", S.REASON_MALFORMED, snapshot)]
    return [{"source": s, "reason": r, "date": d, "raw": "{bad"} for s, r, d in spec]


def _pr_curve(shift: float) -> list[dict]:
    return [{"threshold": t, "precision": min(1.0, 0.35 + shift + 0.6 * t),
             "recall": 1.0 - t ** 1.5} for t in np.linspace(0.05, 0.95, 10).round(2).tolist()]


def _classifier(ap: float, with_lr: bool, with_pr: bool) -> dict[str, Any]:
    def variant(delta: float) -> dict:
        m = {"average_precision": ap + delta, "roc_auc": 0.8 + delta, "log_loss": 0.45 - delta,
             "brier": 0.15 - delta / 2, "n": 400, "positive_rate": 0.25,
             "calibration": [{"bin": b, "lower": b / 10, "upper": (b + 1) / 10,
                              "count": 40, "positives": 4 * b + 1,
                              "mean_predicted": (b + 0.5) / 10,
                              "observed_rate": min(1.0, (4 * b + 1) / 40 + delta)}
                             for b in range(10)],
             "tiers": [{"tier": "immediate_intervention", "lower": 0.9, "upper": 1.0, "n": 20,
                        "positives": 17, "precision": 0.85, "recall": 0.17,
                        "cumulative_precision": 0.85, "cumulative_recall": 0.17},
                       {"tier": "passive_monitoring", "lower": 0.0, "upper": 0.9, "n": 380,
                        "positives": 83, "precision": 0.22, "recall": 0.83,
                        "cumulative_precision": 0.25, "cumulative_recall": 1.0}]}
        if with_pr:
            m["pr_curve"] = _pr_curve(delta)
        return m

    out = {"primary_metric": "average_precision", "split": {"validation_snapshot": "x"},
           "xgb": variant(0.02)}
    if with_lr:
        out["lr"] = variant(-0.03)
        out["ensemble"] = variant(0.03)
        out["stacked"] = variant(0.025)
        out["calibration"] = {"method": "platt", "reason": "platt: out-of-fold log_loss "
                              "0.41000 vs 0.43000 uncalibrated",
                              "out_of_fold": {"none": {"log_loss": 0.43, "brier": 0.14},
                                              "platt": {"log_loss": 0.41, "brier": 0.135},
                                              "isotonic": {"log_loss": 0.42, "brier": 0.137}}}
        out["auto_features"] = {
            "enabled": True, "decision": "kept", "validation": "time (validate on x)",
            "reason": "PR AUC 0.4100 → 0.4350 on the held-out part", "candidates": 40,
            "after_univariate": 22, "after_correlation": 9, "after_importance": 2,
            "kept": ["fe_mul__recency_days__views_7d", "fe_share__likes_7d_30d"],
            "before": 0.41, "after": 0.435}
    else:
        out["ensemble"] = out["xgb"]
    return out


class SampleModel:
    """A registered model that is only its metrics: the report reads metrics, never a model."""

    def __init__(self, metrics: dict) -> None:
        self.metrics = metrics

    def save(self, path: str) -> None:
        artifacts.write_json(artifacts.join(path, artifacts.METADATA_FILE),
                             {"class": artifacts.qualified_name(type(self)), "sample": True})


def write_registry(root: str) -> None:
    """churn v1 and v2 (v2 the champion, with a PR curve), intent v1, clv v1, in the MLflow
    registry under ``root`` (its embedded store)."""
    from mktpipe.models.registry import Registry

    registry = Registry(root)
    classifier = {"primary_metric": "ensemble.average_precision"}
    registry.register("churn", SampleModel(_classifier(0.55, True, with_pr=False)), **classifier)
    registry.register("churn", SampleModel(_classifier(0.6, True, with_pr=True)), **classifier)
    registry.register("intent", SampleModel(_classifier(0.4, False, with_pr=True)),
                      **classifier)
    comparison = {"n": 300, "metric": "rmse", "winner": "ml", "margin": 4.5,
                  "relative_margin": 0.15,
                  "ml": {"rmse": 25.5, "mae": 12.0, "r2": 0.4, "mape": 0.6, "n": 300},
                  "bgnbd": {"rmse": 30.0, "mae": 14.5, "r2": 0.2, "mape": 0.8, "n": 300}}
    registry.register("clv", SampleModel(
        {"primary_metric": "rmse", "split": {}, "comparison": comparison,
         "xgb": {"rmse": 25.5, "mae": 12.0, "r2": 0.4, "mape": 0.6, "n": 300}}),
        primary_metric="xgb.rmse", higher_is_better=False)


def write_manifests(warehouse: str, snapshot: dt.date) -> None:
    day = snapshot - dt.timedelta(days=1)
    counts = {"events": {"read": 120, "written": 110, "quarantined": 5, "duplicates_in_batch": 3,
                         "duplicates_existing": 2,
                         "quarantine_reasons": {"MALFORMED_RECORD": 3, "OUT_OF_RANGE": 2}},
              "orders": {"read": 11, "written": 10, "quarantined": 1, "duplicates_in_batch": 0,
                         "duplicates_existing": 0, "quarantine_reasons": {"WRONG_TYPE": 1}}}
    for run_date, run_id in ((day, "run-sample-1"), (snapshot + dt.timedelta(days=3),
                                                     "run-future")):
        manifest = RunManifest(run_id, "run", warehouse,
                               started_at=f"{run_date}T03:00:00+00:00")
        manifest.stages = [
            StageResult("ingest", run_date.isoformat(), rows_in=131, rows_out=120,
                        rows_quarantined=6, rows_deduplicated=5, details=counts,
                        started_at=f"{run_date}T03:00:00+00:00", elapsed_s=12.5),
            StageResult("daily", run_date.isoformat(), rows_in=120, rows_out=8,
                        started_at=f"{run_date}T03:01:00+00:00", elapsed_s=4.0),
        ]
        manifest.finish("ok")


def sample_alerts(end: dt.date) -> list:
    """Two alerts from the real rules, in the active language: views below their check
    interval on each of the last 3 days (critical), and an ingest that quarantined 4.6 % of
    its rows (warning)."""
    import pandas as pd

    from mktpipe.trends import alerts as A

    days = [end - dt.timedelta(days=n) for n in (2, 1, 0)]
    check = pd.DataFrame({"series_id": "views", "kpi": "views", "segment": None, "day": days,
                          "mean": 100.0, "lower": 90.0, "upper": 110.0,
                          "actual": [60.0, 70.0, 50.0]})
    ingest = {"stage": "ingest", "run_date": end.isoformat(), "status": "ok", "rows_in": 131,
              "rows_out": 125, "rows_quarantined": 6, "rows_deduplicated": 0}
    return A.kpi_drops(check, days=3, segments=False) + A.data_quality(ingest, 0.02)


def write_alerts(spark, config: Config, snapshot: dt.date) -> None:
    """gold.alerts for ``snapshot``: :func:`sample_alerts`, replacing the partition (call it
    under ``i18n.use(...)`` for the messages in another language)."""
    from mktpipe.trends import stage as trends

    frame = trends.alerts_frame(spark, sample_alerts(snapshot - dt.timedelta(days=1)), snapshot,
                                "run-sample-1")
    open_store(spark, config).write(frame, ALERTS, mode="overwrite",
                                    partition_by=[S.SNAPSHOT_DATE])


def write_trends(spark, config: Config, sample: Sample) -> None:
    """The trends stage's tables for the sample's views and revenue totals (see above)."""
    import pandas as pd
    from pyspark.sql import functions as F

    from mktpipe.trends import stage as trends
    from mktpipe.trends.diagnostics import DiagnosticSettings
    from mktpipe.trends.tournament import TournamentSettings

    store = open_store(spark, config)
    snapshot = sample.snapshot
    end = snapshot - dt.timedelta(days=1)
    daily = pd.DataFrame(sample.daily)
    settings = TournamentSettings(models=("seasonal_naive", "ets"), folds=2, backtest_horizon=7)
    tours, diags = [], []
    for kpi, column in (("views", C.VIEWS), ("revenue_usd", C.SPEND_USD)):
        totals = daily.groupby(C.ACTIVITY_DATE)[column].sum()
        pdf = pd.DataFrame({"series_id": kpi, "kpi": kpi, "segment": None,
                            "day": list(totals.index), "value": totals.to_numpy(float)})
        tours.append(trends.tournament_group(settings, end, pdf))
        diags.append(trends.diagnostics_group(DiagnosticSettings(), end, pdf))
    stamp = {S.SNAPSHOT_DATE: F.lit(snapshot), S.RUN_ID: F.lit("run-sample-1")}
    tables = trends.output_tables(
        spark.createDataFrame(pd.concat(tours, ignore_index=True), trends.TOURNAMENT_SCHEMA),
        spark.createDataFrame(pd.concat(diags, ignore_index=True), trends.DIAGNOSTICS_SCHEMA),
        stamp)
    for table, df in tables.items():
        store.write(df, table, mode="overwrite", partition_by=[S.SNAPSHOT_DATE])
    write_alerts(spark, config, snapshot)


def sample_rows(snapshot: dt.date) -> Sample:
    """The sample's rows, nothing written."""
    return Sample(snapshot=snapshot, daily=daily_rows(snapshot),
                  segments=segment_rows(snapshot) + segment_rows(
                      snapshot - dt.timedelta(days=30), shift=1, users=10),
                  quarantine=quarantine_rows(snapshot),
                  graph_snapshot=snapshot - dt.timedelta(days=7),
                  spike_day=snapshot - dt.timedelta(days=SPIKE_DAYS_BEFORE))


def build_sample(spark, config: Config, snapshot: dt.date) -> Sample:
    """Write every sample input under ``config``'s paths; return the rows written."""
    sample = sample_rows(snapshot)
    write_tables(spark, config, sample)
    write_registry(config.uri("models"))
    write_manifests(config.uri("warehouse"), snapshot)
    write_trends(spark, config, sample)
    return sample
