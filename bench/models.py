"""Training time and scoring throughput of the ML models on a synthetic feature table.

    python bench/models.py [--sizes 20000,80000] [--master local[2]] [--xgb-workers 2]
                           [--score-rows 320000]

Builds, per size, a feature table of ``--sizes`` rows x 40 features (28 numeric with 5% nulls,
6 booleans, 6 string categoricals of 3 to 30 values) over two snapshots, with planted churn,
purchase and spend labels, caches it, and times:

* fit of each model (default settings but ``num_workers``), **including** the time-based
  validation and its metrics: xgb (churn, XGBoost only), lr (churn, logistic regression only),
  rf (churn, random forest only), mlp (churn, neural network only), ensemble4 (churn, all four
  with select: best),
  intent (XGBoost), clv_ml (XGBoost regressor), segmentation (10 behaviour features, k-means,
  bisecting k-means and Gaussian mixture each over k 3..8; search seconds per algorithm);
* with ``--only search_grid,search_random,search_tpe``: the churn XGBoost tuned by each search
  method (the grid's 8 points; 8 random / TPE trials over ranges around them), printing the
  search's trials, seconds and best score, and the validation AP of the chosen model;
* scoring throughput: ``predict`` of each fitted model on ``--score-rows`` rows (the table
  repeated) written to Spark's ``noop`` sink, best of two passes.

A warm-up fit on 2,000 rows first starts the JVM code paths and Python workers. Prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import tempfile
import time

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from mktpipe.config import load_config
from mktpipe.models import churn, clv_ml, intent, segmentation
from mktpipe.session import get_spark

N_NUMERIC, N_BOOL, N_CAT = 28, 6, 6
BEHAVIOUR = [f"num_{i:02d}" for i in range(10)]


def synthetic_features(spark: SparkSession, rows: int, folder: str, seed: int = 7) -> DataFrame:
    """``rows`` users x 40 features over two snapshots, with churned, bought_7d, spend_90d,
    written to Parquet in ``folder`` and read from there, as the train stage reads
    gold.user_features (a DataFrame made from pandas keeps its rows in the plan, which every
    query over it copies and compares while planning: a cost the models do not have)."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {"user_id": np.arange(rows, dtype=np.int64)}
    data["snapshot_date"] = np.where(np.arange(rows) < rows * 0.75, dt.date(2026, 9, 1),
                                     dt.date(2026, 10, 1))
    for i in range(N_NUMERIC):  # half heavy-tailed counts, half normal
        col = rng.lognormal(1.0, 1.0, rows) if i % 2 == 0 else rng.normal(0, 1, rows)
        col[rng.random(rows) < 0.05] = np.nan
        data[f"num_{i:02d}"] = col
    for i in range(N_BOOL):
        data[f"flag_{i}"] = rng.random(rows) < 0.3
    for i in range(N_CAT):
        levels = [f"v{j}" for j in range(3 + 5 * i)]
        data[f"cat_{i}"] = rng.choice(levels, rows)
    x = {k: np.nan_to_num(v) for k, v in data.items() if k.startswith("num_")}
    logit = (-1.0 - 0.4 * np.log1p(x["num_00"]) + 0.8 * x["num_01"] - 0.5 * x["num_03"]
             + 0.6 * data["flag_0"] + 0.7 * (data["cat_0"] == "v0"))
    data["churned"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int32)
    logit_buy = -2.5 + 0.5 * np.log1p(x["num_02"]) + 0.7 * x["num_05"]
    data["bought_7d"] = (rng.random(rows) < 1 / (1 + np.exp(-logit_buy))).astype(np.int32)
    data["spend_90d"] = np.maximum(0.0, 20 * np.log1p(x["num_04"]) + 10 * x["num_07"]
                                   + rng.normal(0, 10, rows))
    path = os.path.join(folder, f"features-{rows}-{seed}.parquet")
    pd.DataFrame(data).to_parquet(path, index=False)
    return spark.read.parquet(path)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _throughput(model, df: DataFrame, rows: int, repeat: int = 2) -> float:
    best = min(_timed(lambda: model.predict(df).write.format("noop").mode("overwrite").save())[1]
               for _ in range(repeat))
    return rows / best


# the same space for each search method: the grid's 8 points, and ranges around them for
# random and TPE (8 trials each, so the three cost about the same)
SEARCH_GRID = {"max_depth": [3, 5], "learning_rate": [0.05, 0.2], "n_estimators": [60, 120]}
SEARCH_SPACE = {"max_depth": {"low": 2, "high": 7, "int": True},
                "learning_rate": {"low": 0.02, "high": 0.4, "log": True},
                "n_estimators": {"low": 40, "high": 160, "int": True}}


