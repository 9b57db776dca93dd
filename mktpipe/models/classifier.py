"""A generic binary classifier on any feature table: XGBoost, logistic regression, random
forest and/or an MLP, their mean and a stacked ensemble, optional calibration, risk tiers,
time-based validation metrics, save/load.

Churn (:mod:`.churn`) and purchase intent (:mod:`.intent`) are thin settings over this module.
The fitted model is one Spark ML ``PipelineModel``: preprocessing (see :mod:`.preprocess`), the
fitted ``SparkXGBClassifier`` / ``LogisticRegression`` (standardised internally:
``standardization=True``, coefficients reported on the original scale), a ``VectorElement``
taking P(class 1) out of each probability vector, and a serving stage: the mean, one member,
or the stacked ensemble (a logistic regression over the members' logits, fitted on validation
and measured out of fold; ``settings.stack``), as ``settings.select`` decides; then, when
``settings.calibration`` asks and it helps out of fold, a Platt or isotonic calibrator
(:mod:`.calibration`). Tiers are applied after it by :func:`assign_tier`.

Class imbalance: with ``class_weight="balanced"`` XGBoost gets ``scale_pos_weight = neg / pos``
and logistic regression a weight column (``n / (2 n_class)``, sklearn's "balanced"). Both raise
predicted probabilities of the rare class, so the calibration table in the metrics matters when
reading tiers; ``class_weight="none"`` keeps probabilities calibrated.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import (
    LogisticRegression,
    MultilayerPerceptronClassifier,
    RandomForestClassifier,
)
from pyspark.ml.feature import SQLTransformer
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T_
from xgboost.spark import SparkXGBClassifier

from mktpipe.model_settings import ClassifierSettings, normalize_tiers, to_dict
from mktpipe.models import autofeatures
from mktpipe.models import calibration as cal
from mktpipe.models import tuning as tuning_mod
from mktpipe.models.artifacts import SavedPipelineModel, json_safe
from mktpipe.models.evaluation import score_report
from mktpipe.models.preprocess import (
    INTERNAL,
    LABEL,
    LINEAR_FEATURES,
    SCALED_FEATURES,
    TREE_FEATURES,
    WEIGHT,
    VectorElement,
    drop_training_summary,
    infer_feature_columns,
    preprocessing_stages,
    profile_features,
    require_columns,
    split_train_validation,
)

log = logging.getLogger(__name__)

PRIMARY_METRIC = "average_precision"
PR_CURVE_THRESHOLDS = [i / 20 for i in range(21)]  # the PR curve stored with the metrics
PR_CURVE_QUANTILES = [i / 20 for i in range(1, 20)] + [0.99]  # ... plus the score's own
STACKED_OOF = "_stacked_oof"  # out-of-fold columns of the validation frame
SERVE = "_serve"
_CALIBRATED = {"platt": "_platt_oof", "isotonic": "_isotonic_oof"}
STACK_REG = 1e-3  # the stacker's L2 penalty: the members' logits are strongly correlated
_FEATURES = {"xgb": TREE_FEATURES, "lr": LINEAR_FEATURES, "rf": TREE_FEATURES,
             "mlp": SCALED_FEATURES}


def assign_tier(df: DataFrame, prob_col: str, tiers, out_col: str) -> DataFrame:
    """Add ``out_col``: the name of the first tier (highest bound first) with ``prob_col >=``
    its lower bound; null probability -> null tier. ``tiers``: ``{name: lower_bound}`` or
    pairs, validated by :func:`~mktpipe.model_settings.normalize_tiers` (ValueError)."""
    return df.withColumn(out_col, tier_col(F.col(prob_col), tiers))


def tier_col(prob: Column, tiers) -> Column:
    """The tier name of ``prob`` as a Column (a built-in ``when`` chain)."""
    pairs = normalize_tiers(tiers)
    expr = None
    for name, bound in pairs[:-1]:
        cond = prob >= F.lit(bound)
        expr = F.when(cond, F.lit(name)) if expr is None else expr.when(cond, F.lit(name))
    last = F.lit(pairs[-1][0])
    expr = last if expr is None else expr.otherwise(last)
    return F.when(prob.isNull(), F.lit(None).cast("string")).otherwise(expr)


class BinaryClassifierModel(SavedPipelineModel):
    """A fitted binary classifier. ``predict(df)`` adds ``<prefix>_probability`` (mean of the
    models), ``<prefix>_probability_<model>`` per model and ``<prefix>_tier``."""

    @property
    def prefix(self) -> str:
        return self.metadata["output_prefix"]

    @property
    def models(self) -> list[str]:
        return list(self.metadata["models"])

    @property
    def label_col(self) -> str:
        return self.metadata["label_col"]

    @property
    def tiers(self) -> tuple[tuple[str, float], ...]:
        return normalize_tiers(self.metadata["tiers"])

    @property
    def prob_col(self) -> str:
        return f"{self.prefix}_probability"

    @property
    def tier_col(self) -> str:
        return f"{self.prefix}_tier"

    def model_prob_col(self, kind: str) -> str:
        return f"{self.prefix}_probability_{kind}"

    @property
    def output_cols(self) -> list[str]:
        return [self.prob_col, *[self.model_prob_col(k) for k in self.models], self.tier_col]

    def predict(self, df: DataFrame) -> DataFrame:
        """``df`` with the probability and tier columns added (existing ones are replaced)."""
        require_columns(df, self.feature_cols, f"{type(self).__name__}.predict")
        base = df.drop(*[c for c in self.output_cols if c in df.columns])
        scored = self.pipeline_model.transform(base)
        probs = [self.prob_col, *[self.model_prob_col(k) for k in self.models]]
        return (scored.select(*[F.col(c) for c in base.columns], *probs)
                .transform(assign_tier, self.prob_col, self.tiers, self.tier_col))


def _check_params(estimator, params: dict, what: str) -> None:
    unknown = [k for k in params if not estimator.hasParam(k)]
    if unknown:
        raise ValueError(f"{what}: unknown {type(estimator).__name__} parameters {unknown}")


def _check_label(df: DataFrame, label_col: str, what: str) -> dict:
    """Counts of 0 and 1 labels; ValueError for a missing, non-numeric or non-0/1 label."""
    require_columns(df, [label_col], what)
    dtype = df.schema[label_col].dataType
    if not isinstance(dtype, T_.NumericType | T_.BooleanType):
        raise ValueError(f"{what}: label {label_col!r} must be 0/1 numeric or boolean, "
                         f"got {dtype.simpleString()}")
    y = F.col(label_col).cast("double")
    row = df.agg(F.count(F.when(y == 1, 1)).alias("pos"), F.count(F.when(y == 0, 1)).alias("neg"),
                 F.count(F.when(y.isNull() | F.isnan(y) | ~y.isin(0.0, 1.0), 1)).alias("bad")
                 ).first()
    if row["bad"]:
        raise ValueError(f"{what}: {row['bad']} rows with {label_col!r} null or not 0/1; "
                         "drop or fix them")
    return {"pos": row["pos"], "neg": row["neg"]}


def _estimator(kind: str, settings: ClassifierSettings, pos_weight: float,
               n_inputs: int = 1):
    """The unfitted model of ``kind``; ``n_inputs``: the MLP's input layer (the size of
    SCALED_FEATURES)."""
    prob, raw, pred = (f"{INTERNAL}{kind}_{s}" for s in ("prob", "raw", "pred"))
    cols = {"featuresCol": _FEATURES[kind], "labelCol": LABEL, "probabilityCol": prob,
            "rawPredictionCol": raw, "predictionCol": pred}
    if kind == "rf":
        rf = RandomForestClassifier(seed=settings.seed, **cols)
        _check_params(rf, settings.rf_params, "rf_params")
        rf = rf.setParams(**settings.rf_params)
        return rf.setWeightCol(WEIGHT) if settings.class_weight == "balanced" else rf
    if kind == "mlp":  # no weightCol in MLlib's perceptron: class_weight does not apply
        params = dict(settings.mlp_params)
        hidden = [int(h) for h in params.pop("hidden_layers", [16, 8])]
        mlp = MultilayerPerceptronClassifier(seed=settings.seed,
                                             layers=[int(n_inputs), *hidden, 2], **cols)
        _check_params(mlp, params, "mlp_params")
        return mlp.setParams(**params)
    if kind == "xgb":
        params = dict(settings.xgb_params)
        unknown = [k for k in params if not SparkXGBClassifier().hasParam(k)]
        if unknown:
            raise ValueError(f"xgb_params: unknown SparkXGBClassifier parameters {unknown}")
        params.setdefault("random_state", settings.seed)
        if settings.class_weight == "balanced":
            params["scale_pos_weight"] = pos_weight
        return SparkXGBClassifier(features_col=_FEATURES[kind], label_col=LABEL,
                                  probability_col=prob, raw_prediction_col=raw,
                                  prediction_col=pred, num_workers=settings.num_workers,
                                  verbose=False, **params)
    lr = LogisticRegression(featuresCol=_FEATURES[kind], labelCol=LABEL, probabilityCol=prob,
                            rawPredictionCol=raw, predictionCol=pred, standardization=True)
    unknown = [k for k in settings.lr_params if not lr.hasParam(k)]
    if unknown:
        raise ValueError(f"lr_params: unknown LogisticRegression parameters {unknown}")
    lr = lr.setParams(**settings.lr_params)
    return lr.setWeightCol(WEIGHT) if settings.class_weight == "balanced" else lr


def fit_binary_classifier(df: DataFrame, label_col: str, feature_cols=None,
                          settings: ClassifierSettings | None = None,
                          validation_df: DataFrame | None = None, tune: bool = False,
                          output_prefix: str = "score",
                          model_cls: type[BinaryClassifierModel] = BinaryClassifierModel
                          ) -> BinaryClassifierModel:
    """Fit the configured models on ``df`` and measure them on the validation set.

    ``feature_cols`` None: every usable column but the label, the date column and id-like
    columns (see :func:`~mktpipe.models.preprocess.infer_feature_columns`). Validation as in
    :func:`~mktpipe.models.preprocess.split_train_validation`. ``tune=True`` searches
    ``settings.tuning`` grids first (ValueError when there is none).
    """
    settings = settings or ClassifierSettings()
    what = f"{output_prefix} classifier"
    if tune and not settings.tuning:
        raise ValueError(f"{what}: tune=True but settings.tuning has no grid; give e.g. "
                         "{'xgb': {'max_depth': [3, 5]}}")
    for kind, grid in (settings.tuning.items() if tune else ()):  # fail before any Spark job
        tuning_mod.validate_space(_estimator(kind, settings, 1.0), grid, settings.search,
                                  settings.max_grid_size)
    _check_label(df, label_col, what)
    if feature_cols is None:
        feature_cols = infer_feature_columns(df, exclude=(label_col, settings.date_col))
    feature_cols = list(feature_cols)
    if label_col in feature_cols:
        raise ValueError(f"{what}: the label {label_col!r} is among the feature columns")
    train, valid, split = split_train_validation(
        df, validation_df, settings.date_col, settings.validation_fraction, settings.seed)
    counts = _check_label(train, label_col, f"{what} (training set)")
    if not counts["pos"] or not counts["neg"]:
        raise ValueError(f"{what}: the training set needs both classes, got {counts}")
    n = counts["pos"] + counts["neg"]
    engineered = None
    if settings.auto_features.enabled:  # decided on the training data only
        engineered = autofeatures.engineer(
            train, label_col, feature_cols, settings.auto_features,
            _reference_scorer(settings, label_col), settings.date_col, settings.seed)
        if engineered.columns:  # the model's first stage computes them for what it scores
            train = engineered.apply(train)
    inputs = list(feature_cols)
    feature_cols = [*feature_cols, *(engineered.columns if engineered else [])]
    train, spec, prep = _prepare(train, label_col, feature_cols, counts, settings,
                                 set(settings.models))
    train_t = prep.transform(train).cache()  # every model and the search read it
    try:
        fitted, tuned = _fit_models(train_t, settings, counts["neg"] / counts["pos"], tune)
    finally:
        train_t.unpersist()
    first = [engineered.stage()] if engineered and engineered.columns else []
    pipeline_model = PipelineModel(stages=[*first, *prep.stages, *fitted, *_output_stages(
        output_prefix, settings.models)])
    metadata = {"label_col": label_col,
                "feature_cols": [c for c in spec.columns if c in inputs],
                "feature_spec": spec.to_dict(), "models": list(settings.models),
                "output_prefix": output_prefix, "tiers": dict(settings.tiers),
                "settings": to_dict(settings), "tuning": tuned, "split": split,
                "training_counts": counts}
    model = model_cls(pipeline_model, metadata)
    _validate_and_serve(model, valid, label_col, settings)
    if engineered is not None:  # the registry's metrics and the report's table
        model.metadata["metrics"]["auto_features"] = json_safe(
            {**engineered.report, "expressions": engineered.expressions})
    if tuned:  # the search history, for the registry's metrics and the report's chart
        model.metadata["metrics"]["search"] = json_safe(tuned)
    log.info("%s fitted on %d rows (%s validation): %s", what, n, split["strategy"],
             {k: round(v[PRIMARY_METRIC], 4) for k, v in model.metrics.items()
              if isinstance(v, dict) and v.get(PRIMARY_METRIC) is not None})
    return model


def _prepare(train: DataFrame, label_col: str, feature_cols: list[str], counts: dict,
             settings: ClassifierSettings, kinds: set[str]
             ) -> tuple[DataFrame, Any, PipelineModel]:
    """(``train`` with the label and balanced-weight columns, the feature spec, the fitted
    preprocessing for ``kinds``)."""
    n = counts["pos"] + counts["neg"]
    spec = profile_features(train, feature_cols, settings.max_categories)
    weight = (F.when(F.col(LABEL) == 1, F.lit(n / (2.0 * counts["pos"])))
              .otherwise(F.lit(n / (2.0 * counts["neg"]))))
    train = (train.withColumn(LABEL, F.col(label_col).cast("double"))
             .withColumn(WEIGHT, weight))
    prep = Pipeline(stages=preprocessing_stages(spec, tree=bool(kinds & {"xgb", "rf"}),
                                                linear="lr" in kinds,
                                                scaled="mlp" in kinds)).fit(train)
    return train, spec, prep


def _reference_scorer(settings: ClassifierSettings, label_col: str) -> autofeatures.Scorer:
    """What :func:`~mktpipe.models.autofeatures.engineer` validates terms with: the first
    configured model, preprocessed as in the fit, its PR AUC on the held-out part."""
    kind = settings.models[0]

    def score(train: DataFrame, valid: DataFrame, columns: list[str]) -> float:
        counts = _check_label(train, label_col, "auto features (fitting part)")
        if not counts["pos"] or not counts["neg"]:
            return math.nan
        train, _, prep = _prepare(train, label_col, columns, counts, settings, {kind})
        train_t = prep.transform(train)
        n_inputs = train_t.select(SCALED_FEATURES).first()[0].size if kind == "mlp" else 1
        estimator = _estimator(kind, settings, counts["neg"] / counts["pos"], n_inputs)
        fitted = drop_training_summary(estimator.fit(train_t))
        scored = fitted.transform(prep.transform(
            valid.withColumn(LABEL, F.col(label_col).cast("double"))))
        return float(tuning_mod.pr_auc_evaluator(LABEL, estimator.getProbabilityCol())
                     .evaluate(scored))

    return score


def _fit_models(train_t: DataFrame, settings: ClassifierSettings, pos_weight: float,
                tune: bool) -> tuple[list, dict]:
    """Each configured model fitted on preprocessed ``train_t`` (after its grid search when
    ``tune``); returns the fitted models and the search results per model."""
    fitted, tuned = [], {}
    n_inputs = (train_t.select(SCALED_FEATURES).first()[0].size  # one row
                if "mlp" in settings.models else 1)
    for kind in settings.models:
        estimator = _estimator(kind, settings, pos_weight, n_inputs)
        if tune and kind in settings.tuning:
            result = tuning_mod.tune(
                estimator, settings.tuning[kind], train_t,
                tuning_mod.pr_auc_evaluator(LABEL, estimator.getProbabilityCol()),
                settings.max_grid_size, settings.tuning_train_ratio, settings.seed,
                settings.search, settings.search_trials, settings.search_timeout_s,
                settings.search_validation, settings.search_folds, settings.date_col)
            estimator = tuning_mod.apply_params(estimator, result.best_params)
            tuned[kind] = result.to_dict()
        fitted.append(drop_training_summary(estimator.fit(train_t)))
    return fitted, tuned


def _validate_and_serve(model: BinaryClassifierModel, valid: DataFrame, label_col: str,
                        settings: ClassifierSettings) -> None:
    """Measure every member, the mean and (``settings.stack``) the stacked ensemble on the
    validation set; choose what is served (:func:`_select`); calibrate it when
    ``settings.calibration`` says so and it helps out of fold (:mod:`.calibration`); rebuild
    the pipeline's serving stages to match. Fills ``metrics`` (members, ``ensemble``,
    ``stacked``, ``calibration``, ``served``)."""
    _check_label(valid, label_col, f"{type(model).__name__} validation")
    members = {k: model.model_prob_col(k) for k in model.models}
    stack = settings.stack and len(members) > 1
    scored = cal.with_folds(
        model.predict(valid).select(F.col(label_col).cast("double").alias(LABEL),
                                    model.prob_col, *members.values()),
        settings.seed).cache()  # the score reports, the cross-fits and the final fits read it
    try:
        columns = dict(members)
        if len(members) > 1:
            columns["ensemble"] = model.prob_col
        blend = None
        thin = (cal.thin_folds(scored, LABEL)  # None, or why validation is too small to fit on
                if stack or settings.calibration != "none" else None)
        if thin:
            log.warning("%s classifier: no stacking or calibration: %s", model.prefix, thin)
            stack = False
        scored_eval = scored
        if stack:  # out of fold: each half's stacker fitted on the other half
            try:
                oof = cal.cross_fit_logistic(scored, list(members.values()), LABEL, STACK_REG)
                blend = cal.fit_logistic(scored, list(members.values()), LABEL, STACK_REG)
                scored_eval = scored.withColumn(STACKED_OOF, oof)
                columns["stacked"] = STACKED_OOF
            except ValueError as exc:  # a fit that does not converge to finite values
                log.warning("%s classifier: no stacked ensemble: %s", model.prefix, exc)
                blend = None
        metrics = json_safe(_report(model, scored_eval, columns, settings.calibration_bins))
        if blend is not None:
            metrics["stacked"]["model"] = json_safe(blend.to_dict())
            metrics["stacked"]["measured"] = "out of fold (two-fold cross-fitting on validation)"
        model.metadata["metrics"] = metrics
        chosen, why = _select(model, settings, metrics)
        serve_col = {**columns, "stacked": STACKED_OOF}.get(chosen, model.prob_col)
        calibrator = None
        if settings.calibration != "none" and thin:
            metrics["calibration"] = {"method": "none", "reason": thin}
        elif settings.calibration != "none" and chosen != "stacked":
            try:
                calibrator = _calibrate(model, scored_eval, serve_col, settings)
            except ValueError as exc:  # a fit that does not converge to finite values
                log.warning("%s classifier: not calibrated: %s", model.prefix, exc)
                metrics["calibration"] = {"method": "none", "reason": f"not calibrated: {exc}"}
        elif chosen == "stacked" and settings.calibration != "none":
            metrics["calibration"] = {"method": "none", "reason": (
                "the stacked ensemble is a logistic regression fitted on validation: it is its "
                "own Platt scaling")}
    finally:
        scored.unpersist()
    _serving_stages(model, chosen, blend, calibrator)
    served = dict(metrics[chosen])
    if calibrator is not None:
        served.update(metrics["calibration"]["out_of_fold"][metrics["calibration"]["method"]])
        why += f"; calibrated: {metrics['calibration']['reason']}"
    log.info("%s classifier serves %s: %s", model.prefix, chosen, why)
    model.metadata["served"] = chosen
    metrics["served"] = json_safe({**served, "model": chosen, "reason": why,
                                   "calibration": metrics.get("calibration", {}).get(
                                       "method", "none")})


def _report(model: BinaryClassifierModel, scored: DataFrame, columns: dict[str, str],
            calibration_bins: int) -> dict[str, Any]:
    out: dict[str, Any] = {"primary_metric": PRIMARY_METRIC, "split": model.metadata["split"]}
    report = score_report(scored, LABEL, columns, thresholds=_pr_curve_thresholds,
                          threshold_quantiles=PR_CURVE_QUANTILES,
                          calibration_bins=calibration_bins, tiers=_tiers(model.tiers))
    for name, result in report.items():
        out[name] = {**result["metrics"],
                     "calibration": result["calibration"].to_dict("records"),
                     "tiers": _tier_rows(model.tiers, result["tiers"]),
                     "pr_curve": _pr_points(result["thresholds"])}
    if len(model.models) == 1:  # one model: the ensemble is that model
        out["ensemble"] = out[model.models[0]]
    return out


def _calibrate(model: BinaryClassifierModel, scored: DataFrame, serve_col: str,
               settings: ClassifierSettings):
    """Platt and isotonic calibration of ``serve_col`` measured out of fold against the
    uncalibrated column on the same rows; the chosen calibrator refitted on all of validation
    (a LogisticBlend or an IsotonicRegressionModel), or None."""
    methods = ("platt", "isotonic") if settings.calibration == "auto" else (
        settings.calibration,)
    base = scored.withColumn(SERVE, F.col(serve_col))
    data = base
    if "platt" in methods:
        data = data.withColumn(_CALIBRATED["platt"],
                               cal.cross_fit_logistic(data, [SERVE], LABEL))
    if "isotonic" in methods:
        data = cal.cross_fit_isotonic(data, SERVE, LABEL, _CALIBRATED["isotonic"])
    report = score_report(data, LABEL, {"none": SERVE, **{m: _CALIBRATED[m] for m in methods}},
                          calibration_bins=settings.calibration_bins)
    scores = {m: {k: r["metrics"][k] for k in ("average_precision", "roc_auc", "log_loss",
                                               "brier")}
              for m, r in report.items()}
    tables = {m: r["calibration"].to_dict("records") for m, r in report.items()}
    if settings.calibration == "auto":
        method, reason = cal.choose(scores, "log_loss")
    else:
        method, reason = settings.calibration, f"{settings.calibration} (configured)"
    model.metadata["metrics"]["calibration"] = json_safe({
        "method": method, "reason": reason, "measured": "out of fold (two-fold cross-fitting "
        "on validation)", "out_of_fold": scores, "tables": tables})
    if method == "none":
        return None
    if method == "platt":  # refitted on all of validation (the cached frame, not the union)
        return cal.fit_logistic(base, [SERVE], LABEL)
    return cal.fit_isotonic(base, SERVE, LABEL)


def _select(model: BinaryClassifierModel, settings: ClassifierSettings,
            metrics: dict) -> tuple[str, str]:
    """(what ``<prefix>_probability`` serves, why), by ``settings.select``: ``ensemble`` the
    mean, ``stacked`` the stacked ensemble; ``best`` an ensemble (mean or stacked) only when
    its validation average precision beats every member's, else the best member."""
    members = {k: metrics[k].get(PRIMARY_METRIC) for k in model.models}

    def value(x) -> float:
        return x if isinstance(x, int | float) and math.isfinite(x) else -math.inf

    if len(members) == 1:
        return model.models[0], "the only model"
    if settings.select == "ensemble":
        return "ensemble", "select: ensemble (the mean of the models' probabilities)"
    if settings.select == "stacked" and "stacked" in metrics:
        return "stacked", "select: stacked (a logistic regression over the members)"
    # best, and stacked when no stacker could be fitted (too few positives): the best rule
    best = max(model.models, key=lambda k: value(members[k]))
    combined = [k for k in ("stacked", "ensemble") if k in metrics]
    top = max(combined, key=lambda k: value(metrics[k].get(PRIMARY_METRIC)))
    top_ap = value(metrics[top].get(PRIMARY_METRIC))
    label = {"ensemble": "the mean ensemble", "stacked": "the stacked ensemble"}
    if top_ap > value(members[best]):
        return top, (f"{label[top]}'s average precision {top_ap:.4f} beats its best member, "
                     f"{best} ({members[best]:.4f})")
    return best, (f"{best} alone: its average precision {value(members[best]):.4f} is at "
                  f"least {label[top]}'s {top_ap:.4f}")


