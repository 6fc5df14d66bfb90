"""SQLite orphans: ``PRAGMA foreign_key_check`` reports violations even with foreign keys off.

SQLite only enforces foreign keys on connections that set ``PRAGMA foreign_keys = ON``, and
Prisma's table redefinitions switch them off, so any of them can have orphans. The pragma gives
(table, rowid, parent, key id) per violating row; rows are counted per foreign key, and a few
referencing values are sampled with the anti-join of :mod:`backout.dialects.orphans`.
"""

from __future__ import annotations

from collections import Counter

from backout.dialects.base import OrphanRows, Session
from backout.dialects.orphans import Reference, count_orphans
from backout.model.schema import SchemaSnapshot, TableInfo


def _table(snapshot: SchemaSnapshot, name: str) -> TableInfo | None:
    found = snapshot.tables.get(name)
    if found is not None:
        return found
    lowered = name.lower()
    return next((t for t in snapshot.tables.values() if t.name.lower() == lowered), None)


def find_orphans(session: Session, snapshot: SchemaSnapshot) -> list[OrphanRows]:
    """Orphaned rows per foreign key of every table in ``snapshot``."""
    counts: Counter[tuple[str, int]] = Counter()
    parents: dict[tuple[str, int], str] = {}
    for table, _rowid, parent, fk_id in session.query("PRAGMA foreign_key_check"):
        counts[(str(table), int(fk_id))] += 1
        parents[(str(table), int(fk_id))] = str(parent)
    found: list[OrphanRows] = []
    for (name, fk_id), count in sorted(counts.items()):
        table = _table(snapshot, name)
        if table is None:
            continue  # backout's or Prisma's own tables
        pairs = [
            (str(row[3]), None if row[4] is None else str(row[4]))
            for row in session.query(
                "SELECT * FROM pragma_foreign_key_list(%s) WHERE id = %s ORDER BY seq",
                (name, fk_id),
            )
        ]
        columns = tuple(child for child, _ in pairs)
        parent = _table(snapshot, parents[(name, fk_id)])
        fk = next(
            (
                f
                for f in table.foreign_keys
                if tuple(c.lower() for c in f.columns) == tuple(c.lower() for c in columns)
                and f.referenced_table.lower() == parents[(name, fk_id)].lower()
            ),
            None,
        )
        referenced = fk.referenced_columns if fk is not None else tuple(p or "" for _, p in pairs)
        samples: tuple[str, ...] = ()
        if parent is not None and all(referenced):
            ref = Reference(table, columns, parent, referenced, fk.name if fk else None)
            samples = count_orphans(session, ref).samples
        found.append(
            OrphanRows(
                table=table.key,
                columns=columns,
                referenced_table=parent.key if parent is not None else parents[(name, fk_id)],
                referenced_columns=referenced,
                constraint=fk.name if fk is not None else None,
                count=count,
                samples=samples,
            )
        )
    return found
