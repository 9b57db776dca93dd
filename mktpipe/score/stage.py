"""The score stage: gold.user_features, gold.purchase_summary and silver.user_anomalies of a
snapshot + the registry's latest models -> gold.customer_segments (one partition per snapshot,
replaced on re-run) + the activation export. Score fits nothing and reads no bronze table.

Columns of gold.customer_segments:

======================  =======  ==========================================================
user_id                 string   as in gold.user_features
snapshot_date           date     the snapshot (partition column)
churn_probability       double   ensemble mean of the churn models (XGBoost + logistic)
churn_tier              string   ``models.churn.tiers`` (default: immediate_intervention >= 0.9,
                                 retention_campaign >= 0.7, active_monitoring >= 0.5, passive)
clv_90d_ml              double   XGBoost regressor: expected spend (USD) in the next 90 days
clv_90d_bgnbd           double   the registry's BG/NBD x Gamma-Gamma (``clv_bgnbd``, fitted by
                                 train) on gold.purchase_summary of the snapshot; null for
                                 users with no order (the model needs a first purchase), and
                                 for everyone when no such model was promoted
clv_90d                 double   the model that won the holdout comparison at training
                                 (BG/NBD where it applies and won, else the ML value)
clv_tier                string   ``models.clv_tiers``: percentile of clv_90d in the snapshot
                                 (vip = top 5 %, high = next 15 %, medium = next 30 %, low);
                                 a user with clv_90d = 0 is always in the lowest tier
intent_probability      double   purchase in the next 7 days
intent_tier             string   ``models.intent.tiers`` (personalised_offer >= 0.8, ...)
segment                 string   behavioural segment name (k-means on standardised features)
rfm_segment             string   champions, loyal, at_risk, ... (quintiles over buyers);
                                 ``no_purchase`` for users with no order yet
community_id            string   Louvain community (graph stage; named after a member's
                                 user_id, so the export pseudonymises it); null: not in graph
influence_percentile    double   PageRank percentile 0-100
is_anomalous            boolean  anomalous engagement (silver.user_anomalies of the snapshot)
anomaly_reason          string   why, when is_anomalous
churn_model_version,    int      registry versions used
intent_model_version,
clv_model_version,
segment_model_version
_run_id                 string
======================  =======  ==========================================================
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mktpipe.catalog import (
    CUSTOMER_SEGMENTS,
    PURCHASE_SUMMARY,
    USER_ANOMALIES,
    USER_FEATURES,
)
from mktpipe.config import Config
from mktpipe.errors import InputError
from mktpipe.features import columns as C
from mktpipe.model_settings import normalize_tiers
from mktpipe.models.classifier import tier_col
from mktpipe.models.clv_ml import PROBABILISTIC_CLV
from mktpipe.models.registry import registry_for
from mktpipe.quality import checks as Q
from mktpipe.quality.manifest import StageResult
from mktpipe.readers import anomaly_flags
from mktpipe.score import export as export_mod
from mktpipe.stage import StageContext, stage
from mktpipe.storage import TableStore

log = logging.getLogger(__name__)

NO_PURCHASE = "no_purchase"
KEYS = list(CUSTOMER_SEGMENTS.keys)
OUTPUT_COLUMNS = (
    C.USER_ID, C.SNAPSHOT_DATE, "churn_probability", "churn_tier", "clv_90d_ml",
    "clv_90d_bgnbd", "clv_90d", "clv_tier", "intent_probability", "intent_tier", "segment",
    "rfm_segment", "community_id", "influence_percentile", "is_anomalous", "anomaly_reason",
    "churn_model_version", "intent_model_version", "clv_model_version",
    "segment_model_version", C.RUN_ID,
)


def value_tiers(df: DataFrame, col: str, tiers, relative_error: float = 0.001
                ) -> tuple[Column, dict[str, float]]:
    """A tier column for ``col`` by percentile lower bounds ``tiers`` ({name: q}), and the value
    cut-offs used. The cut-offs are approximate quantiles of ``col`` over ``df`` (distributed);
    a tier above the lowest needs col >= its cut-off and col > 0."""
    pairs = normalize_tiers(tiers)
    upper = [(name, q) for name, q in pairs if q > 0]
    cuts = df.approxQuantile(col, [q for _, q in upper], relative_error) if upper else []
    expr, cutoffs = None, {}
    for (name, _), cut in zip(upper, cuts):
        cutoffs[name] = float(cut)
        cond = (F.col(col) >= F.lit(float(cut))) & (F.col(col) > 0)
        expr = F.when(cond, F.lit(name)) if expr is None else expr.when(cond, F.lit(name))
    lowest = F.lit(pairs[-1][0])
    return (lowest if expr is None else expr.otherwise(lowest)), cutoffs


def segment_checks(config: Config) -> list[Q.Check]:
    churn_tiers = [n for n, _ in config.models.settings("churn").tiers]
    intent_tiers = [n for n, _ in config.models.settings("intent").tiers]
    return [
        Q.unique_check(KEYS),
        Q.not_null_check([*KEYS, "churn_probability", "intent_probability", "clv_90d",
                          "segment", "rfm_segment", "is_anomalous"], name="not_null_scores"),
        Q.range_check("churn_probability", 0.0, 1.0),
        Q.range_check("intent_probability", 0.0, 1.0),
        Q.non_negative_check("clv_90d"),
        Q.in_set_check("churn_tier", churn_tiers),
        Q.in_set_check("intent_tier", intent_tiers),
        Q.in_set_check("clv_tier", list(config.models.clv_tiers)),
    ]


def _load_models(config: Config, snapshot_date: dt.date) -> dict:
    registry = registry_for(config)
    out = {}
    for name in ("churn", "intent", "clv", "segments"):
        version = registry.latest_version(name)
        if version is None:
            raise InputError(_no_model_message(registry, name, snapshot_date))
        out[name] = (version, registry.load(name, version), registry.metrics(name, version))
    version = registry.latest_version(PROBABILISTIC_CLV)  # optional: (version, model, why not)
    out[PROBABILISTIC_CLV] = (
        (version, registry.load(PROBABILISTIC_CLV, version), None) if version is not None
        else (None, None, f"the registry has no promoted {PROBABILISTIC_CLV} model (see the "
                          "train stage's details for why it was not fitted or promoted)"))
    return out


def _no_model_message(registry, name: str, snapshot_date: dt.date) -> str:
    """Why ``name`` cannot be scored: never trained, or trained but no version passed the gate
    (then the newest version's reason, e.g. a metric undefined on a validation snapshot
    without positives, and what to do about it)."""
    head = f"score {snapshot_date}: the registry {registry.root} has no promoted {name!r} model"
    versions = registry.versions(name)
    if not versions:
        return (f"{head}; run `mktpipe train --snapshot-date {snapshot_date}` first (or "
                "`mktpipe run`, which trains when no model exists)")
    newest = max(versions)
    reason = registry.info(name, newest).get("reason", "no reason recorded")
    return (f"{head}: {len(versions)} version(s) trained, none passed the promotion gate "
            f"(v{newest}: {reason}). With more history (a longer date range, more users) the "
            f"validation snapshot gets positives; to accept v{newest} unvalidated, promote it by "
            f"hand: `registry_for(config).promote({name!r}, {newest})` "
            "(mktpipe.models.stage.registry_for)")


def _rfm(features: DataFrame) -> DataFrame:
    """user_id, rfm_segment: quintile RFM over the snapshot's buyers; no_purchase otherwise."""
    from mktpipe.models.segmentation import rfm_segments

    buyers = features.filter(F.col("order_count") > 0).select(
        C.USER_ID, "recency_days", "order_count", "monetary_total")
    scored = rfm_segments(buyers, recency_col="recency_days", frequency_col="order_count",
                          monetary_col="monetary_total")
    return scored.select(C.USER_ID, "rfm_segment")