def _serving_stages(model: BinaryClassifierModel, chosen: str, blend, calibrator) -> None:
    """Replace the pipeline's last stage (the mean) by what serves ``chosen`` into
    ``<prefix>_probability``, through the calibrator when there is one."""
    prob = model.prob_col
    out = f"{prob}_uncalibrated" if calibrator is not None else prob
    if chosen == "stacked":
        serve = blend.stage(out)
    elif chosen == "ensemble":
        serve = _mean_stage(model.prefix, model.models, out)
    else:
        serve = SQLTransformer(statement=f"SELECT *, `{model.model_prob_col(chosen)}` AS "
                                         f"`{out}` FROM __THIS__")
    stages = [*model.pipeline_model.stages[:-1], serve]  # the last stage was the mean
    if isinstance(calibrator, cal.LogisticBlend):
        stages.append(cal.LogisticBlend((out,), calibrator.intercept,
                                        calibrator.coefficients).stage(prob))
    elif calibrator is not None:
        stages.append(cal.isotonic_stage(calibrator, out, prob))
    model.pipeline_model = PipelineModel(stages=stages)


def _output_stages(prefix: str, models) -> list:
    per_model = [f"{prefix}_probability_{k}" for k in models]
    extract = VectorElement(inputCols=[f"{INTERNAL}{k}_prob" for k in models],
                            outputCols=per_model, index=1)
    return [extract, _mean_stage(prefix, models, f"{prefix}_probability")]


