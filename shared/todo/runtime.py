"""The runtime of a process: its adapters, composed from its settings."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from . import logs, tracing
from .adapters.db import make_engine
from .adapters.outbox import OutboxRelay, Publisher
from .adapters.publishers import InProcessBus, make_publisher
from .adapters.unit_of_work import SqlUnitOfWork
from .edge.auth import TokenVerifier
from .settings import Settings, get_settings

if TYPE_CHECKING:
    from .adapters.audit_store import SqlAuditUnitOfWork
    from .adapters.change_feed import PushStore
    from .adapters.channels import Channels
    from .adapters.drafts import TaskIds
    from .service.dead_letters import DeadLetterSink

log = logging.getLogger(__name__)


class Runtime:
    """Everything a function needs, built lazily from its settings: the engine, the token verifier, the
    publisher and the outbox relay, the notification channels. One per process (see todo.edge.function)."""

    @classmethod
    def from_environment(cls, name: str = "todo") -> Runtime:
        """The composition root of a function process: its settings, read once from the environment."""
        return cls(get_settings(), name=name)

    def __init__(self, settings: Settings, *, name: str = "todo") -> None:
        self.name = name  # the function this process serves ("todo": several, or a tool), for metrics and traces
        # Logging is set up with the runtime: by now a server's worker has installed its own loggers,
        # and configure() takes them over.
        logs.configure(settings.log_level)
        tracing.configure(settings, name)  # once per process: exporting only with OTEL_EXPORTER_OTLP_ENDPOINT
        self._given = settings
        self.bus = InProcessBus()
        self._relay_started = False
        self._lock = threading.Lock()

    @property
    def base_settings(self) -> Settings:
        """The settings as given, without reaching for secrets (safe on the event loop)."""
        return self._given

    @cached_property
    def settings(self) -> Settings:
        """The given settings, completed from the Dapr secret store when one is named."""
        if self._given.secret_store is None:
            return self._given
        from .adapters.secrets import with_store_secrets

        return with_store_secrets(self._given)

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.settings)
        tracing.instrument_engine(engine)  # a no-op unless tracing
        return engine

    @cached_property
    def verifier(self) -> TokenVerifier:
        return TokenVerifier(self.settings)

    @cached_property
    def publisher(self) -> Publisher:
        return make_publisher(self.settings, self.bus)

    @cached_property
    def relay(self) -> OutboxRelay:
        # daprd takes publish calls from several threads; an in-process bus's subscribers share our database.
        return OutboxRelay(self.engine, self.publisher, function=self.name,
                           parallel_topics=self.settings.events == "dapr")

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    def read_uow(self) -> SqlUnitOfWork:
        """For use cases that only read, each with one statement (no write lock on SQLite)."""
        return SqlUnitOfWork(self.engine, read_only=True)

    @cached_property
    def channels(self) -> Channels:
        from .adapters.channels import Channels  # only on-reminder sends notifications

        return Channels(self.settings, self.engine, on_queued=self.relay.kick)

    @cached_property
    def push_store(self) -> PushStore:
        from .adapters.change_feed import PushStore  # only push-update reads the feed this way

        return PushStore(self.engine)

    @cached_property
    def dead_letters(self) -> DeadLetterSink:
        """Where this process's consumers send poison: the dead_letters table, and through daprd the
        dead-letter topic when events go through Dapr."""
        from .adapters.dead_letters import DeadLetterOffice  # only on the first poison event

        return DeadLetterOffice(self.engine, self.publisher if self.settings.events == "dapr" else None)

    def audit_uow(self) -> SqlAuditUnitOfWork:
        # Imported here: only the functions that touch the audit trail pay for loading it.
        from .adapters.audit_store import SqlAuditUnitOfWork

        return SqlAuditUnitOfWork(self.engine)

    def writing_uow(self) -> SqlUnitOfWork:
        """A unit of work whose commit wakes the outbox relay (started on first use). On PostgreSQL a new
        task and what it records go as one statement (todo.adapters.drafts)."""
        self.start_relay()
        if self.engine.dialect.name == "postgresql":
            from .adapters.drafts import DraftingUnitOfWork

            return DraftingUnitOfWork(self.engine, self.task_ids, after_commit=self.relay.kick)
        return SqlUnitOfWork(self.engine, after_commit=self.relay.kick)

    @cached_property
    def task_ids(self) -> TaskIds:
        from .adapters.drafts import TaskIds

        return TaskIds(self.engine)

    def start_relay(self) -> None:
        with self._lock:
            if not self._relay_started:
                self.relay.start(self.settings.outbox_sweep_seconds)
                self._relay_started = True

    def close(self) -> None:
        if self._relay_started:
            self.relay.stop()
        if "engine" in self.__dict__:
            self.engine.dispose()
        tracing.shutdown()

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)
