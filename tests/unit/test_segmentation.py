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
                            config={"k_min": 3, "k_max": 6, "log1p": False})


def test_k_by_silhouette_finds_planted_clusters(model, blobs):
    metrics = model.metrics
    assert metrics["k"] == 4, metrics
    assert set(metrics["silhouette_by_k"]) == {"3", "4", "5", "6"}
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
