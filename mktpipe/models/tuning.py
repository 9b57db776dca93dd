"""Bounded hyperparameter search: grid, random or Bayesian (TPE), scored on a held-out split.

A search space maps parameter name -> candidates. For ``grid`` each entry is a list of values,
e.g. ``{"max_depth": [3, 5], "n_estimators": [50]}`` for SparkXGBClassifier or
``{"regParam": [0.0, 0.1]}`` for LogisticRegression, and every combination is tried (at most
``max_grid_size``). For ``random`` and ``tpe`` (optuna's samplers, seeded) an entry is a list
(a categorical choice) or a range ``{"low": 0.01, "high": 0.3, "log": true}`` (add
``"int": true`` for integers), and ``trials`` parameter sets are tried, or as many as fit in
``timeout_s`` seconds (a trial that has started finishes). Names are checked against the
estimator's Params before anything is fitted: an unknown name, an empty list, a bad range or a
too-large grid raises ValueError. Classifiers are scored by area under the PR curve,
regressors by RMSE.

The search runs on data that is already preprocessed (fit the preprocessing once, tune only
the model), with a seeded random train/validation split inside the training data, so the
later time-based validation of the chosen model stays untouched by the choice. Every trial's
model drops its training summary (see ``preprocess.drop_training_summary``). The result keeps
the whole history: trial number, parameters, score and seconds per trial.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.ml import Estimator
from pyspark.ml.evaluation import BinaryClassificationEvaluator, Evaluator
from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

DEFAULT_MAX_GRID_SIZE = 16
METHODS = ("grid", "random", "tpe")
VALIDATIONS = ("holdout", "kfold", "time")
FOLD = "_search_fold"


@dataclass(frozen=True)
class TuningResult:
    best_params: dict
    metric_name: str
    larger_is_better: bool
    # {"trial": i, "params": {...}, "metric": float, "seconds": float}, in the order tried
    results: list[dict] = field(default_factory=list)
    method: str = "grid"
    validation: str = "holdout"  # how each trial was scored (see tune)

    def to_dict(self) -> dict:
        return {"method": self.method, "best_params": self.best_params,
                "metric_name": self.metric_name, "larger_is_better": self.larger_is_better,
                "validation": self.validation, "results": self.results}


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


def _is_range(values) -> bool:
    return isinstance(values, Mapping)


def validate_space(estimator: Estimator, space: Mapping, method: str = "grid",
                   max_grid_size: int = DEFAULT_MAX_GRID_SIZE) -> None:
    """Raise ValueError for an unknown method, or a space ``method`` cannot search (see the
    module docstring); ``grid`` is :func:`validate_grid`."""
    if method not in METHODS:
        raise ValueError(f"tuning: method must be one of {METHODS}, got {method!r}")
    if method == "grid":
        ranges = sorted(p for p, v in space.items() if _is_range(v))
        if ranges:
            raise ValueError(f"tuning {type(estimator).__name__}: {ranges} are ranges; a grid "
                             "needs lists of values (ranges need search: random or tpe)")
        validate_grid(estimator, space, max_grid_size)
        return
    name = type(estimator).__name__
    lists = {p: v for p, v in space.items() if not _is_range(v)}
    if lists:
        validate_grid(estimator, lists, max_grid_size=math.inf)
    for param, r in space.items():
        if not _is_range(r):
            continue
        if not estimator.hasParam(param):
            raise ValueError(f"tuning {name}: unknown parameter {param!r}")
        extra = sorted(set(r) - {"low", "high", "log", "int"})
        low, high = r.get("low"), r.get("high")
        if extra or not all(isinstance(x, int | float) for x in (low, high)) or low > high \
                or (r.get("log") and low <= 0):
            raise ValueError(f"tuning {name}: range {param}={dict(r)} needs numbers low <= high "
                             "(low > 0 with log) and only the keys low, high, log, int")


def tune(estimator: Estimator, grid: Mapping[str, Sequence], df: DataFrame,
         evaluator: Evaluator, max_grid_size: int = DEFAULT_MAX_GRID_SIZE,
         train_ratio: float = 0.75, seed: int = 42, method: str = "grid", trials: int = 16,
         timeout_s: float | None = None, validation: str = "holdout", folds: int = 3,
         date_col: str | None = None) -> TuningResult:
    """Search ``grid`` (the space) with ``method``: fit ``estimator`` per parameter set and
    score it with ``evaluator``. Returns the best set and the history; the caller fits the final
    model with :func:`apply_params`. ``trials`` and ``timeout_s`` bound random and tpe (a grid
    tries every combination).

    ``validation``: ``holdout`` fits on a seeded ``train_ratio`` of ``df`` and scores the rest;
    ``kfold`` scores each trial as the mean over ``folds`` seeded folds (each fitted on the
    others; the per-fold scores are in the history); ``time`` fits on the rows before the latest
    ``date_col`` value and scores that latest date (falls back to holdout, recorded, when
    ``df`` has one date)."""
    from mktpipe.models.preprocess import drop_training_summary

    validate_space(estimator, grid, method, max_grid_size)
    if trials < 1:
        raise ValueError(f"tuning: trials must be >= 1, got {trials}")
    if validation not in VALIDATIONS:
        raise ValueError(f"tuning: validation must be one of {VALIDATIONS}, got {validation!r}")
    if validation == "kfold" and folds < 2:
        raise ValueError(f"tuning: kfold needs folds >= 2, got {folds}")
    larger = evaluator.isLargerBetter()
    splits, cached, validation = validation_splits(df, validation, train_ratio, seed, folds,
                                                   date_col)
    results: list[dict] = []

    def score(params: dict) -> float:
        started = time.monotonic()
        per_fold = []
        for train, valid in splits:
            model = drop_training_summary(apply_params(estimator, params).fit(train))
            per_fold.append(float(evaluator.evaluate(model.transform(valid))))
        metric = sum(per_fold) / len(per_fold)
        result = {"trial": len(results), "params": dict(params), "metric": metric,
                  "seconds": round(time.monotonic() - started, 3)}
        if len(per_fold) > 1:
            result["folds"] = per_fold
        results.append(result)
        return metric

    try:
        if method == "grid":
            names = list(grid)
            for combo in itertools.product(*(list(grid[p]) for p in names)):
                score(dict(zip(names, combo)))
        else:
            _search_optuna(grid, method, score, larger, trials, timeout_s, seed)
    finally:
        for frame in cached:
            frame.unpersist()
    finite = [r for r in results if math.isfinite(r["metric"])]
    if not finite:
        raise ValueError(f"tuning {type(estimator).__name__}: no trial gave a finite score")
    best = (max if larger else min)(finite, key=lambda r: r["metric"])
    metric_name = evaluator.getOrDefault("metricName") if evaluator.hasParam("metricName") \
        else type(evaluator).__name__
    log.info("tuned %s by %s over %d trials (%.1f s): best %s = %.4f with %s",
             type(estimator).__name__, method, len(results),
             sum(r["seconds"] for r in results), metric_name, best["metric"], best["params"])
    return TuningResult(best["params"], metric_name, larger, results, method, validation)


def validation_splits(df: DataFrame, validation: str, train_ratio: float, seed: int,
                      folds: int, date_col: str | None
                      ) -> tuple[list[tuple[DataFrame, DataFrame]], list, str]:
    """((train, valid) pairs, frames to unpersist after, the validation actually used)."""
    from pyspark.sql import functions as F

    if validation == "time":
        if not date_col or date_col not in df.columns:
            raise ValueError(f"tuning: time validation needs the date column {date_col!r} in "
                             f"the training data (columns: {df.columns})")
        dates = df.agg(F.countDistinct(date_col), F.max(date_col)).first()  # one small row
        if dates[0] >= 2:
            data = df.cache()
            latest = F.col(date_col) == F.lit(dates[1])
            return [(data.filter(~latest), data.filter(latest))], [data], \
                f"time (validate on {dates[1]})"
        log.warning("tuning: time validation needs two %s values, the training data has one; "
                    "holdout instead", date_col)
        validation = "holdout (one date: time validation impossible)"
    if validation == "kfold":
        data = df.withColumn(FOLD, F.floor(F.rand(seed) * folds).cast("int")).cache()
        pairs = [(data.filter(F.col(FOLD) != k), data.filter(F.col(FOLD) == k))
                 for k in range(folds)]
        return pairs, [data], f"kfold ({folds} folds)"
    train, valid = df.randomSplit([train_ratio, 1.0 - train_ratio], seed=seed)
    train, valid = train.cache(), valid.cache()
    return [(train, valid)], [train, valid], validation


def _search_optuna(space: Mapping, method: str, score, larger: bool, trials: int,
                   timeout_s: float | None, seed: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # TPE starts from random trials (optuna's default: 10) before its model guides the search;
    # with a bounded budget a third of it, at least 2 and at most 10, so that 8 trials are
    # not all random (then TPE would repeat the random search exactly: same seed)
    sampler = (optuna.samplers.RandomSampler(seed=seed) if method == "random"
               else optuna.samplers.TPESampler(seed=seed,
                                               n_startup_trials=min(10, max(2, trials // 3))))
    study = optuna.create_study(direction="maximize" if larger else "minimize",
                                sampler=sampler)

    def objective(trial) -> float:
        params = {}
        for name, values in space.items():
            if not _is_range(values):
                params[name] = trial.suggest_categorical(name, list(values))
            elif values.get("int"):
                params[name] = trial.suggest_int(name, int(values["low"]), int(values["high"]),
                                                 log=bool(values.get("log")))
            else:
                params[name] = trial.suggest_float(name, float(values["low"]),
                                                   float(values["high"]),
                                                   log=bool(values.get("log")))
        return score(params)

    study.optimize(objective, n_trials=trials, timeout=timeout_s)


def convergence(results: Sequence[Mapping], larger_is_better: bool) -> list[float]:
    """The best score so far after each trial (the search's convergence curve)."""
    best, out = None, []
    for r in results:
        m = r["metric"]
        if math.isfinite(m) and (best is None or (m > best if larger_is_better else m < best)):
            best = m
        out.append(best if best is not None else math.nan)
    return out


def pr_auc_evaluator(label_col: str, probability_col: str) -> BinaryClassificationEvaluator:
    """Area under the precision-recall curve of a probability (vector or double) column."""
    return BinaryClassificationEvaluator(rawPredictionCol=probability_col, labelCol=label_col,
                                         metricName="areaUnderPR")


def apply_params(estimator: Estimator, params: Mapping) -> Estimator:
    """A copy of ``estimator`` with ``params`` (names -> values) set."""
    return estimator.copy({estimator.getParam(k): v for k, v in params.items()})
