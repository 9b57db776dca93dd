"""Model evaluation metrics computed in Spark, exact and equal to scikit-learn's definitions.

Binary classification metrics of one or more probability columns of the same labelled frame
(a classifier's models and their ensemble) come from :func:`score_report`, in a few Spark
jobs whatever the number of columns; :func:`classification_metrics`,
:func:`precision_recall_at_thresholds` and :func:`calibration_table` are that function on one
column. The frame is first made long, one row per (row, probability column) holding the
column's index, the score and the label (``inline`` of an array of structs), and ONE
``groupBy(column, score)`` aggregate counts rows, positives and invalid labels per distinct
score. That aggregate is cached for the actions that follow and unpersisted after; the driver
only ever receives rows per column, per (column, prefix-sum range) and quantiles:

1. Totals and input checks per column (``groupBy(column)`` of the aggregate), together, in the
   same action, with each column's approximate score quantiles when thresholds depend on them
   (``percentile_approx`` over the rows, relative error 0.001, as the PR curve wants).
2. Only for a column with more than ROWS_PER_RANGE distinct scores: the edges of its
   prefix-sum ranges (approximate quantiles of its distinct scores), then the rows and
   positives per (column, range).
3. One ``groupBy(column)`` aggregate with the ranking sums below and, as conditional sums,
   the confusion counts at every threshold (the union over columns; each column reports its
   own thresholds), the calibration bins and the tier counts.

Definitions:

* ROC AUC is the Mann-Whitney statistic with tied scores counted one half (sklearn's
  ``roc_auc_score``); average precision is sklearn's step-wise ``average_precision_score``
  with tied scores forming one threshold. Both need, per distinct score, how many rows and
  positives of the same column score below it: a distributed prefix sum. A column's distinct
  scores are cut into ranges at approximate quantiles (a deterministic function of the score,
  so recomputation is safe), a window partitioned by (column, range) sums within each range,
  and per-(column, range) offsets (one small row per range, summed on the driver) are added
  back. No per-row data and no single-partition window (unless a column has one range).
* log loss clips probabilities like sklearn 1.9: ``clip(p, eps, 1 - eps)`` and
  ``clip(1 - p, eps, 1 - eps)`` with eps = float64 machine epsilon (2.22e-16), so a
  confidently wrong 0/1 prediction costs -log(eps) = 36.04 rather than infinity.
* Brier score is mean((p - y)^2).
* Confusion counts at threshold t predict positive when p >= t; calibration bins are sklearn's
  ``calibration_curve(strategy="uniform")`` bins.

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
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T_

log = logging.getLogger(__name__)

EPS = float(np.finfo(np.float64).eps)
_M, _SCORE, _Y, _N, _POS = "_column", "_score", "_y", "_n", "_pos"
# distinct scores per range of the prefix sum: one window partition this size is cheap
ROWS_PER_RANGE = 50_000
THRESHOLD_QUANTILE_ERROR = 0.001  # relative error of the quantiles thresholds are built from
RANGE_EDGE_ERROR = 0.01  # relative error of the prefix-sum range edges
Thresholds = Sequence[float] | Callable[[list[float]], Sequence[float]]
Tiers = tuple[Sequence[str], Callable[[Column], Column]]


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


# --- the shared aggregate ---------------------------------------------------------------------

def _long_scores(df: DataFrame, label_col: str, prob_cols: Sequence[str]) -> DataFrame:
    """One row per (row of ``df``, probability column): _column (its index), _score, _y."""
    per_column = [F.struct(F.lit(i).alias(_M), F.col(c).cast("double").alias(_SCORE))
                  for i, c in enumerate(prob_cols)]
    return df.select(F.col(label_col).cast("double").alias(_Y), F.inline(F.array(*per_column)))


def _score_groups(long: DataFrame) -> DataFrame:
    """Rows, positives and invalid labels per (column, distinct score); not cached here."""
    y = F.col(_Y)
    return long.groupBy(_M, _SCORE).agg(
        F.count(F.lit(1)).alias(_N),
        F.count(F.when(y == 1, 1)).alias(_POS),
        F.count(F.when(_is_bad_number(y), 1)).alias("_bad_y_null"),
        F.count(F.when(~_is_bad_number(y) & ~y.isin(0.0, 1.0), 1)).alias("_bad_y_value"))


def _totals(groups: DataFrame, long: DataFrame, n_columns: int,
            quantile_probabilities: Sequence[float]) -> tuple[list[dict], list[list[float]]]:
    """Per column: row, positive and invalid-value counts, distinct scores, log-loss and Brier
    sums (from the score groups), and the approximate quantiles of its scores at
    ``quantile_probabilities`` (over the rows; none asked: empty lists). One action.

    Log loss clips like sklearn: p and 1 - p each to [eps, 1 - eps]."""
    s = F.col(_SCORE)
    clipped1 = F.least(F.greatest(s, F.lit(EPS)), F.lit(1 - EPS))
    clipped0 = F.least(F.greatest(F.lit(1.0) - s, F.lit(EPS)), F.lit(1 - EPS))
    neg = F.col(_N) - F.col(_POS)
    totals = groups.groupBy(_M).agg(
        F.sum(_N).alias("n"), F.sum(_POS).alias("positives"),
        F.count(F.lit(1)).alias("distinct_scores"),
        F.sum("_bad_y_null").alias("null_label"), F.sum("_bad_y_value").alias("bad_label"),
        F.sum(F.when(_is_bad_number(s), F.col(_N))).alias("null_prob"),
        F.sum(F.when(~_is_bad_number(s) & ((s < 0) | (s > 1)), F.col(_N))).alias("bad_prob"),
        F.sum(-(F.col(_POS) * F.log(clipped1) + neg * F.log(clipped0))).alias("log_loss_sum"),
        F.sum(F.col(_POS) * (s - 1) ** 2 + neg * s**2).alias("brier_sum"),
    ).withColumn("_quantiles", F.lit(None).cast("array<double>"))
    if quantile_probabilities:
        accuracy = round(1 / THRESHOLD_QUANTILE_ERROR)
        quantiles = long.groupBy(_M).agg(F.percentile_approx(
            _SCORE, [float(p) for p in quantile_probabilities], accuracy).alias("_quantiles"))
        totals = totals.unionByName(quantiles, allowMissingColumns=True)
    keys = ["n", "positives", "distinct_scores", "null_label", "bad_label", "null_prob",
            "bad_prob", "log_loss_sum", "brier_sum"]
    out = [dict.fromkeys(keys, 0) for _ in range(n_columns)]  # an empty frame has no groups
    found: list[list[float]] = [[] for _ in range(n_columns)]
    for row in totals.collect():  # one or two rows per column
        if row["n"] is None:  # a quantile row
            found[row[_M]] = list(row["_quantiles"] or [])
        else:  # sums over no rows are null
            out[row[_M]] = {k: (row[k] or 0) for k in keys}
    return out, found


def _check_inputs(totals: list[dict], label_col: str, prob_cols: Sequence[str],
                  what: str) -> None:
    """ValueError naming each invalid column (label counts are the same in every column)."""
    counts = {f"null or NaN {label_col}": totals[0]["null_label"],
              f"{label_col} not 0 or 1": totals[0]["bad_label"]}
    for col, t in zip(prob_cols, totals):
        counts[f"null or NaN {col}"] = t["null_prob"]
        counts[f"{col} outside [0, 1]"] = t["bad_prob"]
    _raise_if_any(counts, what)
    if totals[0]["n"] == 0:
        raise ValueError(f"{what}: the input DataFrame has no rows")


# --- prefix sums ------------------------------------------------------------------------------

def _n_ranges(df: DataFrame, distinct_scores: int) -> int:
    """Ranges of about ROWS_PER_RANGE distinct scores, at most one per shuffle partition."""
    partitions = int(df.sparkSession.conf.get("spark.sql.shuffle.partitions", "200"))
    return max(1, min(partitions, math.ceil(distinct_scores / ROWS_PER_RANGE)))


def _range_edges(groups: DataFrame, n_ranges: list[int]) -> list[list[float]]:
    """Per column, the sorted distinct edges cutting its distinct scores into about
    ``n_ranges[i]`` ranges (approximate quantiles; no edges for one range). One action, and
    none when every column has one range."""
    edges: list[list[float]] = [[] for _ in n_ranges]
    columns_by_count: dict[int, list[int]] = {}
    for i, k in enumerate(n_ranges):
        if k > 1:
            columns_by_count.setdefault(k, []).append(i)
    if not columns_by_count:
        return edges
    accuracy = round(1 / RANGE_EDGE_ERROR)
    aggs = [F.percentile_approx(F.when(F.col(_M).isin(cols), F.col(_SCORE)),
                                [j / k for j in range(1, k)], accuracy).alias(f"_edges{k}")
            for k, cols in columns_by_count.items()]
    multi = [i for cols in columns_by_count.values() for i in cols]
    for row in groups.where(F.col(_M).isin(multi)).groupBy(_M).agg(*aggs).collect():
        edges[row[_M]] = sorted(set(row[f"_edges{n_ranges[row[_M]]}"]))
    return edges


def _with_counts_below(groups: DataFrame, edges: list[list[float]]) -> DataFrame:
    """Add _n_below, _pos_below: rows and positives of the same column with a strictly
    smaller score. One action for the per-(column, range) offsets when a column has edges."""
    score, column = F.col(_SCORE), F.col(_M)
    multi = [(i, e) for i, e in enumerate(edges) if e]
    range_id = None
    for i, column_edges in multi:
        in_range = sum((score >= F.lit(e)).cast("int") for e in column_edges)
        range_id = (F.when(column == i, in_range) if range_id is None
                    else range_id.when(column == i, in_range))
    tagged = groups.select(_M, _SCORE, _N, _POS, (F.lit(0) if range_id is None
                                                  else range_id.otherwise(0)).alias("_range"))
    if not multi:  # one range per column: no offsets to add (and no job to compute them)
        n_offset = pos_offset = F.lit(0).cast("long")
    else:
        per_range = {(r[_M], r["_range"]): (r["n"], r["pos"]) for r in
                     tagged.where(column.isin([i for i, _ in multi]))
                     .groupBy(_M, "_range").agg(F.sum(_N).alias("n"), F.sum(_POS).alias("pos"))
                     .collect()}  # one row per (column, range)
        offsets_n = [[0] * (len(e) + 1) for e in edges]
        offsets_pos = [[0] * (len(e) + 1) for e in edges]
        for i, column_edges in multi:
            n_before = pos_before = 0
            for r in range(len(column_edges) + 1):
                offsets_n[i][r], offsets_pos[i][r] = n_before, pos_before
                n_r, pos_r = per_range.get((i, r), (0, 0))  # a range may be empty
                n_before, pos_before = n_before + n_r, pos_before + pos_r
        n_offset, pos_offset = _per_column_range(offsets_n), _per_column_range(offsets_pos)
    earlier = (Window.partitionBy(_M, "_range").orderBy(_SCORE)
               .rowsBetween(Window.unboundedPreceding, -1))
    return tagged.select(
        _M, _SCORE, _N, _POS,
        (F.coalesce(F.sum(_N).over(earlier), F.lit(0)) + n_offset).alias("_n_below"),
        (F.coalesce(F.sum(_POS).over(earlier), F.lit(0)) + pos_offset).alias("_pos_below"),
    )


def _per_column(values: Sequence[float]) -> Column:
    """``values[_column]``: a per-column constant (a literal array looked up by the index)."""
    return F.element_at(F.array(*[F.lit(float(v)) for v in values]), F.col(_M) + 1)


def _per_column_range(values: list[list[int]]) -> Column:
    """``values[_column][_range]`` as a long (literal arrays looked up by the indexes)."""
    table = F.array(*[F.array(*[F.lit(v).cast("long") for v in row]) for row in values])
    return F.element_at(F.element_at(table, F.col(_M) + 1), F.col("_range") + 1)


# --- the multi-column core --------------------------------------------------------------------

def score_report(df: DataFrame, label_col: str, prob_cols: Mapping[str, str], *,
                 ranking: bool = True, thresholds: Thresholds | None = None,
                 threshold_quantiles: Sequence[float] = (), calibration_bins: int | None = None,
                 tiers: Tiers | None = None, n_ranges: int | None = None) -> dict[str, dict]:
    """Metrics of each probability column in ``prob_cols`` ({name: column}) against 0/1
    ``label_col``, all from one shared aggregate in a few Spark jobs (see the module docstring).

    * ``ranking``: add average_precision and roc_auc to the metrics;
    * ``thresholds``: confusion counts at these thresholds (the same for every column), or a
      function from a column's approximate score quantiles at ``threshold_quantiles``
      (relative error THRESHOLD_QUANTILE_ERROR) to that column's thresholds;
    * ``calibration_bins``: a reliability table with that many equal-width bins;
    * ``tiers``: ``(names, tier_of)`` where ``tier_of(score)`` is the Column of the score's
      tier name: rows and positives per tier;
    * ``n_ranges``: force that many prefix-sum ranges in every column (tests); None: about
      ROWS_PER_RANGE distinct scores per range, at most one per shuffle partition.

    Returns ``{name: {"metrics": dict, "thresholds": pandas DataFrame or None,
    "calibration": pandas DataFrame or None, "tiers": {tier: (rows, positives)} or None}}``:
    metrics n, positive_rate, [average_precision, roc_auc,] log_loss, brier; the tables of
    :func:`precision_recall_at_thresholds` and :func:`calibration_table`. Invalid input in any
    column raises ValueError before the ranking and table jobs.
    """
    what = "classification metrics"
    names = list(prob_cols)
    if not names:
        raise ValueError(f"{what}: no probability column given")
    if calibration_bins is not None and calibration_bins < 1:
        raise ValueError(f"calibration_table: bins must be >= 1, got {calibration_bins}")
    cols = [prob_cols[name] for name in names]
    _require(df, {label_col: _LABEL_TYPES, **dict.fromkeys(cols, _NUMERIC)}, what)
    long = _long_scores(df, label_col, cols)
    groups = _score_groups(long).cache()  # read by every action below; unpersisted after
    try:
        totals, quantiles = _totals(groups, long, len(cols),
                                    threshold_quantiles if callable(thresholds) else ())
        _check_inputs(totals, label_col, cols, what)
        if thresholds is None:
            column_thresholds = None
        elif callable(thresholds):
            column_thresholds = [[float(t) for t in thresholds(q)] for q in quantiles]
        else:
            column_thresholds = [[float(t) for t in thresholds]] * len(cols)
        ranges = [(n_ranges or _n_ranges(df, t["distinct_scores"]))
                  if ranking and t["positives"] > 0 else 0 for t in totals]
        rows = _final_sums(groups, totals, ranges, column_thresholds, calibration_bins, tiers)
    finally:
        groups.unpersist()
    if ranking:
        _warn_undefined(totals[0])
    index = {t: j for j, t in enumerate(_union(column_thresholds))}
    return {name: _column_report(totals[i], rows.get(i, {}), ranking,
                                 None if column_thresholds is None else column_thresholds[i],
                                 index, calibration_bins, tiers)
            for i, name in enumerate(names)}


def _final_sums(groups: DataFrame, totals: list[dict], ranges: list[int],
                column_thresholds: list[list[float]] | None, calibration_bins: int | None,
                tiers: Tiers | None) -> dict[int, dict]:
    """The one ``groupBy(column)`` action (after the range jobs, if any): ranking sums when
    a column has ``ranges`` > 0, counts at each threshold of any column (``_tp``/``_pp`` +
    the threshold's index in their sorted union), per calibration bin and per tier.
    Returns {column index: row as a dict}."""
    score, n_s, pos = F.col(_SCORE), F.col(_N), F.col(_POS)
    frame, derived, exprs = groups, [], []
    if any(ranges):
        frame = _with_counts_below(groups, _range_edges(groups, ranges))
        pos_d, n_d = pos.cast("double"), n_s.cast("double")
        tp_at_or_above = _per_column([t["positives"] for t in totals]) - F.col("_pos_below")
        rows_at_or_above = _per_column([t["n"] for t in totals]) - F.col("_n_below")
        neg_below = F.col("_n_below") - F.col("_pos_below")
        exprs += [F.sum(pos_d * tp_at_or_above / rows_at_or_above).alias("_ap"),
                  F.sum(pos_d * (neg_below + 0.5 * (n_d - pos_d))).alias("_auc")]
    for j, t in enumerate(_union(column_thresholds)):
        above = score >= F.lit(t)
        exprs += [F.sum(F.when(above, pos).otherwise(0)).alias(f"_tp{j}"),
                  F.sum(F.when(above, n_s).otherwise(0)).alias(f"_pp{j}")]
    if calibration_bins is not None:
        edges = np.linspace(0.0, 1.0, calibration_bins + 1)
        derived.append(sum(((score > F.lit(float(e))).cast("int") for e in edges[1:-1]),
                           F.lit(0)).alias("_bin"))
        for b in range(calibration_bins):
            in_bin = F.col("_bin") == b
            exprs += [F.sum(F.when(in_bin, n_s)).alias(f"_bin_n{b}"),
                      F.sum(F.when(in_bin, pos)).alias(f"_bin_pos{b}"),
                      F.sum(F.when(in_bin, score * n_s)).alias(f"_bin_sum{b}")]
    if tiers is not None:
        tier_names, tier_of = tiers
        derived.append(tier_of(score).alias("_tier"))
        for k, name in enumerate(tier_names):
            in_tier = F.col("_tier") == F.lit(name)
            exprs += [F.sum(F.when(in_tier, n_s)).alias(f"_tier_n{k}"),
                      F.sum(F.when(in_tier, pos)).alias(f"_tier_pos{k}")]
    if not exprs:  # e.g. ranking only, and no positive label: nothing left to compute
        return {}
    frame = frame.select("*", *derived) if derived else frame
    return {row[_M]: row.asDict() for row in frame.groupBy(_M).agg(*exprs).collect()}


def _union(column_thresholds: list[list[float]] | None) -> list[float]:
    return sorted({t for ts in column_thresholds or [] for t in ts})


def _warn_undefined(totals: dict) -> None:
    """Labels are shared by all columns: one warning per call."""
    if totals["positives"] == 0:
        log.warning("no positive labels: average precision and ROC AUC are undefined (NaN)")
    elif totals["positives"] == totals["n"]:
        log.warning("no negative labels: ROC AUC is undefined (NaN)")


def _column_report(totals: dict, row: dict, ranking: bool, thresholds: list[float] | None,
                   threshold_index: dict[float, int], calibration_bins: int | None,
                   tiers: Tiers | None) -> dict:
    """One column's results from its totals and its row of the final aggregate."""
    n, positives = int(totals["n"]), int(totals["positives"])
    metrics = {"n": n, "positive_rate": positives / n}
    if ranking:
        negatives = n - positives
        ap = row["_ap"] / positives if positives else math.nan
        auc = row["_auc"] / (positives * negatives) if positives and negatives else math.nan
        metrics.update(average_precision=float(ap), roc_auc=float(auc))
    metrics.update(log_loss=totals["log_loss_sum"] / n, brier=totals["brier_sum"] / n)
    table = calibration = tier_counts = None
    if thresholds is not None:
        counts = [(int(row[f"_tp{threshold_index[t]}"]), int(row[f"_pp{threshold_index[t]}"]))
                  for t in thresholds]
        table = _threshold_table(thresholds, counts, n, positives)
    if calibration_bins is not None:
        calibration = _calibration_frame(calibration_bins, [
            (row[f"_bin_n{b}"] or 0, row[f"_bin_pos{b}"] or 0, row[f"_bin_sum{b}"])
            for b in range(calibration_bins)])
    if tiers is not None:
        tier_counts = {name: (int(row[f"_tier_n{k}"] or 0), int(row[f"_tier_pos{k}"] or 0))
                       for k, name in enumerate(tiers[0])}
    return {"metrics": metrics, "thresholds": table, "calibration": calibration,
            "tiers": tier_counts}


def _threshold_table(thresholds: list[float], counts: list[tuple[int, int]], n: int,
                     positives: int) -> pd.DataFrame:
    """The table of :func:`precision_recall_at_thresholds` from (tp, predicted positive)."""
    out = []
    for t, (tp, predicted) in zip(thresholds, counts):
        precision = tp / predicted if predicted else math.nan
        recall = tp / positives if positives else math.nan
        f1 = 2 * tp / (predicted + positives) if predicted + positives else math.nan
        out.append({"threshold": t, "tp": tp, "fp": predicted - tp, "fn": positives - tp,
                    "tn": n - positives - (predicted - tp), "precision": precision,
                    "recall": recall, "f1": f1})
    return pd.DataFrame(out, columns=["threshold", "tp", "fp", "fn", "tn", "precision",
                                      "recall", "f1"])


def _calibration_frame(bins: int, sums: list[tuple]) -> pd.DataFrame:
    """The table of :func:`calibration_table` from (count, positives, probability sum) per
    bin (the sum is None for an empty bin)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    table = pd.DataFrame({"bin": np.arange(bins), "lower": edges[:-1], "upper": edges[1:]})
    table["count"] = np.array([int(c) for c, _, _ in sums], dtype="int64")
    table["positives"] = np.array([int(p) for _, p, _ in sums], dtype="int64")
    prob_sum = np.array([math.nan if s is None else s for _, _, s in sums], dtype="float64")
    nonempty = table["count"] > 0
    table["mean_predicted"] = np.where(nonempty, prob_sum / table["count"].clip(1), np.nan)
    table["observed_rate"] = np.where(nonempty, table["positives"] / table["count"].clip(1),
                                      np.nan)
    return table


# --- public API -------------------------------------------------------------------------------

def classification_metrics(df: DataFrame, label_col: str, prob_col: str) -> dict:
    """Binary classification metrics of probabilities ``prob_col`` against 0/1 ``label_col``.

    Returns a dict: n, positive_rate, average_precision, roc_auc, log_loss, brier (floats;
    see the module docstring for definitions, clipping and the NaN cases).
    """
    return score_report(df, label_col, {prob_col: prob_col})[prob_col]["metrics"]


def precision_recall_at_thresholds(df: DataFrame, label_col: str, prob_col: str,
                                   thresholds) -> pd.DataFrame:
    """Confusion counts, precision and recall when predicting positive at prob >= threshold.

    Returns a small pandas DataFrame, one row per threshold: threshold, tp, fp, fn, tn,
    precision (NaN when nothing is predicted positive), recall (NaN when no positives), f1.
    """
    report = score_report(df, label_col, {prob_col: prob_col}, ranking=False,
                          thresholds=[float(t) for t in thresholds])
    return report[prob_col]["thresholds"]


def calibration_table(df: DataFrame, label_col: str, prob_col: str, bins: int = 10
                      ) -> pd.DataFrame:
    """Reliability table over ``bins`` equal-width probability bins, as sklearn's
    ``calibration_curve(strategy="uniform")`` bins them: bin i covers (i/bins, (i+1)/bins],
    bin 0 also holds 0. Returns a pandas DataFrame with every bin: bin, lower, upper, count,
    positives, mean_predicted, observed_rate (NaN for empty bins)."""
    report = score_report(df, label_col, {prob_col: prob_col}, ranking=False,
                          calibration_bins=bins)
    return report[prob_col]["calibration"]


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


def clustering_metrics(df: DataFrame, features_col: str = "features",
                       prediction_col: str = "prediction") -> dict:
    """Internal validity indices of a hard clustering (a vector column and a cluster id
    column), computed in Spark and equal to scikit-learn's:

    * silhouette: Spark's ``ClusteringEvaluator`` with squared Euclidean distance, which is
      sklearn's ``silhouette_score(X, labels, metric="sqeuclidean")``; in [-1, 1], higher is
      better.
    * calinski_harabasz: (B / (k - 1)) / (W / (n - k)), B the between-cluster and W the
      within-cluster sum of squares (sklearn's ``calinski_harabasz_score``; 1.0 when W = 0);
      higher is better.
    * davies_bouldin: the mean over clusters of max over the others of (s_i + s_j) /
      ||c_i - c_j||, s the mean Euclidean distance of a cluster's points to its centroid
      (sklearn's ``davies_bouldin_score``); lower is better, 0 is best.

    Two small aggregations (per-cluster count and mean; per-cluster distance sums with the
    centroids as literals) and Spark's silhouette pass; the driver sees k rows. Returns n,
    clusters (distinct non-null ids) and the three indices. ValueError when there are fewer
    than 2 clusters or no more rows than clusters (the indices are undefined).
    """
    from pyspark.ml.evaluation import ClusteringEvaluator
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.stat import Summarizer

    what = "clustering metrics"
    if features_col not in df.columns or prediction_col not in df.columns:
        raise ValueError(f"{what}: need columns {features_col!r} and {prediction_col!r}; "
                         f"present {df.columns}")
    data = df.select(F.col(features_col).alias("x"), F.col(prediction_col).alias("c")) \
        .filter(F.col("c").isNotNull())
    stats = sorted(data.groupBy("c").agg(F.count(F.lit(1)).alias("n"),
                                         Summarizer.mean(F.col("x")).alias("mean")).collect())
    k, n = len(stats), sum(r["n"] for r in stats)
    if k < 2 or n <= k:
        raise ValueError(f"{what}: need at least 2 clusters and more rows than clusters; got "
                         f"{k} cluster(s) over {n} row(s)")
    ids = [r["c"] for r in stats]
    sizes = np.array([r["n"] for r in stats], dtype=float)
    centroids = np.array([r["mean"].toArray() for r in stats])
    lookup = F.create_map(*[part for cid, centre in zip(ids, centroids) for part in
                            (F.lit(cid), F.array(*[F.lit(float(v)) for v in centre]))])
    squared = F.aggregate(
        F.zip_with(vector_to_array(F.col("x")), F.element_at(lookup, F.col("c")),
                   lambda a, b: (a - b) * (a - b)), F.lit(0.0), lambda acc, v: acc + v)
    spread = {r["c"]: r for r in data.groupBy("c").agg(
        F.sum(squared).alias("ss"), F.sum(F.sqrt(squared)).alias("dist")).collect()}
    within = sum(spread[c]["ss"] for c in ids)
    overall = sizes @ centroids / n
    between = float(sizes @ ((centroids - overall) ** 2).sum(axis=1))
    ch = 1.0 if within == 0 else between * (n - k) / (within * (k - 1))
    intra = np.array([spread[c]["dist"] for c in ids]) / sizes
    gaps = np.sqrt(((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2))
    if np.allclose(intra, 0) or np.allclose(gaps, 0):
        db = 0.0
    else:
        gaps[gaps == 0] = np.inf
        db = float(np.mean(np.max((intra[:, None] + intra[None, :]) / gaps, axis=1)))
    silhouette = ClusteringEvaluator(
        featuresCol="x", predictionCol="c", metricName="silhouette",
        distanceMeasure="squaredEuclidean").evaluate(data.withColumn("c", F.col("c")
                                                                     .cast("double")))
    return {"n": int(n), "clusters": k, "silhouette": float(silhouette),
            "calinski_harabasz": float(ch), "davies_bouldin": db}
