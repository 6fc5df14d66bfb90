"""MySQL/MariaDB: per-row scans from ``EXPLAIN`` (see backout.dialects.explain).

A row whose ``select_type`` is ``DEPENDENT SUBQUERY`` runs once per row of the outer query;
its ``rows`` is the optimizer's estimate of the rows it examines each time (``type`` ``ALL``:
the whole table).
"""

from __future__ import annotations

from collections.abc import Sequence

from backout.dialects.explain import LARGE_PER_ROW, PerRowScan


def per_row_scans(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> list[PerRowScan]:
    """The large per-row scans of EXPLAIN's result (its column names and rows)."""
    index = {name.lower(): i for i, name in enumerate(columns)}
    found = []
    for row in rows:

        def field(name: str, row: Sequence[object] = row) -> object:
            return row[index[name]] if name in index else None

        if str(field("select_type") or "").upper() != "DEPENDENT SUBQUERY":
            continue
        examined = int(str(field("rows") or 0))
        if examined < LARGE_PER_ROW:
            continue
        table = str(field("table") or "?")
        access = str(field("type") or "?")
        key = field("key")
        detail = f"DEPENDENT SUBQUERY on {table}: type {access}" + (f", key {key}" if key else "")
        found.append(PerRowScan(table=table, rows_per_run=examined, detail=detail))
    return found
