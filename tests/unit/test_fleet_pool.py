"""A connection kept for the next tenant (``status --targets``, backout.dialects.pool) may be
closed by the server meanwhile (idle_session_timeout, a pooler, a failover, an admin): the
next session opens a new one instead of failing its target."""

from __future__ import annotations

from pathlib import Path

import psycopg

from backout.dialects import dialect_for
from backout.dialects.base import Actor
from backout.dialects.pool import ConnectionPool, reusing
from backout.model.urls import parse_url


def test_a_kept_connection_the_server_closed_is_replaced(pg_url: str) -> None:
    url = parse_url(pg_url, base_dir=Path.cwd())
    dialect = dialect_for(url)
    pool = ConnectionPool(2)
    try:
        with reusing(pool):
            first = dialect.connect(url, actor=Actor.current(), create=False)
            (pid,) = first.query("SELECT pg_backend_pid()")[0]
            first.close()  # kept in the pool
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            second = dialect.connect(url, actor=Actor.current(), create=False)
            try:
                (other,) = second.query("SELECT pg_backend_pid()")[0]
            finally:
                second.close()
        assert other != pid
    finally:
        pool.close()
