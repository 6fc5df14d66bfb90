"""The model of a drafted rollback (``backout generate``), shared by the dialects' renderers.

A dialect turns two snapshots (before and after a forward migration) into a :class:`Draft`:
statements in the order they must run, each with an optional comment, plus what a person must
know: data that cannot come back (``data-loss`` and ``manual`` directives), preconditions
(``require``), and what the renderer could not reverse at all (``todo``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field

#: comment lines are wrapped to this width
WIDTH = 100


@dataclass(frozen=True)
class Rename:
    """An object the forward migration renamed; the draft renames it back, keeping its data."""

    #: table, column, index, constraint, type (enums too), enum_value, view, sequence
    kind: str
    schema: str | None
    #: the table of a column or constraint, the enum of a value; None otherwise
    parent: str | None
    old: str
    new: str


@dataclass(frozen=True)
class LiveNames:
    """The names tables and columns have when a rollback starts, where the forward migration
    renamed them: its ``require`` checks run before any statement, so before the renames are
    undone, and must name what exists then."""

    #: table name before the migration → its name after it
    tables: Mapping[str, str] = field(default_factory=dict)
    #: (table name before, column name before) → the column's name after the migration
    columns: Mapping[tuple[str, str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class DraftStep:
    """One statement of a draft (no trailing semicolon) and the comment written above it."""

    sql: str
    comment: str = ""


@dataclass
class Draft:
    """A drafted rollback: statements, and what its header must say."""

    steps: list[DraftStep] = field(default_factory=list)
    #: what the rollback does, one line each (``impact`` directives)
    impact: list[str] = field(default_factory=list)
    #: data that cannot come back (``data-loss`` directives)
    data_loss: list[str] = field(default_factory=list)
    #: what a person must do (``manual`` directives)
    manual: list[str] = field(default_factory=list)
    #: preconditions (``require`` directives): the rollback refuses to start otherwise
    requires: list[str] = field(default_factory=list)
    #: differences the renderer could not reverse; written as TODO comments
    todo: list[str] = field(default_factory=list)
    #: set when the migration changes rows only (the ``data-only`` directive's text)
    data_only: str | None = None

    def add(self, sql: str, comment: str = "") -> None:
        """Append a statement."""
        self.steps.append(DraftStep(sql.strip().rstrip(";"), comment))

    def sql(self) -> str:
        """The statements as script text, comments above them, blank lines between."""
        parts: list[str] = []
        for step in self.steps:
            lines = [
                f"-- {line}"
                for text in step.comment.splitlines()
                for line in textwrap.wrap(text, WIDTH - 3) or [""]
            ]
            parts.append("\n".join([*lines, step.sql + ";"]))
        return "\n\n".join(parts) + ("\n" if parts else "")


def plural(word: str, names: list[str]) -> str:
    """``table "a"`` or ``tables "a", "b"``."""
    return f"{word}{'s' if len(names) != 1 else ''} {', '.join(names)}"
