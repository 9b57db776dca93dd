"""The trends stage's parts: error measures against scikit-learn and by hand, rolling-origin
backtests that never see the future, each forecaster's interval and reference, trend and
seasonal strength, regime changes, alert rules, and the stage on a tiny table with a
planted drop."""

from __future__ import annotations

import datetime as dt
import types
import warnings

import numpy as np
import pandas as pd
import pytest

from mktpipe.trends import alerts as A
from mktpipe.trends import forecasters as FC
from mktpipe.trends import tournament as T
from mktpipe.trends.diagnostics import DiagnosticSettings, change_points, diagnose, strength


def series(n=120, seed=0, trend=2.0, weekly=150.0, noise=40.0, level=1000.0, start="2026-07-01"):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = level + trend * t + weekly * np.sin(2 * np.pi * t / 7) + rng.normal(0, noise, n)
    return pd.Series(y, index=pd.date_range(start, periods=n, freq="D"))


# --- measures ------------------------------------------------------------------------------

def test_mape_equals_scikit_learn_and_skips_zero_actuals():
    from sklearn.metrics import mean_absolute_percentage_error

    a, f = np.array([10.0, 20.0, 40.0, 5.0]), np.array([12.0, 18.0, 30.0, 5.5])
    assert T.mape(a, f) == pytest.approx(mean_absolute_percentage_error(a, f))
    assert T.mape([0.0, 10.0], [3.0, 11.0]) == pytest.approx(0.1)  # the zero day is left out
    assert np.isnan(T.mape([0.0, 0.0], [1.0, 2.0]))


def test_smape_and_mase_by_hand():
    assert T.smape([100.0, 0.0], [50.0, 0.0]) == pytest.approx((2 * 50 / 150 + 0) / 2)
    train = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    # seasonal naive lag 7: every difference is 1, so the scale is 1 and MASE = MAE
    assert T.mase([10.0, 10.0], [8.0, 13.0], train, period=7) == pytest.approx(2.5)
    # shorter than two periods: lag 1, scale = mean |diff| = 1
    assert T.mase([5.0], [3.0], [1.0, 2.0, 3.0], period=7) == pytest.approx(2.0)
    assert np.isnan(T.mase([1.0], [1.0], [4.0] * 20))  # constant training data: no scale
    assert T.coverage([1, 5, 9], [0, 6, 8], [2, 7, 10]) == pytest.approx(2 / 3)


# --- backtests -----------------------------------------------------------------------------

def test_origins_tile_the_last_folds():
    assert T.origins(100, 3, 14) == [58, 72, 86]
    assert T.origins(20, 3, 14) == [6]  # folds that would start before the data are dropped


def test_backtests_never_show_a_model_the_days_it_forecasts(monkeypatch):
    seen = []

    def spy(train, horizon, alpha, period):
        seen.append((train.index[-1], horizon))
        return FC.seasonal_naive(train, horizon, alpha, period)

    monkeypatch.setitem(FC.FORECASTERS, "spy", spy)
    monkeypatch.setitem(FC.MIN_TRAIN_DAYS, "spy", 7)
    y = series(100)
    folds = T.backtest(y, T.TournamentSettings(models=("spy",), folds=3, backtest_horizon=14))
    assert [s[0] for s in seen] == [y.index[57], y.index[71], y.index[85]]
    assert all(h == 14 for _, h in seen)
    assert list(folds["train_days"]) == [58, 72, 86]


def test_a_failing_or_short_model_is_reported_and_never_chosen(monkeypatch):
    def broken(train, horizon, alpha, period):
        raise ValueError("boom")

    monkeypatch.setitem(FC.FORECASTERS, "broken", broken)
    monkeypatch.setitem(FC.MIN_TRAIN_DAYS, "broken", 7)
    settings = T.TournamentSettings(models=("seasonal_naive", "broken", "gbm"), folds=2,
                                    backtest_horizon=14, horizon=10, check_days=5)
    result = T.run_tournament(series(50), settings)  # gbm needs 42 training days; has 22, 36
    scores = result.scores.set_index("model")
    assert "ValueError: boom" in scores.loc["broken", "error"]
    assert "gbm needs" in scores.loc["gbm", "error"] or "training days" in scores.loc["gbm",
                                                                                       "error"]
    assert result.chosen == "seasonal_naive" and scores.loc["seasonal_naive", "rank"] == 1
    assert len(result.forecast) == 10 and len(result.check) == 5


