"""A psycopg connection as a :class:`~backout.dialects.base.Session`, and psycopg's errors as
:class:`~backout.model.errors.DatabaseError` (used by the dialect and by the backup engine)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from backout.dialects.base import (
    Dialect,
    Params,
    Row,
    Session,
)
from backout.dialects.pool import ConnectionPool
from backout.model.errors import DatabaseError
from backout.model.urls import DatabaseURL, scrub

if TYPE_CHECKING:
    import psycopg


def translate(exc: Exception, url: DatabaseURL) -> DatabaseError:
    """A psycopg error as a DatabaseError with SQLSTATE and a scrubbed one-line message."""
    sqlstate = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    message = (
        primary or str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    )
    detail = getattr(diag, "message_detail", None) if diag is not None else None
    if detail:
        message = f"{message} ({detail})"
    return DatabaseError(scrub(message, url.secrets), sqlstate=sqlstate)


#: DISCARD ALL without DEALLOCATE ALL and DISCARD PLANS (psycopg prepares the statements it
#: runs often, and their plans are caches the server keeps valid itself): what a session's own
#: SQL (a migration's ``SET``, ``SET ROLE``, temporary tables, advisory locks, ``LISTEN``) may
#: leave on a connection
_RESET = (
    "CLOSE ALL",
    "SET SESSION AUTHORIZATION DEFAULT",
    "RESET ALL",
    "UNLISTEN *",
    "SELECT pg_advisory_unlock_all()",
    "DISCARD TEMP",
    "DISCARD SEQUENCES",
)


class PostgresSession(Session):
    """A psycopg connection in autocommit mode; backout issues BEGIN/COMMIT itself."""

    def __init__(
        self,
        dialect: Dialect,
        url: DatabaseURL,
        conn: psycopg.Connection[Any],
        *,
        pool: tuple[ConnectionPool, Hashable] | None = None,
    ):
        self.dialect = dialect
        self.url = url
        self.conn = conn
        self._in_tx = False
        #: where :meth:`close` hands the connection back to (see backout.dialects.pool)
        self._pool = pool

    def query(self, sql: str, params: Params = None) -> list[Row]:
        ahead = self.read_ahead(sql, params)
        if ahead is not None:
            return ahead
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql.encode() if params is None else sql, params)
                return list(cur.fetchall()) if cur.description is not None else []
        except Exception as exc:
            raise self._translate(exc) from exc

    def query_many(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        import psycopg

        if len(queries) < 2 or not psycopg.Pipeline.is_supported():
            return super().query_many(queries)
        cursors: list[psycopg.Cursor[Any]] = []
        try:
            # Pipeline mode: every query is sent, then every result read, in one round trip.
            with self.conn.pipeline():
                for sql, params in queries:
                    cursors.append(self.conn.cursor())
                    cursors[-1].execute(sql.encode() if params is None else sql, params)
            return [list(cur.fetchall()) if cur.description is not None else [] for cur in cursors]
        except Exception as exc:
            raise self._translate(exc) from exc
        finally:
            for cur in cursors:
                cur.close()

    def can_read_ahead(self) -> bool:
        import psycopg

        idle = self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        return idle and not self._in_tx and psycopg.Pipeline.is_supported()

    def execute(self, sql: str, params: Params = None) -> int:
        try:
            with self.conn.cursor() as cur:
                # bytes: psycopg does no %-placeholder processing on user SQL without params
                cur.execute(sql.encode() if params is None else sql, params)
                return cur.rowcount
        except Exception as exc:
            raise self._translate(exc) from exc

    def reset(self, setup: Sequence[str]) -> None:
        """Put an idle connection back as a new one is (what ``DISCARD ALL`` resets, except
        the driver's prepared statements), then run ``setup``; one round trip."""
        sql = ";".join((*_RESET, *setup))
        try:
            self.conn.execute(sql.encode(), prepare=False)
        except Exception as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: Exception) -> DatabaseError:
        import psycopg

        if not isinstance(exc, psycopg.Error):
            raise exc
        return translate(exc, self.url)

    def query_native(self, sql: str, params: Mapping[str, object]) -> list[Row]:
        # Empty params: bind() left the SQL verbatim, so it must run without %-processing.
        return self.query(sql, dict(params) or None)  # type: ignore[arg-type]

    def execute_native(self, sql: str, params: Mapping[str, object]) -> int:
        return self.execute(sql, dict(params) or None)  # type: ignore[arg-type]

    def query_table(
        self, sql: str, params: Mapping[str, object], limit: int
    ) -> tuple[list[str], list[Row]]:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql.encode() if not params else sql, params or None)
                names = [c.name for c in cur.description or ()]
                return names, list(cur.fetchmany(limit)) if cur.description else []
        except Exception as exc:
            raise self._translate(exc) from exc

    def begin(self) -> None:
        self.execute("BEGIN")
        self._in_tx = True

    def begin_read(self, *, lock_timeout: float | None = None) -> None:
        self.begin()
        if lock_timeout is not None:
            # A table another run holds in ACCESS EXCLUSIVE mode (a rollback dropping it) would
            # otherwise make a count wait until that run ends. 0 means "no limit": at least 1 ms.
            self.execute(f"SET LOCAL lock_timeout = '{max(1, int(lock_timeout * 1000))}ms'")

    def begin_check(self, *, lock_timeout: float | None = None) -> None:
        # READ ONLY: a write (nextval too) fails instead of waiting for the ROLLBACK.
        self.execute("BEGIN READ ONLY")
        self._in_tx = True
        if lock_timeout is not None:
            self.execute(f"SET LOCAL lock_timeout = '{max(1, int(lock_timeout * 1000))}ms'")

    def commit(self) -> None:
        self.execute("COMMIT")
        self._in_tx = False

    def rollback(self) -> None:
        import psycopg

        self._in_tx = False
        if self.conn.closed:
            return
        try:
            self.conn.execute(b"ROLLBACK")
        except psycopg.Error:
            # The connection is gone; the server rolls back on its own.
            return

    @property
    def in_transaction(self) -> bool:
        return self._in_tx

    def close(self) -> None:
        import psycopg

        if self._pool is not None and not self.conn.closed:
            status = self.conn.info.transaction_status
            if status == psycopg.pq.TransactionStatus.IDLE:
                pool, key = self._pool
                self._pool = None
                pool.give_back(key, self.conn, lambda conn: conn.close())
                return
        self.conn.close()
