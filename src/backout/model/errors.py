"""One error base with structured subclasses; each carries the exit code the CLI returns.

Exit codes (documented in docs/exit-codes.md):

- ``1`` a check or lint found problems, or the user declined;
- ``2`` bad usage or input (flags, files, directives, configuration, untrustworthy history);
- ``3`` could not get the lock, or a timeout;
- ``4`` a database error (whatever the command was doing was undone);
- ``5`` the URL reaches PostgreSQL through a connection pooler in transaction mode (refused).
- ``6`` the rollback committed, but updating schema.prisma after it failed
  (``rollback --update-schema``; the rollback stands);
- ``7`` with ``--targets``: a target failed, or targets were not run (backout.fleet.run).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar


class BackoutError(Exception):
    """Base of every error backout raises on purpose; ``str()`` is the one-line message."""

    exit_code: ClassVar[int] = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(BackoutError):
    """The command line asks for something impossible or contradictory."""


class ConfigError(BackoutError):
    """backout.toml, pyproject.toml, .env or a URL is wrong."""


class ProjectError(BackoutError):
    """A migration file, folder or directive is wrong; names the file and line."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message, hint=hint)
        self.path = Path(path) if path is not None else None
        self.line = line


class HistoryError(BackoutError):
    """The recorded history cannot be trusted (failed, edited or missing migrations)."""


class CheckFailed(BackoutError):
    """A check found problems: a ``require``/``verify`` query, lint, or an orphan check."""

    exit_code: ClassVar[int] = 1


class Declined(BackoutError):
    """The user declined, or confirmation was needed and could not be asked for."""

    exit_code: ClassVar[int] = 1


class LockError(BackoutError):
    """The run lock is held elsewhere, or a lock/statement timeout was exhausted."""

    exit_code: ClassVar[int] = 3


class LockHeld(LockError):
    """The run lock is held by another run right now (worth waiting for: ``--lock-wait``)."""


class DatabaseError(BackoutError):
    """The database refused something; whatever was running has been undone."""

    exit_code: ClassVar[int] = 4

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        path: Path | str | None = None,
        line: int | None = None,
        statement: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.sqlstate = sqlstate
        self.path = Path(path) if path is not None else None
        self.line = line
        self.statement = statement


class DatabaseUnavailable(DatabaseError):
    """The database could not be reached or refused the credentials."""


class PoolerRefused(BackoutError):
    """The URL reaches the database through a connection pooler in transaction (or statement)
    mode, where a session advisory lock and ``SET`` do not hold; refused before anything ran."""

    exit_code: ClassVar[int] = 5


class ToolMissing(BackoutError):
    """A required client tool (pg_dump, mariadb-dump, ...) is missing or too old."""


class BackupError(BackoutError):
    """The backup could not be taken, verified or restored; nothing changed."""


class SchemaUpdateFailed(BackoutError):
    """``rollback --update-schema``: the rollback committed and stands, but updating
    schema.prisma (or ``prisma generate``) after it failed."""

    exit_code: ClassVar[int] = 6


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (``kill``, systemd, a container runtime stopping backout).

    Raised by the command line's signal handler wherever the program is, like Ctrl-C's
    KeyboardInterrupt (which it is), so that everything that undoes in-flight work and records
    a failed attempt on Ctrl-C does so on SIGTERM too; the exit code tells them apart.
    """

    exit_code: ClassVar[int] = 143

    def __init__(self) -> None:
        super().__init__("terminated by SIGTERM")
