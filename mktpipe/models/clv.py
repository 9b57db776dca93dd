"""Probabilistic customer lifetime value: BG/NBD purchase counts x Gamma-Gamma spend.

Inputs follow lifetimes' conventions, one row per customer, all times in one unit (days, weeks):

    frequency       number of *repeat* purchases (integer >= 0)
    recency         customer age at the last repeat purchase (0 when frequency == 0)
    T               customer age at the end of the observation window (>= recency)
    monetary_value  mean value of the repeat purchases (Gamma-Gamma only; > 0 where frequency > 0)

Fitting aggregates the data to its distinct patterns with counts (``groupBy(...).count()`` in
Spark, ``groupby().size()`` in pandas), brings only that aggregate to the driver, validates it
and runs a weighted maximum-likelihood fit (maths in :mod:`.bgnbd` and :mod:`.gamma_gamma`).
Predictions add one column to a Spark DataFrame (built-in functions where the closed form
allows, a vectorised pandas UDF where it needs the hypergeometric function) or to a copy of a
pandas DataFrame. Predictions do not re-validate values (that would cost a pass over the data):
null inputs give null, other invalid rows give meaningless numbers.
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T_

from mktpipe.features.columns import AGE, FREQUENCY, MONETARY_VALUE, RECENCY
from mktpipe.models import bgnbd, gamma_gamma
from mktpipe.models.bgnbd import BgNbdParams
from mktpipe.models.gamma_gamma import GammaGammaParams

log = logging.getLogger(__name__)

COUNT = "n_customers"
RFM_COLUMNS = (FREQUENCY, RECENCY, AGE)
SPEND_COLUMNS = (FREQUENCY, MONETARY_VALUE)

__all__ = [
    "BgNbdParams", "GammaGammaParams", "fit_bgnbd", "fit_gamma_gamma", "expected_purchases",
    "probability_alive", "expected_average_spend", "customer_lifetime_value",
]


# --- input checks and aggregation -------------------------------------------------------------

def _require_columns(df, required, what: str) -> None:
    present = list(df.columns)
    missing = [c for c in required if c not in present]
    if missing:
        raise ValueError(
            f"{what} needs columns {list(required)}; missing {missing}; present {present}. "
            "Rename your columns to lifetimes' names (frequency, recency, T, monetary_value)."
        )
    if isinstance(df, DataFrame):
        _require_numeric(df, required, what)


def _require_numeric(df: DataFrame, columns, what: str) -> None:
    wrong = {f.name: f.dataType.simpleString() for f in df.schema.fields
             if f.name in columns and not isinstance(f.dataType, T_.NumericType)}
    if wrong:
        raise ValueError(f"{what} needs numeric columns; these are not: {wrong}. Cast them first.")


def _aggregate(df, columns, round_monetary: int | None = None) -> pd.DataFrame:
    """Distinct value combinations of ``columns`` with their customer counts, as a small pandas
    DataFrame sorted by value (so Spark and pandas inputs fit on identical arrays)."""
    if isinstance(df, DataFrame):
        exprs = [F.col(c).cast("double").alias(c) for c in columns]
        if round_monetary is not None:
            exprs = [F.bround(e, round_monetary).alias(c) if c == MONETARY_VALUE else e
                     for c, e in zip(columns, exprs, strict=True)]
        agg = df.select(*exprs).groupBy(*columns).agg(F.count(F.lit(1)).alias(COUNT)).toPandas()
    elif isinstance(df, pd.DataFrame):
        pdf = df[list(columns)].apply(pd.to_numeric, errors="coerce").astype(float)
        if round_monetary is not None:
            pdf[MONETARY_VALUE] = pdf[MONETARY_VALUE].round(round_monetary)
        agg = pdf.groupby(list(columns), dropna=False).size().rename(COUNT).reset_index()
    else:
        raise TypeError(f"expected a Spark or pandas DataFrame, got {type(df).__name__}")
    agg[COUNT] = agg[COUNT].astype(float)
    return agg.sort_values(list(columns), na_position="first", ignore_index=True)


def _raise_on_bad_rows(agg: pd.DataFrame, checks: dict[str, pd.Series], what: str) -> None:
    """``checks`` maps a description to a boolean mask over ``agg``; counts weighted rows."""
    problems = []
    for description, mask in checks.items():
        n_bad = int(agg.loc[mask.fillna(False).astype(bool), COUNT].sum())
        if n_bad:
            problems.append(f"{n_bad} rows with {description}")
    if problems:
        raise ValueError(f"{what}: invalid input: " + "; ".join(problems) + ". Fix or drop them.")


def _validate_rfm(agg: pd.DataFrame) -> None:
    x, t_x, age = agg[FREQUENCY], agg[RECENCY], agg[AGE]
    nulls = {f"null or non-numeric {c}": agg[c].isna() for c in RFM_COLUMNS}
    _raise_on_bad_rows(agg, nulls, "fit_bgnbd")
    _raise_on_bad_rows(agg, {
        "non-finite values": ~np.isfinite(agg[list(RFM_COLUMNS)]).all(axis=1),
        "negative frequency, recency or T": (agg[list(RFM_COLUMNS)] < 0).any(axis=1),
        "non-integer frequency": x != np.floor(x),
        "recency > T": t_x > age,
        "frequency == 0 but recency != 0": (x == 0) & (t_x != 0),
        "frequency > 0 but recency == 0 (a repeat purchase has age > 0)": (x > 0) & (t_x == 0),
    }, "fit_bgnbd")
    if agg[COUNT].sum() == 0:
        raise ValueError("fit_bgnbd: the input has no rows")
    if not (x > 0).any():
        raise ValueError("fit_bgnbd: no customer has a repeat purchase (frequency > 0); the "
                         "dropout parameters a, b cannot be estimated from such data")


def _validate_spend(agg: pd.DataFrame) -> None:
    x, m = agg[FREQUENCY], agg[MONETARY_VALUE]
    nulls = {f"null or non-numeric {c}": agg[c].isna() for c in SPEND_COLUMNS}
    _raise_on_bad_rows(agg, nulls, "fit_gamma_gamma")
    _raise_on_bad_rows(agg, {
        "non-finite values": ~np.isfinite(agg[list(SPEND_COLUMNS)]).all(axis=1),
        "non-integer frequency": x != np.floor(x),
        "frequency > 0 and monetary_value <= 0": (x > 0) & (m <= 0),
    }, "fit_gamma_gamma")
    if agg[COUNT].sum() == 0:
        raise ValueError("fit_gamma_gamma: no customers with frequency > 0 to fit on")


# --- fitting ----------------------------------------------------------------------------------

def fit_bgnbd(df, penalizer: float = 0.0) -> BgNbdParams:
    """Fit the BG/NBD model (Fader, Hardie & Lee 2005) by maximum likelihood.

    ``df``: Spark or pandas DataFrame with frequency, recency, T (see the module docstring).
    Only the distinct (frequency, recency, T) triples and their counts reach the driver.
    ``penalizer``: L2 penalty on the parameters (lifetimes' ``penalizer_coef``; 0 = plain MLE).
    Raises ValueError naming the missing columns or the number of invalid rows of each kind.
    """
    _require_columns(df, RFM_COLUMNS, "fit_bgnbd")
    agg = _aggregate(df, RFM_COLUMNS)
    _validate_rfm(agg)
    params = bgnbd.fit_arrays(agg[FREQUENCY], agg[RECENCY], agg[AGE], agg[COUNT], penalizer)
    log.info("BG/NBD fit on %d customers (%d patterns): %s", params.n_customers,
             params.n_patterns, params)
    if not params.converged:
        log.warning("BG/NBD optimiser did not converge; parameters may be off: %s", params)
    return params


def fit_gamma_gamma(df, penalizer: float = 0.0, round_monetary: int | None = None
                    ) -> GammaGammaParams:
    """Fit the Gamma-Gamma spend model (Fader & Hardie) by maximum likelihood.

    ``df``: Spark or pandas DataFrame with frequency and monetary_value (mean repeat-purchase
    value). Rows with frequency == 0 are filtered out first: they carry no spend information.
    The fit runs on distinct (frequency, monetary_value) pairs with counts; for continuous spend
    that aggregate is about as large as the number of customers, so ``round_monetary=2`` (round
    to cents before grouping) bounds it at a negligible change of the likelihood.
    """
    _require_columns(df, SPEND_COLUMNS, "fit_gamma_gamma")
    if isinstance(df, DataFrame):
        # null frequencies stay in so that validation reports them
        repeat_buyers = df.filter(F.col(FREQUENCY).isNull() | (F.col(FREQUENCY) != 0))
    else:
        repeat_buyers = df[~(pd.to_numeric(df[FREQUENCY], errors="coerce") == 0)]
    agg = _aggregate(repeat_buyers, SPEND_COLUMNS, round_monetary)
    _validate_spend(agg)
    params = gamma_gamma.fit_arrays(agg[FREQUENCY], agg[MONETARY_VALUE], agg[COUNT], penalizer)
    log.info("Gamma-Gamma fit on %d customers (%d patterns): %s", params.n_customers,
             params.n_patterns, params)
    if not params.converged:
        log.warning("Gamma-Gamma optimiser did not converge; parameters may be off: %s", params)
    return params


# --- prediction -------------------------------------------------------------------------------

def _with_numpy_column(df, out_col: str, fn, in_cols) -> DataFrame | pd.DataFrame:
    """Add ``fn(*arrays)`` as ``out_col``: a pandas UDF on Spark, a plain call on pandas."""
    if isinstance(df, pd.DataFrame):
        arrays = [pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float) for c in in_cols]
        return df.assign(**{out_col: fn(*arrays)})

    @F.pandas_udf(T_.DoubleType())
    def _udf(*series: pd.Series) -> pd.Series:
        return pd.Series(fn(*(s.to_numpy(dtype=float, na_value=np.nan) for s in series)))

    return df.withColumn(out_col, _udf(*[F.col(c).cast("double") for c in in_cols]))


def expected_purchases(params: BgNbdParams, df, t: float, output_col: str = "expected_purchases"):
    """Add ``output_col``: expected repeat purchases in the next ``t`` time units given each
    customer's (frequency, recency, T) (eq. 10 of the paper, Gaussian hypergeometric 2F1 via
    scipy in a vectorised pandas UDF on Spark)."""
    if t < 0:
        raise ValueError(f"expected_purchases: t must be >= 0, got {t}")
    _require_columns(df, RFM_COLUMNS, "expected_purchases")
    fn = partial(bgnbd.conditional_expected_purchases, params, float(t))
    return _with_numpy_column(df, output_col, fn, RFM_COLUMNS)


def probability_alive_col(params: BgNbdParams, frequency: Column, recency: Column,
                          age: Column) -> Column:
    """P(alive) as a Spark Column expression (built-ins only)."""
    r, alpha, a, b = params.as_tuple()
    x = frequency.cast("double")
    log_odds_dead = ((F.lit(r) + x) * (F.log(F.lit(alpha) + age) - F.log(F.lit(alpha) + recency))
                     + F.log(F.lit(a) / (F.lit(b) + x - F.lit(1.0))))
    # 1 / (1 + exp(.)) is 0.0 (not an error) when exp overflows to +Infinity in Spark
    return F.when(x == 0, F.lit(1.0)).otherwise(F.lit(1.0) / (F.lit(1.0) + F.exp(log_odds_dead)))


def probability_alive(params: BgNbdParams, df, output_col: str = "probability_alive"):
    """Add ``output_col``: P(customer is still alive at T | frequency, recency, T); 1 for
    customers with no repeat purchase (BG/NBD customers can only drop out after a purchase)."""
    _require_columns(df, RFM_COLUMNS, "probability_alive")
    if isinstance(df, pd.DataFrame):
        fn = partial(bgnbd.probability_alive, params)
        return _with_numpy_column(df, output_col, fn, RFM_COLUMNS)
    cols = [F.col(c).cast("double") for c in RFM_COLUMNS]
    return df.withColumn(output_col, probability_alive_col(params, *cols))


def expected_average_spend(params: GammaGammaParams, df, output_col: str = "expected_spend"):
    """Add ``output_col``: E[spend per transaction | frequency, monetary_value] (eq. 5 of Hardie's
    note 025), shrinking each customer's mean towards v p / (q - 1); frequency == 0 gets the
    population mean. Raises ValueError when q <= 1 (population mean undefined)."""
    _require_columns(df, SPEND_COLUMNS, "expected_average_spend")
    population_mean = gamma_gamma.population_mean_spend(params)
    if isinstance(df, pd.DataFrame):
        fn = partial(gamma_gamma.conditional_expected_average_spend, params)
        return _with_numpy_column(df, output_col, fn, SPEND_COLUMNS)
    p, q, _ = params.as_tuple()
    x = F.col(FREQUENCY).cast("double")
    own = F.lit(p) * x / (F.lit(p) * x + F.lit(q - 1.0))
    own_mean = F.when(x > 0, F.col(MONETARY_VALUE).cast("double")).otherwise(F.lit(0.0))
    spend = (F.lit(1.0) - own) * F.lit(population_mean) + own * own_mean
    return df.withColumn(output_col, spend)


def customer_lifetime_value(bgnbd_params: BgNbdParams, gg_params: GammaGammaParams, df,
                            horizon_periods: int = 12, discount_rate_per_period: float = 0.01,
                            period_length: float = 1.0, output_col: str = "clv"):
    """Add ``output_col``: discounted expected spend over the next ``horizon_periods`` periods.

    clv = sum_{i=1..H} (E[Y(i L)] - E[Y((i-1) L)]) * E[spend] / (1 + d) ** i, with L =
    ``period_length`` in the data's time unit (e.g. 30 when T is in days and periods are
    months), d = ``discount_rate_per_period`` and E[Y] the BG/NBD conditional expectation; this
    is lifetimes' ``customer_lifetime_value`` (its ``freq`` factor is L). Needs frequency,
    recency, T, monetary_value; money unit as monetary_value.
    """
    if horizon_periods < 1 or period_length <= 0 or discount_rate_per_period <= -1:
        raise ValueError("customer_lifetime_value: need horizon_periods >= 1, period_length > 0 "
                         f"and discount_rate_per_period > -1; got {horizon_periods}, "
                         f"{period_length}, {discount_rate_per_period}")
    _require_columns(df, RFM_COLUMNS + (MONETARY_VALUE,), "customer_lifetime_value")
    gamma_gamma.population_mean_spend(gg_params)  # fail early when q <= 1
    fn = partial(_clv_arrays, bgnbd_params, gg_params, int(horizon_periods),
               float(discount_rate_per_period), float(period_length))
    return _with_numpy_column(df, output_col, fn, RFM_COLUMNS + (MONETARY_VALUE,))


def _clv_arrays(bg: BgNbdParams, gg: GammaGammaParams, horizon: int, rate: float,
                period: float, x, t_x, age, m) -> np.ndarray:
    spend = gamma_gamma.conditional_expected_average_spend(gg, x, m)
    clv = np.zeros_like(x, dtype=float)
    previous = np.zeros_like(clv)
    for i in range(1, horizon + 1):
        cumulative = bgnbd.conditional_expected_purchases(bg, i * period, x, t_x, age)
        clv += (cumulative - previous) * spend / (1.0 + rate) ** i
        previous = cumulative
    return clv
