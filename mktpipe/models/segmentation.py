"""Behavioural segments (k-means on standardised features, k chosen by silhouette) and classic
RFM segments from quintile scores.

Behavioural segments: numeric/boolean features are cast to double, optionally compressed with
sign(x) log(1 + |x|) (engagement counts are heavy-tailed; k-means on raw counts isolates a few
outliers), imputed with the median, standardised (mean 0, std 1), then k-means (or bisecting
k-means) runs for every k in [k_min, k_max]; the k with the highest silhouette (Spark's
``ClusteringEvaluator``, squared Euclidean) wins, ties to the smaller k. Each segment is named
from its standardised centroid: the ``name_features`` features with the largest |z| of at least
``name_threshold``, as "high <feature>" / "low <feature>" ("average" when none stands out), the
largest segments named first; a name already taken gets more features, then " #<id>". Names
depend only on the centroids, so they stay stable across refits that find the same profiles.

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
from collections.abc import Callable

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import BisectingKMeans, KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import Imputer, SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T_

from mktpipe.model_settings import SegmentationSettings, resolve, to_dict
from mktpipe.models.artifacts import SavedPipelineModel, json_safe
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


def _clusterer(s: SegmentationSettings, k: int):
    cls = KMeans if s.algorithm == "kmeans" else BisectingKMeans
    return cls(featuresCol=_SCALED, predictionCol=_PRED, k=k, seed=s.seed, maxIter=s.max_iter)


def fit(df: DataFrame, feature_cols=None, config=None) -> SegmentationModel:
    """Fit behavioural segments on ``df`` (one row per user). ``feature_cols`` None = every
    numeric/boolean non-id column. Metrics: silhouette per k and the chosen k."""
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
    scaled = prep.transform(df).select(_SCALED).cache()  # every k reads it
    try:
        n = scaled.count()
        if n < s.k_max + 1:
            raise ValueError(f"segmentation: {n} rows cannot support k up to {s.k_max}")
        search = scaled.sample(fraction=SEARCH_SAMPLE_ROWS / n, seed=s.seed) \
            if n > SEARCH_SAMPLE_ROWS else scaled
        evaluator = ClusteringEvaluator(featuresCol=_SCALED, predictionCol=_PRED)
        silhouettes = {}
        for k in range(s.k_min, s.k_max + 1):
            fitted = drop_training_summary(_clusterer(s, k).fit(search))
            silhouettes[k] = evaluator.evaluate(fitted.transform(search))
            log.info("segmentation k=%d silhouette=%.4f", k, silhouettes[k])
        best_k = max(silhouettes, key=lambda k: (silhouettes[k], -k))
        clusterer = drop_training_summary(_clusterer(s, best_k).fit(scaled))
    finally:
        scaled.unpersist()
    centers = np.array(clusterer.clusterCenters())
    sizes = _sizes(clusterer, prep.transform(df), best_k)
    names = segment_names(centers, cols, sizes, s.name_features, s.name_threshold)
    labels = ", ".join("'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"
                       for name in names)
    naming = SQLTransformer(statement=(
        f"SELECT *, CAST(`{_PRED}` AS INT) AS {SEGMENT_ID}, "
        f"element_at(array({labels}), CAST(`{_PRED}` AS INT) + 1) AS {SEGMENT_NAME} "
        "FROM __THIS__"))
    segments = [{"id": i, "name": names[i], "size": int(sizes[i]),
                 "centroid_z": dict(zip(cols, centers[i].tolist()))} for i in range(best_k)]
    metrics = {"k": best_k, "silhouette": silhouettes[best_k],
               "silhouette_by_k": {str(k): v for k, v in silhouettes.items()}}
    log.info("segmentation: k=%d (silhouette %.4f), segments %s", best_k,
             silhouettes[best_k], names)
    return SegmentationModel(PipelineModel(stages=[*prep.stages, clusterer, naming]), json_safe({
        "feature_cols": cols, "settings": to_dict(s), "segments": segments,
        "metrics": metrics}))


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


# --- RFM ---------------------------------------------------------------------------------------

RFM_RULES: list[tuple[str, str, Callable[[Column, Column, Column], Column]]] = [
    ("champions", "R >= 4 and F >= 4 and M >= 4",
     lambda r, f, m: (r >= 4) & (f >= 4) & (m >= 4)),
    ("cannot_lose", "R <= 2 and F >= 4 and M >= 4",
     lambda r, f, m: (r <= 2) & (f >= 4) & (m >= 4)),
    ("loyal", "R >= 3 and F >= 4", lambda r, f, m: (r >= 3) & (f >= 4)),
    ("at_risk", "R <= 2 and F >= 3", lambda r, f, m: (r <= 2) & (f >= 3)),
    ("new", "R = 5 and F = 1", lambda r, f, m: (r == 5) & (f == 1)),
    ("potential_loyalist", "(R >= 4 and F <= 3) or (R = 3 and F = 3)",
     lambda r, f, m: ((r >= 4) & (f <= 3)) | ((r == 3) & (f == 3))),
    ("hibernating", "R in (2, 3) and F <= 2", lambda r, f, m: r.isin(2, 3) & (f <= 2)),
    ("lost", "R = 1 and F <= 2", lambda r, f, m: (r == 1) & (f <= 2)),
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
