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

from mktpipe import i18n
from mktpipe.catalog import CUSTOMER_SEGMENTS
from mktpipe.i18n import _, segment_cut
from mktpipe.quality.manifest import last_day, stage_balance
from mktpipe.trends.series import KPI_LABELS

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
    """The series in the active language: 'Views' / 'Visualizaciones (segmento: ...)'."""
    label = _(KPI_LABELS.get(kpi, kpi))
    return label if not segment else f"{label} ({segment_cut(segment)})"


def _day(day) -> str:
    return i18n.current().date(day)


def _n(x: float) -> str:
    return i18n.current().integer(x)


def _pct(x: float, digits: int = 0) -> str:
    return i18n.current().percent(x, digits)


def kpi_drops(check: pd.DataFrame, days: int, segments: bool, min_days: int = 2) -> list[Alert]:
    """``check``: rows (series_id, kpi, segment, day, mean, lower, upper, actual) of the check
    forecasts; an alert when at least ``min_days`` of each series' last ``days`` days are
    below their interval (critical: every one of them, for a total)."""
    out = []
    if check.empty:
        return out
    for _sid, rows in check.groupby("series_id", sort=True):
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
            _("{series} fell below its forecast interval on {below} of the last {days} days; "
              "on {day} it was {actual} against an expected {expected} (lower bound {lower}, "
              "{short} short)").format(
                series=_label(kpi, None if total else segment), below=len(below),
                days=len(rows), day=_day(worst["day"]), actual=_n(worst["actual"]),
                expected=_n(worst["mean"]), lower=_n(worst["lower"]), short=_pct(shortfall)),
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
    for _i, r in recent.sort_values(["series_id", "day"]).iterrows():
        segment = None if pd.isna(r["segment"]) else r["segment"]
        move = (r["after"] / r["before"] - 1) if r["before"] else float("nan")
        message = (_("{series} changed regime on {day} (up {move}: {before} a day before, "
                     "{after} after; confidence {confidence})") if r["after"] >= r["before"]
                   else _("{series} changed regime on {day} (down {move}: {before} a day "
                          "before, {after} after; confidence {confidence})"))
        out.append(Alert(
            "regime_change", "warning", str(r["series_id"]),
            message.format(series=_label(r["kpi"], segment), day=_day(r["day"]),
                           move=_pct(abs(move)), before=_n(r["before"]), after=_n(r["after"]),
                           confidence=i18n.current().number(r["change_confidence"], 2)),
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
        _("users at churn risk rose from {before} ({n_before} of {of_before}) on {day} to "
          "{now} ({n_now} of {of_now}), more than the {allowed} points allowed").format(
            before=_pct(before, 1), n_before=_n(previous[0]), of_before=_n(previous[1]),
            day=_day(previous_day), now=_pct(now, 1), n_now=_n(current[0]),
            of_now=_n(current[1]), allowed=_pct(max_increase)),
        day=snapshot, value=now, threshold=before + max_increase)]


def data_quality(ingest: dict | None, max_share: float) -> list[Alert]:
    """``ingest``: the latest ingest result (a run manifest's stage entry) up to the snapshot."""
    if not ingest:
        return []
    day = str(ingest.get("run_date", ""))
    subject = f"ingest {day}"
    last = last_day(day)
    if ingest.get("status") == "failed":
        return [Alert("data_quality", "critical", subject,
                      _("the ingest of {day} failed: {error}").format(
                          day=_day(day), error=ingest.get("error") or _("see its manifest")),
                      day=last)]
    read, accounted = stage_balance(ingest)
    if ingest.get("status") != "ok" or not read:
        return []
    out = []
    if read != accounted:
        out.append(Alert("data_quality", "critical", subject,
                         _("the ingest of {day} does not balance: {read} rows read, "
                           "{accounted} written, quarantined or deduplicated").format(
                             day=_day(day), read=_n(read), accounted=_n(accounted)),
                         day=last,
                         value=float(accounted), threshold=float(read)))
    share = int(ingest.get("rows_quarantined") or 0) / read
    if share > max_share:
        out.append(Alert("data_quality", "warning", subject,
                         _("the ingest of {day} quarantined {share} of {read} rows (more "
                           "than {allowed}); see the quarantine tables' reason codes").format(
                             day=_day(day), share=_pct(share, 1), read=_n(read),
                             allowed=_pct(max_share)), day=last, value=share,
                         threshold=max_share))
    return out
