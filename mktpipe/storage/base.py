"""The TableStore interface: Delta tables addressed as ``layer.name``."""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from mktpipe.storage import files

_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
WRITE_MODES = ("append", "overwrite")
SCRATCH = "_scratch"  # intermediate files of a stage, under the warehouse
log = logging.getLogger(__name__)


class TableNotFoundError(LookupError):
    """A table that has not been written yet."""


class SchemaMismatchError(ValueError):
    """Data whose columns or types differ from the table's."""


class ConcurrentWriteError(RuntimeError):
    """Another writer kept committing to the same table; the write was retried and gave up.

    Nothing of this write was committed; run it again (a re-run of a stage is idempotent)."""


# a write that lost a commit race is retried this many times, with a growing jittered pause
COMMIT_ATTEMPTS = 8


def retry_on_conflict(operation, table: str, is_conflict, what: str):
    """Run ``operation()`` until it commits, retrying when ``is_conflict(exc)`` says another
    writer's commit made it invalid (Delta's optimistic concurrency); bounded."""
    import random
    import time

    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return operation()
        except Exception as exc:  # noqa: BLE001 - filtered by is_conflict
            if not is_conflict(exc):
                raise
            if attempt == COMMIT_ATTEMPTS:
                raise ConcurrentWriteError(
                    f"{what} on {table} conflicted with concurrent commits {attempt} times; "
                    f"nothing was committed, run it again ({str(exc).splitlines()[0]})"
                ) from exc
            pause = min(5.0, 0.1 * 2 ** attempt) * (0.5 + random.random())
            log.warning(
                "%s on %s lost a commit race (attempt %d): %s; retrying in %.2fs", what,
                table, attempt, str(exc).splitlines()[0][:200], pause)
            time.sleep(pause)


@dataclass(frozen=True)
class WriteStats:
    """What the last write or merge committed (from file metadata, never from the data)."""

    table: str
    version: int | None  # None when nothing was committed
    rows: int
    files: int
    bytes: int
    operation: str


ReplaceWhere = Mapping[str, Any]
# VACUUM keeps files a reader of the last week's versions may still need (Delta's default)
DEFAULT_VACUUM_HOURS = 168


@dataclass(frozen=True)
class MaintenanceStats:
    """What ``optimize`` + ``vacuum`` did to one table (files are the live snapshot's)."""

    table: str
    files_before: int
    files_after: int
    files_compacted: int
    files_vacuumed: int
    version: int


def cluster_by_partitions(df: DataFrame, partitions: Sequence[str]) -> DataFrame:
    """Rows of one partition value in one task, so a write makes one file per partition
    (split only by ``maxRecordsPerFile``) instead of one per task per partition."""
    from pyspark.sql import functions as F

    if not partitions:
        return df
    return df.repartition(*[F.col(f"`{c}`") for c in partitions])


def replace_where_sql(replace_where: ReplaceWhere) -> str:
    """``{"d": "2024-01-01", "s": ["a", "b"]}`` -> ``d = '2024-01-01' AND s IN ('a', 'b')``."""

    def lit(value: Any) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return "'" + str(value).replace("'", "''") + "'"

    parts = []
    for column, value in replace_where.items():
        if isinstance(value, (list, tuple, set)):
            parts.append(f"`{column}` IN ({', '.join(lit(v) for v in sorted(value))})")
        else:
            parts.append(f"`{column}` = {lit(value)}")
    return " AND ".join(parts)


def schema_differences(expected: StructType, actual: StructType) -> list[str]:
    """Human-readable differences in column names and types (nullability ignored)."""
    exp = {f.name: f.dataType for f in expected.fields}
    act = {f.name: f.dataType for f in actual.fields}
    problems = []
    missing = [c for c in exp if c not in act]
    extra = [c for c in act if c not in exp]
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"unexpected columns {extra}")
    for name in exp.keys() & act.keys():
        if _strip_nullability(exp[name]) != _strip_nullability(act[name]):
            problems.append(
                f"column '{name}' is {act[name].simpleString()}, "
                f"table has {exp[name].simpleString()}"
            )
    return problems


def evolved_schema(table: str, current: StructType, incoming: StructType,
                   add_columns: bool) -> StructType | None:
    """The table schema a write of ``incoming`` leads to, or None when it stays the same.

    Columns new in ``incoming`` are added (nullable, at the end) when ``add_columns``; a
    missing column or a changed type is always refused with SchemaMismatchError."""
    from pyspark.sql.types import StructField

    problems = schema_differences(current, incoming)
    known = set(current.fieldNames())
    added = [f for f in incoming.fields if f.name not in known]
    if add_columns:
        problems = [p for p in problems if not p.startswith("unexpected columns")]
    if problems:
        hint = "" if add_columns else " (storage.schema_evolution is strict)"
        raise SchemaMismatchError(
            f"data for {table} does not match the table schema: {'; '.join(problems)}{hint}"
        )
    if not added:
        return None
    log.info("%s: adding columns %s", table, [f.name for f in added])
    return StructType(list(current.fields)
                      + [StructField(f.name, f.dataType, True, f.metadata) for f in added])


