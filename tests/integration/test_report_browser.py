"""The HTML report opened in headless Chromium: every chart is actually drawn.

A harness page (in the test's tmp folder) loads the report in an iframe; its script inspects
every ``figure.chart`` of the report and writes a JSON verdict into the harness DOM, which
Chromium prints with ``--dump-dom``. A chart counts as drawn when its ``<svg>`` has a non-zero
bounding box, non-empty drawn content (``getBBox``) and shapes, or its ``<img>`` is
``complete`` with ``naturalWidth > 0``. The same script lists the resources the report
loaded (must be none: the file is self-contained). A deliberately broken copy of the report
checks that the harness does catch an empty SVG and a broken image. A full-page screenshot
goes to the tmp folder for a human look.

Needs the ``chromium`` binary (Debian: ``apt-get install -y chromium``); skipped without it.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--allow-file-access-from-files")
PIXEL_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
             "AAAABJRU5ErkJggg==")

HARNESS = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>report harness</title></head><body>
<pre id="result">pending</pre>
<iframe id="report" src="__REPORT__" style="width:1400px;height:2000px"></iframe>
<script>
const frame = document.getElementById("report");
frame.addEventListener("load", () => {
  const out = {charts: [], sections: [], resources: [], error: null};
  try {
    const doc = frame.contentDocument;
    out.sections = [...doc.querySelectorAll("section[data-section]")]
      .map(s => s.dataset.section);
    out.resources = frame.contentWindow.performance.getEntriesByType("resource")
      .map(e => e.name);
    for (const fig of doc.querySelectorAll("figure.chart")) {
      const svg = fig.querySelector("svg"), img = fig.querySelector("img");
      const c = {id: fig.dataset.chart, kind: svg ? "svg" : (img ? "img" : "none"), ok: false};
      if (svg) {
        const box = svg.getBoundingClientRect(), inner = svg.getBBox();
        c.width = box.width; c.height = box.height; c.drawn = inner.width * inner.height;
        c.shapes = svg.querySelectorAll("path, use, rect, line, polyline, circle").length;
        c.ok = box.width > 0 && box.height > 0 && c.drawn > 0 && c.shapes > 0;
      } else if (img) {
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        c.ok = img.complete && img.naturalWidth > 0;
      }
      out.charts.push(c);
    }
  } catch (e) { out.error = String(e); }
  document.getElementById("result").textContent = JSON.stringify(out);
});
</script></body></html>
"""


def find_chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium not installed; `make test` installs it with apt-get where possible "
                    "(apt-get install -y chromium)")
    return binary


@pytest.fixture(scope="module")
def rendered(sample_report, tmp_path_factory):
    """The sample report (built once per session, shared with tests/unit/test_report.py) and
    a folder of this test's own for the harness pages and browser profiles."""
    _cfg, _sample, result, _page = sample_report
    return result, Path(result.details["path"]), tmp_path_factory.mktemp("report-browser")


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def inspect(binary: str, report: Path, work: Path) -> dict:
    """Load ``report`` in the harness and return the harness's JSON verdict."""
    harness = work / f"harness-{report.stem}.html"
    harness.write_text(HARNESS.replace("__REPORT__", report.resolve().as_uri()),
                       encoding="utf-8")
    done = run_chromium(binary, work / f"profile-{report.stem}", "--virtual-time-budget=10000",
                        "--dump-dom", harness.as_uri())
    match = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, re.S)
    assert match, f"no harness result (rc {done.returncode}): {done.stderr[-2000:]}"
    text = html.unescape(match.group(1))
    assert text != "pending", "the report never loaded in the iframe"
    return json.loads(text)


def test_every_chart_is_drawn_in_chromium(chromium, rendered):
    result, report, root = rendered
    verdict = inspect(chromium, report, root)
    assert verdict["error"] is None
    assert verdict["sections"] == result.details["sections"]
    charts = verdict["charts"]
    assert len(charts) == result.details["charts"] >= 12
    not_drawn = [c for c in charts if not c["ok"]]
    assert not_drawn == [], f"charts not drawn: {not_drawn}"
    assert all(c["kind"] == "svg" and c["width"] >= 300 for c in charts)
    assert verdict["resources"] == []  # nothing fetched: the report is self-contained


def test_harness_catches_empty_and_broken_charts(chromium, rendered):
    _, report, root = rendered
    page = report.read_text(encoding="utf-8")
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    broken = page.replace(svgs[0], "<svg></svg>", 1)
    broken = broken.replace(svgs[1], '<img alt="x" src="data:image/png;base64,AAAA">', 1)
    broken = broken.replace(svgs[2], f'<img alt="x" src="data:image/png;base64,{PIXEL_PNG}">',
                            1)
    copy = root / "broken.html"
    copy.write_text(broken, encoding="utf-8")
    charts = inspect(chromium, copy, root)["charts"]
    assert [(c["kind"], c["ok"]) for c in charts[:3]] == [("svg", False), ("img", False),
                                                          ("img", True)]
    assert all(c["ok"] for c in charts[3:])


def test_screenshot(chromium, rendered, tmp_path):
    _, report, _ = rendered
    shot = tmp_path / "report.png"
    done = run_chromium(chromium, tmp_path / "profile", f"--screenshot={shot}",
                        "--window-size=1400,5000", report.resolve().as_uri())
    assert shot.exists(), done.stderr[-2000:]
    from PIL import Image  # matplotlib's dependency

    with Image.open(shot) as image:
        assert image.size == (1400, 5000)
        colours = image.convert("RGB").resize((140, 500)).getcolors(maxcolors=100_000)
        assert colours is not None and len(colours) > 50  # not a blank page
