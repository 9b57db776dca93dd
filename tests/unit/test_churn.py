"""Churn model: planted signal recovered on held-out snapshots, ensemble, tiers, save/load."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from mktpipe.model_settings import ClassifierSettings, normalize_tiers
from mktpipe.models import churn
from mktpipe.models.artifacts import json_safe
from mktpipe.models.classifier import tier_table
from mktpipe.models.evaluation import classification_metrics
from mktpipe.models.preprocess import (
    infer_feature_columns,
    profile_features,
    split_train_validation,
)

SCHEMA = T.StructType([
    T.StructField("user_id", T.LongType()), T.StructField("snapshot_date", T.DateType()),
    T.StructField("_run_id", T.StringType()), T.StructField("watch_30d", T.DoubleType()),
    T.StructField("sessions_30d", T.IntegerType()),
    T.StructField("days_since_active", T.DoubleType()),
    T.StructField("noise", T.DoubleType()), T.StructField("plan", T.StringType()),
    T.StructField("is_creator", T.BooleanType()), T.StructField("churned", T.IntegerType()),
])
FAST = {"xgb_params": {"max_depth": 3, "n_estimators": 40, "learning_rate": 0.2}}


def churn_rows(n: int, snapshot: dt.date, seed: int, plans=("free", "basic", "pro")) -> list:
    """Churn is a logistic function of watch time, recency and plan (AUC of the truth ~0.85);
    10% null watch time, some null plans, a bool and a pure-noise column."""
    rng = np.random.default_rng(seed)
    watch = rng.normal(size=n)
    recency = rng.normal(size=n)
    plan = rng.choice(plans, size=n, p=[0.5, 0.3, 0.2][: len(plans)] if len(plans) == 3 else None)
    logit = -0.6 - 1.4 * watch + 1.2 * recency + 0.9 * (plan == "free")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    rows = []
    for i in range(n):
        rows.append((int(seed * 100_000 + i), snapshot, "run-1",
                     None if i % 10 == 0 else float(watch[i]), int(rng.poisson(5)),
                     float(recency[i]), float(rng.normal()),
                     None if i % 25 == 0 else str(plan[i]), bool(i % 3 == 0), int(y[i])))
    return rows


@pytest.fixture(scope="module")
def data(spark):
    rows = churn_rows(1200, dt.date(2026, 9, 1), 1) + churn_rows(600, dt.date(2026, 10, 1), 2)
    holdout = churn_rows(800, dt.date(2026, 11, 1), 3, plans=("free", "basic", "enterprise"))
    return spark.createDataFrame(rows, SCHEMA), spark.createDataFrame(holdout, SCHEMA)


@pytest.fixture(scope="module")
def model(data):
    return churn.fit(data[0], "churned", config=FAST)


def test_feature_inference_skips_ids_label_and_bookkeeping(data):
    cols = infer_feature_columns(data[0], exclude=("churned", "snapshot_date"))
    assert cols == ["watch_30d", "sessions_30d", "days_since_active", "noise", "plan",
                    "is_creator"]


def test_profile_sorts_columns_by_their_nulls_and_distinct_values(spark):
    rows = [(1.0, None, None, "a", f"id{i}", True) if i % 2 else
            (float("nan"), 2, None, None, f"id{i}", False) for i in range(40)]
    df = spark.createDataFrame(rows, "x double, y int, gone double, plan string, code string, "
                                     "flag boolean")
    spec = profile_features(df, ["x", "y", "gone", "plan", "code", "flag"], max_categories=10)
    assert spec.numeric == ("x", "y", "flag")  # flag: numeric 0/1
    assert spec.indicators == ("x", "y")  # NaN counts as missing; flag has none
    assert spec.categorical == ("plan",)  # null plan is a value of its own later
    assert spec.dropped["gone"] == "all values null"
    assert spec.dropped["code"].endswith("distinct values > max_categories=10")  # HLL: ~40
    assert set(spec.dropped) == {"gone", "code"}
    with pytest.raises(ValueError, match="no rows"):
        profile_features(df.limit(0), ["x", "plan"])


def test_fit_validates_on_latest_snapshot_and_metrics_shape(model):
    split = model.metrics["split"]
    assert split == {"strategy": "time", "train_snapshots": ["2026-09-01"],
                     "validation_snapshot": "2026-10-01"}
    for name in ("xgb", "lr", "ensemble"):
        m = model.metrics[name]
        assert m["n"] == 600
        assert m["roc_auc"] >= 0.75, (name, m)
        assert 0 < m["brier"] < 0.25 and 0 < m["log_loss"] < 0.69
        assert [t["tier"] for t in m["tiers"]] == list(churn.CHURN_TIERS)
        assert sum(t["n"] for t in m["tiers"]) == 600
        assert len(m["calibration"]) == 10
    assert model.metadata["feature_spec"]["indicators"] == ["watch_30d"]
    assert model.metadata["feature_spec"]["categorical"] == ["plan"]


def test_predict_on_holdout_quality_ensemble_and_unseen_category(model, data):
    holdout = data[1]
    scored = model.predict(holdout).cache()
    assert scored.columns == holdout.columns + [
        "churn_probability", "churn_probability_xgb", "churn_probability_lr", "churn_tier"]
    assert scored.count() == 800  # unseen "enterprise" and null plans score, not fail
    metrics = classification_metrics(scored, "churned", "churn_probability")
    assert metrics["roc_auc"] >= 0.75, metrics
    gap = scored.agg(F.max(F.abs(F.col("churn_probability") - (
        F.col("churn_probability_xgb") + F.col("churn_probability_lr")) / 2))).first()[0]
    assert gap < 1e-12
    bad_tiers = scored.filter(F.col("churn_tier") != churn.tier_col(
        F.col("churn_probability"), churn.CHURN_TIERS)).count()
    assert bad_tiers == 0
    unseen = scored.filter(F.col("plan") == "enterprise").count()
    assert unseen > 0
    scored.unpersist()


def test_save_load_predicts_identically(model, data, tmp_path):
    path = str(tmp_path / "churn_model")
    model.save(path)
    loaded = churn.ChurnModel.load(path)
    assert loaded.metrics == json_safe(model.metrics)
    assert loaded.feature_cols == model.feature_cols
    cols = ["user_id", "churn_probability", "churn_probability_xgb", "churn_probability_lr",
            "churn_tier"]
    before = model.predict(data[1]).select(cols).toPandas().sort_values("user_id")
    after = loaded.predict(data[1]).select(cols).toPandas().sort_values("user_id")
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True),
                                  check_exact=True)


@pytest.mark.parametrize("p, tier", [
    (1.0, "immediate_intervention"), (0.9, "immediate_intervention"),
    (0.8999, "retention_campaign"), (0.7, "retention_campaign"),
    (0.6999, "active_monitoring"), (0.5, "active_monitoring"),
    (0.4999, "passive_monitoring"), (0.0, "passive_monitoring"), (None, None)])
def test_tiers_at_boundaries(spark, p, tier):
    df = spark.createDataFrame([(p,)], "p double")
    assert churn.assign_tier(df, "p", churn.CHURN_TIERS, "tier").first()["tier"] == tier


@pytest.mark.parametrize("tiers, message", [
    ({"a": 0.9, "b": 0.5}, "lowest tier must start at 0.0"),
    ({"a": 1.5, "b": 0.0}, "in \\[0, 1\\]"),
    ([("a", 0.5), ("a", 0.0)], "unique"),
    ({"a": 0.5, "b": 0.5, "c": 0.0}, "distinct"),
    ({}, "at least one tier"),
])
def test_invalid_tiers_raise(tiers, message):
    with pytest.raises(ValueError, match=message):
        normalize_tiers(tiers)


def test_tier_table_counts_precision_recall(spark):
    rows = [(0.95, 1.0), (0.91, 0.0), (0.75, 1.0), (0.6, 0.0), (0.2, 1.0), (0.1, 0.0)]
    df = spark.createDataFrame(rows, "p double, y double")
    table = {r["tier"]: r for r in tier_table(df, "y", "p", churn.CHURN_TIERS)}
    top = table["immediate_intervention"]
    assert (top["n"], top["positives"], top["precision"]) == (2, 1, 0.5)
    assert top["recall"] == pytest.approx(1 / 3)
    assert table["retention_campaign"]["cumulative_precision"] == pytest.approx(2 / 3)
    assert table["passive_monitoring"]["cumulative_recall"] == 1.0


def test_bad_inputs_raise_clear_errors(data):
    train = data[0]
    with pytest.raises(ValueError, match="missing columns \\['nope'\\]"):
        churn.fit(train, "nope")
    with pytest.raises(ValueError, match="not 0/1"):
        churn.fit(train.withColumn("churned", F.col("churned") * 2), "churned")
    with pytest.raises(ValueError, match="unknown keys"):
        churn.fit(train, "churned", config={"max_dpeth": 3})
    with pytest.raises(ValueError, match="models must be"):
        ClassifierSettings(models=("xgb", "svm"))


def test_random_split_when_one_snapshot(spark, caplog):
    df = spark.range(200).withColumn("snapshot_date", F.lit(dt.date(2026, 9, 1)))
    train, valid, info = split_train_validation(df, fraction=0.25, seed=7)
    assert info["strategy"] == "random" and "time-based validation" in caplog.text
    assert train.count() + valid.count() == 200
    assert train.join(valid, "id", "inner").count() == 0
    assert math.isclose(valid.count() / 200, 0.25, abs_tol=0.1)


def test_settings_from_config_objects(config):
    from types import SimpleNamespace

    # the config's models.churn section (base.yaml) overrides the library defaults
    from_config = churn.settings_from(config)
    assert from_config.class_weight == config.models.churn["class_weight"] == "none"
    assert from_config.tuning == config.models.churn["tuning"]
    assert from_config.xgb_params == ClassifierSettings().xgb_params  # not overridden
    with_section = SimpleNamespace(models=SimpleNamespace(churn={"class_weight": "none"}))
    assert churn.settings_from(with_section).class_weight == "none"
    tiers = churn.settings_from({"tiers": {"hot": 0.6, "cold": 0.0}}).tiers
    assert tiers == (("hot", 0.6), ("cold", 0.0))


def test_fit_and_predict_after_the_session_ran_an_observation(spark, data):
    """The spark graph engines run Observations. Spark 4.1 then cannot serialise the session,
    and a fitted model that keeps its training summary (which holds the session) fails every
    task that ships it ("Task not serializable: ObservationManager"), as a 100k-user backfill
    did. Models are fitted without summaries; this fits and scores after an Observation."""
    from pyspark.sql import Observation

    probe = Observation("probe")
    spark.range(5).observe(probe, F.count(F.lit(1)).alias("n")).count()
    assert probe.get["n"] == 5
    fitted = churn.fit(data[0], "churned", config=FAST)
    assert "lr" in fitted.models
    scored = fitted.predict(data[1]).select(fitted.prob_col, fitted.model_prob_col("lr"))
    assert scored.count() == data[1].count()
    assert scored.filter(F.col(fitted.prob_col).isNull()).count() == 0


def test_four_members_and_the_served_model_is_the_ensemble_only_when_it_beats_them(
        data, tmp_path):
    """XGBoost, logistic regression, random forest and a neural network (MLP), averaged; with
    select: best the mean is served only when its average precision beats every member's."""
    config = {**FAST, "models": ("xgb", "lr", "rf", "mlp"), "select": "best",
              "rf_params": {"numTrees": 30, "maxDepth": 5},
              "mlp_params": {"hidden_layers": [8], "maxIter": 100}}
    model = churn.fit(data[0], "churned", config=config)
    metrics = model.metrics
    aps = {k: metrics[k]["average_precision"] for k in ("xgb", "lr", "rf", "mlp", "ensemble")}
    for name in ("rf", "mlp"):  # the new members learn the planted signal too
        assert metrics[name]["roc_auc"] >= 0.75, (name, metrics[name])
    aps["stacked"] = metrics["stacked"]["average_precision"]  # measured out of fold
    served = metrics["served"]
    members = {k: v for k, v in aps.items() if k not in ("ensemble", "stacked")}
    combined = max(aps["ensemble"], aps["stacked"])
    if served["model"] in ("ensemble", "stacked"):
        assert aps[served["model"]] == combined > max(members.values())
    else:
        assert aps[served["model"]] == max(members.values()) >= combined
    assert served["average_precision"] == aps[served["model"]] and served["reason"]
    scored = model.predict(data[1]).cache()
    cols = [f"churn_probability_{k}" for k in ("xgb", "lr", "rf", "mlp")]
    blend = metrics["stacked"]["model"]

    def logit(c):
        p = F.least(F.greatest(F.col(c), F.lit(1e-6)), F.lit(1 - 1e-6))
        return F.log(p / (1 - p))

    stacked = 1 / (1 + F.exp(-(F.lit(blend["intercept"]) + sum(
        F.lit(blend["coefficients"][c]) * logit(c) for c in cols))))
    expected = {"ensemble": sum(F.col(c) for c in cols) / 4, "stacked": stacked}.get(
        served["model"], F.col(f"churn_probability_{served['model']}"))
    gap = scored.agg(F.max(F.abs(F.col("churn_probability") - expected))).first()[0]
    assert gap < 1e-9
    model.save(str(tmp_path / "m"))
    loaded = churn.ChurnModel.load(str(tmp_path / "m"))
    again = loaded.predict(data[1]).select("user_id", "churn_probability").toPandas()
    before = scored.select("user_id", "churn_probability").toPandas()
    pd.testing.assert_frame_equal(before.sort_values("user_id").reset_index(drop=True),
                                  again.sort_values("user_id").reset_index(drop=True))
    scored.unpersist()


