"""Purchase intent (XGBoost, imbalanced labels, intent tiers) and bounded tuning."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from xgboost.spark import SparkXGBClassifier

from mktpipe.model_settings import INTENT_TIERS
from mktpipe.models import churn, intent
from mktpipe.models.evaluation import classification_metrics
from mktpipe.models.tuning import grid_size, validate_grid

SCHEMA = ("user_id long, snapshot_date date, cart_adds_7d double, product_views_7d double, "
          "device string, bought_7d int")
FAST = {"xgb_params": {"max_depth": 3, "n_estimators": 40, "learning_rate": 0.2}}


def intent_rows(n: int, snapshot: dt.date, seed: int) -> list[tuple]:
    """About 20% buyers; intent rises with cart adds and product views (AUC of truth ~0.85)."""
    rng = np.random.default_rng(seed)
    carts = rng.poisson(1.0, n).astype(float)
    views = rng.gamma(2.0, 3.0, n)
    device = rng.choice(["ios", "android", "web"], n)
    logit = -3.0 + 1.1 * carts + 0.12 * views + 0.4 * (device == "ios")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return [(seed * 100_000 + i, snapshot, None if i % 12 == 0 else float(carts[i]),
             float(views[i]), str(device[i]), int(y[i])) for i in range(n)]


@pytest.fixture(scope="module")
def data(spark):
    train = spark.createDataFrame(intent_rows(1500, dt.date(2026, 9, 1), 1), SCHEMA)
    later = spark.createDataFrame(intent_rows(800, dt.date(2026, 9, 8), 2), SCHEMA)
    return train, later


@pytest.fixture(scope="module")
def model(data):
    return intent.fit(data[0], "bought_7d", config=FAST, validation_df=data[1])


def test_intent_quality_tiers_and_columns(model, data):
    assert model.metrics["split"] == {"strategy": "given"}
    assert model.metrics["xgb"]["roc_auc"] >= 0.75, model.metrics["xgb"]
    assert model.metrics["ensemble"] == model.metrics["xgb"]
    counts = model.metadata["training_counts"]
    assert 0.1 < counts["pos"] / (counts["pos"] + counts["neg"]) < 0.35  # imbalanced
    assert model.params()["settings"]["class_weight"] == "balanced"
    holdout = data[1].withColumn("device", F.when(F.col("user_id") % 5 == 0, "smart_tv")
                                 .otherwise(F.col("device")))  # unseen device at scoring
    scored = model.predict(holdout)
    assert scored.columns == holdout.columns + ["intent_probability", "intent_probability_xgb",
                                                "intent_tier"]
    assert classification_metrics(scored, "bought_7d", "intent_probability")["roc_auc"] >= 0.75
    assert scored.filter(F.col("intent_probability") != F.col("intent_probability_xgb")) \
        .count() == 0
    tiers = {r["intent_tier"] for r in scored.select("intent_tier").distinct().collect()}
    assert tiers <= set(INTENT_TIERS) and len(tiers) >= 3


@pytest.mark.parametrize("p, tier", [
    (0.8, "personalised_offer"), (0.7999, "nurturing_campaign"), (0.6, "nurturing_campaign"),
    (0.5999, "educational_content"), (0.4, "educational_content"),
    (0.3999, "brand_awareness"), (0.0, "brand_awareness")])
def test_intent_tier_boundaries(spark, p, tier):
    df = spark.createDataFrame([(p,)], "p double")
    assert churn.assign_tier(df, "p", INTENT_TIERS, "t").first()["t"] == tier


def test_save_load_identical_and_kind_checked(model, data, tmp_path):
    path = str(tmp_path / "intent")
    model.save(path)
    loaded = intent.IntentModel.load(path)
    cols = ["user_id", "intent_probability", "intent_tier"]
    before = model.predict(data[1]).select(cols).toPandas().sort_values("user_id")
    after = loaded.predict(data[1]).select(cols).toPandas().sort_values("user_id")
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True),
                                  check_exact=True)
    with pytest.raises(ValueError, match="not a mktpipe.models.churn.ChurnModel"):
        churn.ChurnModel.load(path)
    with pytest.raises(ValueError, match="missing columns \\['cart_adds_7d'\\]"):
        loaded.predict(data[1].drop("cart_adds_7d"))


def test_tuning_picks_from_grid_and_caps_size(spark):
    small = spark.createDataFrame(intent_rows(500, dt.date(2026, 9, 1), 4), SCHEMA)
    grid = {"xgb": {"max_depth": [1, 3], "n_estimators": [15]}}
    tuned = intent.fit(small, "bought_7d", config={"tuning": grid, **FAST}, tune=True)
    result = tuned.metadata["tuning"]["xgb"]
    assert result["metric_name"] == "areaUnderPR" and len(result["results"]) == 2
    assert result["best_params"]["max_depth"] in (1, 3)
    best = max(result["results"], key=lambda r: r["metric"])
    assert result["best_params"] == best["params"]
    assert grid_size({"a": [1, 2, 3], "b": [1, 2]}) == 6
    with pytest.raises(ValueError, match="more than max_grid_size=4"):
        intent.fit(small, "bought_7d", tune=True, config={
            "max_grid_size": 4,
            "tuning": {"xgb": {"max_depth": [2, 3, 4], "learning_rate": [0.1, 0.3]}}})
    with pytest.raises(ValueError, match="unknown parameters \\['max_dpeth'\\]"):
        validate_grid(SparkXGBClassifier(), {"max_dpeth": [3]})
    with pytest.raises(ValueError, match="no grid"):
        intent.fit(small, "bought_7d", tune=True)
