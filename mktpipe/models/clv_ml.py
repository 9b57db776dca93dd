"""ML customer lifetime value: XGBoost regression of spend in the next N days (default 90) on a
feature table, and the glue to compare it with the probabilistic BG/NBD x Gamma-Gamma model.

* :func:`fit` -> :class:`ClvModel` (``predict`` adds ``clv_prediction``, clipped at 0), with
  validation metrics from :func:`~mktpipe.models.evaluation.regression_metrics` (RMSE, MAE,
  R², MAPE over spenders only), the same preprocessing and time-based validation as churn.
* :func:`rfm_summary` (defined in mktpipe.features.customer, which builds
  gold.purchase_summary with it): lifetimes-style frequency / recency / T / monetary_value per
  customer from orders (user_id, ts, amount) up to a cut-off date, in Spark.
* :func:`spend_in_horizon`: the label (spend in the days after the cut-off).
* :func:`fit_probabilistic` -> :class:`ProbabilisticClvModel`: BG/NBD + Gamma-Gamma
  (:mod:`.clv`) fitted on a summary, saved and registered like the other models;
  :func:`bgnbd_predictions` fits on orders and predicts each customer's spend over the horizon.
* :func:`compare_clv`: both models' holdout metrics on their common customers and the winner.
"""

from __future__ import annotations

import logging

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.feature import SQLTransformer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T_
from xgboost.spark import SparkXGBRegressor

from mktpipe.features.customer import date_lit, rfm_summary  # noqa: F401  (re-exported)
from mktpipe.model_settings import RegressorSettings, resolve, to_dict
from mktpipe.models import clv
from mktpipe.models import tuning as tuning_mod
from mktpipe.models.artifacts import (
    FORMAT_VERSION,
    METADATA_FILE,
    SavedPipelineModel,
    join,
    json_safe,
    qualified_name,
    read_json,
    write_json,
)
from mktpipe.models.evaluation import regression_metrics
from mktpipe.models.gamma_gamma import population_mean_spend
from mktpipe.models.preprocess import (
    INTERNAL,
    LABEL,
    TREE_FEATURES,
    drop_training_summary,
    infer_feature_columns,
    preprocessing_stages,
    profile_features,
    require_columns,
    split_train_validation,
)

log = logging.getLogger(__name__)

_PRED = INTERNAL + "clv_pred"
PROBABILISTIC_CLV = "clv_bgnbd"  # the registry name of a ProbabilisticClvModel
LOWER_IS_BETTER = {"rmse", "mae", "mape"}


class ClvModel(SavedPipelineModel):
    """Fitted spend regressor: ``predict(df)`` adds the output column (default clv_prediction)."""

    @property
    def output_col(self) -> str:
        return self.metadata["output_col"]

    def predict(self, df: DataFrame) -> DataFrame:
        require_columns(df, self.feature_cols, "ClvModel.predict")
        base = df.drop(self.output_col) if self.output_col in df.columns else df
        return (self.pipeline_model.transform(base)
                .select(*[F.col(c) for c in base.columns], F.col(self.output_col)))


def settings_from(config=None) -> RegressorSettings:
    return resolve(config, "clv", RegressorSettings)


def _check_label(df: DataFrame, label_col: str, what: str) -> None:
    require_columns(df, [label_col], what)
    if not isinstance(df.schema[label_col].dataType, T_.NumericType):
        raise ValueError(f"{what}: label {label_col!r} must be numeric")
    y = F.col(label_col).cast("double")
    bad = df.filter(y.isNull() | F.isnan(y)).count()
    if bad:
        raise ValueError(f"{what}: {bad} rows with null or NaN {label_col!r}; drop or fill them")


