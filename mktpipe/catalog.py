"""Every table mktpipe writes or reads, in one place: name, partition columns, keys.

Code refers to a table only through these constants; no other module spells ``layer.name``.
A :class:`Table` *is* its name (a ``str``), so it goes wherever a table name goes (the
store's ``write``/``read``, the run manifest's keys, log lines) and carries its layout:

    store.write(df, USER_DAILY, mode="overwrite", partition_by=USER_DAILY.partitions,
                replace_where={ACTIVITY_DATE: days})

``layer.name`` maps to ``<paths.warehouse>/<layer>/<name>`` (``TableStore.path``).

=============================  =====================  ======================================
table                          partitioned by         one row per (keys)
=============================  =====================  ======================================
bronze.<source>                event day (events,     the source's natural key
                               comments) or none
quarantine.<source>            none                   raw file, record hash, occurrence
silver.comment_sentiment       comment_date           comment_id
silver.user_daily              activity_date          user_id, activity_date
silver.graph_metrics           snapshot_date          user_id, snapshot_date
silver.communities             snapshot_date          community_id, snapshot_date
silver.user_anomalies          snapshot_date          user_id, snapshot_date
gold.user_features             snapshot_date          user_id, snapshot_date
gold.purchase_summary          snapshot_date          user_id, snapshot_date (every buyer)
gold.user_labels               snapshot_date          user_id, snapshot_date
gold.customer_segments         snapshot_date          user_id, snapshot_date
gold.forecast_backtests        snapshot_date          series_id, model, snapshot_date
gold.kpi_forecasts             snapshot_date          series_id, kind, day, snapshot_date
gold.trend_daily               snapshot_date          series_id, day, snapshot_date
gold.trend_diagnostics         snapshot_date          series_id, snapshot_date
gold.alerts                    snapshot_date          alert_id, snapshot_date
=============================  =====================  ======================================
"""

from __future__ import annotations

from mktpipe import schemas as S


class Table(str):
    """A table's ``layer.name`` with its partition columns, keys and statistics columns.

    ``stats_columns``: the columns whose min/max/null counts each data file's log entry
    records (Delta's ``delta.dataSkippingStatsColumns``, set when the table is created);
    ``()``: none, the row count only (``delta.dataSkippingNumIndexedCols`` 0); None: Delta's
    default, the first 32 columns. A large table read by partition names only the columns a
    reader filters on besides its partition columns: on delta-spark the writer computes the
    statistics from every row, about a quarter of bronze.events' write time with all its
    columns (bench/ingest.py)."""

    partition_by: tuple[str, ...]
    keys: tuple[str, ...]
    stats_columns: tuple[str, ...] | None

    def __new__(cls, name: str, partition_by: tuple[str, ...] = (),
                keys: tuple[str, ...] = (), stats_columns: tuple[str, ...] | None = None
                ) -> Table:
        layer, _, short = name.partition(".")
        if not layer or not short or "." in short:
            raise ValueError(f"a table name is 'layer.name', got {name!r}")
        table = super().__new__(cls, name)
        table.partition_by = tuple(partition_by)
        table.keys = tuple(keys)
        table.stats_columns = tuple(stats_columns) if stats_columns is not None else None
        return table

    @property
    def layer(self) -> str:
        return self.partition(".")[0]

    @property
    def partitions(self) -> list[str] | None:
        """``partition_by`` as the store's ``write`` takes it (None: not partitioned)."""
        return list(self.partition_by) or None

    @property
    def table_properties(self) -> dict[str, str]:
        """Delta table properties the table is created with (both stores set them)."""
        if self.stats_columns is None:
            return {}
        if not self.stats_columns:
            return {"delta.dataSkippingNumIndexedCols": "0"}
        return {"delta.dataSkippingStatsColumns": ",".join(self.stats_columns)}

    def __reduce__(self):  # pickles (Spark ships closures) as the same Table
        return (Table, (str(self), self.partition_by, self.keys, self.stats_columns))


# --- bronze: typed landing data (mktpipe.ingest) -------------------------------------------
# large sources partitioned by their event day, small ones not partitioned; the large ones
# keep file statistics for their event time only (ids are random: min/max skip nothing)
_BRONZE_PARTITIONS = {"events": (S.EVENT_DATE,), "comments": (S.COMMENT_DATE,)}
_BRONZE_STATS = {"events": (S.TS,), "comments": (S.TS,)}
BRONZE: dict[str, Table] = {
    source: Table(f"bronze.{source}", _BRONZE_PARTITIONS.get(source, ()),
                  S.NATURAL_KEYS[source], _BRONZE_STATS.get(source))
    for source in S.SOURCES
}
BRONZE_USERS = BRONZE["users"]
BRONZE_VIDEOS = BRONZE["videos"]
BRONZE_EVENTS = BRONZE["events"]
BRONZE_COMMENTS = BRONZE["comments"]
BRONZE_FOLLOWS = BRONZE["follows"]
BRONZE_ORDERS = BRONZE["orders"]