def _mean_stage(prefix: str, models, out_col: str) -> SQLTransformer:
    mean = " + ".join(f"`{prefix}_probability_{k}`" for k in models)
    return SQLTransformer(
        statement=f"SELECT *, ({mean}) / {len(models)}.0 AS `{out_col}` FROM __THIS__")


def evaluate(model: BinaryClassifierModel, df: DataFrame, label_col: str,
             calibration_bins: int = 10) -> dict[str, Any]:
    """Validation metrics of each model and the served probability (as ``ensemble``) on
    labelled ``df``: classification metrics (average precision first), a calibration table,
    precision/recall per tier and a PR curve. All columns are evaluated together, from one
    aggregate, in a few Spark jobs (:func:`~mktpipe.models.evaluation.score_report`)."""
    _check_label(df, label_col, f"{type(model).__name__} validation")
    columns = {k: model.model_prob_col(k) for k in model.models}
    if len(columns) > 1:
        columns["ensemble"] = model.prob_col
    scored = (model.predict(df).select(F.col(label_col).cast("double").alias(LABEL),
                                       model.prob_col, *[columns[k] for k in model.models])
              .cache())  # two scans read it: the score aggregate and the score quantiles
    try:
        return _report(model, scored, columns, calibration_bins)
    finally:
        scored.unpersist()


