"""Writes the landing zone: one part file per source and date, bad records shuffled in.

Layout: ``<out>/<source>/date=YYYY-MM-DD/part-00000.<json|csv>``. Files are written as bytes
(everything is UTF-8 except the BAD_ENCODING lines).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mktpipe.generate import dirty
from mktpipe.generate.fmt import date_of
from mktpipe.generate.serialize import encode_file, is_csv, to_display, to_lines
from mktpipe.storage import files

log = logging.getLogger(__name__)


def part_path(out: str | Path, source: str, day: int) -> str:
    """Where the file of ``source`` for epoch day ``day`` lands (a local path or a URI)."""
    ext = "csv" if is_csv(source) else "json"
    return files.join(out, source, f"date={date_of(day).isoformat()}", f"part-00000.{ext}")


def interleave(n_clean: int, after: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Line order for clean rows 0..n-1 followed by injected ones, injected spread at random.

    An injected line with ``after >= 0`` lands somewhere after clean row ``after``.
    """
    m = len(after)
    low = np.where(after >= 0, after + 1, 0)
    slot = low + np.floor(rng.random(m) * (n_clean + 1 - low)).astype(np.int64)
    keys = np.concatenate([2 * np.arange(n_clean) + 1, 2 * slot])
    return np.argsort(keys, kind="stable")


class LandingWriter:
    """Serialises each day's typed frames, injects bad records, writes the part files."""

    def __init__(self, out: str | Path, dirty_rate: float, rng: np.random.Generator):
        self.out = str(out)
        self.dirty_rate = dirty_rate
        self.rng = rng
        self._carry: dict[str, np.ndarray] = {}
        self.rows: dict[str, dict[str, int]] = {}
        self.injected: dict[str, dict[str, dict[str, int]]] = {}

    def write(self, source: str, day: int, typed: pd.DataFrame, last: bool) -> int:
        """Write the file of ``source`` for epoch day ``day``; returns bytes written."""
        display = to_display(source, typed)
        lines = to_lines(source, display)
        inj = dirty.inject(source, typed, display, lines, day, self.dirty_rate, self.rng, last)
        carried = self._carry.pop(source, np.empty(0, dtype=object))
        extra = np.concatenate([inj.lines, carried])
        after = np.concatenate([inj.after, np.full(len(carried), -1, dtype=np.int64)])
        reasons = np.concatenate([inj.reasons, np.full(len(carried), dirty.REASON[
            "duplicate_redelivery"], dtype=object)])
        if len(inj.carry):
            self._carry[source] = inj.carry
        order = interleave(len(lines), after, self.rng)
        data = encode_file(source, np.concatenate([lines, extra])[order])
        path = part_path(self.out, source, day)
        files.write_bytes(path, data)
        date = date_of(day).isoformat()
        self.rows.setdefault(source, {})[date] = len(lines)
        names, counts = np.unique(reasons.astype(str), return_counts=True)
        self.injected.setdefault(source, {})[date] = dict(zip(names.tolist(), counts.tolist()))
        log.debug("wrote %s: %d rows + %d injected", path, len(lines), len(extra))
        return len(data)
