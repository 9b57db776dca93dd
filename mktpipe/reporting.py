"""Plain-text summaries the CLI prints (the HTML report lives in mktpipe.report)."""

from __future__ import annotations

from mktpipe.catalog import CUSTOMER_SEGMENTS
from mktpipe.quality.manifest import RunManifest


def ingest_totals(manifest: RunManifest) -> dict[str, dict]:
    """Per source totals over every date of an ingest run."""
    totals: dict[str, dict] = {}
    for stage in manifest.stages:
        for source, counts in stage.details.items():
            if not isinstance(counts, dict) or "read" not in counts:
                continue
            t = totals.setdefault(source, {"read": 0, "written": 0, "quarantined": 0,
                                           "duplicates": 0, "reasons": {}, "balanced": True})
            t["read"] += counts["read"]
            t["written"] += counts["written"]
            t["quarantined"] += counts["quarantined"]
            t["duplicates"] += counts["duplicates_in_batch"] + counts["duplicates_existing"]
            t["balanced"] &= counts.get("balanced", True)
            for reason, n in counts["quarantine_reasons"].items():
                t["reasons"][reason] = t["reasons"].get(reason, 0) + n
    return totals


def print_ingest_summary(manifest: RunManifest) -> None:
    totals = ingest_totals(manifest)
    dates = [d for s in manifest.stages for d in s.details.get("dates", [s.run_date])]
    span = f"{dates[0]} .. {dates[-1]}" if len(dates) > 1 else (dates[0] if dates else "-")
    print(f"\ningest {span} ({len(dates)} date(s)), run {manifest.run_id}")
    print(f"{'source':<10}{'read':>10}{'written':>10}{'quarant.':>10}{'dupes':>8}  balance")
    for source, t in totals.items():
        ok = "ok" if t["balanced"] and t["read"] == (
            t["written"] + t["quarantined"] + t["duplicates"]) else "MISMATCH"
        print(f"{source:<10}{t['read']:>10}{t['written']:>10}{t['quarantined']:>10}"
              f"{t['duplicates']:>8}  {ok}")
    reasons: dict[str, dict[str, int]] = {}
    for source, t in totals.items():
        for reason, n in t["reasons"].items():
            reasons.setdefault(reason, {})[source] = n
    if reasons:
        print("\nquarantined, by reason:")
        for reason in sorted(reasons):
            parts = ", ".join(f"{s} {n}" for s, n in sorted(reasons[reason].items()))
            print(f"  {reason:<18} {sum(reasons[reason].values()):>7}  ({parts})")
    print(f"\nmanifest: {manifest.path}")


def print_run_summary(manifest: RunManifest, config) -> None:
    """The closing summary of `mktpipe run` / `backfill`: stages, and where the outputs are."""
    print(f"\n{manifest.command} {manifest.status}: run {manifest.run_id}")
    width = max([12, *(len(s.run_date) + 2 for s in manifest.stages)])
    print(f"{'stage':<10}{'date':<{width}}{'status':<9}{'rows out':>12}{'seconds':>9}")
    total = 0.0
    for s in manifest.stages:
        total += s.elapsed_s
        print(f"{s.stage:<10}{s.run_date:<{width}}{s.status:<9}{s.rows_out:>12,}"
              f"{s.elapsed_s:>9.1f}")
    print(f"{'total':<{19 + width}}{'':>12}{total:>9.1f}")
    outputs = {}
    for s in manifest.stages:
        if s.status != "ok":
            continue
        if s.stage == "score":
            version = s.tables_written.get(CUSTOMER_SEGMENTS)
            outputs["segments"] = (f"{CUSTOMER_SEGMENTS} v{version} (snapshot_date="
                                   f"{s.run_date}) in {config.uri('warehouse')}")
            paths = s.details.get("export", {}).get("paths", {})
            if paths:
                outputs["export"] = ", ".join(paths.values())
        if s.stage == "report" and s.details.get("path"):
            outputs["report"] = s.details["path"]
            made = s.details.get("outputs") or {}
            extra = [*made.get("html", []), *(f"pdf/{n}" for n in made.get("pdf", []))]
            if extra:
                outputs["audience"] = ", ".join(extra) + (
                    f"; {len(made.get('csv', []))} CSV tables" if made.get("csv") else "")
            for why in made.get("skipped", []):
                outputs["skipped"] = why
            delivery = s.details.get("delivery")
            if delivery:
                outputs["mailed"] = (f"{delivery['status']} to {', '.join(delivery['recipients'])}"
                                     f" ({delivery['attempts']} attempts)")
        if s.stage == "trends":
            alerts = s.details.get("alerts", [])
            outputs["trends"] = (f"{s.details.get('series')} series forecast; "
                                 f"{len(alerts)} alert(s)" + "".join(
                                     f"\n            [{a['severity']}] {a['message']}"
                                     for a in alerts[:5]))
        if s.stage == "train":
            models = s.details.get("models", {})
            outputs["models"] = (f"{config.uri('models')}: " + ", ".join(
                f"{name} v{m['version']}{'' if m['promoted'] else ' (not promoted)'}"
                for name, m in models.items()))
    if outputs:
        print("\noutputs:")
        for name, where in outputs.items():
            print(f"  {name:<9} {where}")
    print(f"  manifest  {manifest.path}")
