"""The forecast tournament of one daily series: rolling-origin backtests, error measures,
interval coverage, the winner's forecast and a recent-days check.

Pure pandas on one small series (a value per day); the trends stage runs it once per series
inside Spark's ``applyInPandas``, so many series fit in parallel on the executors.

Backtests (rolling origin, Hyndman & Athanasopoulos 5.10): with ``folds`` k and backtest
horizon h, origin i (1..k) trains on every day before ``n - i*h`` and forecasts the h days
after it; the k test windows tile the last k*h days. A model needing more training days than
a fold has (``forecasters.MIN_TRAIN_DAYS``) sits that fold out and is ranked only when it ran
every fold. Measures per fold, then averaged over the folds:

* MAPE: mean |A - F| / |A| over the days with A != 0 (undefined when every A is 0);
* sMAPE: mean 2|A - F| / (|A| + |F|), 0 where both are 0;
* MASE: MAE / the in-sample MAE of the seasonal naive forecast (lag = the period, 1 when the
  training data has fewer than two periods) on the fold's training data;
* coverage: the share of test days inside the (1 - alpha) prediction interval.

The winner has the lowest mean of ``metric`` (MASE by default: scale-free and defined with
zeros); ties go to the simpler model (the order of ``models``). It is refitted on the whole
series for the ``horizon``-day forecast. The check refits it without the last
``check_days`` days and forecasts them with a (1 - ``check_alpha``) interval: what the
alerts compare the latest days with.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mktpipe.trends import forecasters

log = logging.getLogger(__name__)

METRICS = ("mase", "smape", "mape")


def mape(actual, forecast) -> float:
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    nonzero = a != 0
    if not nonzero.any():
        return float("nan")
    return float(np.mean(np.abs(a[nonzero] - f[nonzero]) / np.abs(a[nonzero])))


def smape(actual, forecast) -> float:
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    denom = np.abs(a) + np.abs(f)
    ratio = np.divide(2 * np.abs(a - f), denom, out=np.zeros_like(a), where=denom > 0)
    return float(np.mean(ratio))


def mase(actual, forecast, train, period: int = 7) -> float:
    """MAE / in-sample MAE of the seasonal naive (lag ``period``; 1 when ``train`` is shorter
    than two periods); NaN when that scale is 0 (a constant training series)."""
    a, f, y = (np.asarray(x, float) for x in (actual, forecast, train))
    m = period if len(y) >= 2 * period else 1
    if len(y) <= m:
        return float("nan")
    scale = float(np.mean(np.abs(y[m:] - y[:-m])))
    if scale == 0:
        return float("nan")
    return float(np.mean(np.abs(a - f)) / scale)


def coverage(actual, lower, upper) -> float:
    a = np.asarray(actual, float)
    return float(np.mean((a >= np.asarray(lower, float)) & (a <= np.asarray(upper, float))))


@dataclass(frozen=True)
class TournamentSettings:
    models: tuple[str, ...] = ("seasonal_naive", "ets", "sarima", "gbm", "prophet")
    horizon: int = 30
    backtest_horizon: int = 14
    folds: int = 3
    alpha: float = 0.2
    period: int = 7
    metric: str = "mase"
    check_days: int = 7
    check_alpha: float = 0.05  # the check's interval is wider: alerts rest on it


@dataclass
class TournamentResult:
    scores: pd.DataFrame  # one row per model: mape, smape, mase, coverage, folds, seconds, ...
    chosen: str | None
    forecast: pd.DataFrame | None  # mean, lower, upper over the horizon (the winner's)
    check: pd.DataFrame | None  # mean, lower, upper, actual over the last check_days
    notes: list[str] = field(default_factory=list)


def origins(n: int, folds: int, horizon: int) -> list[int]:
    """Training lengths of the rolling origins, oldest first: n - k*h, ..., n - h."""
    return [n - i * horizon for i in range(folds, 0, -1) if n - i * horizon > 0]


def backtest(series: pd.Series, settings: TournamentSettings) -> pd.DataFrame:
    """One row per (model, fold): the fold's measures, or the error that stopped the model."""
    y = series.astype(float)
    rows = []
    for model in settings.models:
        fn = forecasters.FORECASTERS[model]
        for fold, cut in enumerate(origins(len(y), settings.folds, settings.backtest_horizon)):
            train, test = y.iloc[:cut], y.iloc[cut:cut + settings.backtest_horizon]
            row = {"model": model, "fold": fold, "train_days": cut, "error": None}
            if cut < forecasters.MIN_TRAIN_DAYS[model]:
                row["error"] = (f"{cut} training days; {model} needs "
                                f"{forecasters.MIN_TRAIN_DAYS[model]}")
                rows.append(row)
                continue
            started = time.perf_counter()
            try:
                fc = fn(train, len(test), settings.alpha, settings.period)
            except Exception as exc:  # a model failing on one series is a result, not a crash
                row["error"] = f"{type(exc).__name__}: {exc}"
                rows.append(row)
                continue
            row.update(seconds=time.perf_counter() - started,
                       mape=mape(test, fc["mean"]), smape=smape(test, fc["mean"]),
                       mase=mase(test, fc["mean"], train, settings.period),
                       coverage=coverage(test, fc["lower"], fc["upper"]))
            rows.append(row)
    return pd.DataFrame(rows)