def fit(df: DataFrame, label_col: str, feature_cols=None, config=None,
        validation_df: DataFrame | None = None, tune: bool = False) -> ClvModel:
    """Fit SparkXGBRegressor on ``df`` to predict ``label_col`` (spend in the horizon).
    Arguments, feature inference and validation as :func:`mktpipe.models.churn.fit`;
    ``tune=True`` searches ``config``'s ``tuning`` grid (RMSE) first."""
    s = settings_from(config)
    if tune and not s.tuning:
        raise ValueError("clv fit: tune=True but settings.tuning has no grid")
    if tune:  # fail before any Spark job
        tuning_mod.validate_space(SparkXGBRegressor(), s.tuning, s.search, s.max_grid_size)
    _check_label(df, label_col, "clv fit")
    if feature_cols is None:
        feature_cols = infer_feature_columns(df, exclude=(label_col, s.date_col))
    feature_cols = list(feature_cols)
    if label_col in feature_cols:
        raise ValueError(f"clv fit: the label {label_col!r} is among the feature columns")
    train, valid, split = split_train_validation(df, validation_df, s.date_col,
                                                 s.validation_fraction, s.seed)
    spec = profile_features(train, feature_cols, s.max_categories)
    train = train.withColumn(LABEL, F.col(label_col).cast("double"))
    prep = Pipeline(stages=preprocessing_stages(spec, tree=True)).fit(train)
    params = {"random_state": s.seed, **dict(s.xgb_params)}
    unknown = [k for k in params if not SparkXGBRegressor().hasParam(k)]
    if unknown:
        raise ValueError(f"xgb_params: unknown SparkXGBRegressor parameters {unknown}")
    estimator = SparkXGBRegressor(features_col=TREE_FEATURES, label_col=LABEL,
                                  prediction_col=_PRED, objective=s.objective,
                                  num_workers=s.num_workers, verbose=False, **params)
    train_t = prep.transform(train).cache()
    tuned = {}
    try:
        if tune:
            evaluator = RegressionEvaluator(labelCol=LABEL, predictionCol=_PRED,
                                            metricName="rmse")
            result = tuning_mod.tune(estimator, s.tuning, train_t, evaluator, s.max_grid_size,
                                     s.tuning_train_ratio, s.seed, s.search, s.search_trials,
                                     s.search_timeout_s, s.search_validation, s.search_folds,
                                     s.date_col)
            estimator = tuning_mod.apply_params(estimator, result.best_params)
            tuned = {"xgb": result.to_dict()}
        regressor = drop_training_summary(estimator.fit(train_t))
    finally:
        train_t.unpersist()
    clip = SQLTransformer(statement=f"SELECT *, GREATEST(`{_PRED}`, 0.0) AS `{s.output_col}` "
                                    "FROM __THIS__")
    model = ClvModel(PipelineModel(stages=[*prep.stages, regressor, clip]), {
        "label_col": label_col, "feature_cols": spec.columns, "feature_spec": spec.to_dict(),
        "output_col": s.output_col, "settings": to_dict(s), "tuning": tuned, "split": split})
    _check_label(valid, label_col, "clv fit (validation set)")
    metrics = regression_metrics(model.predict(valid), label_col, s.output_col)
    model.metadata["metrics"] = json_safe({"primary_metric": "rmse", "split": split,
                                           "xgb": metrics, **({"search": tuned} if tuned
                                                              else {})})
    log.info("clv regressor: validation %s", metrics)
    return model


# --- probabilistic side -----------------------------------------------------------------------

def spend_in_horizon(orders: DataFrame, cutoff, horizon_days: int = 90,
                     user_col: str = "user_id", ts_col: str = "ts", amount_col: str = "amount",
                     output_col: str = "spend_next") -> DataFrame:
    """Spend per customer on the ``horizon_days`` days after ``cutoff`` (cutoff excluded);
    only customers with an order in that window appear (left-join and fill 0 for the rest)."""
    day, cut = F.to_date(F.col(ts_col)), date_lit(cutoff)
    in_window = (day > cut) & (day <= F.date_add(cut, int(horizon_days)))
    return (orders.filter(F.col(user_col).isNotNull() & in_window).groupBy(user_col)
            .agg(F.coalesce(F.sum(F.col(amount_col).cast("double")), F.lit(0.0))
                 .alias(output_col)))


class ProbabilisticClvModel:
    """BG/NBD x Gamma-Gamma parameters fitted on a purchase summary (lifetimes' frequency,
    recency, T, monetary_value; gold.purchase_summary). ``predict(summary)`` adds the expected
    spend over ``horizon_days`` periods (undiscounted expected repeat purchases times expected
    spend per purchase). Saved as one JSON file (``artifacts.METADATA_FILE``): loading needs
    no Spark ML reader, and the registry stores it like any other model."""

    def __init__(self, bgnbd_params: clv.BgNbdParams, gamma_gamma_params: clv.GammaGammaParams,
                 metadata: dict) -> None:
        self.bgnbd_params = bgnbd_params
        self.gamma_gamma_params = gamma_gamma_params
        self.metadata = json_safe(metadata)

    @property
    def metrics(self) -> dict:
        return self.metadata.get("metrics", {})

    @property
    def output_col(self) -> str:
        return self.metadata["output_col"]

    @property
    def horizon_days(self) -> int:
        return int(self.metadata["horizon_days"])

    @property
    def feature_cols(self) -> list[str]:
        return [*clv.RFM_COLUMNS, clv.MONETARY_VALUE]

    def params(self) -> dict:
        return {"bgnbd": self.bgnbd_params.to_dict(),
                "gamma_gamma": self.gamma_gamma_params.to_dict(),
                "horizon_days": self.horizon_days,
                "period_days": self.metadata["period_days"]}

    def predict(self, summary: DataFrame) -> DataFrame:
        """``summary`` (frequency, recency, T in days, monetary_value) + ``output_col``."""
        period = float(self.metadata["period_days"])
        return clv.customer_lifetime_value(
            self.bgnbd_params, self.gamma_gamma_params, summary, horizon_periods=1,
            discount_rate_per_period=0.0, period_length=self.horizon_days / period,
            output_col=self.output_col)

    def save(self, path: str) -> None:
        write_json(join(path, METADATA_FILE), {
            **self.metadata, "bgnbd": self.bgnbd_params.to_dict(),
            "gamma_gamma": self.gamma_gamma_params.to_dict(),
            "class": qualified_name(type(self)), "format_version": FORMAT_VERSION})

    @classmethod
    def load(cls, path: str) -> ProbabilisticClvModel:
        meta = read_json(join(path, METADATA_FILE))
        bg, gg = meta.pop("bgnbd"), meta.pop("gamma_gamma")
        return cls(clv.BgNbdParams(**bg), clv.GammaGammaParams(**gg), meta)


