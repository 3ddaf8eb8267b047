"""The email and webhook channels over TLS, against real servers: an SMTP server (aiosmtpd) with
STARTTLS or implicit TLS, an https receiver (pytest-httpserver), each with a certificate from a CA the
test makes. What is delivered is verified; what is refused says why, and is never sent in clear."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine

from tests.smtp_inbox import Inbox
from tests.tls_servers import Pki
from todo.adapters.channels import Channels, new_webhook_secret
from todo.domain.reminders import NotificationSettings, Webhook
from todo.service.reminders import Attempt, Triggered
from todo.settings import Settings
from todo_dev import ports

SMTP_PORT = ports.test_port(41)
HTTPS_PORT = ports.test_port(43)
REMINDER = Triggered(7, "alice", 42, "call mum", None, datetime.now(UTC) + timedelta(minutes=5))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.make(tmp_path_factory.mktemp("pki"))


def channels(tmp_path: Path, **settings: Any) -> Channels:
    return Channels(Settings(data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=SMTP_PORT).with_(**settings),
                    create_engine("sqlite://"), sleep=lambda _: None)


def email(chosen: Channels) -> Attempt:
    [attempt] = chosen.send("email:alice@example.com", NotificationSettings(email="alice@example.com"), REMINDER)
    return attempt


class SmtpServer:
    def __init__(self, **kwargs: Any) -> None:
        self.inbox = Inbox()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=SMTP_PORT, **kwargs)

    def __enter__(self) -> Inbox:
        self.controller.start()
        return self.inbox

    def __exit__(self, *_: object) -> None:
        self.controller.stop()


def starttls(context: ssl.SSLContext) -> SmtpServer:
    """An SMTP server that takes mail only after STARTTLS (530 before it)."""
    return SmtpServer(tls_context=context, require_starttls=True)


# -- email ---------------------------------------------------------------------------------------------


def test_a_reminder_email_goes_through_starttls_to_a_server_whose_certificate_is_verified(
        tmp_path: Path, pki: Pki) -> None:
    with starttls(pki.server_context("127.0.0.1")) as inbox:
        attempt = email(channels(tmp_path, smtp_tls="starttls", smtp_ca=pki.ca_file))
    assert attempt == Attempt(True)
    assert [m.rcpt_tos for m in inbox.messages] == [["alice@example.com"]]
    assert b"call mum" in inbox.messages[0].content


def test_starttls_is_the_default(tmp_path: Path, pki: Pki) -> None:
    with starttls(pki.server_context("127.0.0.1")) as inbox:
        attempt = email(channels(tmp_path, smtp_ca=pki.ca_file))
    assert attempt.ok and len(inbox.messages) == 1


def test_an_smtp_certificate_from_an_untrusted_ca_is_refused_and_nothing_is_sent(tmp_path: Path, pki: Pki) -> None:
    with starttls(pki.server_context("127.0.0.1", by_stranger=True)) as inbox:
        attempt = email(channels(tmp_path, smtp_tls="starttls", smtp_ca=pki.ca_file))
    assert not attempt.ok and inbox.messages == []
    assert attempt.detail is not None
    assert f"SMTP server 127.0.0.1:{SMTP_PORT}: the server's certificate is not trusted" in attempt.detail
    assert pki.ca_file in attempt.detail


def test_an_smtp_certificate_for_another_host_is_refused(tmp_path: Path, pki: Pki) -> None:
    with starttls(pki.server_context("mail.example.com")) as inbox:
        attempt = email(channels(tmp_path, smtp_tls="starttls", smtp_ca=pki.ca_file))
    assert not attempt.ok and inbox.messages == []
    assert attempt.detail is not None and "not valid for the host name dialled" in attempt.detail


def test_a_server_without_starttls_gets_no_mail_in_clear_text(tmp_path: Path, pki: Pki) -> None:
    with SmtpServer() as inbox:
        attempt = email(channels(tmp_path, smtp_tls="starttls", smtp_ca=pki.ca_file))
    assert not attempt.ok and inbox.messages == []
    assert attempt.detail is not None and "STARTTLS" in attempt.detail and "TODO_SMTP_TLS" in attempt.detail


def test_implicit_tls_delivers_to_a_verified_server(tmp_path: Path, pki: Pki) -> None:
    with SmtpServer(ssl_context=pki.server_context("127.0.0.1")) as inbox:
        attempt = email(channels(tmp_path, smtp_tls="tls", smtp_ca=pki.ca_file))
    assert attempt.ok and len(inbox.messages) == 1


def test_implicit_tls_refuses_an_untrusted_certificate(tmp_path: Path, pki: Pki) -> None:
    with SmtpServer(ssl_context=pki.server_context("127.0.0.1", by_stranger=True)) as inbox:
        attempt = email(channels(tmp_path, smtp_tls="tls", smtp_ca=pki.ca_file))
    assert not attempt.ok and inbox.messages == []
    assert attempt.detail is not None and "not trusted" in attempt.detail


# -- webhooks ------------------------------------------------------------------------------------------


@pytest.fixture
def https_receiver(pki: Pki, request: pytest.FixtureRequest) -> Iterator[tuple[HTTPServer, str]]:
    by_stranger = getattr(request, "param", "trusted") == "stranger"
    server = HTTPServer("127.0.0.1", HTTPS_PORT, ssl_context=pki.server_context("127.0.0.1", by_stranger=by_stranger))
    server.expect_request("/hook", method="POST").respond_with_data("", status=204)
    server.start()
    yield server, f"https://127.0.0.1:{HTTPS_PORT}/hook"
    server.clear()
    if server.is_running():
        server.stop()


def webhook(chosen: Channels, url: str) -> list[Attempt]:
    settings = NotificationSettings(in_app=False, webhooks=(Webhook(url, new_webhook_secret()),))
    return chosen.send(f"webhook:{url}", settings, REMINDER)


def test_a_webhook_over_https_reaches_a_receiver_whose_certificate_is_verified(
        tmp_path: Path, pki: Pki, https_receiver: tuple[HTTPServer, str], monkeypatch: pytest.MonkeyPatch) -> None:
    server, url = https_receiver
    monkeypatch.setenv("SSL_CERT_FILE", pki.ca_file)  # what httpx's verify=True trusts instead of certifi
    attempts = webhook(channels(tmp_path, webhook_allow_private=True), url)
    assert attempts == [Attempt(True, "HTTP 204")]
    assert len(server.log) == 1


@pytest.mark.parametrize("https_receiver", ["stranger"], indirect=True)
def test_a_webhook_receiver_with_an_untrusted_certificate_is_refused_once_without_retries(
        tmp_path: Path, pki: Pki, https_receiver: tuple[HTTPServer, str], monkeypatch: pytest.MonkeyPatch) -> None:
    server, url = https_receiver
    monkeypatch.setenv("SSL_CERT_FILE", pki.ca_file)
    attempts = webhook(channels(tmp_path, webhook_allow_private=True), url)
    assert [a.ok for a in attempts] == [False]  # a certificate does not become trusted by retrying
    assert attempts[0].detail is not None
    assert f"webhook receiver 127.0.0.1:{HTTPS_PORT}: the server's certificate is not trusted" in attempts[0].detail
    assert server.log == []


def test_a_plain_http_webhook_is_refused_unless_development_allows_it(
        tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=204)
    url = httpserver.url_for("/hook")
    refused = webhook(channels(tmp_path, webhook_allow_private=True), url)
    assert [a.ok for a in refused] == [False] and httpserver.log == []
    assert refused[0].detail is not None and "https" in refused[0].detail
    allowed = webhook(channels(tmp_path, webhook_allow_private=True, webhook_allow_http=True), url)
    assert [a.ok for a in allowed] == [True] and len(httpserver.log) == 1
