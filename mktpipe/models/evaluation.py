"""Model evaluation metrics computed in Spark, exact and equal to scikit-learn's definitions.

Binary classification metrics start from one scan of the data: ``groupBy(score)`` with the
row and positive counts per distinct score. Everything else is computed from that aggregate,
which is cached for the few actions that follow and unpersisted after:

* ROC AUC is the Mann-Whitney statistic with tied scores counted one half (sklearn's
  ``roc_auc_score``); average precision is sklearn's step-wise ``average_precision_score``
  with tied scores forming one threshold. Both need, per distinct score, how many rows and
  positives score below it: a distributed prefix sum. Distinct scores are cut into ranges at
  approximate quantiles (a deterministic function of the score, so recomputation is safe),
  a window sums within each range, and per-range offsets (one small row per range, summed on
  the driver) are added back. No per-row data and no single-partition window.
* log loss clips probabilities like sklearn 1.9: ``clip(p, eps, 1 - eps)`` and
  ``clip(1 - p, eps, 1 - eps)`` with eps = float64 machine epsilon (2.22e-16), so a
  confidently wrong 0/1 prediction costs -log(eps) = 36.04 rather than infinity.
* Brier score is mean((p - y)^2).

Inputs: labels 0/1 (numeric or boolean), probabilities in [0, 1]. Nulls, NaN, other label
values and probabilities outside [0, 1] raise ValueError naming the column and row count.
Metrics undefined for the data are NaN (with a logged warning), never an exception: ROC AUC
when only one class is present (sklearn 1.9 also returns NaN, with a warning), average
precision when there is no positive (sklearn warns and returns 0.0; NaN is more honest and
cannot be mistaken for a real score). Log loss and Brier stay defined for one class.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T_

log = logging.getLogger(__name__)

EPS = float(np.finfo(np.float64).eps)
_SCORE, _Y, _N, _POS = "_score", "_y", "_n", "_pos"
# distinct scores per range of the prefix sum: one window partition this size is cheap
ROWS_PER_RANGE = 50_000


# --- input checks -----------------------------------------------------------------------------

def _require(df: DataFrame, columns: dict[str, tuple], what: str) -> None:
    """``columns`` maps a column to the Spark types it may have."""
    present = list(df.columns)
    missing = [c for c in columns if c not in present]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}; present {present}")
    types = {f.name: f.dataType for f in df.schema.fields}
    for name, allowed in columns.items():
        if not isinstance(types[name], allowed):
            raise ValueError(f"{what}: column {name!r} has type {types[name].simpleString()}; "
                             f"expected one of {[t.__name__ for t in allowed]}")


def _raise_if_any(counts: dict[str, int], what: str) -> None:
    problems = [f"{n} rows with {d}" for d, n in counts.items() if n]
    if problems:
        raise ValueError(f"{what}: invalid input: " + "; ".join(problems) + ". Fix or drop them.")


def _is_bad_number(c: Column) -> Column:
    return c.isNull() | F.isnan(c)


_LABEL_TYPES = (T_.NumericType, T_.BooleanType)
_NUMERIC = (T_.NumericType,)


# --- score groups and prefix sums -------------------------------------------------------------

def _score_groups(df: DataFrame, label_col: str, prob_col: str) -> tuple[DataFrame, dict]:
    """Validated per-distinct-score counts (cached; caller unpersists) and their totals."""
    what = "classification metrics"
    _require(df, {label_col: _LABEL_TYPES, prob_col: _NUMERIC}, what)
    y, score = F.col(label_col).cast("double"), F.col(prob_col).cast("double")
    groups = (
        df.select(score.alias(_SCORE), y.alias(_Y))
        .groupBy(_SCORE)
        .agg(F.count(F.lit(1)).alias(_N),
             F.count(F.when(F.col(_Y) == 1, 1)).alias(_POS),
             F.count(F.when(_is_bad_number(F.col(_Y)), 1)).alias("_bad_y_null"),
             F.count(F.when(~_is_bad_number(F.col(_Y)) & ~F.col(_Y).isin(0.0, 1.0), 1))
             .alias("_bad_y_value"))
        .cache()  # three to four actions read it; unpersisted by the caller
    )
    try:
        totals = _totals(groups)
        _raise_if_any({f"null or NaN {label_col}": totals["null_label"],
                       f"{label_col} not 0 or 1": totals["bad_label"],
                       f"null or NaN {prob_col}": totals["null_prob"],
                       f"{prob_col} outside [0, 1]": totals["bad_prob"]}, what)
        if totals["n"] == 0:
            raise ValueError(f"{what}: the input DataFrame has no rows")
    except Exception:
        groups.unpersist()
        raise
    return groups, totals


def _totals(groups: DataFrame) -> dict:
    """Row, positive and invalid-value counts, log-loss and Brier sums over the score groups.

    Log loss clips like sklearn: p and 1 - p each to [eps, 1 - eps]."""
    s = F.col(_SCORE)
    clipped1 = F.least(F.greatest(s, F.lit(EPS)), F.lit(1 - EPS))
    clipped0 = F.least(F.greatest(F.lit(1.0) - s, F.lit(EPS)), F.lit(1 - EPS))
    neg = F.col(_N) - F.col(_POS)
    row = groups.agg(
        F.sum(_N).alias("n"), F.sum(_POS).alias("positives"),
        F.count(F.lit(1)).alias("distinct_scores"),
        F.sum("_bad_y_null").alias("null_label"), F.sum("_bad_y_value").alias("bad_label"),
        F.sum(F.when(_is_bad_number(s), F.col(_N))).alias("null_prob"),
        F.sum(F.when(~_is_bad_number(s) & ((s < 0) | (s > 1)), F.col(_N))).alias("bad_prob"),
        F.sum(-(F.col(_POS) * F.log(clipped1) + neg * F.log(clipped0))).alias("log_loss_sum"),
        F.sum(F.col(_POS) * (s - 1) ** 2 + neg * s**2).alias("brier_sum"),
    ).first().asDict()
    return {k: (v or 0) for k, v in row.items()}  # sums over no rows are null


def _with_counts_below(groups: DataFrame, n_ranges: int) -> DataFrame:
    """Add _n_below, _pos_below: rows and positives with a strictly smaller score."""
    probabilities = [i / n_ranges for i in range(1, n_ranges)]
    edges = sorted(set(groups.approxQuantile(_SCORE, probabilities, 0.01))) if probabilities else []
    range_id = sum((F.col(_SCORE) >= F.lit(e)).cast("int") for e in edges) if edges else F.lit(0)
    tagged = groups.select(_SCORE, _N, _POS, range_id.alias("_range"))
    if not edges:  # one range: no offsets to add (and no job to compute them)
        per_range = {0: (0, 0)}
    else:
        per_range = {r["_range"]: (r["n"], r["pos"]) for r in
                     tagged.groupBy("_range").agg(F.sum(_N).alias("n"), F.sum(_POS).alias("pos"))
                     .collect()}  # one row per range
    offsets_n, offsets_pos, n_before, pos_before = [], [], 0, 0
    for range_key in sorted(per_range):
        offsets_n += [F.lit(range_key), F.lit(n_before).cast("long")]
        offsets_pos += [F.lit(range_key), F.lit(pos_before).cast("long")]
        n_before += per_range[range_key][0]
        pos_before += per_range[range_key][1]
    earlier = (Window.partitionBy("_range").orderBy(_SCORE)
               .rowsBetween(Window.unboundedPreceding, -1))
    return tagged.select(
        _SCORE, _N, _POS,
        (F.coalesce(F.sum(_N).over(earlier), F.lit(0))
         + F.element_at(F.create_map(*offsets_n), F.col("_range"))).alias("_n_below"),
        (F.coalesce(F.sum(_POS).over(earlier), F.lit(0))
         + F.element_at(F.create_map(*offsets_pos), F.col("_range"))).alias("_pos_below"),
    )


def _ranking_metrics(groups: DataFrame, n: int, positives: int, n_ranges: int) -> tuple:
    negatives = n - positives
    if positives == 0:
        log.warning("no positive labels: average precision and ROC AUC are undefined (NaN)")
        return math.nan, math.nan
    ranked = _with_counts_below(groups, n_ranges)
    pos, n_s = F.col(_POS).cast("double"), F.col(_N).cast("double")
    tp_at_or_above = F.lit(float(positives)) - F.col("_pos_below")
    rows_at_or_above = F.lit(float(n)) - F.col("_n_below")
    neg_below = F.col("_n_below") - F.col("_pos_below")
    sums = ranked.agg(
        F.sum(pos * tp_at_or_above / rows_at_or_above).alias("ap"),
        F.sum(pos * (neg_below + 0.5 * (n_s - pos))).alias("auc"),
    ).first()
    average_precision = sums["ap"] / positives
    if negatives == 0:
        log.warning("no negative labels: ROC AUC is undefined (NaN)")
        return average_precision, math.nan
    return average_precision, sums["auc"] / (positives * negatives)


def _n_ranges(df: DataFrame, distinct_scores: int) -> int:
    """Ranges of about ROWS_PER_RANGE distinct scores, at most one per shuffle partition."""
    partitions = int(df.sparkSession.conf.get("spark.sql.shuffle.partitions", "200"))
    return max(1, min(partitions, math.ceil(distinct_scores / ROWS_PER_RANGE)))


# --- public API -------------------------------------------------------------------------------

def classification_metrics(df: DataFrame, label_col: str, prob_col: str) -> dict:
    """Binary classification metrics of probabilities ``prob_col`` against 0/1 ``label_col``.

    Returns a dict: n, positive_rate, average_precision, roc_auc, log_loss, brier (floats;
    see the module docstring for definitions, clipping and the NaN cases).
    """
    groups, totals = _score_groups(df, label_col, prob_col)
    try:
        n, positives = int(totals["n"]), int(totals["positives"])
        n_ranges = _n_ranges(df, int(totals["distinct_scores"]))
        ap, auc = _ranking_metrics(groups, n, positives, n_ranges)
    finally:
        groups.unpersist()
    return {
        "n": n, "positive_rate": positives / n, "average_precision": float(ap),
        "roc_auc": float(auc), "log_loss": totals["log_loss_sum"] / n,
        "brier": totals["brier_sum"] / n,
    }


def precision_recall_at_thresholds(df: DataFrame, label_col: str, prob_col: str,
                                   thresholds) -> pd.DataFrame:
    """Confusion counts, precision and recall when predicting positive at prob >= threshold.

    Returns a small pandas DataFrame, one row per threshold: threshold, tp, fp, fn, tn,
    precision (NaN when nothing is predicted positive), recall (NaN when no positives), f1.
    """
    thresholds = [float(t) for t in thresholds]
    groups, totals = _score_groups(df, label_col, prob_col)
    try:
        exprs = []
        for i, t in enumerate(thresholds):
            above = F.col(_SCORE) >= F.lit(t)
            exprs += [F.sum(F.when(above, F.col(_POS)).otherwise(0)).alias(f"tp{i}"),
                      F.sum(F.when(above, F.col(_N)).otherwise(0)).alias(f"pp{i}")]
        row = groups.agg(*exprs).first() if exprs else {}
    finally:
        groups.unpersist()
    n, positives = int(totals["n"]), int(totals["positives"])
    out = []
    for i, t in enumerate(thresholds):
        tp, predicted = int(row[f"tp{i}"]), int(row[f"pp{i}"])
        precision = tp / predicted if predicted else math.nan
        recall = tp / positives if positives else math.nan
        f1 = 2 * tp / (predicted + positives) if predicted + positives else math.nan
        out.append({"threshold": t, "tp": tp, "fp": predicted - tp, "fn": positives - tp,
                    "tn": n - positives - (predicted - tp), "precision": precision,
                    "recall": recall, "f1": f1})
    return pd.DataFrame(out, columns=["threshold", "tp", "fp", "fn", "tn", "precision",
                                      "recall", "f1"])


def calibration_table(df: DataFrame, label_col: str, prob_col: str, bins: int = 10
                      ) -> pd.DataFrame:
    """Reliability table over ``bins`` equal-width probability bins, as sklearn's
    ``calibration_curve(strategy="uniform")`` bins them: bin i covers (i/bins, (i+1)/bins],
    bin 0 also holds 0. Returns a pandas DataFrame with every bin: bin, lower, upper, count,
    positives, mean_predicted, observed_rate (NaN for empty bins)."""
    if bins < 1:
        raise ValueError(f"calibration_table: bins must be >= 1, got {bins}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    groups, _ = _score_groups(df, label_col, prob_col)
    try:
        bin_id = sum(((F.col(_SCORE) > F.lit(float(e))).cast("int") for e in edges[1:-1]),
                     F.lit(0))
        rows = (groups.groupBy(bin_id.alias("bin"))
                .agg(F.sum(_N).alias("count"), F.sum(_POS).alias("positives"),
                     F.sum(F.col(_SCORE) * F.col(_N)).alias("prob_sum"))
                .toPandas())  # at most `bins` rows
    finally:
        groups.unpersist()
    table = pd.DataFrame({"bin": np.arange(bins), "lower": edges[:-1], "upper": edges[1:]})
    table = table.merge(rows, on="bin", how="left")
    table["count"] = table["count"].fillna(0).astype("int64")
    table["positives"] = table["positives"].fillna(0).astype("int64")
    nonempty = table["count"] > 0
    table["mean_predicted"] = np.where(nonempty, table["prob_sum"] / table["count"].clip(1), np.nan)
    table["observed_rate"] = np.where(nonempty, table["positives"] / table["count"].clip(1), np.nan)
    return table.drop(columns="prob_sum")


def regression_metrics(df: DataFrame, label_col: str, pred_col: str) -> dict:
    """Regression metrics of ``pred_col`` against ``label_col``: n, rmse, mae, r2, mape.

    r2 is 1 - SS_res / SS_tot with SS_tot from Spark's numerically stable variance (NaN when
    the labels are constant; sklearn returns 0 or 1 there). mape is mean(|y - yhat| / y) over
    rows with label > 0 only (zero or negative labels have no meaningful percentage error),
    NaN when there are none; n_mape says how many rows it used. Nulls or NaN raise ValueError.
    """
    what = "regression metrics"
    _require(df, {label_col: _NUMERIC, pred_col: _NUMERIC}, what)
    y, yhat = F.col(label_col).cast("double"), F.col(pred_col).cast("double")
    error = y - yhat
    row = df.agg(
        F.count(F.lit(1)).alias("n"),
        F.count(F.when(_is_bad_number(y), 1)).alias("bad_y"),
        F.count(F.when(_is_bad_number(yhat), 1)).alias("bad_yhat"),
        F.sum(error * error).alias("ss_res"), F.sum(F.abs(error)).alias("abs_sum"),
        F.var_pop(y).alias("var_y"),
        F.sum(F.when(y > 0, F.abs(error) / y)).alias("ape_sum"),
        F.count(F.when(y > 0, 1)).alias("n_mape"),
    ).first()
    _raise_if_any({f"null or NaN {label_col}": row["bad_y"],
                   f"null or NaN {pred_col}": row["bad_yhat"]}, what)
    n = row["n"]
    if n == 0:
        raise ValueError(f"{what}: the input DataFrame has no rows")
    ss_tot = row["var_y"] * n
    return {
        "n": n,
        "rmse": math.sqrt(row["ss_res"] / n),
        "mae": row["abs_sum"] / n,
        "r2": 1.0 - row["ss_res"] / ss_tot if ss_tot > 0 else math.nan,
        "mape": row["ape_sum"] / row["n_mape"] if row["n_mape"] else math.nan,
        "n_mape": row["n_mape"],
    }
