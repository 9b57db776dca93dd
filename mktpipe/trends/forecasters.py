"""The forecasters of the tournament: each takes a daily series and returns a forecast with a
prediction interval.

Every forecaster has the signature ``fn(train, horizon, alpha, period) -> DataFrame[mean,
lower, upper]`` indexed by the ``horizon`` days after the last training day, the interval a
central (1 - alpha) prediction interval; it sees only ``train`` (the backtests rely on it).
Counts and amounts cannot be negative, so every forecast and interval is clipped at 0.

* ``seasonal_naive``: each day repeats the same weekday of the last week (the benchmark MASE is
  scaled by); interval from the in-sample seasonal differences, widening with every full
  period ahead (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed.,
  5.5).
* ``ets``: statsmodels ETS, additive error, damped additive trend, additive weekly seasonality
  (``mktpipe.trends.analysis.forecast``), analytic intervals.
* ``sarima``: statsmodels SARIMAX; the order (p, d, q)(P, D, Q, 7) is the lowest AIC among
  ``SARIMA_ORDERS`` fitted on the training data only; analytic intervals.
* ``gbm``: scikit-learn's HistGradientBoostingRegressor on the last 7 and 14 days (relative to
  the last 7-day mean), the weekday and the position in the month, predicting the next day
  relative to the last 7-day mean, applied recursively; the interval's scale is its one-step
  error on the last two weeks of the training data (a model fitted without them), widening
  with the square root of the step.
* ``prophet``: Meta's Prophet (additive trend and weekly seasonality, no yearly or daily terms
  on a few months of daily data), its sampled intervals, seeded.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

Forecaster = Callable[[pd.Series, int, float, int], pd.DataFrame]

# (p, d, q) x (P, D, Q) with the weekly period; chosen by AIC on the training data
SARIMA_ORDERS: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (
    ((1, 0, 0), (1, 0, 0)), ((1, 0, 1), (1, 0, 0)), ((0, 1, 1), (0, 1, 1)),
    ((1, 1, 1), (0, 1, 1)), ((2, 1, 0), (0, 1, 1)), ((1, 1, 0), (1, 0, 0)),
)
GBM_LAGS = 14
GBM_HOLDOUT = 14  # days the gbm's interval scale is measured on


def _normal_quantile(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))


def _future_index(train: pd.Series, horizon: int) -> pd.DatetimeIndex:
    return pd.date_range(train.index[-1] + pd.Timedelta(days=1), periods=horizon, freq="D")


def _frame(train: pd.Series, mean, lower, upper) -> pd.DataFrame:
    horizon = len(mean)
    out = pd.DataFrame({"mean": np.asarray(mean, float), "lower": np.asarray(lower, float),
                        "upper": np.asarray(upper, float)}, index=_future_index(train, horizon))
    if not np.isfinite(out.to_numpy()).all():
        raise ValueError("the model produced non-finite forecasts")
    return out.clip(lower=0.0)


def seasonal_naive(train: pd.Series, horizon: int, alpha: float, period: int) -> pd.DataFrame:
    y = train.to_numpy(float)
    m = period if len(y) >= 2 * period else 1
    last = y[-m:]
    steps = np.arange(horizon)
    mean = last[steps % m]
    resid = y[m:] - y[:-m]
    sigma = float(np.std(resid, ddof=1)) if len(resid) > 1 else 0.0
    sd = sigma * np.sqrt(steps // m + 1)
    z = _normal_quantile(alpha)
    return _frame(train, mean, mean - z * sd, mean + z * sd)


def ets(train: pd.Series, horizon: int, alpha: float, period: int) -> pd.DataFrame:
    from mktpipe.trends.analysis import forecast

    frame, method = forecast(train, horizon, period, alpha)
    if frame is None:
        raise ValueError(method)
    return frame


def sarima(train: pd.Series, horizon: int, alpha: float, period: int,
           orders=SARIMA_ORDERS) -> pd.DataFrame:
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = train.asfreq("D").astype(float)
    seasonal_ok = len(y) >= 3 * period
    best, best_aic = None, np.inf
    for order, seasonal in orders:
        if not seasonal_ok and any(seasonal):
            continue
        trend = "c" if order[1] == 0 and seasonal[1] == 0 else None
        with warnings.catch_warnings():  # convergence chatter on short or flat series
            warnings.simplefilter("ignore")
            try:
                fit = SARIMAX(y, order=order, seasonal_order=(*seasonal, period) if any(seasonal)
                              else (0, 0, 0, 0), trend=trend).fit(disp=False, maxiter=60)
            except (ValueError, np.linalg.LinAlgError):
                continue
        if np.isfinite(fit.aic) and fit.aic < best_aic:
            best, best_aic = fit, fit.aic
    if best is None:
        raise ValueError("no SARIMA order could be fitted")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = best.get_forecast(horizon)
        interval = pred.conf_int(alpha=alpha).to_numpy()
    return _frame(train, pred.predicted_mean.to_numpy(), interval[:, 0], interval[:, 1])


def _gbm_rows(history: np.ndarray, t: int, day: pd.Timestamp) -> list[float]:
    """Features for predicting day ``t`` from ``history[:t]``: the last 14 days divided by the
    last 7-day mean (1 when it is 0), that mean's log, weekday, day of month."""
    window = history[t - GBM_LAGS:t]
    base = float(window[-7:].mean())
    scale = base if base > 0 else 1.0
    return [*(window / scale), np.log1p(base), float(day.dayofweek), float(day.day)]