def summarise(folds: pd.DataFrame, settings: TournamentSettings) -> pd.DataFrame:
    """Per model: mean measures over the folds it ran, folds run, seconds, rank, chosen."""
    n_folds = int(folds["fold"].nunique()) if not folds.empty else 0
    out = []
    for order, model in enumerate(settings.models):
        part = folds[folds["model"] == model] if not folds.empty else folds
        ok = part[part["error"].isna()] if not part.empty else part
        row = {"model": model, "order": order, "folds": len(ok), "folds_total": n_folds,
               "seconds": float(ok["seconds"].sum()) if len(ok) else 0.0,
               "error": None if len(ok) == n_folds and n_folds else
               ("; ".join(sorted(set(part["error"].dropna()))) or "no backtest fold")}
        for metric in (*METRICS, "coverage"):
            values = ok[metric].dropna() if len(ok) and metric in ok else pd.Series(dtype=float)
            row[metric] = float(values.mean()) if len(values) else float("nan")
        out.append(row)
    table = pd.DataFrame(out)
    eligible = table[table["error"].isna() & table[settings.metric].notna()]
    table["rank"] = np.nan
    ranked = eligible.sort_values([settings.metric, "order"])
    table.loc[ranked.index, "rank"] = np.arange(1, len(ranked) + 1)
    table["chosen"] = table["rank"] == 1
    return table.drop(columns="order")


def run_tournament(series: pd.Series, settings: TournamentSettings) -> TournamentResult:
    """Backtest every model, choose the winner, forecast ``horizon`` days and check the
    latest ``check_days``; never raises for short, flat or odd input (``notes`` say why)."""
    y = series.astype(float)
    notes = []
    if len(y) and y.nunique() <= 1:  # e.g. a segment without buyers: nothing to rank
        value = float(y.iloc[0])
        notes.append(f"the series is {value:g} every day: no model is ranked (MASE has no "
                     "scale) and the forecast repeats it")
        scores = pd.DataFrame([{"model": m, "folds": 0, "folds_total": 0, "seconds": 0.0,
                                "error": "constant series", **dict.fromkeys(
                                    (*METRICS, "coverage"), float("nan")),
                                "rank": float("nan"), "chosen": False}
                               for m in settings.models])
        naive = forecasters.FORECASTERS["seasonal_naive"]
        forecast = naive(y, settings.horizon, settings.alpha, settings.period)
        cut = len(y) - settings.check_days
        check = None
        if cut >= forecasters.MIN_TRAIN_DAYS["seasonal_naive"]:
            check = naive(y.iloc[:cut], settings.check_days, settings.check_alpha,
                          settings.period)
            check["actual"] = y.iloc[cut:].to_numpy()
        return TournamentResult(scores, "seasonal_naive", forecast, check, notes)
    folds = backtest(y, settings)
    scores = summarise(folds, settings)
    if not scores["chosen"].any():
        notes.append("no model completed every backtest fold "
                     f"({len(y)} days; {settings.folds} folds of {settings.backtest_horizon} "
                     "days need more history): the seasonal naive forecast is used")
        chosen = "seasonal_naive"
    else:
        chosen = str(scores.loc[scores["chosen"], "model"].iloc[0])
    fn = forecasters.FORECASTERS[chosen]
    forecast = check = None
    try:
        forecast = fn(y, settings.horizon, settings.alpha, settings.period)
    except Exception as exc:
        notes.append(f"the {chosen} forecast failed: {type(exc).__name__}: {exc}")
    cut = len(y) - settings.check_days
    if cut >= forecasters.MIN_TRAIN_DAYS[chosen]:
        try:
            check = fn(y.iloc[:cut], settings.check_days, settings.check_alpha,
                       settings.period)
            check["actual"] = y.iloc[cut:].to_numpy()
        except Exception as exc:
            notes.append(f"the {chosen} check of the last {settings.check_days} days failed: "
                         f"{type(exc).__name__}: {exc}")
    return TournamentResult(scores, chosen, forecast, check, notes)
