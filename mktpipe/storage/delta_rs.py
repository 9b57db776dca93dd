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
from deltalake.exceptions import CommitFailedError
from deltalake.exceptions import TableNotFoundError as DeltaRsTableNotFound
from deltalake.transaction import AddAction, create_table_with_add_actions
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType, TimestampNTZType

from mktpipe.storage import files
from mktpipe.storage import parquet_files as pf
from mktpipe.storage.base import (
    DEFAULT_VACUUM_HOURS,
    ReplaceWhere,
    SchemaMismatchError,
    TableStore,
    WriteStats,
    cluster_by_partitions,
    evolved_schema,
    retry_on_conflict,
    schema_differences,
)

log = logging.getLogger(__name__)
STAGING = "_staging"


class _LostRace(RuntimeError):
    """Another writer committed the version an exclusive commit needed."""

    def __init__(self, table: str):
        super().__init__(f"another writer committed to {table} first")


def _is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, (_LostRace, CommitFailedError))


def _nullable(schema: StructType) -> StructType:
    return StructType([StructField(f.name, f.dataType, True, f.metadata) for f in schema.fields])


def _spark_schema(dt: DeltaTable) -> StructType:
    return StructType.fromJson(json.loads(dt.schema().to_json()))


class DeltaRsStore(TableStore):
    """TableStore on plain PySpark + the ``deltalake`` package (the embedded default)."""

    backend = "delta-rs"

    def __init__(self, spark: SparkSession, warehouse: str, target_file_rows: int = 1_000_000,
                 target_file_bytes: int = 128 * 1024 * 1024):
        super().__init__(spark, warehouse)
        self.target_file_rows = target_file_rows
        self.target_file_bytes = target_file_bytes

    # --- metadata ------------------------------------------------------------------------
    def _table(self, table: str, version: int | None = None) -> DeltaTable:
        path = self._require(table)
        try:
            return DeltaTable(path, version=version, storage_options=self.storage_options)
        except Exception as exc:  # delta-rs raises a generic error for a missing version
            if version is None:
                raise
            latest = DeltaTable(path, storage_options=self.storage_options).version()
            raise ValueError(
                f"table {table} has no version {version} (versions 0..{latest}): {exc}"
            ) from exc

    def exists(self, table: str) -> bool:
        return DeltaTable.is_deltatable(self.path(table), storage_options=self.storage_options)

    def version(self, table: str) -> int:
        return self._table(table).version()

    def schema(self, table: str) -> StructType:
        return _spark_schema(self._table(table))

    def partition_columns(self, table: str) -> list[str]:
        return list(self._table(table).metadata().partition_columns)

    def history(self, table: str) -> list[dict]:
        return self._table(table).history()

    def partition_values(self, table: str, column: str) -> list[str]:
        return sorted({p.get(column) for p in self._table(table).partitions()},
                      key=lambda v: (v is None, v or ""))

    def file_count(self, table: str) -> int:
        return len(self._table(table).file_uris())

    # --- maintenance ---------------------------------------------------------------------
    def optimize(self, table: str) -> int:
        dt = self._table(table)
        metrics = dt.optimize.compact(target_size=self.target_file_bytes)
        removed = int(metrics.get("numFilesRemoved", 0))
        log.info("%s: optimize removed %d files, added %d", table, removed,
                 int(metrics.get("numFilesAdded", 0)))
        return removed

    def vacuum(self, table: str, retention_hours: float = DEFAULT_VACUUM_HOURS,
               full: bool = False) -> int:
        dt = self._table(table)
        before = self.data_files_on_disk(table)
        # delta-rs returns every tombstoned path, deleted now or before: count the disk
        dt.vacuum(retention_hours=int(retention_hours), dry_run=False,
                  enforce_retention_duration=False, full=full)
        deleted = before - self.data_files_on_disk(table)
        deleted_staging = self._clean_staging(table, retention_hours)
        log.info("%s: vacuum deleted %d files (+%d abandoned staging files)", table,
                 deleted, deleted_staging)
        return deleted + deleted_staging

    def _clean_staging(self, table: str, retention_hours: float) -> int:
        """Files of writes that died before their commit, older than the retention."""
        fs, root_path = files.filesystem(f"{self.path(table)}/{STAGING}")
        if fs.get_file_info(root_path).type != pf.pafs.FileType.Directory:
            return 0
        cutoff = time.time() - retention_hours * 3600
        deleted = 0
        for info in fs.get_file_info(pf.pafs.FileSelector(root_path, recursive=True)):
            if info.type == pf.pafs.FileType.File and info.mtime.timestamp() <= cutoff:
                fs.delete_file(info.path)
                deleted += 1
        return deleted

    # --- reads ---------------------------------------------------------------------------
    def read(self, table: str, version: int | None = None) -> DataFrame:
        dt = self._table(table, version)
        schema = _spark_schema(dt)
        uris = dt.file_uris()
        if not uris:
            return self.spark.createDataFrame([], schema)
        return (
            self.spark.read.schema(schema)
            .option("basePath", self.path(table))
            .parquet(*uris)
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
        exists = self.exists(table)
        partitions = self._resolve_partitions(table, exists, df, partition_by)
        self._check_replace_where(table, replace_where, partitions)
        evolved = self._check_df_schema(table, exists, df, self.add_columns)
        if evolved is not None:
            # the new columns go last, as in the table's new schema
            df = df.select(*[F.col(f"`{n}`") for n in evolved.fieldNames()])
        if any(isinstance(f.dataType, TimestampNTZType) for f in df.schema.fields):
            raise SchemaMismatchError(
                f"{table}: TIMESTAMP_NTZ columns need a newer Delta protocol; cast to timestamp"
            )
        version = self._write_commit(df, table, mode, exists, partitions, replace_where,
                                     evolved=evolved)
        if version is None:
            raise _LostRace(table)  # only an exclusive commit (merge_insert) can lose
        return version

    def merge_insert(
        self, df: DataFrame, table: str, keys: Sequence[str], existing_filter: str | None = None
    ) -> int:
        keys = list(keys)
        missing = [k for k in keys if k not in df.columns]
        if missing:
            raise ValueError(f"merge_insert into {table}: keys {missing} not in {df.columns}")
        if not self.exists(table):
            return self.write(df.dropDuplicates(keys), table, mode="append")
        self._check_df_schema(table, True, df)
        partitions = self.partition_columns(table)

        def attempt() -> int:
            # optimistic: the anti-join reads version v; the commit must be v + 1, else
            # another writer changed the table in between and the insert set is recomputed
            read_version = self.version(table)
            current = self.read(table, version=read_version)
            if existing_filter:
                current = current.filter(existing_filter)
            new_rows = df.dropDuplicates(keys).join(
                current.select(*keys), on=keys, how="left_anti"
            )
            version = self._write_commit(new_rows, table, "append", True, partitions, None,
                                         read_version=read_version)
            if version is None:
                raise _LostRace(table)
            return version

        return retry_on_conflict(attempt, table, _is_conflict, "merge_insert")

    def _write_commit(self, df, table, mode, exists, partitions, replace_where,
                      read_version: int | None = None, evolved: StructType | None = None
                      ) -> int | None:
        """Write files, check them, commit; the new version (None: lost an exclusive race).

        Appends commit whatever else committed meanwhile (blind appends never conflict).
        Overwrites re-plan their removals on the latest version until their commit lands, so
        rows appended concurrently to a replaced partition are removed too. With
        ``read_version`` the commit must be the next version, or nothing is committed."""
        root = self.path(table)
        started = time.monotonic()
        actions = self._write_files(df, root, partitions)
        if exists and mode == "append" and not actions:
            # nothing to add: no empty commit, the table stays at its version
            version = self.version(table) if read_version is None else read_version
            self.last_write = WriteStats(table, None, 0, 0, 0, mode)
            log.info("%s v%s: append of 0 rows, nothing committed", table, version)
            return version
        try:
            self._check_file_schemas(table, exists, df, partitions, actions, evolved)
            if replace_where:
                self._check_within(table, actions, replace_where)
            if read_version is not None:
                version = self._commit(table, exists, df, mode, partitions, actions, None,
                                       read_version=read_version)
            elif mode == "overwrite" and exists:
                version = retry_on_conflict(
                    lambda: self._commit(table, exists, df, mode, partitions, actions,
                                         replace_where, read_version=-1, evolved=evolved),
                    table, _is_conflict, "overwrite",
                )
            else:
                version = self._commit(table, exists, df, mode, partitions, actions,
                                       replace_where, evolved=evolved)
        except BaseException as exc:
            self._discard(root, actions)
            if read_version is not None and _is_conflict(exc):
                return None
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

    # --- internals -----------------------------------------------------------------------
    def _check_df_schema(self, table: str, exists: bool, df: DataFrame,
                         add_columns: bool = False) -> StructType | None:
        """The evolved table schema when ``df`` adds columns (None: unchanged)."""
        if not exists:
            return None
        return evolved_schema(table, self.schema(table), df.schema, add_columns)

    def _write_files(self, df: DataFrame, root: str, partitions: list[str]) -> list[_Added]:
        write_id = uuid.uuid4().hex
        staging = f"{root}/{STAGING}/{write_id}"
        writer = (
            cluster_by_partitions(df, partitions)
            .write.mode("error").option("maxRecordsPerFile", self.target_file_rows)
        )
        if partitions:
            writer = writer.partitionBy(*partitions)
        writer.parquet(staging)
        fs, staging_path = files.filesystem(staging)
        _, root_path = files.filesystem(root)
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

    def _check_file_schemas(self, table, exists, df, partitions, actions, evolved=None) -> None:
        expected = evolved or (self.schema(table) if exists else _nullable(df.schema))
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

    def _commit(self, table, exists, df, mode, partitions, actions, replace_where,
                read_version: int | None = None, evolved: StructType | None = None) -> int:
        """Commit ``actions``; with ``read_version`` (-1: the latest) the commit must be the
        next version after it (no automatic retry by delta-rs), else CommitFailedError."""
        root = self.path(table)
        adds = [a.to_add_action() for a in actions]
        props = CommitProperties(
            custom_metadata={
                "mktpipe.operation": mode if not replace_where else "replace_where",
                "mktpipe.rows": str(sum(a.stats_rows for a in actions)),
                "mktpipe.files": str(len(actions)),
                "mktpipe.commit": uuid.uuid4().hex,
            },
            max_commit_retries=0 if read_version is not None else None,
        )
        if not exists:
            schema = Schema.from_json(_nullable(df.schema).json())
            create_table_with_add_actions(
                root, schema, adds, mode="error", partition_by=partitions or None,
                configuration=self.creation_properties(table) or None,
                storage_options=self.storage_options, commit_properties=props,
            )
            return DeltaTable(root, storage_options=self.storage_options).version()
        dt = DeltaTable(root, storage_options=self.storage_options) if read_version in (
            None, -1) else DeltaTable(root, version=read_version,
                                      storage_options=self.storage_options)
        filters = None
        if replace_where:
            filters = [
                (col, "in", [str(v) for v in val])
                if isinstance(val, (list, tuple, set))
                else (col, "=", str(val))
                for col, val in replace_where.items()
            ]
        dt.create_write_transaction(
            adds, mode=mode,
            schema=Schema.from_json(evolved.json()) if evolved is not None else dt.schema(),
            partition_by=partitions or None,
            partition_filters=filters, commit_properties=props,
        )
        # this commit's version, found by its tag: the latest may already be another writer's
        tag = props.custom_metadata["mktpipe.commit"]
        found = pf.find_commit(root, lambda info: info.get("mktpipe.commit") == tag)
        if found is not None:
            return found[0]
        raise RuntimeError(f"{table}: the write's commit ({tag}) is not in the last 50 commits")

    @staticmethod
    def _discard(root: str, actions) -> None:  # noqa: D401
        fs, root_path = files.filesystem(root)
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
