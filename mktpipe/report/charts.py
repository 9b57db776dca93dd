"""Matplotlib charts as self-contained inline SVG, drawn on the Agg backend (no display).

Figures are built with ``matplotlib.figure.Figure`` on an explicit ``FigureCanvasAgg``, never
through pyplot, so the report neither needs a display nor changes the process-wide backend
(a notebook that imports mktpipe keeps its own).

Glyphs are drawn as paths (``svg.fonttype = "path"``), so a chart needs no font; the XML
prolog and metadata are dropped and every id is prefixed with the chart id, so many charts can
live in one HTML page without id clashes. Each function takes small pandas / list data and
returns a ``blocks.Chart``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, ScalarFormatter

from mktpipe import i18n
from mktpipe.i18n import _
from mktpipe.report.blocks import Chart
from mktpipe.report.formatting import fmt_compact

NAVY, RED, TEAL, AMBER = "#1d3557", "#e63946", "#2a9d8f", "#e9a23b"
GREY, LIGHT, DAY_LINE = "#8d99ae", "#dfe6ee", "#a9b8ca"
PALETTE = [NAVY, TEAL, AMBER, RED, "#6d597a", "#52b2d9", "#b5838d", GREY, "#84a98c",
           "#3d405b"]
STYLE = {
    "svg.fonttype": "path", "svg.hashsalt": "mktpipe", "font.family": "DejaVu Sans",
    "font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.titlelocation": "left",
    "axes.labelsize": 9, "axes.labelcolor": "#444444", "axes.edgecolor": "#b8c2cc",
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.color": LIGHT,
    "grid.linewidth": 0.8, "axes.axisbelow": True, "xtick.color": "#555555",
    "ytick.color": "#555555", "xtick.labelsize": 8.5, "ytick.labelsize": 8.5,
    "legend.frameon": False, "legend.fontsize": 8.5, "axes.prop_cycle": matplotlib.cycler(
        color=PALETTE), "figure.dpi": 100,
}
_ID = re.compile(r'id="([^"]+)"')


def to_svg(fig, chart_id: str) -> str:
    """The figure as an inline ``<svg>`` element (closed afterwards)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", chart_id) + "-"
    for old in set(_ID.findall(svg)):
        new = prefix + old
        svg = svg.replace(f'id="{old}"', f'id="{new}"').replace(f"#{old})", f"#{new})")
        svg = svg.replace(f'href="#{old}"', f'href="#{new}"')
    # drop the fixed size in pt: the SVG scales to its container (viewBox keeps the ratio)
    svg = re.sub(r'^<svg([^>]*?) width="[^"]+" height="[^"]+"', r"<svg\1", svg, count=1)
    return svg.replace("<svg", f'<svg role="img" aria-label="{chart_id}"', 1)


def _figure(width: float = 9.0, height: float = 3.2, nrows: int = 1, ncols: int = 1,
            mosaic=None, **kw):
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # the Agg backend, explicitly, for this figure only
    if mosaic is not None:
        return fig, fig.subplot_mosaic(mosaic, **kw)
    return fig, fig.subplots(nrows, ncols, squeeze=True, **kw)


def _compact_axis(ax, axis: str = "y", integer: bool = False) -> None:
    target = ax.yaxis if axis == "y" else ax.xaxis
    if integer:  # counts: no 0.5 ticks
        target.set_major_locator(MaxNLocator(nbins="auto", integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _: fmt_compact(v)))


def _date_axis(ax) -> None:
    """Dates as '1 Mar' / '1 mar' in the active language (Babel; matplotlib's own names would
    follow the process locale)."""
    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    language = i18n.current()
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda v, _pos: language.day_month(mdates.num2date(v).date())))


def _localise_ticks(fig) -> None:
    """Plain numeric ticks (matplotlib's ScalarFormatter: '0.2') with the active language's
    decimal sign ('0,2'); axes with their own formatter (compact numbers, dates) keep it."""
    decimal = i18n.current().locale.number_symbols["latn"]["decimal"]
    if decimal == ".":
        return
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(axis.get_major_formatter(), ScalarFormatter):
                axis.set_major_formatter(FuncFormatter(
                    lambda v, _pos: f"{v:g}".replace(".", decimal)))


