"""Delta tables through delta-spark (`format("delta")`, `DeltaTable`), when its jar is present.

Used by ``open_store`` when the session was built with the Delta jar (see mktpipe.session).
Same contract as the delta-rs store; tables written by either are read by the other.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from mktpipe.storage.base import (
    ReplaceWhere,
    SchemaMismatchError,
    TableStore,
    WriteStats,
    replace_where_sql,
    schema_differences,
)

log = logging.getLogger(__name__)


class DeltaSparkStore(TableStore):
    """TableStore on the delta-spark jar (requires the Delta session extension)."""

    backend = "delta-spark"

    def __init__(self, spark: SparkSession, warehouse: str):
        super().__init__(spark, warehouse)
        from delta.tables import DeltaTable  # imported late: needs the jar at run time

        self._delta_table = DeltaTable

    def _dt(self, table: str):
        return self._delta_table.forPath(self.spark, self._require(table))

    def exists(self, table: str) -> bool:
        return self._delta_table.isDeltaTable(self.spark, self.path(table))

    def version(self, table: str) -> int:
        return int(self._dt(table).history(1).select("version").first()[0])

    def schema(self, table: str) -> StructType:
        return self._dt(table).toDF().schema

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
        if self.exists(table):
            problems = schema_differences(self.schema(table), df.schema)
            if problems:
                raise SchemaMismatchError(
                    f"data for {table} does not match the table schema: {'; '.join(problems)}"
                )
        writer = df.write.format("delta").mode(mode)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if replace_where:
            writer = writer.option("replaceWhere", replace_where_sql(replace_where))
        writer.save(path)
        version = self.version(table)
        metrics = self.history(table)[0].get("operationMetrics") or {}
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
        (
            self._dt(table).alias("t")
            .merge(new_rows.alias("s"), condition)
            .whenNotMatchedInsertAll()
            .execute()
        )
        version = self.version(table)
        metrics = self.history(table)[0].get("operationMetrics") or {}
        rows = int(metrics.get("numTargetRowsInserted", 0)) if version != before else 0
        self.last_write = WriteStats(table, version, rows, 0, 0, "merge_insert")
        return version
