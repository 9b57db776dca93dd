"""The dashboard page: one self-contained HTML file (Plotly's JavaScript from the plotly
package inlined, the data as JSON, the app's script), and a loopback server for it.

Nothing is fetched from the network: the page works from a file, from ``mktpipe dashboard
--serve`` and offline.
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from mktpipe.dashboard.data import DashboardData

log = logging.getLogger(__name__)


def plotly_js() -> str:
    """plotly.min.js as shipped in the plotly package (no CDN)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def render(data: DashboardData, per_group: int) -> str:
    template = resources.files("mktpipe.dashboard").joinpath("dashboard.html") \
        .read_text(encoding="utf-8")
    payload = json.dumps({**data.as_json(), "per_group": per_group}, separators=(",", ":"))
    payload = payload.replace("</", "<\\/")  # never closes the script element early
    return (template.replace("{{ snapshot }}", data.snapshot.isoformat())
            .replace("{{ data_json }}", payload)
            .replace("{{ plotly_js }}", plotly_js().replace("</script", "<\\/script")))


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