def chart(chart_id: str, caption: str, draw, width=9.0, height=3.2, size="wide", **kw) -> Chart:
    """Make a figure, let ``draw(fig, axes)`` fill it under the report style, return a Chart
    (``size``: "wide" spans the page, "half" sits beside another half-width block)."""
    with matplotlib.rc_context(STYLE):
        fig, axes = _figure(width, height, **kw)
        draw(fig, axes)
        _localise_ticks(fig)
        fig.tight_layout()
        return Chart(chart_id, caption, to_svg(fig, chart_id), size=size)


def daily_overview(chart_id: str, caption: str, daily: pd.DataFrame,
                   panels: Sequence[tuple[str, str, bool]]) -> Chart:
    """Small multiples: one panel per (column, title, is_count), each day and a 7-day mean."""
    ncols = 3
    nrows = -(-len(panels) // ncols)

    def draw(fig, axes):
        flat = np.atleast_1d(axes).ravel()
        for ax, (col, title, is_count) in zip(flat, panels):
            s = daily[col]
            ax.plot(s.index, s.to_numpy(), color=DAY_LINE, lw=1.0)
            ax.plot(s.index, s.rolling(7, min_periods=1).mean().to_numpy(), color=NAVY, lw=2)
            ax.set_title(title)
            _date_axis(ax)
            ax.set_ylim(bottom=0)
            _compact_axis(ax, integer=is_count)
        for ax in flat[len(panels):]:
            ax.set_visible(False)

    return chart(chart_id, caption, draw, 10.0, 2.5 * nrows, nrows=nrows, ncols=ncols)


def decomposition(chart_id: str, caption: str, parts: pd.DataFrame, label: str,
                  z_threshold: float = 3.5) -> Chart:
    """Observed with trend and anomalies (top); average weekday effect and the residual's
    robust z-score (bottom)."""
    weekday = parts["seasonal"].groupby(parts.index.dayofweek).mean()
    names = i18n.current().weekdays()
    anomalies = parts[parts["anomaly"]]

    def draw(fig, axes):
        ax1, ax2, ax3 = axes["obs"], axes["week"], axes["resid"]
        ax1.plot(parts.index, parts["observed"], color=DAY_LINE, lw=1.2, label=_("actual"))
        ax1.plot(parts.index, parts["trend"], color=NAVY, lw=2.2, label=_("trend"))
        ax1.scatter(anomalies.index, anomalies["observed"], color=RED, s=36, zorder=3,
                    label=_("anomaly"))
        ax1.set_title(_("{series}: actual and trend").format(series=label))
        ax1.legend(loc="lower right", bbox_to_anchor=(1, 0.98), ncols=3)
        ax1.set_ylim(bottom=0)
        _date_axis(ax1)
        _compact_axis(ax1)
        colors = [TEAL if v >= 0 else AMBER for v in weekday.to_numpy()]
        ax2.bar([names[i] for i in weekday.index], weekday.to_numpy(), color=colors, width=0.7)
        ax2.axhline(0, color="#666666", lw=0.8)
        ax2.set_title(_("Weekday effect (vs trend)"))
        ax2.grid(axis="x", visible=False)
        _compact_axis(ax2)
        ax3.axhspan(-z_threshold, z_threshold, color=LIGHT, alpha=0.7, lw=0)
        ax3.plot(parts.index, parts["z"], color=GREY, lw=1)
        ax3.scatter(anomalies.index, anomalies["z"], color=RED, s=30, zorder=3)
        ax3.set_title(_("Residual, robust z (shaded: within ±{z})").format(
            z=i18n.current().number(z_threshold, 1)))
        _date_axis(ax3)

    return chart(chart_id, caption, draw, 10.0, 5.2, mosaic=[["obs", "obs"], ["week", "resid"]],
                 gridspec_kw={"width_ratios": [1, 1.6], "height_ratios": [1.25, 1]})


def forecast(chart_id: str, caption: str, history: pd.Series, fc: pd.DataFrame,
             anomalies: Sequence, label: str, show_days: int = 120,
             value_fmt=fmt_compact) -> Chart:
    """Recent history, the forecast mean and its prediction interval, anomalies marked.

    The y axis is scaled to the ordinary days and the forecast: an anomaly above it is drawn
    at the top edge with its value written next to it, so one spike does not flatten the rest.
    """
    recent = history.iloc[-show_days:]
    marked = [d for d in anomalies if d in recent.index]
    ordinary = recent.drop(index=marked)
    top = 1.15 * max(float(ordinary.max()) if len(ordinary) else 0.0,
                     float(fc["upper"].max()), 1e-9)

    def draw(fig, ax):
        ax.plot(recent.index, recent.clip(upper=top).to_numpy(), color=NAVY, lw=1.4,
                label=_("actual"))
        ax.fill_between(fc.index, fc["lower"], fc["upper"], color=TEAL, alpha=0.18, lw=0,
                        label=_("prediction interval"))
        ax.plot(fc.index, fc["mean"], color=TEAL, lw=2, ls="--", label=_("forecast"))
        if marked:
            values = recent.loc[marked]
            ax.scatter(marked, values.clip(upper=top).to_numpy(), color=RED, s=40, zorder=3,
                       clip_on=False, label=_("anomaly"))
            off = values[values > top]
            if len(off):  # one note for all: several would overlap
                more = (_("{n} days off scale, up to {value}") if len(off) > 1
                        else _("off scale: {value}"))
                ax.annotate(more.format(n=len(off), value=value_fmt(off.max())),
                            (off.idxmax(), top), xytext=(6, -4),
                            textcoords="offset points", fontsize=8, color=RED, va="top")
        ax.axvline(history.index[-1], color="#999999", lw=0.8, ls=":")
        ax.set_ylim(0, top)
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=4)
        _date_axis(ax)
        _compact_axis(ax)

    return chart(chart_id, caption, draw, 10.0, 3.2)


