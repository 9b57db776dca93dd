"""Models fitted on a classifier's validation predictions: the stacked ensemble (a logistic
regression over the members' probabilities) and probability calibration (Platt scaling or
isotonic regression), each measured honestly by two-fold cross-fitting.

Both learn from the validation snapshot, the only labelled data the members did not train on.
Measuring them on the rows they were fitted on would flatter them, so every candidate is scored
out of fold: the validation rows are split in two by a seeded random draw, the learner fitted on
one half predicts the other and vice versa, and the two halves' out-of-fold predictions are
scored together against the same rows' uncalibrated probabilities (one ``score_report``). The
model that is served is then refitted on the whole validation set.

Logistic learners (stacking, Platt) are MLlib ``GeneralizedLinearRegression`` fits (binomial
family, logit link: iteratively reweighted least squares, a Newton method that converges in a
handful of Spark jobs where L-BFGS took dozens on the members' strongly correlated logits) on
the logits of the input probabilities (clipped to [1e-6, 1 - 1e-6]); unpenalised, this is the
maximum-likelihood logistic regression (Platt's method). A penalty is IRLS's: the L2 term of
each weighted least-squares step. Their few coefficients become a SQL expression, so the
served pipeline gains one ``SQLTransformer``. Isotonic regression is MLlib's
``IsotonicRegression`` on the probability column, served as its fitted model stage. Everything
runs in Spark; the driver receives coefficients and the isotonic model's boundaries only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from py4j.protocol import Py4JJavaError
from pyspark.errors import IllegalArgumentException
from pyspark.ml.feature import SQLTransformer, VectorAssembler
from pyspark.ml.regression import (
    GeneralizedLinearRegression,
    IsotonicRegression,
    IsotonicRegressionModel,
)
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)

EPS = 1e-6
SEPARABLE_REG = 1e-3  # the penalty a logistic fit falls back to when unpenalised diverges
# Newton (IRLS) steps of a logistic fit, R's glm default: a fit that has an optimum converges in
# well under that (quadratically near it); one still moving after 25 steps is walking towards
# infinity on separable data, and each further step is one more Spark job for nothing
IRLS_MAX_ITER = 25
FOLD = "_cal_fold"


def logit_sql(col: str) -> str:
    p = f"least(greatest(`{col}`, {EPS}), {1 - EPS})"
    return f"ln({p} / (1 - {p}))"


def logit(col: str) -> Column:
    return F.expr(logit_sql(col))


@dataclass(frozen=True)
class LogisticBlend:
    """sigmoid(intercept + sum(coef_i * logit(p_i))) over the input probability columns."""

    inputs: tuple[str, ...]
    intercept: float
    coefficients: tuple[float, ...]

    def finite(self) -> bool:
        return all(math.isfinite(x) for x in (self.intercept, *self.coefficients))

    def sql(self) -> str:
        terms = " + ".join(f"({c!r}) * {logit_sql(col)}"
                           for col, c in zip(self.inputs, self.coefficients))
        return f"1 / (1 + exp(-({self.intercept!r} + {terms})))"

    def column(self) -> Column:
        return F.expr(self.sql())

    def stage(self, out_col: str) -> SQLTransformer:
        return SQLTransformer(statement=f"SELECT *, {self.sql()} AS `{out_col}` FROM __THIS__")

    def to_dict(self) -> dict:
        return {"inputs": list(self.inputs), "intercept": self.intercept,
                "coefficients": dict(zip(self.inputs, self.coefficients))}


def fit_logistic(df: DataFrame, inputs: Sequence[str], label_col: str,
                 reg_param: float = 0.0) -> LogisticBlend:
    """A logistic regression of ``label_col`` on the logits of ``inputs``: Platt scaling with
    one input (unpenalised, as Platt's method), a stacked ensemble with several (give a small
    ``reg_param``: the members' logits are correlated).

    A fit that has not converged after ``IRLS_MAX_ITER`` Newton steps (separable rows: every
    positive above every negative) is refitted with ``SEPARABLE_REG``, and that fit is kept
    after as many steps whether it has converged or not: its optimum is far out, the sigmoid
    is already steep and finite, and it keeps the scores' order."""
    vec = "_cal_features"
    data = VectorAssembler(inputCols=[f"_logit_{i}" for i in range(len(inputs))],
                           outputCol=vec).transform(
        df.select(F.col(label_col).cast("double").alias("_cal_label"),
                  *[logit(c).alias(f"_logit_{i}") for i, c in enumerate(inputs)]))
    # each Newton step is a pass over the rows: computing the logits once, not once a step,
    # makes a step several times cheaper (the rows are a validation snapshot: small)
    data.persist()
    try:
        return _fit_blend(data, vec, inputs, reg_param)
    finally:
        data.unpersist()


def _fit_blend(data: DataFrame, vec: str, inputs: Sequence[str],
               reg_param: float) -> LogisticBlend:
    blend = LogisticBlend(tuple(inputs), math.nan, (math.nan,) * len(inputs))
    # the fallback penalty once: a caller's reg_param at or above it is fitted once, not twice
    for penalty in dict.fromkeys((reg_param, max(reg_param, SEPARABLE_REG))):
        try:
            fitted = GeneralizedLinearRegression(
                featuresCol=vec, labelCol="_cal_label", family="binomial", link="logit",
                regParam=penalty, maxIter=IRLS_MAX_ITER, tol=1e-8).fit(data)
        except (Py4JJavaError, IllegalArgumentException) as exc:  # a singular Newton step
            log.warning("logistic fit on %s with regParam %g failed: %s", list(inputs), penalty,
                        str(exc).splitlines()[0])
            continue
        blend = LogisticBlend(tuple(inputs), float(fitted.intercept),
                              tuple(float(x) for x in fitted.coefficients))
        converged = fitted.summary.numIterations < IRLS_MAX_ITER
        if blend.finite() and (converged or penalty >= SEPARABLE_REG):
            return blend
        # perfectly separable (e.g. a handful of positives, all scored above every negative):
        # the unpenalised optimum is at infinity, where the coefficients head; a small
        # penalty keeps them finite
        log.warning("logistic fit on %s: %s without a penalty; refitting with regParam %g",
                    list(inputs), "no convergence" if blend.finite() else "non-finite coefficients",
                    SEPARABLE_REG)
    raise ValueError(f"logistic fit on {list(inputs)}: coefficients are not finite even with "
                     f"regParam {SEPARABLE_REG}: {blend.to_dict()}")


def fit_isotonic(df: DataFrame, input_col: str, label_col: str) -> IsotonicRegressionModel:
    return IsotonicRegression(featuresCol=input_col, labelCol=label_col, isotonic=True).fit(
        df.select(F.col(input_col), F.col(label_col).cast("double").alias(label_col)))


def isotonic_stage(model: IsotonicRegressionModel, input_col: str,
                   out_col: str) -> IsotonicRegressionModel:
    return model.copy().setFeaturesCol(input_col).setPredictionCol(out_col)


def with_folds(df: DataFrame, seed: int) -> DataFrame:
    """``df`` with a 0/1 fold column from a seeded draw (cache the result: the draw is fixed
    once materialised)."""
    return df.withColumn(FOLD, (F.rand(seed) < 0.5).cast("int"))


MIN_CLASS_PER_FOLD = 5  # positives and negatives each fold needs before anything is fitted on it


def thin_folds(df: DataFrame, label_col: str) -> str | None:
    """None when each fold of ``df`` has at least MIN_CLASS_PER_FOLD positives and negatives;
    else why not (one small aggregate). A fold without a positive makes a logistic fit's
    intercept minus infinity."""
    rows = (df.groupBy(FOLD).agg(F.sum(F.col(label_col)).alias("pos"),
                                 F.count(F.lit(1)).alias("n")).collect())  # two rows
    counts = {int(r[FOLD]): (int(r["pos"] or 0), int(r["n"] - (r["pos"] or 0))) for r in rows}
    for fold in (0, 1):
        pos, neg = counts.get(fold, (0, 0))
        if min(pos, neg) < MIN_CLASS_PER_FOLD:
            return (f"validation half {fold} has {pos} positives and {neg} negatives; each half "
                    f"needs {MIN_CLASS_PER_FOLD} of both to fit a stacker or calibrator on")
    return None


def cross_fit_logistic(df: DataFrame, inputs: Sequence[str], label_col: str,
                       reg_param: float = 0.0) -> Column:
    """The out-of-fold prediction of :func:`fit_logistic` as a Column of ``df`` (which has the
    fold column): rows of fold 0 get the model fitted on fold 1 and vice versa."""
    on = {fold: fit_logistic(df.filter(F.col(FOLD) == fold), inputs, label_col, reg_param)
          for fold in (0, 1)}
    return F.when(F.col(FOLD) == 0, on[1].column()).otherwise(on[0].column())


def cross_fit_isotonic(df: DataFrame, input_col: str, label_col: str,
                       out_col: str) -> DataFrame:
    """``df`` (with the fold column) plus ``out_col``: out-of-fold isotonic predictions (two
    fits, two transforms, one union)."""
    parts = []
    for fold in (0, 1):
        fitted = fit_isotonic(df.filter(F.col(FOLD) != fold), input_col, label_col)
        parts.append(isotonic_stage(fitted, input_col, out_col).transform(
            df.filter(F.col(FOLD) == fold)))
    return parts[0].unionByName(parts[1])


def choose(scores: dict[str, dict], metric: str = "log_loss") -> tuple[str, str]:
    """(method, why): the method with the lowest out-of-fold ``metric`` among ``scores``
    ({method: metrics}); ``none`` unless another beats it."""
    base = scores["none"][metric]
    best = min(scores, key=lambda m: scores[m][metric])
    if best == "none" or scores[best][metric] >= base:
        return "none", (f"no calibration: out-of-fold {metric} {base:.5f} is not beaten by "
                        + ", ".join(f"{m} {s[metric]:.5f}" for m, s in scores.items()
                                    if m != "none"))
    return best, (f"{best}: out-of-fold {metric} {scores[best][metric]:.5f} vs "
                  f"{base:.5f} uncalibrated")

