"""Anomalous engagement: planted bots are caught, ordinary (also heavy or sparse) users are not."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pyspark.sql import functions as F

from mktpipe.models.anomalies import detect_anomalies, exclude_anomalous, mark_anomalous

DAYS = 20
START = dt.date(2026, 9, 1)
SCHEMA = "user_id string, activity_date date, events long, views long, watch_seconds double"


def normal_users(n: int, seed: int = 3) -> list[tuple]:
    """Lognormal activity levels (sigma 0.75, as the generator's engagement) with Poisson days;
    the last user is sparse (mostly inactive days), user 1 a heavy but human user."""
    rng = np.random.default_rng(seed)
    rates = np.exp(np.log(30) + 0.75 * rng.normal(size=n))
    rates[1], rates[-1] = 250.0, 0.3
    rows = []
    for u in range(n):
        for d in range(DAYS):
            events = int(rng.poisson(rates[u]))
            views = int(rng.binomial(events, 0.7))
            rows.append((f"n{u:03d}", START + dt.timedelta(days=d), events, views,
                         float(views * rng.uniform(5, 40))))
    return rows


def planted() -> list[tuple]:
    day = [START + dt.timedelta(days=d) for d in range(DAYS)]
    level_bot = [("bot_level", d, 20_000, 19_000, 60_000.0) for d in day]  # never sleeps
    burst_bot = [("bot_burst", d, 30, 20, 500.0) for d in day[:-1]] + \
        [("bot_burst", day[-1], 30_000, 29_000, 50_000.0)]  # one scripted day
    marathon = [("marathon", d, 30, 20, 500.0) for d in day[:-1]] + \
        [("marathon", day[-1], 40, 30, 80_000.0)]  # 22 h of watch time in a day
    idle = [("idle", d, 0, 0, 0.0) for d in day[:-1]] + [("idle", day[-1], 40, 30, 900.0)]
    return level_bot + burst_bot + marathon + idle  # idle: a first busy day is no bot


@pytest.fixture(scope="module")
def anomalies(spark):
    daily = spark.createDataFrame(normal_users(60) + planted(), SCHEMA)
    daily = daily.union(spark.createDataFrame([("n000", START - dt.timedelta(days=1), None,
                                                None, None)], SCHEMA))  # a null day
    return {r["user_id"]: r for r in detect_anomalies(daily).collect()}


def test_planted_bots_are_flagged_with_reasons(anomalies):
    level = anomalies["bot_level"]
    assert level["is_anomalous"] and "events: level z=" in level["anomaly_reason"]
    assert level["max_robust_z"] > 6
    burst = anomalies["bot_burst"]
    assert burst["is_anomalous"] and "events: burst z=" in burst["anomaly_reason"]
    assert "level" not in burst["anomaly_reason"]  # its typical day is ordinary
    marathon = anomalies["marathon"]
    assert marathon["is_anomalous"]
    assert "watch_seconds: 80000 s in one day > 72000" in marathon["anomaly_reason"]
    assert "events" not in marathon["anomaly_reason"]


def test_normal_users_are_not_flagged(anomalies):
    normal = {u: r for u, r in anomalies.items() if u.startswith("n")}
    assert len(normal) == 60
    flagged = {u: r["anomaly_reason"] for u, r in normal.items() if r["is_anomalous"]}
    assert flagged == {}
    assert all(r["anomaly_reason"] is None for r in normal.values())
    assert max(r["max_robust_z"] for r in normal.values()) < 6
    assert not anomalies["idle"]["is_anomalous"], anomalies["idle"]


def test_threshold_from_settings(spark):
    rows = [("a", START + dt.timedelta(days=d), 10 if d else 100, 0, 0.0) for d in range(10)]
    rows += [("b", START + dt.timedelta(days=d), 10, 0, 0.0) for d in range(10)]
    daily = spark.createDataFrame(rows, SCHEMA)
    strict = {r["user_id"]: r["is_anomalous"] for r in
              detect_anomalies(daily, ["events"], config={"z_threshold": 2.0}).collect()}
    lenient = {r["user_id"]: r["is_anomalous"] for r in detect_anomalies(daily, ["events"])
               .collect()}
    assert strict == {"a": True, "b": False}  # log1p(100) - log1p(10) = 2.2 over scale 0.5
    assert lenient == {"a": False, "b": False}
    with pytest.raises(ValueError, match="z_threshold"):
        detect_anomalies(daily, config={"z_threshold": 0})
    with pytest.raises(ValueError, match="missing columns"):
        detect_anomalies(daily, ["clicks"])


def test_exclude_and_mark(spark):
    features = spark.createDataFrame([("a", 1.0), ("b", 2.0), ("c", 3.0)],
                                     "user_id string, x double")
    flags = spark.createDataFrame([("a", True, "events: burst"), ("b", False, None)],
                                  "user_id string, is_anomalous boolean, anomaly_reason string")
    kept = sorted(r["user_id"] for r in exclude_anomalous(features, flags).collect())
    assert kept == ["b", "c"]
    marked = {r["user_id"]: (r["is_anomalous"], r["anomaly_reason"])
              for r in mark_anomalous(features, flags).collect()}
    assert marked == {"a": (True, "events: burst"), "b": (False, None), "c": (False, None)}
    assert mark_anomalous(features, flags).filter(F.col("x") > 0).count() == 3


def test_the_stage_flags_each_snapshot_once_for_train_and_score(spark, config, tmp_path):
    """silver.user_anomalies holds the detector's flags of the snapshot (days before it
    only); train and score read them, and say what to run when they are missing."""
    from mktpipe.catalog import USER_ANOMALIES, USER_DAILY
    from mktpipe.errors import InputError
    from mktpipe.models.anomaly_stage import anomaly_flags, detect_for_snapshot, run_anomalies
    from mktpipe.storage.delta_rs import DeltaRsStore

    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    config = config.model_copy(deep=True)  # the z-score rules (this data is built for them)
    config.models.anomalies = {**config.models.anomalies, "method": "zscore"}
    snapshot = START + dt.timedelta(days=DAYS)
    with pytest.raises(InputError, match="run the daily stage"):
        run_anomalies(spark, config, snapshot, store=store)
    rows = [(*r[:4], 0, 0, 0, r[4]) for r in normal_users(60) + planted()]
    # on the snapshot day itself: outside the window, must not count
    rows.append(("n002", snapshot, 50_000, 49_000, 0, 0, 0, 90_000.0))
    daily = spark.createDataFrame(rows, "user_id string, activity_date date, events long, "
                                        "views long, likes long, comments long, shares long, "
                                        "watch_seconds double")
    store.write(daily, USER_DAILY, partition_by=USER_DAILY.partitions)
    with pytest.raises(InputError, match=f"mktpipe anomalies --snapshot-date {snapshot}"):
        anomaly_flags(store, snapshot, "score")

    result = run_anomalies(spark, config, snapshot, store=store, run_id="a1")
    got = {r.user_id: r for r in anomaly_flags(store, snapshot, "score").collect()}
    expected = {r.user_id: r for r in detect_for_snapshot(store, config, snapshot).collect()}
    assert {u: r.is_anomalous for u, r in got.items()} == \
        {u: r.is_anomalous for u, r in expected.items()}
    assert {u for u, r in got.items() if r.is_anomalous} == {"bot_level", "bot_burst",
                                                              "marathon"}
    assert result.details["summary"] == {"users": 64, "anomalous": 3}
    assert result.tables_written == {USER_ANOMALIES: store.version(USER_ANOMALIES)}
    run_anomalies(spark, config, snapshot, store=store, run_id="a2")  # a re-run replaces
    assert store.read(USER_ANOMALIES).count() == 64


def test_learned_detectors_and_the_vote(spark):
    """Isolation forest and local outlier factor on the users' profiles (fitted on a sample,
    applied with mapInPandas) flag about the contamination share, the never-sleeping bot
    first; the vote flags exactly the users at least two of the three methods flag."""
    daily = spark.createDataFrame(normal_users(60) + planted(), SCHEMA)
    settings = {"contamination": 0.05}
    got = {m: {r["user_id"]: r for r in detect_anomalies(daily, config=settings, method=m)
               .collect()} for m in ("zscore", "isolation_forest", "lof", "vote")}
    for method, label in (("isolation_forest", "isolation forest"),
                          ("lof", "local outlier factor")):
        flagged = {u for u, r in got[method].items() if r["is_anomalous"]}
        assert 2 <= len(flagged) <= 5, (method, flagged)  # 5 % of 64 users, from a quantile
        assert "bot_level" in flagged
        assert got[method]["bot_level"]["anomaly_reason"].startswith(f"{label}: score ")
        assert all(r["anomaly_reason"] is None for u, r in got[method].items()
                   if u not in flagged)
    for user, row in got["vote"].items():
        votes = sum(bool(got[m][user]["is_anomalous"])
                    for m in ("zscore", "isolation_forest", "lof"))
        assert row["is_anomalous"] == (votes >= 2), user
    assert got["vote"]["bot_level"]["is_anomalous"]
    with pytest.raises(ValueError, match="method must be one of"):
        detect_anomalies(daily, method="svm")


def test_lof_scores_equal_scikit_learn(spark):
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import RobustScaler

    from mktpipe.model_settings import AnomalySettings
    from mktpipe.models.anomalies import model_flags

    rng = np.random.default_rng(5)
    x = np.vstack([rng.normal(size=(80, 2)), [[6.0, 6.0], [-5.0, 7.0]]])
    profile = spark.createDataFrame([(f"u{i}", float(a), float(b)) for i, (a, b) in enumerate(x)],
                                    "user_id string, a double, b double")
    got = {r["user_id"]: r for r in model_flags(profile, "lof", AnomalySettings(
        contamination=0.03, n_neighbors=10)).collect()}
    reference = make_pipeline(RobustScaler(), LocalOutlierFactor(n_neighbors=10, novelty=True))
    expected = -reference.fit(x).score_samples(x)
    for i, want in enumerate(expected):
        assert got[f"u{i}"]["_score_lof"] == pytest.approx(want, rel=1e-9)
    threshold = np.quantile(expected, 0.97)
    assert {u for u, r in got.items() if r["_flag_lof"]} == \
        {f"u{i}" for i, v in enumerate(expected) if v > threshold}
    assert got["u80"]["_flag_lof"] and got["u81"]["_flag_lof"]


def test_detection_quality_counts(spark):
    from mktpipe.models.anomalies import detection_quality

    flags = spark.createDataFrame([("a", True), ("b", True), ("c", False), ("d", False)],
                                  "user_id string, is_anomalous boolean")
    q = detection_quality(flags, {"a", "c", "zz"})  # zz: planted but not in the data
    assert q == {"users": 4, "planted": 2, "flagged": 2, "true_positives": 1,
                 "precision": 0.5, "recall": 0.5}
