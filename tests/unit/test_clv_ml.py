"""ML CLV regressor, the RFM summary glue, BG/NBD holdout predictions and the comparison."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import functions as F

from mktpipe.models import clv_ml
from mktpipe.models.evaluation import regression_metrics

CUTOFF = dt.date(2026, 6, 30)
FAST = {"xgb_params": {"max_depth": 3, "n_estimators": 60, "learning_rate": 0.15}}


def ts(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day} {hour:02d}:00:00")


def test_rfm_summary_matches_hand_computation(spark):
    rows = [
        # a: 4 orders on 3 distinct days (two on 06-10) -> frequency 2
        ("a", ts("2026-06-01"), 10.0), ("a", ts("2026-06-10", 9), 5.0),
        ("a", ts("2026-06-10", 18), 15.0), ("a", ts("2026-06-20"), 40.0),
        ("a", ts("2026-07-05"), 99.0),  # after the cut-off: ignored
        # b: one order -> frequency 0, recency 0, monetary 0
        ("b", ts("2026-06-25"), 30.0),
        # c: first order long before, one repeat on the cut-off day itself (included)
        ("c", ts("2026-04-01"), 7.0), ("c", ts("2026-06-30", 23), 11.0),
        ("d", ts("2026-07-01"), 5.0),  # only after the cut-off: absent
        (None, ts("2026-06-01"), 1.0), ("c", None, 1.0),  # ignored
    ]
    orders = spark.createDataFrame(rows, "user_id string, ts timestamp, amount double")
    got = clv_ml.rfm_summary(orders, CUTOFF)
    expected = spark.createDataFrame([
        # a: days 06-01, 06-10, 06-20; recency 19, T 29, repeat days spend 20 and 40
        ("a", 2, 19.0, 29.0, 30.0),
        ("b", 0, 0.0, 5.0, 0.0),
        # c: 04-01 -> 06-30 is 90 days; one repeat day of 11
        ("c", 1, 90.0, 90.0, 11.0),
    ], "user_id string, frequency long, recency double, T double, monetary_value double")
    assert_approx_df_equality(got, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)
    weekly = clv_ml.rfm_summary(orders, "2026-06-30", period_days=7).filter("user_id = 'c'")
    assert weekly.first()["T"] == pytest.approx(90 / 7)


def simulate_orders(n: int, seed: int = 5) -> pd.DataFrame:
    """Customers who buy at a gamma-distributed rate until a random dropout day, each with a
    gamma-distributed basket size; 180 days from 2026-01-01."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2026, 1, 1, 12)
    first = rng.integers(0, 90, n)
    rate = rng.gamma(2.0, 0.03, n)
    alive_until = first + rng.exponential(150, n)
    basket = rng.gamma(4.0, 10.0, n)
    rows = []
    for u in range(n):
        day = float(first[u])
        while day < min(alive_until[u], 180):
            rows.append((f"u{u:04d}", start + dt.timedelta(days=day),
                         float(basket[u] * rng.gamma(8.0, 1 / 8.0))))
            day += rng.exponential(1 / rate[u])
    return pd.DataFrame(rows, columns=["user_id", "ts", "amount"])


@pytest.fixture(scope="module")
def cohorts(spark):
    """RFM features at the cut-off and spend in the next 90 days; cohort A trains the ML model,
    cohort B is the holdout both models are compared on."""
    orders = spark.createDataFrame(simulate_orders(900))
    cutoff = dt.date(2026, 3, 31)
    feats = clv_ml.rfm_summary(orders, cutoff)
    label = clv_ml.spend_in_horizon(orders, cutoff, 90)
    table = (feats.join(label, "user_id", "left").fillna({"spend_next": 0.0})
             .withColumn("segment", F.when(F.col("frequency") > 3, "heavy").otherwise("light")))
    a = table.filter(F.col("user_id") < "u0600")
    b = table.filter(F.col("user_id") >= "u0600")
    return orders, cutoff, a, b


@pytest.fixture(scope="module")
def ml_model(cohorts):
    _, _, a, b = cohorts
    return clv_ml.fit(a, "spend_next", config=FAST)


def test_ml_regressor_learns_spend_on_holdout(ml_model, cohorts):
    b = cohorts[3]
    assert ml_model.metrics["split"]["strategy"] == "random"
    assert set(ml_model.metrics["xgb"]) >= {"rmse", "mae", "r2", "mape", "n_mape"}
    scored = ml_model.predict(b)
    assert scored.columns == b.columns + ["clv_prediction"]
    assert scored.filter(F.col("clv_prediction") < 0).count() == 0
    metrics = regression_metrics(scored, "spend_next", "clv_prediction")
    assert metrics["r2"] > 0.2, metrics


