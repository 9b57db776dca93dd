"""Behavioural segments (k-means, bisecting k-means and Gaussian mixtures compared over a k
range by three validity indices) and classic RFM segments from quintile scores.

Behavioural segments: numeric/boolean features are cast to double, optionally compressed with
sign(x) log(1 + |x|) (engagement counts are heavy-tailed; k-means on raw counts isolates a few
outliers), imputed with the median, standardised (mean 0, std 1), then every algorithm of
``algorithms`` (MLlib ``KMeans``, ``BisectingKMeans``, ``GaussianMixture``) runs for every k
in [k_min, k_max] on a sample of at most SEARCH_SAMPLE_ROWS rows, each candidate scored by
silhouette, Calinski-Harabasz and Davies-Bouldin (:func:`~mktpipe.models.evaluation.
clustering_metrics`, computed in Spark). The best by ``selection_metric`` (silhouette by
default) wins, ties to the smaller k; a candidate with empty clusters is never chosen. The
winner is refitted on every row; the comparison table and the reason go to the model's
metrics (and so to the registry and the report). Each segment is named
from its standardised centroid: the ``name_features`` features with the largest |z| of at least
``name_threshold``, as "high <feature>" / "low <feature>" ("average" when none stands out), the
largest segments named first; a name already taken gets more features, then " #<id>". Names
depend only on the centroids, so they stay stable across refits that find the same profiles.
Each segment also gets a recommended action (:func:`segment_action`: the centroid's value,
engagement, intent and reach scores against the rules in SEGMENT_ACTIONS).

RFM segments (:func:`rfm_segments`), first matching rule wins (scores 1-5, 5 = best: most
recent, most frequent, highest spend):

    champions           R >= 4 and F >= 4 and M >= 4
    cannot_lose         R <= 2 and F >= 4 and M >= 4
    loyal               R >= 3 and F >= 4
    at_risk             R <= 2 and F >= 3
    new                 R = 5 and F = 1
    potential_loyalist  (R >= 4 and F <= 3) or (R = 3 and F = 3)
    hibernating         R in (2, 3) and F <= 2
    lost                R = 1 and F <= 2

Every (R, F, M) combination matches exactly one first rule; a null score gives a null segment.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import BisectingKMeans, GaussianMixture, KMeans
from pyspark.ml.feature import Imputer, SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T_

from mktpipe.i18n import N_, NP_
from mktpipe.model_settings import CLUSTERING_INDICES, SegmentationSettings, resolve, to_dict
from mktpipe.models.artifacts import SavedPipelineModel, json_safe
from mktpipe.models.evaluation import clustering_metrics
from mktpipe.models.preprocess import (
    INTERNAL,
    drop_training_summary,
    infer_feature_columns,
    profile_features,
    require_columns,
)

log = logging.getLogger(__name__)

SEGMENT_ID, SEGMENT_NAME = "segment_id", "segment_name"
_RAW, _SCALED, _PRED = INTERNAL + "seg_raw", INTERNAL + "seg_scaled", INTERNAL + "segment"
_PROB = INTERNAL + "seg_probability"  # a Gaussian mixture's soft assignment (dropped)
_ONE, _LIFTED = INTERNAL + "seg_one", INTERNAL + "seg_lifted"  # bisecting k-means' input
SEARCH_SAMPLE_ROWS = 200_000  # the k search runs on a sample this size; the final fit on all


class SegmentationModel(SavedPipelineModel):
    """``predict(df)`` adds segment_id (int) and segment_name."""

    @property
    def segments(self) -> list[dict]:
        return self.metadata["segments"]

    def predict(self, df: DataFrame) -> DataFrame:
        require_columns(df, self.feature_cols, "SegmentationModel.predict")
        base = df.drop(*[c for c in (SEGMENT_ID, SEGMENT_NAME) if c in df.columns])
        return (self.pipeline_model.transform(base)
                .select(*[F.col(c) for c in base.columns], SEGMENT_ID, SEGMENT_NAME))


def settings_from(config=None) -> SegmentationSettings:
    return resolve(config, "segmentation", SegmentationSettings)


def _prep_stages(cols: list[str], log1p: bool) -> list:
    num = [f"{INTERNAL}seg{i}" for i in range(len(cols))]
    imp = [f"{INTERNAL}segimp{i}" for i in range(len(cols))]

    def expr(c: str) -> str:
        x = f"CAST(`{c}` AS DOUBLE)"
        return f"signum({x}) * ln(1 + abs({x}))" if log1p else x

    select = ", ".join(f"{expr(c)} AS {o}" for c, o in zip(cols, num))
    return [SQLTransformer(statement=f"SELECT *, {select} FROM __THIS__"),
            Imputer(inputCols=num, outputCols=imp, strategy="median"),
            VectorAssembler(inputCols=imp, outputCol=_RAW),
            StandardScaler(inputCol=_RAW, outputCol=_SCALED, withMean=True, withStd=True)]


def _clusterer(algorithm: str, s: SegmentationSettings, k: int) -> Pipeline:
    """The clustering estimator as a pipeline over the scaled vectors.

    Bisecting k-means splits a cluster by nudging its centre by 1e-4 x the centre's norm; the
    standardised data's centre is the origin, so the nudge is zero and the data stays one
    cluster. A constant coordinate appended first (same for every row: no distance changes)
    gives the centre a norm of at least 1."""
    common = {"predictionCol": _PRED, "k": k, "seed": s.seed, "maxIter": s.max_iter}
    if algorithm == "kmeans":
        return Pipeline(stages=[KMeans(featuresCol=_SCALED, **common)])
    if algorithm == "bisecting_kmeans":
        return Pipeline(stages=[
            SQLTransformer(statement=f"SELECT *, 1.0 AS {_ONE} FROM __THIS__"),
            VectorAssembler(inputCols=[_SCALED, _ONE], outputCol=_LIFTED),
            BisectingKMeans(featuresCol=_LIFTED, **common)])
    return Pipeline(stages=[GaussianMixture(featuresCol=_SCALED, probabilityCol=_PROB,
                                            **common)])


def _centers(fitted: PipelineModel, dims: int) -> np.ndarray:
    """k-means: the cluster centres; a Gaussian mixture: its components' means (first
    ``dims`` coordinates: without the constant one bisecting k-means adds)."""
    model = fitted.stages[-1]
    if hasattr(model, "clusterCenters"):
        return np.array(model.clusterCenters())[:, :dims]
    return np.array([r["mean"].toArray() for r in model.gaussiansDF.collect()])  # k rows


def compare(search: DataFrame, s: SegmentationSettings) -> list[dict]:
    """Every (algorithm, k) of the settings fitted on ``search`` (the scaled vectors) and scored
    by :func:`~mktpipe.models.evaluation.clustering_metrics`: one row each with algorithm, k,
    the indices, seconds, and ``degenerate`` (fewer non-empty clusters than k: never chosen)."""
    rows = []
    for algorithm in s.algorithms:
        for k in range(s.k_min, s.k_max + 1):
            started = time.monotonic()
            fitted = drop_training_summary(_clusterer(algorithm, s, k).fit(search))
            row: dict = {"algorithm": algorithm, "k": k}
            try:
                row.update(clustering_metrics(fitted.transform(search), _SCALED, _PRED))
                row["degenerate"] = row["clusters"] < k
            except ValueError as exc:  # one cluster only
                row.update({"degenerate": True, "reason": str(exc)})
            row["seconds"] = round(time.monotonic() - started, 3)
            log.info("segmentation %s k=%d: %s", algorithm, k,
                     {m: row.get(m) for m in CLUSTERING_INDICES})
            rows.append(row)
    return rows


def choose(rows: list[dict], metric: str) -> dict:
    """The best non-degenerate row by ``metric`` (Davies-Bouldin: lowest; the others:
    highest); ties go to the smaller k, then the earlier algorithm."""
    usable = [(i, r) for i, r in enumerate(rows) if not r.get("degenerate")
              and r.get(metric) is not None and math.isfinite(r[metric])]
    if not usable:
        why = "; ".join(f"{r['algorithm']} k={r['k']}: {r.get('reason', 'empty clusters')}"
                        for r in rows)
        raise ValueError(f"segmentation: every (algorithm, k) candidate was degenerate: {why}")
    sign = 1.0 if metric == "davies_bouldin" else -1.0
    return min(usable, key=lambda ir: (sign * ir[1][metric], ir[1]["k"], ir[0]))[1]


def fit(df: DataFrame, feature_cols=None, config=None) -> SegmentationModel:
    """Fit behavioural segments on ``df`` (one row per user). ``feature_cols`` None = every
    numeric/boolean non-id column. Every algorithm x k of the settings is compared on a sample
    (:func:`compare`), the best by ``selection_metric`` is refitted on all rows. Metrics: the
    chosen algorithm, k and indices, the whole comparison table and why the winner won."""
    s = settings_from(config)
    if feature_cols is None:
        types = {f.name: f.dataType for f in df.schema.fields}
        feature_cols = [c for c in infer_feature_columns(df)
                        if isinstance(types[c], T_.NumericType | T_.BooleanType)]
    spec = profile_features(df, list(feature_cols))
    if spec.categorical:
        raise ValueError(f"segmentation: string columns {list(spec.categorical)} cannot be "
                         "clustered; pass numeric or boolean feature_cols")
    cols = list(spec.numeric)
    prep = Pipeline(stages=_prep_stages(cols, s.log1p)).fit(df)
    scaled = prep.transform(df).select(_SCALED).cache()  # every candidate reads it
    try:
        n = scaled.count()
        if n < s.k_max + 1:
            raise ValueError(f"segmentation: {n} rows cannot support k up to {s.k_max}")
        search = scaled.sample(fraction=SEARCH_SAMPLE_ROWS / n, seed=s.seed) \
            if n > SEARCH_SAMPLE_ROWS else scaled
        rows = compare(search, s)
        best = choose(rows, s.selection_metric)
        algorithm, best_k = best["algorithm"], best["k"]
        clusterer = drop_training_summary(_clusterer(algorithm, s, best_k).fit(scaled))
    finally:
        scaled.unpersist()
    centers = _centers(clusterer, len(cols))
    sizes = _sizes(clusterer, prep.transform(df), best_k)
    names = segment_names(centers, cols, sizes, s.name_features, s.name_threshold)
    labels = ", ".join("'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"
                       for name in names)
    naming = SQLTransformer(statement=(
        f"SELECT *, CAST(`{_PRED}` AS INT) AS {SEGMENT_ID}, "
        f"element_at(array({labels}), CAST(`{_PRED}` AS INT) + 1) AS {SEGMENT_NAME} "
        "FROM __THIS__"))
    segments = []
    for i in range(best_k):
        centroid = dict(zip(cols, centers[i].tolist()))
        action, why = segment_action(centroid, s.name_threshold)
        segments.append({"id": i, "name": names[i], "size": int(sizes[i]),
                         "centroid_z": centroid, "action": action, "action_reason": why})
    candidates = len([r for r in rows if not r.get("degenerate")])
    direction = "lowest" if s.selection_metric == "davies_bouldin" else "highest"
    metrics = {
        "algorithm": algorithm, "k": best_k,
        **{m: best[m] for m in CLUSTERING_INDICES},
        "selection_metric": s.selection_metric,
        "chosen_because": (f"{direction} {s.selection_metric} ({best[s.selection_metric]:.4g}) "
                           f"of {candidates} usable candidates ({', '.join(s.algorithms)} x k "
                           f"{s.k_min}-{s.k_max}) on {min(n, SEARCH_SAMPLE_ROWS)} sampled rows"),
        "silhouette_by_k": {str(r["k"]): r.get("silhouette") for r in rows
                            if r["algorithm"] == algorithm},
        "comparison": rows,
        "segments": [{k: seg[k] for k in ("id", "name", "size", "action", "action_reason")}
                     for seg in segments],
    }
    log.info("segmentation: %s k=%d (%s), segments %s", algorithm, best_k,
             metrics["chosen_because"], names)
    metadata = {"feature_cols": cols, "settings": to_dict(s), "segments": segments,
                "metrics": metrics}
    stages = [*prep.stages, *clusterer.stages, naming]
    return SegmentationModel(PipelineModel(stages=stages), json_safe(metadata))


def _sizes(clusterer, transformed: DataFrame, k: int) -> list[int]:
    counts = {r[0]: r[1] for r in clusterer.transform(transformed).groupBy(_PRED).count()
              .collect()}  # k rows
    return [counts.get(i, 0) for i in range(k)]


def _readable(feature: str) -> str:
    return feature.replace("_", " ").strip()


def segment_names(centers: np.ndarray, features: list[str], sizes=None, n_features: int = 2,
                  threshold: float = 0.5) -> list[str]:
    """Unique readable names from standardised centroids (rows = segments); see the module
    docstring for the rule. ``sizes`` decides who keeps the shortest name (largest first)."""
    k = len(centers)
    sizes = list(sizes) if sizes is not None else [0] * k
    order = sorted(range(k), key=lambda i: (-sizes[i], i))
    names: dict[int, str] = {}
    for i in order:
        z = np.asarray(centers[i], dtype=float)
        ranked = [j for j in sorted(range(len(features)), key=lambda j: (-abs(z[j]), j))
                  if abs(z[j]) >= threshold]
        candidates = [", ".join(f"{'high' if z[j] > 0 else 'low'} {_readable(features[j])}"
                                for j in ranked[:m])
                      for m in range(min(n_features, len(ranked)), len(ranked) + 1) if m]
        candidates = candidates or ["average"]
        taken = set(names.values())
        name = next((c for c in candidates if c not in taken), None)
        names[i] = name if name is not None else f"{candidates[0]} #{i}"
    return [names[i] for i in range(k)]


# what a feature says about a customer, by the words in its name (the first role that matches)
ROLE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("value", ("order", "monetary", "spend", "clv", "purchase")),
    ("intent", ("product_click", "cart")),
    ("reach", ("follower", "pagerank", "influence")),
    ("engagement", ("view", "watch", "active_days", "engagement", "session", "like",
                    "comment", "share", "completion")),
)
# (action, why) per profile, first match wins; v, e, i, r: the mean standardised centroid of
# the value, engagement, intent and reach features (0 when the model has none), t: the
# naming threshold (``name_threshold``, 0.5 standard deviations by default)
SEGMENT_ACTIONS: tuple[tuple[str, str, Callable[[float, float, float, float, float], bool]],
                       ...] = (
    (NP_("action", "reward_and_retain"),
     N_("buyers above average who are still engaged: loyalty perks, early access, referral "
        "codes"), lambda v, e, i, r, t: v >= t and e >= 0),
    (NP_("action", "win_back_valuable"),
     N_("buyers above average whose activity is below average: a personal win-back offer "
        "before they lapse"), lambda v, e, i, r, t: v >= t),
    (NP_("action", "convert_intent"),
     N_("product clicks above average without matching purchases: cart reminders and a "
        "time-limited discount on what they clicked"), lambda v, e, i, r, t: i >= t),
    (NP_("action", "recruit_ambassadors"),
     N_("audience above average: creator seeding, affiliate codes"),
     lambda v, e, i, r, t: r >= t),
    (NP_("action", "monetise_engagement"),
     N_("engaged viewers who buy little: shoppable videos and a first-purchase offer"),
     lambda v, e, i, r, t: e >= t),
    (NP_("action", "reactivate"),
     N_("activity below average: re-engagement content and notifications from favourite "
        "creators"), lambda v, e, i, r, t: e <= -t),
    (NP_("action", "nurture"),
     N_("close to the average customer: regular content and educational campaigns"),
     lambda v, e, i, r, t: True),
)
# the reason of each action (the report shows it translated; metrics.json keeps it in English)
ACTION_REASONS = {action: why for action, why, _rule in SEGMENT_ACTIONS}


def feature_role(feature: str) -> str | None:
    name = feature.lower()
    return next((role for role, words in ROLE_WORDS if any(w in name for w in words)), None)


def segment_action(centroid_z: dict[str, float], threshold: float = 0.5) -> tuple[str, str]:
    """The recommended action for a segment from its standardised centroid ({feature: z}):
    features are grouped by :data:`ROLE_WORDS`, each role scored by its mean z, and the first
    :data:`SEGMENT_ACTIONS` rule that holds gives (action, why)."""
    scores = {}
    for role, _ in ROLE_WORDS:
        zs = [z for f, z in centroid_z.items() if feature_role(f) == role]
        scores[role] = float(np.mean(zs)) if zs else 0.0
    args = (scores["value"], scores["engagement"], scores["intent"], scores["reach"], threshold)
    return next((action, why) for action, why, rule in SEGMENT_ACTIONS if rule(*args))


# --- RFM ---------------------------------------------------------------------------------------

RFM_RULES: list[tuple[str, str, Callable[[Column, Column, Column], Column]]] = [
    (NP_("rfm", "champions"), "R >= 4 and F >= 4 and M >= 4",
     lambda r, f, m: (r >= 4) & (f >= 4) & (m >= 4)),
    (NP_("rfm", "cannot_lose"), "R <= 2 and F >= 4 and M >= 4",
     lambda r, f, m: (r <= 2) & (f >= 4) & (m >= 4)),
    (NP_("rfm", "loyal"), "R >= 3 and F >= 4", lambda r, f, m: (r >= 3) & (f >= 4)),
    (NP_("rfm", "at_risk"), "R <= 2 and F >= 3", lambda r, f, m: (r <= 2) & (f >= 3)),
    (NP_("rfm", "new"), "R = 5 and F = 1", lambda r, f, m: (r == 5) & (f == 1)),
    (NP_("rfm", "potential_loyalist"), "(R >= 4 and F <= 3) or (R = 3 and F = 3)",
     lambda r, f, m: ((r >= 4) & (f <= 3)) | ((r == 3) & (f == 3))),
    (NP_("rfm", "hibernating"), "R in (2, 3) and F <= 2", lambda r, f, m: r.isin(2, 3) & (f <= 2)),
    (NP_("rfm", "lost"), "R = 1 and F <= 2", lambda r, f, m: (r == 1) & (f <= 2)),
]


def rfm_segment_col(r: Column, f: Column, m: Column) -> Column:
    """The RFM segment of scores r, f, m (1-5) by RFM_RULES, first match wins (a built-in
    ``when`` chain); null when a score is null."""
    expr = None
    for name, _, rule in RFM_RULES:
        cond = rule(r, f, m)
        expr = F.when(cond, F.lit(name)) if expr is None else expr.when(cond, F.lit(name))
    return F.when(r.isNull() | f.isNull() | m.isNull(), F.lit(None).cast("string")) \
        .otherwise(expr)


def rfm_scores(df: DataFrame, recency_col: str = "recency_days", frequency_col: str = "frequency",
               monetary_col: str = "monetary", relative_error: float = 0.001) -> DataFrame:
    """Add r_score, f_score, m_score (1-5) from the quintile edges of each column (approximate
    quantiles, nulls ignored). f/m: 1 + number of edges the value exceeds; r (days since the
    last purchase, smaller is better): 5 - number of edges the value exceeds. Heavily tied
    columns (many single purchases) have repeated edges and so fewer distinct scores."""
    cols = [recency_col, frequency_col, monetary_col]
    require_columns(df, cols, "rfm_scores")
    edges = df.approxQuantile(cols, [0.2, 0.4, 0.6, 0.8], relative_error)

    def above(col: str, cuts: list[float]) -> Column:
        return sum(((F.col(col) > F.lit(float(e))).cast("int") for e in cuts), F.lit(0))

    def scored(col: str, cuts: list[float], value: Column) -> Column:
        if not cuts:  # the column is all null
            return F.lit(None).cast("int")
        return F.when(F.col(col).isNull(), F.lit(None)).otherwise(value).cast("int")

    return df.withColumns({
        "r_score": scored(recency_col, edges[0], 5 - above(recency_col, edges[0])),
        "f_score": scored(frequency_col, edges[1], 1 + above(frequency_col, edges[1])),
        "m_score": scored(monetary_col, edges[2], 1 + above(monetary_col, edges[2])),
    })


def rfm_segments(df: DataFrame, recency_col: str = "recency_days",
                 frequency_col: str = "frequency", monetary_col: str = "monetary",
                 out_col: str = "rfm_segment", relative_error: float = 0.001) -> DataFrame:
    """:func:`rfm_scores` plus ``out_col`` by the rule table in the module docstring."""
    scored = rfm_scores(df, recency_col, frequency_col, monetary_col, relative_error)
    return scored.withColumn(out_col, rfm_segment_col(F.col("r_score"), F.col("f_score"),
                                                      F.col("m_score")))
