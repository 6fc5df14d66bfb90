"""PostgreSQL statement splitting and transaction conflicts (pglast; no server needed)."""

from __future__ import annotations

import pglast
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pglast.stream import RawStream

from backout.dialects.postgres.dialect import PostgresDialect
from backout.model.errors import ProjectError
from backout.model.script import Statement

PG = PostgresDialect()


def split(text: str, first_line: int = 1) -> list[tuple[str, int, int]]:
    return [(s.sql, s.line, s.index) for s in PG.split(text, "f.sql", first_line=first_line)]


def split_error(text: str, first_line: int = 1) -> ProjectError:
    with pytest.raises(ProjectError) as info:
        PG.split(text, "m/up.sql", first_line=first_line)
    return info.value


def test_simple_statements_with_lines_and_indexes() -> None:
    text = "CREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);\nDROP TABLE a;\n"
    assert split(text) == [
        ("CREATE TABLE a (id int)", 1, 1),
        ("INSERT INTO a VALUES (1)", 3, 2),
        ("DROP TABLE a", 4, 3),
    ]


def test_first_line_offsets_every_line() -> None:
    assert split("SELECT 1;\nSELECT 2;", first_line=20) == [
        ("SELECT 1", 20, 1),
        ("SELECT 2", 21, 2),
    ]


def test_several_statements_on_one_line() -> None:
    assert split("SELECT 1; SELECT 2;SELECT 3") == [
        ("SELECT 1", 1, 1),
        ("SELECT 2", 1, 2),
        ("SELECT 3", 1, 3),
    ]


def test_function_body_in_dollar_quotes_is_one_statement() -> None:
    text = (
        "CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "  NEW.n := NEW.n + 1;\n"
        "  RETURN NEW;\n"
        "END;\n"
        "$$;\n"
        "SELECT 1;\n"
    )
    got = split(text)
    assert [line for _, line, _ in got] == [1, 7]
    assert got[0][0] == text.split(";\nSELECT 1", maxsplit=1)[0].removesuffix(";")
    assert got[1][0] == "SELECT 1"


def test_do_block_and_tagged_dollar_quotes() -> None:
    text = (
        "DO $body$\nBEGIN\n  PERFORM 1; PERFORM $$ a;b $$;\nEND\n$body$;\nSELECT $x$ ; $y$ ; $x$;\n"
    )
    assert split(text) == [
        ("DO $body$\nBEGIN\n  PERFORM 1; PERFORM $$ a;b $$;\nEND\n$body$", 1, 1),
        ("SELECT $x$ ; $y$ ; $x$", 6, 2),
    ]


def test_comments_are_not_statements_and_do_not_shift_lines() -> None:
    text = (
        "-- header; with a semicolon\n"
        "/* block; comment\n"
        "   over lines; */\n"
        "SELECT 1; -- trailing; comment\n"
        "/* nested /* comments; */ are fine */ SELECT 2;\n"
        "-- last; comment\n"
    )
    assert split(text) == [("SELECT 1", 4, 1), ("SELECT 2", 5, 2)]


def test_strings_with_semicolons_and_quotes() -> None:
    text = (
        "INSERT INTO t VALUES ('a;b', 'it''s; fine', \"col;umn\");\n"
        "SELECT E'back\\'slash; here', U&'d\\0061t;a';\n"
        "SELECT 'multi\nline; string';\n"
        "SELECT 2;\n"
    )
    got = split(text)
    assert [(line, index) for _, line, index in got] == [(1, 1), (2, 2), (3, 3), (5, 4)]
    assert got[1][0] == "SELECT E'back\\'slash; here', U&'d\\0061t;a'"


def test_non_ascii_text_keeps_statement_boundaries() -> None:
    text = "SELECT 'café; 日本; 🎉';\nSELECT '🎉🎉🎉🎉🎉🎉';\nSELECT 3;"
    assert split(text) == [
        ("SELECT 'café; 日本; 🎉'", 1, 1),
        ("SELECT '🎉🎉🎉🎉🎉🎉'", 2, 2),
        ("SELECT 3", 3, 3),
    ]


