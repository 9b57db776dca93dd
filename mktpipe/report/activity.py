"""Sections 1 and 2: executive KPIs and daily trends (with decomposition and forecasts)."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from mktpipe.catalog import CUSTOMER_SEGMENTS, USER_DAILY
from mktpipe.features import columns as C
from mktpipe.report import charts, forecasts, queries
from mktpipe.report import formatting as fmt
from mktpipe.report.blocks import Kpi, Kpis, Section, Table, Text, not_available
from mktpipe.report.context import ReportContext
from mktpipe.trends import analysis as trends

log = logging.getLogger(__name__)

WINDOW = 30
# (column, label, unit) of the series analysed in depth
KEY_SERIES = ((C.VIEWS, "Views", "compact"), (queries.REVENUE, "Revenue (USD)", "usd"))
# (column, title, is a count)
PANELS = ((queries.ACTIVE_USERS, "Active users", True), (C.VIEWS, "Views", True),
          (queries.ENGAGEMENTS, "Likes, comments and shares", True),
          (C.ORDERS, "Orders", True), (queries.REVENUE, "Revenue (USD)", False),
          (C.EVENTS, "All events", True))


def load_daily(ctx: ReportContext) -> pd.DataFrame | None:
    """Daily totals before the snapshot, gap days filled with 0; None without the table."""
    daily = ctx.table(USER_DAILY)
    if daily is None:
        return None
    totals = queries.daily_totals(daily, ctx.snapshot)
    if totals.empty:
        return totals
    full = pd.date_range(totals.index[0], totals.index[-1], freq="D")
    return totals.reindex(full, fill_value=0.0)


def _activity_kpis(ctx: ReportContext, totals: pd.DataFrame | None) -> list[Kpi]:
    if totals is None or totals.empty:
        return []
    w = queries.window_kpis(ctx.table(USER_DAILY), ctx.snapshot, WINDOW)
    covered = totals.index[0].date() <= ctx.snapshot - dt.timedelta(days=2 * WINDOW)
    prev = w["previous"] if covered else {}
    cur = w["current"]
    return [
        Kpi("active_users", "Active users", cur[queries.ACTIVE_USERS], "int",
            prev.get(queries.ACTIVE_USERS), help="users with any event or order"),
        Kpi("views", "Views", cur[C.VIEWS], "compact", prev.get(C.VIEWS),
            help="video views"),
        Kpi("events", "Events", cur[C.EVENTS], "compact", prev.get(C.EVENTS),
            help="all interactions (views, likes, comments, shares, ...)"),
        Kpi("orders", "Orders", cur[C.ORDERS], "int", prev.get(C.ORDERS), help="purchases"),
        Kpi("revenue", "Revenue", cur[queries.REVENUE], "usd", prev.get(queries.REVENUE),
            help="order value in USD"),
    ]


def _segment_kpis(ctx: ReportContext) -> tuple[list[Kpi], str | None]:
    segments = ctx.table(CUSTOMER_SEGMENTS)
    if segments is None:
        return [], not_available(f"{CUSTOMER_SEGMENTS} does not exist",
                                 "Churn risk, CLV and intent KPIs appear once the score stage "
                                 "has run.")
    dates = queries.partition_dates(segments)
    if ctx.snapshot not in dates:
        return [], not_available(f"no scores in {CUSTOMER_SEGMENTS} for {ctx.snapshot}",
                                 "Run the score stage for this snapshot.")
    earlier = queries.latest_on_or_before(dates, ctx.snapshot - dt.timedelta(days=WINDOW))
    stats = queries.segment_kpis(segments, [d for d in (ctx.snapshot, earlier) if d])
    cur, prev = stats.get(ctx.snapshot, {}), stats.get(earlier, {})
    versus = f"vs scores of {earlier}" if earlier else "no earlier scores to compare"
    return [
        Kpi("churn_risk", "Users at churn risk", cur.get("at_risk"), "int", prev.get("at_risk"),
            higher_is_better=False, compared_to=versus,
            help="churn tier immediate intervention or retention campaign"),
        Kpi("clv_90d", "Expected 90-day CLV", cur.get("clv_total"), "usd",
            prev.get("clv_total"), compared_to=versus, help="sum over scored users"),
        Kpi("high_intent", "High-intent users", cur.get("high_intent"), "int",
            prev.get("high_intent"), compared_to=versus,
            help="intent tier personalised offer"),
    ], None


def _highlights(kpis: list[Kpi]) -> str:
    """One or two sentences a reader gets before the numbers."""
    by_key = {k.key: k for k in kpis}
    parts = []
    for key, what in (("revenue", "Revenue"), ("active_users", "Active users")):
        k = by_key.get(key)
        change = None if k is None else fmt.fmt_change(k.value, k.previous)[1]
        if change is None:
            continue
        if abs(change) < 0.005:
            parts.append(f"{what} unchanged on the previous {WINDOW} days.")
        else:
            parts.append(f"{what} {'up' if change > 0 else 'down'} {abs(change):.1%} on the "
                         f"previous {WINDOW} days.".replace("%", " %"))
    risk = by_key.get("churn_risk")
    if risk is not None and fmt.is_number(risk.value):
        parts.append(f"{fmt.fmt_int(risk.value)} users are at churn risk and need a retention "
                     "action.")
    return " ".join(parts)


def kpi_section(ctx: ReportContext, totals: pd.DataFrame | None) -> Section:
    end, start = ctx.data_end, ctx.snapshot - dt.timedelta(days=WINDOW)
    section = Section("kpis", "Executive summary",
                      f"Snapshot {ctx.snapshot}. Activity figures cover the last {WINDOW} days "
                      f"({start} to {end}); changes compare them with the {WINDOW} days before. "
                      "Scores (churn risk, CLV, intent) are those of the snapshot.")
    activity = _activity_kpis(ctx, totals)
    scored, scored_missing = _segment_kpis(ctx)
    if not activity and not scored:
        section.missing = not_available(
            f"{USER_DAILY} and {CUSTOMER_SEGMENTS} have no data for this snapshot",
            "Run the daily and score stages first.")
        return section
    section.add(Text(_highlights(activity + scored), "lead") if activity + scored else None,
                Kpis(activity + scored))
    if not activity:
        section.note(not_available(f"{USER_DAILY} has no activity before {ctx.snapshot}"),
                     "warning")
    elif activity[0].previous is None:
        section.note(f"Changes are shown once {2 * WINDOW} days of history are available.")
    if scored_missing:
        section.note(scored_missing, "warning")
    ctx.details["kpis"] = {k.key: k.value for k in activity + scored}
    return section


def _anomaly_table(name: str, label: str, unit: str, analysis: trends.SeriesAnalysis):
    d = analysis.decomposition
    if d is None or not d["anomaly"].any():
        return Text(f"No anomalous days: {label}.", "note")
    rows = [[day.date().isoformat(), fmt.fmt_value(r.observed, unit),
             fmt.fmt_value(max(r.trend + r.seasonal, 0.0), unit), f"{r.z:+.1f}"]
            for day, r in d[d["anomaly"]].iterrows()]
    return Table(["day", "actual", "expected", "robust z"], rows, id=f"anomalies-{name}",
                 title=f"Anomalous days: {label}", numeric={1, 2, 3},
                 note="Expected = trend + weekly pattern. |z| above 3.5 is flagged.")


def _forecast_blocks(name: str, label: str, unit: str, analysis: trends.SeriesAnalysis):
    fc = analysis.forecast
    if fc is None:
        return []
    history = analysis.series
    last = history.iloc[-WINDOW:].sum()
    caption = (f"{label}: last 120 days and a {len(fc)}-day forecast ({analysis.forecast_method})."
               " Red dots: anomalous days.")
    summary = Text(f"Forecast for the next {len(fc)} days: {fmt.fmt_value(fc['mean'].sum(), unit)}"
                   f" in total ({fmt.fmt_value(fc['mean'].mean(), unit)} a day), against "
                   f"{fmt.fmt_value(last, unit)} in the last {min(WINDOW, len(history))} days.")
    rows = [[d.date().isoformat(), fmt.fmt_value(r["mean"], unit), fmt.fmt_value(r["lower"], unit),
             fmt.fmt_value(r["upper"], unit)] for d, r in fc.iterrows()]
    table = Table(["day", "forecast", "low", "high"], rows, id=f"forecast-{name}",
                  title=f"Forecast values, day by day: {label}", numeric={1, 2, 3},
                  collapsed=True)
    return [summary, charts.forecast(f"forecast-{name}", caption, history, fc, analysis.anomalies,
                                     label, value_fmt=lambda v: fmt.fmt_value(v, unit)), table]


def trends_section(ctx: ReportContext, totals: pd.DataFrame | None) -> Section:
    section = Section("trends", "Daily trends",
                      "Totals per day from the daily aggregates. The key series are split into "
                      "trend, weekly pattern and residual (STL); days far outside their usual "
                      "range are flagged, and a 30-day forecast shows where they are heading.")
    if totals is None:
        section.missing = not_available(f"{USER_DAILY} does not exist",
                                        "Run the daily aggregates (mktpipe daily) first.")
        return section
    if totals.empty:
        section.missing = not_available(f"no daily activity before {ctx.snapshot}")
        return section
    last = totals.index[-1].date()
    if last < ctx.data_end:
        section.note(f"The latest daily data is from {last}, {(ctx.snapshot - last).days} days "
                     "before the snapshot: the daily stage may not have run for the days since "
                     "(the forecast starts after the last day with data).", "warning")
    section.add(charts.daily_overview(
        "daily-overview", f"Daily totals, {totals.index[0].date()} to {totals.index[-1].date()}"
        " (thin line: each day; thick line: 7-day average).", totals, PANELS))
    ctx.details.setdefault("anomalies", {})
    ctx.details.setdefault("forecast_points", {})
    for name, label, unit in KEY_SERIES:
        analysis = trends.analyse(totals[name], name)
        chosen = forecasts.tournament_forecast(ctx, name)
        if chosen is not None:  # the trends stage's winner replaces the ETS drawn here
            analysis.forecast, analysis.forecast_method = chosen
        ctx.details["anomalies"][name] = [d.date().isoformat() for d in analysis.anomalies]
        ctx.details["forecast_points"][name] = 0 if analysis.forecast is None \
            else len(analysis.forecast)
        section.add(Text(label, "subheading"))
        for note in analysis.notes:
            section.note(note, "warning")
        if analysis.decomposition is not None:
            section.add(charts.decomposition(
                f"decomposition-{name}", f"{label}: trend, average weekday effect and residual "
                "(STL, weekly period). Red: anomalous days.", analysis.decomposition, label),
                _anomaly_table(name, label, unit, analysis))
        section.add(*_forecast_blocks(name, label, unit, analysis))
    return section
