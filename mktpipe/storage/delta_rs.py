"""Delta tables with no JVM jar: Spark writes Parquet, delta-rs commits the transaction.

A write:

1. checks the DataFrame's schema against the table's (delta-rs would not);
2. has Spark write Parquet files, Hive-partitioned, into ``<table>/_staging/<write id>/``;
3. moves them into the table folder (file renames: metadata only), reads their footers for
   per-file stats (numRecords, min/max, nullCount) and checks the files' schema again;
4. commits every file as ONE Delta transaction (append, overwrite, or overwrite of the
   partitions named by ``replace_where``).

Files written by a write that fails before step 4 are not referenced by the log, so every
reader still sees the previous version; the next write proceeds normally. Reads list the
snapshot's files from the log and hand them to Spark with the table folder as ``basePath``,
so partition columns come back from the Hive-style folder names.

Tables use protocol reader 1 / writer 2 (no deletion vectors, no column mapping) and are
readable by any Delta reader, delta-spark included. One writer per table at a time.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence

from deltalake import CommitProperties, DeltaTable, Schema
from deltalake.exceptions import TableNotFoundError as DeltaRsTableNotFound
from deltalake.transaction import AddAction, create_table_with_add_actions
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType, TimestampNTZType

from mktpipe.storage import parquet_files as pf
from mktpipe.storage.base import (
    ReplaceWhere,
    SchemaMismatchError,
    TableStore,
    WriteStats,
    schema_differences,
)

log = logging.getLogger(__name__)
STAGING = "_staging"


def _nullable(schema: StructType) -> StructType:
    return StructType([StructField(f.name, f.dataType, True, f.metadata) for f in schema.fields])


def _spark_schema(dt: DeltaTable) -> StructType:
    return StructType.fromJson(json.loads(dt.schema().to_json()))


class DeltaRsStore(TableStore):
    """TableStore on plain PySpark + the ``deltalake`` package (the embedded default)."""

    backend = "delta-rs"

    def __init__(self, spark: SparkSession, warehouse: str, target_file_rows: int = 1_000_000):
        super().__init__(spark, warehouse)
        self.target_file_rows = target_file_rows

    # --- metadata ------------------------------------------------------------------------
    def _table(self, table: str, version: int | None = None) -> DeltaTable:
        path = self._require(table)
        try:
            return DeltaTable(path, version=version)
        except Exception as exc:  # delta-rs raises a generic error for a missing version
            if version is None:
                raise
            latest = DeltaTable(path).version()
            raise ValueError(
                f"table {table} has no version {version} (versions 0..{latest}): {exc}"
            ) from exc

    def exists(self, table: str) -> bool:
        return DeltaTable.is_deltatable(self.path(table))

    def version(self, table: str) -> int:
        return self._table(table).version()

    def schema(self, table: str) -> StructType:
        return _spark_schema(self._table(table))

    def partition_columns(self, table: str) -> list[str]:
        return list(self._table(table).metadata().partition_columns)

    def history(self, table: str) -> list[dict]:
        return self._table(table).history()

    # --- reads ---------------------------------------------------------------------------
    def read(self, table: str, version: int | None = None) -> DataFrame:
        dt = self._table(table, version)
        schema = _spark_schema(dt)
        files = dt.file_uris()
        if not files:
            return self.spark.createDataFrame([], schema)
        return (
            self.spark.read.schema(schema)
            .option("basePath", self.path(table))
            .parquet(*files)
            .select(*[F.col(f"`{name}`") for name in schema.fieldNames()])
        )

    # --- writes --------------------------------------------------------------------------
    def write(
        self,
        df: DataFrame,
        table: str,
        mode: str = "append",
        partition_by: Sequence[str] | None = None,
        replace_where: ReplaceWhere | None = None,
    ) -> int:
        self._check_mode(mode, replace_where)
        root = self.path(table)
        exists = self.exists(table)
        partitions = self._resolve_partitions(table, exists, df, partition_by)
        if replace_where:
            unknown = [c for c in replace_where if c not in partitions]
            if unknown:
                raise ValueError(
                    f"replace_where on {table} names {unknown}, which are not partition "
                    f"columns (partition columns: {partitions})"
                )
        self._check_df_schema(table, exists, df)
        if any(isinstance(f.dataType, TimestampNTZType) for f in df.schema.fields):
            raise SchemaMismatchError(
                f"{table}: TIMESTAMP_NTZ columns need a newer Delta protocol; cast to timestamp"
            )
        started = time.monotonic()
        actions = self._write_files(df, root, partitions)
        if exists and mode == "append" and not actions:
            # nothing to add: no empty commit, the table stays at its version
            version = self.version(table)
            self.last_write = WriteStats(table, None, 0, 0, 0, mode)
            log.info("%s v%s: append of 0 rows, nothing committed", table, version)
            return version
        try:
            self._check_file_schemas(table, exists, df, partitions, actions)
            if replace_where:
                self._check_within(table, actions, replace_where)
            version = self._commit(table, exists, df, mode, partitions, actions, replace_where)
        except BaseException:
            self._discard(root, actions)
            raise
        rows = sum(a.stats_rows for a in actions)
        self.last_write = WriteStats(
            table, version, rows, len(actions), sum(a.size for a in actions), mode
        )
        log.info(
            "%s v%s: %s %d rows in %d files (%.1fs)",
            table, version, mode, rows, len(actions), time.monotonic() - started,
        )
        return version

    def merge_insert(
        self, df: DataFrame, table: str, keys: Sequence[str], existing_filter: str | None = None
    ) -> int:
        keys = list(keys)
        missing = [k for k in keys if k not in df.columns]
        if missing:
            raise ValueError(f"merge_insert into {table}: keys {missing} not in {df.columns}")
        new_rows = df.dropDuplicates(keys)
        if self.exists(table):
            current = self.read(table)
            if existing_filter:
                current = current.filter(existing_filter)
            current = current.select(*keys)
            new_rows = new_rows.join(current, on=keys, how="left_anti")
        return self.write(new_rows, table, mode="append")

    # --- internals -----------------------------------------------------------------------
    def _resolve_partitions(self, table, exists, df, partition_by) -> list[str]:
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

    def _check_df_schema(self, table: str, exists: bool, df: DataFrame) -> None:
        if not exists:
            return
        problems = schema_differences(self.schema(table), df.schema)
        if problems:
            raise SchemaMismatchError(
                f"data for {table} does not match the table schema: {'; '.join(problems)}"
            )

    def _write_files(self, df: DataFrame, root: str, partitions: list[str]) -> list[_Added]:
        write_id = uuid.uuid4().hex
        staging = f"{root}/{STAGING}/{write_id}"
        writer = df.write.mode("error").option("maxRecordsPerFile", self.target_file_rows)
        if partitions:
            writer = writer.partitionBy(*partitions)
        writer.parquet(staging)
        fs, staging_path = pf.filesystem(staging)
        _, root_path = pf.filesystem(root)
        added = []
        for info in pf.list_parquet(fs, staging_path):
            rel = pf.relpath(info.path, staging_path)
            metadata = pf.read_footer(fs, info.path)
            if metadata.num_rows == 0:
                fs.delete_file(info.path)
                continue
            target = f"{root_path}/{rel}"
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            fs.move(info.path, target)
            added.append(_Added(rel, info.size, metadata))
        if fs.get_file_info(staging_path).type == pf.pafs.FileType.Directory:
            fs.delete_dir(staging_path)
        return added

    def _check_file_schemas(self, table, exists, df, partitions, actions) -> None:
        expected = self.schema(table) if exists else _nullable(df.schema)
        expected = StructType([f for f in expected.fields if f.name not in partitions])
        for action in actions:
            arrow = pf.arrow_schema(action.metadata)
            actual = StructType.fromJson(json.loads(Schema.from_arrow(arrow).to_json()))
            problems = schema_differences(expected, actual)
            if problems:
                raise SchemaMismatchError(
                    f"file {action.path} written for {table} does not match the table "
                    f"schema: {'; '.join(problems)}"
                )

    @staticmethod
    def _check_within(table, actions, replace_where) -> None:
        allowed = {
            col: {str(v) for v in (val if isinstance(val, (list, tuple, set)) else [val])}
            for col, val in replace_where.items()
        }
        for action in actions:
            for col, values in allowed.items():
                if action.partition_values.get(col) not in values:
                    raise ValueError(
                        f"data written to {table} has {col}={action.partition_values.get(col)}"
                        f", outside replace_where {dict(replace_where)}"
                    )

    def _commit(self, table, exists, df, mode, partitions, actions, replace_where) -> int:
        root = self.path(table)
        adds = [a.to_add_action() for a in actions]
        props = CommitProperties(
            custom_metadata={
                "mktpipe.operation": mode if not replace_where else "replace_where",
                "mktpipe.rows": str(sum(a.stats_rows for a in actions)),
                "mktpipe.files": str(len(actions)),
            }
        )
        if not exists:
            schema = Schema.from_json(_nullable(df.schema).json())
            create_table_with_add_actions(
                root, schema, adds, mode="error", partition_by=partitions or None,
                commit_properties=props,
            )
            return DeltaTable(root).version()
        dt = DeltaTable(root)
        filters = None
        if replace_where:
            filters = [
                (col, "in", [str(v) for v in val])
                if isinstance(val, (list, tuple, set))
                else (col, "=", str(val))
                for col, val in replace_where.items()
            ]
        dt.create_write_transaction(
            adds, mode=mode, schema=dt.schema(), partition_by=partitions or None,
            partition_filters=filters, commit_properties=props,
        )
        return DeltaTable(root).version()

    @staticmethod
    def _discard(root: str, actions) -> None:
        fs, root_path = pf.filesystem(root)
        for action in actions:
            try:
                fs.delete_file(f"{root_path}/{action.path}")
            except OSError:  # best effort: an unreferenced file is invisible to readers
                log.warning("could not remove uncommitted file %s/%s", root, action.path)


class _Added:
    """A written file on its way into a Delta add action."""

    def __init__(self, path: str, size: int, metadata):
        self.path = path
        self.size = size
        self.metadata = metadata
        self.partition_values = pf.partition_values(path)
        self.stats_rows = metadata.num_rows

    def to_add_action(self) -> AddAction:
        return AddAction(
            self.path,
            self.size,
            self.partition_values,
            int(time.time() * 1000),
            True,
            pf.stats_json(self.metadata),
        )


__all__ = ["DeltaRsStore", "DeltaRsTableNotFound"]
