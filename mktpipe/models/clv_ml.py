"""ML customer lifetime value: XGBoost regression of spend in the next N days (default 90) on a
feature table, and the glue to compare it with the probabilistic BG/NBD x Gamma-Gamma model.

* :func:`fit` -> :class:`ClvModel` (``predict`` adds ``clv_prediction``, clipped at 0), with
  validation metrics from :func:`~mktpipe.models.evaluation.regression_metrics` (RMSE, MAE,
  R², MAPE over spenders only), the same preprocessing and time-based validation as churn.
* :func:`rfm_summary`: lifetimes-style frequency / recency / T / monetary_value per customer
  from orders (user_id, ts, amount) up to a cut-off date, in Spark.
* :func:`spend_in_horizon`: the label (spend in the days after the cut-off).
* :func:`bgnbd_predictions`: fit BG/NBD + Gamma-Gamma (:mod:`.clv`) on the summary and predict
  each customer's spend over the horizon.
* :func:`compare_clv`: both models' holdout metrics on their common customers and the winner.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.feature import SQLTransformer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T_
from xgboost.spark import SparkXGBRegressor

from mktpipe.model_settings import RegressorSettings, resolve, to_dict
from mktpipe.models import clv
from mktpipe.models import tuning as tuning_mod
from mktpipe.models.artifacts import SavedPipelineModel, json_safe
from mktpipe.models.evaluation import regression_metrics
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
        tuning_mod.validate_grid(SparkXGBRegressor(), s.tuning, s.max_grid_size)
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
                                     s.tuning_train_ratio, s.seed)
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
                                           "xgb": metrics})
    log.info("clv regressor: validation %s", metrics)
    return model


# --- probabilistic side -----------------------------------------------------------------------

def _date_lit(cutoff) -> F.Column:
    if isinstance(cutoff, str):
        cutoff = dt.date.fromisoformat(cutoff)
    if isinstance(cutoff, dt.datetime):
        cutoff = cutoff.date()
    return F.lit(cutoff).cast("date")


def rfm_summary(orders: DataFrame, cutoff, period_days: float = 1.0, user_col: str = "user_id",
                ts_col: str = "ts", amount_col: str = "amount") -> DataFrame:
    """Per customer with an order on or before ``cutoff`` (a date; orders are bucketed by UTC
    calendar day, as lifetimes' ``summary_data_from_transaction_data(freq="D")``):

        frequency       repeat purchase days: distinct order days - 1
        recency         days between the first and the last order day / ``period_days``
        T               days from the first order day to ``cutoff`` / ``period_days``
        monetary_value  mean spend per repeat day (the first day excluded); 0 when frequency 0

    Returns user_col, frequency (long), recency, T, monetary_value (double). Rows with a null
    user or timestamp are ignored; null amounts count as 0 spend.
    """
    if period_days <= 0:
        raise ValueError(f"rfm_summary: period_days must be > 0, got {period_days}")
    require_columns(orders, [user_col, ts_col, amount_col], "rfm_summary")
    day, cut = F.to_date(F.col(ts_col)), _date_lit(cutoff)
    daily = (orders.filter(F.col(user_col).isNotNull() & (day <= cut))
             .groupBy(F.col(user_col), day.alias("_day"))
             .agg(F.coalesce(F.sum(F.col(amount_col).cast("double")), F.lit(0.0)).alias("_amt")))
    per_user = daily.groupBy(user_col).agg(
        F.min("_day").alias("_first"), F.max("_day").alias("_last"),
        F.count(F.lit(1)).alias("_days"), F.sum("_amt").alias("_total"),
        F.min_by("_amt", "_day").alias("_first_amt"))
    frequency = F.col("_days") - 1
    return per_user.select(
        F.col(user_col), frequency.cast("long").alias(clv.FREQUENCY),
        (F.datediff("_last", "_first") / F.lit(float(period_days))).alias(clv.RECENCY),
        (F.datediff(cut, "_first") / F.lit(float(period_days))).alias(clv.AGE),
        F.when(frequency > 0, (F.col("_total") - F.col("_first_amt")) / frequency)
        .otherwise(F.lit(0.0)).alias(clv.MONETARY_VALUE))


def spend_in_horizon(orders: DataFrame, cutoff, horizon_days: int = 90,
                     user_col: str = "user_id", ts_col: str = "ts", amount_col: str = "amount",
                     output_col: str = "spend_next") -> DataFrame:
    """Spend per customer on the ``horizon_days`` days after ``cutoff`` (cutoff excluded);
    only customers with an order in that window appear (left-join and fill 0 for the rest)."""
    day, cut = F.to_date(F.col(ts_col)), _date_lit(cutoff)
    in_window = (day > cut) & (day <= F.date_add(cut, int(horizon_days)))
    return (orders.filter(F.col(user_col).isNotNull() & in_window).groupBy(user_col)
            .agg(F.coalesce(F.sum(F.col(amount_col).cast("double")), F.lit(0.0))
                 .alias(output_col)))


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
    bg = clv.fit_bgnbd(summary, penalizer=penalizer)
    gg = clv.fit_gamma_gamma(summary, penalizer=penalizer, round_monetary=2)
    return clv.customer_lifetime_value(bg, gg, summary, horizon_periods=1,
                                       discount_rate_per_period=0.0,
                                       period_length=horizon_days / period_days,
                                       output_col=output_col)


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