# rows ingest refused, with the raw record and a reason code (one table per source)
QUARANTINE: dict[str, Table] = {
    source: Table(f"quarantine.{source}", (), S.QUARANTINE_KEYS) for source in S.SOURCES
}
# one quarantine table for every source: read by the report where an older deployment has it
LEGACY_QUARANTINE = Table("bronze.quarantine", (), S.QUARANTINE_KEYS)

# --- silver: cleaned, aggregated, derived per day or per snapshot --------------------------
COMMENT_SENTIMENT = Table("silver.comment_sentiment", (S.COMMENT_DATE,), (S.COMMENT_ID,))
# read by activity_date only (a window of days): no column statistics worth their cost
USER_DAILY = Table("silver.user_daily", (S.ACTIVITY_DATE,), (S.USER_ID, S.ACTIVITY_DATE), ())
GRAPH_METRICS = Table("silver.graph_metrics", (S.SNAPSHOT_DATE,),
                      (S.USER_ID, S.SNAPSHOT_DATE))
USER_ANOMALIES = Table("silver.user_anomalies", (S.SNAPSHOT_DATE,),
                       (S.USER_ID, S.SNAPSHOT_DATE))
COMMUNITIES = Table("silver.communities", (S.SNAPSHOT_DATE,),
                    ("community_id", S.SNAPSHOT_DATE))

# --- gold: per-snapshot customer tables (features, labels, scores) -------------------------
USER_FEATURES = Table("gold.user_features", (S.SNAPSHOT_DATE,), (S.USER_ID, S.SNAPSHOT_DATE))
# every buyer's BG/NBD inputs (frequency, recency, T, monetary_value) at the snapshot
PURCHASE_SUMMARY = Table("gold.purchase_summary", (S.SNAPSHOT_DATE,),
                         (S.USER_ID, S.SNAPSHOT_DATE))
USER_LABELS = Table("gold.user_labels", (S.SNAPSHOT_DATE,), (S.USER_ID, S.SNAPSHOT_DATE))
CUSTOMER_SEGMENTS = Table("gold.customer_segments", (S.SNAPSHOT_DATE,),
                          (S.USER_ID, S.SNAPSHOT_DATE))

# --- gold: KPI series per snapshot (mktpipe.trends) ---------------------------------------
# the forecast tournament: one row per series and model (backtest measures, rank, chosen)
FORECAST_BACKTESTS = Table("gold.forecast_backtests", (S.SNAPSHOT_DATE,),
                           ("series_id", "model", S.SNAPSHOT_DATE))
# the winner's forecast (kind "forecast") and its check of the latest days (kind "check")
KPI_FORECASTS = Table("gold.kpi_forecasts", (S.SNAPSHOT_DATE,),
                      ("series_id", "kind", "day", S.SNAPSHOT_DATE))
TREND_DAILY = Table("gold.trend_daily", (S.SNAPSHOT_DATE,), ("series_id", "day", S.SNAPSHOT_DATE))
TREND_DIAGNOSTICS = Table("gold.trend_diagnostics", (S.SNAPSHOT_DATE,),
                          ("series_id", S.SNAPSHOT_DATE))
ALERTS = Table("gold.alerts", (S.SNAPSHOT_DATE,), ("alert_id", S.SNAPSHOT_DATE))

ALL: tuple[Table, ...] = (
    *BRONZE.values(), *QUARANTINE.values(), COMMENT_SENTIMENT, USER_DAILY, GRAPH_METRICS,
    COMMUNITIES, USER_ANOMALIES, USER_FEATURES, PURCHASE_SUMMARY, USER_LABELS,
    CUSTOMER_SEGMENTS, FORECAST_BACKTESTS, KPI_FORECASTS, TREND_DAILY, TREND_DIAGNOSTICS, ALERTS,
)


def table(name: str) -> Table:
    """The catalog entry named ``name`` (``layer.name``); KeyError names the known tables."""
    for entry in (*ALL, LEGACY_QUARANTINE):
        if entry == name:
            return entry
    raise KeyError(f"{name!r} is not a mktpipe table; known: {sorted(ALL)}")