def score_snapshot(store: TableStore, config: Config, snapshot_date: dt.date, features: DataFrame,
                   models: dict, run_id: str) -> tuple[DataFrame, DataFrame, dict]:
    """The scored segments DataFrame (OUTPUT_COLUMNS), the persisted frame it reads (for the
    caller to unpersist) and details (cut-offs, CLV choice)."""
    (churn_v, churn_m, _), (intent_v, intent_m, _) = models["churn"], models["intent"]
    (clv_v, clv_m, clv_metrics), (seg_v, seg_m, _) = models["clv"], models["segments"]
    churn_tiers = config.models.settings("churn").tiers
    intent_tiers = config.models.settings("intent").tiers
    predicted = features
    for model in (churn_m, intent_m, clv_m, seg_m):  # one narrow chain, no join per model
        predicted = model.predict(predicted)
    base = predicted.select(
        C.USER_ID, C.SNAPSHOT_DATE, "community_id", "influence_percentile", "churn_probability",
        "intent_probability", F.col(clv_m.output_col).alias("clv_90d_ml"),
        F.col("segment_name").alias("segment"))
    parts = [_rfm(features), anomaly_flags(store, snapshot_date, "score").select(
        C.USER_ID, "is_anomalous", "anomaly_reason")]
    bgnbd_v, bgnbd_m, bgnbd_note = models[PROBABILISTIC_CLV]
    if bgnbd_m is not None and not store.exists(PURCHASE_SUMMARY):
        bgnbd_note = (f"{PURCHASE_SUMMARY} does not exist; run `mktpipe features "
                      f"--snapshot-date {snapshot_date}` to build it")
    if bgnbd_note is None:
        summary = store.read(PURCHASE_SUMMARY).filter(
            F.col(C.SNAPSHOT_DATE) == F.lit(snapshot_date))
        parts.append(bgnbd_m.predict(summary).select(
            C.USER_ID, F.col(bgnbd_m.output_col).alias("clv_90d_bgnbd")))
    else:  # e.g. no repeat buyer when it was trained: the ML value stands alone
        log.warning("score %s: no BG/NBD CLV: %s", snapshot_date, bgnbd_note)
        base = base.withColumn("clv_90d_bgnbd", F.lit(None).cast("double"))
    winner = (clv_metrics.get("comparison") or {}).get("winner", "ml")
    clv = (F.coalesce(F.col("clv_90d_bgnbd"), F.col("clv_90d_ml")) if winner == "bgnbd"
           else F.col("clv_90d_ml"))
    joined = base
    for part in parts:
        joined = joined.join(part, on=C.USER_ID, how="left")
    joined = joined.withColumns({
        "clv_90d": clv,
        "rfm_segment": F.coalesce(F.col("rfm_segment"), F.lit(NO_PURCHASE)),
        "is_anomalous": F.coalesce(F.col("is_anomalous"), F.lit(False)),
        "churn_tier": tier_col(F.col("churn_probability"), churn_tiers),
        "intent_tier": tier_col(F.col("intent_probability"), intent_tiers),
        "churn_model_version": F.lit(churn_v), "intent_model_version": F.lit(intent_v),
        "clv_model_version": F.lit(clv_v), "segment_model_version": F.lit(seg_v),
        C.RUN_ID: F.lit(run_id),
    }).persist(StorageLevel.MEMORY_AND_DISK)  # quantiles, checks, write and export read it
    clv_tier, cutoffs = value_tiers(joined, "clv_90d", config.models.clv_tiers)
    scored = joined.withColumn("clv_tier", clv_tier).select(*OUTPUT_COLUMNS)
    details = {"clv_model_used": "bgnbd" if winner == "bgnbd" and not bgnbd_note else "ml",
               "bgnbd_skipped": bgnbd_note,
               "clv_tier_cutoffs_usd": cutoffs,
               "model_versions": {"churn": churn_v, "intent": intent_v, "clv": clv_v,
                                  "segments": seg_v, PROBABILISTIC_CLV: bgnbd_v}}
    return scored, joined, details


