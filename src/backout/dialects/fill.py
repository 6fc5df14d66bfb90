"""Filling freshly migrated, empty tables with generated rows, in one transaction.

:mod:`backout.demo.sampledata` generates the rows; each dialect writes them its fastest way
(:meth:`backout.dialects.base.Dialect.fill_tables`): PostgreSQL with ``COPY``, SQLite with
``executemany``, MySQL with multi-row INSERT statements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from backout.model.errors import UsageError

Value = str | int | bool | None
Row = tuple[Value, ...]

#: the hint of an error saying a table or column is missing
MIGRATE_FIRST: Final = "apply all of the example's migrations before filling it"


@dataclass(frozen=True)
class TableRows:
    """One table's rows, produced lazily; ``serial`` names a sequence-backed id column."""

    name: str
    columns: tuple[str, ...]
    rows: Callable[[], Iterator[Row]]
    serial: str | None = None


def counted(rows: Iterable[Row], counts: dict[str, int], name: str) -> Iterator[Row]:
    """``rows`` as they are, counted into ``counts[name]``."""
    counts[name] = 0
    for row in rows:
        counts[name] += 1
        yield row


def not_empty(table: str) -> UsageError:
    """The error for a table that already has rows."""
    return UsageError(f"table {table} already has rows: fill needs freshly migrated, empty tables")
