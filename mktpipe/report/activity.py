"""Sections 1 and 2: executive KPIs and daily trends (with decomposition and forecasts)."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from mktpipe.catalog import CUSTOMER_SEGMENTS, USER_DAILY
from mktpipe.features import columns as C
from mktpipe.i18n import N_, _, ngettext
from mktpipe.report import charts, forecasts, queries
from mktpipe.report import formatting as fmt
from mktpipe.report.blocks import Kpi, Kpis, Section, Table, Text, not_available
from mktpipe.report.context import ReportContext
from mktpipe.trends import analysis as trends

log = logging.getLogger(__name__)

WINDOW = 30
# (column, label, unit) of the series analysed in depth
# (labels are translated where they are shown)
KEY_SERIES = ((C.VIEWS, N_("Views"), "compact"), (queries.REVENUE, N_("Revenue (USD)"), "usd"))
# (column, title, is a count)
PANELS = ((queries.ACTIVE_USERS, N_("Active users"), True), (C.VIEWS, N_("Views"), True),
          (queries.ENGAGEMENTS, N_("Likes, comments and shares"), True),
          (C.ORDERS, N_("Orders"), True), (queries.REVENUE, N_("Revenue (USD)"), False),
          (C.EVENTS, N_("All events"), True))


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
    versus = _("vs previous {days} days").format(days=WINDOW)
    return [
        Kpi("active_users", _("Active users"), cur[queries.ACTIVE_USERS], "int",
            prev.get(queries.ACTIVE_USERS), help=_("users with any event or order"),
            compared_to=versus),
        Kpi("views", _("Views"), cur[C.VIEWS], "compact", prev.get(C.VIEWS),
            help=_("video views"), compared_to=versus),
        Kpi("events", _("Events"), cur[C.EVENTS], "compact", prev.get(C.EVENTS),
            help=_("all interactions (views, likes, comments, shares, ...)"),
            compared_to=versus),
        Kpi("orders", _("Orders"), cur[C.ORDERS], "int", prev.get(C.ORDERS),
            help=_("purchases"), compared_to=versus),
        Kpi("revenue", _("Revenue"), cur[queries.REVENUE], "usd", prev.get(queries.REVENUE),
            help=_("order value in USD"), compared_to=versus),
    ]


def _segment_kpis(ctx: ReportContext) -> tuple[list[Kpi], str | None]:
    segments = ctx.table(CUSTOMER_SEGMENTS)
    if segments is None:
        return [], not_available(_("{table} does not exist").format(table=CUSTOMER_SEGMENTS),
                                 _("Churn risk, CLV and intent KPIs appear once the score "
                                   "stage has run."))
    dates = queries.partition_dates(segments)
    if ctx.snapshot not in dates:
        return [], not_available(
            _("no scores in {table} for {day}").format(table=CUSTOMER_SEGMENTS,
                                                       day=fmt.fmt_date(ctx.snapshot)),
            _("Run the score stage for this snapshot."))
    earlier = queries.latest_on_or_before(dates, ctx.snapshot - dt.timedelta(days=WINDOW))
    stats = queries.segment_kpis(segments, [d for d in (ctx.snapshot, earlier) if d])
    cur, prev = stats.get(ctx.snapshot, {}), stats.get(earlier, {})
    versus = _("vs scores of {day}").format(day=fmt.fmt_date(earlier)) if earlier \
        else _("no earlier scores to compare")
    return [
        Kpi("churn_risk", _("Users at churn risk"), cur.get("at_risk"), "int",
            prev.get("at_risk"), higher_is_better=False, compared_to=versus,
            help=_("churn tier immediate intervention or retention campaign")),
        Kpi("clv_90d", _("Expected 90-day CLV"), cur.get("clv_total"), "usd",
            prev.get("clv_total"), compared_to=versus, help=_("sum over scored users")),
        Kpi("high_intent", _("High-intent users"), cur.get("high_intent"), "int",
            prev.get("high_intent"), compared_to=versus,
            help=_("intent tier personalised offer")),
    ], None


def _highlights(kpis: list[Kpi]) -> str:
    """One or two sentences a reader gets before the numbers."""
    by_key = {k.key: k for k in kpis}
    parts = []
    sentences = {  # (unchanged, up, down) per KPI
        "revenue": (N_("Revenue unchanged on the previous {days} days."),
                    N_("Revenue up {change} on the previous {days} days."),
                    N_("Revenue down {change} on the previous {days} days.")),
        "active_users": (N_("Active users unchanged on the previous {days} days."),
                         N_("Active users up {change} on the previous {days} days."),
                         N_("Active users down {change} on the previous {days} days.")),
    }
    for key, (same, up, down) in sentences.items():
        k = by_key.get(key)
        change = None if k is None else fmt.fmt_change(k.value, k.previous)[1]
        if change is None:
            continue
        sentence = same if abs(change) < 0.005 else up if change > 0 else down
        parts.append(_(sentence).format(change=fmt.fmt_pct(abs(change)), days=WINDOW))
    risk = by_key.get("churn_risk")
    if risk is not None and fmt.is_number(risk.value):
        parts.append(ngettext("{n} user is at churn risk and needs a retention action.",
                              "{n} users are at churn risk and need a retention action.",
                              int(risk.value)).format(n=fmt.fmt_int(risk.value)))
    return " ".join(parts)


def kpi_section(ctx: ReportContext, totals: pd.DataFrame | None) -> Section:
    end, start = ctx.data_end, ctx.snapshot - dt.timedelta(days=WINDOW)
    section = Section("kpis", _("Executive summary"), _(
        "Snapshot {snapshot}. Activity figures cover the last {days} days ({start} to {end}); "
        "changes compare them with the {days} days before. Scores (churn risk, CLV, intent) "
        "are those of the snapshot.").format(snapshot=fmt.fmt_date(ctx.snapshot), days=WINDOW,
                                             start=fmt.fmt_date(start), end=fmt.fmt_date(end)))
    activity = _activity_kpis(ctx, totals)
    scored, scored_missing = _segment_kpis(ctx)
    if not activity and not scored:
        section.missing = not_available(
            _("{daily} and {segments} have no data for this snapshot").format(
                daily=USER_DAILY, segments=CUSTOMER_SEGMENTS),
            _("Run the daily and score stages first."))
        return section
    section.add(Text(_highlights(activity + scored), "lead") if activity + scored else None,
                Kpis(activity + scored))
    if not activity:
        section.note(not_available(_("{table} has no activity before {day}").format(
            table=USER_DAILY, day=fmt.fmt_date(ctx.snapshot))), "warning")
    elif activity[0].previous is None:
        section.note(_("Changes are shown once {days} days of history are available.")
                     .format(days=2 * WINDOW))
    if scored_missing:
        section.note(scored_missing, "warning")
    ctx.details["kpis"] = {k.key: k.value for k in activity + scored}
    return section


def _anomaly_table(name: str, label: str, unit: str, analysis: trends.SeriesAnalysis):
    d = analysis.decomposition
    if d is None or not d["anomaly"].any():
        return Text(_("No anomalous days: {series}.").format(series=label), "note")
    rows = [[fmt.fmt_date(day), fmt.fmt_value(r.observed, unit),
             fmt.fmt_value(max(r.trend + r.seasonal, 0.0), unit),
             ("+" if r.z >= 0 else "") + fmt.fmt_num(r.z, 1)]
            for day, r in d[d["anomaly"]].iterrows()]
    return Table([_("day"), _("actual"), _("expected"), _("robust z")], rows,
                 id=f"anomalies-{name}",
                 title=_("Anomalous days: {series}").format(series=label), numeric={1, 2, 3},
                 note=_("Expected = trend + weekly pattern. |z| above 3.5 is flagged."))


def _forecast_blocks(name: str, label: str, unit: str, analysis: trends.SeriesAnalysis):
    fc = analysis.forecast
    if fc is None:
        return []
    history = analysis.series
    last = history.iloc[-WINDOW:].sum()
    caption = _("{series}: last 120 days and a {days}-day forecast ({method}). Red dots: "
                "anomalous days.").format(series=label, days=len(fc),
                                          method=analysis.forecast_method)
    summary = Text(_("Forecast for the next {days} days: {total} in total ({per_day} a day), "
                     "against {last} in the last {last_days} days.").format(
        days=len(fc), total=fmt.fmt_value(fc["mean"].sum(), unit),
        per_day=fmt.fmt_value(fc["mean"].mean(), unit), last=fmt.fmt_value(last, unit),
        last_days=min(WINDOW, len(history))))
    rows = [[fmt.fmt_date(d), fmt.fmt_value(r["mean"], unit), fmt.fmt_value(r["lower"], unit),
             fmt.fmt_value(r["upper"], unit)] for d, r in fc.iterrows()]
    table = Table([_("day"), _("forecast"), _("low"), _("high")], rows, id=f"forecast-{name}",
                  title=_("Forecast values, day by day: {series}").format(series=label),
                  numeric={1, 2, 3}, collapsed=True)
    return [summary, charts.forecast(f"forecast-{name}", caption, history, fc, analysis.anomalies,
                                     label, value_fmt=lambda v: fmt.fmt_value(v, unit)), table]


def trends_section(ctx: ReportContext, totals: pd.DataFrame | None) -> Section:
    section = Section("trends", _("Daily trends"), _(
        "Totals per day from the daily aggregates. The key series are split into trend, weekly "
        "pattern and residual (STL); days far outside their usual range are flagged, and a "
        "30-day forecast shows where they are heading."))
    if totals is None:
        section.missing = not_available(_("{table} does not exist").format(table=USER_DAILY),
                                        _("Run the daily aggregates (`mktpipe daily`) first."))
        return section
    if totals.empty:
        section.missing = not_available(_("no daily activity before {day}").format(
            day=fmt.fmt_date(ctx.snapshot)))
        return section
    last = totals.index[-1].date()
    if last < ctx.data_end:
        section.note(_("The latest daily data is from {day}, {days} days before the snapshot: "
                       "the daily stage may not have run for the days since (the forecast "
                       "starts after the last day with data).").format(
            day=fmt.fmt_date(last), days=(ctx.snapshot - last).days), "warning")
    section.add(charts.daily_overview(
        "daily-overview", _("Daily totals, {first} to {last} (thin line: each day; thick line: "
                            "7-day average).").format(first=fmt.fmt_date(totals.index[0]),
                                                      last=fmt.fmt_date(totals.index[-1])),
        totals, [(col, _(title), is_count) for col, title, is_count in PANELS]))
    ctx.details.setdefault("anomalies", {})
    ctx.details.setdefault("forecast_points", {})
    for name, label, unit in KEY_SERIES:
        label = _(label)
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
                f"decomposition-{name}", _("{series}: trend, average weekday effect and "
                                           "residual (STL, weekly period). Red: anomalous "
                                           "days.").format(series=label),
                analysis.decomposition, label),
                _anomaly_table(name, label, unit, analysis))
        section.add(*_forecast_blocks(name, label, unit, analysis))
    return section