def _gbm_fit(y: np.ndarray, days: pd.DatetimeIndex):
    from sklearn.ensemble import HistGradientBoostingRegressor

    X = [_gbm_rows(y, t, days[t]) for t in range(GBM_LAGS, len(y))]
    target = []
    for t in range(GBM_LAGS, len(y)):
        base = float(y[t - 7:t].mean())
        target.append(y[t] / base if base > 0 else y[t])
    model = HistGradientBoostingRegressor(max_iter=150, learning_rate=0.05, max_leaf_nodes=15,
                                          min_samples_leaf=5, categorical_features=[GBM_LAGS + 1],
                                          random_state=0)
    return model.fit(np.asarray(X), np.asarray(target))


def _gbm_predict(model, history: np.ndarray, start: pd.Timestamp, horizon: int) -> np.ndarray:
    y = list(history)
    for h in range(horizon):
        day = start + pd.Timedelta(days=h)
        arr = np.asarray(y)
        base = float(arr[-7:].mean())
        ratio = float(model.predict(np.asarray([_gbm_rows(arr, len(arr), day)]))[0])
        y.append(max(ratio * base if base > 0 else ratio, 0.0))
    return np.asarray(y[len(history):])


def gbm(train: pd.Series, horizon: int, alpha: float, period: int) -> pd.DataFrame:
    y, days = train.to_numpy(float), train.index
    if len(y) < GBM_LAGS + 2 * GBM_HOLDOUT:
        raise ValueError(f"gbm needs {GBM_LAGS + 2 * GBM_HOLDOUT} days, got {len(y)}")
    cut = len(y) - GBM_HOLDOUT
    early = _gbm_fit(y[:cut], days[:cut])
    one_step = [_gbm_predict(early, y[:t], days[t], 1)[0] for t in range(cut, len(y))]
    sigma = float(np.sqrt(np.mean((y[cut:] - np.asarray(one_step)) ** 2)))
    model = _gbm_fit(y, days)
    mean = _gbm_predict(model, y, days[-1] + pd.Timedelta(days=1), horizon)
    sd = sigma * np.sqrt(np.arange(1, horizon + 1))
    z = _normal_quantile(alpha)
    return _frame(train, mean, mean - z * sd, mean + z * sd)


def _quiet_prophet() -> None:
    """Prophet logs an ERROR at import when plotly is missing (only its plots need it), and
    cmdstanpy logs every optimisation at INFO through a handler of its own."""
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    logging.getLogger("prophet").setLevel(logging.WARNING)
    logging.getLogger("cmdstanpy").disabled = True


def prophet(train: pd.Series, horizon: int, alpha: float, period: int) -> pd.DataFrame:
    _quiet_prophet()
    from prophet import Prophet

    _quiet_prophet()  # cmdstanpy sets its own logger's level when imported

    df = pd.DataFrame({"ds": train.index, "y": train.to_numpy(float)})
    model = Prophet(weekly_seasonality=period == 7, yearly_seasonality=False,
                    daily_seasonality=False, interval_width=1 - alpha, uncertainty_samples=300)
    if period != 7:
        model.add_seasonality("period", period=period, fourier_order=3)
    state = np.random.get_state()
    np.random.seed(0)  # Prophet samples its intervals with numpy's global generator
    try:
        model.fit(df, seed=0)
        out = model.predict(model.make_future_dataframe(horizon, include_history=False))
    finally:
        np.random.set_state(state)
    return _frame(train, out["yhat"], out["yhat_lower"], out["yhat_upper"])


FORECASTERS: dict[str, Forecaster] = {
    "seasonal_naive": seasonal_naive, "ets": ets, "sarima": sarima, "gbm": gbm,
    "prophet": prophet,
}
# the fewest training days each needs (shorter training data: the model sits the fold out)
MIN_TRAIN_DAYS = {"seasonal_naive": 7, "ets": 7, "sarima": 21, "gbm": GBM_LAGS + 2 * GBM_HOLDOUT,
                  "prophet": 14}


def available(name: str) -> str | None:
    """None when forecaster ``name`` can run here, else why not (an optional package)."""
    if name not in FORECASTERS:
        return f"unknown forecaster {name!r}; known: {sorted(FORECASTERS)}"
    if name == "prophet":
        try:
            import prophet  # noqa: F401
        except ImportError as exc:
            return f"prophet is not installed ({exc}); `pip install prophet` or leave it out"
    return None
