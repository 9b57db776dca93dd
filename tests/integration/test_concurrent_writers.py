"""Two processes writing one table at once, on each backend (Delta's optimistic concurrency).

Appends never conflict. A partition overwrite racing merges either wins or retries; the end
state must be what some serial order of the committed operations gives: every row once."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from pyspark.sql.types import DateType, LongType, StructField, StructType

from mktpipe.session import capabilities
from mktpipe.storage.delta_rs import DeltaRsStore

pytestmark = pytest.mark.integration
WRITER = Path(__file__).with_name("concurrent_writer.py")
ROOT = Path(__file__).resolve().parents[2]
SCHEMA = StructType([StructField("id", LongType()), StructField("day", DateType())])
# delta-spark's runs start two JVMs with the Delta jars (minutes a test on 2 cores): slow,
# `make test-slow`. Its optimistic concurrency is Delta's own; mktpipe's part (finding a
# merge's commit by its tag) runs on both backends in tests/unit/test_storage_contract.py
BACKENDS = ["delta-rs", pytest.param("delta-spark", marks=pytest.mark.slow)]


def _start(backend, warehouse, op, start, rounds):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MKTPIPE_CONF_DIR=str(ROOT / "conf"))
    return subprocess.Popen(
        [sys.executable, str(WRITER), backend, warehouse, op, str(start), str(rounds)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(proc) -> list[dict]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _check_backend(spark, backend):
    if backend == "delta-spark" and not capabilities(spark).delta_spark:
        pytest.skip(f"delta-spark unavailable: {capabilities(spark).reasons['delta_spark']}")


def _seed(spark, warehouse):
    store = DeltaRsStore(spark, warehouse)
    rows = [(1, dt.date(2026, 1, 1)), (2, dt.date(2026, 1, 2))]
    store.write(spark.createDataFrame(rows, SCHEMA), "silver.race", partition_by=["day"])
    return store


@pytest.mark.slow  # two more writer JVMs; the racing test below writes from two processes too
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_appending_keep_every_row_once(spark, tmp_path, backend):
    _check_backend(spark, backend)
    warehouse = str(tmp_path / "wh")
    store = _seed(spark, warehouse)
    procs = [_start(backend, warehouse, "append", start, 5) for start in (100, 1000)]
    results = [line for p in procs for line in _finish(p)]
    ids = [row.id for row in store.read("silver.race").collect()]
    assert Counter(ids).most_common(1)[0][1] == 1
    expected = {1, 2} | {i for line in results for i, _ in line["ids"]}
    assert set(ids) == expected and len(ids) == 102
    assert sorted(line["version"] for line in results) == list(range(1, 11))


@pytest.mark.parametrize("backend", BACKENDS)
def test_partition_overwrite_racing_merges_ends_in_a_serial_state(spark, tmp_path, backend):
    _check_backend(spark, backend)
    warehouse = str(tmp_path / "wh")
    store = _seed(spark, warehouse)
    procs = [_start(backend, warehouse, "overwrite", 0, 4),
             _start(backend, warehouse, "merge", 100, 6)]
    overwrites, merges = (_finish(p) for p in procs)
    assert len(overwrites) == 4 and len(merges) == 6
    last_overwrite = max(line["version"] for line in overwrites)
    rows = [(row.id, row.day.isoformat()) for row in store.read("silver.race").collect()]
    assert Counter(i for i, _ in rows).most_common(1)[0][1] == 1  # no key twice
    # the serial order of versions: day 1 holds the last overwrite's rows plus the merges
    # committed after it; day 2 holds the seed and every merge's rows
    expected = {(9000 + i, "2026-01-01") for i in range(5)} | {(2, "2026-01-02")}
    for line in merges:
        for i, day in line["ids"]:
            if day == "2026-01-02" or line["version"] > last_overwrite:
                expected.add((i, day))
    assert set(rows) == expected
    versions = sorted(line["version"] for line in overwrites + merges)
    assert versions == list(range(1, 11))  # one commit each, none lost, none doubled
    # still a valid Delta table for the other backend and for deltalake alone
    from deltalake import DeltaTable

    assert DeltaTable(store.path("silver.race")).to_pyarrow_table().num_rows == len(rows)
