"""Per-row scans in a database's own query plan: the shared part of ``plan``'s warning.

A statement whose plan runs a subquery once per row of its outer query, and in each run visits
many rows of a table, costs (outer rows x rows per run): a partial rollback written that way can
take minutes where a join takes a second. Each dialect reads its own EXPLAIN (``explain_*``
modules beside this one) into :class:`PerRowScan` records; this module words the warning.
"""

from __future__ import annotations

from dataclasses import dataclass

#: a subquery that visits at least this many rows per outer row (on average) is worth a warning
LARGE_PER_ROW = 1_000


@dataclass(frozen=True)
class PerRowScan:
    """One table a plan visits again for every row of the outer query."""

    table: str
    #: rows visited per run of the subquery (an estimate: the plan's, or from the table)
    rows_per_run: int
    #: the plan's own line for it, as EXPLAIN printed it
    detail: str

    def describe(self, explain: str) -> str:
        """One line for ``plan``: what the database's plan does, and what to do about it."""
        return (
            f"runs a subquery once per row that visits about {self.rows_per_run:,} rows of "
            f"{self.table} each time ({explain}: {self.detail}); its time grows with rows x "
            f"{self.rows_per_run:,}: compute the subquery once and join it (e.g. UPDATE ... "
            "FROM an aggregate)"
        )
