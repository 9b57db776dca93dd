"""The stage kernel: what every stage shares, written once.

A stage is ``run_<stage>(ctx, date, **options) -> StageResult`` (a batch variant takes a list
of dates in the same place) decorated with :func:`stage`. ``ctx`` is a :class:`StageContext`:
the Spark session, the config, the table store, the run id and the clock of one command run.
The CLI and the pipeline build one context per command and call every stage with it.

    @stage("daily")
    def run_daily_range(ctx: StageContext, dates: list[dt.date]) -> StageResult:
        result = ctx.begin(span(dates))
        result.tables_read = ctx.versions((BRONZE_EVENTS, BRONZE_ORDERS))
        ...
        ctx.overwrite(result, daily, USER_DAILY, {ACTIVITY_DATE: days})
        return ctx.finish(result, "%d user-days", result.rows_out)

The shared steps: read a table or an empty frame (:meth:`StageContext.read_or_empty`), the
versions read (:meth:`~StageContext.versions`), the checked partition overwrite
(:meth:`~StageContext.overwrite`: data-quality checks, a hard failure raises, the partitions
replaced, version and rows recorded), and the result's begin and finish.

Calls written before the kernel, ``run_<stage>(spark, config, date, store=None,
run_id=None, ...)``, still work: :func:`stage` builds the context for them.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from mktpipe import i18n
from mktpipe.catalog import Table
from mktpipe.config import Config
from mktpipe.errors import InputError
from mktpipe.quality import checks as Q
from mktpipe.quality.manifest import StageResult, new_run_id
from mktpipe.storage import TableStore, open_store

log = logging.getLogger(__name__)


RUN_DAILY_FIRST = "run the daily stage first (`mktpipe daily`, or `mktpipe run`)"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class StageContext:
    """One command run's session, config, store, run id and clock, handed to every stage."""

    spark: SparkSession
    config: Config
    store: TableStore
    run_id: str
    clock: Callable[[], dt.datetime] = utc_now
    stage: str = ""  # set by @stage while a stage runs (log lines, results)

    @classmethod
    def open(cls, spark: SparkSession, config: Config, store: TableStore | None = None,
             run_id: str | None = None, command: str = "run",
             clock: Callable[[], dt.datetime] | None = None) -> StageContext:
        """A context on ``store`` (opened from the config when None), with ``run_id`` (a new
        ``<command>-<UTC time>-<hex>`` one when None)."""
        clock = clock or utc_now
        return cls(spark, config, store or open_store(spark, config),
                   run_id or new_run_id(command, clock()), clock)

    def for_stage(self, name: str) -> StageContext:
        return StageContext(self.spark, self.config, self.store, self.run_id, self.clock, name)

    def now(self) -> dt.datetime:
        return self.clock()

    # --- reads ---------------------------------------------------------------------------
    def read_or_empty(self, table: str, schema: StructType) -> DataFrame:
        """The table, or an empty DataFrame with ``schema`` when it has not been written."""
        return read_or_empty(self.spark, self.store, table, schema)

    def require(self, table: str, date: str | dt.date, how: str) -> None:
        """InputError ``<stage> <date>: <table> does not exist; <how>`` when it is missing."""
        if not self.store.exists(table):
            raise InputError(f"{self.stage} {date}: {table} does not exist; {how}")

    def versions(self, tables: Iterable[str]) -> dict[str, int]:
        """{table: current version} for the tables that exist (for the run manifest)."""
        return versions(self.store, tables)

    def snapshots(self, table: Table, before: dt.date) -> list[dt.date]:
        """The snapshot dates of ``table`` strictly before ``before``, oldest first."""
        return snapshot_dates(self.store, table, before)

    # --- result --------------------------------------------------------------------------
    def begin(self, run_date: str | dt.date, **backend: str) -> StageResult:
        """This stage's result, its clock running; ``backend`` adds to {"storage": ...}."""
        run_date = run_date.isoformat() if isinstance(run_date, dt.date) else run_date
        result = StageResult.begin(self.stage, run_date, self.store.backend, **backend)
        result.details["run_id"] = self.run_id
        return result

    def finish(self, result: StageResult, message: str = "", *args: Any) -> StageResult:
        """Stop the result's clock and log one line: ``<stage> <date>: <message> (tables
        written, seconds)``."""
        result.finish()
        written = ", ".join(f"{t} v{v}" for t, v in result.tables_written.items())
        log.info("%s %s: " + (message or "%d rows out") + " (%s; %.1fs)", self.stage,
                 result.run_date, *(args or (result.rows_out,)), written or "nothing written",
                 result.elapsed_s)
        return result

    # --- writes --------------------------------------------------------------------------
    def overwrite(self, result: StageResult, df: DataFrame, table: Table,
                  partitions: Mapping[str, Any], checks: Sequence[Q.Check] | None = None,
                  summary: Callable[[DataFrame], dict] | None = None,
                  persisted: bool = False, quality_key: str = "quality",
                  count_rows: bool = True) -> int:
        """Replace ``table``'s ``partitions`` ({column: value or values}) with ``df``.

        With ``checks``, ``df`` is persisted and checked on the table's keys first (results
        in ``result.details[quality_key]``; a hard failure raises ``QualityCheckError`` before
        anything is written); ``summary(df)``, computed on the same persisted rows, goes to
        ``result.details["summary"]``. Records the new version and rows written in
        ``result``; returns the version. ``persisted``: the caller has ``df`` cached already.
        A stage that writes a second table gives its check results another ``quality_key`` and
        ``count_rows=False`` keeps its rows out of ``result.rows_out`` (``store.last_write.rows``
        still has them).
        """
        where = {col: _iso(value) for col, value in partitions.items()}
        cached = (checks is not None or summary is not None) and not persisted
        if cached:
            df = df.persist(StorageLevel.MEMORY_AND_DISK)  # checks, summary and write read it
        try:
            if checks is not None:
                quality = Q.run_checks(df, list(checks), key_cols=list(table.keys))
                result.details[quality_key] = quality
            if summary is not None:
                result.details["summary"] = summary(df)
            if checks is not None:
                Q.raise_for_failures(quality, table)
            version = self.store.write(df, table, mode="overwrite",
                                       partition_by=table.partitions, replace_where=where)
        finally:
            if cached:
                df.unpersist()
        if count_rows:
            result.rows_out += self.store.last_write.rows
        result.tables_written[table] = version
        return version