def test_empty_statements_and_comment_only_scripts() -> None:
    assert split("") == []
    assert split("-- nothing here\n/* or here */\n") == []
    assert split(";;\n;") == []
    assert split("SELECT 1;;\n;SELECT 2") == [("SELECT 1", 1, 1), ("SELECT 2", 2, 2)]


def test_trailing_statement_without_semicolon() -> None:
    assert split("SELECT 1;\n  SELECT 2  \n") == [("SELECT 1", 1, 1), ("SELECT 2", 2, 2)]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("SELECT 1;\nSELEC 2;", 2, 'syntax error at or near "SELEC"'),
        ("SELECT 1;\n\n\nSELECT (;", 4, 'syntax error at or near ";"'),
        ("SELECT 'é日🎉';\nSELECT 'é日🎉' FROM\n\n  WHERE;", 4, 'syntax error at or near "WHERE"'),
        ("SELECT 1;\nSELECT 'open", 2, 'unterminated quoted string at or near "\'open"'),
        ("SELECT 1;\nSELECT $$ open", 2, 'unterminated dollar-quoted string at or near "$$ open"'),
        ("SELECT 1;\n/* open", 2, 'unterminated /* comment at or near "/* open"'),
        ("CREATE TABLE (id int);", 1, 'syntax error at or near "("'),
        # 60 bytes more than characters before the error: lines count characters, not bytes
        (
            "SELECT '" + "🎉" * 20 + "';\nSELECT 1 FROM;" + "\n" * 70 + "SELECT 2;",
            2,
            'syntax error at or near ";"',
        ),
    ],
)
def test_syntax_errors_name_file_and_line(text: str, line: int, message: str) -> None:
    exc = split_error(text, first_line=10)
    assert str(exc) == f"m/up.sql:{line + 9}: syntax error: {message}"
    assert exc.line == line + 9


def test_a_syntax_error_inside_a_function_body_is_not_a_split_error() -> None:
    # plpgsql bodies are checked by the server at CREATE time, not by the SQL parser.
    text = (
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETUR 1; END $$;\nSELECT 1;"
    )
    assert [line for _, line, _ in split(text)] == [1, 2]


# --- transaction conflicts ------------------------------------------------------------------------


def conflict(sql: str) -> str | None:
    return PG.transaction_conflict(Statement(sql, 1, 1))


def control(sql: str) -> tuple[str, str] | None:
    found = PG.transaction_control(Statement(sql, 1, 1))
    return None if found is None else (found.kind.value, found.verb)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("BEGIN", ("begin", "BEGIN")),
        ("-- AlterEnum\nBEGIN", ("begin", "BEGIN")),
        ("begin transaction isolation level serializable", ("other", "BEGIN")),
        ("START TRANSACTION", ("begin", "START")),
        ("COMMIT", ("commit", "COMMIT")),
        ("END", ("commit", "END")),
        ("COMMIT AND CHAIN", ("other", "COMMIT")),
        ("ROLLBACK", ("rollback", "ROLLBACK")),
        ("ABORT", ("rollback", "ABORT")),
        ("SAVEPOINT a", ("nested", "SAVEPOINT")),
        ("RELEASE SAVEPOINT a", ("nested", "RELEASE")),
        ("ROLLBACK TO SAVEPOINT a", ("nested", "ROLLBACK")),
        ("PREPARE TRANSACTION 'x'", ("other", "PREPARE")),
        ("PREPARE q AS SELECT 1", None),
        ("DO $$ BEGIN PERFORM 1; END $$", None),
        ("CREATE TABLE begin_log (id int)", None),
    ],
)  # fmt: skip
def test_transaction_control(sql: str, expected: tuple[str, str] | None) -> None:
    assert control(sql) == expected
    assert conflict(sql) is None  # transaction control is laid out, not a conflict


