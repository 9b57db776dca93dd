"""Gamma-Gamma spend model maths on numpy arrays: log-likelihood, weighted MLE, prediction.

Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
JMR 42(4), and Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value"
(brucehardie.com/notes/025). Each transaction value z ~ Gamma(p, nu) with nu ~ Gamma(q, v)
across customers; a customer with x repeat transactions of mean value m contributes the density
of m. Only customers with x > 0 carry information (callers filter). Nothing here touches Spark.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

PARAM_NAMES = ("p", "q", "v")


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters.

    ``p`` is the shape of transaction values, ``q, v`` the shape and rate of the Gamma prior on
    each customer's rate nu (``v`` in money units). The population mean spend per transaction
    is v * p / (q - 1) (defined for q > 1). ``log_likelihood`` is the total log-likelihood over
    customers with x > 0, without the penalty."""

    p: float
    q: float
    v: float
    log_likelihood: float
    n_customers: int = 0
    n_patterns: int = 0
    converged: bool = True
    penalizer: float = 0.0

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.p, self.q, self.v)

    def to_dict(self) -> dict:
        return asdict(self)


def log_likelihood_terms(p, q, v, x, m) -> np.ndarray:
    """Per-customer ln f(m | p, q, v, x) (eq. 1a of note 025), for x > 0 and m > 0."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    px = p * x
    return (
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
        + (px - 1.0) * np.log(m) + px * np.log(x) - (px + q) * np.log(x * m + v)
    )


def _objective(log_params, x, m, w, penalizer, v_unit):
    """Mean negative log-likelihood (+ L2 penalty on p, q, v in money units) and its gradient
    in log-parameter space; ``m`` arrives divided by ``v_unit`` for conditioning."""
    p, q, v = params = np.exp(log_params)
    px = p * x
    log_xm_v = np.log(x * m + v)
    ll = log_likelihood_terms(p, q, v, x, m)
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_xm_v)
    d_q = digamma(px + q) - digamma(q) + np.log(v) - log_xm_v
    d_v = q / v - (px + q) / (x * m + v)
    n = w.sum()
    raw = params * np.array([1.0, 1.0, v_unit])  # the penalty is on the unscaled v
    value = -(w @ ll) / n + penalizer * np.sum(raw**2)
    grad = -np.array([w @ d_p, w @ d_q, w @ d_v]) * params / n + 2.0 * penalizer * raw**2
    return value, grad


def fit_arrays(x, m, weights=None, penalizer: float = 0.0) -> GammaGammaParams:
    """Weighted maximum-likelihood Gamma-Gamma fit on validated arrays (x > 0, m > 0).

    Spend is divided by its weighted mean while optimising (v scales with it; p, q do not), so
    the start p = q = v = 1 is sensible in any currency. ``penalizer`` multiplies
    p**2 + q**2 + v**2 (v in money units, as lifetimes) added to the mean negative LL.
    """
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    v_unit = float((w @ m) / w.sum())
    args = (x, m / v_unit, w, penalizer, v_unit)
    result = minimize(
        _objective, np.zeros(3), args=args, jac=True, method="L-BFGS-B",
        bounds=[(-30.0, 30.0)] * 3, options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
    )
    if not result.success:
        polish = minimize(lambda z: _objective(z, *args)[0], result.x, method="Nelder-Mead",
                          options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
        if polish.fun <= result.fun:
            result = polish
    p, q, v = np.exp(result.x)
    v = v * v_unit
    ll = float(w @ log_likelihood_terms(p, q, v, x, m))
    stationary = np.max(np.abs(_objective(result.x, *args)[1])) < 1e-6
    return GammaGammaParams(
        p=float(p), q=float(q), v=float(v), log_likelihood=ll,
        n_customers=int(round(w.sum())), n_patterns=int(x.size),
        converged=bool(result.success or stationary), penalizer=float(penalizer),
    )


def population_mean_spend(params: GammaGammaParams) -> float:
    """E[z] = v p / (q - 1); raises ValueError when q <= 1 (the mean does not exist)."""
    p, q, v = params.as_tuple()
    if q <= 1.0:
        raise ValueError(
            f"Gamma-Gamma q = {q:.4g} <= 1: the population mean spend v*p/(q-1) is undefined, "
            "so expected spend cannot be predicted; refit with more data or a penalizer"
        )
    return v * p / (q - 1.0)


def conditional_expected_average_spend(params: GammaGammaParams, x, m) -> np.ndarray:
    """E[Z | x, m] (eq. 5 of note 025): a weighted mean of the population mean spend and the
    customer's own mean m, weight p x / (p x + q - 1) on m. x == 0 gives the population mean."""
    p, q, _ = params.as_tuple()
    x = np.asarray(x, dtype=float)
    m = np.where(x > 0, np.asarray(m, dtype=float), 0.0)
    own = p * x / (p * x + q - 1.0)
    return (1.0 - own) * population_mean_spend(params) + own * m
