"""A PyMySQL connection as a :class:`~backout.dialects.base.Session`, and PyMySQL's errors as
:class:`~backout.model.errors.DatabaseError` (used by the dialect and by the backup engine)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backout.dialects.base import (
    CHECK_SAVEPOINT,
    Dialect,
    Params,
    Row,
    Session,
)
from backout.model.errors import DatabaseError
from backout.model.urls import DatabaseURL, scrub

if TYPE_CHECKING:
    import pymysql


def translate(exc: BaseException, url: DatabaseURL) -> DatabaseError:
    """A PyMySQL error as a DatabaseError: the MySQL error number as code, message scrubbed."""
    args: tuple[object, ...] = tuple(getattr(exc, "args", ()))
    code: str | None = None
    message = str(exc) or type(exc).__name__
    if len(args) >= 2 and isinstance(args[0], int):
        code, message = str(args[0]), str(args[1])
    elif len(args) == 1:
        message = str(args[0])
    first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return DatabaseError(scrub(first, url.secrets), sqlstate=code)


class MysqlSession(Session):
    """A PyMySQL connection in autocommit mode; backout issues BEGIN/COMMIT itself."""

    def __init__(self, dialect: Dialect, url: DatabaseURL, conn: pymysql.Connection[Any]):
        self.dialect = dialect
        self.url = url
        self.conn = conn
        self._in_tx = False
        #: ``10.11.19-MariaDB-0+deb12u1`` or ``8.0.36``
        self.server_version: str = str(conn.get_server_info())

    @property
    def mariadb(self) -> bool:
        """The server is MariaDB (not MySQL)."""
        return "mariadb" in self.server_version.lower()

    def _run(self, sql: str, params: object, fetch: bool) -> tuple[int, list[Row]]:
        import pymysql

        # No parameters: the SQL is sent untouched (PyMySQL only %-formats when given args).
        args = params if params else None
        try:
            with self.conn.cursor() as cur:
                count = cur.execute(sql, args)
                rows = list(cur.fetchall()) if fetch and cur.description is not None else []
                return count, rows
        except pymysql.Error as exc:
            raise translate(exc, self.url) from exc

    def query(self, sql: str, params: Params = None) -> list[Row]:
        return self._run(sql, params, True)[1]

    def execute(self, sql: str, params: Params = None) -> int:
        return self._run(sql, params, False)[0]

    def query_native(self, sql: str, params: Mapping[str, object]) -> list[Row]:
        return self._run(sql, dict(params) or None, True)[1]

    def execute_native(self, sql: str, params: Mapping[str, object]) -> int:
        return self._run(sql, dict(params) or None, False)[0]

    def query_table(
        self, sql: str, params: Mapping[str, object], limit: int
    ) -> tuple[list[str], list[Row]]:
        import pymysql

        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, dict(params) or None)
                names = [str(d[0]) for d in cur.description or ()]
                return names, list(cur.fetchmany(limit)) if cur.description else []
        except pymysql.Error as exc:
            raise translate(exc, self.url) from exc

    def begin(self) -> None:
        self.execute("BEGIN")
        self._in_tx = True

    def begin_check(self, *, lock_timeout: float | None = None) -> None:
        # READ ONLY: InnoDB refuses DML for the check's duration (DDL is refused before it runs:
        # it would commit implicitly, ending this transaction).
        self.execute("START TRANSACTION READ ONLY")
        self._in_tx = True

    def query_undone(
        self, sql: str, params: Mapping[str, object], *, lock_timeout: float | None = None
    ) -> list[Row]:
        if not self.in_transaction:
            return super().query_undone(sql, params, lock_timeout=lock_timeout)
        # Under a savepoint, which undoes InnoDB's rows but not a write to a non-transactional
        # table (MyISAM, Aria) by a function the check calls: the server warns (1196) on the
        # ROLLBACK TO, and the check fails rather than pass as a read.
        self.execute(f"SAVEPOINT {CHECK_SAVEPOINT}")
        try:
            return self.query_native(sql, params)
        finally:
            self.execute(f"ROLLBACK TO SAVEPOINT {CHECK_SAVEPOINT}")
            kept = [w for w in self.query("SHOW WARNINGS") if str(w[1]) == "1196"]
            self.execute(f"RELEASE SAVEPOINT {CHECK_SAVEPOINT}")
            if kept:
                raise DatabaseError(
                    "the check changed a non-transactional table (MyISAM, Aria), which no "
                    "rollback undoes: that change stays; keep functions that write out of checks",
                    sqlstate="1196",
                )

    def commit(self) -> None:
        self.execute("COMMIT")
        self._in_tx = False

    def rollback(self) -> None:
        import pymysql

        self._in_tx = False
        if not self.conn.open:
            return
        try:
            self.conn.rollback()
        except pymysql.Error:
            # The connection is gone; the server rolls back on its own.
            return

    @property
    def in_transaction(self) -> bool:
        return self._in_tx

    def close(self) -> None:
        import pymysql

        if self.conn.open:
            try:
                self.conn.close()
            except pymysql.Error:
                return
