"""Behavioural segments (k by silhouette, names from centroids, save/load) and RFM rules."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from mktpipe.model_settings import SegmentationSettings
from mktpipe.models import segmentation
from mktpipe.models.segmentation import rfm_scores, rfm_segment_col, rfm_segments, segment_names

CENTERS = {  # watch_seconds, orders, sessions: four well-separated profiles
    "binge": (900.0, 1.0, 20.0), "buyer": (100.0, 12.0, 5.0),
    "casual": (100.0, 1.0, 5.0), "power": (900.0, 12.0, 20.0),
}


@pytest.fixture(scope="module")
def blobs(spark):
    rng = np.random.default_rng(11)
    rows = []
    for b, (w, o, s) in enumerate(CENTERS.values()):
        for i in range(100):
            rows.append((b * 1000 + i, list(CENTERS)[b], float(w + rng.normal(0, 25)),
                         float(o + rng.normal(0, 0.5)),
                         None if i == 0 else float(s + rng.normal(0, 1)), i % 2 == 0))
    schema = "user_id long, planted string, watch_seconds double, orders double, " \
             "sessions double, flag boolean"
    return spark.createDataFrame(rows, schema)


@pytest.fixture(scope="module")
def model(blobs):
    return segmentation.fit(blobs, ["watch_seconds", "orders", "sessions"],
                            config={"k_min": 3, "k_max": 5, "log1p": False})


def test_k_by_silhouette_finds_planted_clusters(model, blobs):
    metrics = model.metrics
    assert metrics["k"] == 4, metrics
    assert set(metrics["silhouette_by_k"]) == {"3", "4", "5"}
    assert metrics["silhouette"] == max(metrics["silhouette_by_k"].values())
    scored = model.predict(blobs)
    assert scored.columns == blobs.columns + ["segment_id", "segment_name"]
    pairs = scored.select("planted", "segment_name").distinct().collect()
    assert len(pairs) == 4  # each planted blob is exactly one segment and vice versa
    names = {r["planted"]: r["segment_name"] for r in pairs}
    assert len(set(names.values())) == 4
    features = ["watch_seconds", "orders", "sessions"]
    for blob, centre in CENTERS.items():  # every named feature points the planted way
        parts = names[blob].split(", ")
        assert len(parts) == 2, names
        for part in parts:
            word, feature = part.split(" ", 1)
            j = features.index(feature.replace(" ", "_"))
            mean = np.mean([c[j] for c in CENTERS.values()])
            assert word == ("high" if centre[j] > mean else "low"), (blob, names[blob])
    assert sorted(s["size"] for s in model.segments) == [100, 100, 100, 100]


def test_every_algorithm_and_k_is_compared_and_the_best_silhouette_wins(model):
    metrics = model.metrics
    rows = metrics["comparison"]
    assert [(r["algorithm"], r["k"]) for r in rows] == [
        (a, k) for a in ("kmeans", "bisecting_kmeans", "gmm") for k in range(3, 6)]
    usable = [r for r in rows if not r["degenerate"]]
    best = max(usable, key=lambda r: r["silhouette"])
    assert (metrics["algorithm"], metrics["k"]) == (best["algorithm"], best["k"])
    assert metrics["silhouette"] == best["silhouette"]
    assert metrics["davies_bouldin"] == best["davies_bouldin"]
    assert metrics["chosen_because"].startswith("highest silhouette")
    # the planted structure: both k-means variants find k=4 best by silhouette (MLlib's
    # Gaussian mixture, one random start, can stop in a local optimum: it is only compared)
    assert all(not r["degenerate"] for r in rows if r["algorithm"] != "gmm")
    for algorithm in ("kmeans", "bisecting_kmeans"):
        mine = {r["k"]: r for r in rows if r["algorithm"] == algorithm}
        assert max(mine, key=lambda k: mine[k]["silhouette"]) == 4, (algorithm, mine)


def test_selection_metric_and_a_single_algorithm(blobs):
    one = segmentation.fit(blobs, ["watch_seconds", "orders", "sessions"], config={
        "k_min": 3, "k_max": 4, "log1p": False, "algorithm": "bisecting",
        "selection_metric": "davies_bouldin"})
    rows = one.metrics["comparison"]
    assert {r["algorithm"] for r in rows} == {"bisecting_kmeans"}
    assert one.metrics["davies_bouldin"] == min(r["davies_bouldin"] for r in rows)
    assert one.metrics["chosen_because"].startswith("lowest davies_bouldin")
    with pytest.raises(ValueError, match="selection_metric"):
        SegmentationSettings(selection_metric="inertia")
    with pytest.raises(ValueError, match="algorithms"):
        SegmentationSettings(algorithms=("kmeans", "dbscan"))


def test_clustering_indices_equal_scikit_learn(spark):
    from pyspark.ml.linalg import Vectors
    from sklearn import metrics as skm

    from mktpipe.models.evaluation import clustering_metrics

    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(c, s, size=(n, 4)) for c, s, n in
                   ((0.0, 1.0, 40), (3.0, 0.5, 25), (-2.0, 2.0, 35))])
    labels = np.repeat([0, 2, 5], [40, 25, 35])  # ids need not be 0..k-1
    swap = rng.choice(len(x), 12, replace=False)  # some points in the "wrong" cluster
    labels[swap] = rng.choice([0, 2, 5], 12)
    df = spark.createDataFrame([(Vectors.dense(row.tolist()), int(c))
                                for row, c in zip(x, labels)], ["features", "prediction"])
    got = clustering_metrics(df)
    assert got["n"] == 100 and got["clusters"] == 3
    assert got["silhouette"] == pytest.approx(
        skm.silhouette_score(x, labels, metric="sqeuclidean"), rel=1e-9)
    assert got["calinski_harabasz"] == pytest.approx(
        skm.calinski_harabasz_score(x, labels), rel=1e-9)
    assert got["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(x, labels), rel=1e-9)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        clustering_metrics(df.withColumn("prediction", F.lit(1)))


@pytest.mark.parametrize("centroid, action", [
    ({"order_count": 1.2, "monetary_total": 0.9, "views_30d": 0.3}, "reward_and_retain"),
    ({"order_count": 1.2, "monetary_total": 0.9, "views_30d": -0.8}, "win_back_valuable"),
    ({"order_count": -0.2, "product_clicks_30d": 1.1, "views_30d": 0.7}, "convert_intent"),
    ({"followers": 2.0, "views_30d": 0.1}, "recruit_ambassadors"),
    ({"views_30d": 1.0, "watch_seconds_30d": 0.8, "order_count": -0.3}, "monetise_engagement"),
    ({"views_30d": -0.9, "active_days_30d": -1.1}, "reactivate"),
    ({"views_30d": 0.1, "order_count": 0.2}, "nurture"),
    ({"unknown_metric": 3.0}, "nurture"),
])
def test_segment_actions_follow_the_rule_table(centroid, action):
    got, why = segmentation.segment_action(centroid)
    assert got == action and why


def test_every_segment_has_a_recommended_action(model):
    assert all(s["action"] in {a for a, _, _ in segmentation.SEGMENT_ACTIONS}
               and s["action_reason"] for s in model.segments)


def test_save_load_same_segments(model, blobs, tmp_path):
    model.save(str(tmp_path / "seg"))
    loaded = segmentation.SegmentationModel.load(str(tmp_path / "seg"))
    cols = ["user_id", "segment_id", "segment_name"]
    before = model.predict(blobs).select(cols).toPandas().sort_values("user_id")
    after = loaded.predict(blobs).select(cols).toPandas().sort_values("user_id")
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))
    assert loaded.segments == model.segments


def test_segment_names_are_readable_unique_and_largest_first():
    features = ["watch_time", "spend", "sessions"]
    centers = np.array([[2.0, -1.0, 0.1], [-1.5, 0.2, 0.3], [0.1, 0.2, 0.1],
                        [2.1, -1.2, 0.6], [0.2, 0.1, 0.0]])
    names = segment_names(centers, features, sizes=[50, 40, 30, 20, 10])
    assert names == ["high watch time, low spend", "low watch time", "average",
                     "high watch time, low spend, high sessions", "average #4"]


def test_invalid_settings_raise(blobs):
    with pytest.raises(ValueError, match="k_min <= k_max"):
        SegmentationSettings(k_min=5, k_max=4)
    with pytest.raises(ValueError, match="cannot be clustered"):
        segmentation.fit(blobs, ["watch_seconds", "planted"])


@pytest.mark.parametrize("r, f, m, segment", [
    (5, 5, 5, "champions"), (4, 4, 4, "champions"),
    (2, 5, 4, "cannot_lose"), (1, 4, 5, "cannot_lose"),
    (5, 5, 2, "loyal"), (3, 4, 4, "loyal"),
    (2, 4, 3, "at_risk"), (1, 3, 5, "at_risk"),
    (5, 1, 5, "new"), (5, 1, 1, "new"),
    (4, 1, 1, "potential_loyalist"), (5, 3, 2, "potential_loyalist"),
    (3, 3, 3, "potential_loyalist"),
    (3, 2, 5, "hibernating"), (2, 1, 1, "hibernating"),
    (1, 2, 5, "lost"), (1, 1, 1, "lost"), (None, 3, 3, None)])
def test_rfm_rules_on_hand_made_scores(spark, r, f, m, segment):
    df = spark.createDataFrame([(r, f, m)], "r int, f int, m int")
    got = df.select(rfm_segment_col(F.col("r"), F.col("f"), F.col("m")).alias("s")).first()["s"]
    assert got == segment


def test_rfm_rules_cover_every_score_combination(spark):
    combos = list(itertools.product(range(1, 6), repeat=3))
    df = spark.createDataFrame(combos, "r int, f int, m int")
    out = df.select(rfm_segment_col(F.col("r"), F.col("f"), F.col("m")).alias("s"))
    counts = {r["s"]: r["count"] for r in out.groupBy("s").count().collect()}
    assert None not in counts and sum(counts.values()) == 125
    assert set(counts) == {name for name, _, _ in segmentation.RFM_RULES}


def test_rfm_scores_are_quintiles(spark):
    rows = [(i, float(6 - i), i, 10.0 * i) for i in range(1, 6)] + [(9, None, 2, 20.0)]
    df = spark.createDataFrame(rows, "user_id int, recency_days double, frequency int, "
                                     "monetary double")
    out = {r["user_id"]: (r["r_score"], r["f_score"], r["m_score"], r["rfm_segment"])
           for r in rfm_segments(df, relative_error=0.0).collect()}
    # user 5: most recent (1 day), most frequent, biggest spender
    assert out[5] == (5, 5, 5, "champions")
    assert out[1] == (1, 1, 1, "lost")
    assert out[3] == (3, 3, 3, "potential_loyalist")
    assert out[9][0] is None and out[9][3] is None
    assert rfm_scores(df).columns == df.columns + ["r_score", "f_score", "m_score"]
