"""Parquet file metadata for Delta add actions: per-file stats, schema, partition values.

Only footers are read (on the driver): metadata, never rows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import posixpath
import re
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mktpipe.storage.files import filesystem

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# string stats longer than this are left out (Delta readers treat missing stats as unknown)
MAX_STRING_STAT = 64


def partition_values(relative_path: str) -> dict[str, str | None]:
    """``d=2024-01-01/s=a%3Ab/part-0.parquet`` -> ``{"d": "2024-01-01", "s": "a:b"}``."""
    values: dict[str, str | None] = {}
    for segment in relative_path.split("/")[:-1]:
        if "=" not in segment:
            continue
        key, raw = segment.split("=", 1)
        values[unquote(key)] = None if raw == HIVE_NULL else unquote(raw)
    return values


def _ms_iso(value: dt.datetime, round_up: bool) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    value = value.astimezone(dt.timezone.utc)
    micros = value.microsecond
    ms = micros // 1000
    if round_up and micros % 1000:
        value = value.replace(microsecond=0) + dt.timedelta(milliseconds=ms + 1)
    else:
        value = value.replace(microsecond=ms * 1000)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _stat_value(value: Any, round_up: bool) -> Any:
    """A JSON-able Delta stats value, or None when the value should be left out."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return _ms_iso(value, round_up)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING_STAT else None
    return None


def file_stats(metadata: pq.FileMetaData) -> dict[str, Any]:
    """Delta stats (numRecords, minValues, maxValues, nullCount) from a Parquet footer.

    Only top-level primitive columns get min/max/nullCount; a column is left out of
    minValues/maxValues when any row group lacks statistics for it.
    """
    num_rows = metadata.num_rows
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    if metadata.num_row_groups:
        names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
        for idx, path in enumerate(names):
            if "." in path:  # nested (lists, structs): no per-column stats
                continue
            lo = hi = None
            null_count = 0
            complete = True
            for rg in range(metadata.num_row_groups):
                stats = metadata.row_group(rg).column(idx).statistics
                if stats is None:
                    complete = False
                    break
                null_count += stats.null_count if stats.has_null_count else 0
                if stats.has_min_max:
                    lo = stats.min if lo is None else min(lo, stats.min)
                    hi = stats.max if hi is None else max(hi, stats.max)
            if not complete:
                continue
            nulls[path] = null_count
            lo_v, hi_v = _stat_value(lo, False), _stat_value(hi, True)
            if lo_v is not None and hi_v is not None:
                mins[path] = lo_v
                maxs[path] = hi_v
    return {"numRecords": num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}


def list_parquet(fs: pafs.FileSystem, root: str) -> list[pafs.FileInfo]:
    """Every ``*.parquet`` file below ``root`` (sorted by path)."""
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    files = [
        info
        for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.File and info.path.endswith(".parquet")
    ]
    return sorted(files, key=lambda info: info.path)


def read_footer(fs: pafs.FileSystem, path: str) -> pq.FileMetaData:
    with fs.open_input_file(path) as fh:
        return pq.read_metadata(fh)


def relpath(path: str, root: str) -> str:
    return posixpath.relpath(path, root)


def stats_json(metadata: pq.FileMetaData) -> str:
    return json.dumps(file_stats(metadata), separators=(",", ":"))


def arrow_schema(metadata: pq.FileMetaData) -> pa.Schema:
    return metadata.schema.to_arrow_schema().remove_metadata()


_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


def find_commit(table_root: str, matches, limit: int = 50) -> tuple[int, dict] | None:
    """(version, commitInfo) of the newest of the last ``limit`` commits of the Delta table at
    ``table_root`` whose commitInfo ``matches`` (a predicate on the dict), or None.

    Read from the ``_delta_log/<version>.json`` files themselves, so each version is the one
    its file is named by: ``deltalake``'s ``history()`` numbers its entries back from a
    separate read of the latest version, which is off while another writer commits."""
    fs, root = filesystem(table_root)
    log_dir = f"{root.rstrip('/')}/_delta_log"
    names = [info.base_name for info in fs.get_file_info(pafs.FileSelector(log_dir))]
    versions = sorted((int(m.group(1)) for m in map(_COMMIT_FILE.match, names) if m),
                      reverse=True)
    for version in versions[:limit]:
        try:
            with fs.open_input_stream(f"{log_dir}/{version:020d}.json") as fh:
                lines = fh.read().decode("utf-8").splitlines()
        except FileNotFoundError:  # cleaned up meanwhile: older than any commit looked for
            continue
        for line in lines:
            action = json.loads(line) if line.strip() else {}
            info = action.get("commitInfo")
            if info is not None and matches(info):
                return version, info
    return None