def fit_probabilistic(summary: DataFrame, horizon_days: int = 90, period_days: float = 1.0,
                      penalizer: float = 0.0, output_col: str = "clv_bgnbd",
                      **metadata) -> ProbabilisticClvModel:
    """Fit BG/NBD and Gamma-Gamma on ``summary`` (:func:`rfm_summary` columns, times in units of
    ``period_days``); only small aggregates reach the driver. ``metadata``: kept with the model
    (e.g. the snapshot it was fitted on). Raises ValueError when a model cannot be fitted (no
    repeat buyer, a population mean spend that does not exist)."""
    bg = clv.fit_bgnbd(summary, penalizer=penalizer)
    gg = clv.fit_gamma_gamma(summary, penalizer=penalizer, round_monetary=2)
    population_mean_spend(gg)  # q <= 1: no expected spend; fail at fit time
    return ProbabilisticClvModel(bg, gg, {**metadata, "horizon_days": int(horizon_days),
                                          "period_days": float(period_days),
                                          "penalizer": float(penalizer),
                                          "output_col": output_col})


def bgnbd_predictions(orders: DataFrame, cutoff, horizon_days: int = 90,
                      period_days: float = 1.0, penalizer: float = 0.0,
                      output_col: str = "clv_bgnbd", **columns) -> DataFrame:
    """Fit BG/NBD and Gamma-Gamma on :func:`rfm_summary` at ``cutoff`` and add ``output_col``:
    expected spend in the next ``horizon_days`` (undiscounted expected repeat purchases times
    expected spend per purchase), plus the summary columns. ``columns``: user_col, ts_col,
    amount_col as for :func:`rfm_summary`."""
    # not cached: the two fits bring only small aggregates to the driver, and a cache here
    # would outlive this function with no one to unpersist it
    summary = rfm_summary(orders, cutoff, period_days, **columns)
    model = fit_probabilistic(summary, horizon_days, period_days, penalizer, output_col)
    return model.predict(summary)


def compare_clv(ml_pred_df: DataFrame, bgnbd_pred_df: DataFrame, label_col: str,
                ml_col: str = "clv_prediction", bgnbd_col: str = "clv_bgnbd",
                key: str = "user_id", metric: str = "rmse") -> dict:
    """Holdout metrics of both models on the customers they share (inner join on ``key``;
    ``label_col`` read from ``ml_pred_df``), and which wins on ``metric`` by how much.

    Returns {"n", "metric", "ml": {...}, "bgnbd": {...}, "winner": "ml"|"bgnbd"|"tie",
    "margin": |difference|, "relative_margin": margin / the loser's value}.
    """
    require_columns(ml_pred_df, [key, label_col, ml_col], "compare_clv (ml predictions)")
    require_columns(bgnbd_pred_df, [key, bgnbd_col], "compare_clv (bgnbd predictions)")
    joined = (ml_pred_df.select(key, label_col, ml_col)
              .join(bgnbd_pred_df.select(key, bgnbd_col), on=key, how="inner").cache())
    try:
        ml = regression_metrics(joined, label_col, ml_col)
        prob = regression_metrics(joined, label_col, bgnbd_col)
    finally:
        joined.unpersist()
    if metric not in ml:
        raise ValueError(f"compare_clv: unknown metric {metric!r}; one of {sorted(ml)}")
    a, b = ml[metric], prob[metric]
    lower = metric in LOWER_IS_BETTER
    if a == b:
        winner, loser = "tie", a
    elif (a < b) == lower:
        winner, loser = "ml", b
    else:
        winner, loser = "bgnbd", a
    margin = abs(a - b)
    return json_safe({"n": ml["n"], "metric": metric, "ml": ml, "bgnbd": prob,
                      "winner": winner, "margin": margin,
                      "relative_margin": margin / abs(loser) if loser else None})
