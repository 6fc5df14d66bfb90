"""MySQL splitting: DELIMITER blocks, quotes, comments, executable comments, parameters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backout.dialects.mysql.dialect import MysqlDialect
from backout.dialects.mysql.split import head_words, param_spans, split
from backout.model.errors import ProjectError


def sqls(text: str) -> list[str]:
    return [s.sql for s in split(text, "t.sql")]


def test_semicolons_inside_quotes_and_comments_do_not_split() -> None:
    text = (
        "CREATE TABLE `a;b` (id INT); -- trailing; comment\n"
        "INSERT INTO t VALUES ('it''s; \\' ok', \"x;y\");\n"
        "# hash; comment\n"
        "/* block; comment */ SELECT 1;\n"
    )
    assert sqls(text) == [
        "CREATE TABLE `a;b` (id INT)",
        "INSERT INTO t VALUES ('it''s; \\' ok', \"x;y\")",
        "SELECT 1",
    ]


def test_lines_are_where_the_statement_starts_after_comments() -> None:
    text = "-- one\n\nSELECT 1;\n/* two\n lines */\nSELECT\n  2;\n"
    statements = split(text, "t.sql", first_line=10)
    assert [(s.index, s.line) for s in statements] == [(1, 12), (2, 15)]


def test_delimiter_blocks_keep_stored_programs_whole() -> None:
    text = (
        "DELIMITER //\n"
        "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND //\n"
        "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END//\n"
        "DELIMITER ;\n"
        "SELECT 3;\n"
    )
    assert sqls(text) == [
        "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND",
        "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END",
        "SELECT 3",
    ]


def test_delimiter_word_inside_a_statement_is_not_a_command() -> None:
    assert sqls("SELECT 'DELIMITER //'\nFROM t;\n") == ["SELECT 'DELIMITER //'\nFROM t"]


def test_dash_dash_needs_a_space_to_be_a_comment() -> None:
    assert sqls("SELECT 1--1;\nSELECT 2 -- not 3;\n;") == ["SELECT 1--1", "SELECT 2 -- not 3;"]


def test_executable_comments_are_statements_and_never_split() -> None:
    text = "/*!40101 SET NAMES utf8mb4 */;\n/*!50001 CREATE VIEW v AS SELECT 1; */;\nSELECT 1;"
    assert sqls(text) == [
        "/*!40101 SET NAMES utf8mb4 */",
        "/*!50001 CREATE VIEW v AS SELECT 1; */",
        "SELECT 1",
    ]


def test_a_close_inside_a_string_does_not_end_an_executable_comment() -> None:
    """Found by the MariaDB fuzz: the server and the client read the body of ``/*! */`` as code,
    so ``'*/'`` there is a string (it was the comment's end, then an unterminated string)."""
    text = "/*!INSERT INTO t VALUES ('*/;') */;\nSELECT 1 /*M!100100 , `a*/b` */;\nSELECT 2;"
    assert sqls(text) == [
        "/*!INSERT INTO t VALUES ('*/;') */",
        "SELECT 1 /*M!100100 , `a*/b` */",
        "SELECT 2",
    ]


def test_only_comments_make_no_statement() -> None:
    assert sqls("-- nothing\n/* here */\n# at all\n;;\n") == []


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("SELECT 1;\nSELECT 'open;\n", 2, "unterminated string"),
        ("SELECT `open\n", 1, "unterminated identifier"),
        ("SELECT 1;\n\n/* open\n", 3, "unterminated /* comment"),
        ("SELECT 1;\n/*!SELECT '*/' \n", 2, "unterminated /*! comment"),
    ],
)
def test_unterminated_quotes_and_comments_name_their_line(text: str, line: int, what: str) -> None:
    with pytest.raises(ProjectError) as info:
        split(text, "x.sql")
    assert f"x.sql:{line}: {what}" in str(info.value)


def test_param_spans_skip_strings_comments_and_identifiers() -> None:
    sql = "SELECT :since, ':since', `:since`, \":since\" # :since\n, a::b, x:since, :since"
    spans = param_spans(sql, {"since"})
    assert [sql[a:b] for a, b, _ in spans] == [":since", ":since"]
    assert spans[0][0] == sql.index(":since")


def test_bind_turns_placeholders_into_pyformat_and_escapes_percent() -> None:
    dialect = MysqlDialect()
    sql, values = dialect.bind("SELECT * FROM t WHERE a LIKE 'x%' AND b > :since", {"since": 1})
    assert sql == "SELECT * FROM t WHERE a LIKE 'x%%' AND b > %(since)s"
    assert values == {"since": 1}


@pytest.mark.parametrize(
    ("sql", "implicit", "conflict"),
    [
        ("CREATE TABLE t (a INT)", True, False),
        ("ALTER TABLE t ADD COLUMN b INT", True, False),
        ("DROP TABLE t", True, False),
        ("RENAME TABLE a TO b", True, False),
        ("TRUNCATE TABLE t", True, False),
        ("CREATE TEMPORARY TABLE t (a INT)", False, False),
        ("CALL p()", True, False),
        ("INSERT INTO t VALUES (1)", False, False),
        ("UPDATE t SET a = 1", False, False),
        ("DELETE FROM t", False, False),
        ("REPLACE INTO t VALUES (1)", False, False),
        ("SET FOREIGN_KEY_CHECKS = 0", False, False),
        ("/* x */ select 1", False, False),
        ("BEGIN", True, False),
        ("START TRANSACTION", True, False),
        ("COMMIT", True, False),
        ("ROLLBACK", True, False),
        ("LOCK TABLES t WRITE", True, True),
        ("SET autocommit = 0", False, True),
    ],
)
def test_statement_classes(sql: str, implicit: bool, conflict: bool) -> None:
    from backout.model.script import Statement

    dialect = MysqlDialect()
    statement = Statement(sql=sql, line=1, index=1)
    assert dialect.commits_implicitly(statement) is implicit
    assert (dialect.transaction_conflict(statement) is not None) is conflict


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("BEGIN", "begin"),
        ("BEGIN WORK", "begin"),
        ("START TRANSACTION", "begin"),
        ("START TRANSACTION READ ONLY", "other"),
        ("COMMIT", "commit"),
        ("COMMIT WORK", "commit"),
        ("COMMIT AND CHAIN", "other"),
        ("ROLLBACK", "rollback"),
        ("ROLLBACK TO SAVEPOINT a", "nested"),
        ("SAVEPOINT a", "nested"),
        ("XA START 'x'", "other"),
        ("BEGIN NOT ATOMIC SELECT 1; END", None),
    ],
)
def test_transaction_control(sql: str, kind: str | None) -> None:
    from backout.model.script import Statement

    found = MysqlDialect().transaction_control(Statement(sql=sql, line=1, index=1))
    assert (found.kind.value if found else None) == kind


def test_head_words_skip_comments() -> None:
    assert head_words("/* a */ -- b\n# c\n  create   table foo", 2) == ["CREATE", "TABLE"]


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_string_body = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


def _literal(body: str) -> str:
    return "'" + body.replace("\\", "\\\\").replace("'", "''") + "'"


@given(st.lists(st.tuples(_word, _string_body), min_size=1, max_size=6))
def test_split_recovers_every_statement(parts: list[tuple[str, str]]) -> None:
    """Joining statements with ``;`` and splitting gives them back, whatever their strings."""
    statements = [f"SELECT {_literal(body)} AS `{name}`" for name, body in parts]
    assert sqls(";\n".join(statements) + ";") == statements
