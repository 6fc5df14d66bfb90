"""Refuse a connection pooled per transaction (PgBouncer ``pool_mode = transaction``,
Supavisor's transaction port, Prisma's ``?pgbouncer=true``).

Such a pooler lends the client a server backend for one transaction at a time: a session
advisory lock (backout's run lock, Prisma's) stays on a backend that then serves somebody else,
and a session ``SET`` (``search_path`` for ``?schema=``) leaks to other clients while this one
runs its next transaction elsewhere. PgBouncer's feature map lists both as unsupported in
transaction mode. A session pooler (``pool_mode = session``) keeps one backend per client
connection and is fine.

Nothing in the protocol says "pooled": PgBouncer answers ``SHOW`` only on its admin console, and
relays the server's parameters. So the check looks at what the pooling does:

1. one round trip: the server's view of both ends (``inet_client_port()``,
   ``inet_server_port()``) against this socket's own local and remote ports. Both equal:
   nothing sits in between (the usual direct connection), done. The client port alone could
   coincide: the kernel may give a pooler's connection to the server the local port of ours
   to the pooler, as it goes to another address.
2. otherwise (a pooler, a proxy, a port-forward, a Unix socket): a second connection opens a
   transaction and asks for its backend's pid, then the first asks again. In transaction mode the
   first connection's backend went back to the pool when its statement ended, and PgBouncer
   reuses the most recently released server first (``server_round_robin = 0``), so the second
   connection gets the first one's backend; if another client took that backend meanwhile, the
   first connection's next statement runs on another one. Either way a pid moves. With
   ``server_round_robin = 1`` (the longest-idle server is lent next), the first connection's
   two looks in a row get different servers whenever two are idle. In session mode none of this
   can happen: the first connection keeps its backend until it disconnects.
"""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from backout.model.errors import DatabaseUnavailable, PoolerRefused
from backout.model.urls import DatabaseURL, scrub

_WHO_AM_I = "SELECT inet_client_port(), inet_server_port()"
_PID = "SELECT pg_backend_pid()"
#: connection strings this process has found not pooled per transaction (checked once each)
_VERIFIED: set[str] = set()
#: rounds of the second step: each one alone misses transaction pooling only when another client
#: takes and gives back the probe's backend at the wrong moments (1 probe in about 50 with four
#: other clients on a starved CPU); rounds are cheap (5 round trips) and only a pool pays them
_ROUNDS = 3
_WHY = "backout's session lock and SET would not hold there"


def declared_transaction_pooler(url: DatabaseURL) -> bool:
    """The URL carries Prisma's ``pgbouncer=true``: "this is PgBouncer in transaction mode"."""
    query = urlsplit(url.raw).query
    return any(k == "pgbouncer" and v.lower() == "true" for k, v in parse_qsl(query))


def refuse_declared(url: DatabaseURL) -> None:
    """PoolerRefused when the URL declares a transaction pooler (checked before connecting)."""
    if declared_transaction_pooler(url):
        raise PoolerRefused(
            f"{url.masked()} says pgbouncer=true: Prisma's flag for PgBouncer in transaction "
            f"mode, where {_WHY}"
        )


def _ports(conn: Any) -> tuple[int, int] | None:
    """This socket's local and remote TCP ports; None for a Unix socket."""
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        return int(sock.getsockname()[1]), int(sock.getpeername()[1])


def check_not_transaction_pooled(conn: Any, conninfo: str, url: DatabaseURL) -> None:
    """PoolerRefused when ``conn`` is pooled per transaction (see the module's docstring).
    Runs only SELECTs; costs one round trip on a direct TCP connection, and nothing for a
    connection string already checked by this process."""
    if conninfo in _VERIFIED:
        return
    client_port, server_port = conn.execute(_WHO_AM_I).fetchone()
    if client_port is not None and (client_port, server_port) == _ports(conn):
        _VERIFIED.add(conninfo)
        return
    import psycopg

    try:
        other = psycopg.connect(conninfo, autocommit=False, connect_timeout=10)
    except psycopg.Error as exc:
        reason = scrub(str(exc).strip().splitlines()[-1] if str(exc).strip() else "", url.secrets)
        raise DatabaseUnavailable(
            f"cannot open a second connection to {url.masked()} to check for a transaction "
            f"pooler: {reason}"
        ) from exc
    try:
        for _ in range(_ROUNDS):
            _one_round(conn, other, url)
    except psycopg.Error as exc:
        if "pool" not in str(exc).lower():
            raise  # not the pooler's refusal: the caller reports it as a database error
        # PgBouncer's statement mode refuses the second connection's transaction
        raise PoolerRefused(
            f"{url.masked()} goes through a connection pooler that refused a transaction "
            f"({scrub(str(exc).strip(), url.secrets)}): statement pooling, where {_WHY}"
        ) from exc
    finally:
        other.close()
    _VERIFIED.add(conninfo)


def _one_round(conn: Any, other: Any, url: DatabaseURL) -> None:
    """One look: ``conn``'s backend twice, then ``other``'s inside a transaction (which pins
    it), then ``conn``'s again; PoolerRefused when a pid moved. Looking twice first catches
    ``server_round_robin = 1`` (the longest-idle server is lent next): with two idle servers
    ``other`` would pin the one ``conn`` was not using, but ``conn``'s second look gets it.
    When ``other`` got ``conn``'s backend the verdict is in, and ``conn`` does not look again:
    in a pool of one server that look would wait for the backend ``other`` pins."""
    pid = _backend_pid(conn)
    moved = _backend_pid(conn) != pid
    lent = not moved and _backend_pid(other) == pid
    moved = moved or (not lent and _backend_pid(conn) != pid)
    other.rollback()
    if lent or moved:
        raise PoolerRefused(
            f"{url.masked()} goes through a connection pooler in transaction mode (backend "
            f"pid {pid} {'was lent to another connection' if lent else 'changed'} "
            f"between two transactions), where {_WHY}"
        )


def _backend_pid(conn: Any) -> int:
    """The pid of the server backend running this statement (sent unprepared)."""
    return int(conn.execute(_PID, prepare=False).fetchone()[0])