def _strip_nullability(dtype):
    from pyspark.sql.types import ArrayType, MapType, StructField

    if isinstance(dtype, ArrayType):
        return ArrayType(_strip_nullability(dtype.elementType), True)
    if isinstance(dtype, MapType):
        return MapType(
            _strip_nullability(dtype.keyType), _strip_nullability(dtype.valueType), True
        )
    if isinstance(dtype, StructType):
        return StructType(
            [StructField(f.name, _strip_nullability(f.dataType), True) for f in dtype.fields]
        )
    return dtype


class TableStore(ABC):
    """Delta tables under ``<warehouse>/<layer>/<name>``.

    Subclasses implement one backend; the contract (tests/unit/test_storage_contract.py) is the
    same for all of them.
    """

    backend: str = "abstract"

    target_file_rows = 1_000_000  # a write splits a file above this many rows

    def __init__(self, spark: SparkSession, warehouse: str | Path):
        self.spark = spark
        self.warehouse = files.normalize(warehouse)  # a local path or a URI (s3a://...)
        # delta-rs's options for object storage (endpoint, commit mode); {} for local paths
        self.storage_options = files.storage_options(self.warehouse)
        self.last_write: WriteStats | None = None
        # a write may add new (nullable) columns to a table; other schema changes are refused
        self.add_columns = True

    # --- naming --------------------------------------------------------------------------
    def path(self, table: str) -> str:
        """The folder of ``layer.name``; raises ValueError for a malformed name."""
        if not _TABLE_NAME.match(table):
            raise ValueError(
                f"table name {table!r} must be 'layer.name' in lower case (e.g. bronze.events)"
            )
        layer, name = table.split(".")
        return files.join(self.warehouse, layer, name)

    @staticmethod
    def _check_mode(mode: str, replace_where: ReplaceWhere | None) -> None:
        if mode not in WRITE_MODES:
            raise ValueError(f"write mode {mode!r} is not one of {WRITE_MODES}")
        if replace_where and mode != "overwrite":
            raise ValueError("replace_where needs mode='overwrite'")

    def _resolve_partitions(self, table: str, exists: bool, df: DataFrame,
                            partition_by: Sequence[str] | None) -> list[str]:
        """The table's partition columns (checked against ``partition_by`` when given)."""
        if exists:
            current = self.partition_columns(table)
            if partition_by is not None and list(partition_by) != current:
                raise SchemaMismatchError(
                    f"{table} is partitioned by {current}, not {list(partition_by)}"
                )
            return current
        partitions = list(partition_by or [])
        missing = [c for c in partitions if c not in df.columns]
        if missing:
            raise ValueError(f"partition_by {missing} not among the columns of {table}'s data")
        return partitions

    @staticmethod
    def creation_properties(table: str) -> dict[str, str]:
        """The Delta table properties ``table`` is created with (``catalog.Table``'s; none
        for a plain name)."""
        return dict(getattr(table, "table_properties", None) or {})

    @staticmethod
    def _check_replace_where(table: str, replace_where: ReplaceWhere | None,
                             partitions: Sequence[str]) -> None:
        """replace_where may only name partition columns (both backends alike)."""
        unknown = [c for c in (replace_where or {}) if c not in partitions]
        if unknown:
            raise ValueError(
                f"replace_where on {table} names {unknown}, which are not partition "
                f"columns (partition columns: {list(partitions)})"
            )

    # --- the contract --------------------------------------------------------------------
    @abstractmethod
    def write(
        self,
        df: DataFrame,
        table: str,
        mode: str = "append",
        partition_by: Sequence[str] | None = None,
        replace_where: ReplaceWhere | None = None,
    ) -> int:
        """Commit ``df`` to ``table`` as one transaction; return the new version.

        ``mode="overwrite"`` replaces the table, or only the partitions matched by
        ``replace_where`` (a mapping of partition column -> value or list of values); every
        written row must fall inside ``replace_where``. The table is created on first write.
        """

    @abstractmethod
    def read(self, table: str, version: int | None = None) -> DataFrame:
        """The table at its latest (or the given) version."""

    @abstractmethod
    def merge_insert(
        self, df: DataFrame, table: str, keys: Sequence[str], existing_filter: str | None = None
    ) -> int:
        """Insert the rows of ``df`` whose ``keys`` are absent from ``table``.

        Rows of ``df`` that share a key with each other are inserted once (which one is
        unspecified: dedupe first when it matters). ``existing_filter`` (a SQL predicate on
        the table, columns in backticks, typically on partition columns) limits which
        existing rows are compared, so a daily batch does not scan all history. Returns the
        new version, or the current one when there was nothing to insert (no empty commit).
        """

    @abstractmethod
    def history(self, table: str) -> list[dict]:
        """Commit history, newest first (version, timestamp, operation, parameters)."""

    @abstractmethod
    def exists(self, table: str) -> bool:
        """Whether ``table`` has been created."""

    @abstractmethod
    def version(self, table: str) -> int:
        """The latest version of ``table``."""

    @abstractmethod
    def schema(self, table: str) -> StructType:
        """The table's Spark schema."""

    @abstractmethod
    def file_count(self, table: str) -> int:
        """Data files in the table's latest snapshot."""

    def partition_values(self, table: str, column: str) -> list[str]:
        """The distinct values of partition ``column`` in the latest snapshot, as strings
        (None for a null partition), in no particular order. This default runs a distinct in
        Spark; the Delta stores read them from the transaction log instead (no Spark job)."""
        return [None if r[0] is None else str(r[0])
                for r in self.read(table).select(column).distinct().collect()]

    @abstractmethod
    def optimize(self, table: str) -> int:
        """Compact small files (bin-packing, per partition) as one commit; return files removed
        (0 and no commit when there was nothing to compact)."""

    @abstractmethod
    def vacuum(self, table: str, retention_hours: float = DEFAULT_VACUUM_HOURS,
               full: bool = False) -> int:
        """Delete files no version newer than ``retention_hours`` references; return how many.

        Time travel to versions older than the retention stops working for those files. The
        default (LITE) deletes the files the log's tombstones name; ``full`` also lists every
        folder for files no commit referenced (slower)."""

    def tables(self) -> list[str]:
        """Every ``layer.name`` Delta table under the warehouse (local or object storage)."""
        import pyarrow.fs as pafs

        fs, root = files.filesystem(self.warehouse)
        if fs.get_file_info(root).type != pafs.FileType.Directory:
            return []
        found = []
        for layer in fs.get_file_info(pafs.FileSelector(root)):
            if layer.type != pafs.FileType.Directory or layer.base_name.startswith(("_", ".")):
                continue
            for entry in fs.get_file_info(pafs.FileSelector(layer.path)):
                name = f"{layer.base_name}.{entry.base_name}"
                if entry.type == pafs.FileType.Directory and _TABLE_NAME.match(name) and (
                    fs.get_file_info(f"{entry.path}/_delta_log").type
                    == pafs.FileType.Directory
                ):
                    found.append(name)
        return sorted(found)

    @contextlib.contextmanager
    def scratch(self, name: str) -> Iterator[str]:
        """A fresh folder ``<warehouse>/_scratch/<name>-<id>`` for intermediate files, deleted
        on exit (also after an error). Not a table: ``tables()`` and maintenance skip it."""
        path = files.join(self.warehouse, SCRATCH, f"{name}-{uuid.uuid4().hex[:12]}")
        try:
            yield path
        finally:
            fs, local = files.filesystem(path)
            try:
                fs.delete_dir(local)
            except FileNotFoundError:
                pass
            except OSError as exc:  # a leftover folder is harmless; say where it is
                log.warning("could not delete scratch folder %s: %s", path, exc)

    def data_files_on_disk(self, table: str) -> int:
        """Parquet files under the table folder, referenced or not (log and staging aside)."""
        from mktpipe.storage.parquet_files import list_parquet

        fs, root = files.filesystem(self._require(table))
        return sum(1 for info in list_parquet(fs, root)
                   if "/_delta_log/" not in info.path and "/_staging/" not in info.path)

    def maintain(self, table: str, retention_hours: float = DEFAULT_VACUUM_HOURS,
                 full_vacuum: bool = False) -> MaintenanceStats:
        """OPTIMIZE (compaction) then VACUUM one table."""
        before = self.file_count(table)
        compacted = self.optimize(table)
        vacuumed = self.vacuum(table, retention_hours, full=full_vacuum)
        return MaintenanceStats(table, before, self.file_count(table), compacted, vacuumed,
                                self.version(table))

    def _require(self, table: str) -> str:
        path = self.path(table)
        if not self.exists(table):
            raise TableNotFoundError(
                f"table {table} does not exist at {path}; run the stage that writes it first "
                f"(e.g. `mktpipe ingest` for bronze tables)"
            )
        return path
