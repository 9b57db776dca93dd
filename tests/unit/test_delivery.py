"""Report delivery by SMTP against a real SMTP server on loopback (aiosmtpd, started here):
the message arrives with the report, logins use the environment's credentials, a server that
fails is retried, and an unreachable one is reported without raising."""

from __future__ import annotations

import email
import socket
from email import policy

import pytest

from mktpipe.report.delivery import deliver

aiosmtpd = pytest.importorskip("aiosmtpd", reason="aiosmtpd (a dev dependency) not installed")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

HTML = "<html><body><h1>Report 2026-10-01</h1><p>Ventas ↑</p></body></html>"
ALERTS = [{"severity": "critical", "rule": "kpi_drop", "message": "Views fell below ..."}]


class Inbox:
    """Collects messages; refuses the first ``fail_first`` transactions with a 451."""

    def __init__(self, fail_first: int = 0) -> None:
        self.messages, self.envelopes, self.fail_first, self.calls = [], [], fail_first, 0

    async def handle_DATA(self, server, session, envelope):
        self.calls += 1
        if self.calls <= self.fail_first:
            return "451 4.3.0 try again later"
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), session.authenticated))
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    servers = []

    def start(handler, **kwargs):
        controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), **kwargs)
        controller.start()
        servers.append(controller)
        return controller

    yield start
    for controller in servers:
        controller.stop()


def _config(config, port, **delivery):
    cfg = config.model_copy(deep=True)
    cfg.delivery = cfg.delivery.model_copy(update={
        "enabled": True, "recipients": ["ana@example.com", "luis@example.com"],
        "sender": "mktpipe@example.com", "smtp_host": "127.0.0.1", "smtp_port": port,
        "tls": "none", "retry_wait_s": 0.0, "timeout_s": 10.0, **delivery})
    return cfg


def test_the_report_arrives_with_its_alerts_and_attachment(config, smtp_server, monkeypatch):
    monkeypatch.delenv("MKTPIPE_SMTP_USER", raising=False)
    inbox = Inbox()
    server = smtp_server(inbox)
    result = deliver(_config(config, server.port), "2026-10-01", HTML, ALERTS)
    assert result.status == "delivered" and result.attempts == 1 and result.refused == {}
    (msg,) = inbox.messages
    assert inbox.envelopes[0][:2] == ("mktpipe@example.com",
                                      ["ana@example.com", "luis@example.com"])
    assert msg["Subject"] == "mktpipe report 2026-10-01"
    text = msg.get_body(("plain",)).get_content()
    assert "[critical] Views fell below" in text
    assert msg.get_body(("html",)).get_content().strip() == HTML
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "mktpipe-report-2026-10-01.html"
    assert attachment.get_content().strip() == HTML  # text/html: decoded as text


def test_login_uses_the_environment_credentials(config, smtp_server, monkeypatch):
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((mechanism, auth_data.login, auth_data.password))
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 / 535

    inbox = Inbox()
    server = smtp_server(inbox, authenticator=authenticator, auth_require_tls=False)
    monkeypatch.setenv("MKTPIPE_SMTP_USER", "mktpipe")
    monkeypatch.setenv("MKTPIPE_SMTP_PASSWORD", "s3cret")
    result = deliver(_config(config, server.port), "2026-10-01", HTML)
    assert result.status == "delivered"
    assert seen and seen[0][1:] == (b"mktpipe", b"s3cret")
    assert inbox.envelopes[0][2] is True  # the session was authenticated

    monkeypatch.setenv("MKTPIPE_SMTP_PASSWORD", "wrong")
    failed = deliver(_config(config, server.port, retries=2), "2026-10-01", HTML)
    assert failed.status == "failed" and failed.attempts == 2
    assert "SMTPAuthenticationError" in failed.error


def test_a_temporary_failure_is_retried_with_backoff(config, smtp_server, monkeypatch):
    monkeypatch.delenv("MKTPIPE_SMTP_USER", raising=False)
    inbox = Inbox(fail_first=2)
    server = smtp_server(inbox)
    waits = []
    result = deliver(_config(config, server.port, retries=3, retry_wait_s=1.5), "2026-10-01",
                     HTML, sleep=waits.append)
    assert result.status == "delivered" and result.attempts == 3
    assert waits == [1.5, 3.0] and len(inbox.messages) == 1


def test_an_unreachable_server_is_reported_never_raised(config, monkeypatch):
    monkeypatch.delenv("MKTPIPE_SMTP_USER", raising=False)
    waits = []
    result = deliver(_config(config, _free_port(), retries=3), "2026-10-01", HTML,
                     sleep=waits.append)
    assert result.status == "failed" and result.attempts == 3 and len(waits) == 2
    assert "ConnectionRefusedError" in result.error
    disabled = config.model_copy(deep=True)
    assert deliver(disabled, "2026-10-01", HTML).status == "disabled"


def test_starttls_against_a_server_without_it_fails_cleanly(config, smtp_server, monkeypatch):
    monkeypatch.delenv("MKTPIPE_SMTP_USER", raising=False)
    server = smtp_server(Inbox())
    result = deliver(_config(config, server.port, tls="starttls", retries=1), "2026-10-01",
                     HTML)
    assert result.status == "failed" and "STARTTLS" in result.error


def test_delivery_settings_are_checked_at_load():
    from mktpipe.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="delivery.recipients"):
        load_config("test", {"delivery": {"enabled": True}})
    with pytest.raises(ConfigError, match="not e-mail addresses"):
        load_config("test", {"delivery": {"recipients": ["ana"]}})
