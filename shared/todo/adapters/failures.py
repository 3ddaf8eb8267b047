"""Which failures are transient: the moment, not the event (retry it later), as opposed to every other
failure, which the same event would meet again however often it came back (poison).

The list is short on purpose. A failure missing from it is treated as deterministic: its event is dead-
lettered after a few attempts, and the stream moves on. A failure wrongly listed here would hold the event's
partition for the broker's whole retry budget, which is the stall this classification exists to prevent.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from ..settings import ConfigError

# PostgreSQL SQLSTATEs that describe the server or the moment, not the statement's data: connection
# exceptions (08), insufficient resources (53), operator intervention (57: statement_timeout's 57014, an
# admin shutdown, a server still starting), system errors (58).
_TRANSIENT_CLASSES = ("08", "53", "57", "58")
_TRANSIENT_CODES = frozenset({
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "40003",  # statement_completion_unknown
    "55P03",  # lock_not_available (lock_timeout)
    "25006",  # read_only_sql_transaction: a standby that is being promoted
})
_NOT_TRANSIENT_CODES = frozenset({"57P04"})  # database_dropped: no retry brings it back

# SQLite primary result codes of the same kind: busy or locked, I/O, full, cannot open, lock protocol.
_SQLITE_TRANSIENT = frozenset({5, 6, 10, 13, 14, 15})


def is_transient(error: BaseException) -> bool:
    """True when retrying the same work later may well succeed: the database is unreachable or restarting,
    a serialization failure, a deadlock, a lock or statement timeout, a connection that broke."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 10:
        if _transient_here(current):
            return True
        seen += 1
        current = getattr(current, "orig", None) or current.__cause__
    return False


def _transient_here(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError | sa_exc.InterfaceError):
        return True  # the pool is exhausted, or no connection could be made or kept
    if isinstance(error, ConnectionError | TimeoutError | ConfigError):
        return True  # ConfigError: the runtime could not be composed yet (its sidecar's secrets)
    code = getattr(error, "sqlite_errorcode", None)  # sqlite3.Error's, read without importing sqlite3
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_TRANSIENT
    state = _sqlstate(error)
    if state is None or state in _NOT_TRANSIENT_CODES:
        return False
    return state in _TRANSIENT_CODES or state[:2] in _TRANSIENT_CLASSES


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error as pg8000 raises it (its first argument: the server's fields)."""
    fields = error.args[0] if error.args else None
    if isinstance(fields, dict):
        code = fields.get("C")
        return code if isinstance(code, str) else None
    return None
