"""Spans with W3C Trace Context, exported over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

One trace follows one change: the HTTP request's span in the writer; the outbox row keeps the
``traceparent`` of the transaction that wrote it, and the relay sends it as the CloudEvent
``traceparent`` extension (and as the publish call's gRPC metadata, so that daprd's publish span is a
child); each consumer's span is a child of the delivery's ``traceparent`` (daprd's or KafkaSource's
header, else the event's extension), with one span more for each other trace a bulk holds
(:func:`delivery`). Database statements are child spans.

When the variable is unset nothing of OpenTelemetry is imported and every function here is a constant
no-op: tracing then costs what a ``with nullcontext()`` costs (bench P1/P2 measure it).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .settings import Settings

_lock = threading.Lock()
_tracer: Any = None  # an OpenTelemetry Tracer once configured with an endpoint
_configured = False
INSTRUMENTATION = "todo"


def configure(settings: Settings, service: str) -> bool:
    """Install the OTLP exporter once per process (the first caller names the service); whether spans go out."""
    global _tracer, _configured
    if _configured:
        return _tracer is not None
    with _lock:
        if _configured:
            return _tracer is not None
        if settings.otel_endpoint:
            _tracer = _make_tracer(service)
        _configured = True
    return _tracer is not None


def _make_tracer(service: str) -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class DeferredOTLPExporter(SpanExporter):
        """The OTLP exporter, built by the batch processor's own thread at its first export.

        Building it imports ``requests``, ``urllib3`` and the protobuf encoders, about 200 ms that a cold
        start would otherwise spend before its first request (bench T1); the spans wait in the batch
        queue meanwhile, as they would anyway (the first export is due seconds later)."""

        def __init__(self) -> None:
            self._exporter: Any = None

        def _built(self) -> Any:
            if self._exporter is None:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                self._exporter = OTLPSpanExporter()
            return self._exporter

        def export(self, spans: Any) -> SpanExportResult:
            result: SpanExportResult = self._built().export(spans)
            return result

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self._exporter is None or bool(self._exporter.force_flush(timeout_millis))

        def shutdown(self) -> None:
            if self._exporter is not None:
                self._exporter.shutdown()

    # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and the exporter's own OTEL_* variables still apply.
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(DeferredOTLPExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer(INSTRUMENTATION)


def enabled() -> bool:
    return _tracer is not None


def shutdown() -> None:
    """Flush what is buffered (a process that ends must not lose its last spans)."""
    if _tracer is not None:
        from opentelemetry import trace

        provider: Any = trace.get_tracer_provider()
        with contextlib.suppress(Exception):
            provider.force_flush(5000)


@contextlib.contextmanager
def span(name: str, *, kind: str = "internal", parent: str | None = None, links: Sequence[str] = (),
         attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A span (``None`` when not tracing), child of ``parent`` (a ``traceparent``) or else of the current one,
    linked to the ``links`` traceparents. Its exceptions are recorded on it and raised on."""
    if _tracer is None:
        yield None
        return
    from opentelemetry.trace import Link, SpanKind

    context = _extract(parent) if parent else None
    found = [Link(c) for c in (_span_context(t) for t in links) if c is not None]
    with _tracer.start_as_current_span(name, context=context, kind=getattr(SpanKind, kind.upper()), links=found,
                                       attributes=_present(attributes)) as current:
        yield current


def _present(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (attributes or {}).items() if v is not None}  # the SDK warns of a None


def trace_id(traceparent: str) -> str | None:
    """The trace a W3C ``traceparent`` (``00-<trace>-<span>-<flags>``) belongs to."""
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


@contextlib.contextmanager
def delivery(name: str, *, header: str | None, events: Sequence[str | None],
             attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """The consumer span(s) of one delivery: one in each trace its events belong to, so that every change's
    trace holds this consumer, however daprd bulked the events (``events``: each one's ``traceparent``).

    ``header`` is the delivery's own ``traceparent`` (daprd's delivery span, KafkaSource's dispatch): it
    parents the span of its trace, which is current for the work, so the statements are its children.
    daprd sends one header for a bulk (that of its last entry's delivery span); each other trace gets a
    span parented by the first of its events' ``traceparent``, linked to the current one, spanning the
    same work. Without a header, the first event's trace takes the header's part."""
    if _tracer is None:
        yield None
        return
    from opentelemetry.trace import Link, SpanKind

    parents: dict[str | None, str] = {}  # trace id -> traceparent of the span's parent
    for traceparent in (header, *events):
        if traceparent:
            parents.setdefault(trace_id(traceparent), traceparent)
    main = next(iter(parents.values()), None)
    with span(name, kind="consumer", parent=main, attributes=attributes) as current:
        others = [_tracer.start_span(name, context=_extract(traceparent), kind=SpanKind.CONSUMER,
                                     links=[Link(current.get_span_context())], attributes=_present(attributes))
                  for traceparent in list(parents.values())[1:]]
        try:
            yield current
        finally:
            for other in others:
                other.end()


def set_attribute(current: Any, key: str, value: Any) -> None:
    if current is not None and value is not None:
        current.set_attribute(key, value)


def tag(key: str, value: Any) -> None:
    """An attribute on the current span, if tracing."""
    if _tracer is not None and value is not None:
        from opentelemetry import trace

        trace.get_current_span().set_attribute(key, value)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to store or send with what it causes."""
    if _tracer is None:
        return None
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


def _extract(traceparent: str) -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def _span_context(traceparent: str) -> Any:
    from opentelemetry import trace

    found = trace.get_current_span(_extract(traceparent)).get_span_context()
    return found if found.is_valid else None


def instrument_engine(engine: Any) -> None:
    """Each statement of traced work a child span of the current one (its text only: parameters are task
    bodies); statements outside any span make none."""
    if _tracer is None:
        return
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from sqlalchemy import event

    dialect = engine.dialect.name

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if not trace.get_current_span().is_recording():
            # A statement of no traced work (the relay's polling, a migration): not a trace of its own.
            conn.info.setdefault("todo_spans", []).append(None)
            return
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        current = _tracer.start_span(f"{verb} {dialect}", kind=SpanKind.CLIENT, attributes={
            "db.system": dialect, "db.statement": statement[:1000]})
        conn.info.setdefault("todo_spans", []).append(current)

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        spans = conn.info.get("todo_spans")
        if spans and (current := spans.pop()) is not None:
            current.end()

    def failed(context: Any) -> None:
        spans = context.connection.info.get("todo_spans") if context.connection is not None else None
        if spans and (current := spans.pop()) is not None:
            current.set_status(Status(StatusCode.ERROR, type(context.original_exception).__name__))
            current.end()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)


class GrpcTraceInterceptor:
    """Sends the current span's ``traceparent`` as gRPC metadata on each Dapr call: daprd continues our trace."""

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        traceparent = current_traceparent()
        if traceparent is not None:
            details = details._replace(metadata=[*(details.metadata or ()), ("traceparent", traceparent)])
        return continuation(details, request)


def grpc_interceptors() -> list[Any]:
    if _tracer is None:
        return []
    import grpc  # type: ignore[import-untyped]

    class Interceptor(GrpcTraceInterceptor, grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
        pass

    return [Interceptor()]
