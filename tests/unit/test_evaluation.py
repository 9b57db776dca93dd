"""Spark evaluation metrics equal scikit-learn's on random data with ties and on edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.exceptions import UndefinedMetricWarning

from mktpipe.models import evaluation
from mktpipe.models.evaluation import (
    calibration_table,
    classification_metrics,
    precision_recall_at_thresholds,
    regression_metrics,
)

SCHEMA = "label int, prob double"


def random_scores(n, seed, decimals=2):
    """Labels drawn from the (rounded, hence heavily tied) scores themselves, plus exact 0/1
    scores and bin-edge values, so ties, clipping and bin edges are all exercised."""
    rng = np.random.default_rng(seed)
    prob = np.round(rng.beta(2, 5, n), decimals)
    prob[:6] = [0.0, 1.0, 0.1, 0.2, 0.5, 1.0]
    label = (rng.uniform(size=n) < prob).astype(int)
    label[:2] = [1, 0]  # confidently wrong at both ends: log loss must clip like sklearn
    return pd.DataFrame({"label": label, "prob": prob})


def sklearn_classification(pdf):
    y, p = pdf.label.to_numpy(), pdf.prob.to_numpy()
    return {
        "n": len(pdf), "positive_rate": y.mean(),
        "average_precision": skm.average_precision_score(y, p),
        "roc_auc": skm.roc_auc_score(y, p),
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
        "brier": skm.brier_score_loss(y, p),
    }


@pytest.fixture(scope="module")
def scored(spark):
    pdf = random_scores(4_000, seed=1)
    return pdf, spark.createDataFrame(pdf, SCHEMA)


def assert_metrics_equal(got, want, keys=None):
    for key in keys or want:
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-12), key


def record_range_edges(monkeypatch) -> list:
    """Spy on the prefix-sum range edges: the list gets each call's edges per column."""
    calls, real = [], evaluation._range_edges

    def spy(*args):
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(evaluation, "_range_edges", spy)
    return calls


def test_classification_metrics_equal_sklearn_with_ties(scored):
    pdf, sdf = scored
    assert pdf.prob.nunique() < 100  # heavy ties
    got = classification_metrics(sdf, "label", "prob")
    assert set(got) == {"n", "positive_rate", "average_precision", "roc_auc", "log_loss", "brier"}
    assert_metrics_equal(got, sklearn_classification(pdf))


def test_continuous_scores_and_many_prefix_ranges(spark, monkeypatch):
    # nearly all scores distinct; prefix sums split into 1, 7 or 50 ranges must all agree
    pdf = random_scores(3_000, seed=2, decimals=12)
    sdf = spark.createDataFrame(pdf, SCHEMA)
    want = sklearn_classification(pdf)
    assert_metrics_equal(classification_metrics(sdf, "label", "prob"), want)
    for n_ranges in (7, 50):  # classification_metrics above used one range
        edges = record_range_edges(monkeypatch)
        got = evaluation.score_report(sdf, "label", {"p": "prob"}, n_ranges=n_ranges)
        assert len(edges[-1][0]) > n_ranges // 2  # the ranges really were that many
        assert_metrics_equal(got["p"]["metrics"], want, ["average_precision", "roc_auc"])


def test_boolean_labels_and_float_probabilities(spark):
    sdf = spark.createDataFrame([(True, 0.9), (False, 0.9), (True, 0.4), (False, 0.1)],
                                "label boolean, prob float")
    got = classification_metrics(sdf, "label", "prob")
    y, p = np.array([1, 0, 1, 0]), np.array([0.9, 0.9, 0.4, 0.1], dtype=np.float32)
    p = p.astype(np.float64)  # Spark widens float to double before computing
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), rel=1e-12)
    assert got["average_precision"] == pytest.approx(skm.average_precision_score(y, p),
                                                     rel=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p), rel=1e-12)


