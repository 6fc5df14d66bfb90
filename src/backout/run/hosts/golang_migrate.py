"""golang-migrate's own ``schema_migrations``, kept as ``migrate`` keeps it.

Derived from golang-migrate's source (v4: ``database/{postgres,mysql,sqlite3}``, ``migrate.go``),
since ``migrate`` is not installable from the registries the tests use:

- the table: ``(version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)`` on PostgreSQL
  and MySQL; ``(version uint64,dirty bool)`` with ``UNIQUE INDEX version_unique`` on SQLite;
- at most one row, the *current version*: every migration ``M`` to version ``T`` runs as
  ``SetVersion(T, dirty=true)``, then ``M``, then ``SetVersion(T, dirty=false)``; a failure
  leaves ``(T, true)``; going down past the first migration empties the table (NilVersion);
  ``migrate force V`` writes ``(V, false)``. ``SetVersion`` is ``TRUNCATE`` (``DELETE`` on
  SQLite) then ``INSERT``: backout uses ``DELETE`` everywhere, so the change stays inside its
  transaction (``TRUNCATE`` commits on MySQL); the row left is the same.

The model is linear: version ``V`` means every migration up to ``V`` is applied. backout writes
the greatest version it counts as applied (a pending migration below it, applied out of order
later, is then one ``migrate`` also counts as applied: the model cannot say otherwise).
"""

from __future__ import annotations

from backout.dialects.base import HostLock, Session
from backout.model.errors import HistoryError
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

#: events after which the version is the greatest applied one, clean (``migrate force``)
_SETTLED = (
    HostEvent.APPLIED,
    HostEvent.ROLLED_BACK,
    HostEvent.RESOLVED_APPLIED,
    HostEvent.RESOLVED_ROLLED_BACK,
    HostEvent.ROLLBACK_UNDONE,
)
#: events that leave the migration's own version dirty (in flight, or failed)
_DIRTY = (HostEvent.APPLY_STARTED, HostEvent.FAILED, HostEvent.ROLLBACK_STARTED)


def _number(key: str) -> int | None:
    return int(key) if key.isdigit() else None


class GolangMigrateHistory:
    """:class:`~backout.run.host_history.HostHistory` for the plain (golang-migrate) layout."""

    tool = "golang-migrate"
    marks_before_running = True

    def __init__(self, setup: HostSetup):
        self.table = HostTable(setup.dialect, setup.table or DEFAULT_TABLE)
        #: version number -> history key, for the migrations on disk
        self.keys = {
            n: m.key for m in setup.project.migrations if (n := _number(m.key)) is not None
        }

    @property
    def table_name(self) -> str:
        return self.table.configured

    def exists(self, session: Session) -> bool:
        return self.table.exists(session)

    def create_sql(self, applied: tuple[str, ...]) -> list[SqlWrite]:
        ddl = self.table.ddl(self.table.dialect.golang_migrate_table_ddl)
        return [(sql, ()) for sql in ddl] + self._set_version(self._top(applied), dirty=False)

    def read(self, session: Session) -> HostState:
        if not self.exists(session):
            return HostState(exists=False)
        rows = session.query(f"SELECT version, dirty FROM {self.table.sql}")
        return HostState(
            exists=True,
            rows=tuple(HostRow(key=str(int(v)), success=not bool(d)) for v, d in rows),
        )

    def compare(
        self, state: HostState, applied: tuple[str, ...], failed: tuple[str, ...]
    ) -> HostVerdict:
        if not state.exists:
            return HostVerdict()
        expected = self._expected(applied, failed)
        actual = self._actual(state)
        if actual == expected:
            return HostVerdict()
        version, dirty = actual if actual is not None else (-1, False)
        since = self._top(applied)
        floor = since if since is not None else -1
        moved_up = [
            HostRow(key=key)
            for n, key in sorted(self.keys.items())
            if floor < n and (n < version or (n == version and not dirty)) and key not in applied
        ]
        moved_down = tuple(k for k in applied if (_number(k) or 0) > version)
        verdict_failed: dict[str, str] = {}
        if dirty and version in self.keys and self.keys[version] not in failed:
            verdict_failed[self.keys[version]] = (
                f"golang-migrate's {self.table_name} says version {version} is dirty: a "
                "migration to or from it failed or is running; fix the schema, then "
                f"`backout resolve {self.keys[version]} --applied` or `--rolled-back` (what "
                "`migrate force` does)"
            )
        return HostVerdict(applied=tuple(moved_up), not_applied=moved_down, failed=verdict_failed)

    def writes(self, session: Session, change: HostChange) -> list[SqlWrite]:
        problem = self.refusal(change)
        if problem is not None:
            raise HistoryError(problem)
        if change.event in _DIRTY:
            return self._set_version(_number(change.key), dirty=True)
        if change.event in _SETTLED:
            return self._set_version(self._top(change.applied_after), dirty=False)
        return []

    def locks(self, url: DatabaseURL) -> list[HostLock]:
        return self.table.dialect.host_locks(
            self.tool, url, schema=self.table.schema, table=self.table.name
        )

    def refusal(self, change: HostChange) -> str | None:
        if _number(change.key) is None:
            return (
                f"golang-migrate's {self.table_name} holds numeric versions: migration "
                f"{change.key} has none"
            )
        if change.event not in (HostEvent.ROLLBACK_STARTED, HostEvent.ROLLED_BACK):
            return None
        own = _number(change.key) or 0
        above = [k for k in change.applied_after if (_number(k) or 0) > own]
        if above:
            return (
                f"golang-migrate's {self.table_name} keeps one version: rolling back "
                f"{change.key} while {above[-1]} stays applied cannot be recorded there "
                "(roll back from the newest, e.g. `backout rollback --to`)"
            )
        return None

    def _top(self, applied: tuple[str, ...]) -> int | None:
        numbers = [n for k in applied if (n := _number(k)) is not None]
        return max(numbers) if numbers else None

    def _expected(
        self, applied: tuple[str, ...], failed: tuple[str, ...]
    ) -> tuple[int, bool] | None:
        """The row backout's own writes leave for this view (None: no row)."""
        stuck = self._top(failed)
        if stuck is not None:
            return (stuck, True)
        top = self._top(applied)
        return (top, False) if top is not None else None

    @staticmethod
    def _actual(state: HostState) -> tuple[int, bool] | None:
        if not state.rows:
            return None
        row = state.rows[0]
        return (int(row.key), not row.success)

    def _set_version(self, version: int | None, *, dirty: bool) -> list[SqlWrite]:
        """``SetVersion``: the table emptied, then its one row (none for NilVersion, clean)."""
        writes: list[SqlWrite] = [(f"DELETE FROM {self.table.sql}", ())]
        if version is not None:
            writes.append(
                (f"INSERT INTO {self.table.sql} (version, dirty) VALUES (%s, %s)", (version, dirty))
            )
        elif dirty:
            writes.append(
                (f"INSERT INTO {self.table.sql} (version, dirty) VALUES (%s, %s)", (-1, True))
            )
        return writes