def NO_TX(what: str) -> str:
    return f"{what} cannot run inside a transaction block"


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (a)", NO_TX("CREATE INDEX CONCURRENTLY")),
        ("create unique index concurrently i on t (a)", NO_TX("CREATE INDEX CONCURRENTLY")),
        ("DROP INDEX CONCURRENTLY i", NO_TX("DROP INDEX CONCURRENTLY")),
        ("DROP INDEX CONCURRENTLY IF EXISTS i", NO_TX("DROP INDEX CONCURRENTLY")),
        ("REINDEX INDEX CONCURRENTLY i", NO_TX("REINDEX CONCURRENTLY")),
        ("REINDEX (VERBOSE, CONCURRENTLY) TABLE t", NO_TX("REINDEX CONCURRENTLY")),
        ("REINDEX SCHEMA public", NO_TX("REINDEX SCHEMA/SYSTEM/DATABASE")),
        ("REINDEX DATABASE app", NO_TX("REINDEX SCHEMA/SYSTEM/DATABASE")),
        ("VACUUM", NO_TX("VACUUM")),
        ("VACUUM (ANALYZE) t", NO_TX("VACUUM")),
        ("vacuum full t", NO_TX("VACUUM")),
        ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", NO_TX("DETACH PARTITION CONCURRENTLY")),
        ("CREATE DATABASE x", NO_TX("CREATE DATABASE")),
        ("DROP DATABASE x", NO_TX("DROP DATABASE")),
        ("ALTER SYSTEM SET work_mem = '64MB'", NO_TX("ALTER SYSTEM")),
        ("CREATE TABLESPACE s LOCATION '/x'", NO_TX("CREATE TABLESPACE")),
        ("DROP TABLESPACE s", NO_TX("DROP TABLESPACE")),
        ("CLUSTER", "CLUSTER without a table cannot run inside a transaction block"),
        ("DISCARD ALL", NO_TX("DISCARD ALL")),
    ],
)  # fmt: skip
def test_statements_that_cannot_run_in_a_transaction(sql: str, reason: str) -> None:
    assert conflict(sql) == reason


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t (id int)",
        "CREATE INDEX i ON t (a)",
        "DROP INDEX i",
        "REINDEX TABLE t",
        "ALTER TABLE t ADD COLUMN b text",
        "ALTER TYPE mood ADD VALUE 'meh'",
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET a = 1",
        "DELETE FROM t",
        "ANALYZE t",
        "ANALYZE",
        "CLUSTER t USING i",
        "DISCARD PLANS",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY v",
        "SELECT 'BEGIN; COMMIT'",
        "DO $$ BEGIN PERFORM 1; END $$",
        "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ VACUUM $$",
        "SET LOCAL lock_timeout = '1s'",
    ],
)
def test_ordinary_statements_run_in_a_transaction(sql: str) -> None:
    assert conflict(sql) is None


def test_an_unparseable_statement_is_no_conflict_split_reports_it() -> None:
    assert conflict("SELEC 1") is None
    assert conflict("") is None
    assert conflict("SELECT 1; SELECT 2") is None


def test_shape_runs_everything_inside_the_transaction() -> None:
    statements = PG.split("SET LOCAL x.y = 1;\nSELECT 1;", "f.sql")
    shape = PG.shape(statements)
    assert (shape.before, shape.inside, shape.after) == ((), tuple(statements), ())


# --- property: splitting never loses, merges or reorders statements -------------------------------

IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).map(lambda s: "t_" + s)
CHARS = st.sampled_from([*"ab ;'\"\\$-/*\n\té日🎉", "--", "/*", "*/", "$$", "''"])
TEXT = st.lists(CHARS, max_size=10).map("".join)


def plain_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def e_string(text: str) -> str:
    return "E'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@st.composite
