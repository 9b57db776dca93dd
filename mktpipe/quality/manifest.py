"""The run manifest: ``<warehouse>/_runs/<run_id>.json``, one per command run.

Per stage: rows in / out / quarantined / deduplicated, table versions read and written,
timings, backend and status. Written atomically (temp file + rename) after every stage, so a
crash leaves the manifest of the stages that finished.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


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
    def path(self) -> Path:
        return Path(self.warehouse) / "_runs" / f"{self.run_id}.json"

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

    def save(self) -> Path:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".json.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)
        return path


def load_manifests(warehouse: str | Path) -> list[dict[str, Any]]:
    """Every manifest under ``<warehouse>/_runs``, oldest first."""
    folder = Path(warehouse) / "_runs"
    manifests = []
    for path in sorted(folder.glob("*.json")):
        try:
            manifests.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("skipping unreadable manifest %s: %s", path, exc)
    return sorted(manifests, key=lambda m: m.get("started_at", ""))