def _iso(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_iso(v) for v in value]
    return value


def read_or_empty(spark: SparkSession, store: TableStore, table: str,
                  schema: StructType) -> DataFrame:
    """The table, or an empty DataFrame with ``schema`` when it has not been written yet."""
    if store.exists(table):
        return store.read(table)
    return spark.createDataFrame([], schema)


def versions(store: TableStore, tables: Iterable[str]) -> dict[str, int]:
    """{table: current version} for the tables that exist (for the run manifest)."""
    return {t: store.version(t) for t in tables if store.exists(t)}


def snapshot_dates(store: TableStore, table: Table, before: dt.date) -> list[dt.date]:
    """The ``snapshot_date`` partitions of ``table`` strictly before ``before``, oldest
    first (from the table's log: no Spark job); [] when the table does not exist."""
    if not store.exists(table):
        return []
    dates = (dt.date.fromisoformat(v[:10])
             for v in store.partition_values(table, table.partition_by[0]) if v)
    return sorted(d for d in dates if d < before)


def day_range(run_date: dt.date, days_before: int) -> list[dt.date]:
    """[run_date - days_before, ..., run_date]."""
    return [run_date - dt.timedelta(days=n) for n in range(days_before, -1, -1)]


def span(dates: Sequence[dt.date]) -> str:
    """``2026-03-01`` or ``2026-03-01..2026-03-10`` for a result's run_date."""
    dates = sorted(dates)
    return str(dates[0]) if len(dates) == 1 else f"{dates[0]}..{dates[-1]}"


Fn = TypeVar("Fn", bound=Callable[..., StageResult])


def stage(name: str) -> Callable[[Fn], Fn]:
    """Mark ``fn(ctx, date, **options)`` as the stage ``name``.

    The decorated function takes a :class:`StageContext` first, or, as before the kernel,
    ``(spark, config, date, store=None, run_id=None, now=None, **options)``, from which it
    builds one (``now`` fixes the clock)."""

    def decorate(fn: Fn) -> Fn:
        @functools.wraps(fn)
        def run(first, *args, **kwargs):
            if isinstance(first, StageContext):
                with i18n.use(first.config.report.language):  # what it writes for readers
                    return fn(first.for_stage(name), *args, **kwargs)
            if len(args) < 2:
                raise TypeError(f"{fn.__name__}(ctx, date, ...) or "
                                f"{fn.__name__}(spark, config, date, store=None, run_id=None)")
            config, date, *rest = args
            now = kwargs.pop("now", None)
            ctx = StageContext.open(first, config, kwargs.pop("store", None),
                                    kwargs.pop("run_id", None), command=name,
                                    clock=(lambda: now) if now is not None else None)
            with i18n.use(config.report.language):
                return fn(ctx.for_stage(name), date, *rest, **kwargs)

        run.stage_name = name
        return run  # type: ignore[return-value]

    return decorate