def test_calibration_is_chosen_out_of_fold_and_helps_on_a_later_snapshot(data):
    """A heavily penalised logistic regression squeezes probabilities towards the middle (the
    ranking survives, calibration does not); calibration fitted on the validation snapshot
    (chosen by out-of-fold log loss) must lower the log loss on a snapshot it never saw (the
    holdout), and Platt scaling is scikit-learn's logistic regression on the logit."""
    from sklearn.linear_model import LogisticRegression as SkLR

    base = {**FAST, "models": ("lr",), "lr_params": {"regParam": 1.0}}
    auto = churn.fit(data[0], "churned", config={**base, "calibration": "auto"})
    chosen = auto.metrics["calibration"]
    assert chosen["method"] in ("platt", "isotonic"), chosen["reason"]
    oof = chosen["out_of_fold"]
    assert oof[chosen["method"]]["log_loss"] < oof["none"]["log_loss"]
    assert auto.metrics["served"]["calibration"] == chosen["method"]
    assert auto.metrics["served"]["log_loss"] == oof[chosen["method"]]["log_loss"]

    # on the holdout: the one member's probability (what was served before calibration)
    # against the calibrated one
    holdout = auto.predict(data[1]).select(F.col("churned").cast("double").alias("y"),
                                           "churn_probability", "churn_probability_lr")
    before = classification_metrics(holdout, "y", "churn_probability_lr")
    after = classification_metrics(holdout, "y", "churn_probability")
    assert after["log_loss"] < before["log_loss"] - 0.02, (before, after)
    assert after["brier"] < before["brier"], (before, after)

    platt = auto if chosen["method"] == "platt" else churn.fit(
        data[0], "churned", config={**base, "calibration": "platt"})
    stage = platt.pipeline_model.stages[-1]
    valid = platt.predict(data[0].filter(F.col("snapshot_date") == dt.date(2026, 10, 1)))
    frame = valid.select("churned", "churn_probability_lr").toPandas()  # 600 rows
    p = frame.churn_probability_lr.clip(1e-6, 1 - 1e-6)
    reference = SkLR(C=np.inf, max_iter=1000).fit(np.log(p / (1 - p)).to_numpy()[:, None],
                                               frame.churned)
    statement = stage.getStatement()
    assert "churn_probability_uncalibrated" in statement
    ours = platt.predict(data[1]).select("churn_probability_lr", "churn_probability")
    got = ours.toPandas()
    q = got.churn_probability_lr.clip(1e-6, 1 - 1e-6)
    expected = reference.predict_proba(np.log(q / (1 - q)).to_numpy()[:, None])[:, 1]
    assert np.allclose(got.churn_probability, expected, atol=1e-4)


