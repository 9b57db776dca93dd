"""Ingest throughput at two data sizes, and its ratio to a raw JSON/CSV -> Parquet copy.

The raw copy (Spark reads each source's files and writes Parquet, no validation, no dedupe,
no Delta commit) is the floor of what ingest can cost on this machine; the ratio is measured
side by side in one run, so machine noise affects both.

    .venv/bin/python bench/ingest.py                      # 1000 and 4000 users x 30 days
    .venv/bin/python bench/ingest.py --users 2000,20000 --days 60 --dirty-rate 0.02
    .venv/bin/python bench/ingest.py --landing /data/landing-20000 --landing /data/landing-100000

``--landing`` ingests landing folders already generated (``mktpipe generate --out DIR``; the
2 M and 11 M-row sizes are 20,000 and 100,000 users x 120 days) instead of generating. The
store is the one the default config picks (delta-spark where its jars are present, else
delta-rs); ``--backend`` forces one. Spark runs with the default config (local[2], 2 GiB).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mktpipe.config import load_config
from mktpipe.generate import generate
from mktpipe.ingest import landing
from mktpipe.ingest.stage import run_ingest_dates
from mktpipe.schemas import SOURCES
from mktpipe.session import get_spark
from mktpipe.storage import open_store


def raw_copy(spark, landing_dir: Path, dates, out: Path) -> int:
    """Spark reads every source's files as JSON/CSV and writes Parquet; returns rows."""
    rows = 0
    for source in SOURCES:
        files = [str(f) for d in dates for f in landing.landing_files(landing_dir, source, d)]
        if not files:
            continue
        if landing.file_format(source) == "csv":
            df = spark.read.option("header", True).csv(files)
        else:
            df = spark.read.json(files)
        df.write.mode("overwrite").parquet(str(out / source))
        rows += spark.read.parquet(str(out / source)).count()
    return rows


def measure(spark, config, root: Path, label: str, landing_dir: Path) -> dict:
    dates = landing.landing_dates(landing_dir)
    cfg = config.model_copy(deep=True)
    cfg.paths.landing = str(landing_dir)
    cfg.paths.warehouse = str(root / f"wh-{label}")
    store = open_store(spark, cfg)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)

    started = time.perf_counter()
    result = run_ingest_dates(spark, cfg, dates, store=store, now=now)
    ingest_s = time.perf_counter() - started

    started = time.perf_counter()
    copied = raw_copy(spark, landing_dir, dates, root / f"copy-{label}")
    copy_s = time.perf_counter() - started
    return {
        "label": label, "days": len(dates), "rows": result.rows_in, "written": result.rows_out,
        "quarantined": result.rows_quarantined, "dupes": result.rows_deduplicated,
        "ingest_s": ingest_s, "copy_s": copy_s, "copy_rows": copied, "backend": store.backend,
        "per_source": {s: result.details[s].get("elapsed_s") for s in SOURCES
                       if s in result.details},
        "phases": {s: result.details[s].get("phase_s", {}) for s in SOURCES
                   if s in result.details},
    }


def generated(root: Path, users: int, days: int, dirty: float) -> Path:
    out = root / f"landing-{users}"
    generate(out=out, users=users, days=days, seed=7, start_date=dt.date(2026, 1, 1),
             dirty_rate=dirty)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="1000,4000", help="two (or more) sizes, comma-separated")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--dirty-rate", type=float, default=0.02)
    parser.add_argument("--landing", action="append", type=Path, default=[],
                        help="an already generated landing folder (repeatable; skips --users)")
    parser.add_argument("--backend", choices=("auto", "delta-rs", "delta-spark"), default=None,
                        help="storage backend (default: the config's, auto)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    overrides = {"storage": {"backend": args.backend}} if args.backend else None
    config = load_config("local", overrides=overrides)
    spark = get_spark(config)
    root = Path(tempfile.mkdtemp(prefix="mktpipe-bench-ingest-"))
    try:
        measure(spark, config, root, "warm-up", generated(root, 200, 3, args.dirty_rate))
        if args.landing:
            sizes = [(p.name, p) for p in args.landing]
        else:
            sizes = [(u, generated(root, int(u), args.days, args.dirty_rate))
                     for u in args.users.split(",")]
        results = [measure(spark, config, root, label, path) for label, path in sizes]
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"\ningest benchmark: dirty rate {args.dirty_rate}, master {config.spark.master}, "
          f"driver memory {config.spark.driver_memory}, store {results[0]['backend']}")
    print(f"{'data':>16}{'days':>6}{'rows read':>12}{'ingest s':>10}{'rows/s':>10}"
          f"{'copy s':>9}{'copy rows/s':>13}{'copy/ingest':>13}")
    for r in results:
        print(f"{r['label']:>16}{r['days']:>6}{r['rows']:>12}{r['ingest_s']:>10.1f}"
              f"{r['rows'] / r['ingest_s']:>10.0f}{r['copy_s']:>9.1f}"
              f"{r['copy_rows'] / r['copy_s']:>13.0f}{r['copy_s'] / r['ingest_s']:>13.2f}")
    print("\ncopy/ingest: ingest throughput as a share of the floor's (target >= 0.5)")
    for r in results:
        parts = ", ".join(f"{k} {v:.0f}s" for k, v in r["per_source"].items() if v)
        print(f"  {r['label']}: {parts}")
        for source, phases in r["phases"].items():
            if phases:
                print(f"    {source:<9}" + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()))
    if len(results) >= 2:
        a, b = results[0], results[-1]
        growth = (b["ingest_s"] / a["ingest_s"]) / (b["rows"] / a["rows"])
        print(f"\ncost per row, largest vs smallest size: {growth:.2f}x "
              f"(1.0 = linear; < 1 = fixed costs amortised)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
