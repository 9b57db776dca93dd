"""Generated data end to end: ingest -> daily -> sentiment -> features -> labels.

200 users x 40 days. The labels are checked against the generator's planted churn dates, a
few users' features are recomputed with pandas straight from their bronze rows, and every
feature of every user is recomputed by an independent DuckDB SQL implementation of the
definitions (bench/features.py's peer) straight from the bronze files.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from mktpipe.catalog import (
    BRONZE_COMMENTS,
    BRONZE_EVENTS,
    BRONZE_ORDERS,
    COMMENT_SENTIMENT,
    USER_FEATURES,
    USER_LABELS,
)
from mktpipe.features import run_daily_range, run_features, run_labels
from mktpipe.generate import generate
from mktpipe.ingest import landing
from mktpipe.ingest.stage import run_ingest_dates
from mktpipe.storage.delta_rs import DeltaRsStore

pytestmark = pytest.mark.integration
START = dt.date(2026, 3, 1)
SNAP = dt.date(2026, 3, 21)
HORIZON = 14
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def pipeline(spark, config, tmp_path_factory):
    root = tmp_path_factory.mktemp("features-generated")
    generate(out=root / "landing", users=200, days=40, seed=11, start_date=START,
             dirty_rate=0.02)
    cfg = config.model_copy(deep=True)
    cfg.paths.landing = str(root / "landing")
    cfg.labels.churn_horizon_days = HORIZON
    cfg.labels.churn_active_before_days = HORIZON
    store = DeltaRsStore(spark, str(root / "wh"))
    dates = landing.landing_dates(cfg.paths.landing)
    run_ingest_dates(spark, cfg, dates, store=store, now=NOW)
    results = {"daily": run_daily_range(spark, cfg, dates, store=store)}
    try:
        from mktpipe.nlp.stage import run_sentiment_range

        results["sentiment"] = run_sentiment_range(spark, cfg, dates, store=store)
    except ImportError:  # the scorer's optional dependencies are missing
        pass
    results["features"] = run_features(spark, cfg, SNAP, store=store)
    results["labels"] = run_labels(spark, cfg, SNAP, store=store)
    truth = pd.read_parquet(root / "landing" / "_truth" / "users.parquet")
    features = store.read(USER_FEATURES).toPandas().set_index("user_id")
    labels = store.read(USER_LABELS).toPandas().set_index("user_id")
    return {"store": store, "results": results, "truth": truth.set_index("user_id"),
            "features": features, "labels": labels}


def test_stages_ran_and_counts_line_up(pipeline):
    res, features, labels = pipeline["results"], pipeline["features"], pipeline["labels"]
    assert res["daily"].rows_in > 5000 and res["daily"].rows_out > 300
    assert res["features"].rows_out == len(features) > 80
    assert set(labels.index) == set(features.index)  # same population: a 1:1 join
    hard = [q for q in res["features"].details["quality"] if q["kind"] == "hard"]
    assert all(q["passed"] for q in hard)


def test_features_are_not_degenerate(pipeline):
    f = pipeline["features"]
    for col in ("views_30d", "watch_seconds_30d", "active_days_30d", "sessions_30d",
                "days_since_last_active", "tenure_days", "completion_rate_30d",
                "category_entropy", "creator_loyalty", "followers", "following"):
        assert f[col].notna().mean() > 0.4, col
        assert f[col].std() > 0, col
    assert f["top_category"].nunique() >= 5
    assert (f["order_count"] > 0).sum() >= 3
    assert f["days_since_last_active"].between(1, 90).all()
    assert f["country"].notna().mean() > 0.95
    if "sentiment" in pipeline["results"]:
        assert f["comment_count_90d"].sum() > 20 and f["sentiment_mean_90d"].std() > 0


def test_churn_labels_agree_with_the_planted_churn_dates(pipeline):
    labels, truth = pipeline["labels"], pipeline["truth"]
    known = labels[labels["churned"].notna()].join(truth[["churn_date"]])
    churn = pd.to_datetime(known["churn_date"]).dt.date
    dead = churn.notna() & (churn <= SNAP)
    gone_by_end = churn.notna() & (churn < SNAP + dt.timedelta(days=HORIZON))
    assert len(known) > 60
    assert (known.loc[dead, "churned"] == 1).all()  # churned before S: never active after
    alive = ~gone_by_end
    assert (known.loc[alive, "churned"] == 0).mean() > 0.65  # quiet for 14 days happens
    assert ((known["churned"] == 1) == gone_by_end).mean() > 0.7
    # the data ends 2026-04-10: the 90-day CLV horizon is past it, so CLV is unknown, not 0
    assert labels["clv_90d"].isna().all()
    assert labels["will_purchase_7d"].notna().all()


def _by_hand(store, users):
    """Recompute a few features from raw bronze rows with pandas (independent of Spark)."""
    ev = store.read(BRONZE_EVENTS).filter(F.col("user_id").isin(users)).toPandas()
    od = store.read(BRONZE_ORDERS).filter(F.col("user_id").isin(users)).toPandas()
    ev["day"] = ev["event_date"]
    od["day"] = pd.to_datetime(od["ts"], utc=True).dt.date
    out = {}
    for u in users:
        e = ev[(ev.user_id == u) & (ev.day < SNAP)]
        o = od[(od.user_id == u) & (od.day < SNAP)]
        e7 = e[e.day >= SNAP - dt.timedelta(days=7)]
        e30 = e[e.day >= SNAP - dt.timedelta(days=30)]
        days30 = set(e30.day) | {d for d in o.day if d >= SNAP - dt.timedelta(days=30)}
        out[u] = {
            "views_7d": int((e7.event_type == "view").sum()),
            "views_30d": int((e30.event_type == "view").sum()),
            "likes_30d": int((e30.event_type == "like").sum()),
            "watch_seconds_30d": float(e30.watch_time_s.fillna(0).sum()),
            "active_days_30d": len(days30),
            "order_count": len(o),
            "monetary_total": float(o.amount_usd.sum()),
            "days_since_last_active": (SNAP - max(set(e.day) | set(o.day))).days,
        }
    return out


def test_spot_check_users_against_their_raw_events(pipeline):
    f = pipeline["features"]
    heavy = f["views_30d"].idxmax()
    buyer = f[f["order_count"] > 0]["monetary_total"].idxmax()
    light = f[f["views_30d"] > 0]["views_30d"].idxmin()
    expected = _by_hand(pipeline["store"], [heavy, buyer, light])
    for user, values in expected.items():
        for col, value in values.items():
            assert f.loc[user, col] == pytest.approx(value), (user, col)


def test_sentiment_table_contract(pipeline):
    if "sentiment" not in pipeline["results"]:
        pytest.skip("the sentiment scorer is not installed")
    from mktpipe.nlp.stage import SENTIMENT_COLUMNS

    store, result = pipeline["store"], pipeline["results"]["sentiment"]
    table = store.read(COMMENT_SENTIMENT)
    assert table.columns == list(SENTIMENT_COLUMNS)
    assert store.partition_columns(COMMENT_SENTIMENT) == ["comment_date"]
    assert result.rows_out == result.rows_in == store.read(BRONZE_COMMENTS).count()
    labels = {r.sentiment_label: r["count"] for r in table.groupBy("sentiment_label").count()
              .collect()}
    assert set(labels) <= {"positive", "negative", "neutral"} and len(labels) == 3
    assert table.filter(~F.col("sentiment_score").between(-1, 1)).count() == 0


def _bench_features():
    path = Path(__file__).resolve().parents[2] / "bench" / "features.py"
    spec = importlib.util.spec_from_file_location("bench_features", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_feature_equals_an_independent_duckdb_computation(pipeline, config):
    """The DuckDB peer reads the bronze Parquet files (2 % dirty input, quarantined rows
    gone), builds no daily table and shares no code with the Spark stages; every column but
    the graph and sentiment ones (null in the peer) must match for every user."""
    from mktpipe.features import columns as C
    from mktpipe.features.customer import sentiment_types

    peer_module = _bench_features()
    windows = tuple(config.features.windows_days)
    _, peer = peer_module.run_peer(pipeline["store"], SNAP, windows,
                                   config.features.active_window_days)
    skip = {*C.GRAPH, *sentiment_types(max(windows))}
    peer = peer[[c for c in peer.columns if c not in skip]]
    got = pipeline["features"].reset_index()[list(peer.columns)]
    assert len(peer) == len(got) > 80
    assert peer_module.compare(got, peer) == "ok"
