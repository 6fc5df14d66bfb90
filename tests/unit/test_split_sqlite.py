"""SQLite statement splitting, syntax checks, transaction conflicts and script shape."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backout.dialects.sqlite.dialect import SqliteDialect
from backout.model.errors import ProjectError
from backout.model.script import Statement

LITE = SqliteDialect()


def split(text: str, first_line: int = 1) -> list[tuple[str, int, int]]:
    return [(s.sql, s.line, s.index) for s in LITE.split(text, "f.sql", first_line=first_line)]


def split_error(text: str, first_line: int = 1) -> ProjectError:
    with pytest.raises(ProjectError) as info:
        LITE.split(text, "m/down.sql", first_line=first_line)
    return info.value


TRIGGER = """\
CREATE TRIGGER audit AFTER INSERT ON users
BEGIN
  INSERT INTO log VALUES ('insert; into users');
  UPDATE users SET n = CASE WHEN NEW.n > 0 THEN 1 ELSE 0 END;
END"""


def test_statements_with_lines_and_indexes() -> None:
    text = "CREATE TABLE users (id INTEGER PRIMARY KEY, n);\n\nCREATE TABLE log (msg);\n"
    assert split(text) == [
        ("CREATE TABLE users (id INTEGER PRIMARY KEY, n)", 1, 1),
        ("CREATE TABLE log (msg)", 3, 2),
    ]


def test_trigger_body_is_one_statement() -> None:
    text = f"CREATE TABLE users (n);\n{TRIGGER};\nDROP TABLE users;\n"
    assert split(text, first_line=5) == [
        ("CREATE TABLE users (n)", 5, 1),
        (TRIGGER, 6, 2),
        ("DROP TABLE users", 11, 3),
    ]


def test_strings_identifiers_and_comments_containing_semicolons() -> None:
    text = (
        "-- lead; comment\n"
        "INSERT INTO t VALUES ('a;b', 'it''s; ok');\n"
        'SELECT "col;umn", [br;acket], `back;tick` FROM t; /* c; */ SELECT 2;\n'
        "/* multi;\n line; */\n"
        "SELECT 'multi\nline;';\n"
        "-- tail; comment"
    )
    assert split(text) == [
        ("INSERT INTO t VALUES ('a;b', 'it''s; ok')", 2, 1),
        ('SELECT "col;umn", [br;acket], `back;tick` FROM t', 3, 2),
        ("SELECT 2", 3, 3),
        ("SELECT 'multi\nline;'", 6, 4),
    ]


def test_trailing_statement_without_semicolon() -> None:
    assert split("SELECT 1;\n  SELECT 2  \n\n") == [("SELECT 1", 1, 1), ("SELECT 2", 2, 2)]
    assert split("SELECT 1 -- no semicolon") == [("SELECT 1 -- no semicolon", 1, 1)]


def test_empty_statements_and_comment_only_scripts() -> None:
    assert split("") == []
    assert split("-- just\n/* comments */\n") == []
    assert split(";;\n ;") == []
    assert split("SELECT 1;;\n;SELECT 2;") == [("SELECT 1", 1, 1), ("SELECT 2", 2, 2)]


def test_crlf_line_endings() -> None:
    assert split("SELECT 1;\r\n\r\nSELECT 2;\r\n") == [("SELECT 1", 1, 1), ("SELECT 2", 3, 2)]


def test_missing_tables_are_not_syntax_errors() -> None:
    text = (
        "INSERT INTO missing VALUES (1);\n"
        "DROP TABLE missing;\n"
        "ALTER TABLE missing ADD COLUMN x INTEGER;\n"
        "CREATE INDEX i ON missing (a);\n"
        f"{TRIGGER};\n"
        "CREATE TRIGGER v_ins INSTEAD OF INSERT ON some_view BEGIN SELECT 1; END;\n"
        "SELECT * FROM other_schema.t;\n"
    )
    assert [line for _, line, _ in split(text)] == [1, 2, 3, 4, 5, 10, 11]


def test_explain_statements_are_not_syntax_errors() -> None:
    assert split("EXPLAIN SELECT 1;\nEXPLAIN QUERY PLAN SELECT * FROM t;") == [
        ("EXPLAIN SELECT 1", 1, 1),
        ("EXPLAIN QUERY PLAN SELECT * FROM t", 2, 2),
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("SELECT 1;\nSELEC 2;", 2, 'near "SELEC": syntax error in: SELEC 2'),
        ("SELECT 1;\n\nCREATE TABLE (a);", 3, 'near "(": syntax error in: CREATE TABLE (a)'),
        (
            "SELECT 1;\nSELECT 'open",
            2,
            "unrecognized token: \"'open\" in: SELECT 'open",
        ),
        ("SELECT 1;\n/* open", 2, "incomplete input in: /* open"),
        (
            "CREATE TABLE t (a);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;",
            2,
            "incomplete input in: CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1",
        ),
        # the trigger's table does not exist: the syntax error in its body is still found
        (
            "CREATE TRIGGER tr AFTER INSERT ON nowhere BEGIN\n  SELEC 1;\nEND;",
            1,
            'near "SELEC": syntax error in: '
            "CREATE TRIGGER tr AFTER INSERT ON nowhere BEGIN SELEC 1; END",
        ),
        (
            "CREATE TRIGGER tr INSTEAD OF INSERT ON some_view BEGIN SELEC 1; END;",
            1,
            'near "SELEC": syntax error in: '
            "CREATE TRIGGER tr INSTEAD OF INSERT ON some_view BEGIN SELE…",
        ),
        (
            "ALTER TABLE missing ADD COLUMN x INTEGER NOT NUL;",
            1,
            'near "NUL": syntax error in: ALTER TABLE missing ADD COLUMN x INTEGER NOT NUL',
        ),
    ],
)  # fmt: skip
def test_syntax_errors_name_file_and_line(text: str, line: int, message: str) -> None:
    exc = split_error(text, first_line=3)
    assert str(exc) == f"m/down.sql:{line + 2}: syntax error: {message}"
    assert exc.line == line + 2


# --- transaction conflicts ------------------------------------------------------------------------


def conflict(sql: str) -> str | None:
    return LITE.transaction_conflict(Statement(sql, 1, 1))


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("BEGIN", "begin"),
        ("begin immediate transaction", "begin"),
        ("COMMIT", "commit"),
        ("COMMIT TRANSACTION", "commit"),
        ("END", "commit"),
        ("END TRANSACTION", "commit"),
        ("ROLLBACK", "rollback"),
        ("rollback transaction", "rollback"),
        ("-- why\nBEGIN", "begin"),
        ("/* why */ COMMIT", "commit"),
        ("ROLLBACK TO SAVEPOINT a", "nested"),
        ("SAVEPOINT a", "nested"),
        ("RELEASE a", "nested"),
    ],
)
def test_transaction_control(sql: str, kind: str) -> None:
    found = LITE.transaction_control(Statement(sql, 1, 1))
    assert found is not None and found.kind.value == kind
    assert conflict(sql) is None  # transaction control is laid out, not a conflict


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("VACUUM", "VACUUM cannot run inside a transaction"),
        ("VACUUM INTO 'copy.db'", "VACUUM cannot run inside a transaction"),
    ],
)
def test_statements_that_break_the_transaction(sql: str, reason: str) -> None:
    assert conflict(sql) == reason


@pytest.mark.parametrize(
    "sql",
    [
        "ROLLBACK TO a",
        "ROLLBACK TO SAVEPOINT a",
        "ROLLBACK TRANSACTION TO SAVEPOINT a",
        "rollback transaction to a",
        "SAVEPOINT a",
        "RELEASE a",
        "CREATE TABLE t (a)",
        "CREATE INDEX i ON t (a)",
        "DROP TABLE t",
        "INSERT INTO t VALUES ('BEGIN')",
        "UPDATE t SET a = 'COMMIT'",
        "DELETE FROM t",
        TRIGGER,
        "PRAGMA foreign_keys = OFF",
        "ALTER TABLE t RENAME TO u",
    ],
)
def test_ordinary_statements_do_not_conflict(sql: str) -> None:
    assert conflict(sql) is None


def test_each_conflict_really_fails_or_commits_inside_a_transaction() -> None:
    # the reasons above are facts about SQLite, checked here on a real connection
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (a)")
    for sql in ("VACUUM", "BEGIN"):
        conn.execute("BEGIN")
        with pytest.raises(sqlite3.OperationalError):
            conn.execute(sql)
        conn.execute("ROLLBACK")
    conn.execute("BEGIN")
    conn.execute("SAVEPOINT a")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("ROLLBACK TRANSACTION TO SAVEPOINT a")
    conn.execute("RELEASE a")
    assert conn.in_transaction
    conn.execute("ROLLBACK")
    conn.close()


# --- shape: foreign-key PRAGMAs around the transaction --------------------------------------------


def test_shape_hoists_foreign_keys_off_before_and_on_after() -> None:
    text = (
        "PRAGMA foreign_keys=OFF;\n"
        "CREATE TABLE new_t (a);\n"
        "PRAGMA defer_foreign_keys = ON;\n"
        "DROP TABLE t;\n"
        "ALTER TABLE new_t RENAME TO t;\n"
        "PRAGMA foreign_keys=ON;\n"
        "PRAGMA foreign_key_check;\n"
    )
    statements = LITE.split(text, "f.sql")
    shape = LITE.shape(statements)
    assert [s.sql for s in shape.before] == ["PRAGMA foreign_keys=OFF"]
    assert [s.sql for s in shape.inside] == [
        "CREATE TABLE new_t (a)",
        "PRAGMA defer_foreign_keys = ON",
        "DROP TABLE t",
        "ALTER TABLE new_t RENAME TO t",
        "PRAGMA foreign_key_check",
    ]
    assert [s.sql for s in shape.after] == ["PRAGMA foreign_keys=ON"]
    assert [s.line for s in shape.before + shape.after] == [1, 6]


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        ("PRAGMA foreign_keys = OFF", "before"),
        ("pragma foreign_keys=off", "before"),
        ("PRAGMA main.foreign_keys = 0", "before"),
        ("PRAGMA foreign_keys(false)", "before"),
        ("PRAGMA foreign_keys = no", "before"),
        ("PRAGMA foreign_keys = 'OFF'", "before"),
        ('PRAGMA foreign_keys = "off"', "before"),
        ("PRAGMA foreign_keys = ON", "after"),
        ("PRAGMA foreign_keys = 1", "after"),
        ("PRAGMA foreign_keys(yes)", "after"),
        ("PRAGMA foreign_keys = 'on'", "after"),
        ("PRAGMA foreign_keys", "inside"),
        ("PRAGMA foreign_key_check", "inside"),
        ("PRAGMA journal_mode = OFF", "inside"),
    ],
)
def test_shape_recognises_foreign_key_pragma_forms(sql: str, where: str) -> None:
    shape = LITE.shape([Statement(sql, 1, 1)])
    placed = {name for name in ("before", "inside", "after") if getattr(shape, name)}
    assert placed == {where}


def test_a_quoted_off_pragma_really_switches_foreign_keys_off() -> None:
    # why 'OFF' in quotes must be hoisted too: SQLite honours it (outside a transaction)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA foreign_keys = 'OFF'")
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (0,)
    conn.close()


# --- property: splitting matches SQLite's own execution ------------------------------------------

CHARS = st.sampled_from([*"ab ;'\"-*/\n\té日🎉", "--", "/*", "*/", "END;", "BEGIN;"])
TEXT = st.lists(CHARS, max_size=10).map("".join)


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


LITERAL = st.one_of(
    TEXT.map(quoted),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.binary(max_size=4).map(lambda b: f"X'{b.hex()}'"),
    st.just("NULL"),
)


@st.composite
def statement_list(draw: st.DrawFn) -> list[str]:
    """A runnable script: a table, then inserts, updates, tables, views and triggers on it."""
    out = ["CREATE TABLE t (a, b)", "CREATE TABLE log (msg)"]
    for n in range(draw(st.integers(min_value=0, max_value=6))):
        kind = draw(st.integers(min_value=0, max_value=5))
        lit = draw(LITERAL)
        if kind == 0:
            out.append(f"INSERT INTO t VALUES ({lit}, {draw(LITERAL)})")
        elif kind == 1:
            out.append(f"UPDATE t SET b = {lit} WHERE a IS NOT {draw(LITERAL)}")
        elif kind == 2:
            out.append(f"CREATE TABLE t{n} (x DEFAULT {lit}, {ident(draw(TEXT))} TEXT)")
        elif kind == 3:
            out.append(f"CREATE VIEW v{n} AS SELECT {lit} AS {ident(draw(TEXT))}")
        elif kind == 4:
            out.append(
                f"CREATE TRIGGER tr{n} AFTER INSERT ON t BEGIN\n"
                f"  INSERT INTO log VALUES ({lit});\n"
                f"  UPDATE log SET msg = CASE WHEN msg IS NULL THEN {draw(LITERAL)} ELSE msg END;\n"
                "END"
            )
        else:
            out.append(f"INSERT INTO log SELECT {lit} /* ; */")
    return [s.strip() for s in out]


NOISE = st.lists(
    st.one_of(
        st.sampled_from([" ", "\n", "\t", "\n\n"]),
        TEXT.filter(lambda t: "\n" not in t).map(lambda t: f"-- {t}\n"),
        TEXT.filter(lambda t: "*/" not in t and not t.endswith("*")).map(lambda t: f"/* {t} */"),
    ),
    max_size=3,
).map("".join)


def dump(conn: sqlite3.Connection) -> list[str]:
    return list(conn.iterdump())


@settings(max_examples=200, deadline=None)
@given(statement_list(), st.data(), st.booleans(), st.integers(min_value=1, max_value=500))
def test_property_split_matches_sqlite(
    statements: list[str], data: st.DataObject, final_semicolon: bool, first_line: int
) -> None:
    text = ""
    expected: list[tuple[str, int, int]] = []
    for index, statement in enumerate(statements, start=1):
        if index > 1:
            text += ";\n"
        text += data.draw(NOISE)
        expected.append((statement, first_line + text.count("\n"), index))
        text += statement
    if final_semicolon:
        text += ";\n"

    got = LITE.split(text, "f.sql", first_line=first_line)
    assert [(s.sql, s.line, s.index) for s in got] == expected

    # executing the split statements one by one == SQLite running the whole script
    one_by_one = sqlite3.connect(":memory:", isolation_level=None)
    for piece in got:
        one_by_one.execute(piece.sql)
    whole = sqlite3.connect(":memory:", isolation_level=None)
    whole.executescript(text)
    assert dump(one_by_one) == dump(whole)
    one_by_one.close()
    whole.close()


def test_a_bracket_quoted_identifier_is_not_a_placeholder() -> None:
    from backout.dialects.sqlite.dialect import SqliteDialect

    spans = SqliteDialect().param_spans("SELECT [:above] FROM t WHERE x = :above", ["above"])
    assert spans == [(33, 39, "above")]
