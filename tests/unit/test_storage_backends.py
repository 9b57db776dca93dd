"""Both Delta backends on the same tables: each reads what the other wrote, maintenance
(OPTIMIZE + VACUUM) works on both, and writes size their files."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType

from mktpipe.session import capabilities
from mktpipe.storage.delta_rs import DeltaRsStore
from mktpipe.storage.maintain import maintain_tables

SCHEMA = StructType([
    StructField("id", LongType(), True),
    StructField("name", StringType(), True),
    StructField("day", DateType(), True),
])
DAYS = [dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 3)]


def _delta_spark(spark, warehouse):
    caps = capabilities(spark)
    if not caps.delta_spark:
        pytest.skip(f"delta-spark backend unavailable: {caps.reasons['delta_spark']}")
    from mktpipe.storage.delta_spark import DeltaSparkStore

    return DeltaSparkStore(spark, warehouse)


def _stores(spark, warehouse):
    return {"delta-rs": DeltaRsStore(spark, warehouse),
            "delta-spark": _delta_spark(spark, warehouse)}


def _rows(spark, start: int, n: int, day_index: int | None = None):
    return spark.createDataFrame(
        [(i, f"u{i}", DAYS[i % 3] if day_index is None else DAYS[day_index])
         for i in range(start, start + n)] + ([(start + n, None, None)] if start == 0 else []),
        SCHEMA,
    )


@pytest.mark.parametrize("writer,reader", [("delta-rs", "delta-spark"),
                                           ("delta-spark", "delta-rs")])
def test_each_backend_reads_what_the_other_wrote(spark, tmp_path, writer, reader):
    stores = _stores(spark, str(tmp_path / "wh"))
    w, r = stores[writer], stores[reader]
    table = "silver.shared"
    w.write(_rows(spark, 0, 30), table, partition_by=["day"])
    w.write(_rows(spark, 100, 5), table)  # a second version: append
    w.write(_rows(spark, 200, 4, day_index=0), table, mode="overwrite",
            replace_where={"day": DAYS[0].isoformat()})
    w.merge_insert(_rows(spark, 100, 10), table, keys=["id"])
    expected = w.read(table)
    assert_df_equality(r.read(table), expected, ignore_row_order=True)
    # ... and the deltalake package alone sees the same rows
    alone = sorted(DeltaTable(w.path(table)).to_pyarrow_table().column("id").to_pylist())
    assert alone == sorted(row.id for row in expected.collect())
    # the reader continues the table: its commit is read back by the writer
    r.write(_rows(spark, 500, 3), table)
    assert w.read(table).filter(F.col("id") >= 500).count() == 3
    assert r.version(table) == w.version(table) == 4
    # time travel across backends
    assert r.read(table, version=0).count() == 31


def test_both_backends_on_s3(spark, s3):
    """Tables in a bucket (moto's S3 server): delta-spark through s3a and delta-rs through
    object_store write, overwrite a partition, merge and read each other's commits, as the
    cluster's and the jar-less runs do on object storage (the whole pipeline on S3 is
    tests/integration/test_pipeline.py's slow object-storage test)."""
    from mktpipe.session import configure_spark

    caps = capabilities(spark)
    if not caps.s3a:
        pytest.skip(f"Spark cannot reach s3:// in this session: {caps.reasons['s3a']}")
    configure_spark(spark)  # the session started before the server did
    warehouse = s3.replace("s3://", "s3a://") + "/wh"  # as Config.uri spells it
    stores = _stores(spark, warehouse)
    rs, sp = stores["delta-rs"], stores["delta-spark"]
    table = "silver.on_s3"
    sp.write(_rows(spark, 0, 30), table, partition_by=["day"])
    rs.write(_rows(spark, 100, 5), table)
    sp.write(_rows(spark, 200, 4, day_index=0), table, mode="overwrite",
             replace_where={"day": DAYS[0].isoformat()})
    rs.merge_insert(_rows(spark, 100, 10), table, keys=["id"])
    ids = sorted(r.id for r in sp.read(table).collect())
    expected = sorted([i for i in range(31) if i == 30 or DAYS[i % 3] != DAYS[0]]
                      + list(range(100, 110))  # 102 went with DAYS[0], the merge inserts it
                      + list(range(200, 204)))
    assert ids == expected
    assert sorted(r.id for r in rs.read(table).collect()) == expected
    assert rs.version(table) == sp.version(table) == 3
    assert sp.read(table, version=0).count() == 31


@pytest.mark.parametrize("backend", ["delta-rs", "delta-spark"])
def test_partitioned_write_makes_one_file_per_partition(spark, tmp_path, backend):
    store = _stores(spark, str(tmp_path / "wh"))[backend]
    store.write(_rows(spark, 0, 60).repartition(6), "silver.sized", partition_by=["day"])
    # 4 partitions (3 days + null), however many tasks produced the rows
    assert store.file_count("silver.sized") == 4


@pytest.mark.parametrize("backend", ["delta-rs", "delta-spark"])
def test_maintain_compacts_small_files_and_vacuums_them(spark, tmp_path, backend):
    store = _stores(spark, str(tmp_path / "wh"))[backend]
    table = "bronze.small_files"
    for k in range(5):  # five appends: five files in each of three partitions
        store.write(_rows(spark, 10 * k + 1, 6), table, partition_by=["day"])
    store.write(_rows(spark, 1000, 2), "gold.other")
    expected = sorted(store.read(table).collect())  # rows, not a plan over files to vacuum
    assert store.file_count(table) == 15
    assert store.tables() == ["bronze.small_files", "gold.other"]

    (stats,) = maintain_tables(store, [table], vacuum_hours=0)
    assert (stats.files_before, stats.files_after, stats.files_compacted) == (15, 3, 15)
    assert stats.files_vacuumed == 15  # the compacted files left the disk
    assert sorted(store.read(table).collect()) == expected
    # the other backend still reads the maintained table
    other = _stores(spark, store.warehouse)[
        "delta-rs" if backend == "delta-spark" else "delta-spark"]
    assert sorted(other.read(table).collect()) == expected
    # nothing left to do: a second run compacts nothing and deletes nothing (both backends
    # still log VACUUM START/END commits, which change no data)
    again = maintain_tables(store, [table], vacuum_hours=0)[0]
    assert (again.files_compacted, again.files_vacuumed, again.files_after) == (0, 0, 3)
    assert {h["operation"] for h in store.history(table)[: again.version - stats.version]} \
        == {"VACUUM START", "VACUUM END"}
    assert sorted(store.read(table).collect()) == expected


@pytest.mark.parametrize("backend", ["delta-rs", "delta-spark"])
def test_default_retention_keeps_recent_files_for_time_travel(spark, tmp_path, backend):
    store = _stores(spark, str(tmp_path / "wh"))[backend]
    table = "bronze.recent"
    for k in range(3):
        store.write(_rows(spark, 10 * k + 1, 3, day_index=0), table, partition_by=["day"])
    stats = maintain_tables(store, [table])[0]  # 168 h
    assert (stats.files_compacted, stats.files_vacuumed) == (3, 0)
    assert store.read(table, version=1).count() == 6  # old files still there


def test_maintain_names_an_unknown_table(spark, tmp_path):
    from mktpipe.errors import InputError

    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    store.write(_rows(spark, 0, 3), "silver.known")
    with pytest.raises(InputError, match=r"silver\.nope.*silver\.known"):
        maintain_tables(store, ["silver.nope"])


@pytest.mark.parametrize("backend", ["delta-rs", "delta-spark"])
def test_a_new_output_column_is_added_and_old_rows_read_null(spark, tmp_path, backend):
    stores = _stores(spark, str(tmp_path / "wh"))
    store = stores[backend]
    table = "silver.evolving"
    store.write(_rows(spark, 0, 6), table, partition_by=["day"])
    wider = _rows(spark, 100, 3, day_index=1).withColumn("score", F.col("id") * 0.5)
    store.write(wider, table, mode="overwrite", replace_where={"day": DAYS[1].isoformat()})
    assert store.schema(table).fieldNames() == ["id", "name", "day", "score"]
    for reader in stores.values():  # both backends read the evolved table
        got = {r.id: r.score for r in reader.read(table).collect()}
        assert got[100] == 50.0 and got[0] is None and len(got) == 7 - 2 + 3
    # a changed type or a missing column is still refused, and strict refuses new columns
    from mktpipe.storage import SchemaMismatchError

    with pytest.raises(SchemaMismatchError, match="score"):
        store.write(wider.withColumn("score", F.col("score").cast("string")), table)
    store.add_columns = False
    with pytest.raises(SchemaMismatchError, match="unexpected columns.*strict"):
        store.write(wider.withColumn("extra", F.lit(1)), table)


def test_find_commit_reads_each_version_from_its_log_file(spark, tmp_path):
    """A write's version comes from the log file holding its commitInfo (deltalake's
    history() numbers entries from a separate read of the latest version, which another
    writer can move; the concurrent-writer test races it)."""
    from mktpipe.storage.parquet_files import find_commit

    store = DeltaRsStore(spark, str(tmp_path / "wh"))
    versions = [store.write(_rows(spark, 10 * i, 3), "silver.t") for i in range(3)]
    root = store.path("silver.t")
    # with no writer racing, history() numbers its entries right: the reference here
    tags = {entry["version"]: entry["mktpipe.commit"] for entry in DeltaTable(root).history()}
    assert versions == [0, 1, 2] and sorted(tags) == versions
    for version, tag in tags.items():
        found = find_commit(root, lambda info, t=tag: info.get("mktpipe.commit") == t)
        assert found is not None and found[0] == version
    assert find_commit(root, lambda info: info.get("mktpipe.commit") == "no such tag") is None
    assert find_commit(root, lambda info: True, limit=1)[0] == 2


@pytest.mark.parametrize("backend", ["delta-rs", "delta-spark"])
def test_a_table_keeps_statistics_for_its_stats_columns(spark, tmp_path, backend):
    """A ``catalog.Table`` with ``stats_columns`` is created with Delta's
    ``delta.dataSkippingStatsColumns``; delta-spark then records min/max/null counts for
    those columns only (delta-rs copies every column's from the Parquet footers, at no
    cost), and a filter on them still skips files."""
    from mktpipe.catalog import Table

    store = (DeltaRsStore(spark, str(tmp_path / "wh")) if backend == "delta-rs"
             else _delta_spark(spark, str(tmp_path / "wh")))
    table = Table("silver.with_stats", ("day",), ("id",), stats_columns=("id",))
    store.write(_rows(spark, 0, 30), table, partition_by=["day"])
    store.write(_rows(spark, 100, 5, day_index=1), table)  # an append keeps the property
    log = DeltaTable(store.path(table))
    assert log.metadata().configuration == {"delta.dataSkippingStatsColumns": "id"}
    adds = pa.table(log.get_add_actions(flatten=True)).to_pylist()
    assert len(adds) >= 4 and all(a["num_records"] > 0 for a in adds)
    assert all(a["min.id"] is not None for a in adds)
    if backend == "delta-spark":
        assert not any(key.startswith(("min.name", "max.name")) for key in adds[0])
        skipped = store.read(table).filter(F.col("id") >= 100)
        assert skipped.count() == 5
        assert len(skipped.inputFiles()) == 1  # the appended file only
    plain = "silver.plain"  # a plain name: Delta's defaults
    store.write(_rows(spark, 0, 3), plain)
    assert DeltaTable(store.path(plain)).metadata().configuration == {}
    counted = Table("silver.counted", stats_columns=())  # the row count only
    store.write(_rows(spark, 0, 3), counted)
    log = DeltaTable(store.path(counted))
    assert log.metadata().configuration == {"delta.dataSkippingNumIndexedCols": "0"}
    adds = pa.table(log.get_add_actions(flatten=True)).to_pylist()
    assert sum(a["num_records"] for a in adds) == 4
    if backend == "delta-spark":
        assert not any(key.startswith("min.") for a in adds for key in a)