def test_log_loss_clips_at_machine_epsilon(spark):
    sdf = spark.createDataFrame([(1, 0.0), (0, 1.0)], SCHEMA)
    got = classification_metrics(sdf, "label", "prob")
    assert got["log_loss"] == pytest.approx(-math.log(np.finfo(np.float64).eps), rel=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss([1, 0], [0.0, 1.0]), rel=1e-12)
    assert got["roc_auc"] == 0.0 and got["brier"] == 1.0


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_gives_nan_for_undefined_metrics(spark, label):
    pdf = pd.DataFrame({"label": [label] * 5, "prob": [0.1, 0.2, 0.2, 0.7, 0.9]})
    got = classification_metrics(spark.createDataFrame(pdf, SCHEMA), "label", "prob")
    assert math.isnan(got["roc_auc"])
    with pytest.warns(UndefinedMetricWarning, match="Only one class"):  # sklearn 1.9: NaN too
        assert math.isnan(skm.roc_auc_score(pdf.label, pdf.prob))
    if label == 1:  # every threshold has precision 1
        assert got["average_precision"] == 1.0
    else:  # no positives: undefined; we say NaN where sklearn warns and returns 0.0
        assert math.isnan(got["average_precision"])
    assert_metrics_equal(got, {"log_loss": skm.log_loss(pdf.label, pdf.prob, labels=[0, 1]),
                               "brier": skm.brier_score_loss(pdf.label, pdf.prob, labels=[0, 1]),
                               "positive_rate": float(label)})


@pytest.mark.parametrize("rows, message", [
    ([(None, 0.5), (None, 0.2), (1, 0.3)], "2 rows with null or NaN label"),
    ([(1, None), (0, 0.2), (1, float("nan"))], "2 rows with null or NaN prob"),
    ([(2, 0.5), (0, 0.2)], "1 rows with label not 0 or 1"),
    ([(1, 1.5), (0, -0.1), (1, 0.3)], r"2 rows with prob outside \[0, 1\]"),
    ([], "no rows"),
])
def test_invalid_classification_input_is_reported(spark, rows, message):
    sdf = spark.createDataFrame(rows, SCHEMA)
    with pytest.raises(ValueError, match=message):
        classification_metrics(sdf, "label", "prob")


def test_missing_or_text_columns_are_reported(spark):
    sdf = spark.createDataFrame([(1, "0.5")], "label int, score string")
    with pytest.raises(ValueError,
                       match=r"missing columns \['prob'\]; present \['label', 'score'\]"):
        classification_metrics(sdf, "label", "prob")
    with pytest.raises(ValueError, match="'score' has type string"):
        classification_metrics(sdf, "label", "score")


def test_calibration_table_matches_sklearn_calibration_curve(scored):
    pdf, sdf = scored
    table = calibration_table(sdf, "label", "prob", bins=10)
    assert table.bin.tolist() == list(range(10)) and table["count"].sum() == len(pdf)
    prob_true, prob_pred = calibration_curve(pdf.label, pdf.prob, n_bins=10)
    nonempty = table[table["count"] > 0]
    np.testing.assert_allclose(nonempty.observed_rate, prob_true, rtol=1e-12)
    np.testing.assert_allclose(nonempty.mean_predicted, prob_pred, rtol=1e-12)
    # sklearn's bins are (lower, upper]: 0.1 and 0.2 sit in bins 0 and 1
    edges = np.linspace(0, 1, 11)
    assert table["count"].tolist() == np.bincount(np.searchsorted(edges[1:-1], pdf.prob),
                                                  minlength=10).tolist()


def test_calibration_table_keeps_empty_bins(spark):
    sdf = spark.createDataFrame([(0, 0.05), (1, 0.95), (1, 0.97)], SCHEMA)
    table = calibration_table(sdf, "label", "prob", bins=4)
    assert table["count"].tolist() == [1, 0, 0, 2]
    assert table.observed_rate.isna().tolist() == [False, True, True, False]
    assert table.mean_predicted.iloc[3] == pytest.approx(0.96)


def test_precision_recall_at_thresholds_match_sklearn(scored):
    pdf, sdf = scored
    thresholds = [0.0, 0.1, 0.25, 0.5, 0.99, 1.0, 1.01]
    table = precision_recall_at_thresholds(sdf, "label", "prob", thresholds)
    assert table.threshold.tolist() == thresholds
    for row in table.itertuples():
        predicted = (pdf.prob >= row.threshold).astype(int)
        tn, fp, fn, tp = skm.confusion_matrix(pdf.label, predicted, labels=[0, 1]).ravel()
        assert (row.tp, row.fp, row.fn, row.tn) == (tp, fp, fn, tn)
        for name, fn_ in [("precision", skm.precision_score), ("recall", skm.recall_score),
                          ("f1", skm.f1_score)]:
            want = fn_(pdf.label, predicted, zero_division=np.nan)
            got = getattr(row, name)
            assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-12)
    assert math.isnan(table.precision.iloc[-1])  # nothing scores >= 1.01


