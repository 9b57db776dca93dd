"""Labels: churn semantics, horizons, and the data's end (null, never a false 0)."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from mktpipe import schemas as S
from mktpipe.catalog import BRONZE_EVENTS, BRONZE_ORDERS, USER_FEATURES, USER_LABELS
from mktpipe.features import columns as C
from mktpipe.features.labels import (
    build_labels,
    built_data_ends,
    compute_labels,
    data_end,
    final,
    refresh_labels,
    run_labels,
)
from mktpipe.storage.delta_rs import DeltaRsStore

SNAP = dt.date(2026, 3, 10)
UTC = dt.timezone.utc
LABEL_SCHEMA = "user_id string, snapshot_date date, churned int, clv_90d double, " \
               "will_purchase_7d int, data_end date"


def day(offset: int) -> dt.date:
    return SNAP + dt.timedelta(days=offset)


@pytest.fixture
def cfg(config):
    cfg = config.model_copy(deep=True)
    cfg.labels.churn_horizon_days = 30
    cfg.labels.churn_active_before_days = 30
    cfg.labels.clv_horizon_days = 90
    cfg.labels.purchase_horizon_days = 7
    cfg.features.active_window_days = 90
    return cfg


def activity(spark, rows):
    """(user, day offset, order amount or None) -> activity rows (event days and orders)."""
    return spark.createDataFrame(
        [(u, day(o), amount, amount is not None) for u, o, amount in rows],
        "user_id string, _day date, _amount_usd double, _is_order boolean",
    )


ROWS = [
    ("stays", -1, None), ("stays", 29, None),  # active on the horizon's last day: not churned
    ("churns", -3, None), ("churns", 30, None),  # back only after the 30-day horizon: churned
    ("lapsed", -45, None), ("lapsed", 2, None),  # not active in the 30 days before: no label
    ("buyer", -2, 20.0), ("buyer", 0, 5.0), ("buyer", 6, 7.0), ("buyer", 89, 1.0),
    ("buyer", 90, 1000.0), ("buyer", -1, 500.0),  # before S and after the horizon: not CLV
    ("late_buyer", -2, None), ("late_buyer", 7, 50.0),  # day 7 is outside the 7-day horizon
    ("newcomer", 0, None),  # first seen at S: not in the snapshot's population
    ("ancient", -91, None),  # outside the 90-day population window
]


def test_churn_clv_and_purchase_semantics(spark, cfg):
    got = compute_labels(activity(spark, ROWS), SNAP, day(200), cfg)
    expected = spark.createDataFrame([
        ("stays", SNAP, 0, 0.0, 0, day(200)),
        ("churns", SNAP, 1, 0.0, 0, day(200)),
        ("lapsed", SNAP, None, 0.0, 0, day(200)),
        ("buyer", SNAP, 0, 13.0, 1, day(200)),
        ("late_buyer", SNAP, 0, 50.0, 0, day(200)),
    ], LABEL_SCHEMA)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_labels_whose_horizon_passes_the_data_end_are_null_never_zero(spark, cfg):
    # data ends (exclusive) 30 days after S: churn (30 d) and purchase (7 d) are known, CLV is not
    got = {r.user_id: r for r in compute_labels(activity(spark, ROWS), SNAP, day(30), cfg)
           .collect()}
    assert got["churns"].churned == 1 and got["buyer"].will_purchase_7d == 1
    assert all(r.clv_90d is None for r in got.values())
    # one day less: the churn horizon is not over either, even for users seen active already
    got = {r.user_id: r for r in compute_labels(activity(spark, ROWS), SNAP, day(29), cfg)
           .collect()}
    assert all(r.churned is None and r.clv_90d is None for r in got.values())
    assert got["buyer"].will_purchase_7d == 1
    # 6 days of data after S: no label at all
    got = compute_labels(activity(spark, ROWS), SNAP, day(6), cfg).collect()
    assert len(got) == 5
    assert all(r.churned is None and r.clv_90d is None and r.will_purchase_7d is None
               for r in got)


def test_run_labels_from_bronze_uses_the_last_event_date(spark, cfg, tmp_path):
    store = DeltaRsStore(spark, str(tmp_path / "wh"))

    def event(eid, user, offset):
        d = day(offset)
        ts = dt.datetime(d.year, d.month, d.day, 12, tzinfo=UTC)
        return (eid, user, "view", ts, None, None, None, None, None, None, d, "t", None, None,
                None)

    events = [event("e1", "a", -1), event("e2", "a", 3), event("e3", "b", -2),
              event("e4", "c", 39), event("e5", None, 1)]  # the None row: no user
    store.write(spark.createDataFrame(events, S.BRONZE_SCHEMAS["events"]), BRONZE_EVENTS,
                partition_by=["event_date"])
    orders = [("o1", "a", dt.datetime(2026, 3, 12, 9, tzinfo=UTC), 10.0, "EUR", None, None,
               10.8, "t", None, None, None)]
    store.write(spark.createDataFrame(orders, S.BRONZE_SCHEMAS["orders"]), BRONZE_ORDERS)
    assert data_end(store) == day(40)
    labels = build_labels(store, SNAP, cfg)
    assert labels.columns == list(C.LABEL_COLUMNS)
    got = {r.user_id: r for r in labels.collect()}
    assert sorted(got) == ["a", "b"]
    assert (got["a"].churned, got["a"].will_purchase_7d, got["a"].clv_90d) == (0, 1, None)
    assert got["b"].churned == 1
    result = run_labels(spark, cfg, SNAP, store=store, run_id="l1")
    run_labels(spark, cfg, SNAP, store=store, run_id="l2")  # a re-run replaces the partition
    written = store.read(USER_LABELS)
    assert written.count() == 2 and {r._run_id for r in written.collect()} == {"l2"}
    assert result.details["data_end"] == "2026-04-19"
    assert result.details["summary"]["churn_rate"] == 0.5


def test_refresh_rebuilds_every_snapshot_whose_closed_label_is_not_final(spark, cfg, tmp_path):
    """Horizons 7, 30 and 90 days; data through day 39. Snapshot S was labelled when the data
    ended at day 10 (purchase final, churn not), day 20 never was, day 35 has no closed
    horizon yet: a refresh at day 40 rebuilds S and day 20 only, and then nothing."""
    store = DeltaRsStore(spark, str(tmp_path / "wh"))

    def event(n, offset):
        d = day(offset)
        return (f"e{n}", "a", "view", dt.datetime(d.year, d.month, d.day, 12, tzinfo=UTC),
                None, None, None, None, None, None, d, "t", None, None, None)

    store.write(spark.createDataFrame([event(n, o) for n, o in enumerate(range(-5, 40))],
                                      S.BRONZE_SCHEMAS["events"]), BRONZE_EVENTS,
                partition_by=["event_date"])
    snapshots = [SNAP, day(20), day(35)]
    store.write(spark.createDataFrame([("a", s) for s in snapshots],
                                      "user_id string, snapshot_date date"),
                USER_FEATURES, partition_by=USER_FEATURES.partitions)
    run_labels(spark, cfg, SNAP, store=store, end=day(10))
    assert built_data_ends(store) == {SNAP: day(10)}
    assert final(day(10), SNAP, 7) and not final(day(10), SNAP, 30) and not final(None, SNAP, 7)

    first = refresh_labels(spark, cfg, day(40), store=store)
    assert first.status == "ok" and first.details["snapshots"] == [str(SNAP), str(day(20))]
    assert built_data_ends(store) == {SNAP: day(40), day(20): day(40)}
    row = store.read(USER_LABELS).filter(f"snapshot_date = '{SNAP}'").first()
    assert (row.churned, row.clv_90d) == (0, None)  # churn now known, CLV (90 d) still open
    again = refresh_labels(spark, cfg, day(40), store=store)
    assert again.status == "skipped" and built_data_ends(store)[SNAP] == day(40)