def test_a_constant_series_is_not_ranked_and_forecast_as_itself(monkeypatch):
    calls = []
    monkeypatch.setitem(FC.FORECASTERS, "ets", lambda *a: calls.append(a))
    y = pd.Series(0.0, index=pd.date_range("2026-07-01", periods=60))
    result = T.run_tournament(y, T.TournamentSettings(models=("seasonal_naive", "ets")))
    assert calls == []  # no backtest fits
    assert (result.scores["error"] == "constant series").all() and not result.scores[
        "chosen"].any()
    assert result.chosen == "seasonal_naive" and "0 every day" in result.notes[0]
    assert (result.forecast.to_numpy() == 0).all() and len(result.check) == 7


def test_the_tournament_ranks_by_mean_mase_and_beats_the_naive_on_a_trending_weekly_series():
    settings = T.TournamentSettings(models=("seasonal_naive", "ets", "sarima"), folds=2,
                                    backtest_horizon=14)
    result = T.run_tournament(series(120, seed=3, trend=4.0), settings)
    s = result.scores.set_index("model")
    assert sorted(s["rank"]) == [1, 2, 3]
    assert s.loc[result.chosen, "mase"] == s["mase"].min()
    # the naive forecast repeats last week and misses a steep trend; ETS and SARIMA model it
    assert s.loc[result.chosen, "mase"] < 0.8 * s.loc["seasonal_naive", "mase"]
    assert s["coverage"].between(0, 1).all() and (s["folds"] == 2).all()
    fc = result.forecast
    assert len(fc) == 30 and fc.index[0] == pd.Timestamp("2026-10-29")
    assert (fc["lower"] <= fc["mean"]).all() and (fc["mean"] <= fc["upper"]).all()
    # the check forecasts the last 7 days from the days before them
    assert list(result.check.index) == list(pd.date_range("2026-10-22", periods=7))
    assert result.check["actual"].tolist() == pytest.approx(
        series(120, seed=3, trend=4.0).iloc[-7:].tolist())


# --- forecasters ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["seasonal_naive", "ets", "sarima", "gbm", "prophet"])
def test_every_forecaster_gives_ordered_nonnegative_intervals_on_the_next_days(name):
    y = series(70, seed=1)
    fc = FC.FORECASTERS[name](y, 14, 0.2, 7)
    assert list(fc.index) == list(pd.date_range(y.index[-1] + pd.Timedelta(days=1), periods=14))
    assert (fc >= 0).all().all()
    assert (fc["lower"] <= fc["mean"] + 1e-9).all() and (fc["mean"] <= fc["upper"] + 1e-9).all()
    # a sensible level: within the range the series moved in
    assert fc["mean"].between(0.5 * y.min(), 1.5 * y.max()).all()
    again = FC.FORECASTERS[name](y, 14, 0.2, 7)
    pd.testing.assert_frame_equal(fc, again)  # seeded: the same input gives the same output


def test_seasonal_naive_repeats_last_week_with_the_textbook_interval():
    from scipy.stats import norm

    y = series(28, seed=2)
    fc = FC.seasonal_naive(y, 14, 0.2, 7)
    assert fc["mean"].to_numpy() == pytest.approx(np.tile(y.iloc[-7:].to_numpy(), 2))
    sigma = np.std(y.to_numpy()[7:] - y.to_numpy()[:-7], ddof=1)
    z = norm.ppf(0.9)
    width = (fc["upper"] - fc["mean"]).to_numpy()
    assert width[:7] == pytest.approx([z * sigma] * 7)
    assert width[7:] == pytest.approx([z * sigma * np.sqrt(2)] * 7)  # one more period ahead