def test_regression_metrics_equal_sklearn(spark):
    rng = np.random.default_rng(5)
    # a large offset with small spread: a one-pass sum-of-squares r2 would lose digits here
    label = 1e6 + rng.normal(0, 3, 2_000)
    label[:50] = rng.normal(0, 1, 50)  # some zero/negative labels, left out of MAPE
    label[50] = 0.0
    pred = label + rng.normal(0, 2, 2_000)
    pdf = pd.DataFrame({"y": label, "yhat": pred})
    got = regression_metrics(spark.createDataFrame(pdf), "y", "yhat")
    positive = pdf[pdf.y > 0]
    want = {
        "n": 2_000, "rmse": math.sqrt(skm.mean_squared_error(label, pred)),
        "mae": skm.mean_absolute_error(label, pred), "r2": skm.r2_score(label, pred),
        "mape": skm.mean_absolute_percentage_error(positive.y, positive.yhat),
        "n_mape": len(positive),
    }
    assert_metrics_equal(got, want)
    assert got["n_mape"] == int((label > 0).sum()) < 2_000


def test_regression_edge_cases(spark):
    constant = spark.createDataFrame([(2.0, 1.0), (2.0, 3.0)], "y double, yhat double")
    got = regression_metrics(constant, "y", "yhat")
    assert math.isnan(got["r2"]) and got["rmse"] == 1.0 and got["mape"] == 0.5
    nothing_positive = spark.createDataFrame([(0.0, 1.0), (-1.0, 0.0)], "y double, yhat double")
    assert math.isnan(regression_metrics(nothing_positive, "y", "yhat")["mape"])
    with_nulls = spark.createDataFrame([(1.0, None), (None, 2.0), (3.0, None)],
                                       "y double, yhat double")
    with pytest.raises(ValueError, match="1 rows with null or NaN y; 2 rows with null or NaN yhat"):
        regression_metrics(with_nulls, "y", "yhat")


def test_pr_curve_adds_score_quantiles_for_rare_small_probabilities(spark):
    from mktpipe.models.classifier import pr_curve

    rows = [(float(i % 50 == 0), i / 10_000) for i in range(400)]  # scores all below 0.04
    df = spark.createDataFrame(rows, "y double, p double")
    curve = pr_curve(df, "y", "p")
    inside = [r for r in curve if 0 < r["threshold"] < 0.05]
    assert len(inside) >= 10  # the fixed 0.05 grid alone would give none
    for r in curve:  # each point equals a brute-force count
        tp = sum(1 for y, p in rows if p >= r["threshold"] and y == 1)
        pp = sum(1 for _, p in rows if p >= r["threshold"])
        assert r["recall"] == pytest.approx(tp / 8)
        if pp:
            assert r["precision"] == pytest.approx(tp / pp)


class PreScored:
    """Stands in for a fitted two-model classifier whose probabilities are already in the
    frame: p_xgb, p_lr and the "ensemble" column p."""

    models = ["xgb", "lr"]
    prob_col = "p"
    tiers = (("high", 0.5), ("mid", 0.1), ("low", 0.0))
    metadata = {"split": {"strategy": "given"}}

    def model_prob_col(self, kind):
        return f"p_{kind}"

    def predict(self, df):
        return df


def three_score_columns(n, seed):
    """Shared labels and three unlike score columns: heavily tied (2 decimals), continuous and
    mostly high, and all below 0.04 (with positives scoring a little higher)."""
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.25).astype(int)
    heavy = np.round(np.clip(rng.beta(2, 5, n) + 0.25 * y, 0, 1), 2)
    smooth = np.clip(1 - rng.beta(2, 4, n) + 0.05 * y * rng.uniform(size=n), 0, 1)
    tiny = np.round(rng.uniform(0, 0.03, n) + 0.009 * y * rng.uniform(size=n), 4)
    tiny[:3] = [0.0, 0.0399, 0.0]
    return pd.DataFrame({"y": y, "p_xgb": heavy, "p_lr": smooth, "p": tiny})


