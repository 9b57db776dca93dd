"""Delta table storage behind one interface; see ``open_store``."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from mktpipe.config import Config
from mktpipe.storage.base import (
    DEFAULT_VACUUM_HOURS,
    ConcurrentWriteError,
    MaintenanceStats,
    SchemaMismatchError,
    TableNotFoundError,
    TableStore,
    WriteStats,
)

log = logging.getLogger(__name__)

__all__ = [
    "open_store",
    "choose_backend",
    "TableStore",
    "TableNotFoundError",
    "SchemaMismatchError",
    "WriteStats",
    "MaintenanceStats",
    "ConcurrentWriteError",
    "DEFAULT_VACUUM_HOURS",
]


def choose_backend(spark: SparkSession, config: Config) -> tuple[str, str]:
    """The storage backend to use and why."""
    from mktpipe.session import capabilities, uses_delta_spark

    caps = capabilities(spark)
    wanted = config.storage.backend
    if wanted == "delta-spark" and not caps.delta_spark:
        raise RuntimeError(
            "storage.backend is delta-spark but the Delta jar is not available: "
            + caps.reasons.get("delta_spark", "")
            + ". Put delta-spark and delta-storage jars in spark.jars_dir, or use delta-rs."
        )
    if wanted == "delta-rs":
        return "delta-rs", "storage.backend is delta-rs"
    if uses_delta_spark(config, caps):
        return "delta-spark", caps.reasons.get("delta_spark", "jar present")
    return "delta-rs", "embedded default (" + caps.reasons.get("delta_spark", "no Delta jar") + ")"


def open_store(spark: SparkSession, config: Config) -> TableStore:
    """The TableStore for ``config.paths.warehouse`` on the backend this session supports."""
    backend, why = choose_backend(spark, config)
    warehouse = config.uri("warehouse")
    log.debug("table store %s at %s: %s", backend, warehouse, why)
    sizes = {"target_file_rows": config.storage.target_file_rows,
             "target_file_bytes": config.storage.target_file_mb * 1024 * 1024}
    if backend == "delta-spark":
        from mktpipe.storage.delta_spark import DeltaSparkStore

        store = DeltaSparkStore(spark, warehouse, **sizes)
    else:
        from mktpipe.storage.delta_rs import DeltaRsStore

        store = DeltaRsStore(spark, warehouse, **sizes)
    store.add_columns = config.storage.schema_evolution == "add_columns"
    store.storage_options.update(config.storage.options)
    return store

