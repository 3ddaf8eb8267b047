"""The whole pipeline with every connection TLS (todo_dev.stack_tls, ``make run STACK=real TLS=1``):
PostgreSQL takes TLS only and the functions verify it (verify-full); Kafka's only listener is SASL_SSL
with SCRAM-SHA-512 and each daprd uses the managed profile's pub/sub component; on-reminder's daprd mails
through the SMTP binding by STARTTLS. The stack here is a second one, on the same ports: pytest stops the
plain stack before it starts this one."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from confluent_kafka import Producer
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from tests.smtp_inbox import Inbox
from tests.tls_servers import server_context
from todo.adapters.db import make_engine
from todo.adapters.tables import notification_attempts
from todo.settings import Settings
from todo_dev.certs import Authority
from todo_dev.stack import Stack
from todo_dev.stack_tls import StackTLS

from .conftest import cloud_events, eventually, read_topic
from .test_push import open_socket

pytestmark = [pytest.mark.system, pytest.mark.parametrize("stack", ["tls"], indirect=True)]


def certs(stack: Stack) -> StackTLS:
    assert stack.certs is not None, "the TLS stack"
    return stack.certs


@pytest.fixture
def database(stack: Stack) -> Iterator[Engine]:
    """The database as a function reaches it: verify-full against the stack's CA."""
    engine = make_engine(Settings(database_url=stack.database_url, database_sslmode="verify-full",
                                  database_sslrootcert=str(certs(stack).ca_file)))
    yield engine
    engine.dispose()


def starttls_inbox(stack: Stack, context: ssl.SSLContext) -> Controller:
    """An SMTP server on the stack's mail port that takes mail after STARTTLS only."""
    return Controller(Inbox(), hostname="127.0.0.1", port=stack.smtp_port, tls_context=context,
                      require_starttls=True)


@pytest.fixture
def trusted_inbox(stack: Stack) -> Iterator[Inbox]:
    cert, key = certs(stack).smtp_cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    controller = starttls_inbox(stack, context)
    controller.start()
    yield controller.handler
    controller.stop()


@pytest.fixture
def stranger_inbox(stack: Stack) -> Iterator[Inbox]:
    """The same server, with a certificate from a CA that on-reminder's daprd does not trust."""
    issued = Authority.new("a CA nobody trusts").issue("localhost", "127.0.0.1")
    controller = starttls_inbox(stack, server_context(issued, stack.stack_dir / "stranger", "smtp"))
    controller.start()
    yield controller.handler
    controller.stop()


def test_a_task_change_reaches_audit_sink_and_push_update_over_sasl_ssl(
        stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    # No "since": the socket gets live messages only, which reach push-update from Kafka through daprd.
    with open_socket(stack.ports("push-update").app, user) as socket:
        task = api("POST", "/tasks", user, json={"title": "over TLS"}).json()
        pushed = json.loads(socket.recv(timeout=60))
    assert pushed["task"]["id"] == task["id"]

    def audited() -> list[Any]:
        history = api("GET", f"/tasks/{task['id']}/history", user)
        assert history.status_code == 200 and len(history.json()["items"]) == 1
        return list(history.json()["items"])

    eventually(audited, timeout=90)
    records = read_topic(stack, "task-events", lambda rs: any(
        e.get("data", {}).get("user_id") == user for e in cloud_events(rs)))  # a SCRAM client over TLS
    assert [e["data"]["task_id"] for e in cloud_events(records) if e.get("data", {}).get("user_id") == user] == [
        task["id"]]


def test_every_connection_of_the_functions_to_postgresql_is_encrypted(
        stack: Stack, api: Callable[..., httpx.Response], user: str, database: Engine) -> None:
    assert api("GET", "/tasks", user).status_code == 200
    with database.connect() as conn:
        rows = conn.execute(text(
            "SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
            "WHERE a.datname = 'todo' AND a.client_addr IS NOT NULL")).all()
    assert len(rows) > 1  # the functions' pools, and this test's connection
    assert all(r.ssl for r in rows)


def delivery_errors(config: dict[str, Any]) -> list[Any]:
    """The delivery report of one record produced with ``config``: [None] when it was delivered."""
    outcomes: list[Any] = []
    producer = Producer({**config, "message.timeout.ms": 5000, "log_level": 0})
    producer.produce("task-events.dlq", value=b"{}", key=b"probe",  # a topic no function consumes
                     on_delivery=lambda error, _message: outcomes.append(error))
    producer.flush(15)
    return outcomes


def test_kafka_refuses_clients_without_tls_and_scram(stack: Stack) -> None:
    assert delivery_errors(stack.kafka_client()) == [None]  # the stack's own client settings get through
    for refused in ({"bootstrap.servers": stack.kafka_bootstrap},  # plaintext
                    {**stack.kafka_client(), "sasl.password": "not-the-password"}):
        [error] = delivery_errors(refused)
        assert error is not None  # never delivered


def test_a_reminder_email_goes_by_starttls_through_daprds_smtp_binding(
        stack: Stack, api: Callable[..., httpx.Response], user: str, trusted_inbox: Inbox) -> None:
    address = f"{user}@example.com"
    assert api("PUT", "/me/notifications", user, json={"email": address}).status_code == 200
    at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    api("POST", "/tasks", user, json={"title": "remind me over TLS", "reminders": [{"at": at}]})

    def mailed() -> list[Any]:
        mine = [m for m in trusted_inbox.messages if address in m.rcpt_tos]
        assert mine
        return mine

    # The server answers 530 to MAIL before STARTTLS: a message in the inbox came over TLS.
    assert b"remind me over TLS" in eventually(mailed, timeout=90)[0].content


def test_daprds_smtp_binding_refuses_a_certificate_it_does_not_trust(
        stack: Stack, api: Callable[..., httpx.Response], user: str, stranger_inbox: Inbox,
        database: Engine) -> None:
    address = f"{user}@example.com"
    assert api("PUT", "/me/notifications", user, json={"email": address}).status_code == 200
    at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    api("POST", "/tasks", user, json={"title": "never mailed", "reminders": [{"at": at}]})

    def refused() -> Any:
        with database.connect() as conn:
            attempts = conn.execute(select(notification_attempts).where(
                notification_attempts.c.channel == f"email:{address}")).all()
        assert attempts
        return attempts[0]

    attempt = eventually(refused, timeout=90)
    assert not attempt.ok
    assert "certificate signed by unknown authority" in (attempt.detail or "")
    assert stranger_inbox.messages == []


def test_no_password_of_the_stack_reaches_its_log(stack: Stack, api: Callable[..., httpx.Response],
                                                  user: str) -> None:
    assert api("GET", "/tasks", user).status_code == 200
    log = stack.log_path.read_text()
    assert "Configuring SASL Password authentication" in log  # each daprd loaded the managed component
    for secret in (certs(stack).pg_password, certs(stack).kafka_password, certs(stack).ca_password):
        assert secret not in log