def test_save_load_round_trip(ml_model, cohorts, tmp_path):
    path = str(tmp_path / "clv")
    ml_model.save(path)
    loaded = clv_ml.ClvModel.load(path)
    b = cohorts[3]
    before = ml_model.predict(b).select("user_id", "clv_prediction").toPandas()
    after = loaded.predict(b).select("user_id", "clv_prediction").toPandas()
    pd.testing.assert_frame_equal(before.sort_values("user_id").reset_index(drop=True),
                                  after.sort_values("user_id").reset_index(drop=True))
    assert loaded.metrics == ml_model.metrics


def test_compare_with_bgnbd_on_holdout(ml_model, cohorts):
    orders, cutoff, _, b = cohorts
    prob = clv_ml.bgnbd_predictions(orders, cutoff, horizon_days=90)
    assert {"frequency", "recency", "T", "monetary_value", "clv_bgnbd"} <= set(prob.columns)
    result = clv_ml.compare_clv(ml_model.predict(b), prob, "spend_next")
    assert result["n"] == b.count()
    assert result["bgnbd"]["r2"] > 0.2, result  # the generative story fits BG/NBD
    better = "ml" if result["ml"]["rmse"] < result["bgnbd"]["rmse"] else "bgnbd"
    assert result["winner"] == better
    assert result["margin"] == pytest.approx(abs(result["ml"]["rmse"] - result["bgnbd"]["rmse"]))


def test_probabilistic_model_registers_and_loads_back_with_the_same_predictions(cohorts,
                                                                                tmp_path):
    from mktpipe.models import clv
    from mktpipe.models.registry import Registry

    orders, cutoff, _, _ = cohorts
    summary = clv_ml.rfm_summary(orders, cutoff)
    model = clv_ml.fit_probabilistic(summary, horizon_days=90, fitted_snapshot="2026-04-01")
    # the same numbers as fitting and predicting by hand with the library
    bg, gg = clv.fit_bgnbd(summary), clv.fit_gamma_gamma(summary, round_monetary=2)
    assert model.bgnbd_params.as_tuple() == pytest.approx(bg.as_tuple())
    assert model.gamma_gamma_params.as_tuple() == pytest.approx(gg.as_tuple())
    by_hand = clv.customer_lifetime_value(bg, gg, summary, horizon_periods=1,
                                          discount_rate_per_period=0.0, period_length=90,
                                          output_col="clv_bgnbd")
    registry = Registry(str(tmp_path / "models"))
    reg = registry.register(clv_ml.PROBABILISTIC_CLV, model,
                            metrics={"validation": {"rmse": 1.5}},
                            primary_metric="validation.rmse", higher_is_better=False)
    assert reg.promoted
    loaded = registry.load_latest(clv_ml.PROBABILISTIC_CLV)
    assert type(loaded) is clv_ml.ProbabilisticClvModel
    assert loaded.params() == model.params()
    assert loaded.metadata["fitted_snapshot"] == "2026-04-01"
    got = loaded.predict(summary).select("user_id", "clv_bgnbd").toPandas()
    want = by_hand.select("user_id", "clv_bgnbd").toPandas()
    pd.testing.assert_frame_equal(got.sort_values("user_id").reset_index(drop=True),
                                  want.sort_values("user_id").reset_index(drop=True))


def test_probabilistic_fit_refuses_a_summary_without_repeat_buyers(spark):
    once = spark.createDataFrame([("a", 0, 0.0, 10.0, 0.0), ("b", 0, 0.0, 3.0, 0.0)],
                                 "user_id string, frequency long, recency double, T double, "
                                 "monetary_value double")
    with pytest.raises(ValueError, match="frequency > 0"):
        clv_ml.fit_probabilistic(once)


def test_compare_clv_picks_winner_by_metric(spark):
    ml = spark.createDataFrame([(1, 10.0, 12.0), (2, 0.0, 1.0), (3, 5.0, 5.0), (4, 1.0, 1.0)],
                               "user_id int, y double, clv_prediction double")
    prob = spark.createDataFrame([(1, 20.0), (2, 0.0), (3, 5.0), (9, 3.0)],
                                 "user_id int, clv_bgnbd double")
    result = clv_ml.compare_clv(ml, prob, "y", metric="mae")
    assert result["n"] == 3  # users 1-3 are in both
    assert result["ml"]["mae"] == pytest.approx(1.0)  # (2 + 1 + 0) / 3
    assert result["bgnbd"]["mae"] == pytest.approx(10 / 3)
    assert result["winner"] == "ml"
    assert result["margin"] == pytest.approx(7 / 3)
    assert result["relative_margin"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="unknown metric"):
        clv_ml.compare_clv(ml, prob, "y", metric="accuracy")
