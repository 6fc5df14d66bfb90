"""Connections kept open for the next session on the same database, while a read-only fleet
command runs (``status --targets`` over the schemas of one database: docs/fleet.md).

Opening a PostgreSQL connection forks a server process, authenticates and warms its catalog
cache: over 200 tenant schemas that is most of the time. Inside :func:`reusing`, a dialect that
supports it hands a closed session's connection, idle and with nothing held, to the next
session on the same database (each session sets its own ``search_path``). Outside it, nothing
changes: every session opens and closes its own connection.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any

__all__ = ["ConnectionPool", "current_pool", "reusing"]

_CURRENT: contextvars.ContextVar[ConnectionPool | None] = contextvars.ContextVar(
    "backout_connection_pool", default=None
)


class ConnectionPool:
    """Idle connections per database key, at most ``max_idle`` in all (the oldest is closed
    first: targets that are databases of their own never reuse one, and must not pile up
    open connections); shared by threads (a lock guards it)."""

    def __init__(self, max_idle: int = 8) -> None:
        self.max_idle = max(1, max_idle)
        #: (key, connection, how to close it), oldest first
        self._idle: list[tuple[Hashable, Any, Callable[[Any], None]]] = []
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> Any | None:
        """An idle connection to ``key``'s database, or None."""
        with self._lock:
            for index in range(len(self._idle) - 1, -1, -1):
                if self._idle[index][0] == key:
                    return self._idle.pop(index)[1]
        return None

    def give_back(self, key: Hashable, conn: Any, close: Callable[[Any], None]) -> None:
        """Keep ``conn`` for the next session on ``key``; ``close`` ends it when it is not
        needed any more."""
        with self._lock:
            self._idle.append((key, conn, close))
            excess = self._idle[: -self.max_idle] if len(self._idle) > self.max_idle else []
            del self._idle[: len(excess)]
        _close_all(excess)

    def close(self) -> None:
        """Close every connection kept."""
        with self._lock:
            kept, self._idle = self._idle, []
        _close_all(kept)


def _close_all(entries: list[tuple[Hashable, Any, Callable[[Any], None]]]) -> None:
    for _key, conn, close in entries:
        with contextlib.suppress(Exception):  # closing a dead connection: nothing to undo
            close(conn)


def current_pool() -> ConnectionPool | None:
    """The pool sessions of this thread may reuse connections from (None: none)."""
    return _CURRENT.get()


@contextlib.contextmanager
def reusing(pool: ConnectionPool) -> Iterator[None]:
    """Sessions opened in this block (in this thread) reuse connections through ``pool``."""
    token = _CURRENT.set(pool)
    try:
        yield
    finally:
        _CURRENT.reset(token)
