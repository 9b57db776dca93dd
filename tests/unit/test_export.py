"""Activation export: HMAC-SHA256 pseudonymisation in Spark equals Python's hmac; key errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pandas as pd
import pytest
from pyspark.sql import functions as F

from mktpipe.config import ConfigError
from mktpipe.score import export as E
from mktpipe.score.stage import value_tiers

IDS = ["u0000001", "u0000002", "ünïcødé-用户", "", "a" * 300]


def _py_hmac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("key", [b"k" * 16, b"short-but-ok-key-0123", b"x" * 64, b"y" * 200])
def test_hmac_matches_python_hmac(spark, key):
    df = spark.createDataFrame([(i,) for i in IDS], "user_id string")
    got = {r["user_id"]: r["h"] for r in
           df.select("user_id", E.hmac_sha256(F.col("user_id"), key).alias("h")).collect()}
    assert got == {i: _py_hmac(key, i) for i in IDS}


def test_pseudonymise_drops_plain_ids_and_differs_by_key(spark):
    df = spark.createDataFrame([(i, 1) for i in IDS[:2]], "user_id string, x int")
    a = E.pseudonymise(df, b"a" * 32)
    b = E.pseudonymise(df, b"b" * 32)
    assert "user_id" not in a.columns
    keys_a = {r[E.USER_KEY] for r in a.collect()}
    keys_b = {r[E.USER_KEY] for r in b.collect()}
    assert len(keys_a) == 2 and not keys_a & keys_b
    assert not keys_a & set(IDS)


def test_missing_or_short_key_is_a_config_error(config, monkeypatch):
    monkeypatch.delenv(config.export.key_env, raising=False)
    with pytest.raises(ConfigError, match=config.export.key_env):
        E.export_key(config)
    monkeypatch.setenv(config.export.key_env, "short")
    with pytest.raises(ConfigError, match="shorter than"):
        E.export_key(config)
    monkeypatch.setenv(config.export.key_env, "0123456789abcdef0123")
    assert E.export_key(config) == b"0123456789abcdef0123"


def _segments(spark, n=40):
    rows = [(f"u{i:04d}", dt.date(2026, 10, 1), i / n, "t", float(i), "low", 0.1, "b", "s",
             "loyal", f"u{i % 3:04d}", 50.0, False) for i in range(n)]
    cols = [{E.USER_KEY: "user_id", "community_key": "community_id"}.get(c, c)
            for c in E.EXPORT_COLUMNS]
    schema = ("user_id string, snapshot_date date, churn_probability double, churn_tier string,"
              " clv_90d double, clv_tier string, intent_probability double, intent_tier string,"
              " segment string, rfm_segment string, community_id string,"
              " influence_percentile double, is_anomalous boolean")
    return spark.createDataFrame(rows, schema).select(*cols)


def test_write_export_csv_and_parquet_idempotent(spark, config, tmp_path):
    cfg = config.model_copy(update={"paths": config.paths.model_copy(
        update={"exports": str(tmp_path)})})
    key = b"k" * 32
    day = dt.date(2026, 10, 1)
    first = E.write_export(_segments(spark), cfg, day, 40, key)
    again = E.write_export(_segments(spark), cfg, day, 40, key)  # re-run replaces, no dupes
    assert first["paths"] == again["paths"]
    parquet = pd.read_parquet(again["paths"]["parquet"])
    csv = pd.concat(pd.read_csv(p) for p in
                    sorted(__import__("glob").glob(again["paths"]["csv"] + "/*.csv")))
    assert len(parquet) == len(csv) == 40
    assert list(csv.columns) == list(E.EXPORT_COLUMNS)
    assert set(parquet[E.USER_KEY]) == {_py_hmac(key, f"u{i:04d}") for i in range(40)}
    # communities are named after members (user ids): pseudonymised with the same key
    assert set(parquet["community_key"]) == {_py_hmac(key, f"u{i:04d}") for i in range(3)}
    assert not csv.astype(str).apply(lambda c: c.str.fullmatch(r"u\d{4}")).any().any()
    assert not any(c.startswith("_tmp") for c in __import__("os").listdir(
        E.export_root(cfg, day)))


def test_value_tiers_follow_percentiles_and_zero_is_lowest(spark):
    values = [0.0] * 50 + [float(v) for v in range(1, 51)]  # half the users spend nothing
    df = spark.createDataFrame([(v,) for v in values], "clv double")
    tier, cuts = value_tiers(df, "clv", {"vip": 0.95, "high": 0.8, "medium": 0.5, "low": 0.0})
    got = dict(df.groupBy(tier.alias("t")).count().collect())
    # cut-offs: the inverted-CDF percentiles (the smallest value with at least q of the users
    # at or below it); the median is 0 here, and a zero never leaves the lowest tier
    import numpy as np

    expected = {name: float(np.quantile(values, q, method="inverted_cdf"))
                for name, q in (("vip", 0.95), ("high", 0.8), ("medium", 0.5))}
    assert cuts == expected == {"vip": 45.0, "high": 30.0, "medium": 0.0}
    assert got == {"vip": 6, "high": 15, "medium": 29, "low": 50}
