"""Data-quality checks: declare violations as Columns, count them all in one aggregation.

    checks = [unique_check(["user_id", "snapshot_date"]),
              not_null_check(["user_id"]),
              range_check("weekend_share", 0.0, 1.0)]
    results = run_checks(df, checks)          # one aggregation pass (+ samples for failures)
    raise_for_failures(results, "gold.user_features")   # QualityCheckError on a hard failure

A check's ``violation`` is a boolean Column, true on an offending row (null counts as no
violation). Window expressions are allowed (``unique_check`` counts rows per key with one).
Results are plain dicts for the run manifest (``StageResult.details["quality"]``):
``{"check", "kind", "violations", "rows", "passed", "sample"}`` where ``sample`` holds up to
five offending rows' key columns, fetched only for failing checks.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mktpipe.errors import QualityCheckError

log = logging.getLogger(__name__)

HARD, SOFT = "hard", "soft"
SAMPLE_SIZE = 5


@dataclass(frozen=True, eq=False)  # Columns do not compare as values
class Check:
    """One rule: ``violation`` is true on rows that break it.

    ``kind`` hard fails the stage (nothing is written), soft is logged and recorded.
    ``key_cols`` are the columns shown for sample offending rows (default: the keys given to
    ``run_checks``).
    """

    name: str
    kind: str = HARD
    violation: Column | None = None
    key_cols: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.kind not in (HARD, SOFT):
            raise ValueError(
                f"check {self.name!r}: kind must be 'hard' or 'soft', not {self.kind!r}")
        if not isinstance(self.violation, Column):
            raise ValueError(f"check {self.name!r}: violation must be a pyspark Column")
        object.__setattr__(self, "key_cols", tuple(self.key_cols))


# --- common checks -----------------------------------------------------------------------
def unique_check(keys: Sequence[str], kind: str = HARD, name: str | None = None) -> Check:
    """At most one row per ``keys`` (every row of a duplicated key is a violation)."""
    keys = list(keys)
    per_key = F.count(F.lit(1)).over(Window.partitionBy(*keys))
    return Check(name or f"unique_{'_'.join(keys)}", kind, per_key > 1, tuple(keys))


def not_null_check(cols: Sequence[str], kind: str = HARD, name: str | None = None) -> Check:
    """None of ``cols`` is null."""
    cols = list(cols)
    any_null = F.lit(False)
    for c in cols:
        any_null = any_null | F.col(c).isNull()
    return Check(name or f"not_null_{'_'.join(cols)}", kind, any_null)


def range_check(col: str, low: float | None = None, high: float | None = None,
                kind: str = HARD, name: str | None = None) -> Check:
    """Numeric ``col`` within [low, high] when not null (NaN is a violation)."""
    value = F.col(col)
    bad = F.isnan(value)
    if low is not None:
        bad = bad | (value < F.lit(low))
    if high is not None:
        bad = bad | (value > F.lit(high))
    label = f"{'' if low is None else low}..{'' if high is None else high}"
    return Check(name or f"range_{col}_{label}", kind, value.isNotNull() & bad)


def non_negative_check(col: str, kind: str = HARD) -> Check:
    return range_check(col, 0, None, kind=kind, name=f"non_negative_{col}")


def in_set_check(col: str, allowed: Sequence[Any], kind: str = HARD) -> Check:
    """``col`` is null or one of ``allowed``."""
    value = F.col(col)
    return Check(f"in_set_{col}", kind, value.isNotNull() & ~value.isin(list(allowed)))


# --- evaluation ---------------------------------------------------------------------------
def _flag(check: Check) -> Column:
    return F.coalesce(check.violation, F.lit(False))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def run_checks(df: DataFrame, checks: Sequence[Check],
               key_cols: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Count every check's violations in one aggregation; sample keys of the failing ones.

    ``key_cols``: the columns shown for offending rows of checks that name none.
    """
    if not checks:
        return []
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise ValueError(f"check names must be unique: {names}")
    flags = df.select("*", *[_flag(c).alias(f"_qc{i}") for i, c in enumerate(checks)])
    counts = flags.agg(
        F.count(F.lit(1)).alias("_rows"),
        *[F.sum(F.col(f"_qc{i}").cast("long")).alias(f"_qc{i}") for i in range(len(checks))],
    ).first()
    rows = counts["_rows"]
    results = []
    for i, check in enumerate(checks):
        violations = counts[f"_qc{i}"] or 0
        sample: list[dict[str, Any]] = []
        if violations:
            keys = list(check.key_cols or key_cols) or df.columns[:3]
            picked = flags.filter(F.col(f"_qc{i}")).select(*keys).limit(SAMPLE_SIZE).collect()
            sample = [{k: _jsonable(v) for k, v in r.asDict().items()} for r in picked]
        results.append({"check": check.name, "kind": check.kind, "violations": int(violations),
                        "rows": int(rows), "passed": violations == 0, "sample": sample})
    return results


def failures(results: Sequence[dict[str, Any]], kind: str = HARD) -> list[dict[str, Any]]:
    return [r for r in results if not r["passed"] and r["kind"] == kind]


def describe(result: dict[str, Any]) -> str:
    return (f"{result['check']}: {result['violations']} of {result['rows']} rows, "
            f"e.g. {result['sample']}")


def raise_for_failures(results: Sequence[dict[str, Any]], table: str) -> None:
    """Log soft failures; raise QualityCheckError naming every failed hard check (with the
    sample keys); the error's ``results`` attribute holds all the results."""
    for result in failures(results, SOFT):
        log.warning("soft quality check failed on %s: %s", table, describe(result))
    hard = failures(results, HARD)
    if hard:
        details = "; ".join(describe(r) for r in hard)
        error = QualityCheckError(
            f"{len(hard)} hard quality check(s) failed on {table}, nothing was written: "
            f"{details}. Fix the input data (or the transformation) and re-run the stage."
        )
        error.results = list(results)  # for the run manifest of the failed stage
        raise error