def test_sarima_is_the_lowest_aic_order_fitted_by_statsmodels():
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = series(63, seed=4)
    orders = (((1, 0, 0), (0, 0, 0)), ((0, 1, 1), (0, 1, 1)))
    fits = []
    for order, seasonal in orders:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(SARIMAX(y.asfreq("D"), order=order,
                                seasonal_order=(*seasonal, 7) if any(seasonal) else (0, 0, 0, 0),
                                trend="c" if order[1] == 0 and seasonal[1] == 0 else None)
                        .fit(disp=False, maxiter=60))
    best = min(fits, key=lambda f: f.aic)
    fc = FC.sarima(y, 7, 0.2, 7, orders=orders)
    assert fc["mean"].to_numpy() == pytest.approx(
        np.clip(best.get_forecast(7).predicted_mean.to_numpy(), 0, None), rel=1e-6)


def test_forecaster_availability_names_the_missing_package():
    assert FC.available("ets") is None
    assert "unknown forecaster" in FC.available("arima-x")


# --- diagnostics ---------------------------------------------------------------------------

def test_strengths_follow_the_textbook_definition():
    rng = np.random.default_rng(0)
    r = pd.Series(rng.normal(0, 1, 100))
    trend = pd.Series(np.linspace(0, 50, 100))
    assert strength(trend, r) == pytest.approx(1 - np.var(r, ddof=1) / np.var(trend + r, ddof=1))
    assert strength(pd.Series(np.zeros(100)), r) == 0.0  # nothing but noise: clipped at 0
    strong = diagnose(series(84, seed=5, trend=5.0, weekly=200.0, noise=10.0))[1]
    flat = diagnose(series(84, seed=5, trend=0.0, weekly=0.0, noise=10.0))[1]
    assert strong["trend_strength"] > 0.9 and strong["seasonal_strength"] > 0.9
    assert flat["trend_strength"] < 0.5 and flat["seasonal_strength"] < 0.5
    assert flat["noise_level"] == pytest.approx(10 / 1000, rel=0.5)


def test_a_planted_level_shift_is_a_confident_regime_change_and_plain_noise_is_not():
    y = series(120, seed=6, trend=1.0, weekly=100.0, noise=20.0)
    y.iloc[80:] -= 150  # a 7.5-sigma drop on day 80
    days, summary = diagnose(y)
    changes = days.index[days["change_point"]]
    assert any(abs((c - y.index[80]).days) <= 3 for c in changes)
    hit = days.loc[[c for c in changes if abs((c - y.index[80]).days) <= 3][0]]
    assert hit["change_confidence"] >= 2 / 3
    assert days["regime"].iloc[-1] == summary["change_points"] >= 1
    for seed in range(5):
        plain = series(120, seed=seed, trend=1.0, weekly=100.0, noise=20.0)
        assert diagnose(plain)[1]["change_points"] == 0


def test_change_points_need_room_and_noise():
    assert change_points(np.ones(50), DiagnosticSettings()) == []  # no noise: no scale
    assert change_points(np.arange(10.0), DiagnosticSettings()) == []  # shorter than 2 x 7


def test_a_series_too_short_to_decompose_says_why():
    days, summary = diagnose(series(10))
    assert "two weeks" in summary["note"] and not days["anomaly"].any()
    assert len(days) == 10


# --- alerts --------------------------------------------------------------------------------

def _check(actual, lower=90.0, segment=None, kpi="views"):
    days = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(len(actual))]
    sid = kpi if segment is None else f"{kpi}|{segment}"
    return pd.DataFrame({"series_id": sid, "kpi": kpi, "segment": segment, "day": days,
                         "mean": 100.0, "lower": lower, "upper": 110.0, "actual": actual})


def test_kpi_drop_fires_on_the_latest_days_only():
    # below the interval on days 1 and 2 of 7, but only the last 3 days count
    assert A.kpi_drops(_check([50, 40, 100, 100, 100, 100, 100]), 3, False) == []
    assert A.kpi_drops(_check([100] * 6 + [60]), 3, False) == []  # one day: chance
    one = A.kpi_drops(_check([100] * 6 + [60]), 3, False, min_days=1)
    assert [(a.rule, a.severity, a.value) for a in one] == [("kpi_drop", "warning", 60.0)]
    two = A.kpi_drops(_check([100] * 5 + [70, 60]), 3, False)
    assert two[0].severity == "warning" and "2 of the last 3 days" in two[0].message
    three = A.kpi_drops(_check([100] * 4 + [80, 70, 60]), 3, False)
    assert three[0].severity == "critical" and three[0].value == 60.0
    seg = _check([100] * 4 + [80, 70, 60], segment="segment=Loyal")
    assert A.kpi_drops(seg, 3, False) == []
    assert A.kpi_drops(seg, 3, True)[0].severity == "warning"  # a segment warns, never critical


