"""Ingest on a hand-written landing zone: every rule, every reason code, balance, re-runs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import BRONZE_EVENTS, BRONZE_ORDERS, BRONZE_USERS, QUARANTINE
from mktpipe.errors import InputError
from mktpipe.ingest.stage import run_ingest, run_ingest_dates
from mktpipe.storage.delta_rs import DeltaRsStore

DAY = dt.date(2026, 1, 10)
NOW = dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc)
USERS_HEADER = ",".join(n for n, _ in S.RAW_FIELDS["users"])


def ev(event_id, user="u1", kind="view", ts="2026-01-10T10:00:00Z", watch=12.5, **extra):
    record = {"event_id": event_id, "user_id": user, "event_type": kind, "ts": ts,
              "video_id": "v1", "creator_id": "u2", "session_id": "s1",
              "watch_time_s": watch, "device": "ios", "app_version": "33.1"}
    record.update(extra)
    return json.dumps(record, ensure_ascii=False)


def order(order_id, amount=10.0, currency="USD", user="u1"):
    return json.dumps({"order_id": order_id, "user_id": user, "ts": "2026-01-10T11:00:00Z",
                       "amount": amount, "currency": currency, "category": "beauty",
                       "source_video_id": "v1"})


USERS = [
    "u1,2026-01-01,MX,es,18-24,female,ios,organic,false",
    "u2,2026-01-02,US,en,25-34,male,android,paid_social,true",
    "u3,2026-01-03,US,en,25-34,male,android,paid_social,maybe",  # WRONG_TYPE
    ",2026-01-03,US,en,25-34,male,android,paid_social,false",  # MISSING_REQUIRED
    "u4,2026-01-03,US",  # MALFORMED_RECORD
    "u5,2026-01-03,US,xx,25-34,male,android,paid_social,false",  # UNKNOWN_ENUM
    "u6,2026-02-20,US,en,25-34,male,android,paid_social,false",  # FUTURE_TIMESTAMP
    "u1,2026-01-01,MX,es,18-24,female,ios,organic,false",  # duplicate in batch
]
EVENTS = [
    ev("e1"),
    ev("e2", user="u2", kind="like", watch=None),
    ev("e3", kind="swipe_up"),  # UNKNOWN_ENUM
    ev("e4", watch=-5),  # OUT_OF_RANGE
    ev("e5", user="u999"),  # UNKNOWN_USER
    '{"event_id": "e6", "user_id": ',  # MALFORMED_RECORD
    ev("e8", ts="yesterday"),  # WRONG_TYPE
    ev("e9", ts="2026-03-01T00:00:00Z"),  # FUTURE_TIMESTAMP
    "",  # MALFORMED_RECORD (blank line)
    ev("e1"),  # exact duplicate
    ev("e1", watch=99.0),  # near duplicate (same key)
    ev("e10", user=""),  # MISSING_REQUIRED
]
ORDERS = [
    order("o1", 200.0, "MXN"),
    order("o2", -3.0),  # OUT_OF_RANGE
    order("o3", 5.0, "XXX"),  # UNKNOWN_ENUM
    json.dumps({"order_id": "o4", "user_id": "u1", "ts": "2026-01-10T11:00:00Z",
                "amount": "twelve", "currency": "USD"}),  # WRONG_TYPE
    order("o5", 117000.0, "COP"),  # about 30 USD: valid although a large number
    order("o6", 50000.0, "USD"),  # above ingest.max_order_usd: OUT_OF_RANGE
]


def write_landing(root: Path, day: dt.date = DAY, users=USERS, events=EVENTS, orders=ORDERS,
                  users_header=USERS_HEADER) -> Path:
    def put(source, name, lines, header=None, raw_tail=b""):
        folder = root / source / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        text = "\n".join(([header] if header else []) + list(lines)) + "\n"
        (folder / name).write_bytes(text.encode("utf-8") + raw_tail)

    put("users", "part-0.csv", users, header=users_header)
    # a record with bytes that are not UTF-8: BAD_ENCODING
    bad_bytes = b'{"event_id": "e7", "user_id": "u1", "event_type": "comment", ' \
                b'"ts": "2026-01-10T10:00:00Z", "text": "canci\xf3n"}\n'
    put("events", "part-0.json", events, raw_tail=bad_bytes)
    put("orders", "part-0.json", orders)
    return root


@pytest.fixture
def setup(spark, config, tmp_path):
    landing = write_landing(tmp_path / "landing")
    cfg = config.model_copy(deep=True)
    cfg.paths.landing = str(landing)
    cfg.paths.warehouse = str(tmp_path / "wh")
    store = DeltaRsStore(spark, cfg.paths.warehouse)
    return cfg, store


def test_every_rule_gives_its_reason_and_counts_balance(spark, setup):
    cfg, store = setup
    result = run_ingest(spark, cfg, DAY, store=store, now=NOW)
    users, events, orders = (result.details[s] for s in ("users", "events", "orders"))
    assert users["quarantine_reasons"] == {
        "FUTURE_TIMESTAMP": 1, "MALFORMED_RECORD": 1, "MISSING_REQUIRED": 1,
        "UNKNOWN_ENUM": 1, "WRONG_TYPE": 1,
    }
    assert (users["read"], users["written"], users["duplicates_in_batch"]) == (8, 2, 1)
    assert events["quarantine_reasons"] == {
        "BAD_ENCODING": 1, "FUTURE_TIMESTAMP": 1, "MALFORMED_RECORD": 2,
        "MISSING_REQUIRED": 1, "OUT_OF_RANGE": 1, "UNKNOWN_ENUM": 1, "UNKNOWN_USER": 1,
        "WRONG_TYPE": 1,
    }
    assert (events["read"], events["written"], events["duplicates_in_batch"]) == (13, 2, 2)
    assert orders["quarantine_reasons"] == {"OUT_OF_RANGE": 2, "UNKNOWN_ENUM": 1,
                                            "WRONG_TYPE": 1}
    assert orders["written"] == 2
    for source in ("users", "events", "orders"):
        counts = result.details[source]
        assert counts["balanced"] is True
        assert counts["read"] == (counts["written"] + counts["quarantined"]
                                  + counts["duplicates_in_batch"] + counts["duplicates_existing"])
    assert result.details["videos"]["status"] == "no_files"
    # the one-pass scratch copy of each source is gone, and it never became a table
    scratch = Path(cfg.paths.warehouse) / "_scratch"
    assert not scratch.exists() or not any(scratch.iterdir())
    assert not any(t.startswith("_") for t in store.tables())


def test_bronze_rows_are_typed_with_lineage(spark, setup):
    cfg, store = setup
    run_ingest(spark, cfg, DAY, store=store, now=NOW, run_id="run-1")
    got = store.read(BRONZE_EVENTS).select("event_id", "user_id", "watch_time_s",
                                              "event_date", S.RUN_ID, S.INGEST_DATE)
    expected = spark.createDataFrame(
        [("e1", "u1", 12.5, DAY, "run-1", DAY), ("e2", "u2", None, DAY, "run-1", DAY)],
        got.schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True)
    assert store.partition_columns(BRONZE_EVENTS) == ["event_date"]
    assert store.partition_columns(BRONZE_USERS) == []
    usd = {r.order_id: r.amount_usd for r in store.read(BRONZE_ORDERS).collect()}
    assert usd == {"o1": round(200 * S.FX_TO_USD["MXN"], 4),
                   "o5": round(117000 * S.FX_TO_USD["COP"], 4)}
    assert store.read(BRONZE_USERS).schema.fieldNames() == S.BRONZE_SCHEMAS["users"].fieldNames()


def test_quarantine_keeps_raw_text_file_reason_and_run(spark, setup):
    cfg, store = setup
    run_ingest(spark, cfg, DAY, store=store, now=NOW, run_id="run-1")
    q = store.read(QUARANTINE["orders"]).filter(F.col("reason_code") == "OUT_OF_RANGE").first()
    assert json.loads(q.raw_record)["order_id"] == "o2"
    assert q._source_file.endswith("orders/date=2026-01-10/part-0.json")
    assert q.reason_detail.startswith("amount=-3.0")
    assert q._run_id == "run-1"


def test_rerun_of_a_date_changes_nothing(spark, setup):
    cfg, store = setup
    run_ingest(spark, cfg, DAY, store=store, now=NOW, run_id="run-1")
    before = {t: store.read(t).collect() for t in (BRONZE_EVENTS, BRONZE_USERS,
                                                  QUARANTINE["events"])}
    versions = {t: store.version(t) for t in (BRONZE_EVENTS, BRONZE_USERS)}
    second = run_ingest(spark, cfg, DAY, store=store, now=NOW, run_id="run-2")
    for table, rows in before.items():
        assert sorted(map(tuple, store.read(table).collect())) == sorted(map(tuple, rows))
    # bronze got no new commit; every valid row counted as an existing duplicate
    assert {t: store.version(t) for t in versions} == versions
    assert second.details["events"]["written"] == 0
    assert second.details["events"]["duplicates_existing"] == 2
    assert second.details["events"]["balanced"]


def test_overlapping_redelivery_next_day_is_deduplicated(spark, setup, tmp_path):
    cfg, store = setup
    run_ingest(spark, cfg, DAY, store=store, now=NOW)
    nxt = DAY + dt.timedelta(days=1)
    write_landing(Path(cfg.paths.landing), nxt, users=[],
                  events=[ev("e1"), ev("e20", ts="2026-01-11T09:00:00Z")], orders=[])
    result = run_ingest(spark, cfg, nxt, store=store, now=NOW)
    assert result.details["events"]["duplicates_existing"] == 1
    assert result.details["events"]["written"] == 1
    ids = sorted(r.event_id for r in store.read(BRONZE_EVENTS).collect())
    assert ids == ["e1", "e2", "e20"]


def test_backfill_batch_equals_day_by_day(spark, setup, tmp_path):
    cfg, store = setup
    nxt = DAY + dt.timedelta(days=1)
    new_user = "u7,2026-01-11,US,en,25-34,male,ios,organic,false"
    write_landing(Path(cfg.paths.landing), nxt, users=[new_user],
                  events=[ev("e1"), ev("e21", user="u7", ts="2026-01-11T09:00:00Z")], orders=[])
    # an event of day 1 by a user who lands only on day 2 is still an unknown user
    first = Path(cfg.paths.landing) / "events" / f"date={DAY}" / "part-1.json"
    first.write_text(ev("e22", user="u7") + "\n")
    batch = run_ingest_dates(spark, cfg, [DAY, nxt], store=store, now=NOW)
    other = DeltaRsStore(spark, str(tmp_path / "wh2"))
    for day in (DAY, nxt):
        run_ingest(spark, cfg, day, store=other, now=NOW)
    for table in (BRONZE_EVENTS, BRONZE_USERS, QUARANTINE["events"]):
        cols = [c for c in store.read(table).columns if c not in (S.RUN_ID, S.INGESTED_AT)]
        assert_df_equality(store.read(table).select(cols), other.read(table).select(cols),
                           ignore_row_order=True)
    assert batch.details["events"]["quarantine_reasons"]["UNKNOWN_USER"] == 2
    # day 2: e1 (already in bronze), e21, and the line with bad bytes write_landing adds
    assert batch.details["events"]["by_date"]["2026-01-11"] == {"read": 3, "quarantined": 1}


def test_missing_landing_date_is_a_clear_input_error(spark, setup):
    cfg, store = setup
    with pytest.raises(InputError, match=r"no landing files for 2026-03-03.*dates present"):
        run_ingest(spark, cfg, dt.date(2026, 3, 3), store=store, now=NOW)


def test_wrong_csv_header_names_the_file(spark, config, tmp_path):
    landing = write_landing(tmp_path / "landing", users_header="id,signup,country")
    cfg = config.model_copy(deep=True)
    cfg.paths.landing = str(landing)
    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    with pytest.raises(InputError, match=r"users/date=2026-01-10/part-0.csv: CSV header"):
        run_ingest(spark, cfg, DAY, store=store, now=NOW)
