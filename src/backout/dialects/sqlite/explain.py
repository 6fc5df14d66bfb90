"""SQLite: per-row scans from ``EXPLAIN QUERY PLAN`` (see backout.dialects.explain).

A ``CORRELATED ... SUBQUERY`` node runs once per outer row. Under it, ``SCAN t`` reads the
whole table each time; ``SEARCH t USING INDEX i (a=? AND b>?)`` reads, each time, the rows that
share one value of the equality columns (``a``): on average rows / distinct values of them. A
search by the correlated key (``userId=?``) is a few rows; one by a constant (``source=?``)
with a range is most of the table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from backout.dialects.explain import LARGE_PER_ROW, PerRowScan
from backout.model.identifiers import quote_identifier

Query = Callable[..., list[tuple[object, ...]]]

_ACCESS = re.compile(
    r"^(?P<kind>SCAN|SEARCH) (?P<name>\S+)(?: AS \S+)?"
    r"(?: USING (?:COVERING |INTEGER PRIMARY KEY|PRIMARY KEY)?\s*(?:INDEX (?P<index>\S+))?"
    r"\s*(?:\((?P<where>[^)]*)\))?)?"
)


def per_row_scans(query: Query, plan: Sequence[tuple[object, ...]], sql: str) -> list[PerRowScan]:
    """The large per-row scans of ``plan`` (the rows of EXPLAIN QUERY PLAN of ``sql``)."""
    parent_of = {int(str(row[0])): int(str(row[1])) for row in plan}
    detail_of = {int(str(row[0])): str(row[3]) for row in plan}

    def correlated(node: int) -> bool:
        while node in parent_of:
            node = parent_of[node]
            if detail_of.get(node, "").startswith("CORRELATED"):
                return True
        return False

    found = []
    for node, detail in detail_of.items():
        match = _ACCESS.match(detail)
        if match is None or not correlated(node):
            continue
        table = _table(query, match.group("name"), match.group("index"), sql)
        if table is None:
            continue
        rows = _rows_per_run(query, table, match.group("kind"), match.group("where") or "")
        if rows >= LARGE_PER_ROW:
            found.append(PerRowScan(table=table, rows_per_run=rows, detail=detail))
    return found


def _table(query: Query, name: str, index: str | None, sql: str) -> str | None:
    """The table behind a plan line's name, which may be an alias of the statement."""
    if index is not None:
        rows = query(
            "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)
        )
        if rows:
            return str(rows[0][0])
    if query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)):
        return name
    alias = re.search(
        r'(?:"((?:[^"]|"")+)"|(\w+))\s+(?:AS\s+)?"?' + re.escape(name) + r'"?\b', sql, re.I
    )
    if alias is None:
        return None
    return (alias.group(1) or alias.group(2)).replace('""', '"')


def _rows_per_run(query: Query, table: str, kind: str, where: str) -> int:
    """Rows one run visits on average: all of them (SCAN, or a SEARCH on a range only), else
    rows / distinct values of the equality columns."""
    quoted = quote_identifier(table)
    total = int(str(query(f"SELECT count(*) FROM {quoted}")[0][0]))
    equal = [c.split("=")[0].strip() for c in where.split(" AND ") if c.strip().endswith("=?")]
    if kind == "SCAN" or not equal:
        return total
    columns = ", ".join(quote_identifier(c) for c in equal)
    groups = int(
        str(query(f"SELECT count(*) FROM (SELECT DISTINCT {columns} FROM {quoted})")[0][0])
    )
    return total // max(groups, 1)
