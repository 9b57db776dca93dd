"""The report stage: one self-contained HTML file per snapshot.

``run_report`` writes ``<paths.reports>/<YYYY-MM-DD>/index.html`` with eight sections: alerts,
executive KPIs, daily trends (STL decomposition, anomalies, the 30-day forecast of the
tournament's winner), the forecast tournament and trend diagnostics (gold tables of the trends
stage), model quality, customer segments, influencers and communities, data quality. Charts are
inline SVG, CSS is inline, nothing is fetched from the network. Every aggregate is computed in
Spark; only small results (a row per day, per segment, per reason, a top-N list) come to the
driver.

A section whose inputs are missing says so ("Not available: ...") instead of failing; a section
that fails unexpectedly is replaced by an error note, logged with its traceback and listed in
``details["errors"]``, so one bad input never costs the whole report. Re-running replaces the
file whole through the file door (mktpipe.storage.files). With ``delivery.enabled`` the
report then goes to ``delivery.recipients`` by SMTP (mktpipe.report.delivery: retried, never
fails the stage; the outcome is ``details["delivery"]``).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from importlib import resources
from pathlib import Path

from mktpipe import __version__, i18n
from mktpipe.config import Config
from mktpipe.i18n import N_, _
from mktpipe.quality.manifest import StageResult
from mktpipe.report import activity, audience, data_quality, forecasts, model_quality
from mktpipe.report.blocks import Section
from mktpipe.report.context import ReportContext
from mktpipe.report.outputs import write_outputs
from mktpipe.stage import StageContext, stage
from mktpipe.storage import files as storage_files

log = logging.getLogger(__name__)

REPORT_FILE = "index.html"
SECTION_IDS = ("alerts", "kpis", "trends", "forecasts", "models", "segments", "influencers",
               "quality")


def as_date(value: dt.date | str) -> dt.date:
    """A ``datetime.date`` from a date or an ISO string (a datetime keeps its date)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"report: snapshot_date {value!r} is not a date; use YYYY-MM-DD") \
            from None


def build_sections(ctx: ReportContext) -> tuple[list[Section], dict[str, str]]:
    """Every section in report order, and {section id: error} for those that failed."""
    daily = functools.cache(lambda: activity.load_daily(ctx))  # shared by KPIs and trends
    builders = (
        ("alerts", _("Alerts"), lambda: forecasts.alerts_section(ctx)),
        ("kpis", _("Executive summary"), lambda: activity.kpi_section(ctx, daily())),
        ("trends", _("Daily trends"), lambda: activity.trends_section(ctx, daily())),
        ("forecasts", _("Forecast tournament and trend diagnostics"),
         lambda: forecasts.tournament_section(ctx)),
        ("models", _("Model quality"), lambda: model_quality.model_section(ctx)),
        ("segments", _("Customer segments"), lambda: audience.segments_section(ctx)),
        ("influencers", _("Influencers and communities"),
         lambda: audience.influencers_section(ctx)),
        ("quality", _("Data quality"), lambda: data_quality.quality_section(ctx)),
    )
    sections, errors = [], {}
    for section_id, title, build in builders:
        started = time.monotonic()
        try:
            sections.append(build())
            log.info("report %s: section %s in %.1fs", ctx.snapshot, section_id,
                     time.monotonic() - started)
        except Exception as exc:  # one broken input must not cost the whole report
            log.exception("report %s: section %s failed", ctx.snapshot, section_id)
            errors[section_id] = f"{type(exc).__name__}: {exc}"
            sections.append(Section(section_id, title, missing=_(
                "This section could not be built ({error}). The run log has the details.")
                .format(error=f"{type(exc).__name__}: {exc}")))
    return sections, errors


TITLE = N_("Marketing analytics report")


def render_html(sections: list[Section], ctx: ReportContext, generated_at: str,
                title: str | None = None, audience: str = "full",
                audience_note: str = "") -> str:
    """The report page: ``template.html`` with ``report.css`` inlined, in the active
    language (``title`` None: the full report's)."""
    files = resources.files("mktpipe.report")
    template = i18n.jinja_environment().from_string(
        files.joinpath("template.html").read_text(encoding="utf-8"))
    language = i18n.current()
    return template.render(
        title=title or _(TITLE), audience=audience, audience_note=audience_note,
        sections=sections, lang=language.code,
        snapshot=language.date(ctx.snapshot), data_end=language.date(ctx.data_end),
        snapshot_iso=ctx.snapshot.isoformat(),
        generated_at=generated_at, run_id=ctx.run_id, version=__version__,
        backend=ctx.store.backend, tables_read=dict(sorted(ctx.tables_read.items())),
        models_read=dict(sorted(ctx.models_read.items())),
        css=files.joinpath("report.css").read_text(encoding="utf-8"),
    )


def write_atomic(path: str | Path, text: str) -> str:
    """Write ``text`` to ``path`` whole (the file door: temp file + rename locally, one PUT on
    object storage); returns the path as a string."""
    return storage_files.write_text(path, text)


def report_path(config: Config, snapshot: dt.date) -> str:
    """``<paths.reports>/<YYYY-MM-DD>/index.html`` (a local path or a URI)."""
    return storage_files.join(config.uri("reports"), snapshot.isoformat(), REPORT_FILE)


@stage("report")
def run_report(ctx: StageContext, snapshot_date: dt.date | str) -> StageResult:
    """Write the HTML report for ``snapshot_date`` (a date or 'YYYY-MM-DD').

    Returns a StageResult whose details hold ``path``, ``charts`` (how many), ``sections``
    (ids in order), ``missing`` (sections without data), ``errors`` (sections that failed),
    ``anomalies`` / ``forecast_points`` per analysed series and the KPI values.
    """
    snapshot = as_date(snapshot_date)
    result = ctx.begin(snapshot)
    report = ReportContext(ctx.spark, ctx.config, ctx.store, snapshot, ctx.run_id)
    sections, errors = build_sections(report)
    now = ctx.now()
    generated = f"{i18n.current().date(now)} {now:%H:%M} UTC"
    html = render_html(sections, report, generated)
    path = write_atomic(report_path(ctx.config, snapshot), html)
    folder = storage_files.parent(report_path(ctx.config, snapshot))
    outputs = write_outputs(ctx.config, sections, html, folder,
                            lambda part, title, audience, note: render_html(
                                part, report, generated, title, audience, note))
    charts = sum(len(s.charts) for s in sections)
    result.tables_read = dict(sorted(report.tables_read.items()))
    result.details.update({
        "path": str(path), "charts": charts, "sections": [s.id for s in sections],
        "missing": [s.id for s in sections if s.missing], "errors": errors,
        "models_read": dict(report.models_read), "bytes": len(html.encode("utf-8")),
        "outputs": outputs,
        **report.details,
    })
    if ctx.config.delivery.enabled:  # never raises: mail must not fail the pipeline
        from mktpipe.report.delivery import deliver

        pdfs = {name: storage_files.read_bytes(storage_files.join(folder, "pdf", name))
                for name in outputs["pdf"]}
        result.details["delivery"] = deliver(ctx.config, snapshot.isoformat(), html,
                                             report.alerts, pdfs=pdfs).as_dict()
    if errors:  # the report exists; the failed sections say so inside it
        log.warning("report %s: sections failed: %s", snapshot, errors)
    return ctx.finish(result, "%s, %d charts", path, charts)
