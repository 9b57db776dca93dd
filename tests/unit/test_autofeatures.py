"""Automatic feature engineering: the terms equal MLlib's PolynomialExpansion / Interaction,
selection drops what it should, and terms are kept only when they help on held-out data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.feature import Interaction, PolynomialExpansion, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from mktpipe.model_settings import AutoFeatureSettings, ClassifierSettings
from mktpipe.models import autofeatures, churn
from mktpipe.models.classifier import BinaryClassifierModel

FAST = {"models": ["lr"], "stack": False, "tiers": {"high": 0.5, "low": 0.0}}


def product_rows(n: int, snapshot: dt.date, seed: int) -> list[tuple]:
    """Churn when x1 and x2 share a sign: invisible to a linear model on x1 and x2, plain on
    x1 * x2. ``flag`` is 0/1 (its square equals it), ``views_7d``/``views_30d`` a windowed
    measure, ``noise`` nothing, ``fee`` a constant (Spark's ``corr`` raises on one under ANSI)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    flip = rng.random(n) < 0.05
    y = ((x1 * x2 > 0) ^ flip).astype(int)
    v30 = rng.poisson(20, size=n)
    v7 = rng.binomial(v30, 0.3)
    flag = rng.integers(0, 2, size=n)
    return [(int(seed * 10_000 + i), snapshot, float(x1[i]), float(x2[i]), int(flag[i]),
             int(v7[i]), int(v30[i]), float(rng.normal()), 5.0, int(y[i])) for i in range(n)]


COLUMNS = ["user_id", "snapshot_date", "x1", "x2", "flag", "views_7d", "views_30d", "noise",
           "fee", "churned"]


@pytest.fixture(scope="module")
def frames(spark):
    train = (product_rows(700, dt.date(2026, 9, 1), 1)
             + product_rows(500, dt.date(2026, 9, 8), 2))
    valid = product_rows(600, dt.date(2026, 9, 15), 3)
    return spark.createDataFrame(train, COLUMNS), spark.createDataFrame(valid, COLUMNS)


@pytest.fixture(scope="module")
def engineered(frames):
    train, valid = frames
    return churn.fit(train, "churned", config={**FAST, "auto_features": {"enabled": True}},
                     validation_df=valid)


def test_squares_and_products_equal_polynomial_expansion_and_interaction(spark):
    df = spark.createDataFrame([(1.5, -2.0, 3.0), (0.0, 4.0, -1.25), (2.0, 2.0, 0.5)],
                               ["a", "b", "c"])
    settings = AutoFeatureSettings(ratios=False, recent_share=False)
    terms = autofeatures.candidates(["a", "b", "c"], ["a", "b", "c"], settings)
    assert set(terms) == {"fe_sq__a", "fe_sq__b", "fe_sq__c", "fe_mul__a__b", "fe_mul__a__c",
                          "fe_mul__b__c"}
    ours = autofeatures.add_terms(df, terms)
    mllib = PolynomialExpansion(degree=2, inputCol="v", outputCol="p").transform(
        VectorAssembler(inputCols=["a", "b", "c"], outputCol="v").transform(ours))
    mllib = Interaction(inputCols=["a", "b"], outputCol="ab").transform(mllib)
    for row in mllib.select("*", vector_to_array("p").alias("pa"),
                            vector_to_array("ab").alias("aba")).collect():
        degree_one = sorted([row.a, row.b, row.c])
        expansion = sorted(row.pa)
        for value in degree_one:  # PolynomialExpansion keeps the degree-1 terms too
            expansion.remove(value)
        assert sorted(row[name] for name in terms) == pytest.approx(expansion)
        assert row.aba == [pytest.approx(row.fe_mul__a__b)]


def test_ratios_and_recent_shares_are_null_safe(spark):
    df = spark.createDataFrame([(3, 12, 2.0, 0.0), (0, 0, 1.0, 4.0)],
                               ["likes_7d", "likes_30d", "a", "b"])
    terms = autofeatures.candidates(["a", "b"], ["likes_7d", "likes_30d", "a", "b"],
                                    AutoFeatureSettings(squares=False, products=False))
    assert set(terms) == {"fe_div__a__b", "fe_share__likes_7d_30d"}
    rows = autofeatures.add_terms(df, terms).orderBy("a").collect()
    assert rows[0].fe_div__a__b == 0.25 and rows[0].fe_share__likes_7d_30d is None
    assert rows[1].fe_div__a__b is None and rows[1].fe_share__likes_7d_30d == 0.25
    # a measure that already has its trend column gets no share term
    assert not [t for t in autofeatures.candidates(
        ["a", "b"], ["views_7d", "views_30d", "views_trend_7_30", "a", "b"],
        AutoFeatureSettings(squares=False, products=False, ratios=False))]


def test_the_product_term_is_found_selected_and_kept(engineered, frames):
    report = engineered.metrics["auto_features"]
    assert report["decision"] == "kept", report
    assert report["validation"].startswith("time (validate on 2026-09-08")
    assert set(report["bases"][:2]) >= {"x1", "x2"} or "fe_mul__x1__x2" in report["kept"]
    assert "fe_mul__x1__x2" in report["kept"]
    assert report["after"] > report["before"] + 0.2  # the linear model now sees the signal
    # the 0/1 flag's square is the flag itself: dropped by the correlation filter (or as
    # carrying nothing, by the univariate test)
    if "fe_sq__flag" in report["dropped"]:
        assert report["dropped"]["fe_sq__flag"].startswith(("correlation", "univariate"))
    assert report["candidates"] >= report["after_univariate"] >= report["after_correlation"] \
        >= report["after_importance"] == len(report["kept"])
    assert set(report["expressions"]) == set(report["kept"])
    assert "fee" not in report["bases"][:2]  # a constant correlates with nothing


def test_kept_terms_help_on_the_validation_snapshot_and_ride_in_the_model(engineered, frames,
                                                                          tmp_path, spark):
    train, valid = frames
    plain = churn.fit(train, "churned", config=FAST, validation_df=valid)
    assert "auto_features" not in plain.metrics
    # measured on the validation snapshot, which the engineering never saw
    assert engineered.metrics["lr"]["average_precision"] > 0.85
    assert plain.metrics["lr"]["average_precision"] < 0.65
    # the model takes the raw feature table: the terms are its first stage
    assert engineered.feature_cols == ["x1", "x2", "flag", "views_7d", "views_30d", "noise",
                                       "fee"]
    path = str(tmp_path / "model")
    engineered.save(path)
    loaded = BinaryClassifierModel.load(path)
    raw = valid.drop("churned")
    a = engineered.predict(raw).select("user_id", "churn_probability")
    b = loaded.predict(raw).select("user_id", F.col("churn_probability").alias("p2"))
    diff = a.join(b, "user_id").agg(F.max(F.abs(F.col("churn_probability") - F.col("p2"))))
    assert diff.first()[0] < 1e-12
    assert not [c for c in engineered.predict(raw).columns if c.startswith("fe_")]


def test_terms_are_rejected_when_they_do_not_clear_the_gain(frames):
    train, valid = frames
    model = churn.fit(train, "churned", validation_df=valid,
                      config={**FAST, "auto_features": {"enabled": True, "min_gain": 0.99}})
    report = model.metrics["auto_features"]
    assert report["decision"] == "rejected" and report["kept"] == []
    assert report["after"] - report["before"] <= 0.99
    assert "not an improvement" in report["reason"]
    assert not [s for s in model.pipeline_model.stages
                if "fe_mul" in str(s.extractParamMap())]


def test_label_correlations_equal_pandas_on_the_rows_each_column_has(spark):
    rng = np.random.default_rng(5)
    n = 300
    y = rng.integers(0, 2, size=n).astype(float)
    frame = {"y": y, "fee": np.full(n, 5.0), "empty": np.full(n, np.nan)}
    for i in range(40):  # more aggregates than one row of codegen'd fields holds
        x = rng.normal(size=n) + (i % 3) * y
        x[rng.random(n) < 0.2] = np.nan
        frame[f"x{i}"] = x
    pdf = pd.DataFrame(frame)
    df = spark.createDataFrame([tuple(None if np.isnan(v) else float(v) for v in row)
                                for row in pdf.itertuples(index=False)],
                               ", ".join(f"{c} double" for c in pdf.columns))
    columns = [c for c in pdf.columns if c != "y"]
    got = autofeatures._label_correlations(df, "y", columns)
    assert got["fee"] == 0.0 and got["empty"] == 0.0  # constant, no value: 0
    for c in columns[2:]:
        assert got[c] == pytest.approx(abs(pdf[c].corr(pdf["y"])), abs=1e-12), c


def test_the_sample_fraction_bounds_rows_but_keeps_enough_positives():
    bounded = AutoFeatureSettings(max_rows=100_000, min_positives=2_000)
    assert autofeatures.sample_fraction(80_000, 800, bounded) == 1.0  # small: every row
    assert autofeatures.sample_fraction(400_000, 100_000, bounded) == pytest.approx(0.25)
    # 2.5 % positives: 0.25 would expect 2,500 >= 2,000 positives
    assert autofeatures.sample_fraction(400_000, 10_000, bounded) == pytest.approx(0.25)
    # 1 % positives: 0.25 would leave 1,000; the floor asks for half of the rows
    assert autofeatures.sample_fraction(400_000, 4_000, bounded) == pytest.approx(0.5)
    assert autofeatures.sample_fraction(400_000, 1_000, bounded) == 1.0  # too few: all
    unbounded = AutoFeatureSettings(max_rows=None)
    assert autofeatures.sample_fraction(10**9, 10, unbounded) == 1.0
    with pytest.raises(ValueError, match="max_rows"):
        AutoFeatureSettings(max_rows=10)


def test_the_search_on_a_sample_still_finds_the_term(frames):
    train, valid = frames
    positives = train.filter("churned = 1").count()
    model = churn.fit(train, "churned", validation_df=valid, config={
        **FAST, "auto_features": {"enabled": True, "max_rows": 1_000, "min_positives": 100}})
    report = model.metrics["auto_features"]
    assert report["sample"] == {"rows": 1_200, "positives": positives,
                                "fraction": round(1_000 / 1_200, 6)}
    assert report["decision"] == "kept" and "fe_mul__x1__x2" in report["kept"], report
    assert model.metrics["lr"]["average_precision"] > 0.85  # the fit used every row


def test_settings():
    assert ClassifierSettings(auto_features=True).auto_features.enabled
    assert ClassifierSettings(auto_features={"top_k": 3}).auto_features.top_k == 3
    assert not ClassifierSettings().auto_features.enabled
    with pytest.raises(ValueError, match="unknown keys"):
        ClassifierSettings(auto_features={"topk": 3})
    with pytest.raises(ValueError, match="validation"):
        ClassifierSettings(auto_features={"validation": "kfold"})


def test_the_registry_records_the_engineering(engineered, tmp_path):
    from mktpipe.models.registry import Registry

    registry = Registry(str(tmp_path / "models"))
    registry.register("churn", engineered, primary_metric="lr.average_precision")
    report = registry.metrics("churn", 1)["auto_features"]
    assert report["kept"] == engineered.metrics["auto_features"]["kept"]
    run = registry.client.get_run(registry.info("churn", 1)["run_id"])
    assert run.data.metrics["auto_features.after"] == pytest.approx(report["after"])
    assert run.data.metrics["auto_features.before"] == pytest.approx(report["before"])
    loaded = registry.load("churn", 1)
    assert loaded.metrics["auto_features"]["expressions"]["fe_mul__x1__x2"] == \
        "(CAST(`x1` AS DOUBLE) * CAST(`x2` AS DOUBLE))"