def dollar_string(draw: st.DrawFn) -> str:
    tag = draw(st.sampled_from(["", "x", "body", "q1"]))
    text = draw(TEXT.filter(lambda t: f"${tag}$" not in t and not t.endswith("$")))
    return f"${tag}${text}${tag}$"


LITERAL = st.one_of(
    TEXT.map(plain_string),
    TEXT.map(e_string),
    dollar_string(),
    st.integers(min_value=0).map(str),
)


@st.composite
def statements(draw: st.DrawFn) -> str:
    name = draw(IDENT)
    lit = draw(LITERAL)
    kind = draw(st.integers(min_value=0, max_value=6))
    if kind == 0:
        return f"SELECT {lit}"
    if kind == 1:
        return f"CREATE TABLE {name} (a int, b text DEFAULT {lit})"
    if kind == 2:
        return f"INSERT INTO {name} (b) VALUES ({lit}), ({draw(LITERAL)})"
    if kind == 3:
        return f"UPDATE {name} SET b = {lit} WHERE a = 1"
    if kind == 4:
        body = draw(TEXT.filter(lambda t: "$fn$" not in t and not t.endswith("$")))
        return f"CREATE FUNCTION {name}() RETURNS int LANGUAGE plpgsql AS $fn${body}$fn$"
    if kind == 5:
        inner = draw(LITERAL.filter(lambda t: "$do$" not in t))
        return f"DO $do$ BEGIN PERFORM {inner}; END $do$"
    return f"COMMENT ON TABLE {name} IS {draw(TEXT.map(plain_string))}"


NOISE = st.lists(
    st.one_of(
        st.sampled_from([" ", "\n", "\t", "\n\n"]),
        TEXT.filter(lambda t: "\n" not in t).map(lambda t: f"-- {t}\n"),
        TEXT.filter(
            lambda t: (
                "*/" not in t and "/*" not in t and not t.endswith("/") and not t.endswith("*")
            )
        ).map(lambda t: f"/* {t} */"),
    ),
    max_size=3,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(NOISE, statements()), min_size=1, max_size=6),
    st.booleans(),
    st.integers(min_value=1, max_value=500),
)
def test_property_split_returns_exactly_the_statements(
    parts: list[tuple[str, str]], final_semicolon: bool, first_line: int
) -> None:
    text = ""
    expected: list[tuple[str, int, int]] = []
    for index, (noise, statement) in enumerate(parts, start=1):
        if index > 1:
            text += ";\n"
        text += noise
        expected.append((statement, first_line + text.count("\n"), index))
        text += statement
    if final_semicolon:
        text += ";\n"

    got = PG.split(text, "f.sql", first_line=first_line)

    assert [(s.sql, s.line, s.index) for s in got] == expected
    # the database's own parser agrees on the count and on each statement
    whole = pglast.parse_sql(text)
    assert len(whole) == len(got)
    assert [RawStream()(raw) for raw in whole] == [
        RawStream()(pglast.parse_sql(s.sql)[0]) for s in got
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(statements(), min_size=1, max_size=5),
    st.data(),
)
def test_property_a_broken_statement_is_reported_on_its_line(
    good: list[str], data: st.DataObject
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(good)))
    parts = [*good[:position], "SELEC broken", *good[position:]]
    text = ";\n".join(parts) + ";\n"
    line = 1 + text[: text.index("SELEC broken")].count("\n")
    exc = split_error(text)
    assert str(exc) == f'm/up.sql:{line}: syntax error: syntax error at or near "SELEC"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "DELETE FROM t WHERE id > :above;\nSELECT 1",
            ["DELETE FROM t WHERE id > :above", "SELECT 1"],
        ),
        ("UPDATE t SET x = :value", ["UPDATE t SET x = :value"]),
        ("SELECT :a; SELECT :value\n", ["SELECT :a", "SELECT :value"]),
        ("SELECT ':above'; SELECT 2", ["SELECT ':above'", "SELECT 2"]),
    ],
)
def test_a_parameter_ending_a_statement_is_kept_whole(text: str, expected: list[str]) -> None:
    # The parser sees "$1" plus padding: the statement must still end after the whole name.
    statements = PG.split(text, "f.sql", params=["above", "value", "a"])
    assert [s.sql for s in statements] == expected


