"""The TableStore contract, run against every backend this machine can run."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from mktpipe.session import capabilities
from mktpipe.storage import SchemaMismatchError, TableNotFoundError
from mktpipe.storage.delta_rs import DeltaRsStore

SCHEMA = StructType(
    [
        StructField("id", LongType(), True),
        StructField("name", StringType(), True),
        StructField("amount", DoubleType(), True),
        StructField("ts", TimestampType(), True),
        StructField("tags", ArrayType(StringType()), True),
        StructField("day", DateType(), True),
    ]
)
D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
T1 = dt.datetime(2026, 1, 1, 10, 30, 15, 123456, tzinfo=dt.timezone.utc)
ROWS = [
    (1, "ana", 10.5, T1, ["a", "b"], D1),
    (2, "luis", None, T1, [], D1),
    (3, None, 3.25, None, None, D2),
    (4, "zoë: ñ/x", -1.0, T1, ["ñ"], None),
]
_counter = itertools.count()


@pytest.fixture(params=["delta-rs", "delta-spark"])
def store(request, spark, tmp_path):
    if request.param == "delta-spark":
        caps = capabilities(spark)
        if not caps.delta_spark:
            pytest.skip(f"delta-spark backend unavailable: {caps.reasons['delta_spark']}")
        from mktpipe.storage.delta_spark import DeltaSparkStore

        return DeltaSparkStore(spark, str(tmp_path / "wh"))
    return DeltaRsStore(spark, str(tmp_path / "wh"))


def _table() -> str:
    return f"test.t{next(_counter)}"


@pytest.fixture
def df(spark):
    return spark.createDataFrame(ROWS, SCHEMA)


def test_write_then_read_round_trips_every_type(store, df):
    table = _table()
    version = store.write(df, table)
    assert version == 0
    assert_df_equality(store.read(table), df, ignore_row_order=True)
    assert store.exists(table)
    assert store.last_write.rows == 4


def test_partitioned_write_keeps_partition_values_including_null(store, df):
    table = _table()
    store.write(df, table, partition_by=["day", "name"])
    assert_df_equality(store.read(table), df, ignore_row_order=True)


def test_partition_values_come_from_the_log_and_follow_overwrites(store, df, spark):
    from mktpipe.storage.base import TableStore

    table = _table()
    store.write(df, table, partition_by=["day"])
    got = store.partition_values(table, "day")
    assert got == [D1.isoformat(), D2.isoformat(), None]  # null last
    # the same as the Spark distinct the base class runs
    assert sorted(got, key=str) == sorted(TableStore.partition_values(store, table, "day"),
                                          key=str)
    store.write(df.filter("day is null"), table, mode="overwrite")
    assert store.partition_values(table, "day") == [None]


def test_append_adds_a_version_and_time_travel_reads_the_old_one(store, df):
    table = _table()
    store.write(df.filter("id <= 2"), table)
    v1 = store.write(df.filter("id > 2"), table)
    assert v1 == 1
    assert store.read(table).count() == 4
    assert sorted(r.id for r in store.read(table, version=0).collect()) == [1, 2]
    history = store.history(table)
    assert [h["version"] for h in history][:2] == [1, 0]


def test_overwrite_replaces_everything(store, df):
    table = _table()
    store.write(df, table)
    store.write(df.filter("id = 1"), table, mode="overwrite")
    assert [r.id for r in store.read(table).collect()] == [1]


def test_replace_where_overwrites_only_that_partition(store, df, spark):
    table = _table()
    store.write(df.filter("day is not null"), table, partition_by=["day"])
    replacement = spark.createDataFrame([(9, "new", 1.0, T1, ["z"], D1)], SCHEMA)
    store.write(replacement, table, mode="overwrite", replace_where={"day": D1.isoformat()})
    got = sorted((r.id, r.day) for r in store.read(table).collect())
    assert got == [(3, D2), (9, D1)]


def test_replace_where_rejects_rows_outside_the_predicate(store, df):
    table = _table()
    store.write(df.filter("day is not null"), table, partition_by=["day"])
    with pytest.raises(Exception, match="replace"):
        store.write(df.filter("day is not null"), table, mode="overwrite",
                    replace_where={"day": D1.isoformat()})
    assert store.read(table).count() == 3  # previous version intact


def test_merge_insert_inserts_only_absent_keys(store, df, spark):
    table = _table()
    store.write(df.filter("id <= 2"), table)
    incoming = df.union(spark.createDataFrame([(1, "changed", 0.0, T1, [], D1)], SCHEMA))
    store.merge_insert(incoming, table, keys=["id"])
    got = {r.id: r.name for r in store.read(table).collect()}
    assert got == {1: "ana", 2: "luis", 3: None, 4: "zoë: ñ/x"}


def test_merge_insert_of_nothing_new_commits_nothing(store, df):
    table = _table()
    v0 = store.write(df, table)
    v1 = store.merge_insert(df, table, keys=["id"])
    assert v1 == v0
    assert store.version(table) == v0


def test_schema_mismatch_is_refused_and_table_unchanged(store, df):
    table = _table()
    store.write(df, table)
    bad = df.withColumn("amount", F.col("amount").cast("string"))
    with pytest.raises(SchemaMismatchError, match="amount"):
        store.write(bad, table)
    with pytest.raises(SchemaMismatchError, match="missing columns"):
        store.write(df.drop("tags"), table)
    assert store.version(table) == 0


def test_missing_table_error_names_the_table(store):
    with pytest.raises(TableNotFoundError, match="test.never_written"):
        store.read("test.never_written")


def test_bad_table_name_is_refused(store, df):
    with pytest.raises(ValueError, match="layer.name"):
        store.write(df, "NoLayer")


# --- delta-rs specifics: the log itself --------------------------------------------------


def test_table_is_valid_delta_readable_by_deltalake_alone(spark, tmp_path, df):
    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    store.write(df, "bronze.x", partition_by=["day"])
    dt_ = DeltaTable(store.path("bronze.x"))
    protocol = dt_.protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)
    pdf = dt_.to_pandas().sort_values("id").reset_index(drop=True)
    expected = df.toPandas().sort_values("id").reset_index(drop=True)
    assert pdf["id"].tolist() == expected["id"].tolist()
    assert pdf["name"].tolist()[:2] == ["ana", "luis"]
    assert [d if d is None or d == d else None for d in pdf["day"]][:2] == [D1, D1]
    assert pdf["tags"].apply(lambda v: None if v is None else list(v)).tolist() == [
        ["a", "b"], [], None, ["ñ"]
    ]


def test_one_write_is_one_transaction_with_file_stats(spark, tmp_path, df):
    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    store.write(df.repartition(3), "bronze.y")
    log_dir = Path(store.path("bronze.y")) / "_delta_log"
    commits = sorted(log_dir.glob("*.json"))
    assert len(commits) == 1
    actions = [json.loads(line) for line in commits[0].read_text().splitlines()]
    adds = [a["add"] for a in actions if "add" in a]
    assert len(adds) >= 2
    stats = [json.loads(a["stats"]) for a in adds]
    assert sum(s["numRecords"] for s in stats) == 4
    assert min(s["minValues"]["id"] for s in stats if "id" in s["minValues"]) == 1
    assert max(s["maxValues"]["id"] for s in stats if "id" in s["maxValues"]) == 4
    assert sum(s["nullCount"]["name"] for s in stats) == 1
    # timestamp max is rounded up to the millisecond so data skipping never drops a row
    ts_max = max(s["maxValues"]["ts"] for s in stats if "ts" in s["maxValues"])
    assert ts_max == "2026-01-01T10:30:15.124Z"


def test_failed_commit_leaves_previous_version_readable(spark, tmp_path, df, monkeypatch):
    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    store.write(df, "bronze.z")

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash before commit")

    monkeypatch.setattr(DeltaTable, "create_write_transaction", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.write(df, "bronze.z")
    monkeypatch.undo()
    assert store.version("bronze.z") == 0
    assert store.read("bronze.z").count() == 4
    store.write(df, "bronze.z")  # the next run completes
    assert store.read("bronze.z").count() == 8


def test_failed_spark_job_midway_commits_nothing(spark, tmp_path, df):
    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    store.write(df, "bronze.w")
    failing = df.withColumn(
        "amount", F.when(F.col("id") == 3, F.raise_error("task failed midway"))
        .otherwise(F.col("amount"))
    )
    with pytest.raises(Exception, match="task failed midway"):
        store.write(failing.repartition(2), "bronze.w")
    assert store.version("bronze.w") == 0
    assert_df_equality(store.read("bronze.w"), df, ignore_row_order=True)
    store.write(df, "bronze.w")
    assert store.read("bronze.w").count() == 8


def test_empty_write_creates_table_with_schema(spark, tmp_path):
    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    empty = spark.createDataFrame([], SCHEMA)
    assert store.write(empty, "silver.empty") == 0
    got = store.read("silver.empty")
    assert got.count() == 0
    assert [f.name for f in got.schema.fields] == SCHEMA.fieldNames()


def test_unknown_version_error_lists_versions(spark, tmp_path, df):
    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    store.write(df, "bronze.v")
    with pytest.raises(ValueError, match="no version 7"):
        store.read("bronze.v", version=7)