def _tier_counts(scored: DataFrame) -> dict:
    """{tier column: {tier: users}} in one small aggregation."""
    cols = ["churn_tier", "intent_tier", "clv_tier", "segment", "rfm_segment"]
    rows = (scored.select(F.explode(F.array(*[
        F.struct(F.lit(c).alias("k"), F.col(c).alias("v")) for c in cols])).alias("kv"))
        .groupBy("kv.k", "kv.v").count().collect())
    out: dict[str, dict] = {c: {} for c in cols}
    for r in rows:
        out[r["k"]][r["v"]] = r["count"]
    return out


@stage("score")
def run_score(ctx: StageContext, snapshot_date: dt.date, export: bool = True) -> StageResult:
    """Score ``snapshot_date``: write its gold.customer_segments partition and the export."""
    store, config = ctx.store, ctx.config
    result = ctx.begin(snapshot_date)
    key = export_mod.export_key(config) if export else None  # fail before any Spark work
    if not store.exists(USER_FEATURES):
        raise InputError(f"score {snapshot_date}: {USER_FEATURES} does not exist; run "
                         f"`mktpipe features --snapshot-date {snapshot_date}` first")
    models = _load_models(config, snapshot_date)
    result.tables_read = ctx.versions((USER_FEATURES, USER_ANOMALIES, PURCHASE_SUMMARY))
    features = (store.read(USER_FEATURES)
                .filter(F.col(C.SNAPSHOT_DATE) == F.lit(snapshot_date))
                .persist(StorageLevel.MEMORY_AND_DISK))
    try:
        n = features.count()
        if n == 0:
            raise InputError(f"score {snapshot_date}: {USER_FEATURES} has no rows for this "
                             f"snapshot; run `mktpipe features --snapshot-date {snapshot_date}`")
        scored, cached, details = score_snapshot(store, config, snapshot_date, features, models,
                                                 ctx.run_id)
        result.details.update(details)
        try:
            ctx.overwrite(result, scored, CUSTOMER_SEGMENTS, {C.SNAPSHOT_DATE: snapshot_date},
                          checks=segment_checks(config), persisted=True)
            result.details["tiers"] = _tier_counts(scored)
            if export:
                result.details["export"] = export_mod.write_export(
                    scored, config, snapshot_date, result.rows_out, key)
        finally:
            cached.unpersist()
    finally:
        features.unpersist()
    if result.rows_out != n:
        raise InputError(f"score {snapshot_date}: {n} feature rows but {result.rows_out} "
                         "scored rows")
    result.rows_in = n
    return ctx.finish(result, "%d users scored; churn tiers %s", result.rows_out,
                      result.details["tiers"]["churn_tier"])
