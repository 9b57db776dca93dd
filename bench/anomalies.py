"""Anomaly detectors compared on the generator's planted bot-like users.

    python bench/anomalies.py [--users 2000] [--days 60] [--seed 7] [--methods zscore,...]

Generates ``--users`` x ``--days`` of landing data (the generator plants about 0.5 % of the
users as bots with labels in ``_truth/anomalies.csv``: a burst of 400 short views in an hour,
or more than 20 hours of watch time in a day), runs ingest and daily into a temporary
warehouse, then flags the users of ``silver.user_daily`` before the last day with each method
(robust z-scores, isolation forest, local outlier factor, and the vote of the three) and prints,
per method, the users flagged, precision and recall against the planted users, and seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import tempfile
import time

from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import USER_DAILY
from mktpipe.config import load_config
from mktpipe.generate.bots import read_truth
from mktpipe.generate.core import generate
from mktpipe.models import anomalies
from mktpipe.models.anomaly_stage import METRICS
from mktpipe.pipeline import run_backfill
from mktpipe.session import get_spark
from mktpipe.storage import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--methods", default="zscore,isolation_forest,lof,vote")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    root = tempfile.mkdtemp(prefix="mktpipe-bench-anomalies-")
    start = dt.date(2026, 6, 1)
    end = start + dt.timedelta(days=args.days - 1)
    began = time.perf_counter()
    generate(f"{root}/landing", args.users, args.days, args.seed, start)
    print(f"generated {args.users} users x {args.days} days in "
          f"{time.perf_counter() - began:.1f} s")
    config = load_config(overrides={
        "spark": {"master": args.master, "ui_enabled": False},
        "paths": {"landing": f"{root}/landing", "truth": f"{root}/landing/_truth",
                  "warehouse": f"{root}/warehouse", "checkpoints": f"{root}/checkpoints"},
        "pipeline": {"stages": ["ingest", "daily"]}})
    spark = get_spark(config)
    began = time.perf_counter()
    run_backfill(spark, config, start, end)
    print(f"ingest + daily in {time.perf_counter() - began:.1f} s")

    snapshot = end + dt.timedelta(days=1)
    first = snapshot - dt.timedelta(days=config.models.anomaly_lookback_days)
    daily = (open_store(spark, config).read(USER_DAILY)
             .filter((F.col(S.ACTIVITY_DATE) >= F.lit(first))
                     & (F.col(S.ACTIVITY_DATE) < F.lit(snapshot))).cache())
    planted = read_truth(config.uri("truth"))
    dates = planted["date"].map(dt.date.fromisoformat)
    window = set(planted.loc[(dates >= first) & (dates < snapshot), "user_id"])
    print(f"{daily.select(S.USER_ID).distinct().count()} users with activity, "
          f"{len(window)} planted ({dict(planted['kind'].value_counts())})")
    print(f"{'method':<18}{'flagged':>8}{'planted':>8}{'caught':>7}{'precision':>10}"
          f"{'recall':>8}{'seconds':>9}")
    settings = config.models.settings("anomalies")
    for method in args.methods.split(","):
        began = time.perf_counter()
        flags = anomalies.detect_anomalies(daily, metrics=list(METRICS), config=settings,
                                           method=method).cache()
        q = anomalies.detection_quality(flags, window)
        seconds = time.perf_counter() - began

        def pct(x):
            return "-" if x is None else f"{100 * x:.0f} %"

        print(f"{method:<18}{q['flagged']:>8}{q['planted']:>8}{q['true_positives']:>7}"
              f"{pct(q['precision']):>10}{pct(q['recall']):>8}{seconds:>9.1f}")
        caught = {r[0] for r in flags.filter("is_anomalous").select(S.USER_ID).collect()}
        missed = sorted(window - caught)
        if missed:
            kinds = dict(zip(planted.user_id, planted.kind))
            print(f"{'':<18}missed: " + ", ".join(f"{u} ({kinds[u]})" for u in missed))
        flags.unpersist()
    spark.stop()


if __name__ == "__main__":
    main()
