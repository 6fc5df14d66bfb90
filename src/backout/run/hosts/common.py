"""What the host histories share: the table's name, quoting and existence."""

from __future__ import annotations

from dataclasses import dataclass

from backout.dialects.base import Dialect, Session


@dataclass(frozen=True)
class HostTable:
    """A host tool's table: ``name`` or ``schema.name`` as configured."""

    dialect: Dialect
    configured: str

    @property
    def schema(self) -> str | None:
        """The schema the user named (None: the session's search path decides)."""
        return self.configured.split(".", 1)[0] if "." in self.configured else None

    @property
    def name(self) -> str:
        """The table's own name."""
        return self.configured.rsplit(".", 1)[-1]

    @property
    def sql(self) -> str:
        """The table as written in SQL, each part quoted."""
        return ".".join(self.dialect.quote(part) for part in self.configured.split("."))

    def exists(self, session: Session) -> bool:
        """True when the table exists (one catalog query, remembered on private sessions)."""
        return self.dialect.bookkeeping_exists(session, self.name, self.schema)

    def ddl(self, templates: tuple[str, ...]) -> list[str]:
        """The tool's CREATE statements for this table (its schema first, when named)."""
        create = [t.format(table=self.sql) for t in templates]
        if self.schema is not None:
            return [*self.dialect.ensure_history_schema(self.schema), *create]
        return create