def test_regime_change_alert_needs_recency_and_confidence():
    changes = pd.DataFrame({"series_id": ["views", "views", "orders"], "kpi": ["views", "views",
                            "orders"], "segment": [None] * 3,
                            "day": [dt.date(2026, 9, 1), dt.date(2026, 10, 25),
                                    dt.date(2026, 10, 26)],
                            "change_confidence": [1.0, 1.0, 1 / 3],
                            "before": [100.0, 100.0, 10.0], "after": [120.0, 60.0, 5.0]})
    found = A.regime_changes(changes, dt.date(2026, 10, 31), 14, 0.66)
    assert [(a.subject, a.day) for a in found] == [("views", dt.date(2026, 10, 25))]
    assert "down 40 %" in found[0].message


def test_churn_risk_and_data_quality_rules():
    day = dt.date(2026, 11, 1)
    assert A.churn_risk_growth((100, 1000), (80, 1000), day, day, 0.05) == []
    warn = A.churn_risk_growth((140, 1000), (80, 1000), day, day, 0.05)
    crit = A.churn_risk_growth((200, 1000), (80, 1000), day, day, 0.05)
    assert [a.severity for a in warn + crit] == ["warning", "critical"]
    assert A.churn_risk_growth((200, 1000), None, None, day, 0.05) == []
    ok = {"run_date": "2026-10-31", "status": "ok", "rows_in": 1000, "rows_out": 980,
          "rows_quarantined": 10, "rows_deduplicated": 10}
    assert A.data_quality(ok, 0.05) == []
    many = {**ok, "rows_out": 900, "rows_quarantined": 90}
    assert [a.severity for a in A.data_quality(many, 0.05)] == ["warning"]
    lost = {**ok, "rows_out": 900}
    assert [a.severity for a in A.data_quality(lost, 0.05)] == ["critical"]
    failed = {"run_date": "2026-10-31", "status": "failed", "error": "InputError: no folder"}
    assert "no folder" in A.data_quality(failed, 0.05)[0].message


def test_alert_ids_are_stable_and_severity_filters():
    a = A.Alert("kpi_drop", "warning", "views", "m", day=dt.date(2026, 10, 1))
    b = A.Alert("kpi_drop", "critical", "views", "other text", day=dt.date(2026, 10, 1))
    assert a.alert_id == b.alert_id  # a re-run replaces the same alert
    assert A.at_least([a, b], "critical") == [b] and A.at_least([a, b], "never") == []


def test_fail_on_alert_exit_code(config):
    from mktpipe.cli import alert_exit_code
    from mktpipe.errors import EXIT_ALERT, EXIT_OK

    result = types.SimpleNamespace(stage="trends", status="ok", details={"alerts": [
        {"rule": "kpi_drop", "severity": "warning", "subject": "views", "message": "m"}]})
    manifest = types.SimpleNamespace(stages=[result])
    assert alert_exit_code(manifest, config, None) == EXIT_OK  # alerts.exit_on: never
    assert alert_exit_code(manifest, config, "warning") == EXIT_ALERT
    assert alert_exit_code(manifest, config, "critical") == EXIT_OK


# --- the stage -----------------------------------------------------------------------------

def _user_daily(spark, days=56, users=30, drop_last=3):
    """users x days of activity; views fall to a third on the last ``drop_last`` days."""
    rng = np.random.default_rng(7)
    start = dt.date(2026, 9, 1)
    rows = []
    for d in range(days):
        day = start + dt.timedelta(days=d)
        factor = 1 / 3 if d >= days - drop_last else 1.0
        for u in range(users):
            if rng.random() < 0.8:
                views = int(rng.poisson(20 * (1.3 if day.weekday() >= 5 else 1.0)) * factor)
                rows.append((f"u{u:03d}", day, views + 2, views, 1, 1, 0,
                             int(rng.random() < 0.1), float(rng.random() < 0.1) * 30.0))
    return spark.createDataFrame(rows, "user_id string, activity_date date, events long, "
                                       "views long, likes long, comments long, shares long, "
                                       "orders long, spend_usd double")


