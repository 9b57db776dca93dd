"""Stage order, run-date logic and resumability: ``mktpipe run`` and ``mktpipe backfill``.

A daily run for run date D (the landing date that just arrived) runs, in order:

    ingest D -> sentiment D -> daily D -> graph S -> features S -> anomalies S -> labels
    -> train S (when due) -> score S -> trends S -> report S

with S = D + 1, the snapshot "as of the start of the next day": features use data strictly
before S, i.e. up to and including D. ``labels`` refreshes gold.user_labels for the past
snapshots whose label horizon closes with D (S - 7, S - 30, S - 90 days with the default
horizons) when those snapshots exist. ``train`` trains when :func:`mktpipe.models.stage.
training_due` says so (a model is missing or older than ``models.retrain_every_days``).

Resumability: after each stage finishes, ``<warehouse>/_state/<key>.json`` records it (atomic
write). A re-run of the same date skips the stages recorded there unless ``force``; every
stage is idempotent (partition overwrites, key-based inserts), so a stage killed midway is
simply run again. Every command run writes its manifest ``<warehouse>/_runs/<run_id>.json``.

Backfill of D1..D2, in date order, two ways:

* batched (default): ingest, sentiment and daily for the whole range as one batch each (the
  same tables as day by day; tested), then graph + features + labels for the snapshots of
  the schedule (every ``pipeline.snapshot_every_days`` days after D1, and D2 + 1), then
  anomalies, train, score, trends and report for D2 + 1. Resumable step by step.
* ``per_date``: the full daily run for every date in order.

Both stop at the first failure and name the date and stage.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from mktpipe.config import Config, ConfigError
from mktpipe.errors import (
    EXIT_CONFIG,
    EXIT_INTERNAL,
    MktpipeError,
    OutOfMemory,
    is_out_of_memory,
    out_of_memory_advice,
)
from mktpipe.quality.manifest import RunManifest, StageResult, new_run_id
from mktpipe.stage import StageContext
from mktpipe.storage import TableStore, files, open_store

log = logging.getLogger(__name__)

STAGES = ("ingest", "sentiment", "daily", "graph", "features", "anomalies", "labels", "train",
          "score", "trends", "report")


class StageFailed(MktpipeError):
    """A stage of a run or backfill failed; carries the original error's exit code."""

    def __init__(self, stage: str, date: dt.date, cause: BaseException, hint: str) -> None:
        self.stage, self.date, self.cause = stage, date, cause
        self.exit_code = (EXIT_CONFIG if isinstance(cause, ConfigError)
                          else getattr(cause, "exit_code", EXIT_INTERNAL))
        super().__init__(f"stage '{stage}' failed for {date}: {cause}\n{hint}")


def snapshot_for(run_date: dt.date) -> dt.date:
    return run_date + dt.timedelta(days=1)


# --- progress ---------------------------------------------------------------------------------

class Progress:
    """Per-stage progress: a live line on a terminal, plain log lines otherwise."""

    def __init__(self, stream=None, interactive: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.interactive = (self.stream.isatty() if interactive is None else interactive)

    def start(self, label: str) -> None:
        if self.interactive:
            self.stream.write(f"  .. {label:<34}")
            self.stream.flush()
        else:
            log.info("stage %s: started", label)

    def done(self, label: str, result: StageResult) -> None:
        rows = f"{result.rows_out:>10,} rows" if result.status == "ok" else f"{'':>15}"
        text = f"{result.status:<7} {rows} {result.elapsed_s:>7.1f} s"
        note = result.details.get("reason") if result.status == "skipped" else None
        if self.interactive:
            mark = {"ok": "ok", "skipped": "--", "failed": "!!"}.get(result.status, "??")
            self.stream.write(f"\r  {mark} {label:<34}{text}" + (f"  ({note})" if note else "")
                              + "\n")
            self.stream.flush()
        else:
            log.info("stage %s: %s%s", label, text, f" ({note})" if note else "")

    def failed(self, label: str, elapsed: float, error: BaseException) -> None:
        if self.interactive:
            self.stream.write(f"\r  !! {label:<34}failed  {elapsed:>23.1f} s\n")
            self.stream.flush()
        log.error("stage %s: failed after %.1f s: %s", label, elapsed, error)


# --- state ------------------------------------------------------------------------------------

STATE_DIR = "_state"  # <warehouse>/_state/<run key>.json

@dataclass
class RunState:
    """Completed steps of one run key (``run-2026-10-30``, ``backfill-...``), in
    ``<warehouse>/_state/<key>.json`` (a local path or a URI)."""

    path: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, warehouse: str | Path, key: str) -> RunState:
        path = files.join(warehouse, STATE_DIR, f"{key}.json")
        steps = {}
        if files.exists(path):
            try:
                steps = files.read_json(path).get("steps", {})
            except (OSError, json.JSONDecodeError) as exc:
                log.warning("unreadable run state %s (%s): starting from the first stage",
                            path, exc)
        return cls(path, steps)

    def done(self, step: str) -> dict[str, Any] | None:
        return self.steps.get(step)

    def record(self, step: str, result: StageResult, run_id: str) -> None:
        self.steps[step] = {"status": result.status, "run_id": run_id,
                            "rows_out": result.rows_out, "elapsed_s": result.elapsed_s,
                            "finished_at": dt.datetime.now(dt.timezone.utc)
                            .isoformat(timespec="seconds")}
        self._save()

    def _save(self) -> None:
        files.write_json(self.path, {"steps": self.steps})

    def forget(self, steps) -> None:
        """Drop ``steps`` from the record (``--force`` of a subset of stages)."""
        for step in steps:
            self.steps.pop(step, None)
        self._save()

    def clear(self) -> None:
        self.steps = {}
        files.delete(self.path)