def _fitters(workers: int) -> dict:
    xgb = {"num_workers": workers}

    def searched(method: str):
        space = SEARCH_GRID if method == "grid" else SEARCH_SPACE
        return lambda df: churn.fit(df, "churned", tune=True, config={
            **xgb, "models": ("xgb",), "tuning": {"xgb": space}, "search": method,
            "search_trials": 8})

    return {
        **{f"search_{m}": searched(m) for m in ("grid", "random", "tpe")},
        "xgb": lambda df: churn.fit(df, "churned", config={**xgb, "models": ("xgb",)}),
        "lr": lambda df: churn.fit(df, "churned", config={"models": ("lr",)}),
        "rf": lambda df: churn.fit(df, "churned", config={"models": ("rf",)}),
        "mlp": lambda df: churn.fit(df, "churned", config={"models": ("mlp",)}),
        "ensemble4": lambda df: churn.fit(df, "churned", config={
            **xgb, "models": ("xgb", "lr", "rf", "mlp"), "select": "best"}),
        "intent": lambda df: intent.fit(df, "bought_7d", config=xgb),
        "clv_ml": lambda df: clv_ml.fit(df, "spend_90d", config=xgb),
        "segmentation": lambda df: segmentation.fit(df, BEHAVIOUR),
    }


def _features_only(df: DataFrame, name: str) -> DataFrame:
    labels = {"xgb": "churned", "lr": "churned", "rf": "churned", "mlp": "churned",
              "ensemble4": "churned", "intent": "bought_7d", "clv_ml": "spend_90d",
              **{f"search_{m}": "churned" for m in ("grid", "random", "tpe")}}
    keep = [c for c in ("churned", "bought_7d", "spend_90d") if c != labels.get(name)]
    return df.drop(*keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,80000")
    parser.add_argument("--master", default=None, help="Spark master (default: config's)")
    parser.add_argument("--xgb-workers", type=int, default=2)
    parser.add_argument("--score-rows", type=int, default=320_000)
    parser.add_argument("--only", default=None, help="comma-separated models to run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("XGBoost-PySpark").setLevel(logging.WARNING)

    overrides = {"spark": {"master": args.master}} if args.master else None
    spark = get_spark(load_config("local", overrides))
    fitters = _fitters(args.xgb_workers)
    names = args.only.split(",") if args.only else [n for n in fitters
                                                    if not n.startswith("search_")]
    scratch = tempfile.TemporaryDirectory(prefix="mktpipe-bench-models-")
    warm = synthetic_features(spark, 2000, scratch.name, seed=1).cache()
    # warm-up: code paths, Python workers, barrier tasks (a search warms up with one XGBoost)
    for name in dict.fromkeys("xgb" if n.startswith("search_") else n for n in names):
        fitters[name](_features_only(warm, name))
    warm.unpersist()

    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        table = synthetic_features(spark, size, scratch.name).cache()
        table.count()
        copies = max(1, args.score_rows // size)
        scoring = table.crossJoin(spark.range(copies).withColumnRenamed("id", "_copy")) \
            .drop("_copy").cache()
        n_score = scoring.count()
        for name in names:
            df = _features_only(table, name)
            model, seconds = _timed(lambda df=df, name=name: fitters[name](df))
            rate = _throughput(model, _features_only(scoring, name), n_score)
            primary = _primary(model, name)
            results.append((name, size, seconds, rate, primary))
            print(f"  {name:13s} rows={size:>7,d} fit={seconds:7.1f} s  "
                  f"score={rate:>10,.0f} rows/s  {primary}", flush=True)
        scoring.unpersist()
        table.unpersist()

    print(f"\nmaster={spark.sparkContext.master} spark={spark.version} "
          f"xgb_workers={args.xgb_workers} features=40 score_rows~{args.score_rows:,}")
    print(f"{'model':13s} {'rows':>8s} {'fit s':>8s} {'score rows/s':>13s}  validation")
    for name, size, seconds, rate, primary in results:
        print(f"{name:13s} {size:>8,d} {seconds:8.1f} {rate:13,.0f}  {primary}")
    spark.stop()
    scratch.cleanup()


def _primary(model, name: str) -> str:
    m = model.metrics
    if name.startswith("search_"):  # the churn XGBoost after its search
        run = m["search"]["xgb"]
        seconds = sum(r["seconds"] for r in run["results"])
        return (f"{run['method']}: {len(run['results'])} trials in {seconds:.1f} s, best "
                f"search PR AUC {max(r['metric'] for r in run['results']):.3f}; validation "
                f"AP={m['ensemble']['average_precision']:.3f} with {run['best_params']}")
    if name == "segmentation":  # search seconds per algorithm over the k range
        per = {}
        for r in m.get("comparison", []):
            per[r["algorithm"]] = per.get(r["algorithm"], 0.0) + r["seconds"]
        search = " ".join(f"{a}={sec:.1f}s" for a, sec in per.items())
        return (f"{m.get('algorithm', 'kmeans')} k={m['k']} silhouette={m['silhouette']:.3f} "
                f"CH={m.get('calinski_harabasz', float('nan')):.0f} "
                f"DB={m.get('davies_bouldin', float('nan')):.3f} search: {search}")
    if name == "clv_ml":
        return f"rmse={m['xgb']['rmse']:.2f} r2={m['xgb']['r2']:.3f}"
    e = m["ensemble"]
    line = f"AP={e['average_precision']:.3f} AUC={e['roc_auc']:.3f}"
    if name == "ensemble4":  # each member's AP and what is served
        members = " ".join(f"{k}={m[k]['average_precision']:.3f}"
                           for k in ("xgb", "lr", "rf", "mlp"))
        line += f" (ensemble); members {members}; serves {m['served']['model']}"
    return line


if __name__ == "__main__":
    main()
