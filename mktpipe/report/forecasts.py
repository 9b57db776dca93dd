"""The report's alerts (first section) and the forecast tournament with the trend diagnostics,
read from the trends stage's gold tables (nothing is refitted here).

Each read is one snapshot partition of a small table (a row per alert, per series and model,
per series and forecast day), so ``toPandas`` stays small.
"""

from __future__ import annotations

import logging

import pandas as pd
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import ALERTS, FORECAST_BACKTESTS, KPI_FORECASTS, TREND_DIAGNOSTICS
from mktpipe.i18n import N_, NP_, _, ngettext, segment_cut, value_label
from mktpipe.report import formatting as fmt
from mktpipe.report.blocks import Section, Table, Text, not_available
from mktpipe.report.context import ReportContext
from mktpipe.trends.series import KPI_LABELS

log = logging.getLogger(__name__)

# shown through _() (the marks put them in the catalog)
MODEL_LABELS = {"seasonal_naive": N_("seasonal naive"), "ets": "ETS", "sarima": "SARIMA",
                "gbm": N_("gradient boosting"), "prophet": "Prophet"}
RUN_TRENDS = N_("Run the trends stage (`mktpipe trends --snapshot-date S`, or `mktpipe run`).")
SEVERITIES = (NP_("severity", "critical"), NP_("severity", "warning"))
RULES = (NP_("rule", "kpi_drop"), NP_("rule", "regime_change"),
         NP_("rule", "churn_risk_growth"), NP_("rule", "data_quality"))


def model_label(model) -> str:
    return _(MODEL_LABELS.get(model, model)) if model else fmt.MISSING


def _snapshot_rows(ctx: ReportContext, table: str) -> pd.DataFrame | None:
    """The snapshot's partition of ``table`` as pandas; None when the table or partition is
    missing."""
    df = ctx.table(table)
    if df is None:
        return None
    rows = df.filter(F.col(S.SNAPSHOT_DATE) == F.lit(ctx.snapshot)).toPandas()  # small table
    return rows if len(rows) else None


def series_label(kpi: str, segment) -> str:
    label = _(KPI_LABELS.get(kpi, kpi))
    return label if segment is None or pd.isna(segment) else f"{label}, {segment_cut(segment)}"


def alerts_section(ctx: ReportContext) -> Section:
    section = Section("alerts", _("Alerts"), _(
        "Rules evaluated on this snapshot (config section `alerts`): KPI drops below their "
        "forecast interval, regime changes, growth of churn risk, data-quality failures."))
    if ctx.table(ALERTS) is None:
        section.missing = not_available(_("{table} does not exist").format(table=ALERTS),
                                        _(RUN_TRENDS))
        return section
    rows = _snapshot_rows(ctx, ALERTS)
    if rows is None:
        section.add(Text(_("No alerts for this snapshot."), "lead"))
        ctx.details["alerts"] = 0
        return section
    order = {"critical": 0, "warning": 1}
    rows = rows.assign(_o=rows["severity"].map(order)).sort_values(["_o", "rule", "subject"])
    ctx.details["alerts"] = len(rows)
    ctx.alerts = [{"severity": r.severity, "rule": r.rule, "message": r.message}
                  for r in rows.itertuples()]
    critical = int((rows["severity"] == "critical").sum())
    count = ngettext("{n} alert", "{n} alerts", len(rows)).format(n=len(rows))
    section.add(Text(count + (ngettext(", {n} critical.", ", {n} critical.", critical)
                              .format(n=critical) if critical else "."),
                     "callout" if critical else "lead"))
    section.add(Table([_("severity"), _("rule"), _("about"), _("what happened")],
                      [[value_label("severity", r.severity), value_label("rule", r.rule),
                        _subject(r.subject), r.message]
                       for r in rows.itertuples()], id="alerts", title=_("Alerts")))
    return section


def tournament_forecast(ctx: ReportContext, series_id: str) -> tuple[pd.DataFrame, str] | None:
    """The tournament winner's forecast of ``series_id`` (mean, lower, upper by day) and a
    sentence on how it was chosen; None when the trends stage has not run."""
    if ctx.table(KPI_FORECASTS) is None or ctx.table(FORECAST_BACKTESTS) is None:
        return None
    fc = (ctx.table(KPI_FORECASTS)
          .filter((F.col(S.SNAPSHOT_DATE) == F.lit(ctx.snapshot))
                  & (F.col("series_id") == series_id) & (F.col("kind") == "forecast"))
          .select("day", "model", "mean", "lower", "upper").toPandas())  # horizon rows
    if fc.empty:
        return None
    scores = (ctx.table(FORECAST_BACKTESTS)
              .filter((F.col(S.SNAPSHOT_DATE) == F.lit(ctx.snapshot))
                      & (F.col("series_id") == series_id))
              .select("model", "mase", "coverage", "folds", "chosen").toPandas())  # a row a model
    fc.index = pd.DatetimeIndex(pd.to_datetime(fc.pop("day")))
    model = str(fc.pop("model").iloc[0])
    chosen = scores[scores["chosen"]]
    level = int(round(100 * ctx.config.trends.interval))
    if chosen.empty:
        method = _("{model} (no model completed the backtests)").format(model=model_label(model))
    else:
        c = chosen.iloc[0]
        method = _("{model}, the best of {models} models in {folds} rolling-origin backtests "
                   "(MASE {mase}; its {level} % interval held {coverage} of the actual days)"
                   ).format(model=model_label(model), models=len(scores), folds=int(c["folds"]),
                            mase=fmt.fmt_num(c["mase"], 2), level=level,
                            coverage=fmt.fmt_pct(c["coverage"], 0))
    return fc.sort_index()[["mean", "lower", "upper"]], method


