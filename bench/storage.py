"""The two Delta backends side by side: partitioned write, full read, partition overwrite,
merge_insert, and OPTIMIZE + VACUUM of a table built by many small appends.

Each backend runs twice in one Spark session (delta-spark needs `make jars`), in the order
rs, spark, spark, rs, and the faster of its two runs counts, so warm-up and load drift
affect both; the ratio delta-spark / delta-rs is what to read.

    .venv/bin/python bench/storage.py                     # 1M rows, 30 partitions, 40 appends
    .venv/bin/python bench/storage.py --rows 5000000 --partitions 120
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import functions as F

from mktpipe.config import load_config
from mktpipe.session import capabilities, get_spark
from mktpipe.storage.delta_rs import DeltaRsStore


def frame(spark, rows: int, partitions: int, offset: int = 0):
    return (
        spark.range(offset, offset + rows)
        .select(
            F.col("id"),
            (F.col("id") % 100_000).cast("string").alias("user_id"),
            (F.rand(7) * 100).alias("value"),
            F.date_add(F.lit("2026-01-01").cast("date"), (F.col("id") % partitions).cast("int"))
            .alias("day"),
        )
    )


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def bench_backend(store, spark, rows: int, partitions: int, appends: int) -> dict:
    table = "bench.events"
    figures = {}
    figures["write_s"], _ = timed(
        lambda: store.write(frame(spark, rows, partitions), table, partition_by=["day"]))
    figures["files_after_write"] = store.file_count(table)
    figures["read_s"], n = timed(lambda: store.read(table).agg(F.sum("value")).first())
    day0 = "2026-01-01"
    figures["overwrite_partition_s"], _ = timed(lambda: store.write(
        frame(spark, rows // partitions, 1), table, mode="overwrite",
        replace_where={"day": day0}))
    incoming = frame(spark, rows // 10, partitions, offset=rows - rows // 20)  # half new
    figures["merge_insert_s"], _ = timed(lambda: store.merge_insert(
        incoming, table, ["id"], existing_filter=None))
    small = "bench.small"
    for k in range(appends):
        store.write(frame(spark, 2000, 4, offset=10 * rows + k * 2000), small,
                    partition_by=["day"])
    figures["small_files_before"] = store.file_count(small)
    figures["maintain_s"], stats = timed(lambda: store.maintain(small, 0))
    figures["small_files_after"] = stats.files_after
    figures["files_vacuumed"] = stats.files_vacuumed
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=30)
    parser.add_argument("--appends", type=int, default=40)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = load_config("local", {"spark": {"ui_enabled": False}})
    spark = get_spark(config)
    if not capabilities(spark).delta_spark:
        print("delta-spark unavailable (" + capabilities(spark).reasons["delta_spark"]
              + "); run `make jars` first")
        return 2
    from mktpipe.storage.delta_spark import DeltaSparkStore

    root = Path(tempfile.mkdtemp(prefix="mktpipe-bench-storage-"))
    try:
        results: dict[str, dict] = {}
        classes = {"delta-rs": DeltaRsStore, "delta-spark": DeltaSparkStore}
        for run, name in enumerate(("delta-rs", "delta-spark", "delta-spark", "delta-rs")):
            figures = bench_backend(classes[name](spark, str(root / f"{name}-{run}")), spark,
                                    args.rows, args.partitions, args.appends)
            best = results.setdefault(name, figures)
            for key, value in figures.items():
                if key.endswith("_s"):
                    best[key] = min(best[key], value)
        print(f"\n{args.rows:,} rows in {args.partitions} partitions; {args.appends} small "
              f"appends (2,000 rows, 4 partitions each) for maintain\n")
        print(f"{'figure':<22} {'delta-rs':>10} {'delta-spark':>12} {'spark/rs':>9}")
        for key in results["delta-rs"]:
            a, b = results["delta-rs"][key], results["delta-spark"][key]
            ratio = f"{b / a:9.2f}" if key.endswith("_s") and a else ""
            fmt = (lambda v: f"{v:.2f}") if key.endswith("_s") else (lambda v: f"{v:,}")
            print(f"{key:<22} {fmt(a):>10} {fmt(b):>12} {ratio}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
