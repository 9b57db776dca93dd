"""Compare two warehouses table by table (same landing data, two runs): the cluster test
(cluster vs local mode), the backend test (delta-spark vs delta-rs) and the object-storage
test (local vs s3://) share it. A warehouse is a local path or a URI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mktpipe.schemas import SOURCE_FILE
from mktpipe.storage import files

# columns that differ between two runs by design
RUN_COLUMNS = {"_run_id", "_ingested_at"}
# results of iterative algorithms: compared with a looser relative tolerance
ITERATIVE_COLUMNS = {"pagerank", "influence_percentile", "modularity"}
RTOL, RTOL_ITERATIVE, ATOL = 1e-9, 1e-6, 1e-12


def tables(warehouse: Path | str) -> set[str]:
    """``layer/name`` of every Delta table under ``warehouse``."""
    return {f"{layer}/{name}" for layer in files.list_dirs(warehouse)
            for name in files.list_dirs(files.join(warehouse, layer))
            if files.is_dir(files.join(warehouse, layer, name, "_delta_log"))}


def canonical(value):
    """Nested values (lists, maps, structs) as JSON-able Python, maps sorted by key."""
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return value.isoformat()
    return value


def load(path: Path, run_started: dt.datetime) -> tuple[pd.DataFrame, list[str], int]:
    """A Delta table as a sorted pandas frame without run-specific columns.

    Dropped: RUN_COLUMNS, and any timestamp column whose values all lie after the test
    started (a time-of-run column). Nested columns become canonical JSON text.
    Returns the frame, the dropped columns and the table's version.
    """
    from deltalake import DeltaTable

    table = DeltaTable(str(path), storage_options=files.storage_options(str(path)) or None)
    data = table.to_pyarrow_table()
    if SOURCE_FILE in data.column_names:  # the landing file, from the landing folder down
        column = pc.replace_substring_regex(data.column(SOURCE_FILE), r"^.*/([^/]+/date=)",
                                            r"\1")
        data = data.set_column(data.column_names.index(SOURCE_FILE), SOURCE_FILE, column)
    dropped = []
    for field in data.schema:
        if field.name in RUN_COLUMNS or field.name.endswith("run_id"):
            dropped.append(field.name)
        elif pa.types.is_timestamp(field.type):
            earliest = pc.min(data.column(field.name)).as_py()
            if earliest is not None and earliest.tzinfo is None:
                earliest = earliest.replace(tzinfo=dt.timezone.utc)
            if earliest is not None and earliest >= run_started:
                dropped.append(field.name)
    frame = data.drop(dropped).to_pandas()
    for field in data.schema:
        if field.name in dropped:
            continue
        kind = field.type
        if pa.types.is_map(kind):
            frame[field.name] = [
                None if v is None else json.dumps(sorted(canonical(list(v))), default=str)
                for v in frame[field.name]]
        elif (pa.types.is_list(kind) or pa.types.is_large_list(kind)
              or pa.types.is_struct(kind)):
            frame[field.name] = [
                None if v is None else json.dumps(canonical(v), sort_keys=True, default=str)
                for v in frame[field.name]]
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    keys = [c for c in frame.columns if c not in floats] + floats  # floats never decide order
    if len(frame):
        frame = frame.sort_values(keys, na_position="first", kind="mergesort")
    return frame.reset_index(drop=True), dropped, table.version()


def compare(left_wh: Path | str, right_wh: Path | str, run_started: dt.datetime, tables: set[str],
            versions: bool = True, skip_columns: dict[str, set[str]] | None = None
            ) -> tuple[list[str], list[str]]:
    """(problems, summary) of comparing ``tables`` of two warehouses column by column."""
    problems, summary = [], []
    for name in sorted(tables):
        left, dropped, left_version = load(files.join(left_wh, name), run_started)
        right, _, right_version = load(files.join(right_wh, name), run_started)
        skip = (skip_columns or {}).get(name, set())
        if skip:
            left, right = left.drop(columns=list(skip)), right.drop(columns=list(skip))
            left = left.sort_values(list(left.columns), kind="mergesort").reset_index(drop=True)
            right = right.sort_values(list(right.columns), kind="mergesort").reset_index(
                drop=True)
        summary.append(f"{name} {left.shape[0]}x{left.shape[1]} (-{','.join(dropped)})")
        if versions and left_version != right_version:
            problems.append(f"{name}: version {left_version} vs {right_version}")
        if list(left.columns) != list(right.columns) or len(left) != len(right):
            problems.append(f"{name}: shape/columns differ: {left.shape} {list(left.columns)} "
                            f"vs {right.shape} {list(right.columns)}")
            continue
        for col in left.columns:
            rtol = RTOL_ITERATIVE if col in ITERATIVE_COLUMNS else RTOL
            try:
                pd.testing.assert_series_equal(left[col], right[col], check_exact=False,
                                               rtol=rtol, atol=ATOL, obj=f"{name}.{col}")
            except AssertionError as exc:
                problems.append(str(exc)[:800])
    return problems, summary