# --- runner -----------------------------------------------------------------------------------

StageFn = Callable[[], StageResult]


@dataclass
class Runner:
    """Runs named steps with state, progress and the manifest; the first failure stops it."""

    spark: SparkSession
    config: Config
    store: TableStore
    manifest: RunManifest
    state: RunState
    progress: Progress
    force: bool = False
    hint: str = ""

    def step(self, key: str, stage: str, date: dt.date, fn: StageFn) -> StageResult:
        label = f"{stage} {date}"
        previous = None if self.force else self.state.done(key)
        if previous is not None:
            result = StageResult(stage=stage, run_date=date.isoformat(), status="skipped",
                                 details={"reason": f"done by {previous['run_id']}"})
            self.progress.done(label, result)
            self.manifest.add(result)
            return result
        self.progress.start(label)
        started = time.monotonic()
        try:
            result = fn()
        except Exception as exc:
            elapsed = round(time.monotonic() - started, 2)
            self.progress.failed(label, elapsed, exc)
            self.manifest.add(StageResult(stage=stage, run_date=date.isoformat(),
                                          status="failed", elapsed_s=elapsed,
                                          error=f"{type(exc).__name__}: {exc}"))
            if is_out_of_memory(exc) and not isinstance(exc, OutOfMemory):
                exc = OutOfMemory(out_of_memory_advice(f"stage '{stage}'",
                                                       self.config.spark.driver_memory))
            raise StageFailed(stage, date, exc, self.hint) from exc
        self.progress.done(label, result)
        self.manifest.add(result)
        self.state.record(key, result, self.manifest.run_id)
        return result


def stage_functions() -> dict[str, Callable[..., StageResult]]:
    """name -> ``fn(ctx, date, **options)``, the stage of a daily run for one date (imports
    kept local: start-up cost). ``labels`` is the refresh of the snapshots whose label
    windows close on the date."""
    from mktpipe.features.daily import run_daily
    from mktpipe.features.labels import refresh_labels
    from mktpipe.features.user_features import run_features
    from mktpipe.graph.stage import run_graph
    from mktpipe.ingest.stage import run_ingest
    from mktpipe.models.anomaly_stage import run_anomalies
    from mktpipe.models.stage import run_train
    from mktpipe.nlp.stage import run_sentiment
    from mktpipe.report.stage import run_report
    from mktpipe.score.stage import run_score
    from mktpipe.trends.stage import run_trends

    return {"ingest": run_ingest, "sentiment": run_sentiment, "daily": run_daily,
            "graph": run_graph, "features": run_features, "anomalies": run_anomalies,
            "labels": refresh_labels,
            "train": run_train, "score": run_score, "trends": run_trends,
            "report": run_report}


# options of a stage inside a run or backfill: train only when a model is due
RUN_OPTIONS: dict[str, dict[str, Any]] = {"train": {"only_if_due": True}}


def batch_functions() -> dict[str, Callable[..., StageResult]]:
    """name -> ``fn(ctx, dates)`` for the stages that take a range of dates in one batch."""
    from mktpipe.features.daily import run_daily_range
    from mktpipe.ingest.stage import run_ingest_dates
    from mktpipe.nlp.stage import run_sentiment_range

    return {"ingest": run_ingest_dates, "sentiment": run_sentiment_range,
            "daily": run_daily_range}


def run_one(ctx: StageContext, fn: Callable[..., StageResult], date: dt.date | list[dt.date],
            manifest: RunManifest, **options: Any) -> StageResult:
    """``fn(ctx, date, **options)``, one stage outside a run (``mktpipe <stage>``); the
    result goes to ``manifest``, which is finished ok or failed."""
    status = "failed"
    try:
        result = fn(ctx, date, **options)
        manifest.add(result)
        status = "ok"
    finally:
        manifest.finish(status)
    return result


def new_manifest(command: str, config: Config) -> RunManifest:
    """A manifest for one command run, ``<warehouse>/_runs/<command>-<time>-<hex>.json``."""
    run_id = new_run_id(command)
    return RunManifest(run_id, command, config.uri("warehouse"),
                       config=config.model_dump())


