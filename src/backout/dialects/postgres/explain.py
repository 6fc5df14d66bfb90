"""PostgreSQL: per-row scans from ``EXPLAIN (FORMAT JSON)`` (see backout.dialects.explain).

A plan node with ``"Parent Relationship": "SubPlan"`` is a correlated subquery, run once per
row of its parent (an ``InitPlan`` runs once, and is fine). Under it, a ``Seq Scan`` reads the
whole relation each time, and an index scan whose condition only narrows a range reads the
``Plan Rows`` the planner expects (plus what its filter drops). The counts are the planner's
estimates (``reltuples``, ``Plan Rows``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from backout.dialects.explain import LARGE_PER_ROW, PerRowScan

#: a relation's estimated rows, by schema and name
Estimate = Callable[[str | None, str], int]

_INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


def per_row_scans(plan: Mapping[str, Any], estimate: Estimate) -> list[PerRowScan]:
    """The large per-row scans of one statement's plan (the ``"Plan"`` of EXPLAIN's JSON)."""
    found = []
    for node in _nodes(plan, inside_subplan=False):
        kind = node.get("Node Type")
        table = node.get("Relation Name")
        if table is None:
            continue
        if kind == "Seq Scan":
            rows = estimate(node.get("Schema"), table)
        elif kind in _INDEX_SCANS:
            rows = int(node.get("Plan Rows", 0)) + int(node.get("Rows Removed by Filter", 0))
        else:
            continue
        if rows >= LARGE_PER_ROW:
            condition = node.get("Index Cond") or node.get("Recheck Cond") or node.get("Filter")
            detail = f"{kind} on {table}" + (f" {condition}" if condition else "")
            found.append(PerRowScan(table=table, rows_per_run=rows, detail=detail))
    return found


def _nodes(node: Mapping[str, Any], *, inside_subplan: bool) -> Iterator[Mapping[str, Any]]:
    """The nodes that run once per row of an outer query: those under a SubPlan."""
    inside = inside_subplan or node.get("Parent Relationship") == "SubPlan"
    if inside:
        yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child, inside_subplan=inside)
