"""Dialect.bookkeeping_exists: backout's own tables, asked about dozens of times per migration in
a rehearsal walk, are remembered once seen, only on sessions of a private (scratch) database."""

from __future__ import annotations

from pathlib import Path

from backout.dialects import dialect_for
from backout.dialects.base import Actor
from backout.model.urls import parse_url


def test_a_table_seen_is_remembered_only_where_the_session_keeps_them(tmp_path: Path) -> None:
    url = parse_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
    dialect = dialect_for(url)
    actor = Actor.current()
    with dialect.connect(url, actor=actor) as shared, dialect.connect(url, actor=actor) as private:
        private.known_tables = set()
        assert not dialect.bookkeeping_exists(private, "backout_journal", None)
        assert private.known_tables == set()  # a missing table is asked again
        shared.execute("CREATE TABLE backout_journal (id INTEGER)")
        assert dialect.bookkeeping_exists(private, "backout_journal", None)
        assert dialect.bookkeeping_exists(shared, "backout_journal", None)
        shared.execute("DROP TABLE backout_journal")
        # the shared (user's) database is asked every time; the private one remembers
        assert not dialect.bookkeeping_exists(shared, "backout_journal", None)
        assert dialect.bookkeeping_exists(private, "backout_journal", None)