def run_pipeline(spark: SparkSession, config: Config, run_date: dt.date,
                 store: TableStore | None = None, force: bool = False,
                 progress: Progress | None = None, manifest: RunManifest | None = None,
                 stages: tuple[str, ...] | None = None) -> RunManifest:
    """Every stage for ``run_date`` (module docstring); returns the finished manifest.
    Raises StageFailed (manifest status "failed") at the first failing stage."""
    store = store or open_store(spark, config)
    own = manifest is None
    manifest = manifest or new_manifest("run", config)
    state = RunState.load(config.uri("warehouse"), f"run-{run_date}")
    wanted = list(stages or config.pipeline.stages)
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stages {unknown}; choose from {list(STAGES)}")
    preflight(config, wanted)
    if force:  # forget only the stages run now; the others stay recorded
        state.forget(wanted)
    runner = Runner(spark, config, store, manifest, state, progress or Progress(), force,
                    hint=f"fix the cause and re-run `mktpipe run --run-date {run_date}`: "
                         "completed stages are skipped")
    ctx = StageContext.open(spark, config, store, manifest.run_id)
    fns = stage_functions()
    snapshot = snapshot_for(run_date)
    try:
        for stage in STAGES:
            if stage not in wanted:
                continue
            date = run_date if stage in ("ingest", "sentiment", "daily") else snapshot
            runner.step(stage, stage, date,
                        lambda f=fns[stage], d=date, o=RUN_OPTIONS.get(stage, {}): f(ctx, d, **o))
    except BaseException:
        if own:
            manifest.finish("failed")
        raise
    if own:
        manifest.finish("ok")
    return manifest


def preflight(config: Config, stages) -> None:
    """Fail before any work on what would stop a later stage: the export key for score."""
    if "score" in stages:
        from mktpipe.score.export import export_key

        export_key(config)


def backfill_snapshots(start: dt.date, end: dt.date, every_days: int) -> list[dt.date]:
    """Snapshots of a batched backfill of ``start``..``end``: start + every_days, + 2 x
    every_days, ... up to end + 1, and end + 1 itself (the one scored); oldest first."""
    last = snapshot_for(end)
    out = []
    s = start + dt.timedelta(days=every_days)
    while s < last:
        out.append(s)
        s += dt.timedelta(days=every_days)
    return [*out, last]


def run_backfill(spark: SparkSession, config: Config, start: dt.date, end: dt.date,
                 store: TableStore | None = None, force: bool = False, per_date: bool = False,
                 progress: Progress | None = None) -> RunManifest:
    """Backfill ``start``..``end`` (module docstring); returns the finished manifest."""
    if end < start:
        raise ValueError(f"backfill: --end {end} is before --start {start}")
    preflight(config, config.pipeline.stages)
    store = store or open_store(spark, config)
    progress = progress or Progress()
    manifest = new_manifest("backfill", config)
    dates = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    try:
        if per_date:
            for d in dates:
                run_pipeline(spark, config, d, store, force, progress, manifest)
        else:
            _batched(spark, config, dates, store, force, progress, manifest)
    except BaseException:
        manifest.finish("failed")
        raise
    manifest.finish("ok")
    return manifest


def _batched(spark, config, dates, store, force, progress, manifest) -> None:
    from mktpipe.features.labels import run_labels
    from mktpipe.ingest import landing

    start, end = dates[0], dates[-1]
    for d in dates:  # a missing date is a clear input error before any work
        landing.require_landing(config.paths.landing, d)
    state = RunState.load(config.uri("warehouse"), f"backfill-{start}_{end}")
    if force:
        state.clear()
    runner = Runner(spark, config, store, manifest, state, progress, force,
                    hint=f"fix the cause and re-run `mktpipe backfill --start {start} --end "
                         f"{end}`: completed steps are skipped")
    ctx = StageContext.open(spark, config, store, manifest.run_id)
    wanted = set(config.pipeline.stages)
    for stage, fn in batch_functions().items():
        if stage in wanted:
            runner.step(stage, stage, end, lambda f=fn: f(ctx, dates))
    fns = {**stage_functions(), "labels": run_labels}  # each backfill snapshot gets labels
    snapshots = backfill_snapshots(start, end, config.pipeline.snapshot_every_days)
    log.info("backfill %s..%s: snapshots %s", start, end, [str(s) for s in snapshots])
    for s in snapshots:
        for stage in ("graph", "features", "labels"):
            if stage in wanted:
                runner.step(f"{stage}:{s}", stage, s, lambda f=fns[stage], d=s: f(ctx, d))
    last = snapshots[-1]
    for stage in ("anomalies", "train", "score", "trends", "report"):
        if stage in wanted:
            runner.step(stage, stage, last,
                        lambda f=fns[stage], o=RUN_OPTIONS.get(stage, {}): f(ctx, last, **o))