def pr_curves(chart_id: str, caption: str, curves: dict[str, pd.DataFrame],
              base_rate: float | None) -> Chart:
    """Precision against recall, one line per model variant; the base rate as a reference."""
    def draw(fig, ax):
        for i, (name, pr) in enumerate(curves.items()):
            pr = pr.dropna(subset=["precision", "recall"]).sort_values("recall")
            ax.plot(pr["recall"], pr["precision"], lw=2, color=PALETTE[i % len(PALETTE)],
                    label=name, marker="o" if len(pr) < 15 else None, ms=4, clip_on=False)
        if base_rate is not None:
            share = i18n.current().percent(base_rate, 1 if base_rate < 0.1 else 0)
            ax.axhline(base_rate, color=GREY, ls=":", lw=1,
                       label=_("random ({share})").format(share=share))
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel=_("recall (share of real cases found)"),
               ylabel=_("precision (share of flags that are right)"))
        ax.legend(loc="lower left")

    return chart(chart_id, caption, draw, 4.8, 3.6, size="half")


def search_convergence(chart_id: str, caption: str,
                       searches: dict[str, tuple[list[float], list[float]]],
                       ylabel: str) -> Chart:
    """Hyperparameter searches: each trial's validation score (dots) and the best so far
    (a step line), one colour per searched model."""
    def draw(fig, ax):
        for i, (name, (scores, best)) in enumerate(searches.items()):
            trials = np.arange(1, len(scores) + 1)
            color = PALETTE[i % len(PALETTE)]
            ax.plot(trials, scores, "o", color=color, ms=4, alpha=0.6)
            ax.step(trials, best, where="post", color=color, lw=2,
                    label=_("{model}: best so far").format(model=name))
        ax.set(xlabel=_("trial"), ylabel=ylabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="best")

    return chart(chart_id, caption, draw, 4.8, 3.2, size="half")


def calibration(chart_id: str, caption: str, tables: dict[str, pd.DataFrame]) -> Chart:
    """Observed rate against mean predicted probability per bin; the diagonal is perfect."""
    def draw(fig, ax):
        ax.plot([0, 1], [0, 1], color=GREY, ls=":", lw=1, label=_("perfectly calibrated"))
        for i, (name, t) in enumerate(tables.items()):
            t = t.dropna(subset=["mean_predicted", "observed_rate"])
            ax.plot(t["mean_predicted"], t["observed_rate"], marker="o", ms=4, lw=1.8,
                    color=PALETTE[i % len(PALETTE)], label=name, clip_on=False)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=_("predicted probability"),
               ylabel=_("observed rate"))
        ax.legend(loc="upper left")

    return chart(chart_id, caption, draw, 4.8, 3.6, size="half")


