"""The HTML report on a tiny hand-made warehouse (mktpipe.report.sample) and trend maths.

The sample: 8 users over the 70 days before S = 2026-03-10 with a weekly pattern and a spike
(10x views) on S-20; scores for S and S-30; graph results for S-7 and S+7; quarantined rows
(one landed on S); registry files for churn, intent and clv; two run manifests (one for a date
after S). Expected numbers are computed here from the rows the builder wrote.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mktpipe.catalog import USER_DAILY
from mktpipe.config import Config
from mktpipe.report import charts, formatting, model_quality, trends
from mktpipe.report.activity import trends_section
from mktpipe.report.audience import segments_section
from mktpipe.report.context import ReportContext
from mktpipe.report.sample import write_registry
from mktpipe.report.stage import SECTION_IDS, as_date, run_report, write_atomic
from mktpipe.storage import open_store

SNAP = dt.date(2026, 3, 10)
PATH_KEYS = ("landing", "warehouse", "truth", "models", "reports", "exports", "checkpoints")


def own_config(config: Config, root) -> Config:
    """The session config with every path under ``root`` (the session warehouse is shared)."""
    paths = config.paths.model_copy(update={k: str(root / k) for k in PATH_KEYS})
    return config.model_copy(update={"paths": paths})


# the sample warehouse and its report are built once per session (conftest.sample_report),
# shared with the report browser test
@pytest.fixture(scope="module")
def report_config(sample_report):
    return sample_report[0]


@pytest.fixture(scope="module")
def sample(sample_report):
    return sample_report[1]


@pytest.fixture(scope="module")
def report(sample_report):
    _cfg, _sample, result, page = sample_report
    return result, page


def kpis(page: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r'data-kpi="(\w+)" data-value="([^"]+)"', page)}


def table_rows(page: str, table_id: str) -> list[list[str]]:
    match = re.search(rf'<table data-table="{table_id}">(.*?)</table>', page, re.S)
    assert match, f"no table {table_id}"
    body = match.group(1).split("<tbody>")[1]
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
             for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def section_html(page: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}".*?</section>', page, re.S)
    assert match, f"no section {section_id}"
    return match.group(0)


# --- the full report -------------------------------------------------------------------------

def test_report_has_every_section_and_chart(report, report_config):
    result, page = report
    d = result.details
    assert result.stage == "report" and result.status == "ok"
    assert d["path"] == str(report_config.resolve_path("reports") / "2026-03-10" / "index.html")
    assert d["sections"] == list(SECTION_IDS) and d["missing"] == [] and d["errors"] == {}
    for section_id in SECTION_IDS:
        assert f'data-section="{section_id}"' in page
    figures = re.findall(r'<figure class="chart[^"]*" data-chart="([^"]+)">(.*?)</figure>',
                         page, re.S)
    assert len(figures) == d["charts"] and len({f[0] for f in figures}) == d["charts"]
    assert all("<svg" in body and "<figcaption>" in body for _, body in figures)
    expected = {"daily-overview", "decomposition-views", "forecast-views", "pr-churn",
                "calibration-churn", "pr-intent", "clv-comparison", "segment-sizes", "tiers",
                "top-influencers", "communities", "quarantine"}
    assert expected <= {f[0] for f in figures}
    # footer: run id and the versions of the tables read
    assert "report-test-1" in page
    assert result.tables_read[USER_DAILY] == 0
    assert "<code>silver.user_daily v0</code>" in page and "<code>churn v2</code>" in page
    folder = report_config.resolve_path("reports") / "2026-03-10"
    assert sorted(p.name for p in folder.iterdir()) == [  # no temporary file left behind
        "executive.html", "index.html", "marketing.html", "tables", "technical.html"]


def test_report_is_self_contained(report):
    _, page = report
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "@import" not in page and "url(http" not in page
    for attr, value in re.findall(r'\b(src|href)\s*=\s*"([^"]*)"', page):
        assert value.startswith("#"), f"{attr}={value} points outside the page"
    assert not re.search(r"(src|href)\s*=\s*'?(https?:)?//", page)


def test_kpis_equal_the_input_rows(report, sample):
    _, page = report
    values = kpis(page)

    def window(first: int, last: int) -> list[dict]:
        lo, hi = SNAP - dt.timedelta(days=first), SNAP - dt.timedelta(days=last)
        return [r for r in sample.daily if lo <= r["activity_date"] <= hi]

    current, previous = window(30, 1), window(60, 31)
    assert values["active_users"] == len({r["user_id"] for r in current})
    assert values["views"] == sum(r["views"] for r in current)
    assert values["events"] == sum(r["events"] for r in current)
    assert values["orders"] == sum(r["orders"] for r in current)
    assert values["revenue"] == pytest.approx(sum(r["spend_usd"] for r in current))
    now = [r for r in sample.segments if r["snapshot_date"] == SNAP]
    before = [r for r in sample.segments if r["snapshot_date"] == SNAP - dt.timedelta(days=30)]
    at_risk = ("immediate_intervention", "retention_campaign")
    assert values["churn_risk"] == sum(r["churn_tier"] in at_risk for r in now)
    assert values["clv_90d"] == pytest.approx(sum(r["clv_90d"] for r in now))
    assert values["high_intent"] == sum(r["intent_tier"] == "personalised_offer" for r in now)
    # the change shown for views and for churn risk (vs the scores of S-30)
    views_before = sum(r["views"] for r in previous)
    change = formatting.fmt_change(values["views"], views_before)[0]
    assert re.search(rf'data-kpi="views".*?<strong>{re.escape(change)}</strong>', page, re.S)
    risk_before = sum(r["churn_tier"] in at_risk for r in before)
    assert risk_before != values["churn_risk"]  # the sample moves users between tiers
    change = formatting.fmt_change(values["churn_risk"], risk_before)[0]
    assert re.search(rf'data-kpi="churn_risk".*?<strong>{re.escape(change)}</strong> vs scores '
                     rf"of {SNAP - dt.timedelta(days=30)}", page, re.S)


def test_spike_is_an_anomaly_and_forecast_has_30_days(report, sample):
    result, page = report
    assert result.details["anomalies"]["views"] == [sample.spike_day.isoformat()]
    assert [r[0] for r in table_rows(page, "anomalies-views")] == [sample.spike_day.isoformat()]
    assert result.details["forecast_points"] == {"views": 30, "revenue_usd": 30}
    rows = table_rows(page, "forecast-views")
    assert len(rows) == 30
    assert rows[0][0] == SNAP.isoformat()  # the first day after the data (S-1)
    assert rows[-1][0] == (SNAP + dt.timedelta(days=29)).isoformat()


def test_model_segment_graph_and_quality_sections(report, sample):
    result, page = report
    models = section_html(page, "models")
    assert "Churn model v2" in models and "no segments model trained yet" in models
    assert "machine learning (XGBoost) model predicts 90-day customer value better" in models
    assert [r[0] for r in table_rows(page, "metrics-churn")] == [
        "XGBoost", "Logistic regression", "Ensemble", "Stacked ensemble"]
    assert table_rows(page, "calibration-churn") == [
        ["uncalibrated", "0.4300", "0.1400"], ["Platt scaling", "0.4100", "0.1350"],
        ["isotonic regression", "0.4200", "0.1370"]]
    assert "Calibration: Platt scaling. platt: out-of-fold log_loss 0.41000" in models
    assert table_rows(page, "auto-features-churn") == [
        ["candidate terms", "40"], ["after the univariate test (ANOVA F)", "22"],
        ["after correlation filtering", "9"], ["after importance pruning", "2"], ["kept", "2"],
        ["PR AUC without the terms (held out)", "0.4100"],
        ["PR AUC with the terms (held out)", "0.4350"],
        ["terms", "fe_mul__recency_days__views_7d, fe_share__likes_7d_30d"]]
    assert "Automatic feature engineering: kept. PR AUC 0.4100 → 0.4350" in models
    assert [r[0] for r in table_rows(page, "metrics-intent")] == ["XGBoost"]  # ensemble = xgb
    now = [r for r in sample.segments if r["snapshot_date"] == SNAP]
    segs = result.details["segments"]
    for col in ("churn_tier", "intent_tier", "clv_tier", "segment", "rfm_segment"):
        expected = pd.Series([r[col] for r in now]).value_counts().to_dict()
        assert segs[col] == expected, col
    assert segs["is_anomalous"] == {"false": 11, "true": 1}
    assert "1 of them shows anomalous (bot-like) engagement" in section_html(page, "segments")
    assert table_rows(page, "segment-profiles")[0][0] == "users"
    # graph: the latest snapshot on or before S (S-7), never the later one
    assert result.details["graph_snapshot"] == str(SNAP - dt.timedelta(days=7))
    top = table_rows(page, "top-influencers")
    assert len(top) == 10 and top[0][1] == "creator00" and "future" not in page
    # rank, PageRank, eigenvector, betweenness, incoming links (closeness is all null: skipped)
    by = table_rows(page, "top-by-centrality")
    assert by[0] == ["1", "creator00", "creator17", "creator19", "creator00"] and len(by) == 10
    # the label-propagation baseline beside Louvain's modularity, from the same (S-7) snapshot
    influencers = html.unescape(section_html(page, "influencers"))
    assert "3 communities among 30 users; modularity 0.42" in influencers
    assert ("Label propagation, a cheaper method used as a baseline, finds 4 communities with "
            "modularity 0.37 (Louvain's: 0.42).") in influencers
    # data quality: runs up to S only; quarantine before S only
    stages = table_rows(page, "stage-runs")
    assert {r[0] for r in stages} == {"ingest", "daily"}
    assert {r[-1] for r in stages} == {"run-sample-1"}
    assert [r[5] for r in table_rows(page, "ingest-balance")] == ["✓"] * 2
    assert [r[:2] for r in table_rows(page, "quarantine")] == [["events", "5"], ["orders", "1"]]
    assert result.details["quarantine"] == {"events/MALFORMED_RECORD": 3,
                                            "events/OUT_OF_RANGE": 2, "orders/WRONG_TYPE": 1}


def test_missing_inputs_say_not_available(spark, config, tmp_path):
    cfg = own_config(config, tmp_path)
    result = run_report(spark, cfg, SNAP)
    page = open(result.details["path"], encoding="utf-8").read()
    d = result.details
    assert d["errors"] == {} and d["charts"] == 0
    assert set(d["missing"]) == {"alerts", "kpis", "trends", "forecasts", "models", "segments",
                                 "influencers"}
    assert "Not available: gold.alerts does not exist" in page
    assert "Not available: no model registry" in page
    assert "Not available: silver.user_daily does not exist" in page
    assert "Not available: gold.customer_segments does not exist" in page
    assert "Not available: no graph results" in page
    assert "Not available: no run manifests" in page
    assert result.tables_read == {}


def test_missing_segment_partition_and_models(spark, report_config, sample, tmp_path):
    store = open_store(spark, report_config)
    later = SNAP + dt.timedelta(days=1)
    ctx = ReportContext(spark, report_config, store, later, "t")
    section = segments_section(ctx)
    assert section.missing == (f"Not available: gold.customer_segments has no partition for "
                               f"{later}. Latest scores: {SNAP}.")
    # a registry whose models lack optional parts: notes instead of charts
    from mktpipe.models.registry import Registry

    root = tmp_path / "models"
    write_registry(str(root))

    def metrics_file(name: str, version: int) -> Path:  # beside the run's model/ folder
        model = Registry(str(root)).model_uri(name, version).removeprefix("file://")
        return Path(model).parent / "metrics.json"

    metrics = metrics_file("churn", 2)
    metrics.write_text(re.sub(r'"pr_curve": \[.*?\]', '"pr_curve": []', metrics.read_text(),
                              flags=re.S))

    blocks = model_quality.classifier_blocks("churn", "Churn", "churned", Registry(str(root)),
                                             ctx)
    assert any(getattr(b, "text", "").startswith("This churn model version recorded no "
                                                 "precision-recall curve") for b in blocks)
    assert not any(getattr(b, "id", "") == "pr-churn" for b in blocks)
    assert model_quality.classifier_blocks("nothing", "X", "y", Registry(str(root)), ctx)[0] \
        .text.startswith("Not available: no nothing model trained yet")
    metrics_file("clv", 1).write_text("{not json")
    assert model_quality.clv_blocks(Registry(str(root)), ctx)[0].text == (
        "Not available: the metrics of clv model v1 are missing or unreadable (metrics.json).")


def test_short_history_skips_decomposition(report_config):
    ctx = ReportContext(None, report_config, None, SNAP, "t")
    days = pd.date_range(end=SNAP - dt.timedelta(days=1), periods=10, freq="D")
    totals = pd.DataFrame({c: np.arange(10.0) + 5 for c in
                           ("active_users", "events", "views", "engagements", "orders",
                            "revenue_usd")}, index=days)
    section = trends_section(ctx, totals)
    texts = [getattr(b, "text", "") for b in section.blocks]
    assert any("Only 10 days of history" in t for t in texts)
    assert [c.id for c in section.charts] == ["daily-overview", "forecast-views",
                                              "forecast-revenue_usd"]
    assert ctx.details["anomalies"] == {"views": [], "revenue_usd": []}
    assert ctx.details["forecast_points"] == {"views": 30, "revenue_usd": 30}
    assert not any("latest daily data" in t for t in texts)
    section = trends_section(ctx, totals.iloc[:3])  # ends 7 days before the snapshot
    assert section.charts[0].id == "daily-overview" and len(section.charts) == 1
    texts = [getattr(b, "text", "") for b in section.blocks]
    assert any("No forecast: only 3 days" in t for t in texts)
    assert any(t.startswith(f"The latest daily data is from {SNAP - dt.timedelta(days=8)}, "
                            "8 days before the snapshot") for t in texts)


# --- pure helpers (no Spark) ---------------------------------------------------------------

def weekly_series(days: int = 63, spike_at: int | None = 40, seed: int = 3) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    values = 500 + 4 * t + 120 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 10, days)
    if spike_at is not None:
        values[spike_at] *= 3
    return pd.Series(values, index=pd.date_range("2026-01-05", periods=days, freq="D"))


def test_decomposition_flags_only_the_spike():
    s = weekly_series()
    parts = trends.decompose(s)
    assert list(parts.columns) == ["observed", "trend", "seasonal", "resid", "z", "anomaly"]
    assert np.allclose(parts["trend"] + parts["seasonal"] + parts["resid"], s)
    assert list(parts.index[parts["anomaly"]]) == [s.index[40]]
    assert trends.flag_anomalies(s).sum() == 1
    # trend and weekly pattern re-estimated without the spike: the expected value of that day
    # is the day without its spike, and the weekly pattern is the sine's
    clean = weekly_series(spike_at=None)
    expected = parts["trend"] + parts["seasonal"]
    assert expected.iloc[40] == pytest.approx(clean.iloc[40], abs=15)  # noise sd is 10
    sine = np.sin(2 * np.pi * np.arange(len(s)) / 7)
    assert np.corrcoef(parts["seasonal"], sine)[0, 1] > 0.95
    assert not trends.flag_anomalies(weekly_series(spike_at=None)).any()
    assert trends.decompose(s.iloc[:13]) is None
    assert not trends.flag_anomalies(s.iloc[:13]).any()


def test_robust_zscores():
    z = trends.robust_zscores(pd.Series([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert z.iloc[4] == pytest.approx(97 / 1.4826)  # median 3, MAD 1
    assert (trends.robust_zscores(pd.Series([5.0] * 6)) == 0).all()
    mostly = trends.robust_zscores(pd.Series([0.0] * 9 + [10.0]))  # MAD 0: mean AD stands in
    assert mostly.iloc[-1] == pytest.approx(10 / (1.2533 * 1.0))
    assert trends.robust_zscores(pd.Series([0.0, 1.0, 0.0, -1.0]), floor=4.0).iloc[1] == 0.25
    # centre and scale from the reference values of the days not excluded
    values = pd.Series([10.0, 0.0, 1.0, 2.0])
    ref = pd.Series([99.0, 0.0, 1.0, 2.0])
    z = trends.robust_zscores(values, exclude=pd.Series([True, False, False, False]),
                              reference=ref)
    assert z.tolist() == pytest.approx([9 / 1.4826, -1 / 1.4826, 0.0, 1 / 1.4826])


def test_forecast_has_horizon_interval_and_weekly_shape():
    s = weekly_series(spike_at=None)
    fc, method = trends.forecast(s, horizon=30)
    assert len(fc) == 30 and fc.index[0] == s.index[-1] + pd.Timedelta(days=1)
    assert (fc["lower"] <= fc["mean"]).all() and (fc["mean"] <= fc["upper"]).all()
    assert "7-day seasonality" in method and "80 % prediction interval" in method
    future_sine = np.sin(2 * np.pi * np.arange(len(s), len(s) + 30) / 7)
    assert np.corrcoef(fc["mean"], future_sine)[0, 1] > 0.9
    assert fc["mean"].mean() == pytest.approx(500 + 4 * (len(s) + 15), rel=0.1)
    short, why = trends.forecast(s.iloc[:5])
    assert short is None and "5 days" in why
    zeros, _ = trends.forecast(pd.Series(0.0, index=s.index))
    assert (zeros.to_numpy() >= 0).all()  # clipped at 0: counts are never negative


def test_analyse_forecasts_from_the_series_without_its_anomalies():
    spiky, clean = weekly_series(), weekly_series(spike_at=None)
    a, b = trends.analyse(spiky, "views"), trends.analyse(clean, "views")
    assert a.anomalies == [spiky.index[40]] and b.anomalies == []
    assert np.allclose(a.forecast["mean"], b.forecast["mean"], rtol=0.05)
    raw, _ = trends.forecast(spiky)  # what the spike would have done to the forecast
    assert not np.allclose(raw["mean"], b.forecast["mean"], rtol=0.1)


def test_as_daily_fills_missing_days_with_zero():
    s = pd.Series([1.0, 2.0], index=[dt.date(2026, 1, 1), dt.date(2026, 1, 4)])
    assert trends.as_daily(s).tolist() == [1.0, 0.0, 0.0, 2.0]


def test_formatting():
    assert formatting.fmt_int(1234567) == "1,234,567" and formatting.fmt_int(None) == "—"
    assert formatting.fmt_int(np.int64(7)) == "7" and formatting.fmt_int(np.bool_(True)) == "—"
    assert formatting.fmt_usd(12.5) == "$12.50" and formatting.fmt_usd(1234.4) == "$1,234"
    assert formatting.fmt_usd(2_500_000) == "$2.5M" and formatting.fmt_pct(0.1234) == "12.3 %"
    assert formatting.fmt_compact(123_456) == "123.5k" and formatting.fmt_num(float("nan")) == "—"
    assert formatting.fmt_change(110, 100) == ("+10.0 %", pytest.approx(0.1))
    assert formatting.fmt_change(5, 0) == ("—", None)
    assert formatting.change_class(0.2, False) == "bad"
    assert formatting.change_class(0.2, True) == "good"
    assert as_date("2026-03-10") == SNAP and as_date(dt.datetime(2026, 3, 10, 5)) == SNAP
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        as_date("yesterday")


def test_chart_svgs_have_unique_resolvable_ids():
    a = charts.hbars("one", "c", ["x", "y"], [1, 2])
    b = charts.hbars("two", "c", ["x", "y"], [1, 2])
    ids_a, ids_b = (set(re.findall(r'id="([^"]+)"', c.svg)) for c in (a, b))
    assert ids_a and not ids_a & ids_b
    for c, ids in ((a, ids_a), (b, ids_b)):
        assert c.svg.startswith("<svg") and "<?xml" not in c.svg and "<metadata" not in c.svg
        refs = set(re.findall(r'(?:href="#|url\(#)([^")]+)', c.svg))
        assert refs <= ids


def test_write_atomic_replaces(tmp_path):
    target = tmp_path / "r" / "index.html"
    write_atomic(target, "first")
    write_atomic(target, "second")
    assert target.read_text() == "second" and [p.name for p in target.parent.iterdir()] == [
        "index.html"]


def test_latest_per_stage_prefers_work_over_skips():
    from mktpipe.report.data_quality import latest_per_stage

    results = [{"stage": "ingest", "status": "ok", "rows_out": 10},
               {"stage": "ingest", "status": "skipped", "rows_out": 0},
               {"stage": "score", "status": "skipped", "rows_out": 0},
               {"stage": "train", "status": "ok", "rows_out": 5},
               {"stage": "train", "status": "failed", "rows_out": 0}]
    latest = latest_per_stage(results)
    assert latest["ingest"]["rows_out"] == 10
    assert latest["score"]["status"] == "skipped"  # nothing else to show
    assert latest["train"]["status"] == "failed"


def test_segmentation_comparison_and_actions_are_shown(tmp_path):
    """The registry's segments metrics (comparison table, segments with actions) become two
    report tables; the chosen candidate is marked."""
    from types import SimpleNamespace

    from mktpipe.models.registry import Registry
    from mktpipe.report.blocks import Table

    comparison = [
        {"algorithm": "kmeans", "k": 3, "silhouette": 0.41, "calinski_harabasz": 210.0,
         "davies_bouldin": 0.9, "degenerate": False},
        {"algorithm": "gmm", "k": 3, "silhouette": 0.52, "calinski_harabasz": 250.5,
         "davies_bouldin": 0.7, "degenerate": False},
        {"algorithm": "gmm", "k": 4, "degenerate": True, "reason": "empty clusters"}]
    metrics = {"algorithm": "gmm", "k": 3, "silhouette": 0.52, "comparison": comparison,
               "chosen_because": "highest silhouette (0.52) of 2 usable candidates",
               "segments": [{"id": 0, "name": "high views", "size": 40,
                             "action": "monetise_engagement", "action_reason": "engaged"}]}

    class Saved:  # a registered model needs only save(path)
        def save(self, path):
            pass

    registry = Registry(str(tmp_path / "models"))
    registry.register("segments", Saved(), metrics=metrics, primary_metric="silhouette")
    ctx = SimpleNamespace(models_read={})
    blocks = model_quality.segments_model_blocks(registry, ctx)
    assert "3 behavioural segments by Gaussian mixture" in blocks[1].text
    assert "Chosen for the highest silhouette" in blocks[1].text
    tables = {b.id: b for b in blocks if isinstance(b, Table)}
    assert tables["segmentation-comparison"].rows == [
        ["k-means", "3", "0.410", "210.0", "0.900", ""],
        ["Gaussian mixture", "3", "0.520", "250.5", "0.700", "chosen"],
        ["Gaussian mixture", "4", *[formatting.MISSING] * 3, "empty clusters"]]
    assert tables["segment-actions"].rows == [["high views", "40", "monetise engagement",
                                               "engaged"]]
    assert ctx.models_read == {"segments": 1}


def test_search_history_becomes_a_convergence_chart_and_table():
    from mktpipe.report.blocks import Chart, Table

    results = [{"trial": i, "params": {"max_depth": d}, "metric": m, "seconds": 1.5}
               for i, (d, m) in enumerate(((3, 0.41), (5, 0.47), (4, 0.44)))]
    metrics = {"search": {"xgb": {"method": "tpe", "metric_name": "areaUnderPR",
                                  "larger_is_better": True, "best_params": {"max_depth": 5},
                                  "validation": "kfold (3 folds)", "results": results}}}
    chart, table = model_quality.search_blocks("churn", "Churn", metrics)
    assert isinstance(chart, Chart) and chart.id == "search-churn" and "<svg" in chart.svg
    assert isinstance(table, Table)
    assert table.rows == [["XGBoost", "Bayesian search (TPE)", "kfold (3 folds)", "3", "4.5",
                           "0.4700", "max_depth=5"]]
    assert model_quality.search_blocks("churn", "Churn", {"xgb": {}}) == []  # not tuned


# --- alerts and the forecast tournament (the trends stage's tables) -----------------------------

def test_alerts_come_first_worst_first(report):
    result, page = report
    assert page.index('data-section="alerts"') < page.index('data-section="kpis"')
    rows = table_rows(page, "alerts")
    assert [r[:3] for r in rows] == [["critical", "kpi drop", "Views"],
                                     ["warning", "data quality", "ingest 2026-03-09"]]
    assert rows[0][3].startswith("Views fell below its forecast interval on 3 of the last 3")
    assert "2 alerts, 1 critical." in section_html(page, "alerts")
    assert result.details["alerts"] == 2


def test_the_tournament_table_and_the_winner_forecast(report):
    from mktpipe.trends.tournament import TournamentSettings, run_tournament

    result, page = report
    rows = {r[0]: r for r in table_rows(page, "forecast-tournament")}
    assert set(rows) == {"Views", "Revenue (USD)"}
    # the same tournament on the same daily totals, run here: the page shows its figures
    totals = sample_totals()
    expected = run_tournament(totals, TournamentSettings(models=("seasonal_naive", "ets"),
                                                         folds=2, backtest_horizon=7))
    s = expected.scores.set_index("model")
    assert rows["Views"][1:3] == [f"{s.loc['seasonal_naive', 'mase']:.2f}",
                                  f"{s.loc['ets', 'mase']:.2f}"]
    label = {"seasonal_naive": "seasonal naive", "ets": "ETS"}[expected.chosen]
    assert rows["Views"][3] == label
    assert result.details["tournament"]["views"] == expected.chosen
    trends_html = section_html(page, "trends")
    assert f"{label}, the best of 2 models in 2 rolling-origin backtests" in trends_html


def sample_totals():
    import pandas as pd

    from mktpipe.report.sample import daily_rows

    daily = pd.DataFrame(daily_rows(SNAP))
    totals = daily.groupby("activity_date")["views"].sum().astype(float)
    totals.index = pd.DatetimeIndex(pd.to_datetime(totals.index))
    full = pd.date_range(totals.index[0], pd.Timestamp(SNAP) - pd.Timedelta(days=1))
    return totals.reindex(full, fill_value=0.0)


def test_the_report_is_delivered_by_smtp_after_it_is_written(spark, report_config, sample,
                                                             monkeypatch):
    """The report stage with delivery on, against an SMTP server on loopback: the message
    carries the written page and the snapshot's alerts; the stage records the outcome."""
    import email
    import socket
    from email import policy

    controller_mod = pytest.importorskip("aiosmtpd.controller",
                                         reason="aiosmtpd (a dev dependency) not installed")
    received = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope):
            received.append(email.message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = controller_mod.Controller(Inbox(), hostname="127.0.0.1", port=port)
    server.start()
    try:
        monkeypatch.delenv("MKTPIPE_SMTP_USER", raising=False)
        cfg = report_config.model_copy(deep=True)
        cfg.delivery = cfg.delivery.model_copy(update={
            "enabled": True, "recipients": ["lead@example.com"], "smtp_host": "127.0.0.1",
            "smtp_port": port, "tls": "none"})
        result = run_report(spark, cfg, SNAP, run_id="report-delivery")
    finally:
        server.stop()
    assert result.details["delivery"]["status"] == "delivered"
    (msg,) = received
    page = open(result.details["path"], encoding="utf-8").read()
    body = msg.get_body(("html",)).get_content().replace("\r\n", "\n")  # SMTP line ends
    assert body.strip() == page.strip()
    assert "[critical] Views fell below its forecast interval" in \
        msg.get_body(("plain",)).get_content()



# --- audiences, CSV and PDF ---------------------------------------------------------------------

def test_each_audience_gets_its_sections_and_every_table_its_csv(report, report_config):
    import csv

    result, page = report
    folder = report_config.resolve_path("reports") / "2026-03-10"
    outputs = result.details["outputs"]
    assert outputs["html"] == ["executive.html", "marketing.html", "technical.html"]
    for name, sections in (("executive", ["alerts", "kpis", "trends"]),
                           ("marketing", ["alerts", "kpis", "forecasts", "segments",
                                          "influencers"]),
                           ("technical", ["alerts", "forecasts", "models", "quality"])):
        text = (folder / f"{name}.html").read_text(encoding="utf-8")
        assert re.findall(r'<section id="([a-z]+)"', text) == sections, name
    assert "<h1>Executive summary</h1>" in (folder / "executive.html").read_text("utf-8")
    # every table of the full page, with the same cells
    ids = re.findall(r'<table data-table="([^"]+)">', page)
    assert sorted(outputs["csv"]) == sorted(f"{i}.csv" for i in ids)
    with open(folder / "tables" / "alerts.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["severity", "rule", "about", "what happened"]
    assert rows[1:] == table_rows(page, "alerts")
    assert outputs["pdf"] == [] and outputs["skipped"] == []  # pdf is not in the test formats


def test_the_report_in_spanish_and_its_pdf(spark, report_config, sample, tmp_path,
                                          english_words):
    """report.language es: the full and executive pages have no English word left in their
    visible text (the alerts as the trends stage writes them under the same language),
    numbers and dates in Spanish formats, the CSVs separated by ";"; and the executive PDF
    printed by headless Chromium: page 1 rendered as an image has ink, its text layer is the
    Spanish page."""
    from mktpipe import i18n
    from mktpipe.report.outputs import BROWSERS
    from mktpipe.report.sample import write_alerts
    from mktpipe.storage import files

    browser = files.local_executable(BROWSERS)
    cfg = report_config.model_copy(deep=True)
    cfg.paths.reports = str(tmp_path / "reports")
    cfg.report = cfg.report.model_copy(update={
        "language": "es", "audiences": ["executive"],
        "formats": ["html", "csv", "pdf"] if browser else ["html", "csv"]})
    with i18n.use("es"):  # what the trends stage writes when it runs in Spanish
        write_alerts(spark, cfg, SNAP)
    try:
        result = run_report(spark, cfg, SNAP, run_id="report-es")
    finally:
        write_alerts(spark, report_config, SNAP)  # the other tests read the English alerts
    folder = tmp_path / "reports" / "2026-03-10"
    page = (folder / "index.html").read_text(encoding="utf-8")
    executive = (folder / "executive.html").read_text(encoding="utf-8")
    assert result.details["errors"] == {} and '<html lang="es">' in page
    assert english_words(page) == [] and english_words(executive) == []
    assert "<h2>2. Resumen ejecutivo</h2>" in page and "Corte <strong>10 mar 2026" in page
    es = i18n.language("es")
    values = kpis(page)
    assert f'<div class="kpi-value">{es.compact(values["views"])}</div>' in page
    assert f'<div class="kpi-value">{es.usd(values["revenue"])}</div>' in page
    rows = table_rows(page, "alerts")
    assert rows[0][:3] == ["crítica", "caída de KPI", "Visualizaciones"]
    assert rows[0][3].startswith("Visualizaciones cayó por debajo de su intervalo de previsión")
    assert "2 alertas, 1 crítica." in section_html(page, "alerts")
    csv_lines = (folder / "tables" / "alerts.csv").read_text(encoding="utf-8").splitlines()
    assert csv_lines[0] == "gravedad;regla;sobre;qué ha pasado"  # ';': decimals have commas
    segments = table_rows(page, "rfm-segments")
    assert {r[0] for r in segments} <= {"campeones", "fieles", "en riesgo", "hibernando",
                                        "nuevos"}
    if not browser:
        pytest.skip("no chromium on the PATH for the PDF (`make browser` installs it); the "
                    "Spanish pages were checked")
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 (a dev dependency) missing")
    assert result.details["outputs"]["pdf"] == ["report.pdf", "executive.pdf"]
    pdf = pdfium.PdfDocument(str(folder / "pdf" / "executive.pdf"))
    first = pdf[0]
    text = first.get_textpage().get_text_range()
    assert "Resumen ejecutivo" in text and "Alertas" in text and "10 mar 2026" in text
    image = first.render(scale=1).to_pil().convert("L")
    pixels = list(image.getdata())
    ink = sum(p < 200 for p in pixels) / len(pixels)
    assert 0.01 < ink < 0.9, ink  # drawn, not blank and not a black page
    assert len(pdf) >= 2  # KPIs and trends with charts do not fit one page
