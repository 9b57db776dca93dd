"""Scheduled delivery: the report sent by SMTP to the configured recipients.

After the report stage has written ``reports/<D>/index.html``, :func:`deliver` (called by the
stage when ``delivery.enabled``) sends one message to ``delivery.recipients``: a plain-text
part (the alerts), the report itself as the HTML part, the report as an attachment
``mktpipe-report-<D>.html`` (a mail client that strips HTML still has it) and the PDFs the
stage printed (the full report and one per audience).

SMTP server, port and TLS (``starttls``, ``ssl`` or ``none``) come from the config; the login,
when the server needs one, from the environment variables ``delivery.username_env`` /
``delivery.password_env`` (never from a config file). A failed attempt (connection refused,
timeout, a temporary or permanent SMTP error) is retried ``delivery.retries`` times in all,
waiting ``retry_wait_s`` and doubling; delivery never raises: the data pipeline does not fail
because mail did not go out. What happened (delivered or failed, attempts, the last error,
the recipients refused) goes to the stage result and the run manifest, and a failure is
logged as an error.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from mktpipe.config import Config, optional_secret
from mktpipe.i18n import _, ngettext, value_label

log = logging.getLogger(__name__)


@dataclass
class DeliveryResult:
    status: str  # delivered | failed | disabled
    attempts: int = 0
    recipients: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # address -> the server's answer
    error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def build_message(config: Config, snapshot: str, html: str, alerts: list[dict],
                  pdfs: dict[str, bytes] | None = None) -> EmailMessage:
    d = config.delivery
    msg = EmailMessage()
    msg["Subject"] = d.subject.format(snapshot=snapshot)
    msg["From"] = d.sender
    msg["To"] = ", ".join(d.recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=d.sender.rpartition("@")[2] or "mktpipe")
    lines = [_("mktpipe report for the snapshot {day}.").format(day=snapshot), ""]
    if alerts:
        lines.append(ngettext("{n} alert:", "{n} alerts:", len(alerts)).format(n=len(alerts)))
        lines += [f"- [{value_label('severity', a['severity'])}] {a['message']}"
                  for a in alerts]
    else:
        lines.append(_("No alerts."))
    lines += ["", _("The full report is attached (and is the HTML part of this message).")]
    msg.set_content("\n".join(lines))
    msg.add_alternative(html, subtype="html")
    # as text with its charset (as bytes, a reader would not know it is UTF-8)
    msg.add_attachment(html, subtype="html", charset="utf-8",
                       filename=f"mktpipe-report-{snapshot}.html")
    for name, data in (pdfs or {}).items():  # the audience PDFs, when the stage printed them
        msg.add_attachment(data, maintype="application", subtype="pdf",
                           filename=f"mktpipe-{name.removesuffix('.pdf')}-{snapshot}.pdf")
    return msg


def _send_once(config: Config, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
    d = config.delivery
    context = ssl.create_default_context()
    if d.tls == "ssl":
        client = smtplib.SMTP_SSL(d.smtp_host, d.smtp_port, timeout=d.timeout_s,
                                  context=context)
    else:
        client = smtplib.SMTP(d.smtp_host, d.smtp_port, timeout=d.timeout_s)
    with client:
        client.ehlo()
        if d.tls == "starttls":
            client.starttls(context=context)
            client.ehlo()
        user, password = optional_secret(d.username_env), optional_secret(d.password_env)
        if user:
            client.login(user, password or "")
        return client.send_message(msg)


def deliver(config: Config, snapshot: str, html: str, alerts: list[dict] | None = None,
            sleep=time.sleep, pdfs: dict[str, bytes] | None = None) -> DeliveryResult:
    """Send the report; retried, never raises (see the module docstring)."""
    d = config.delivery
    if not d.enabled:
        return DeliveryResult("disabled")
    msg = build_message(config, snapshot, html, alerts or [], pdfs)
    result = DeliveryResult("failed", recipients=list(d.recipients))
    started = time.monotonic()
    wait = d.retry_wait_s
    for attempt in range(1, d.retries + 1):
        result.attempts = attempt
        try:
            refused = _send_once(config, msg)
        except (OSError, smtplib.SMTPException) as exc:  # OSError: refused, timeout, TLS
            result.error = f"{type(exc).__name__}: {exc}"
            log.warning("report %s: delivery attempt %d of %d to %s:%d failed: %s", snapshot,
                        attempt, d.retries, d.smtp_host, d.smtp_port, result.error)
            if attempt < d.retries:
                sleep(wait)
                wait *= 2
            continue
        result.refused = {k: f"{code} {text.decode(errors='replace')}"
                          for k, (code, text) in refused.items()}
        result.status, result.error = "delivered", None
        break
    result.seconds = round(time.monotonic() - started, 2)
    if result.status == "failed":
        log.error("report %s: not delivered to %s after %d attempts: %s (the report is on "
                  "disk; the pipeline goes on)", snapshot, ", ".join(d.recipients),
                  result.attempts, result.error)
    else:
        log.info("report %s: delivered to %d recipients in %d attempt(s)", snapshot,
                 len(d.recipients) - len(result.refused), result.attempts)
    return result
