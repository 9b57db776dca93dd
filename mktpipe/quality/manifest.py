"""The run manifest: ``<warehouse>/_runs/<run_id>.json``, one per command run.

Per stage: rows in / out / quarantined / deduplicated, table versions read and written,
timings, backend and status. Written whole after every stage through the file door (a temp
file + rename locally, one PUT on object storage), so a crash leaves the manifest of the stages
that finished.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mktpipe.storage import files

log = logging.getLogger(__name__)

RUNS_DIR = "_runs"  # <warehouse>/_runs/<run_id>.json


def new_run_id(command: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{command}-{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


@dataclass
class StageResult:
    """What one stage did for one run date."""

    stage: str
    run_date: str
    status: str = "ok"  # ok | failed | skipped
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    rows_deduplicated: int = 0
    tables_read: dict[str, int] = field(default_factory=dict)
    tables_written: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    backend: dict[str, str] = field(default_factory=dict)
    started_at: str = ""
    elapsed_s: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def begin(cls, stage: str, run_date: str, storage: str, **backend: str) -> StageResult:
        """A result for a stage starting now: started_at set, the clock running for
        :meth:`finish`; ``backend`` = {"storage": storage, **backend}."""
        result = cls(stage=stage, run_date=run_date, backend={"storage": storage, **backend},
                     started_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        result._clock = time.monotonic()
        return result

    def finish(self) -> StageResult:
        """Set elapsed_s from :meth:`begin` (no-op for a result not made by it)."""
        clock = getattr(self, "_clock", None)
        if clock is not None:
            self.elapsed_s = round(time.monotonic() - clock, 2)
        return self


@dataclass
class RunManifest:
    run_id: str
    command: str
    warehouse: str
    started_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    )
    finished_at: str | None = None
    status: str = "running"
    config: dict[str, Any] = field(default_factory=dict)
    host: str = field(default_factory=platform.node)
    stages: list[StageResult] = field(default_factory=list)

    @property
    def path(self) -> str:
        return files.join(self.warehouse, RUNS_DIR, f"{self.run_id}.json")

    def add(self, result: StageResult) -> None:
        self.stages.append(result)
        self.save()

    def finish(self, status: str) -> None:
        self.status = status
        self.finished_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.save()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stages"] = [s.to_dict() for s in self.stages]
        return data

    def save(self) -> str:
        return files.write_json(self.path, self.to_dict(), default=str)


def load_manifests(warehouse: str | Path) -> list[dict[str, Any]]:
    """Every manifest under ``<warehouse>/_runs`` (a local path or a URI), oldest first."""
    manifests = []
    for path in files.list_files(files.join(warehouse, RUNS_DIR), (".json",)):
        try:
            manifests.append(files.read_json(path))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("skipping unreadable manifest %s: %s", path, exc)
    return sorted(manifests, key=lambda m: m.get("started_at", ""))


# --- reading stage results back (the report's data quality, the trends stage's alerts) ---

def last_day(run_date: Any) -> dt.date | None:
    """The last day of a manifest run_date ('2026-03-01' or '2026-03-01..2026-03-10')."""
    try:
        return dt.date.fromisoformat(str(run_date).split("..")[-1].strip()[:10])
    except ValueError:
        return None


def stage_results(manifests: list[dict], snapshot: dt.date) -> list[dict]:
    """Every stage result with a run date on or before ``snapshot``, oldest first, with the
    manifest's run_id and command added."""
    out = []
    for order, m in enumerate(manifests):
        for st in m.get("stages") or []:
            day = last_day(st.get("run_date"))
            if day is None or day > snapshot:
                continue
            out.append({**st, "run_id": m.get("run_id", ""), "command": m.get("command", ""),
                        "_day": day, "_key": (st.get("started_at") or m.get("started_at", ""),
                                              order)})
    return sorted(out, key=lambda s: s["_key"])


def latest_per_stage(results: list[dict]) -> dict[str, dict]:
    """The latest result of each stage that did work (ok or failed); a "skipped" result (a
    resumed or repeated run pointing at earlier work) shows only when nothing else exists."""
    latest: dict[str, dict] = {}
    for r in results:  # oldest first: later ones win
        stage = r.get("stage", "?")
        if r.get("status") == "skipped" and stage in latest:
            continue
        latest[stage] = r
    return latest


def is_balanced(counts: dict) -> bool:
    accounted = sum(int(counts.get(k) or 0) for k in ("written", "quarantined",
                                                      "duplicates_in_batch",
                                                      "duplicates_existing"))
    return accounted == int(counts.get("read") or 0)


def stage_balance(result: dict) -> tuple[int, int]:
    """(rows read, rows written + quarantined + deduplicated) of a manifest's stage entry; an
    ingest balances when the two are equal."""
    accounted = sum(int(result.get(k) or 0) for k in ("rows_out", "rows_quarantined",
                                                      "rows_deduplicated"))
    return int(result.get("rows_in") or 0), accounted
