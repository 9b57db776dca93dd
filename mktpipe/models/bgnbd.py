"""BG/NBD model maths on numpy arrays: log-likelihood, weighted maximum likelihood, predictions.

Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
Pareto/NBD Model", Marketing Science 24(2). Conventions follow lifetimes: ``x`` (frequency) is
the number of repeat purchases, ``t_x`` (recency) the customer's age at the last repeat purchase
(0 when x = 0), ``T`` the customer's age at the end of the observation window, all in one time
unit. Nothing here touches Spark; :mod:`mktpipe.models.clv` aggregates the data and calls in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

PARAM_NAMES = ("r", "alpha", "a", "b")


@dataclass(frozen=True)
class BgNbdParams:
    """Fitted BG/NBD parameters.

    ``r, alpha``: Gamma prior on the purchase rate (shape, rate; alpha is in the data's time
    unit). ``a, b``: Beta prior on the dropout probability after each repeat purchase.
    ``log_likelihood``: total (not mean) log-likelihood of the data at these parameters, in the
    data's time unit, without the penalty.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: int = 0
    n_patterns: int = 0
    converged: bool = True
    penalizer: float = 0.0

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.r, self.alpha, self.a, self.b)

    def to_dict(self) -> dict:
        return asdict(self)


def _log_terms(r, alpha, a, b, x, t_x, T):
    """The paper's eq. (6) split as A1 + A2 + log(exp(A3) + [x > 0] exp(A4)).

    Returns (A1 + A2, A3, A4) with A4 = -inf where x == 0 (that branch does not exist).
    """
    has_repeat = x > 0
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    # b + x - 1 > 0 whenever x >= 1; the safe value keeps log() quiet where x == 0
    b_x = np.where(has_repeat, b + x - 1.0, 1.0)
    a4 = np.where(
        has_repeat, np.log(a) - np.log(b_x) - (r + x) * np.log(alpha + t_x), -np.inf
    )
    return a1 + a2, a3, a4


def log_likelihood_terms(r, alpha, a, b, x, t_x, T) -> np.ndarray:
    """Per-row BG/NBD log-likelihood ln L(r, alpha, a, b | x, t_x, T) (eq. 6 of the paper)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    base, a3, a4 = _log_terms(r, alpha, a, b, x, t_x, T)
    return base + np.logaddexp(a3, a4)


def _objective(log_params, x, t_x, T, w, penalizer):
    """Mean negative log-likelihood (+ L2 penalty) and its gradient in log-parameter space."""
    r, alpha, a, b = params = np.exp(log_params)
    base, a3, a4 = _log_terms(r, alpha, a, b, x, t_x, T)
    lse = np.logaddexp(a3, a4)
    ll = base + lse
    w3 = np.exp(a3 - lse)  # posterior weight of "still alive" in the likelihood mixture
    w4 = np.exp(a4 - lse)  # 0 where x == 0
    b_x = np.where(x > 0, b + x - 1.0, 1.0)
    t_x_term = np.where(x > 0, np.log(alpha + t_x), 0.0)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * t_x_term
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 / b_x
    n = w.sum()
    value = -(w @ ll) / n + penalizer * np.sum(params**2)
    grad = np.array([w @ d_r, w @ d_alpha, w @ d_a, w @ d_b]) * params
    grad = -grad / n + 2.0 * penalizer * params**2
    return value, grad


def fit_arrays(x, t_x, T, weights=None, penalizer: float = 0.0) -> BgNbdParams:
    """Weighted maximum-likelihood BG/NBD fit on already validated arrays.

    ``weights`` are the customer counts of each (x, t_x, T) pattern. The optimiser (L-BFGS-B
    with the analytic gradient) works on log-parameters with time rescaled so that max(T) = 1,
    as lifetimes does; ``penalizer`` multiplies sum(params**2) of those rescaled parameters and
    is added to the *mean* negative log-likelihood (lifetimes' ``penalizer_coef``).
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    scale = 1.0 / T.max() if T.max() > 0 else 1.0
    args = (x, t_x * scale, T * scale, w, penalizer)
    result = minimize(
        _objective, np.zeros(4), args=args, jac=True, method="L-BFGS-B",
        bounds=[(-30.0, 30.0)] * 4, options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
    )
    if not result.success:
        # L-BFGS-B sometimes stops on a line-search failure right at the optimum; a
        # derivative-free polish from there either confirms it or moves on.
        polish = minimize(lambda z: _objective(z, *args)[0], result.x, method="Nelder-Mead",
                          options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
        if polish.fun <= result.fun:
            result = polish
    r, alpha, a, b = np.exp(result.x)
    alpha = alpha / scale
    ll = float(w @ log_likelihood_terms(r, alpha, a, b, x, t_x, T))
    return BgNbdParams(
        r=float(r), alpha=float(alpha), a=float(a), b=float(b), log_likelihood=ll,
        n_customers=int(round(w.sum())), n_patterns=int(x.size),
        converged=bool(result.success) or _is_stationary(result.x, args),
        penalizer=float(penalizer),
    )


def _is_stationary(log_params, args, tol: float = 1e-6) -> bool:
    return bool(np.max(np.abs(_objective(log_params, *args)[1])) < tol)


def probability_alive(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """P(customer still alive at T | x, t_x, T): 1 when x == 0, else
    1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))."""
    r, alpha, a, b = params.as_tuple()
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    has_repeat = x > 0
    b_x = np.where(has_repeat, b + x - 1.0, 1.0)
    log_odds_dead = (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)) + np.log(a / b_x)
    return np.where(has_repeat, expit(-log_odds_dead), 1.0)


def _discounted_hyp2f1(r, alpha, a, b, x, T, t):
    """((alpha+T)/(alpha+T+t))**(r+x) * 2F1(r+x, b+x; a+b+x-1; z), z = t / (alpha+T+t).

    By Euler's transformation this equals (1-z)**(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z), whose
    parameters stay small for heavy buyers; that form is used where the direct one overflows.
    """
    c = a + b + x - 1.0
    z = t / (alpha + T + t)
    log1m_z = np.log(alpha + T) - np.log(alpha + T + t)
    with np.errstate(all="ignore"):
        direct = hyp2f1(r + x, b + x, c, z) * np.exp((r + x) * log1m_z)
        euler = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z) * np.exp((a - 1.0) * log1m_z)
    return np.where(np.isfinite(direct), direct, euler)


def conditional_expected_purchases(params: BgNbdParams, t, x, t_x, T) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T + t] (eq. 10 of the paper).

    = P(alive) * (a + b + x - 1) / (a - 1) * [1 - ((alpha+T)/(alpha+T+t))**(r+x) * 2F1(...)].
    """
    r, alpha, a, b = params.as_tuple()
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    t = np.asarray(t, dtype=float)
    alive_part = (a + b + x - 1.0) / (a - 1.0) * (1.0 - _discounted_hyp2f1(r, alpha, a, b, x, T, t))
    return np.where(t > 0, alive_part, 0.0) * probability_alive(params, x, t_x, T)


def expected_purchases_new_customer(params: BgNbdParams, t) -> np.ndarray:
    """E[X(t)]: expected repeat purchases in (0, t] of a newly acquired customer (eq. 9)."""
    r, alpha, a, b = params.as_tuple()
    t = np.asarray(t, dtype=float)
    hyp = hyp2f1(r, b, a + b - 1.0, t / (alpha + t))
    return (a + b - 1.0) / (a - 1.0) * (1.0 - hyp * (alpha / (alpha + t)) ** r)
