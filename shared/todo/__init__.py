"""todo: the shared library of the event-driven task manager.

Layers: ``domain`` (pure rules, no I/O), ``service`` (handlers and unit of work), ``adapters``
(SQLAlchemy, outbox relay, publishers) and ``edge`` (HTTP, JWT, CloudEvents, problem responses).
"""
