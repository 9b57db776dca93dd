"""The report's other outputs: variants per audience, PDFs and the tables as CSV.

From the same sections the full report (``index.html``) is built from, the report stage writes
under ``<paths.reports>/<D>/``:

* ``<audience>.html`` for each of ``report.audiences``: the sections that reader needs, in
  report order (``AUDIENCES``): executive (alerts, KPIs, trends and their forecast), marketing
  (alerts, KPIs, the forecast tournament, segments, influencers), technical (alerts, forecast
  backtests and diagnostics, model quality, data quality with every stage's timings);
* ``pdf/<name>.pdf`` for the full report and each audience (``report.formats`` has ``pdf``):
  printed by headless Chromium (``report.browser``, else ``chromium`` / ``google-chrome`` on
  the PATH) from the same HTML, so the PDF is exactly the page; without a browser the PDFs are
  skipped with the reason in the result (the HTML is complete on its own);
* ``tables/<table id>.csv`` for every table shown (``csv``): the figures behind the page, for a
  spreadsheet (';'-separated where the language writes decimals with a comma).

Every file goes through the file door (local disk or object storage); the PDF is printed in a
local temporary folder and then copied.
"""

from __future__ import annotations

import csv
import io
import logging
import subprocess
from collections.abc import Callable

from mktpipe import i18n
from mktpipe.config import Config
from mktpipe.i18n import N_, _
from mktpipe.report.blocks import Section, Table
from mktpipe.storage import files

log = logging.getLogger(__name__)

# audience -> (title, section ids, who it is for); texts shown through _()
AUDIENCES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "executive": (N_("Executive summary"), ("alerts", "kpis", "trends"),
                  N_("For executives: alerts, the headline KPIs and where they are heading.")),
    "marketing": (N_("Marketing report"),
                  ("alerts", "kpis", "forecasts", "segments", "influencers"),
                  N_("For the marketing team: KPIs, forecasts, segments with their actions, "
                     "influencers and communities.")),
    "technical": (N_("Technical report"), ("alerts", "forecasts", "models", "quality"),
                  N_("For the data team: forecast backtests, model quality, data quality and "
                     "pipeline timings.")),
}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-pdf-header-footer")

Render = Callable[[list[Section], str, str, str], str]  # sections, title, audience, note -> html


def audience_sections(sections: list[Section], audience: str) -> list[Section]:
    wanted = AUDIENCES[audience][1]
    return [s for s in sections if s.id in wanted]


def table_csv(table: Table) -> str:
    """The table as the page shows it; where the decimal sign is a comma (Spanish) the
    separator is ';', as a spreadsheet in that locale expects."""
    out = io.StringIO()
    decimal = i18n.current().locale.number_symbols["latn"]["decimal"]
    writer = csv.writer(out, lineterminator="\n", delimiter=";" if decimal == "," else ",")
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    return out.getvalue()


def write_csvs(sections: list[Section], folder: str) -> list[str]:
    """Every table of ``sections`` as ``<folder>/tables/<id>.csv``; the file names."""
    written = []
    for section in sections:
        for n, block in enumerate(b for b in section.blocks if isinstance(b, Table)):
            name = f"{block.id or f'{section.id}-{n + 1}'}.csv"
            files.write_text(files.join(folder, "tables", name), table_csv(block))
            written.append(name)
    return written


def print_pdf(html: str, dest: str, browser: str, timeout_s: float) -> int:
    """``html`` printed to PDF by headless Chromium into ``dest``; the PDF's size in bytes."""
    tmp = files.local_temp_dir("mktpipe-pdf-")
    try:
        page, pdf = files.join(tmp, "page.html"), files.join(tmp, "page.pdf")
        files.write_text(page, html)
        cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={files.join(tmp, 'profile')}",
               f"--print-to-pdf={pdf}", f"file://{page}"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
        if not files.exists(pdf):
            raise RuntimeError(f"{browser} wrote no PDF (exit {done.returncode}): "
                               f"{done.stderr.strip()[-300:]}")
        data = files.read_bytes(pdf)
        files.write_bytes(dest, data)
        return len(data)
    finally:
        files.delete(tmp)


def write_outputs(config: Config, sections: list[Section], full_html: str, folder: str,
                  render: Render) -> dict:
    """The audience pages, PDFs and CSVs of ``report.*`` into ``folder``; what was written and
    what was skipped (with why) as a dict for the stage result."""
    cfg = config.report
    pages = {"index": full_html}
    out: dict = {"html": [], "pdf": [], "csv": [], "skipped": []}
    for audience in cfg.audiences:
        title, _ids, note = AUDIENCES[audience]
        pages[audience] = render(audience_sections(sections, audience), _(title), audience,
                                 _(note))
        if "html" in cfg.formats:
            files.write_text(files.join(folder, f"{audience}.html"), pages[audience])
            out["html"].append(f"{audience}.html")
    if "csv" in cfg.formats:
        out["csv"] = write_csvs(sections, folder)
    if "pdf" in cfg.formats:
        browser = files.local_executable(BROWSERS, cfg.browser)
        if browser is None:
            why = (f"no browser to print PDFs ({cfg.browser or ' / '.join(BROWSERS)} not "
                   "found): install chromium or set report.browser")
            log.warning("report: %s; the HTML pages are complete", why)
            out["skipped"].append(why)
            return out
        for name, html in pages.items():
            name = "report" if name == "index" else name
            try:
                print_pdf(html, files.join(folder, "pdf", f"{name}.pdf"), browser,
                          cfg.pdf_timeout_s)
                out["pdf"].append(f"{name}.pdf")
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                log.warning("report: the PDF of %s failed: %s", name, exc)
                out["skipped"].append(f"{name}.pdf: {type(exc).__name__}: {exc}")
    return out