@pytest.mark.parametrize(
    ("query", "counted"),
    [
        ("SELECT a FROM t WHERE x > :since ORDER BY a, b", "SELECT a FROM t WHERE x > :since "),
        (
            "SELECT a FROM t UNION SELECT b FROM u ORDER BY 1",
            "SELECT a FROM t UNION SELECT b FROM u ",
        ),
        (
            "WITH w AS (SELECT 1 ORDER BY 1) SELECT * FROM w ORDER BY 1",
            "WITH w AS (SELECT 1 ORDER BY 1) SELECT * FROM w ",
        ),
        # Where the order decides which rows there are, or there is none, it stays.
        ("SELECT a FROM t ORDER BY a LIMIT 3", "SELECT a FROM t ORDER BY a LIMIT 3"),
        ("SELECT a FROM t ORDER BY a OFFSET 3", "SELECT a FROM t ORDER BY a OFFSET 3"),
        ("SELECT a FROM t ORDER BY a FOR UPDATE", "SELECT a FROM t ORDER BY a FOR UPDATE"),
        (
            "SELECT string_agg(a, ',' ORDER BY a) FROM t",
            "SELECT string_agg(a, ',' ORDER BY a) FROM t",
        ),
        ("SELECT 'ORDER BY' FROM t", "SELECT 'ORDER BY' FROM t"),
        # An aggregate makes one group; a set-returning function multiplies rows.
        ("SELECT 1 FROM t ORDER BY count(*)", "SELECT 1 FROM t ORDER BY count(*)"),
        (
            "SELECT 1 FROM t ORDER BY generate_series(1, 3)",
            "SELECT 1 FROM t ORDER BY generate_series(1, 3)",
        ),
        (
            "SELECT id FROM t WHERE k IN (:b, :c, :d, :e, :f, :g, :h, :i, :j, :since) ORDER BY id",
            "SELECT id FROM t WHERE k IN (:b, :c, :d, :e, :f, :g, :h, :i, :j, :since) ",
        ),
        ("not sql ORDER BY", "not sql ORDER BY"),
    ],
)
def test_counting_a_preview_drops_a_sort_that_cannot_change_the_count(
    query: str, counted: str
) -> None:
    params = ["since", *"bcdefghij"]
    assert PG.count_sql(query, params) == f"SELECT count(*) FROM ({counted}\n) AS backout_count"


def test_ten_parameters_with_one_letter_names_split_where_they_should() -> None:
    # ":a" as the tenth parameter used to be masked as "$10": every later offset shifted.
    text = "SELECT :b, :c, :d, :e, :f, :g, :h, :i, :j, :a; SELECT 2"
    statements = PG.split(text, "f.sql", params=list("abcdefghij"))
    assert [s.sql for s in statements] == [
        "SELECT :b, :c, :d, :e, :f, :g, :h, :i, :j, :a",
        "SELECT 2",
    ]


def test_a_dollar_one_inside_a_string_is_not_a_parameter() -> None:
    scope = PG.dml_scope(
        Statement(sql="DELETE FROM t WHERE note = 'costs $1' AND id > :above", line=1, index=1),
        ["above"],
    )
    assert scope is not None
    assert scope.from_where == "t WHERE note = 'costs $1' AND id > :above"


def test_placeholders_in_array_brackets_are_parameters_on_postgres() -> None:
    # "[...]" quotes identifiers on SQLite only; on PostgreSQL it is an array.
    assert PG.bind("SELECT ARRAY[:ids], tags[:i] FROM t", {"ids": [1, 2], "i": 1}) == (
        "SELECT ARRAY[%(ids)s], tags[%(i)s] FROM t",
        {"ids": [1, 2], "i": 1},
    )
