"""The train stage: churn, purchase intent, CLV and segmentation models from past snapshots.

For a run date D (``snapshot_date``), training uses only data before D: the data end for the
labels is min(last event day + 1, D), so re-training an old date gives the same training set.

Per classifier/regressor (churn -> ``churned``, intent -> ``will_purchase_7d``, clv ->
``clv_90d``): the labelled snapshots are the gold.user_features snapshots S < D whose label
horizon has passed (S + horizon <= data end); the last ``models.training_snapshots`` of them
form the training set, the latest of those validates (time-based; with a single labelled
snapshot the library falls back to a seeded random split and records it). Labels come from
gold.user_labels, which the labels stage builds (and refreshes as horizons close); a snapshot
whose label there is not final yet (built with a data end before S + horizon) is left out and
named in the stage details, with the command that refreshes it. Users flagged by the anomaly
detector (silver.user_anomalies, written by the anomalies stage for D) are left out.

CLV is trained two ways and compared on the validation snapshot: the XGBoost regressor on
features, and BG/NBD + Gamma-Gamma fitted on that snapshot's gold.purchase_summary (every
buyer's orders before it, written by the features stage); the comparison (winner, margin) is
stored in the clv model's metrics. The probabilistic model is then refitted on the latest
purchase summary before D and registered as ``clv_bgnbd`` (its validation metrics from the
comparison; primary metric validation.rmse), which score loads: score fits nothing.
Segmentation compares k-means, bisecting k-means and Gaussian mixtures over the k range
(``models.segmentation``; silhouette, Calinski-Harabasz, Davies-Bouldin) on the latest snapshot
before D; the comparison table goes to the registry with the chosen model.

The fits run ``models.parallel_fits`` at a time (threads sharing the Spark session; 1 = one
after another): MLlib's iterative fits are many small Spark jobs, and another fit's jobs use
some of the gaps between them (at 100k users, train took 345 s in the backfill against 607 s
in turn with the older code; 515 vs 540 s alone in a fresh process). Results are registered
one at a time, in the order above, once each finishes.
Every model goes to the registry (``paths.models``) with metrics, params, features and lineage
(snapshots, source table versions, run id); promotion to ``latest`` follows
``models.promotion_tolerance``. A model that cannot be trained (no labelled snapshot, one
class only) is reported in the stage details with the reason; the stage fails only when no
model at all could be trained or a registered model is missing afterwards.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mktpipe.catalog import (
    BRONZE_EVENTS,
    PURCHASE_SUMMARY,
    USER_ANOMALIES,
    USER_FEATURES,
    USER_LABELS,
)
from mktpipe.config import Config
from mktpipe.errors import InputError
from mktpipe.features import columns as C
from mktpipe.models import churn, clv_ml, intent, segmentation
from mktpipe.models.registry import Registry, registry_for
from mktpipe.quality.manifest import StageResult
from mktpipe.readers import anomaly_flags, built_data_ends, data_end, labels_final
from mktpipe.stage import StageContext, snapshot_dates, stage
from mktpipe.storage import TableStore

log = logging.getLogger(__name__)

MODEL_NAMES = ("churn", "intent", "clv", "segments")  # score needs each of these
# BG/NBD x Gamma-Gamma: registered when it can be fitted and validated; score uses it if there
PROBABILISTIC_CLV = clv_ml.PROBABILISTIC_CLV
NON_FEATURES = (C.USER_ID, C.SNAPSHOT_DATE, C.RUN_ID, "community_id")


@dataclass(frozen=True)
class Target:
    """A supervised model: its registry name, label column and horizon."""

    name: str
    label: str
    horizon_days: int
    primary_metric: str
    higher_is_better: bool


def targets(config: Config) -> list[Target]:
    lab = config.labels
    return [
        Target("churn", C.CHURNED, lab.churn_horizon_days, "served.average_precision", True),
        Target("intent", C.WILL_PURCHASE_7D, lab.purchase_horizon_days,
               "served.average_precision", True),
        Target("clv", C.CLV_90D, lab.clv_horizon_days, "xgb.rmse", False),
    ]


def training_due(config: Config, snapshot_date: dt.date) -> tuple[bool, str]:
    """(due, why): training is due when a model has no promoted version, or the latest one was
    trained for a date ``models.retrain_every_days`` or more before ``snapshot_date``."""
    registry = registry_for(config)
    for name in MODEL_NAMES:
        version = registry.latest_version(name)
        if version is None:
            return True, f"no {name} model in the registry yet"
        lineage = registry.lineage(name, version)
        trained = lineage.get("snapshot_date")
        if trained is None:
            return True, f"{name} v{version} has no training date in its lineage"
        age = (snapshot_date - dt.date.fromisoformat(trained)).days
        if age >= config.models.retrain_every_days:
            every = config.models.retrain_every_days
            return True, (f"{name} v{version} was trained for {trained}, {age} days before "
                          f"{snapshot_date} (retrain_every_days={every})")
    return False, (f"every model was trained within {config.models.retrain_every_days} days "
                   f"before {snapshot_date}")


def feature_snapshots(store: TableStore, before: dt.date) -> list[dt.date]:
    """Snapshot dates of gold.user_features strictly before ``before`` (a small distinct)."""
    return snapshot_dates(store, USER_FEATURES, before)


def labelled_snapshots(snapshots: list[dt.date], horizon_days: int, end: dt.date,
                       keep: int) -> list[dt.date]:
    """The last ``keep`` snapshots whose ``horizon_days`` label window closed by ``end``."""
    done = [s for s in snapshots if s + dt.timedelta(days=horizon_days) <= end]
    return done[-keep:]


def training_set(store: TableStore, target: Target, snapshots: list[dt.date],
                 exclude: DataFrame | None, labels: DataFrame | None = None) -> DataFrame:
    """Features of ``snapshots`` joined with their gold.user_labels rows (non-null
    ``target.label``), minus the ``exclude`` users (a user_id DataFrame). ``labels``: the
    gold.user_labels rows to use (default: the table)."""
    features = store.read(USER_FEATURES).filter(F.col(C.SNAPSHOT_DATE).isin(snapshots))
    labels = labels if labels is not None else store.read(USER_LABELS)
    labels = (labels.filter(F.col(C.SNAPSHOT_DATE).isin(snapshots))
              .select(C.USER_ID, C.SNAPSHOT_DATE, target.label))
    data = (features.drop(C.RUN_ID)
            .join(labels.filter(F.col(target.label).isNotNull()),
                  on=[C.USER_ID, C.SNAPSHOT_DATE], how="inner"))
    if exclude is not None:
        data = data.join(exclude, on=C.USER_ID, how="left_anti")
    return data


def _feature_cols(df: DataFrame, label: str) -> list[str]:
    from mktpipe.models.preprocess import infer_feature_columns

    return infer_feature_columns(df, exclude=(label, *NON_FEATURES))


def _fit_target(target: Target, data: DataFrame, config: Config):
    """Fit ``target``'s model with its settings (``models.<name>``); its grid only with
    ``models.tune`` and a ``tuning`` grid in those settings."""
    settings = config.models.settings(target.name)
    fit = {"churn": churn.fit, "intent": intent.fit, "clv": clv_ml.fit}[target.name]
    return fit(data, target.label, _feature_cols(data, target.label), settings,
               tune=config.models.tune and bool(settings.tuning))


def purchase_summary(store: TableStore, snapshot: dt.date) -> DataFrame:
    """gold.purchase_summary of ``snapshot``; ValueError (with the command that builds it) when
    the features stage has not written that snapshot."""
    if snapshot not in snapshot_dates(store, PURCHASE_SUMMARY, snapshot + dt.timedelta(days=1)):
        raise ValueError(f"{PURCHASE_SUMMARY} has no snapshot {snapshot}; run `mktpipe "
                         f"features --snapshot-date {snapshot}` to build it")
    return _summary_rows(store, snapshot)


def _summary_rows(store: TableStore, snapshot: dt.date) -> DataFrame:
    return store.read(PURCHASE_SUMMARY).filter(F.col(C.SNAPSHOT_DATE) == F.lit(snapshot))


def clv_comparison(store: TableStore, model, data: DataFrame, validation: dt.date,
                   horizon_days: int) -> tuple[dict, clv_ml.ProbabilisticClvModel]:
    """ML regressor vs BG/NBD + Gamma-Gamma on the validation snapshot's customers: the
    probabilistic model is fitted on that snapshot's gold.purchase_summary (every buyer's
    orders before it, nothing after). Returns the comparison and that fitted model."""
    valid = data.filter(F.col(C.SNAPSHOT_DATE) == F.lit(validation))
    summary = purchase_summary(store, validation)
    fitted = clv_ml.fit_probabilistic(summary, horizon_days,
                                      fitted_snapshot=validation.isoformat())
    comparison = clv_ml.compare_clv(model.predict(valid), fitted.predict(summary), C.CLV_90D)
    comparison["validation_snapshot"] = validation.isoformat()
    comparison["population"] = "customers with an order before the validation snapshot"
    return comparison, fitted


def _train_probabilistic_clv(store: TableStore, config: Config, registry: Registry,
                             snapshot_date: dt.date, comparison: dict, lineage_base: dict,
                             validated: clv_ml.ProbabilisticClvModel | None = None):
    """Refit BG/NBD + Gamma-Gamma on the latest purchase summary before ``snapshot_date`` (the
    procedure ``comparison`` validated; ``validated``, fitted for the comparison, is reused
    when that summary is the validation snapshot's) and register it as ``PROBABILISTIC_CLV``,
    with the validation metrics; a reason string when it cannot be."""
    if "bgnbd" not in comparison:
        return f"not validated: {comparison.get('skipped', 'no CLV comparison')}"
    built = snapshot_dates(store, PURCHASE_SUMMARY, snapshot_date)
    if not built:
        return f"{PURCHASE_SUMMARY} has no snapshot before {snapshot_date}"
    latest = built[-1]
    if validated is not None and validated.metadata.get("fitted_snapshot") == latest.isoformat():
        model = validated
    else:
        try:
            model = clv_ml.fit_probabilistic(_summary_rows(store, latest),
                                             config.labels.clv_horizon_days,
                                             fitted_snapshot=latest.isoformat())
        except ValueError as exc:
            return str(exc)
    metrics = {"validation": comparison["bgnbd"], "winner": comparison["winner"],
               "validation_snapshot": comparison["validation_snapshot"],
               "fitted_snapshot": latest.isoformat(),
               "customers": model.bgnbd_params.n_customers}
    model.metadata["metrics"] = metrics
    n = model.bgnbd_params.n_customers
    reg = registry.register(
        PROBABILISTIC_CLV, model, metrics=metrics, primary_metric="validation.rmse",
        higher_is_better=False, tolerance=config.models.promotion_tolerance,
        lineage={**lineage_base, "training_snapshots": [str(latest)], "rows": n})
    return _summary(reg, metrics, "validation.rmse", n)


@stage("train")
def run_train(ctx: StageContext, snapshot_date: dt.date,
              only_if_due: bool = False) -> StageResult:
    """Train and register every model for ``snapshot_date`` (see the module docstring).
    ``only_if_due``: skip (status "skipped") unless :func:`training_due` says so."""
    store, config, run_id = ctx.store, ctx.config, ctx.run_id
    result = ctx.begin(snapshot_date)
    if only_if_due:
        due, why = training_due(config, snapshot_date)
        if not due:
            log.info("train %s: not due: %s", snapshot_date, why)
            result.status = "skipped"
            result.details["reason"] = why
            return result
        result.details["due_because"] = why
    for table in (USER_FEATURES, USER_LABELS, BRONZE_EVENTS):
        if not store.exists(table):
            raise InputError(f"train {snapshot_date}: table {table} does not exist; run the "
                             "ingest, daily, features and labels stages first (or `mktpipe "
                             "run`)")
    source = ctx.versions((USER_FEATURES, USER_LABELS, USER_ANOMALIES, PURCHASE_SUMMARY,
                           BRONZE_EVENTS))
    result.tables_read = source
    snapshots = feature_snapshots(store, snapshot_date)
    last_event_day = data_end(store)
    end = min(last_event_day, snapshot_date) if last_event_day else snapshot_date
    registry = registry_for(config)
    exclude = None
    excluded_users = 0
    if config.models.exclude_anomalous:
        flagged = anomaly_flags(store, snapshot_date, "train").filter("is_anomalous")
        exclude = flagged.select(C.USER_ID).cache()
        excluded_users = exclude.count()
    lineage_base = {"snapshot_date": snapshot_date.isoformat(), "run_id": run_id,
                    "data_end": end.isoformat(), "source_tables": source,
                    "excluded_anomalous_users": excluded_users}
    trained, skipped, rows = {}, {}, 0
    comparison = validated = None  # the CLV comparison and its BG/NBD fit, when clv trained
    built = built_data_ends(store)
    plans, not_final = {}, {}
    for t in targets(config):
        chosen = labelled_snapshots(snapshots, t.horizon_days, end,
                                    config.models.training_snapshots)
        late = [s for s in chosen if not labels_final(built.get(s), s, t.horizon_days)]
        if late:
            not_final[t.name] = [str(s) for s in late]
            log.warning("train %s: %s labels of %s are not final in %s (refresh them with "
                        "`mktpipe labels --snapshot-date S`); those snapshots are left out",
                        snapshot_date, t.name, not_final[t.name], USER_LABELS)
        plans[t.name] = [s for s in chosen if s not in late]
    needed = sorted({s for chosen in plans.values() for s in chosen})
    labels = (store.read(USER_LABELS).filter(F.col(C.SNAPSHOT_DATE).isin(needed)).cache()
              if needed else None)  # shared by the targets
    fits: dict[str, Future] = {}
    pool = ThreadPoolExecutor(max_workers=config.models.parallel_fits,
                              thread_name_prefix="mktpipe-train")
    try:
        for target in targets(config):  # every fit starts; results are registered in order
            chosen = plans[target.name]
            if not chosen and target.name in not_final:
                skipped[target.name] = (
                    f"the {target.label} labels of {not_final[target.name]} are not final in "
                    f"{USER_LABELS}; run `mktpipe labels --snapshot-date S` for them")
                continue
            if not chosen:
                skipped[target.name] = (
                    f"no feature snapshot before {snapshot_date} has a closed "
                    f"{target.horizon_days}-day label window (data end {end}); snapshots: "
                    f"{[str(s) for s in snapshots] or 'none'}")
                log.warning("train %s: %s skipped: %s", snapshot_date, target.name,
                            skipped[target.name])
                continue
            fits[target.name] = pool.submit(_fit_on, store, target, chosen, exclude, labels,
                                            config)
        segments = pool.submit(_fit_segments, store, config, snapshots, exclude)
        for target in targets(config):
            if target.name not in fits:
                continue
            chosen = plans[target.name]
            data, n, model = fits.pop(target.name).result()
            try:
                rows += n
                if isinstance(model, ValueError):  # one class only, too few rows: say so
                    skipped[target.name] = str(model)
                    log.warning("train %s: %s skipped: %s", snapshot_date, target.name, model)
                    continue
                metrics = dict(model.metrics)
                if target.name == "clv":
                    try:
                        metrics["comparison"], validated = clv_comparison(
                            store, model, data, chosen[-1], target.horizon_days)
                    except ValueError as exc:  # e.g. no repeat buyer: BG/NBD cannot be fitted
                        log.warning("train %s: CLV comparison skipped: %s", snapshot_date, exc)
                        metrics["comparison"] = {"winner": "ml", "skipped": str(exc)}
                    comparison = metrics["comparison"]
                reg = registry.register(
                    target.name, model, metrics=metrics, primary_metric=target.primary_metric,
                    higher_is_better=target.higher_is_better,
                    tolerance=config.models.promotion_tolerance,
                    lineage={**lineage_base, "training_snapshots": [str(s) for s in chosen],
                             "label": target.label, "rows": n})
                trained[target.name] = _summary(reg, metrics, target.primary_metric, n)
            finally:
                data.unpersist()
        if comparison is not None:
            prob = _train_probabilistic_clv(store, config, registry, snapshot_date, comparison,
                                            lineage_base, validated)
            if isinstance(prob, str):
                log.warning("train %s: %s skipped: %s", snapshot_date, PROBABILISTIC_CLV, prob)
                skipped[PROBABILISTIC_CLV] = prob
            else:
                trained[PROBABILISTIC_CLV] = prob
        seg = _register_segments(segments.result(), registry, lineage_base)
        if isinstance(seg, str):
            skipped["segments"] = seg
        else:
            trained["segments"] = seg
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a failed fit: the others stop first
        for fit in fits.values():  # not registered (the stage is failing): free their sets
            if fit.done() and not fit.cancelled() and fit.exception() is None:
                fit.result()[0].unpersist()
        for cached in (exclude, labels):
            if cached is not None:
                cached.unpersist()
    result.rows_in = result.rows_out = rows  # labelled training rows over every model
    result.details.update({"data_end": end.isoformat(),
                           "snapshots": [str(s) for s in snapshots], "models": trained,
                           "skipped": skipped, "excluded_anomalous_users": excluded_users,
                           "labels_not_final": not_final})
    ctx.finish(result, "%d models trained on %d labelled rows, skipped %s", len(trained), rows,
               sorted(skipped))
    if not trained:
        raise InputError(f"train {snapshot_date}: no model could be trained: {skipped}. "
                         "Build feature snapshots far enough in the past (a churn label needs "
                         f"{config.labels.churn_horizon_days} days after its snapshot).")
    return result


def _summary(reg, metrics: dict, primary: str, n: int) -> dict:
    from mktpipe.models.registry import metric_value

    return {"version": reg.version, "promoted": reg.promoted, "reason": reg.reason,
            "mlflow_run_id": reg.run_id, "rows": n, primary: metric_value(metrics, primary)}


def _fit_on(store: TableStore, target: Target, chosen: list[dt.date],
            exclude: DataFrame | None, labels: DataFrame | None, config: Config):
    """(the cached training set, its rows, the fitted model or the ValueError that says why
    none): one target's fit, run in the stage's pool. The caller unpersists the set."""
    data = training_set(store, target, chosen, exclude, labels).cache()
    try:
        n = data.count()
        try:
            return data, n, _fit_target(target, data, config)
        except ValueError as exc:  # one class only, too few rows
            return data, n, exc
    except BaseException:
        data.unpersist()
        raise


def _fit_segments(store: TableStore, config: Config, snapshots: list[dt.date],
                  exclude: DataFrame | None):
    """(the segmentation model fitted on the latest snapshot, its rows, that snapshot), or a
    reason string when there is none."""
    if not snapshots:
        return "no feature snapshot to cluster"
    latest = snapshots[-1]
    data = store.read(USER_FEATURES).filter(F.col(C.SNAPSHOT_DATE) == F.lit(latest))
    if exclude is not None:
        data = data.join(exclude, on=C.USER_ID, how="left_anti")
    data = data.cache()
    try:
        n = data.count()
        model = segmentation.fit(data, config.models.segment_features,
                                 config.models.settings("segmentation"))
    except ValueError as exc:
        return str(exc)
    finally:
        data.unpersist()
    return model, n, latest


def _register_segments(fitted, registry: Registry, lineage_base: dict):
    if isinstance(fitted, str):
        return fitted
    model, n, latest = fitted
    reg = registry.register("segments", model, primary_metric="silhouette",
                            higher_is_better=True, tolerance=1.0,  # unsupervised: always promote
                            lineage={**lineage_base, "training_snapshots": [str(latest)],
                                     "rows": n})
    return _summary(reg, model.metrics, "silhouette", n)
