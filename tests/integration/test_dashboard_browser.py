"""The dashboard in a real browser: Debian's Chromium driven by Playwright clicks filters and
bars, and the figures, charts and customer list change to the values computed here from the
sample warehouse's rows (mktpipe.report.sample) in plain Python.

Skips when Playwright (a dev dependency) or a Chromium binary (`make browser`) is missing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest

from mktpipe import i18n
from mktpipe.catalog import BRONZE_USERS
from mktpipe.dashboard.data import build
from mktpipe.dashboard.page import render, serve
from mktpipe.report.outputs import BROWSERS
from mktpipe.report.sample import sample_rows, write_tables
from mktpipe.storage import files, open_store

pytestmark = pytest.mark.integration

SNAP = dt.date(2026, 3, 10)
KEY = b"dashboard-test-key-0123456789"
PATH_KEYS = ("landing", "warehouse", "truth", "models", "reports", "exports", "checkpoints")


@pytest.fixture(scope="module")
def dashboard(spark, config, tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard")
    cfg = config.model_copy(deep=True)
    for key in PATH_KEYS:
        setattr(cfg.paths, key, str(root / key))
    sample = sample_rows(SNAP)  # the tables only: no registry, manifests or trends
    write_tables(spark, cfg, sample)
    store = open_store(spark, cfg)
    languages = {f"u{i:02d}": ("es" if i % 2 else "en") for i in range(1, 13)}
    store.write(spark.createDataFrame(sorted(languages.items()), "user_id string, language string"),
                BRONZE_USERS, mode="overwrite")
    data = build(store, cfg, SNAP, days=90, per_group=50, key=KEY)
    html = render(data, 50)
    path = root / "dashboard.html"
    files.write_text(str(path), html)
    return data, path, sample, languages


def expected(sample, languages, first=None, **where):
    """Scored users, views and revenue over the days >= ``first`` of the users matching
    ``where`` (segment=..., churn_tier=..., language=...)."""
    scored = {r["user_id"]: {**r, "language": languages[r["user_id"]]}
              for r in sample.segments if r["snapshot_date"] == SNAP}
    keep = {u for u, r in scored.items() if all(r[k] == v for k, v in where.items())}
    days = [r for r in sample.daily if r["user_id"] in keep
            and SNAP - dt.timedelta(days=90) <= r["activity_date"] < SNAP
            and (first is None or r["activity_date"] >= first)]
    return {"users": len(keep), "views": sum(r["views"] for r in days),
            "revenue": round(sum(r["spend_usd"] for r in days), 2)}


def test_the_aggregates_equal_the_rows(dashboard):
    data, _, sample, languages = dashboard
    want = expected(sample, languages)
    assert int(data.users["users"].sum()) == want["users"] == 12
    assert int(data.cube["views"].sum()) == want["views"]
    assert round(float(data.cube["revenue"].sum()), 2) == pytest.approx(want["revenue"])
    # the drill-down list: pseudonymised ids only, the riskiest first
    assert data.customers["user_key"].str.fullmatch("[0-9a-f]{64}").all()
    assert not data.customers["user_key"].isin(list(languages)).any()
    assert list(data.customers["churn_probability"]) == sorted(
        data.customers["churn_probability"], reverse=True)
    assert set(data.users["community"]) == {"community 1", "community 2"}  # ids not shown


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright (a dev dependency) not installed")
    path = files.local_executable(BROWSERS)
    if path is None:
        pytest.skip("no chromium on the PATH (`make browser` installs the Debian package)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


def _kpi(page, key: str) -> float:
    return float(page.get_attribute(f'[data-kpi="{key}"]', "data-value"))


def _rendered(page, n: int) -> None:
    page.wait_for_function(f"Number(document.body.dataset.rendered) >= {n}")


def test_filters_and_clicks_cross_filter_every_figure(dashboard, browser):
    data, path, sample, languages = dashboard
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    _rendered(page, 1)
    start = expected(sample, languages)
    assert (_kpi(page, "users"), _kpi(page, "views")) == (start["users"], start["views"])
    assert _kpi(page, "revenue") == pytest.approx(start["revenue"])

    # a segment from its filter: every figure and chart follows
    page.select_option("#f-segment", "average")
    _rendered(page, 2)
    want = expected(sample, languages, segment="average")
    assert (_kpi(page, "users"), _kpi(page, "views")) == (want["users"], want["views"])
    assert _kpi(page, "revenue") == pytest.approx(want["revenue"])
    tiers = page.evaluate("document.getElementById('chart-churn_tier').data[0]")
    scored = [r for r in sample.segments if r["snapshot_date"] == SNAP
              and r["segment"] == "average"]
    # the bars show labels; their customdata are the values the filters use
    assert dict(zip(tiers["customdata"], tiers["y"])) == Counter(r["churn_tier"] for r in scored)
    assert "immediate intervention" in tiers["x"]
    rows = page.locator("#customers tbody tr")
    assert rows.count() == want["users"]
    assert {rows.nth(i).get_attribute("data-segment") for i in range(rows.count())} == {"average"}
    assert all(re.fullmatch("[0-9a-f]{64}", rows.nth(i).locator("td").first.get_attribute("title"))
               for i in range(rows.count()))

    # drill down by clicking the tallest bar of the language chart (a real mouse click)
    page.select_option("#f-segment", "")
    _rendered(page, 3)
    bars = page.evaluate("document.getElementById('chart-language').data[0]")
    first_bar = page.locator("#chart-language .point").first
    first_bar.scroll_into_view_if_needed()
    box = first_bar.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 2, y)  # Plotly reports a click on the point under the hover
    page.mouse.move(x, y)
    page.wait_for_function("document.getElementById('chart-language')._hoverdata")
    page.mouse.click(x, y)
    _rendered(page, 4)
    language = bars["customdata"][0]
    assert bars["x"][0] == {"en": "English", "es": "Spanish"}[language]
    assert page.eval_on_selector("#f-language", "e => e.value") == language
    want = expected(sample, languages, language=language)
    assert (_kpi(page, "users"), _kpi(page, "views")) == (want["users"], want["views"])

    # a shorter date range
    first = SNAP - dt.timedelta(days=14)
    page.fill("#f-from", first.isoformat())
    page.dispatch_event("#f-from", "change")
    _rendered(page, 5)
    want = expected(sample, languages, first=first, language=language)
    assert _kpi(page, "views") == want["views"]
    assert _kpi(page, "revenue") == pytest.approx(want["revenue"])

    page.click("#reset")
    _rendered(page, 6)
    assert _kpi(page, "views") == start["views"]
    assert all(url.startswith("file://") for url in requests), requests  # nothing fetched
    page.close()


@pytest.fixture(scope="module")
def spanish(dashboard, tmp_path_factory):
    data = dashboard[0]
    with i18n.use("es"):
        html = render(data, 50)
    path = tmp_path_factory.mktemp("dashboard_es") / "dashboard.html"
    files.write_text(str(path), html)
    return html, path


def test_the_spanish_page_has_no_english_label(spanish, english_words):
    html, _ = spanish
    assert '<html lang="es">' in html
    assert english_words(html) == []


def test_the_spanish_page_in_a_browser(dashboard, spanish, browser, english_words):
    """Spanish separators in the figures, translated options, bars and the sentences the
    script writes (no English left in what the reader sees once it has run)."""
    _, _, sample, languages = dashboard
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page.goto(spanish[1].as_uri())
    _rendered(page, 1)
    es = i18n.language("es")
    start = expected(sample, languages)
    assert _kpi(page, "views") == start["views"]
    assert page.inner_text('[data-kpi="views"] .v') == es.integer(start["views"])
    assert page.inner_text('[data-kpi="revenue"] .v') == es.number(start["revenue"], 2)
    assert page.inner_text('#f-segment option[value=""]') == "todos los segmentos"
    assert page.inner_text('#f-language option[value="es"]') == "español"
    bars = page.evaluate("document.getElementById('chart-language').data[0]")
    assert sorted(bars["x"]) == ["español", "inglés"]
    assert page.inner_text("#span").startswith("del ")
    assert english_words(page.content()) == []
    page.close()


def test_the_server_answers_on_loopback(dashboard):
    import threading
    import urllib.request

    _, path, _, _ = dashboard
    html = path.read_text(encoding="utf-8")
    server = serve(html, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as answer:
            assert answer.read().decode("utf-8") == html
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other")
    finally:
        server.shutdown()
        server.server_close()
