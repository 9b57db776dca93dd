"""Hyperparameter search: grid, random and Bayesian (TPE), bounded by trials and wall time,
with the history the registry and the report show."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler

from mktpipe.models import tuning
from mktpipe.models.preprocess import drop_training_summary


@pytest.fixture(scope="module")
def prepared(spark):
    """Preprocessed rows (a features vector and a label): y depends on x1 and, weakly, x2."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + 0.3 * x[:, 1] + rng.normal(0, 0.8, 400) > 0).astype(float)
    df = spark.createDataFrame([(*map(float, r), float(t)) for r, t in zip(x, y)],
                               ["x1", "x2", "x3", "label"])
    return VectorAssembler(inputCols=["x1", "x2", "x3"], outputCol="features") \
        .transform(df).select("features", "label").cache()


@pytest.fixture(scope="module")
def evaluator(spark):  # a JVM object: needs the session
    return tuning.pr_auc_evaluator("label", "probability")


def _lr():
    return LogisticRegression(featuresCol="features", labelCol="label", maxIter=20)


SPACE = {"regParam": {"low": 1e-4, "high": 10.0, "log": True}, "elasticNetParam": [0.0, 1.0]}


@pytest.mark.parametrize("method", ["random", "tpe"])
def test_random_and_tpe_search_ranges_within_the_trial_budget(prepared, evaluator, method):
    result = tuning.tune(_lr(), SPACE, prepared, evaluator, method=method, trials=4, seed=3)
    assert result.method == method and len(result.results) == 4
    assert [r["trial"] for r in result.results] == list(range(4))
    for r in result.results:
        assert 1e-4 <= r["params"]["regParam"] <= 10.0
        assert r["params"]["elasticNetParam"] in (0.0, 1.0)
        assert 0.0 <= r["metric"] <= 1.0 and r["seconds"] > 0
    best = max(result.results, key=lambda r: r["metric"])
    assert result.best_params == best["params"]
    # the same seed draws the same parameters again
    again = tuning.tune(_lr(), SPACE, prepared, evaluator, method=method, trials=2, seed=3)
    assert [r["params"] for r in again.results] == [r["params"] for r in result.results[:2]]


def test_wall_time_bounds_the_search(prepared, evaluator):
    result = tuning.tune(_lr(), SPACE, prepared, evaluator, method="tpe", trials=50,
                         timeout_s=0.01)
    assert len(result.results) == 1  # the first trial runs past the budget: no second one


def test_grid_tries_every_combination_and_records_seconds(prepared, evaluator):
    grid = {"regParam": [0.01, 5.0], "elasticNetParam": [0.0]}
    result = tuning.tune(_lr(), grid, prepared, evaluator, method="grid")
    assert [r["params"] for r in result.results] == [
        {"regParam": 0.01, "elasticNetParam": 0.0}, {"regParam": 5.0, "elasticNetParam": 0.0}]
    assert result.best_params == max(result.results, key=lambda r: r["metric"])["params"]
    assert all(r["seconds"] > 0 for r in result.results)


def test_search_spaces_are_checked_before_any_fit(spark):
    lr = _lr()
    with pytest.raises(ValueError, match="ranges need search"):
        tuning.validate_space(lr, SPACE, "grid")
    with pytest.raises(ValueError, match="low <= high"):
        tuning.validate_space(lr, {"regParam": {"low": 1.0, "high": 0.1}}, "tpe")
    with pytest.raises(ValueError, match="low <= high"):
        tuning.validate_space(lr, {"regParam": {"low": 0.0, "high": 1.0, "log": True}}, "tpe")
    with pytest.raises(ValueError, match="unknown parameter"):
        tuning.validate_space(lr, {"regParm": {"low": 0.1, "high": 1.0}}, "random")
    with pytest.raises(ValueError, match="method must be one of"):
        tuning.validate_space(lr, {"regParam": [0.1]}, "bayes")


def test_convergence_is_the_best_so_far():
    results = [{"metric": m} for m in (0.3, 0.5, math.nan, 0.4, 0.7)]
    assert tuning.convergence(results, True) == [0.3, 0.5, 0.5, 0.5, 0.7]
    assert tuning.convergence(results, False) == [0.3, 0.3, 0.3, 0.3, 0.3]


def test_kfold_scores_each_trial_as_the_mean_over_its_folds(prepared, evaluator):
    from pyspark.sql import functions as F

    grid = {"regParam": [0.01, 5.0]}
    result = tuning.tune(_lr(), grid, prepared, evaluator, validation="kfold", folds=3, seed=5)
    assert result.validation == "kfold (3 folds)"
    data = prepared.withColumn(tuning.FOLD, F.floor(F.rand(5) * 3).cast("int"))
    for trial in result.results:
        assert len(trial["folds"]) == 3
        assert trial["metric"] == pytest.approx(sum(trial["folds"]) / 3, rel=1e-12)
        for k, got in enumerate(trial["folds"]):  # refit by hand on the other folds
            fitted = drop_training_summary(_lr().setRegParam(trial["params"]["regParam"]).fit(
                data.filter(F.col(tuning.FOLD) != k)))  # as tune does: the summary holds
            # an unserialisable observation manager once the session has observed metrics
            expected = evaluator.evaluate(fitted.transform(data.filter(F.col(tuning.FOLD) == k)))
            assert got == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="folds >= 2"):
        tuning.tune(_lr(), grid, prepared, evaluator, validation="kfold", folds=1)


def test_time_validation_scores_on_the_latest_date(prepared, evaluator):
    import datetime as dt

    from pyspark.sql import functions as F

    early, late = dt.date(2026, 9, 1), dt.date(2026, 10, 1)
    dated = prepared.withColumn("snapshot_date", F.when(F.rand(1) < 0.7, F.lit(early))
                                .otherwise(F.lit(late))).cache()
    result = tuning.tune(_lr(), {"regParam": [0.01]}, dated, evaluator, validation="time",
                         date_col="snapshot_date")
    assert result.validation == "time (validate on 2026-10-01)"
    fitted = drop_training_summary(
        _lr().setRegParam(0.01).fit(dated.filter(F.col("snapshot_date") == early)))
    expected = evaluator.evaluate(fitted.transform(dated.filter(F.col("snapshot_date") == late)))
    assert result.results[0]["metric"] == pytest.approx(expected, rel=1e-9)
    one = tuning.tune(_lr(), {"regParam": [0.01]}, dated.filter(F.col("snapshot_date") == late),
                      evaluator, validation="time", date_col="snapshot_date")
    assert one.validation.startswith("holdout (one date")
    with pytest.raises(ValueError, match="date column"):
        tuning.tune(_lr(), {"regParam": [0.01]}, prepared, evaluator, validation="time",
                    date_col="snapshot_date")
    dated.unpersist()
