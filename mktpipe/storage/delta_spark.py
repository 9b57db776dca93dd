"""Delta tables through delta-spark (`format("delta")`, `DeltaTable`), when its jar is present.

Used by ``open_store`` when the session was built with the Delta jar (see mktpipe.session).
Same contract as the delta-rs store; tables written by either are read by the other.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from mktpipe.session import temporary_conf
from mktpipe.storage import parquet_files as pf
from mktpipe.storage.base import (
    DEFAULT_VACUUM_HOURS,
    ReplaceWhere,
    TableStore,
    WriteStats,
    cluster_by_partitions,
    evolved_schema,
    replace_where_sql,
    retry_on_conflict,
)

log = logging.getLogger(__name__)
_CONFLICTS = ("ConcurrentAppendException", "ConcurrentDeleteReadException",
              "ConcurrentDeleteDeleteException", "ConcurrentTransactionException",
              "ConcurrentWriteException", "MetadataChangedException", "ProtocolChangedException",
              "DELTA_CONCURRENT", "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED")


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is Delta's optimistic-concurrency conflict (retrying may succeed)."""
    text = type(exc).__name__ + " " + str(exc)[:2000]
    return any(marker in text for marker in _CONFLICTS)


class DeltaSparkStore(TableStore):
    """TableStore on the delta-spark jar (requires the Delta session extension)."""

    backend = "delta-spark"

    def __init__(self, spark: SparkSession, warehouse: str, target_file_rows: int = 1_000_000,
                 target_file_bytes: int = 128 * 1024 * 1024):
        super().__init__(spark, warehouse)
        self.target_file_rows = target_file_rows
        self.target_file_bytes = target_file_bytes
        from delta.tables import DeltaTable  # imported late: needs the jar at run time

        self._delta_table = DeltaTable

    def _dt(self, table: str):
        return self._delta_table.forPath(self.spark, self._require(table))

    def _log(self, table: str):
        """The table's log read by the ``deltalake`` package (milliseconds, no Spark job), for
        metadata, on local paths and object storage alike; None when there is no table."""
        from deltalake import DeltaTable as LogTable

        path = self.path(table)
        options = self.storage_options
        return LogTable(path, storage_options=options) if LogTable.is_deltatable(
            path, storage_options=options) else None

    def exists(self, table: str) -> bool:
        from deltalake import DeltaTable as LogTable

        return LogTable.is_deltatable(self.path(table), storage_options=self.storage_options)

    def version(self, table: str) -> int:
        log_table = self._log(table)
        if log_table is not None:
            return log_table.version()
        return int(self._dt(table).history(1).select("version").first()[0])

    def schema(self, table: str) -> StructType:
        log_table = self._log(table)
        if log_table is not None:
            return StructType.fromJson(json.loads(log_table.schema().to_json()))
        return self._dt(table).toDF().schema

    def partition_columns(self, table: str) -> list[str]:
        log_table = self._log(table)
        if log_table is not None:
            return list(log_table.metadata().partition_columns)
        detail = self._dt(table).detail().select("partitionColumns").first()
        return list(detail[0] or [])

    def partition_values(self, table: str, column: str) -> list[str]:
        log_table = self._log(table)
        if log_table is None:
            return super().partition_values(table, column)
        return sorted({p.get(column) for p in log_table.partitions()},
                      key=lambda v: (v is None, v or ""))

    def file_count(self, table: str) -> int:
        log_table = self._log(table)
        if log_table is not None:
            return len(log_table.file_uris())
        return int(self._dt(table).detail().select("numFiles").first()[0])

    # --- maintenance ---------------------------------------------------------------------
    def _conf(self, key: str, value: str):
        """``key`` = ``value`` in the session for the block, then what it was before."""
        return temporary_conf(self.spark, {key: value})

    def optimize(self, table: str) -> int:
        with self._conf("spark.databricks.delta.optimize.maxFileSize",
                        str(self.target_file_bytes)):
            metrics = self._dt(table).optimize().executeCompaction().select(
                "metrics.numFilesRemoved", "metrics.numFilesAdded").first()
        log.info("%s: optimize removed %d files, added %d", table, metrics[0], metrics[1])
        return int(metrics[0])

    def vacuum(self, table: str, retention_hours: float = DEFAULT_VACUUM_HOURS,
               full: bool = False) -> int:
        # Delta refuses a retention under its own (7 days) unless this check is off; the
        # caller chose the retention (mktpipe maintain warns below the default)
        with self._conf("spark.databricks.delta.retentionDurationCheck.enabled", "false"):
            before = self.data_files_on_disk(table)
            path = self.path(table).replace("`", "``")
            try:
                # LITE deletes what the log's tombstones name (no listing of every folder):
                # several times faster; FULL also finds files no commit ever referenced
                self.spark.sql(f"VACUUM delta.`{path}` RETAIN {float(retention_hours)} HOURS"
                               + ("" if full else " LITE")).collect()
            except Exception as exc:  # LITE needs the log back to the retention horizon
                if full or "LITE" not in str(exc).upper():
                    raise
                log.info("%s: VACUUM LITE not possible (%s); full VACUUM", table,
                         str(exc).splitlines()[0][:200])
                self._dt(table).vacuum(float(retention_hours))
            deleted = before - self.data_files_on_disk(table)
        log.info("%s: vacuum deleted %d files", table, deleted)
        return deleted

    def history(self, table: str) -> list[dict]:
        rows = self._dt(table).history().select(
            "version", "timestamp", "operation", "operationParameters", "operationMetrics"
        )
        return [row.asDict(recursive=True) for row in rows.collect()]  # metadata only

    def read(self, table: str, version: int | None = None) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self._require(table))

    def write(
        self,
        df: DataFrame,
        table: str,
        mode: str = "append",
        partition_by: Sequence[str] | None = None,
        replace_where: ReplaceWhere | None = None,
    ) -> int:
        self._check_mode(mode, replace_where)
        path = self.path(table)
        exists = self.exists(table)
        evolved = (evolved_schema(table, self.schema(table), df.schema, self.add_columns)
                   if exists else None)
        partitions = self._resolve_partitions(table, exists, df, partition_by)
        self._check_replace_where(table, replace_where, partitions)
        commit_tag = f"mktpipe-{uuid.uuid4().hex}"  # finds this commit among others
        writer = (
            cluster_by_partitions(df, partitions)
            .write.format("delta").mode(mode).option("maxRecordsPerFile", self.target_file_rows)
            .option("userMetadata", commit_tag)
        )
        if evolved is not None:
            writer = writer.option("mergeSchema", "true")
        if partitions and not exists:
            writer = writer.partitionBy(*partitions)
        if not exists:  # a writer option named delta.* becomes a property of the new table
            for key, value in self.creation_properties(table).items():
                writer = writer.option(key, value)
        if replace_where:
            writer = writer.option("replaceWhere", replace_where_sql(replace_where))
        try:
            retry_on_conflict(lambda: writer.save(path), table, is_conflict, f"{mode} write")
        except Exception as exc:
            if replace_where and "REPLACE_WHERE_MISMATCH" in str(exc):
                first = str(exc).splitlines()[0]
                raise ValueError(
                    f"data written to {table} has rows outside replace_where "
                    f"{dict(replace_where)}; nothing was committed ({first})"
                ) from None
            raise
        commit = self._own_commit(table, commit_tag)
        if commit is None:
            raise RuntimeError(f"{table}: the write's commit ({commit_tag}) is not in the log")
        version = int(commit["version"])
        metrics = commit.get("operationMetrics") or {}
        rows = int(metrics.get("numOutputRows", 0))
        files = int(metrics.get("numFiles", metrics.get("numAddedFiles", 0)))
        self.last_write = WriteStats(table, version, rows, files, 0, mode)
        return version

    def merge_insert(
        self, df: DataFrame, table: str, keys: Sequence[str], existing_filter: str | None = None
    ) -> int:
        keys = list(keys)
        new_rows = df.dropDuplicates(keys)
        if not self.exists(table):
            return self.write(new_rows, table)
        before = self.version(table)
        condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        if existing_filter:
            # qualify the filter's `backticked` columns with the target alias
            condition += " AND (" + re.sub(r"`([^`]+)`", r"t.`\1`", existing_filter) + ")"
        commit_tag = f"mktpipe-{uuid.uuid4().hex}"

        def merge() -> None:
            with self._conf("spark.databricks.delta.commitInfo.userMetadata", commit_tag):
                (
                    self._dt(table).alias("t")
                    .merge(new_rows.alias("s"), condition)
                    .whenNotMatchedInsertAll()
                    .execute()
                )

        retry_on_conflict(merge, table, is_conflict, "merge_insert")
        commit = self._own_commit(table, commit_tag)
        metrics = (commit or {}).get("operationMetrics") or {}
        rows = int(metrics.get("numTargetRowsInserted", 0))
        if commit is None or rows == 0:
            version = before  # nothing inserted (Delta made no commit, or an empty one)
        else:
            version = int(commit["version"])
        self.last_write = WriteStats(table, version, rows, 0, 0, "merge_insert")
        return version

    def _own_commit(self, table: str, commit_tag: str) -> dict | None:
        """This writer's commit (by its userMetadata tag), among any concurrent ones."""
        # the log's own files (local or object storage): milliseconds, no Spark job
        found = pf.find_commit(self.path(table),
                               lambda info: info.get("userMetadata") == commit_tag)
        if found is None:
            return None
        version, info = found
        return {"version": version, "operationMetrics": info.get("operationMetrics") or {}}