def grouped_bars(chart_id: str, caption: str, groups: Sequence[str],
                 series: dict[str, Sequence[float]], ylabel: str = "") -> Chart:
    """Vertical bars: one group per label, one bar per series, values printed on top."""
    def draw(fig, ax):
        x = np.arange(len(groups))
        width = 0.8 / max(len(series), 1)
        for i, (name, values) in enumerate(series.items()):
            bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width * 0.92,
                          label=name, color=PALETTE[i % len(PALETTE)])
            ax.bar_label(bars, labels=[fmt_compact(v) for v in values], fontsize=8, padding=2)
        ax.set_xticks(x, groups)
        ax.set_ylabel(ylabel)
        ax.margins(y=0.18)
        ax.grid(axis="x", visible=False)
        ax.legend(loc="lower right", bbox_to_anchor=(1, 1.0), ncols=len(series))
        _compact_axis(ax)

    return chart(chart_id, caption, draw, 5.0, 3.4, size="half")


def hbars(chart_id: str, caption: str, labels: Sequence[str], values: Sequence[float],
          xlabel: str = "", color: str = NAVY, value_fmt=fmt_compact, height=None,
          integer: bool = True) -> Chart:
    """Horizontal bars in the given order (first on top), value labels at the bar ends."""
    def draw(fig, ax):
        y = np.arange(len(labels))[::-1]
        bars = ax.barh(y, values, color=color, height=0.65)
        ax.bar_label(bars, labels=[value_fmt(v) for v in values], fontsize=8, padding=3)
        ax.set_yticks(y, labels)
        ax.set_xlabel(xlabel)
        ax.margins(x=0.12)
        ax.grid(axis="y", visible=False)
        _compact_axis(ax, "x", integer=integer)

    return chart(chart_id, caption, draw, 5.2, height or max(1.8, 0.3 * len(labels) + 0.9),
                 size="half")


def tier_panels(chart_id: str, caption: str, panels: dict[str, list[tuple[str, float]]]) -> Chart:
    """One small horizontal bar chart per tier family (churn, intent, CLV)."""
    colors = [RED, TEAL, AMBER, NAVY]

    def draw(fig, axes):
        for i, (ax, (title, pairs)) in enumerate(zip(np.atleast_1d(axes), panels.items())):
            labels = [str(p[0]).replace("_", " ") for p in pairs]
            y = np.arange(len(pairs))[::-1]
            bars = ax.barh(y, [p[1] for p in pairs], color=colors[i % len(colors)], height=0.6)
            ax.bar_label(bars, labels=[fmt_compact(p[1]) for p in pairs], fontsize=8, padding=3)
            ax.set_yticks(y, labels)
            ax.set_title(title)
            ax.margins(x=0.2)
            ax.grid(axis="y", visible=False)
            _compact_axis(ax, "x", integer=True)

    return chart(chart_id, caption, draw, 11.0, 2.6, nrows=1, ncols=max(len(panels), 1))


def stacked_hbars(chart_id: str, caption: str, frame: pd.DataFrame, xlabel: str = "") -> Chart:
    """Rows = bars, columns = stacked parts (e.g. source x quarantine reason)."""
    def draw(fig, ax):
        y = np.arange(len(frame.index))[::-1]
        left = np.zeros(len(frame.index))
        for i, col in enumerate(frame.columns):
            vals = frame[col].to_numpy(dtype=float)
            ax.barh(y, vals, left=left, color=PALETTE[i % len(PALETTE)], height=0.6,
                    label=str(col))
            left += vals
        for yy, total in zip(y, left):
            ax.text(total, yy, " " + fmt_compact(total), va="center", fontsize=8)
        ax.set_yticks(y, [str(i) for i in frame.index])
        ax.set_xlabel(xlabel)
        ax.margins(x=0.08)
        ax.grid(axis="y", visible=False)
        _compact_axis(ax, "x", integer=True)
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=min(4, len(frame.columns)),
                  fontsize=8)

    return chart(chart_id, caption, draw, 10.0, max(2.2, 0.36 * len(frame.index) + 1.6))
