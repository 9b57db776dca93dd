"""The dashboard page: one self-contained HTML file (Plotly's JavaScript from the plotly
package inlined, the data as JSON, the app's script), and a loopback server for it.

Nothing is fetched from the network: the page works from a file, from ``mktpipe dashboard
--serve`` and offline.

The page speaks the active language (:mod:`mktpipe.i18n`; ``mktpipe dashboard`` renders under
``report.language``): ``dashboard.html`` is a Jinja template whose labels are
``{{ _("...") }}``, and its script gets the rest as JSON: the sentences it fills in (``TEXT``,
``{placeholders}``), the shown label of every dimension value (``LABELS``: the values
themselves, keys such as ``immediate_intervention``, stay what the filters use), the Intl tag
of its numbers and dates and Plotly's locale (month names, separators).
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from markupsafe import Markup

from mktpipe import i18n
from mktpipe.dashboard.data import DIMENSIONS, DashboardData
from mktpipe.i18n import N_, _

log = logging.getLogger(__name__)


def plotly_js() -> str:
    """plotly.min.js as shipped in the plotly package (no CDN)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


# the "all" option of each filter
ALL = {"segment": N_("all segments"), "churn_tier": N_("all churn tiers"),
       "community": N_("all communities"), "language": N_("all languages")}


def texts() -> dict[str, str]:
    """The sentences and names the page's script shows, in the active language; JS replaces
    their ``{placeholders}``."""
    return {**{f"all_{dim}": _(text) for dim, text in ALL.items()},
            "span": _("from {first} to {last}"),
            "customers_hint": _("{shown} of {total} listed (the riskiest {per_group} of each "
                                "segment and churn tier are in this page)."),
            "active_users": _("active users"), "users": _("users"), "views": _("views"),
            "revenue": _("revenue (USD)")}


def value_label(dim: str, value: Any) -> str:
    """The shown label of one value of a dashboard dimension (mktpipe.dashboard.data)."""
    text = str(value)
    if dim in ("segment", "churn_tier") and text == "(none)":
        return _("(no segment)") if dim == "segment" else _("(no churn tier)")
    if dim == "segment":
        return i18n.segment_label(text)
    if dim == "churn_tier":
        return i18n.value_label("tier", text)
    if dim == "community":
        number = text.removeprefix("community ")
        if number != text and number.isdigit():
            return _("community {n}").format(n=number)
        return {"other": _("other communities"), "none": _("no community")}.get(text, text)
    if dim == "language":
        if text in ("und", ""):
            return _("unknown")
        name = i18n.current().locale.languages.get(text)
        return str(name) if name else text
    return text


def labels(data: DashboardData) -> dict[str, dict[str, str]]:
    """{dimension: {value: shown label}} for every value in the page's tables; two values
    never share a label (a bar per value)."""
    out: dict[str, dict[str, str]] = {}
    for dim in DIMENSIONS:
        values = sorted({str(v) for df in (data.cube, data.users, data.customers)
                         if dim in df for v in df[dim].dropna().unique()})
        shown = {v: value_label(dim, v) for v in values}
        taken = list(shown.values())
        out[dim] = {v: (label if taken.count(label) == 1 else f"{label} ({v})")
                    for v, label in shown.items()}
    return out


def _json(value: Any) -> Markup:
    """``value`` as JSON to inline in a <script> element: every '<' escaped, so no text in it
    closes the element early or opens a comment."""
    return Markup(json.dumps(value, separators=(",", ":")).replace("<", "\\u003c"))


def render(data: DashboardData, per_group: int) -> str:
    """The page in the active language."""
    language = i18n.current()
    template = resources.files("mktpipe.dashboard").joinpath("dashboard.html") \
        .read_text(encoding="utf-8")
    plotly_locale = language.plotly_locale()
    symbols = plotly_locale["format"]
    default = language.code == i18n.DEFAULT
    page = {"lang": language.code, "tag": language.tag, "iso_dates": default,
            "separators": symbols["decimal"] + symbols["thousands"],
            # Plotly's built-in English is the fallback of the others: never replaced
            "plotly_locale": None if default else plotly_locale,
            "text": texts(), "labels": labels(data)}
    return i18n.jinja_environment().from_string(template).render(
        lang=language.code, snapshot=language.date(data.snapshot),
        snapshot_iso=data.snapshot.isoformat(), span=Markup('<span id="span"></span>'),
        data_json=_json({**data.as_json(), "per_group": per_group}), i18n_json=_json(page),
        plotly_js=Markup(plotly_js().replace("</script", "<\\/script")))


def serve(html: str, host: str = "127.0.0.1", port: int = 8050) -> ThreadingHTTPServer:
    """A server answering ``/`` with ``html`` (call ``serve_forever`` on it)."""
    body = html.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] not in ("/", "/index.html"):
                self.send_error(404, "only / is served")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            log.info("dashboard %s %s", self.address_string(), fmt % args)

    return ThreadingHTTPServer((host, port), Handler)
