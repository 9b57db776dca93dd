"""What every section builder needs: the session, config, store, snapshot and a read log.

``ReportContext.table`` reads a table at its current version and remembers that version, so
the whole report sees one consistent version of each table and the footer / run manifest can
say which versions it read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from mktpipe.config import Config
from mktpipe.storage import TableStore


@dataclass
class ReportContext:
    spark: SparkSession
    config: Config
    store: TableStore
    snapshot: dt.date
    run_id: str
    tables_read: dict[str, int] = field(default_factory=dict)
    models_read: dict[str, int] = field(default_factory=dict)
    details: dict = field(default_factory=dict)  # facts for the StageResult (anomalies, ...)
    alerts: list[dict] = field(default_factory=list)  # the snapshot's alerts (for delivery)
    _frames: dict[str, DataFrame] = field(default_factory=dict, repr=False)

    def table(self, name: str) -> DataFrame | None:
        """``name`` at the version first seen by this report; None when it does not exist.
        The DataFrame is reused (not cached: each section filters it differently). A context
        without a store (a section drawn from data in hand) has no tables."""
        if self.store is None:
            return None
        if name not in self._frames:
            if not self.store.exists(name):
                return None
            self.tables_read[name] = self.store.version(name)
            self._frames[name] = self.store.read(name, version=self.tables_read[name])
        return self._frames[name]

    def uri(self, key: str) -> str:
        """``paths.<key>`` (a local path or a URI: Config.uri)."""
        return self.config.uri(key)

    @property
    def data_end(self) -> dt.date:
        """The last day the report covers (the day before the snapshot)."""
        return self.snapshot - dt.timedelta(days=1)