def test_evaluate_three_columns_at_once_equals_each_column_alone(spark, monkeypatch):
    from mktpipe.models.classifier import evaluate, pr_curve, tier_table

    pdf = three_score_columns(3_000, seed=11)
    assert pdf.p_xgb.nunique() < 100 and pdf.p.max() < 0.04
    sdf = spark.createDataFrame(pdf, "y int, p_xgb double, p_lr double, p double")
    model = PreScored()
    got = evaluate(model, sdf, "y", calibration_bins=8)
    assert got["primary_metric"] == "average_precision" and got["split"] == model.metadata["split"]
    columns = {"xgb": "p_xgb", "lr": "p_lr", "ensemble": "p"}
    assert set(got) == {"primary_metric", "split", *columns}
    aucs = set()
    for name, col in columns.items():
        m, y, p = got[name], pdf.y.to_numpy(), pdf[col].to_numpy()
        assert list(m) == ["n", "positive_rate", "average_precision", "roc_auc", "log_loss",
                           "brier", "calibration", "tiers", "pr_curve"]
        alone = classification_metrics(sdf, "y", col)
        assert_metrics_equal(m, alone)
        assert_metrics_equal(m, sklearn_classification(pdf.rename(columns={col: "prob",
                                                                           "y": "label"})))
        aucs.add(round(m["roc_auc"], 6))
        # calibration: the single-column table, and sklearn's bins
        table = calibration_table(sdf, "y", col, bins=8)
        pd.testing.assert_frame_equal(pd.DataFrame(m["calibration"]), table, rtol=1e-12)
        nonempty = table[table["count"] > 0]
        prob_true, prob_pred = calibration_curve(y, p, n_bins=8)
        np.testing.assert_allclose(nonempty.observed_rate, prob_true, rtol=1e-12)
        np.testing.assert_allclose(nonempty.mean_predicted, prob_pred, rtol=1e-12)
        # tiers: the single-column table, and counts by hand
        assert m["tiers"] == tier_table(sdf, "y", col, model.tiers)
        upper = np.inf
        for row, (tier, bound) in zip(m["tiers"], model.tiers):
            inside = (p >= bound) & (p < upper)
            assert (row["tier"], row["n"], row["positives"]) == (tier, inside.sum(),
                                                                 y[inside].sum())
            upper = bound
        # PR curve: the single-column curve, the column's own thresholds, counts by hand
        alone_curve = pr_curve(sdf, "y", col)
        assert [r["threshold"] for r in m["pr_curve"]] == [r["threshold"] for r in alone_curve]
        own = {round(float(v), 6) for v in p} | {i / 20 for i in range(21)}
        assert {r["threshold"] for r in m["pr_curve"]} <= own  # no other column's quantile
        for r in m["pr_curve"]:
            predicted = p >= r["threshold"]
            tp = (predicted & (y == 1)).sum()
            assert r["recall"] == pytest.approx(tp / y.sum(), rel=1e-12)
            if predicted.any():
                assert r["precision"] == pytest.approx(tp / predicted.sum(), rel=1e-12)
            else:
                assert math.isnan(r["precision"])
    tiny_inside = [r for r in got["ensemble"]["pr_curve"] if 0 < r["threshold"] < 0.05]
    assert len(tiny_inside) >= 10  # the all-below-0.04 column got its own quantiles
    assert len(aucs) == 3  # the columns really differ
    # several columns with several prefix-sum ranges each: offsets per (column, range)
    edges = record_range_edges(monkeypatch)
    ranked = evaluation.score_report(sdf, "y", columns, n_ranges=7)
    assert all(len(column_edges) > 3 for column_edges in edges[0])
    for name in columns:
        assert_metrics_equal(ranked[name]["metrics"], got[name],
                             ["average_precision", "roc_auc", "log_loss", "brier"])


def test_invalid_values_are_reported_per_column(spark):
    sdf = spark.createDataFrame([(1, 0.2, 1.5, None), (0, 0.1, 0.3, 0.4)],
                                "y int, a double, b double, c double")
    with pytest.raises(ValueError, match=r"classification metrics: invalid input: "
                       r"1 rows with b outside \[0, 1\]; 1 rows with null or NaN c\. "):
        evaluation.score_report(sdf, "y", {"a": "a", "b": "b", "c": "c"})