def test_platt_fit_equals_scikit_learns_unpenalised_logistic_regression(spark):
    """Platt scaling is an unpenalised logistic regression on the score's logit: the same
    intercept and slope as scikit-learn's (lbfgs, no penalty) on the same logits."""
    from sklearn.linear_model import LogisticRegression

    from mktpipe.models.calibration import EPS, fit_logistic

    rng = np.random.default_rng(3)
    p = rng.uniform(0.0, 1.0, 400)
    p[:3] = [0.0, 1.0, 1e-9]  # clipped to [EPS, 1 - EPS] before the logit
    y = (rng.uniform(0.0, 1.0, 400) < 0.2 + 0.6 * p ** 2).astype(float)
    df = spark.createDataFrame(pd.DataFrame({"p": p, "y": y}))
    blend = fit_logistic(df, ["p"], "y")
    q = np.clip(p, EPS, 1 - EPS)
    ref = LogisticRegression(penalty=None, tol=1e-10, max_iter=1000).fit(
        np.log(q / (1 - q)).reshape(-1, 1), y)
    assert blend.intercept == pytest.approx(ref.intercept_[0], abs=1e-5)
    assert blend.coefficients[0] == pytest.approx(ref.coef_[0][0], abs=1e-5)


def test_platt_on_separable_scores_stays_finite(spark, caplog):
    """A fold where every positive scores above every negative has its unpenalised logistic
    optimum at infinity: the unpenalised fit does not converge within its Newton steps and the
    fit falls back to a small penalty (finite SQL), never 'inf'."""
    from mktpipe.models.calibration import fit_logistic

    rows = [(0.01 * i, 0.0) for i in range(1, 40)] + [(0.9, 1.0), (0.95, 1.0)]
    df = spark.createDataFrame(rows, "p double, y double")
    with caplog.at_level("WARNING", logger="mktpipe.models.calibration"):
        blend = fit_logistic(df, ["p"], "y")
    assert "refitting with regParam" in caplog.text
    assert blend.finite() and "inf" not in blend.sql() and blend.coefficients[0] > 0
    got = df.select(blend.column().alias("q"), "y").collect()
    assert min(r.q for r in got if r.y == 1) > max(r.q for r in got if r.y == 0)


def test_too_few_positives_to_stack_or_calibrate(data):
    """A validation snapshot with a handful of positives: no stacker or calibrator is fitted
    (a half without positives would give an infinite intercept); the reason is recorded and
    training still succeeds."""
    train, _ = data
    valid = train.filter(F.col("snapshot_date") == dt.date(2026, 10, 1))
    few = valid.filter(F.col("churned") == 0).unionByName(
        valid.filter(F.col("churned") == 1).limit(3))
    model = churn.fit(train.filter(F.col("snapshot_date") == dt.date(2026, 9, 1))
                      .unionByName(few), "churned",
                      config={**FAST, "calibration": "auto", "select": "best"})
    assert "stacked" not in model.metrics
    assert model.metrics["calibration"]["method"] == "none"
    assert "positives" in model.metrics["calibration"]["reason"]
    assert model.metrics["served"]["model"] in ("xgb", "lr", "ensemble")
