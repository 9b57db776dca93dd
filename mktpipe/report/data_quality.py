"""Section 6: data quality from the run manifests and the quarantine tables.

Run manifests (``<warehouse>/_runs/*.json``) give, per stage, the most recent result for a run
date on or before the snapshot (a run date may be a span ``a..b``: its last day counts).
Ingest results carry per-source counts; "balanced" re-checks read = written + quarantined +
deduplicated from those counts. Quarantined rows are counted per source and reason code from
the ``quarantine.<source>`` tables (``bronze.quarantine`` too, where a deployment has one).
"""

from __future__ import annotations

import logging

from mktpipe.catalog import LEGACY_QUARANTINE, QUARANTINE
from mktpipe.i18n import NP_, _, value_label
from mktpipe.quality.manifest import (  # noqa: F401  (last_day: its old home)
    is_balanced,
    last_day,
    latest_per_stage,
    load_manifests,
    stage_balance,
    stage_results,
)
from mktpipe.report import charts, queries
from mktpipe.report import formatting as fmt
from mktpipe.report.blocks import Section, Table, Text, not_available
from mktpipe.report.context import ReportContext

log = logging.getLogger(__name__)

QUARANTINE_TABLES = (*QUARANTINE.values(), LEGACY_QUARANTINE)
RECENT_INGESTS = 14
# stage names, sources and statuses as readers see them (mktpipe.i18n.value_label)
STAGE_NAMES = (NP_("stage", "ingest"), NP_("stage", "sentiment"), NP_("stage", "daily"),
               NP_("stage", "graph"), NP_("stage", "features"), NP_("stage", "anomalies"),
               NP_("stage", "labels"), NP_("stage", "train"), NP_("stage", "score"),
               NP_("stage", "trends"), NP_("stage", "report"), NP_("stage", "export"))
SOURCE_NAMES = (NP_("source", "users"), NP_("source", "videos"), NP_("source", "events"),
                NP_("source", "comments"), NP_("source", "orders"), NP_("source", "follows"))
STATUSES = (NP_("status", "ok"), NP_("status", "failed"), NP_("status", "skipped"))


def _stage_table(latest: dict[str, dict]) -> Table:
    rows = [[value_label("stage", stage), fmt.fmt_date(r.get("run_date", "")),
             value_label("status", r.get("status", "")), fmt.fmt_int(r.get(
        "rows_in")), fmt.fmt_int(r.get("rows_out")), fmt.fmt_int(r.get("rows_quarantined")),
             fmt.fmt_int(r.get("rows_deduplicated")), f"{fmt.fmt_num(r.get('elapsed_s'), 1)} s",
             str(r.get("run_id", ""))] for stage, r in latest.items()]
    return Table([_("stage"), _("run date"), _("status"), _("rows in"), _("rows out"),
                  _("quarantined"), _("deduplicated"), _("time"), _("run id")], rows,
                 id="stage-runs", title=_("Latest result per stage"), numeric={3, 4, 5, 6, 7})


def _balance_table(ingest: dict) -> Table | None:
    details = ingest.get("details") or {}
    sources = {k: v for k, v in details.items() if isinstance(v, dict) and "read" in v}
    if not sources:
        return None
    rows = []
    for source, c in sources.items():
        reasons = ", ".join(f"{k} {v}" for k, v in (c.get("quarantine_reasons") or {}).items())
        dups = int(c.get("duplicates_in_batch") or 0) + int(c.get("duplicates_existing") or 0)
        rows.append([value_label("source", source), fmt.fmt_int(c.get("read")),
                     fmt.fmt_int(c.get("written")), fmt.fmt_int(c.get("quarantined")),
                     fmt.fmt_int(dups), "✓" if is_balanced(c) else "✗ " + _("mismatch"),
                     reasons or "—"])
    return Table([_("source"), _("read"), _("written"), _("quarantined"), _("duplicates"),
                  _("balanced"), _("quarantine reasons")], rows, id="ingest-balance",
                 title=_("Ingest of {day}: every row accounted for").format(
                     day=fmt.fmt_date(ingest.get("run_date"))),
                 numeric={1, 2, 3, 4},
                 note=_("Balanced: rows read = written + quarantined + duplicates dropped."))