def pr_curve(df: DataFrame, label_col: str, prob_col: str) -> list[dict]:
    """Precision and recall at fixed thresholds (0, 0.05, ..., 1) and at the score's own
    quantiles (so rare positives with small probabilities still get a curve)."""
    report = score_report(df, label_col, {prob_col: prob_col}, ranking=False,
                          thresholds=_pr_curve_thresholds,
                          threshold_quantiles=PR_CURVE_QUANTILES)
    return _pr_points(report[prob_col]["thresholds"])


def _pr_curve_thresholds(quantiles: list[float]) -> list[float]:
    """A column's PR-curve thresholds: the fixed grid and its PR_CURVE_QUANTILES scores."""
    return sorted({round(t, 6) for t in [*PR_CURVE_THRESHOLDS, *quantiles]})


def _pr_points(table) -> list[dict]:
    return table[["threshold", "precision", "recall"]].to_dict("records")


def tier_table(df: DataFrame, label_col: str, prob_col: str, tiers) -> list[dict]:
    """Per tier (highest first): rows, positives, precision (positives / rows in the tier),
    recall (share of all positives in the tier), and cumulative precision/recall of "this tier
    or higher" (= precision/recall at prob >= the tier's lower bound). Labels and
    probabilities are checked like :func:`~mktpipe.models.evaluation.classification_metrics`
    (ValueError for nulls, NaN, labels not 0/1, probabilities outside [0, 1])."""
    report = score_report(df, label_col, {prob_col: prob_col}, ranking=False,
                          tiers=_tiers(tiers))
    return _tier_rows(tiers, report[prob_col]["tiers"])


def _tiers(tiers) -> tuple[list[str], Callable[[Column], Column]]:
    """``tiers`` as :func:`~mktpipe.models.evaluation.score_report` takes them: the names and
    a function of the score Column giving the tier (:func:`tier_col`)."""
    pairs = normalize_tiers(tiers)
    return [name for name, _ in pairs], lambda prob: tier_col(prob, pairs)


def _tier_rows(tiers, counts: dict[str, tuple[int, int]]) -> list[dict]:
    """The rows of :func:`tier_table` from (rows, positives) per tier name."""
    total_pos = sum(pos for _, pos in counts.values())
    rows, cum_n, cum_pos, upper = [], 0, 0, 1.0
    for name, bound in normalize_tiers(tiers):
        n, pos = counts.get(name, (0, 0))
        cum_n, cum_pos = cum_n + n, cum_pos + pos
        rows.append({"tier": name, "lower": bound, "upper": upper, "n": int(n),
                     "positives": int(pos), "precision": pos / n if n else None,
                     "recall": pos / total_pos if total_pos else None,
                     "cumulative_precision": cum_pos / cum_n if cum_n else None,
                     "cumulative_recall": cum_pos / total_pos if total_pos else None})
        upper = bound
    return rows
