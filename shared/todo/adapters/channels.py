"""Notification channels: in-app (a message on task-updates), email, and signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ..domain.reminders import NotificationSettings, Webhook
from ..domain.task import iso
from ..service.reminders import Attempt, Triggered
from ..settings import Settings
from .change_feed import SqlChangeFeed
from .tls import certificate_refused, client_context, explain, trust

WEBHOOK_RETRIES = (0.0, 0.5, 2.0)  # waits before each attempt: finite, with backoff
WEBHOOK_TRUST = "certifi's CA bundle (SSL_CERT_FILE replaces it)"  # what httpx's verify=True trusts


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign_webhook(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: ``v1,`` + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class UnsafeTarget(ValueError):
    """The webhook would reach this machine or a private network, or travel in clear text."""


def check_target(url: str, allow_private: bool, allow_http: bool = False) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeTarget("webhooks must be http(s) URLs with a host")
    if parts.scheme == "http" and not allow_http:
        raise UnsafeTarget("webhooks must be https URLs: plain http is for development only "
                           "(TODO_WEBHOOK_ALLOW_HTTP=1)")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise UnsafeTarget(f"cannot resolve {parts.hostname}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise UnsafeTarget(f"{parts.hostname} resolves to a non-public address ({address})")


def message(reminder: Triggered) -> dict[str, Any]:
    return {"type": "reminder", "task_id": reminder.task_id, "title": reminder.title,
            "due_at": iso(reminder.due_at), "remind_at": iso(reminder.remind_at), "user_id": reminder.user_id}


class Channels:
    def __init__(self, settings: Settings, engine: Engine, *, sleep: Callable[[float], None] = time.sleep,
                 dapr_client: Callable[[], Any] | None = None,
                 on_queued: Callable[[Collection[str]], None] | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.on_queued = on_queued  # wakes the outbox relay
        self.sleep = sleep
        self.dapr_client = dapr_client
        self._smtp_context: ssl.SSLContext | None = None

    def send(self, channel: str, settings: NotificationSettings, reminder: Triggered) -> list[Attempt]:
        kind, _, target = channel.partition(":")
        if kind == "in_app":
            return [self._in_app(reminder)]
        if kind == "email":
            return [self._email(target, reminder)]
        webhook = next((w for w in settings.webhooks if w.url == target), None)
        if webhook is None:
            return [Attempt(False, "the webhook is no longer configured")]
        return self._webhook(webhook, reminder)

    def _in_app(self, reminder: Triggered) -> Attempt:
        """A ``reminder`` message in the user's change feed, for push-update (one per reminder: the
        outbox event's id is fixed, so a second attempt rolls back with its number)."""
        now = datetime.now(UTC)
        body = {"type": "reminder", "reminder": message(reminder), "time": iso(now)}
        try:
            with self.engine.begin() as conn:
                feed = SqlChangeFeed(conn)
                feed.append(reminder.user_id, body, now, event_id=f"reminder-{reminder.reminder_id}")
        except IntegrityError:  # its fixed event id is queued already: delivered before
            return Attempt(True, "already queued")
        except Exception as exc:
            return Attempt(False, repr(exc))
        if self.on_queued is not None:
            self.on_queued(frozenset(feed.queued))
        return Attempt(True)

    def _email(self, to: str, reminder: Triggered) -> Attempt:
        subject = f"Reminder: {reminder.title}"
        due = f" (due {iso(reminder.due_at)})" if reminder.due_at else ""
        body = f"{reminder.title}{due}\n"
        try:
            if self.settings.events == "dapr":
                self._dapr().invoke_binding(self.settings.email_binding, "create", body,
                                            binding_metadata={"emailTo": to, "subject": subject})
            else:
                if self.settings.smtp_host is None:
                    return Attempt(False, "no SMTP server configured (TODO_SMTP_HOST)")
                mail = EmailMessage()
                mail["From"], mail["To"], mail["Subject"] = self.settings.mail_from, to, subject
                mail.set_content(body)
                self._smtp_send(mail)
        except smtplib.SMTPNotSupportedError as exc:  # STARTTLS not offered: the mail is not sent in clear
            return Attempt(False, f"SMTP server {self.settings.smtp_host}:{self.settings.smtp_port}: {exc} "
                                  "(TODO_SMTP_TLS=starttls requires it)")
        except Exception as exc:
            peer = f"SMTP server {self.settings.smtp_host}:{self.settings.smtp_port}"
            return Attempt(False, explain(exc, peer, trust(self.settings.smtp_ca)) or repr(exc))
        return Attempt(True)

    def _smtp_send(self, mail: EmailMessage) -> None:
        """STARTTLS (required, never skipped), implicit TLS, or clear text where chosen; the server's
        certificate is verified, host name included, in both TLS modes."""
        host, port, mode = self.settings.smtp_host or "", self.settings.smtp_port, self.settings.smtp_tls
        if mode != "none" and self._smtp_context is None:
            self._smtp_context = client_context(self.settings.smtp_ca, setting="TODO_SMTP_CA")
        if mode == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=10, context=self._smtp_context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=10)
        with smtp:
            if mode == "starttls":
                smtp.starttls(context=self._smtp_context)
            smtp.send_message(mail)

    def _webhook(self, webhook: Webhook, reminder: Triggered) -> list[Attempt]:
        try:
            check_target(webhook.url, self.settings.webhook_allow_private, self.settings.webhook_allow_http)
        except UnsafeTarget as exc:
            return [Attempt(False, str(exc))]
        body = json.dumps(message(reminder), separators=(",", ":")).encode()
        parts = urlsplit(webhook.url)
        receiver = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"  # no userinfo
        message_id = f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, f'{reminder.reminder_id}:{webhook.url}').hex}"
        attempts: list[Attempt] = []
        for wait in WEBHOOK_RETRIES:
            self.sleep(wait)
            timestamp = int(time.time())
            headers = {"content-type": "application/json", "webhook-id": message_id,
                       "webhook-timestamp": str(timestamp),
                       "webhook-signature": sign_webhook(webhook.secret, message_id, timestamp, body)}
            try:
                # verify=True: the receiver's certificate and host name are checked (certifi's CAs, or
                # SSL_CERT_FILE's); a refusal is final, like a 4xx: retrying will not make it trusted.
                response = httpx.post(webhook.url, content=body, headers=headers, verify=True,
                                      timeout=self.settings.webhook_timeout_seconds, follow_redirects=False)
            except httpx.HTTPError as exc:
                why = explain(exc, f"webhook receiver {receiver}", WEBHOOK_TRUST)
                attempts.append(Attempt(False, why or repr(exc)))
                if certificate_refused(exc):
                    return attempts
                continue
            if 200 <= response.status_code < 300:
                attempts.append(Attempt(True, f"HTTP {response.status_code}"))
                return attempts
            attempts.append(Attempt(False, f"HTTP {response.status_code}"))
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                return attempts  # the receiver refuses it: retrying will not help
        return attempts

    def _dapr(self) -> Any:
        if self.dapr_client is None:
            from dapr.clients import DaprClient  # gRPC stays off the cold start, as in the publisher

            client = DaprClient(f"127.0.0.1:{self.settings.dapr_grpc_port}")
            self.dapr_client = lambda: client
        return self.dapr_client()
