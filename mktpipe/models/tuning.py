"""Bounded hyperparameter search: a TrainValidationSplit over a small grid from settings.

A grid is a mapping of parameter name -> candidate values, e.g. ``{"max_depth": [3, 5],
"n_estimators": [50]}`` for SparkXGBClassifier or ``{"regParam": [0.0, 0.1]}`` for
LogisticRegression. Names are checked against the estimator's Params and the grid's size (the
product of the value counts) against ``max_grid_size`` before anything is fitted: an unknown
name or a too-large grid raises ValueError. Classifiers are scored by area under the PR curve.

The search runs on data that is already preprocessed (fit the preprocessing once, tune only
the model), with a seeded random train/validation split inside the training data, so the
later time-based validation of the chosen model stays untouched by the choice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.ml import Estimator
from pyspark.ml.evaluation import BinaryClassificationEvaluator, Evaluator
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit
from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

DEFAULT_MAX_GRID_SIZE = 16


@dataclass(frozen=True)
class TuningResult:
    best_params: dict
    metric_name: str
    larger_is_better: bool
    results: list[dict] = field(default_factory=list)  # {"params": {...}, "metric": float}

    def to_dict(self) -> dict:
        return {"best_params": self.best_params, "metric_name": self.metric_name,
                "larger_is_better": self.larger_is_better, "results": self.results}


def grid_size(grid: Mapping[str, Sequence]) -> int:
    return math.prod(len(v) for v in grid.values()) if grid else 0


def validate_grid(estimator: Estimator, grid: Mapping[str, Sequence],
                  max_grid_size: int = DEFAULT_MAX_GRID_SIZE) -> None:
    """Raise ValueError for an empty grid, unknown parameter names, empty value lists or more
    than ``max_grid_size`` combinations."""
    name = type(estimator).__name__
    if not grid:
        raise ValueError(f"tuning {name}: the grid is empty; give e.g. {{'param': [v1, v2]}}")
    unknown = sorted(p for p in grid if not estimator.hasParam(p))
    if unknown:
        known = sorted(p.name for p in estimator.params)
        raise ValueError(f"tuning {name}: unknown parameters {unknown}; known: {known}")
    empty = sorted(p for p, values in grid.items()
                   if isinstance(values, str) or not isinstance(values, Sequence) or not values)
    if empty:
        raise ValueError(f"tuning {name}: parameters {empty} need a non-empty list of values")
    size = grid_size(grid)
    if size > max_grid_size:
        raise ValueError(f"tuning {name}: the grid has {size} combinations, more than "
                         f"max_grid_size={max_grid_size}; shrink it or raise the cap")


def tune(estimator: Estimator, grid: Mapping[str, Sequence], df: DataFrame,
         evaluator: Evaluator, max_grid_size: int = DEFAULT_MAX_GRID_SIZE,
         train_ratio: float = 0.75, seed: int = 42) -> TuningResult:
    """Fit ``estimator`` for every combination in ``grid`` on ``train_ratio`` of ``df`` and score
    it on the rest with ``evaluator``. Returns the best combination and every score; the caller
    fits the final model with ``estimator.copy(best)``. Caching ``df`` is the caller's job."""
    validate_grid(estimator, grid, max_grid_size)
    builder = ParamGridBuilder()
    for name, values in grid.items():
        builder = builder.addGrid(estimator.getParam(name), list(values))
    param_maps = builder.build()
    search = TrainValidationSplit(estimator=estimator, estimatorParamMaps=param_maps,
                                  evaluator=evaluator, trainRatio=train_ratio, seed=seed,
                                  parallelism=1)
    fitted = search.fit(df)
    metrics = list(fitted.validationMetrics)
    larger = evaluator.isLargerBetter()
    results = [{"params": {p.name: v for p, v in pm.items()}, "metric": float(m)}
               for pm, m in zip(param_maps, metrics, strict=True)]
    best = (max if larger else min)(range(len(metrics)), key=lambda i: metrics[i])
    metric_name = evaluator.getOrDefault("metricName") if evaluator.hasParam("metricName") \
        else type(evaluator).__name__
    log.info("tuned %s over %d combinations: best %s = %.4f with %s", type(estimator).__name__,
             len(param_maps), metric_name, metrics[best], results[best]["params"])
    return TuningResult(results[best]["params"], metric_name, larger, results)


def pr_auc_evaluator(label_col: str, probability_col: str) -> BinaryClassificationEvaluator:
    """Area under the precision-recall curve of a probability (vector or double) column."""
    return BinaryClassificationEvaluator(rawPredictionCol=probability_col, labelCol=label_col,
                                         metricName="areaUnderPR")


def apply_params(estimator: Estimator, params: Mapping) -> Estimator:
    """A copy of ``estimator`` with ``params`` (names -> values) set."""
    return estimator.copy({estimator.getParam(k): v for k, v in params.items()})
