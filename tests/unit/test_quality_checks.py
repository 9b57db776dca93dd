"""The quality-check framework, and the feature stage refusing to write bad features."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import BRONZE_EVENTS, BRONZE_ORDERS, USER_FEATURES
from mktpipe.errors import EXIT_QUALITY, QualityCheckError
from mktpipe.features.daily import run_daily_range
from mktpipe.features.user_features import run_features
from mktpipe.quality import checks as Q
from mktpipe.storage.delta_rs import DeltaRsStore

D = dt.date(2026, 3, 10)
SCHEMA = "user_id string, snapshot_date date, share double, views long, amount double"
ROWS = [
    ("u1", D, 0.5, 3, 1.0),
    ("u1", D, 0.2, 1, 2.0),  # duplicate key
    (None, D, 0.0, 0, 0.0),  # null key
    ("u3", D, 1.5, 2, 0.0),  # share above 1
    ("u4", D, -0.1, -2, None),  # share below 0, negative count
    ("u5", D, float("nan"), 0, -3.0),  # NaN share, negative amount
    ("u6", D, None, None, None),  # nulls are no violation of a range
]
KEYS = ["user_id", "snapshot_date"]


def checks():
    return [
        Q.unique_check(KEYS),
        Q.not_null_check(KEYS, name="not_null_keys"),
        Q.range_check("share", 0.0, 1.0, name="share_in_0_1"),
        Q.non_negative_check("views"),
        Q.non_negative_check("amount", kind=Q.SOFT),
        Q.Check("views_below_100", Q.HARD, F.col("views") >= 100, ("user_id",)),
    ]


def test_each_violation_type_is_counted_with_sample_keys(spark):
    df = spark.createDataFrame(ROWS, SCHEMA)
    results = {r["check"]: r for r in Q.run_checks(df, checks(), key_cols=KEYS)}
    assert {name: r["violations"] for name, r in results.items()} == {
        "unique_user_id_snapshot_date": 2, "not_null_keys": 1, "share_in_0_1": 3,
        "non_negative_views": 1, "non_negative_amount": 1, "views_below_100": 0}
    assert all(r["rows"] == 7 for r in results.values())
    assert sorted(results["share_in_0_1"]["sample"], key=lambda s: s["user_id"]) == [
        {"user_id": "u3", "snapshot_date": "2026-03-10"},
        {"user_id": "u4", "snapshot_date": "2026-03-10"},
        {"user_id": "u5", "snapshot_date": "2026-03-10"}]
    assert results["not_null_keys"]["sample"] == [{"user_id": None, "snapshot_date": "2026-03-10"}]
    assert results["views_below_100"] == {"check": "views_below_100", "kind": "hard",
                                          "violations": 0, "rows": 7, "passed": True,
                                          "sample": []}


def test_sample_is_at_most_five_keys(spark):
    df = spark.range(20).select(F.col("id").alias("user_id"), (-F.col("id") - 1).alias("v"))
    (result,) = Q.run_checks(df, [Q.non_negative_check("v")], key_cols=["user_id"])
    assert result["violations"] == 20 and len(result["sample"]) == 5


def test_hard_failure_raises_naming_check_count_and_keys(spark, caplog):
    df = spark.createDataFrame(ROWS, SCHEMA)
    results = Q.run_checks(df, checks(), key_cols=KEYS)
    with pytest.raises(QualityCheckError) as err:
        Q.raise_for_failures(results, "gold.test")
    message = str(err.value)
    assert "4 hard quality check(s) failed on gold.test" in message
    assert "unique_user_id_snapshot_date: 2 of 7 rows" in message
    assert "'user_id': 'u3'" in message
    assert "non_negative_amount" not in message  # soft: logged, not raised
    assert err.value.exit_code == EXIT_QUALITY
    assert err.value.results == results
    assert "soft quality check failed on gold.test: non_negative_amount" in caplog.text


def test_passing_checks_raise_nothing(spark):
    df = spark.createDataFrame([("u1", D, 0.5, 3, 1.0)], SCHEMA)
    results = Q.run_checks(df, checks(), key_cols=KEYS)
    assert all(r["passed"] for r in results)
    Q.raise_for_failures(results, "gold.test")


def test_check_arguments_are_validated():
    with pytest.raises(ValueError, match="kind must be 'hard' or 'soft'"):
        Q.Check("x", "fatal", F.lit(True))
    with pytest.raises(ValueError, match="violation must be a pyspark Column"):
        Q.Check("x", Q.HARD, "views < 0")


def test_feature_stage_writes_nothing_when_a_hard_check_fails(spark, config, tmp_path):
    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    ts = dt.datetime(2026, 3, 9, 12, tzinfo=dt.timezone.utc)
    event = ("e1", "u1", "view", ts, None, None, "s1", 3.0, None, None, ts.date(), "t", None,
             None, None)
    refund = ("o1", "u1", ts, -50.0, "USD", None, None, -50.0, "t", None, None, None)
    store.write(spark.createDataFrame([event], S.BRONZE_SCHEMAS["events"]), BRONZE_EVENTS,
                partition_by=["event_date"])
    store.write(spark.createDataFrame([refund], S.BRONZE_SCHEMAS["orders"]), BRONZE_ORDERS)
    run_daily_range(spark, config, [ts.date()], store=store)
    with pytest.raises(QualityCheckError, match=r"non_negative_monetary_total: 1 of 1 rows.*u1"):
        run_features(spark, config, D, store=store)
    assert not store.exists(USER_FEATURES)
