"""Daily aggregates and point-in-time user features on tiny hand-made bronze tables.

Snapshot S = 2026-03-10 (a Tuesday). The 7-day window is S-7 .. S-1: an event at S-7 00:00:00
is inside, one at S-8 23:59:59 outside, one at S 00:00:00 is the future.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import (
    BRONZE,
    BRONZE_FOLLOWS,
    BRONZE_ORDERS,
    BRONZE_USERS,
    COMMENT_SENTIMENT,
    PURCHASE_SUMMARY,
    USER_DAILY,
    USER_FEATURES,
)
from mktpipe.features import columns as C
from mktpipe.features.daily import daily_aggregates, read_bronze_days, run_daily, run_daily_range
from mktpipe.features.user_features import FeatureSources, build_user_features, run_features
from mktpipe.storage.delta_rs import DeltaRsStore

SNAP = dt.date(2026, 3, 10)
UTC = dt.timezone.utc


def at(days_before: int, hh: int = 12, mm: int = 0, ss: int = 0) -> dt.datetime:
    day = SNAP - dt.timedelta(days=days_before)
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=UTC)


def bronze(spark, source: str, rows: list[dict]):
    """A bronze DataFrame with the exact bronze schema; unnamed columns are null."""
    schema = S.BRONZE_SCHEMAS[source]
    derived = {"events": ("event_date", S.TS), "comments": ("comment_date", S.TS)}
    data = []
    for row in rows:
        row = {S.RUN_ID: "test", **row}
        if source in derived:
            col, ts = derived[source]
            row.setdefault(col, row[ts].date())
        data.append(tuple(row.get(f) for f in schema.fieldNames()))
    return spark.createDataFrame(data, schema)


def ev(eid, user, kind, ts, video=None, session="s1", watch=None):
    creator = {"v1": "c1", "v2": "c2", "v3": "c1"}.get(video)
    return {"event_id": eid, "user_id": user, "event_type": kind, "ts": ts, "video_id": video,
            "creator_id": creator, "session_id": session, "watch_time_s": watch}


def order(oid, user, ts, usd):
    return {"order_id": oid, "user_id": user, "ts": ts, "amount": usd, "currency": "USD",
            "amount_usd": usd}


def user(uid, signup, country="MX", language="es"):
    return {"user_id": uid, "signup_date": signup, "country": country, "language": language,
            "age_band": "18-24", "gender": "female", "device": "ios",
            "acquisition_channel": "organic", "is_creator": False}


VIDEOS = [
    {"video_id": "v1", "creator_id": "c1", "duration_s": 10.0, "category": "beauty"},
    {"video_id": "v2", "creator_id": "c2", "duration_s": 20.0, "category": "food"},
    {"video_id": "v3", "creator_id": "c1", "duration_s": 30.0, "category": "beauty"},
]
EVENTS = [
    ev("e1", "u1", "view", at(1, 23, 59, 59), "v1", "s1", 5.0),  # S-1 evening
    ev("e2", "u1", "like", at(1, 23, 59, 59), "v1", "s1"),
    ev("e3", "u1", "view", at(7, 0, 0, 0), "v2", "s2", 30.0),  # first instant of the 7-day window
    ev("e4", "u1", "view", at(8, 23, 59, 59), "v3", "s3", 15.0),  # last instant before it
    ev("e5", "u1", "view", at(40, 9), "v1", "s4", None),  # watch time unknown
    ev("e6", "u1", "purchase", at(5, 12), None, "s5"),
    ev("e10", "u2", "view", at(2, 8), "v2", "s10", 10.0),
    ev("e11", "u2", "profile_visit", at(2, 8, 5), None, None),  # the None row
    ev("e20", "u3", "view", at(100), "v1", "s20", 3.0),  # outside the 90-day population window
    ev("e40", "u5", "share", at(3, 19), "v3", "s40"),  # a Saturday
]
ORDERS = [order("o1", "u1", at(5, 12), 10.0), order("o2", "u1", at(20, 15), 30.0),
          order("o3", "u3", at(100, 8), 25.0)]  # a buyer outside the feature population
FOLLOWS = [
    {"follower_id": "u2", "followee_id": "u1", "followed_at": at(10)},
    {"follower_id": "u1", "followee_id": "u2", "followed_at": at(9)},
    {"follower_id": "u5", "followee_id": "u1", "followed_at": at(1, 23)},
]
USERS = [
    user("u1", dt.date(2026, 1, 1)),
    user("u2", dt.date(2026, 2, 1), "US", "en"),
    user("u3", dt.date(2025, 1, 1)),
    {"user_id": "u5", "signup_date": dt.date(2026, 1, 15)},  # demographics unknown (None)
]
SENTIMENT = [  # silver.comment_sentiment rows, as the sentiment stage writes them
    ("cm1", "u1", "v1", at(3, 10), 0.5, "positive"),
    ("cm2", "u1", "v2", at(1, 22), -0.6, "negative"),
    ("cm0", "u1", "v2", at(95, 22), -0.9, "negative"),  # before the 90-day sentiment window
]


def sentiment_df(spark, rows):
    return spark.createDataFrame(
        [(c, u, v, ts, ts.date(), "en", score, label, "test")
         for c, u, v, ts, score, label in rows],
        "comment_id string, user_id string, video_id string, ts timestamp, comment_date date, "
        "language string, sentiment_score double, sentiment_label string, _run_id string",
    )


def write_bronze(spark, store, source, rows, mode="append"):
    store.write(bronze(spark, source, rows), BRONZE[source], mode=mode,
                partition_by=BRONZE[source].partitions)


@pytest.fixture(scope="module")
def world(spark, config, tmp_path_factory):
    """Bronze + silver.comment_sentiment in a store; daily aggregates and features at SNAP."""
    store = DeltaRsStore(spark, str(tmp_path_factory.mktemp("features") / "wh"))
    for source, rows in (("users", USERS), ("videos", VIDEOS), ("events", EVENTS),
                         ("orders", ORDERS), ("follows", FOLLOWS)):
        write_bronze(spark, store, source, rows)
    store.write(sentiment_df(spark, SENTIMENT), COMMENT_SENTIMENT,
                partition_by=["comment_date"])
    dates = sorted({r["ts"].date() for r in EVENTS + ORDERS})
    run_daily_range(spark, config, dates, store=store, run_id="daily-1")
    result = run_features(spark, config, SNAP, store=store, run_id="feat-1")
    features = store.read(USER_FEATURES)
    return {"store": store, "result": result, "features": features,
            "rows": {r.user_id: r for r in features.collect()}}


def test_population_is_users_active_in_the_90_days_before(world):
    assert sorted(world["rows"]) == ["u1", "u2", "u5"]  # u3 last seen 100 days before
    assert world["result"].rows_out == 3
    assert world["features"].columns == C.feature_columns([7, 30, 90])


def test_purchase_summary_holds_every_buyer_before_the_snapshot(world):
    summary = {r.user_id: r for r in world["store"].read(PURCHASE_SUMMARY).collect()}
    # u1: orders on S-20 (30.0) and S-5 (10.0), observed to S-1; u3 (not in the features,
    # last seen 100 days before S) bought once, so BG/NBD still sees a customer who stopped
    assert {u: (r.frequency, r.recency, r.T, r.monetary_value, r.snapshot_date)
            for u, r in summary.items()} == {
        "u1": (1, 15.0, 19.0, 10.0, SNAP), "u3": (0, 0.0, 99.0, 0.0, SNAP)}
    assert world["result"].details["buyers"] == 2
    assert all(q["passed"] for q in world["result"].details["purchase_summary_quality"])
    assert world["result"].tables_written.keys() == {USER_FEATURES, PURCHASE_SUMMARY}


def test_window_edges_s_minus_7_is_in_the_7_day_window_s_minus_8_is_not(world):
    u1 = world["rows"]["u1"]
    # views: S-1 (e1) and S-7 00:00:00 (e3) in 7d; S-8 23:59:59 (e4) joins at 30d; S-40 at 90d
    assert (u1.views_7d, u1.views_30d, u1.views_90d) == (2, 3, 4)
    assert (u1.watch_seconds_7d, u1.watch_seconds_30d) == (35.0, 50.0)
    # active days: S-1, S-5, S-7 | + S-8 and S-20 (an order-only day) | + S-40
    assert (u1.active_days_7d, u1.active_days_30d, u1.active_days_90d) == (3, 5, 6)
    assert (u1.sessions_7d, u1.sessions_30d, u1.sessions_90d) == (3, 4, 5)
    assert u1.views_trend_7_30 == pytest.approx((2 / 7) / (3 / 30))


def test_feature_values_of_hand_computed_users(spark, world):
    cols = ["user_id", "recency_days", "order_count", "monetary_total", "monetary_mean",
            "first_order_days", "tenure_days", "likes_7d", "purchases_7d", "engagement_rate_7d",
            "completion_rate_7d", "completion_rate_30d", "days_since_last_active",
            "weekend_share", "night_share", "evening_share", "category_entropy", "top_category",
            "creator_loyalty", "followers", "following", "follow_back_ratio",
            "sentiment_mean_90d", "sentiment_last", "negative_share_90d", "comment_count_90d",
            "country", "is_creator"]
    got = world["features"].select(cols)
    entropy_u1 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    expected = spark.createDataFrame([
        ("u1", 5, 2, 40.0, 20.0, 20, 68, 1, 1, 0.5, 0.75, 2.0 / 3, 1, 0.0, 1 / 6, 0.5,
         entropy_u1, "beauty", 0.75, 2, 1, 0.5, -0.05, -0.6, 0.5, 2, "MX", False),
        # events but no orders: counts 0, amounts 0.0, recency/mean/first order null
        ("u2", None, 0, 0.0, None, None, 37, 0, 0, 0.0, 0.5, 0.5, 2, 1.0, 0.0, 0.0,
         0.0, "food", 1.0, 1, 1, 1.0, None, None, None, 0, "US", False),
        # no views: view-based rates null; no followers: follow-back null; no comments: count 0
        ("u5", None, 0, 0.0, None, None, 54, 0, 0, None, None, None, 3, 1.0, 0.0, 1.0,
         None, None, None, 0, 1, None, None, None, None, 0, None, None),
    ], got.schema)
    assert_approx_df_equality(got, expected, 1e-9, ignore_row_order=True)


def test_weekday_concentration_and_graph_nulls_without_graph_table(world):
    u1, u5 = world["rows"]["u1"], world["rows"]["u5"]
    p = [3 / 6, 2 / 6, 1 / 6]  # Monday, Thursday, Tuesday
    assert u1.weekday_concentration == pytest.approx(
        1 + sum(x * math.log(x) for x in p) / math.log(7))
    assert u5.weekday_concentration == pytest.approx(1.0)
    assert all(world["rows"][u][c] is None for u in ("u1", "u2") for c in C.GRAPH)
    assert any("graph_metrics does not exist" in n for n in world["result"].details["notices"])
    assert all(q["passed"] or q["kind"] == "soft" for q in world["result"].details["quality"])


def test_graph_metrics_of_the_snapshot_are_joined(spark, config, world):
    store = world["store"]
    graph = spark.createDataFrame(
        [("u1", SNAP, 0.4, 0.9, "7", 12), ("u1", SNAP - dt.timedelta(days=1), 0.1, 0.1, "1", 2)],
        "user_id string, snapshot_date date, pagerank double, influence_percentile double, "
        "community_id string, community_size long",
    )
    sources = FeatureSources(daily=store.read(USER_DAILY), orders=store.read(BRONZE_ORDERS),
                             users=store.read(BRONZE_USERS), follows=store.read(BRONZE_FOLLOWS),
                             graph_metrics=graph)
    rows = {r.user_id: r for r in build_user_features(sources, SNAP, config, "x")
            .select("user_id", *C.GRAPH, "comment_count_90d").collect()}
    assert tuple(rows["u1"][c] for c in C.GRAPH) == (0.4, 0.9, "7", 12)
    assert rows["u2"].pagerank is None
    assert rows["u1"].comment_count_90d is None  # no sentiment table: unknown, not 0


def test_nothing_at_or_after_the_snapshot_changes_any_feature(spark, config, world):
    store, before = world["store"], world["features"].drop(C.RUN_ID).collect()
    summary_before = store.read(PURCHASE_SUMMARY).drop(C.RUN_ID).collect()
    future = [at(0, 0, 0, 0), at(-1, 10)]  # S 00:00:00 and S+1
    write_bronze(spark, store, "users", [user("u6", SNAP)])
    write_bronze(spark, store, "events", [
        ev("f1", "u1", "view", future[0], "v2", "s9", 20.0),
        ev("f2", "u2", "purchase", future[1]),
        ev("f3", "u3", "view", future[0], "v1", "s9", 1.0),  # an inactive user comes back
        ev("f4", "u6", "view", future[0], "v1", "s9", 1.0),  # a user who signs up at S
    ])
    write_bronze(spark, store, "orders", [order("f5", "u2", future[0], 99.0)])
    write_bronze(spark, store, "follows", [
        {"follower_id": "u1", "followee_id": "u5", "followed_at": future[0]}])
    store.write(sentiment_df(spark, [("f6", "u5", "v1", future[0], -1.0, "negative")]),
                COMMENT_SENTIMENT)
    run_daily_range(spark, config, [SNAP, SNAP + dt.timedelta(days=1)], store=store)
    run_features(spark, config, SNAP, store=store, run_id="feat-2")
    after = store.read(USER_FEATURES)
    assert_df_equality(after.drop(C.RUN_ID), spark.createDataFrame(before, after.drop(
        C.RUN_ID).schema), ignore_row_order=True)
    assert {r[C.RUN_ID] for r in after.collect()} == {"feat-2"}  # re-run replaced, not added
    summary = store.read(PURCHASE_SUMMARY)  # u2's order at S 00:00:00 is not in it
    assert_df_equality(summary.drop(C.RUN_ID), spark.createDataFrame(
        summary_before, summary.drop(C.RUN_ID).schema), ignore_row_order=True)

    # control: the same comparison does see a change made before the snapshot
    write_bronze(spark, store, "events", [ev("f7", "u2", "view", at(1, 23, 59, 59), "v2", "s8",
                                             2.0)])
    run_daily(spark, config, SNAP - dt.timedelta(days=1), store=store)
    run_features(spark, config, SNAP, store=store)
    u2 = store.read(USER_FEATURES).filter(F.col("user_id") == "u2").first()
    assert u2.views_7d == 2


def test_daily_aggregate_row(spark):
    day = SNAP - dt.timedelta(days=1)
    events = bronze(spark, "events", [e for e in EVENTS if e["user_id"] == "u1"]
                    + [ev("x1", "u1", "view", at(1, 3), "v2", "s0", 40.0)])
    got = daily_aggregates(events, bronze(spark, "videos", VIDEOS),
                           bronze(spark, "orders", ORDERS)).filter(F.col(C.ACTIVITY_DATE) == day)
    row = got.first().asDict()
    assert got.columns == [c for c in C.DAILY_COLUMNS if c != C.RUN_ID]
    assert {k: row[k] for k in ("events", "views", "likes", "sessions", "watch_seconds",
                                "completion_views", "categories_touched", "orders",
                                "events_night", "events_evening")} == {
        "events": 3, "views": 2, "likes": 1, "sessions": 2, "watch_seconds": 45.0,
        "completion_views": 2, "categories_touched": 2, "orders": 0, "events_night": 1,
        "events_evening": 2}
    assert row["completion_rate"] == pytest.approx((0.5 + 1.0) / 2)  # 40 s of a 20 s video: 1
    assert row["views_by_category"] == {"beauty": 1, "food": 1}
    assert row["views_by_creator"] == {"c1": 1, "c2": 1}


def test_daily_run_replaces_only_its_days_and_reads_only_their_partitions(spark, config,
                                                                          tmp_path):
    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    d = dt.date(2026, 3, 20)
    day = [d - dt.timedelta(days=n) for n in range(4)]  # D, D-1, D-2, D-3

    def ts(date, hh):
        return dt.datetime(date.year, date.month, date.day, hh, tzinfo=UTC)

    write_bronze(spark, store, "events",
                 [ev(f"a{n}", "u1", "view", ts(x, 10), "v1", "s", 1.0) for n, x in enumerate(day)])
    run_daily_range(spark, config, day, store=store, run_id="backfill")
    before = store.read(USER_DAILY).collect()
    # a late event for D-1, a new one for D, and one for D-3 that a run for D must not pick up
    write_bronze(spark, store, "events", [
        ev("late", "u1", "like", ts(day[1], 11), "v1"), ev("new", "u2", "view", ts(d, 9), "v1"),
        ev("old", "u2", "view", ts(day[3], 9), "v1")])
    events, _, _ = read_bronze_days(spark, store, day[:2])
    plan = events._jdf.queryExecution().executedPlan().toString()
    assert re.search(r"PartitionFilters: \[[^\]]*event_date#\d+ IN \(2026-03-19,2026-03-20\)",
                     plan), plan
    result = run_daily(spark, config, d, store=store, run_id="daily-D")  # late_arrival_days = 1
    after = {(r.user_id, r.activity_date): r for r in store.read(USER_DAILY).collect()}
    assert result.details["dates"] == [day[1].isoformat(), d.isoformat()]
    untouched = [r for r in before if r.activity_date in (day[2], day[3])]
    assert [after[(r.user_id, r.activity_date)] for r in untouched] == untouched
    assert ("u2", day[3]) not in after
    assert after[("u1", day[1])].likes == 1 and after[("u1", day[1])][C.RUN_ID] == "daily-D"
    assert after[("u2", d)].views == 1
    assert len(after) == 5


def test_content_features_merge_the_daily_maps_of_the_active_window(spark):
    """Counts add up across days; the top category breaks a tie by the smaller name; a day
    before the active window and a user with empty maps count for nothing."""
    from mktpipe.features.engagement import content_features

    schema = ("user_id string, activity_date date, views_by_category map<string,bigint>, "
              "views_by_creator map<string,bigint>")
    day = lambda n: SNAP - dt.timedelta(days=n)  # noqa: E731
    daily = spark.createDataFrame([
        ("u1", day(1), {"music": 2, "beauty": 1}, {"c1": 3}),
        ("u1", day(5), {"beauty": 1}, {"c1": 1, "c2": 2}),
        ("u1", day(120), {"sport": 50}, {"c9": 50}),  # outside the 90-day window
        ("u2", day(2), {}, {}),
    ], schema)
    got = {r.user_id: r for r in content_features(daily, SNAP, 90).collect()}
    assert set(got) == {"u1", "u2"}
    assert got["u1"].top_category == "beauty"  # beauty 2, music 2: the smaller name
    assert got["u1"].category_entropy == pytest.approx(math.log(2))
    assert got["u1"].creator_loyalty == pytest.approx(4 / 6)
    assert (got["u2"].top_category, got["u2"].category_entropy, got["u2"].creator_loyalty) == (
        None, None, None)


def test_timing_features_of_a_user_with_orders_but_no_events_are_null(spark):
    """An order-only user has no events to share out: shares and weekday concentration are
    null (not a made-up 0), days since last active is still known."""
    from mktpipe.features.engagement import with_timing

    counts = ["_events", "_weekend", *(f"_part_{n}" for n, _, _ in C.DAYPARTS),
              *(f"_wd_{d}" for d in range(1, 8))]
    df = spark.createDataFrame([("u9", SNAP - dt.timedelta(days=3), *[0] * len(counts))],
                               ["user_id", "_last_active", *counts])
    row = with_timing(df, SNAP).first()
    assert row[C.DAYS_SINCE_LAST_ACTIVE] == 3
    assert row[C.WEEKEND_SHARE] is None and row[C.WEEKDAY_CONCENTRATION] is None
    assert all(row[C.daypart_share(n)] is None for n, _, _ in C.DAYPARTS)