def test_the_stage_writes_every_table_alerts_on_a_planted_drop_and_reruns_the_same(
        spark, config, tmp_path):
    from pyspark.sql import functions as F

    from mktpipe.catalog import (
        ALERTS,
        CUSTOMER_SEGMENTS,
        FORECAST_BACKTESTS,
        KPI_FORECASTS,
        TREND_DAILY,
        TREND_DIAGNOSTICS,
        USER_DAILY,
    )
    from mktpipe.stage import StageContext
    from mktpipe.storage.delta_rs import DeltaRsStore
    from mktpipe.trends.stage import run_trends

    cfg = config.model_copy(deep=True)
    cfg.paths.warehouse = str(tmp_path / "wh")
    cfg.trends.models = ["seasonal_naive", "ets"]
    cfg.trends.backtest_folds, cfg.trends.backtest_horizon_days = 2, 7
    cfg.trends.kpis = ["active_users", "views"]
    cfg.trends.segment_kpis = ["views"]
    cfg.trends.min_segment_active_users = 5.0
    store = DeltaRsStore(spark, cfg.paths.warehouse)
    store.write(_user_daily(spark), USER_DAILY, mode="overwrite",
                partition_by=USER_DAILY.partitions)
    snapshot = dt.date(2026, 10, 27)  # the day after the 56th
    segs = spark.createDataFrame(
        [(f"u{u:03d}", snapshot, "big" if u < 24 else "small", "passive") for u in range(30)],
        "user_id string, snapshot_date date, segment string, churn_tier string")
    store.write(segs, CUSTOMER_SEGMENTS, mode="overwrite",
                partition_by=CUSTOMER_SEGMENTS.partitions)
    ctx = StageContext.open(spark, cfg, store, "run-test")

    first = run_trends(ctx, snapshot)
    # totals of two KPIs + views of the one segment with >= 5 active users a day
    assert first.details["series"] == 3 and first.details["segments"] == ["segment=big"]
    scores = store.read(FORECAST_BACKTESTS).toPandas()
    assert len(scores) == 3 * 2 and scores.groupby("series_id")["chosen"].sum().eq(1).all()
    assert scores["folds"].eq(2).all() and scores["mase"].notna().all()
    fc = store.read(KPI_FORECASTS).toPandas()
    future = fc[fc["kind"] == "forecast"]
    assert future.groupby("series_id").size().eq(30).all()
    assert future["day"].min() == snapshot
    check = fc[fc["kind"] == "check"]
    assert check.groupby("series_id").size().eq(7).all() and check["actual"].notna().all()
    daily = store.read(TREND_DAILY)
    assert daily.filter(F.col("series_id") == "views").count() == 56
    diag = store.read(TREND_DIAGNOSTICS).toPandas().set_index("series_id")
    assert diag.loc["views", "days"] == 56 and diag["chosen_model"].notna().all()
    alerts = store.read(ALERTS).toPandas()
    drops = alerts[alerts["rule"] == "kpi_drop"]
    assert set(drops["subject"]) == {"views"}  # the total; segments stay quiet by default
    assert drops["severity"].iloc[0] == "critical"  # three days below the interval
    assert first.details["alerts"][0]["rule"] in set(alerts["rule"])

    again = run_trends(ctx, snapshot)
    assert again.rows_out == first.rows_out
    for table in (FORECAST_BACKTESTS, KPI_FORECASTS, TREND_DAILY, TREND_DIAGNOSTICS, ALERTS):
        assert store.read(table).count() == (len(alerts) if table == ALERTS else
                                             store.read(table).distinct().count())
    assert store.read(ALERTS).count() == len(alerts)
    assert store.read(FORECAST_BACKTESTS).count() == 6