def _fmt(value, digits=2) -> str:
    return "—" if value is None or pd.isna(value) else fmt.fmt_num(value, digits)


def _subject(subject) -> str:
    """An alert's subject: a series id (views, views|<column>=<value>) as its label; a table
    or an ingest run as it is."""
    text = str(subject)
    kpi, _sep, segment = text.partition("|")
    if kpi in KPI_LABELS:
        return series_label(kpi, segment or None)
    if text.startswith("ingest "):
        return _("ingest {day}").format(day=fmt.fmt_date(text.split(" ", 1)[1]))
    return text


def tournament_section(ctx: ReportContext) -> Section:
    section = Section(
        "forecasts", _("Forecast tournament and trend diagnostics"), _(
            "Every KPI series (and each large segment's) is forecast by several models in "
            "rolling-origin backtests; the one with the lowest mean MASE (error relative to "
            "repeating last week; below 1 beats it) makes the 30-day forecast. Trend and "
            "seasonal strength run from 0 (none) to 1 (all of the variation); regime changes "
            "are shifts in level or slope, with the share of ever stricter penalties they "
            "survive as confidence."))
    scores = _snapshot_rows(ctx, FORECAST_BACKTESTS)
    diag = _snapshot_rows(ctx, TREND_DIAGNOSTICS)
    if scores is None or diag is None:
        section.missing = not_available(
            _("no {backtests} / {diagnostics} rows for {day}").format(
                backtests=FORECAST_BACKTESTS, diagnostics=TREND_DIAGNOSTICS,
                day=fmt.fmt_date(ctx.snapshot)), _(RUN_TRENDS))
        return section
    models = [m for m in MODEL_LABELS if m in set(scores["model"])]
    wide = scores.pivot(index="series_id", columns="model", values="mase")
    diag = diag.set_index("series_id").sort_values(["segment", "kpi"], na_position="first")
    rows = []
    for sid, d in diag.iterrows():
        chosen = scores[(scores["series_id"] == sid) & scores["chosen"]]
        winner = chosen.iloc[0] if len(chosen) else None
        rows.append([series_label(d["kpi"], d["segment"]),
                     *[_fmt(wide.loc[sid].get(m)) if sid in wide.index else "—" for m in models],
                     model_label(d["chosen_model"]),
                     "—" if winner is None else fmt.fmt_pct(winner["coverage"], 0),
                     _fmt(d["trend_strength"]), _fmt(d["seasonal_strength"]),
                     _fmt(d["noise_level"], 3), str(int(d["anomalies"] or 0)),
                     "—" if pd.isna(d["last_change_day"]) else
                     f"{fmt.fmt_date(d['last_change_day'])} "
                     f"({_fmt(d['last_change_confidence'])})"])
    level = int(round(100 * ctx.config.trends.interval))
    section.add(Table(
        [_("series"), *[f"MASE {model_label(m)}" for m in models], _("chosen"),
         _("{level} % interval held").format(level=level), _("trend strength"),
         _("seasonal strength"), _("noise"), _("anomalous days"),
         _("last regime change (confidence)")],
        rows, id="forecast-tournament", title=_("Backtests and diagnostics per series"),
        numeric=set(range(1, len(models) + 1)) | {len(models) + 2, len(models) + 3,
                                                 len(models) + 4, len(models) + 5,
                                                 len(models) + 6},
        note=_("MASE: mean over the backtest folds; — : the model could not run every fold "
               "(too little history) or failed. Noise: remainder's standard deviation over the "
               "mean level.")))
    failed = scores[scores["error"].notna()]
    if len(failed):
        section.note("; ".join(sorted({_("{model} on {series}: {error}").format(
            model=model_label(r.model), series=_subject(r.series_id), error=r.error)
            for r in failed.itertuples()})[:5]), "note")
    ctx.details["tournament"] = {sid: d["chosen_model"] for sid, d in diag.iterrows()}
    return section
