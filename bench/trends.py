"""The trends stage measured: backtest figures per model and series, and its time at two sizes.

    python bench/trends.py [--users 2000] [--days 120] [--cohorts 8] [--models ...]

Generates ``--users`` x ``--days`` of landing data, runs ingest and daily into a temporary
warehouse, then runs the trends stage (mktpipe.trends.stage.run_trends) for the day after the
last date twice:

1. the KPI totals only (5 series);
2. the totals plus every KPI per cohort: users split into ``--cohorts`` groups by a hash of
   their id, written as the ``segment`` column of gold.customer_segments (5 x (1 + cohorts)
   series), to see how the stage scales with the number of series (``applyInPandas``: one
   group per series, spread over the Spark cores).

Prints per run the series, the stage's seconds and seconds per series; per model the mean
MASE / sMAPE / MAPE / interval coverage over the series, its fit seconds and its wins; and the
backtest table of every total (the figures the README quotes). Then it times the same
tournaments in a plain loop in this process (no Spark) for the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import tempfile
import time

import pandas as pd
from pyspark.sql import functions as F

from mktpipe import schemas as S
from mktpipe.catalog import CUSTOMER_SEGMENTS, FORECAST_BACKTESTS, USER_DAILY
from mktpipe.config import FORECASTER_NAMES, load_config
from mktpipe.generate.core import generate
from mktpipe.pipeline import run_backfill
from mktpipe.session import get_spark
from mktpipe.stage import StageContext
from mktpipe.storage import open_store
from mktpipe.trends import series as T
from mktpipe.trends.stage import _as_series, run_trends, tournament_settings
from mktpipe.trends.tournament import run_tournament


def per_model(scores: pd.DataFrame) -> pd.DataFrame:
    ok = scores[scores["error"].isna()]
    table = ok.groupby("model").agg(series=("series_id", "nunique"), mase=("mase", "mean"),
                                    smape=("smape", "mean"), mape=("mape", "mean"),
                                    coverage=("coverage", "mean"), seconds=("seconds", "sum"),
                                    wins=("chosen", "sum"))
    return table.sort_values("mase")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--cohorts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--models", default=",".join(FORECASTER_NAMES))
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    root = tempfile.mkdtemp(prefix="mktpipe-bench-trends-")
    start = dt.date(2026, 6, 1)
    end = start + dt.timedelta(days=args.days - 1)
    snapshot = end + dt.timedelta(days=1)
    began = time.perf_counter()
    generate(f"{root}/landing", args.users, args.days, args.seed, start)
    print(f"generated {args.users} users x {args.days} days in "
          f"{time.perf_counter() - began:.1f} s")
    config = load_config(overrides={
        "spark": {"master": args.master, "ui_enabled": False},
        "paths": {"landing": f"{root}/landing", "truth": f"{root}/landing/_truth",
                  "warehouse": f"{root}/warehouse", "checkpoints": f"{root}/checkpoints"},
        "pipeline": {"stages": ["ingest", "daily"]},
        "trends": {"models": args.models.split(","), "segment_column": None}})
    spark = get_spark(config)
    began = time.perf_counter()
    run_backfill(spark, config, start, end)
    print(f"ingest + daily in {time.perf_counter() - began:.1f} s")
    store = open_store(spark, config)

    users = store.read(USER_DAILY).select(S.USER_ID).distinct()
    cohorts = users.select(S.USER_ID, F.lit(snapshot).alias(S.SNAPSHOT_DATE), F.concat(
        F.lit("cohort"), F.pmod(F.hash(S.USER_ID), F.lit(args.cohorts)).cast("string"))
        .alias("segment"), F.lit("passive").alias("churn_tier"))
    store.write(cohorts, CUSTOMER_SEGMENTS, mode="overwrite",
                partition_by=CUSTOMER_SEGMENTS.partitions)

    runs = [("totals", {"segment_column": None}),
            (f"totals + {args.cohorts} cohorts", {
                "segment_column": "segment", "segment_kpis": list(config.trends.kpis),
                "min_segment_active_users": 0.0})]
    for label, overrides in runs:
        cfg = config.model_copy(deep=True)
        for key, value in overrides.items():
            setattr(cfg.trends, key, value)
        ctx = StageContext.open(spark, cfg, store, f"bench-trends-{label}")
        began = time.perf_counter()
        result = run_trends(ctx, snapshot)
        seconds = time.perf_counter() - began
        n = result.details["series"]
        print(f"\n== {label}: {n} series in {seconds:.1f} s ({seconds / n:.2f} s a series, "
              f"{args.master}); alerts {len(result.details['alerts'])}")
        scores = (store.read(FORECAST_BACKTESTS)
                  .filter(F.col(S.SNAPSHOT_DATE) == F.lit(snapshot)).toPandas())
        print(per_model(scores).round(3).to_string())
    totals = scores[scores["segment"].isna()].sort_values(["series_id", "rank"])
    print("\nbacktests of the totals (means over the folds):")
    print(totals[["series_id", "model", "rank", "mase", "smape", "mape", "coverage", "seconds",
                  "error"]].round(3).to_string(index=False))

    # the same tournaments in a plain loop in this process, for the ratio
    series = T.total_series(T.window(store.read(USER_DAILY), snapshot,
                                     config.trends.history_days), list(config.trends.kpis))
    frames = {sid: g for sid, g in series.toPandas().groupby(T.SERIES_ID)}  # 5 x days rows
    settings = tournament_settings(config)
    began = time.perf_counter()
    for pdf in frames.values():
        run_tournament(_as_series(pdf, end), settings)
    loop = time.perf_counter() - began
    print(f"\nthe {len(frames)} totals' tournaments in a loop in the driver: {loop:.1f} s "
          f"({loop / len(frames):.2f} s a series)")


if __name__ == "__main__":
    main()
