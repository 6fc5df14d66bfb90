"""Issue 14, a fast start: how many questions a command asks the server. ``status`` asks which
of backout's tables exist once (Dialect.bookkeeping_known), not before reading each; the
answer is remembered for that read only. The run-lock check reads both locks in one go."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backout import api
from backout.dialects import dialect_for
from backout.dialects.base import Actor, Dialect, Session
from backout.dialects.postgres.session import PostgresSession
from backout.model.urls import parse_url
from backout.project.config import load_config
from tests.helpers import copy_example, run, write


@pytest.fixture(params=["sqlite", "postgresql"])
def session(request: pytest.FixtureRequest) -> Iterator[tuple[Dialect, Session]]:
    url = parse_url(
        request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    )
    dialect = dialect_for(url)
    opened = dialect.connect(url, actor=Actor.current())
    try:
        yield dialect, opened
    finally:
        opened.close()


def test_known_tables_last_for_the_block_only(session: tuple[Dialect, Session]) -> None:
    dialect, s = session
    s.execute("CREATE TABLE kept_t (id INTEGER)")
    with dialect.bookkeeping_known(s, [("kept_t", None), ("later_t", None)]):
        assert dialect.bookkeeping_exists(s, "kept_t", None)
        assert not dialect.bookkeeping_exists(s, "later_t", None)
        s.execute("CREATE TABLE later_t (id INTEGER)")
        assert dialect.bookkeeping_exists(s, "later_t", None)  # not found before: asked again
        s.execute("DROP TABLE kept_t")
        assert dialect.bookkeeping_exists(s, "kept_t", None)  # remembered inside the block
    assert s.known_tables is None
    assert not dialect.bookkeeping_exists(s, "kept_t", None)  # after it: asked, and gone
    assert dialect.tables_exist(s, [("later_t", None), ("kept_t", None)]) == [True, False]


def test_status_asks_once_which_tables_exist(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_example("vouchers", tmp_path)
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    asked: list[str] = []
    real_query = PostgresSession.query

    def query(self: PostgresSession, sql: str, params: object = None) -> list[tuple[object, ...]]:
        asked.append(sql)
        return real_query(self, sql, params)  # type: ignore[arg-type]

    monkeypatch.setattr(PostgresSession, "query", query)
    result = api.status(load_config(root, url=pg_url))
    assert [e.state.value for e in result.report.entries] == ["applied", "applied"]
    assert sum("to_regclass" in sql for sql in asked) == 1, asked
    assert len(asked) <= 5, asked


COUNTED = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/001_ab.up.sql": (
        "CREATE TABLE a (id INTEGER);\nINSERT INTO a VALUES (1), (2), (3);\n"
        "CREATE TABLE b (id INTEGER);\nINSERT INTO b VALUES (1), (2);\n"
        "CREATE TYPE mood AS ENUM ('ok');\n"
    ),
    "migrations/001_ab.down.sql": (
        "-- backout:risk HIGH\n"
        "DROP TYPE mood;\n"
        "DELETE FROM a WHERE 1 / (id - id) = 1;\n"
        "DROP TABLE b;\n"
        "DROP TABLE a;\n"
    ),
}


def test_impact_opens_a_savepoint_only_for_a_count_that_queries(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DROP TYPE counts nothing and DROP TABLE a is counted already (by the DELETE): neither
    costs a savepoint. The DELETE's count fails (division by zero) and is undone to its
    savepoint, and the count after it still runs in the same transaction."""
    root = write(tmp_path / "p", COUNTED)
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    sent: list[str] = []
    real_execute = PostgresSession.execute

    def execute(self: PostgresSession, sql: str, params: object = None) -> int:
        sent.append(sql)
        return real_execute(self, sql, params)  # type: ignore[arg-type]

    monkeypatch.setattr(PostgresSession, "execute", execute)
    view = api.plan(load_config(root, url=pg_url), simulate=False)
    impact = view.impact.scripts[0]
    assert any("could not be counted" in u and "division by zero" in u for u in impact.uncounted)
    lost = {(x.effect.target.name, x.count) for x in impact.losses if x.kind == "rows"}
    assert ("b", 2) in lost and ("a", 3) in lost
    savepoints = [s for s in sent if s.startswith("SAVEPOINT backout_impact")]
    # the DELETE (its count of a fails; a's rows were read first) and DROP TABLE b; DROP
    # TABLE a takes a's rows from the cache and DROP TYPE counts nothing
    assert len(savepoints) == 2, sent
    assert sent.count("ROLLBACK TO SAVEPOINT backout_impact") == 1
