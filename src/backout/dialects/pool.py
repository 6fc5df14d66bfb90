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
    """Idle connections per database key; shared by threads (a lock guards it)."""

    def __init__(self) -> None:
        self._idle: dict[Hashable, list[Any]] = {}
        self._close: list[tuple[Any, Callable[[Any], None]]] = []
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> Any | None:
        """An idle connection to ``key``'s database, or None."""
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def give_back(self, key: Hashable, conn: Any, close: Callable[[Any], None]) -> None:
        """Keep ``conn`` for the next session on ``key``; ``close`` ends it with the pool."""
        with self._lock:
            self._idle.setdefault(key, []).append(conn)
            self._close.append((conn, close))

    def close(self) -> None:
        """Close every connection kept."""
        with self._lock:
            kept, self._close, self._idle = self._close, [], {}
        seen: set[int] = set()
        for conn, close in kept:
            if id(conn) not in seen:
                seen.add(id(conn))
                with contextlib.suppress(Exception):
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