def _recent_ingests(results: list[dict]) -> Table | None:
    by_date: dict[str, dict] = {}
    for r in results:
        if r.get("stage") == "ingest":
            by_date[str(r.get("run_date"))] = r
    if not by_date:
        return None
    recent = sorted(by_date.items(), key=lambda kv: last_day(kv[0]))[-RECENT_INGESTS:]
    rows = []
    for day, r in reversed(recent):
        read, accounted = stage_balance(r)
        rows.append([fmt.fmt_date(day), value_label("status", r.get("status", "")),
                     fmt.fmt_int(read), fmt.fmt_int(r.get("rows_out")),
                     fmt.fmt_int(r.get("rows_quarantined")),
                     fmt.fmt_int(r.get("rows_deduplicated")),
                     "✓" if read == accounted else "✗ " + _("mismatch")])
    return Table([_("run date"), _("status"), _("read"), _("written"), _("quarantined"),
                  _("deduplicated"), _("balanced")], rows, id="recent-ingests",
                 title=_("Ingest runs by run date (latest first)"), numeric={2, 3, 4, 5})


def _failures(results: list[dict]) -> Table | None:
    failed = [r for r in results if r.get("status") == "failed"][-5:]
    if not failed:
        return None
    rows = [[value_label("stage", r.get("stage")), fmt.fmt_date(r.get("run_date")),
             str(r.get("run_id")), str(r.get("error") or "")[:200]] for r in reversed(failed)]
    return Table([_("stage"), _("run date"), _("run id"), _("error")], rows, id="failures",
                 title=_("Recent failures"))


def _quarantine_blocks(ctx: ReportContext) -> list:
    tables = [t for t in (ctx.table(name) for name in QUARANTINE_TABLES) if t is not None]
    if not tables:
        return [Text(_("No quarantine tables yet: ingest has not rejected any rows (or has "
                       "not run)."), "note")]
    counts = queries.quarantine_counts(tables, ctx.snapshot)
    ctx.details["quarantine"] = {f"{r.source}/{r.reason_code}": int(r.rows)
                                 for r in counts.itertuples()}
    if counts.empty:
        return [Text(_("No rows quarantined before {day}.").format(
            day=fmt.fmt_date(ctx.snapshot)), "note")]
    wide = counts.pivot_table(index="source", columns="reason_code", values="rows",
                              aggfunc="sum", fill_value=0)
    wide = wide.loc[wide.sum(axis=1).sort_values(ascending=False).index]
    wide = wide[wide.sum(axis=0).sort_values(ascending=False).index]
    rows = [[value_label("source", source), fmt.fmt_int(r.sum()),
             *[fmt.fmt_int(v) if v else "·" for v in r]] for source, r in wide.iterrows()]
    shown = wide.rename(index=lambda source: value_label("source", source))
    return [
        charts.stacked_hbars("quarantine", _("Quarantined rows per source, split by reason "
                                             "code (all landing dates before {day}).").format(
            day=fmt.fmt_date(ctx.snapshot)), shown, _("rows")),
        Table([_("source"), _("total"), *[str(c) for c in wide.columns]], rows, id="quarantine",
              numeric=set(range(1, len(wide.columns) + 2)),
              title=_("Quarantined rows by source and reason"),
              note=_("Reasons, in the order ingest checks them: see the README's ingest "
                     "rules.")),
    ]


def quality_section(ctx: ReportContext) -> Section:
    section = Section("quality", _("Data quality"), _(
        "What the pipeline runs did: rows in and out of each stage, rows rejected by validation "
        "(quarantined, with the reason) and duplicates dropped."))
    manifests = load_manifests(ctx.uri("warehouse"))
    results = stage_results(manifests, ctx.snapshot)
    if results:
        latest = latest_per_stage(results)
        section.add(_stage_table(latest))
        if "ingest" in latest:
            section.add(_balance_table(latest["ingest"]))
        section.add(_recent_ingests(results), _failures(results))
        ctx.details["stages"] = {s: r.get("status") for s, r in latest.items()}
    else:
        section.add(Text(not_available(_("no run manifests for run dates up to {day} under "
                                         "{path}").format(day=fmt.fmt_date(ctx.snapshot),
                                                          path=f"{ctx.uri('warehouse')}/_runs")),
                         "warning"))
    section.add(Text(_("Quarantine"), "subheading"), *_quarantine_blocks(ctx))
    return section
