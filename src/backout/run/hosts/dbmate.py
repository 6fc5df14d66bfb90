"""dbmate's own ``schema_migrations``, kept as dbmate 2.x keeps it.

dbmate (``pkg/driver/{postgres,mysql,sqlite}``) creates ``schema_migrations (version
varchar PRIMARY KEY)`` (``varchar(128)`` on MySQL and SQLite) in the search path's first schema
on PostgreSQL, inserts ``version`` in the migration's transaction once it is applied and deletes
it in the rollback's transaction. A failed migration leaves no row (its transaction is rolled
back), so the table never says "failed": backout's ledger adds that. The table name comes from
``--migrations-table`` / ``DBMATE_MIGRATIONS_TABLE`` (``migrations_table`` in backout.toml),
possibly ``schema.table`` on PostgreSQL.
"""

from __future__ import annotations

from backout.dialects.base import HostLock, Session
from backout.model.urls import DatabaseURL
from backout.run.host_history import (
    HostChange,
    HostEvent,
    HostRow,
    HostSetup,
    HostState,
    HostVerdict,
    SqlWrite,
)
from backout.run.hosts.common import HostTable

DEFAULT_TABLE = "schema_migrations"


class DbmateHistory:
    """:class:`~backout.run.host_history.HostHistory` for the dbmate layout."""

    tool = "dbmate"
    marks_before_running = False

    def __init__(self, setup: HostSetup):
        self.table = HostTable(setup.dialect, setup.table or DEFAULT_TABLE)

    @property
    def table_name(self) -> str:
        return self.table.configured

    def exists(self, session: Session) -> bool:
        return self.table.exists(session)

    def create_sql(self, applied: tuple[str, ...]) -> list[SqlWrite]:
        ddl = self.table.ddl(self.table.dialect.dbmate_table_ddl)
        return [(sql, ()) for sql in ddl] + [self._insert(key) for key in applied]

    def read(self, session: Session) -> HostState:
        if not self.exists(session):
            return HostState(exists=False)
        rows = session.query(f"SELECT version FROM {self.table.sql} ORDER BY version")
        return HostState(exists=True, rows=tuple(HostRow(key=str(r[0])) for r in rows))

    def compare(
        self, state: HostState, applied: tuple[str, ...], failed: tuple[str, ...]
    ) -> HostVerdict:
        if not state.exists:
            return HostVerdict()
        recorded = {row.key for row in state.rows}
        mine = set(applied)
        return HostVerdict(
            applied=tuple(row for row in state.rows if row.key not in mine),
            not_applied=tuple(key for key in applied if key not in recorded),
        )

    def writes(self, session: Session, change: HostChange) -> list[SqlWrite]:
        if change.event in (HostEvent.APPLIED, HostEvent.RESOLVED_APPLIED):
            return [self._insert(change.key)]
        if change.event is HostEvent.ROLLED_BACK:
            return [(f"DELETE FROM {self.table.sql} WHERE version = %s", (change.key,))]
        # started, failed, resolved as rolled back, rollback undone: dbmate has no row for a
        # migration in flight or failed, and keeps the applied one's row until it is rolled back
        return []

    def refusal(self, change: HostChange) -> str | None:
        return None

    def locks(self, url: DatabaseURL) -> list[HostLock]:
        """None: dbmate takes no lock of its own (its migrations run one transaction each)."""
        return self.table.dialect.host_locks(self.tool, url, schema=None, table=self.table.name)

    def _insert(self, key: str) -> SqlWrite:
        return (f"INSERT INTO {self.table.sql} (version) VALUES (%s)", (key,))
