"""Smart alerts: rules over what the trends stage and the other stages already computed.

Every rule takes small inputs (a few rows per series, two counts, a manifest entry) and
returns :class:`Alert` records; the trends stage writes them to ``gold.alerts`` and its
result, the report shows them first, and ``--fail-on-alert`` turns them into an exit code.
Thresholds come from the ``alerts`` section of the config.

==================  =========================================================================
rule                fires when
==================  =========================================================================
kpi_drop            a KPI's value on ``kpi_drop_min_days`` (2) of the last ``kpi_drop_days``
                    (3) days is below the lower bound of the ``kpi_drop_interval`` (95 %)
                    prediction interval of the tournament winner re-fitted without the last
                    ``trends.check_days`` days (critical: a total below on every one of
                    them). One day below a 95 % bound happens by chance 2.5 % of the time;
                    two of three, about 0.2 %.
regime_change       the trend diagnostics found a regime change within the last
                    ``regime_change_days`` days with confidence >= the minimum
churn_risk_growth   the share of scored users in ``churn_risk_tiers`` grew by more than
                    ``churn_risk_max_increase`` (points) since the previous scored snapshot
                    (critical: more than twice that)
data_quality        the latest ingest up to the snapshot failed, did not balance (read !=
                    written + quarantined + deduplicated; critical), or quarantined more than
                    ``quarantine_max_share`` of its rows (warning)
==================  =========================================================================
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from mktpipe.catalog import CUSTOMER_SEGMENTS
from mktpipe.quality.manifest import last_day, stage_balance

SEVERITIES = ("warning", "critical")


@dataclass(frozen=True)
class Alert:
    rule: str
    severity: str  # warning | critical
    subject: str  # the series, table or stage it is about
    message: str
    day: dt.date | None = None
    value: float | None = None
    threshold: float | None = None

    @property
    def alert_id(self) -> str:
        """Stable for the same rule, subject and day: a re-run replaces, never duplicates."""
        key = f"{self.rule}|{self.subject}|{self.day}"
        return hashlib.sha1(key.encode()).hexdigest()[:16]

    def record(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, **asdict(self)}


def at_least(alerts: list[Alert], severity: str) -> list[Alert]:
    """The alerts of ``severity`` or worse (``never``: none)."""
    if severity not in SEVERITIES:
        return []
    floor = SEVERITIES.index(severity)
    return [a for a in alerts if SEVERITIES.index(a.severity) >= floor]


def _label(kpi: str, segment: str | None) -> str:
    return kpi if not segment else f"{kpi} ({segment})"


def kpi_drops(check: pd.DataFrame, days: int, segments: bool, min_days: int = 2) -> list[Alert]:
    """``check``: rows (series_id, kpi, segment, day, mean, lower, upper, actual) of the check
    forecasts; an alert when at least ``min_days`` of each series' last ``days`` days are
    below their interval (critical: every one of them, for a total)."""
    out = []
    if check.empty:
        return out
    for _, rows in check.groupby("series_id", sort=True):
        rows = rows.sort_values("day").tail(days)
        segment = rows["segment"].iloc[0]
        if segment is not None and not pd.isna(segment) and not segments:
            continue
        below = rows[rows["actual"] < rows["lower"]]
        if below.empty or len(below) < min(min_days, len(rows)):
            continue
        worst = below.loc[(below["actual"] / below["mean"].where(below["mean"] > 0)).idxmin()] \
            if (below["mean"] > 0).any() else below.iloc[-1]
        total = segment is None or pd.isna(segment)
        severity = "critical" if total and len(below) == len(rows) else "warning"
        kpi = rows["kpi"].iloc[0]
        shortfall = 1 - worst["actual"] / worst["mean"] if worst["mean"] > 0 else float("nan")
        out.append(Alert(
            "kpi_drop", severity, str(rows["series_id"].iloc[0]),
            f"{_label(kpi, None if total else segment)} fell below its forecast interval on "
            f"{len(below)} of the last {len(rows)} days; on {worst['day']} it was "
            f"{worst['actual']:,.0f} against an expected {worst['mean']:,.0f} "
            f"(lower bound {worst['lower']:,.0f}, {shortfall:.0%} short)",
            day=worst["day"], value=float(worst["actual"]), threshold=float(worst["lower"])))
    return out


def regime_changes(changes: pd.DataFrame, data_end: dt.date, days: int,
                   min_confidence: float) -> list[Alert]:
    """``changes``: rows (series_id, kpi, segment, day, change_confidence, before, after) of
    the regime changes found (``before`` / ``after``: mean level of the 7 days on each side)."""
    out = []
    if changes.empty:
        return out
    first = data_end - dt.timedelta(days=days - 1)
    recent = changes[(changes["day"] >= first) & (changes["change_confidence"] >= min_confidence)]
    for _, r in recent.sort_values(["series_id", "day"]).iterrows():
        segment = None if pd.isna(r["segment"]) else r["segment"]
        direction = "up" if r["after"] >= r["before"] else "down"
        move = (r["after"] / r["before"] - 1) if r["before"] else float("nan")
        out.append(Alert(
            "regime_change", "warning", str(r["series_id"]),
            f"{_label(r['kpi'], segment)} changed regime on {r['day']} ({direction} "
            f"{abs(move):.0%}: {r['before']:,.0f} a day before, {r['after']:,.0f} after; "
            f"confidence {r['change_confidence']:.2f})",
            day=r["day"], value=float(r["after"]), threshold=float(r["before"])))
    return out


def churn_risk_growth(current: tuple[int, int] | None, previous: tuple[int, int] | None,
                      previous_day: dt.date | None, snapshot: dt.date,
                      max_increase: float) -> list[Alert]:
    """``current`` / ``previous``: (users at risk, users scored) at the snapshot and at the
    previous scored snapshot."""
    if not current or not previous or not current[1] or not previous[1]:
        return []
    now, before = current[0] / current[1], previous[0] / previous[1]
    if now - before <= max_increase:
        return []
    severity = "critical" if now - before > 2 * max_increase else "warning"
    return [Alert(
        "churn_risk_growth", severity, CUSTOMER_SEGMENTS,
        f"users at churn risk rose from {before:.1%} ({previous[0]:,} of {previous[1]:,}) on "
        f"{previous_day} to {now:.1%} ({current[0]:,} of {current[1]:,}), more than the "
        f"{max_increase:.0%} points allowed", day=snapshot, value=now, threshold=before
        + max_increase)]


def data_quality(ingest: dict | None, max_share: float) -> list[Alert]:
    """``ingest``: the latest ingest result (a run manifest's stage entry) up to the snapshot."""
    if not ingest:
        return []
    day = str(ingest.get("run_date", ""))
    subject = f"ingest {day}"
    last = last_day(day)
    if ingest.get("status") == "failed":
        return [Alert("data_quality", "critical", subject,
                      f"the ingest of {day} failed: {ingest.get('error') or 'see its manifest'}",
                      day=last)]
    read, accounted = stage_balance(ingest)
    if ingest.get("status") != "ok" or not read:
        return []
    out = []
    if read != accounted:
        out.append(Alert("data_quality", "critical", subject,
                         f"the ingest of {day} does not balance: {read:,} rows read, "
                         f"{accounted:,} written, quarantined or deduplicated", day=last,
                         value=float(accounted), threshold=float(read)))
    share = int(ingest.get("rows_quarantined") or 0) / read
    if share > max_share:
        out.append(Alert("data_quality", "warning", subject,
                         f"the ingest of {day} quarantined {share:.1%} of {read:,} rows "
                         f"(more than {max_share:.0%}); see the quarantine tables' reason "
                         "codes", day=last, value=share, threshold=max_share))
    return out
