"""Fuzzing (hypothesis) with the databases themselves as the oracle.

- **Splitting**: scripts are built from statements that are hard to split (strings, quoted
  identifiers, dollar quotes, ``E''`` escapes, nested comments, ``DO`` blocks, triggers),
  each of which appends one numbered row to a log table. The whole script is run by the
  database's own parser (PostgreSQL: one simple-protocol query; SQLite: ``executescript``),
  then backout's statements one at a time (a statement that holds two is refused by the
  driver: PostgreSQL's extended protocol and ``sqlite3.execute`` take one). Both logs must
  equal the numbers in order: nothing lost, merged or reordered; each statement's text and
  line are also checked against the generator's.
- **MySQL/MariaDB splitting**: the same, with MySQL's hard parts (backslash escapes, ``"``
  strings, backticked names holding ``;``, ``#`` and ``-- `` comments, ``--1`` arithmetic,
  executable comments ``/*! */`` and ``/*M! */``, ``DELIMITER`` blocks around stored
  procedures). Each piece goes to the server alone (a connection without multi-statements,
  which refuses two statements in one), then the whole script to the ``mariadb`` client, which
  splits it itself; both logs must be the generator's. Seeded with
  ``BACKOUT_RELIABILITY_SEED``; the examples after 30 s are not run (counted as over budget).
- **Directives**: headers built from random values round-trip through ``parse_directives``,
  including ``\\`` continuations and line numbers; an unknown directive is always an error
  naming its line.
- **Parameter binding**: arbitrary values bound with ``Dialect.bind`` round-trip as data
  through real databases, wherever ``:name`` appears (also next to strings and comments that
  contain ``:name`` themselves, which must stay text), and a hostile value never runs as SQL.

``BACKOUT_RELIABILITY_FUZZ`` sets the number of examples per property (default 150).
"""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from backout.dialects.mysql.dialect import MysqlDialect
from backout.dialects.postgres.dialect import PostgresDialect
from backout.dialects.sqlite.dialect import SqliteDialect
from backout.model.errors import ProjectError
from backout.model.script import ScriptKind, parse_directives
from tests.reliability.common import fuzz_examples, master_seed, pg_connect, record_result

MY = MysqlDialect()
PG = PostgresDialect()
SQ = SqliteDialect()

FUZZ = settings(
    max_examples=fuzz_examples(),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
COUNTS: dict[str, int] = {}


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


# --- text that goes inside literals ----------------------------------------------------------

#: characters that trip splitters, plus arbitrary printable text
TRICKY = st.lists(
    st.one_of(
        st.sampled_from([*";'\"$-/*\\\n\t:`[]()", "$$", "--", "/*", "*/", "E'", "$a$", ":v"]),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    max_size=16,
).map("".join)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _without(value: str, tag: str) -> str:
    # Removing one occurrence can join its neighbours into another: repeat until none is left.
    while tag in value:
        value = value.replace(tag, "")
    return value


def _dollar(value: str, tag: str) -> str:
    # A dollar-quoted body may hold anything but its own closing tag, nor end so that the tag
    # closes early (body "a$" with tag "": "$$a$$$" ends after "a", then a stray "$").
    close = f"${tag}$"
    body = _without(value, close)
    while (body + close).find(close) < len(body):
        body = body[:-1]
    return close + body + close


# --- PostgreSQL splitting --------------------------------------------------------------------


@st.composite
def pg_statement(draw: st.DrawFn, n: int) -> str:
    """One statement that logs ``n``; several hard-to-split shapes."""
    text = draw(TRICKY)
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return f"INSERT INTO fz (n, t) VALUES ({n}, {_sql_string(text)})"
    if kind == 1:
        escaped = text.replace("\\", "\\\\").replace("'", "\\'")
        return f"INSERT INTO fz (n, t) VALUES ({n}, E'{escaped}')"
    if kind == 2:
        tag = draw(st.sampled_from(["", "x", "body", "q1"]))
        return f"INSERT INTO fz (n, t) VALUES ({n}, {_dollar(text, tag)})"
    if kind == 3:
        return (
            f'INSERT INTO "fz" ("n", "t")\n  /* a /* nested ; */ comment */ VALUES ({n},\n'
            f"  -- a line comment ; with 'quote\n  {_sql_string(text)})"
        )
    if kind == 4:
        tag = draw(st.sampled_from(["", "do", "fn"]))
        # The body is dollar-quoted: the text inside it may not hold the closing tag.
        inner = _without(text, f"${tag}$")
        body = f"BEGIN INSERT INTO fz (n, t) VALUES ({n}, {_sql_string(inner)}); END;"
        return f"DO ${tag}$ {body} ${tag}$"
    if kind == 5:
        return (
            f"INSERT INTO fz (n, t) SELECT {n}, string_agg(x, ';' ORDER BY x) "
            f"FROM (VALUES ({_sql_string(text)}), ('b;c')) AS v (x)"
        )
    if kind == 6:
        ident = '"' + text.replace('"', '""').replace("\x00", "")[:20] + ' col"'
        return (
            f"WITH w ({ident}) AS (SELECT {_sql_string(text)}) "
            f"INSERT INTO fz (n, t) SELECT {n}, {ident} FROM w"
        )
    return f"INSERT INTO fz (n, t) VALUES ({n}, {_sql_string(text)}::text || ';')"


SEPARATORS = st.sampled_from(
    [";", ";\n", ";\n\n", "; ", ";\n-- comment; with ;\n", ";\n/* block ; */\n", ";;\n", "\n;\n"]
)


@st.composite
def pg_script(draw: st.DrawFn) -> tuple[str, list[tuple[str, int]]]:
    """(script text, [(statement, line it starts on)])."""
    count = draw(st.integers(1, 8))
    text = draw(st.sampled_from(["", "\n", "-- header ; comment\n", "/* x */\n"]))
    expected = []
    for n in range(count):
        statement = draw(pg_statement(n))
        expected.append((statement, text.count("\n") + 1))
        text += statement + draw(SEPARATORS)
    return text, expected


@pytest.fixture(scope="module")
def pg_scratch(pg_admin_url: str) -> Iterator[Any]:
    """One connection to a scratch database for all examples."""
    name = f"backout_rel_fuzz_{uuid.uuid4().hex[:8]}"
    with pg_connect(pg_admin_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = pg_admin_url.rsplit("/", 1)[0]
    try:
        with pg_connect(f"{base}/{name}") as conn:
            conn.execute("CREATE TABLE fz (seq serial PRIMARY KEY, n integer, t text)")
            conn.execute("CREATE TABLE bound (v text)")
            yield conn
    finally:
        with pg_connect(pg_admin_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_log(conn: Any) -> list[tuple[int, str]]:
    rows = conn.execute("SELECT n, t FROM fz ORDER BY seq").fetchall()
    conn.execute("TRUNCATE fz RESTART IDENTITY")
    return [(int(n), str(t)) for n, t in rows]


@pytest.mark.postgres
@FUZZ
@given(script=pg_script())
def test_pg_split_matches_the_server(pg_scratch: Any, script: tuple[str, list[Any]]) -> None:
    """pglast-based splitting agrees with PostgreSQL's own parser, statement by statement."""
    text, expected = script
    statements = PG.split(text, "fuzz.sql")
    assert [s.sql for s in statements] == [e[0] for e in expected]
    assert [s.line for s in statements] == [e[1] for e in expected]
    # The server parses the whole script itself (simple query protocol).
    result = pg_scratch.pgconn.exec_(text.encode())
    assert result.status in (1, 2), result.error_message  # COMMAND_OK / TUPLES_OK
    whole = _pg_log(pg_scratch)
    for statement in statements:
        pg_scratch.execute(statement.sql)  # extended protocol: exactly one statement
    pieces = _pg_log(pg_scratch)
    assert [n for n, _ in whole] == list(range(len(expected)))
    assert pieces == whole
    _count("pg_split")


# --- SQLite splitting ------------------------------------------------------------------------


@st.composite
def sqlite_statement(draw: st.DrawFn, n: int) -> str:
    """One statement that logs ``n``."""
    text = draw(TRICKY)
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return f"INSERT INTO fz (n, t) VALUES ({n}, {_sql_string(text)})"
    if kind == 1:
        ident = '"' + text.replace('"', '""') + ';"'
        return (
            f"INSERT INTO fz (n, t) SELECT {n}, {ident} FROM "
            f"(SELECT {_sql_string(text)} AS {ident})"
        )
    if kind == 2:
        return (
            f"INSERT INTO fz (n, t)\n  /* a ; comment */ VALUES ({n},\n"
            f"  -- a line comment ; with 'quote\n  {_sql_string(text)})"
        )
    if kind == 3:
        # A trigger body holds statements and semicolons: one statement all the same.
        return (
            f"CREATE TRIGGER tr{n} AFTER INSERT ON trg BEGIN\n"
            f"  INSERT INTO fz (n, t) VALUES ({n}, {_sql_string(text)});\n"
            f"  SELECT 1;\nEND"
        )
    if kind == 4:
        return f"INSERT INTO [fz] (`n`, \"t\") VALUES ({n}, {_sql_string(text)} || ';')"
    return f"INSERT INTO fz (n, t) VALUES ({n}, replace({_sql_string(text)}, ';', ';;'))"


@st.composite
def sqlite_script(draw: st.DrawFn) -> tuple[str, list[tuple[str, int]], int]:
    """(script, [(statement, line)], number of logged rows once the triggers fire)."""
    count = draw(st.integers(1, 8))
    text = draw(st.sampled_from(["", "\n", "-- header ; comment\n", "/* x */\n"]))
    expected = []
    for n in range(count):
        statement = draw(sqlite_statement(n))
        expected.append((statement, text.count("\n") + 1))
        text += statement + draw(SEPARATORS)
    return text, expected, count


def _sqlite_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE fz (seq INTEGER PRIMARY KEY, n INTEGER, t TEXT)")
    conn.execute("CREATE TABLE trg (x)")
    return conn


def _sqlite_log(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    # Triggers log when trg gets a row; fire them once, in creation order of their numbers.
    conn.execute("INSERT INTO trg VALUES (1)")
    rows = conn.execute("SELECT n, t FROM fz ORDER BY seq").fetchall()
    return [(int(n), str(t)) for n, t in rows]


@FUZZ
@given(script=sqlite_script())
def test_sqlite_split_matches_sqlite(script: tuple[str, list[Any], int]) -> None:
    """complete_statement-based splitting agrees with SQLite's own parser."""
    text, expected, _ = script
    statements = SQ.split(text, "fuzz.sql")
    assert [s.sql for s in statements] == [e[0] for e in expected]
    assert [s.line for s in statements] == [e[1] for e in expected]
    whole_db = _sqlite_db()
    whole_db.executescript(text)
    whole = sorted(_sqlite_log(whole_db))
    pieces_db = _sqlite_db()
    for statement in statements:
        pieces_db.execute(statement.sql)  # sqlite3 refuses two statements at once
    pieces = sorted(_sqlite_log(pieces_db))
    assert [n for n, _ in whole] == list(range(len(expected)))
    assert pieces == whole
    _count("sqlite_split")


# --- MySQL/MariaDB splitting ------------------------------------------------------------------

#: what trips a MySQL splitter besides :data:`TRICKY`: hash comments, executable comments,
#: backslash escapes, the client's DELIMITER word
MYSQL_TRICKY = st.lists(
    st.one_of(
        st.sampled_from(["#", "/*!", "/*M!", "*/", "\\'", '\\"', "\\\\", "DELIMITER", "//"]),
        TRICKY,
    ),
    max_size=4,
).map("".join)


def _mysql_string(draw: st.DrawFn, value: str) -> str:
    """``value`` as a MySQL string literal: single or double quotes, each escaped one of the
    two ways the server accepts (doubled or backslashed)."""
    quote = draw(st.sampled_from(["'", '"']))
    body = value.replace("\\", "\\\\")
    body = body.replace(quote, draw(st.sampled_from([quote * 2, "\\" + quote])))
    return quote + body + quote


def _mysql_ident(value: str) -> str:
    """A backticked column name holding ``;`` and some of ``value`` (what MariaDB allows in
    one: BMP, printable, at most 64 characters, not ending in a space)."""
    kept = "".join(c for c in value if c.isprintable() and ord(c) < 0x10000)[:40]
    return "`c;" + kept.replace("`", "``") + "x`"


@st.composite
def mysql_statement(draw: st.DrawFn, n: int) -> tuple[str, list[tuple[int, str]], list[str]]:
    """(statement, [(n, text) it logs], procedures it creates); several hard-to-split shapes."""
    text = draw(MYSQL_TRICKY)
    literal = _mysql_string(draw, text)
    kind = draw(st.integers(0, 8))
    logs = [(n, text)]
    if kind == 0:
        return f"INSERT INTO fz (n, t) VALUES ({n}, {literal})", logs, []
    if kind == 1:
        ident = _mysql_ident(text)
        statement = (
            f"INSERT INTO fz (n, t) SELECT {n}, d.{ident} FROM (SELECT {literal} AS {ident}) AS d"
        )
        return statement, logs, []
    if kind == 2:
        return (
            f"INSERT INTO fz (n, t) # a hash comment ; with 'quote\n"
            f'  /* a ; block */ VALUES ({n}, -- a dash comment ; with "quote\n'
            f"  {literal})",
            logs,
            [],
        )
    if kind == 3:  # `--` without a space is arithmetic, not a comment: n - (-1) - 1 = n
        return f"INSERT INTO fz (n, t) VALUES ({n}--1-1, {literal})", logs, []
    if kind == 4:
        return f"INSERT /*! IGNORE */ INTO fz (n, t) VALUES ({n}, {literal})", logs, []
    if kind == 5:
        version = draw(st.sampled_from(["!", "!40101 ", "!50001 ", "M!", "M!100100 "]))
        return f"/*{version}INSERT INTO fz (n, t) VALUES ({n}, {literal}) */", logs, []
    if kind == 6:
        return (
            f"INSERT INTO fz (n, t) VALUES ({n}, CONCAT({literal}, ';', ''))",
            [(n, text + ";")],
            [],
        )
    if kind == 7:
        return f"INSERT INTO `fz` (`n`, `t`) VALUES ({n}, {literal})", logs, []
    return f"INSERT INTO fz (n, t) SELECT {n}, {literal} FROM DUAL WHERE 1 = 1", logs, []


MYSQL_SEPARATORS = st.sampled_from(
    [
        ";",
        ";\n",
        ";\n\n",
        "; ",
        ";\n-- comment; with ;\n",
        ";\n# hash ; comment\n",
        ";\n/* block ; */\n",
        ";;\n",
        "\n;\n",
    ]
)


@st.composite
def mysql_delimiter_block(
    draw: st.DrawFn, n: int
) -> tuple[str, list[tuple[str, int]], list[tuple[int, str]], list[str]]:
    """``DELIMITER //``, a procedure whose body holds ``;`` (it logs ``n`` when called),
    ``DELIMITER ;``, then its CALL: (text from a line start, [(statement, line offset)], logs,
    procedures)."""
    text = draw(MYSQL_TRICKY)
    literal = _mysql_string(draw, text)
    delimiter = draw(st.sampled_from(["//", "$$", ";;", "!"]))
    create = (
        f"CREATE PROCEDURE p{n}()\nBEGIN\n  INSERT INTO fz (n, t) VALUES ({n}, {literal});\n"
        f"  SET @ignored = ';';\nEND"
    )
    call = f"CALL p{n}()"
    block = f"DELIMITER {delimiter}\n{create} {delimiter}\nDELIMITER ;\n{call}"
    statements = [(create, 1), (call, 1 + create.count("\n") + 2)]
    return block, statements, [(n, text)], [f"p{n}"]


@st.composite
def mysql_script(
    draw: st.DrawFn,
) -> tuple[str, list[tuple[str, int]], list[tuple[int, str]], list[str]]:
    """(script, [(statement, line)], [(n, text)] logged in order, procedures created)."""
    count = draw(st.integers(1, 8))
    text = draw(st.sampled_from(["", "\n", "-- header ; comment\n", "# header\n", "/* x */\n"]))
    expected: list[tuple[str, int]] = []
    logs: list[tuple[int, str]] = []
    procedures: list[str] = []
    for n in range(count):
        if draw(st.integers(0, 5)) == 0:
            if text and not text.endswith("\n"):
                text += "\n"  # the client reads DELIMITER at the start of a line only
            block, statements, logged, made = draw(mysql_delimiter_block(n))
            first = text.count("\n") + 1
            expected += [(statement, first + offset) for statement, offset in statements]
            logs += logged
            procedures += made
            text += block + draw(MYSQL_SEPARATORS)
            continue
        statement, logged, made = draw(mysql_statement(n))
        expected.append((statement, text.count("\n") + 1))
        logs += logged
        procedures += made
        text += statement + draw(MYSQL_SEPARATORS)
    return text, expected, logs, procedures


@pytest.fixture(scope="module")
def mysql_scratch(mysql_admin_url: str) -> Iterator[tuple[str, Any]]:
    """(URL, autocommit connection) of a scratch database for all examples (dropped after)."""
    from tests.helpers import mysql_connect, mysql_url_for

    name = f"backout_rel_fuzz_{uuid.uuid4().hex[:8]}"
    admin = mysql_connect(mysql_admin_url, database=None)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        url = mysql_url_for(mysql_admin_url, name)
        conn = mysql_connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TABLE fz (seq INT AUTO_INCREMENT PRIMARY KEY, n INT, t TEXT) "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
            yield url, conn
        finally:
            conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def _mysql_log(conn: Any, procedures: list[str]) -> list[tuple[int, str]]:
    """The rows logged since the last call, in order; then a clean slate."""
    with conn.cursor() as cur:
        cur.execute("SELECT n, t FROM fz ORDER BY seq")
        rows = [(int(n), str(t)) for n, t in cur.fetchall()]
        cur.execute("DELETE FROM fz")
        for name in procedures:
            cur.execute(f"DROP PROCEDURE IF EXISTS {name}")
    return rows


def _mariadb_client(url: str, script: str) -> subprocess.CompletedProcess[bytes] | None:
    """The whole script through the ``mariadb``/``mysql`` client, which splits it itself (None
    when no client is installed)."""
    from backout.dialects.mysql import tools as mysql_tools
    from backout.model.errors import BackupError
    from backout.model.urls import parse_url

    parsed = parse_url(url)
    try:
        client = mysql_tools.find_tool("client", server_is_mariadb=True)
    except BackupError:
        return None
    with mysql_tools.client_options(parsed) as options:
        return subprocess.run(
            [client.path, *options.args, "--default-character-set=utf8mb4", str(parsed.database)],
            input=script.encode("utf-8"),
            capture_output=True,
            pass_fds=options.fds,
            timeout=60,
            check=False,
        )


#: seconds the MariaDB split property may take (the suite's budget for it); the examples
#: drawn after it are not run, and counted as such in the report
MYSQL_SPLIT_BUDGET_S = 30.0
_MYSQL_SPLIT_STARTED: list[float] = []


@pytest.mark.mysql
@FUZZ
@seed(master_seed())
@given(script=mysql_script())
def test_mysql_split_matches_the_server(
    mysql_scratch: tuple[str, Any],
    script: tuple[str, list[tuple[str, int]], list[tuple[int, str]], list[str]],
) -> None:
    """backout's MySQL splitting agrees with the server, statement by statement, and with the
    ``mariadb`` client's own splitting of the whole script (DELIMITER included)."""
    started = _MYSQL_SPLIT_STARTED or [time.monotonic()]
    _MYSQL_SPLIT_STARTED[:] = started
    if time.monotonic() - started[0] > MYSQL_SPLIT_BUDGET_S:
        _count("mysql_split_over_budget")
        return
    url, conn = mysql_scratch
    text, expected, logs, procedures = script
    statements = MY.split(text, "fuzz.sql")
    assert [s.sql for s in statements] == [e[0] for e in expected]
    assert [s.line for s in statements] == [e[1] for e in expected]
    # The server takes each piece as exactly one statement (no CLIENT_MULTI_STATEMENTS: a
    # second statement in a piece is a syntax error), and the log holds each number once.
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement.sql)
    assert _mysql_log(conn, procedures) == logs
    whole = _mariadb_client(url, text)
    if whole is not None:
        assert whole.returncode == 0, whole.stderr.decode("utf-8", "replace")
        assert _mysql_log(conn, procedures) == logs
        _count("mysql_split_client")
    _count("mysql_split")


# --- directives ------------------------------------------------------------------------------

WORDS = (
    st.text(
        alphabet=st.characters(
            whitelist_categories=("L", "N", "P", "Zs", "S"), blacklist_characters="\\\r\n\x85"
        ),
        min_size=1,
        max_size=30,
    )
    .map(lambda s: " ".join(s.split()))
    .filter(bool)
)
SQLISH = st.builds(
    lambda a, b: f"SELECT count(*) = {a} FROM t WHERE c <> '{b}'",
    st.integers(0, 99),
    st.text(alphabet="abc;xyz:-", max_size=8),
)


def _wrap(name: str, value: str, pieces: int) -> list[str]:
    """``-- backout:NAME VALUE`` over ``pieces`` lines with backslash continuations."""
    words = value.split(" ")
    size = max(1, -(-len(words) // pieces))
    chunks = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    lines = [f"-- backout:{name} {chunks[0]}"]
    for chunk in chunks[1:]:
        lines[-1] += " \\"
        lines.append(f"--   {chunk}")
    return lines


@st.composite
def directive_script(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A partial rollback with a random header; what parsing it must give."""
    lines: list[str] = ["-- a plain comment first"]
    risk = draw(st.sampled_from(["NONE", "LOW", "MEDIUM", "HIGH"]))
    spelled = "".join(draw(st.sampled_from([c.lower(), c])) for c in risk)
    lines.append(f"-- backout:risk {spelled}")
    expected: dict[str, Any] = {"risk": risk, "impact": [], "require": [], "params": []}
    for value in draw(st.lists(WORDS, max_size=3)):
        expected["impact"].append(value)
        lines += _wrap("impact", value, draw(st.integers(1, 3)))
        lines.append(draw(st.sampled_from(["", "SELECT 1;", "-- note"])))
    for query in draw(st.lists(SQLISH, max_size=3)):
        expected["require"].append((query, len(lines) + 1))
        lines += _wrap("require", query, draw(st.integers(1, 3)))
    names = draw(st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), unique=True))
    for name in names[:3]:
        kind = draw(st.sampled_from(["text", "integer", "date", "boolean", "uuid"]))
        expected["params"].append((name, kind, len(lines) + 1))
        lines.append(f"-- backout:param {name} {kind}")
    lines.append("UPDATE t SET c = 1;")
    return "\n".join(lines) + "\n", expected


@FUZZ
@given(script=directive_script())
def test_directives_round_trip(script: tuple[str, dict[str, Any]]) -> None:
    """Every directive comes back with its value (continuations joined) and its line."""
    text, expected = script
    found = parse_directives(text, "fuzz.sql", ScriptKind.PARTIAL)
    assert found.risk is not None and found.risk.name == expected["risk"]
    assert list(found.impact) == expected["impact"]
    assert [(c.sql, c.line) for c in found.require] == expected["require"]
    assert [(p.name, p.type, p.line) for p in found.params] == expected["params"]
    _count("directives")


@FUZZ
@given(
    before=st.lists(st.sampled_from(["SELECT 1;", "-- x", "", "-- backout:risk LOW"]), max_size=4),
    name=st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True).filter(
        lambda n: (
            n
            not in {
                "risk",
                "impact",
                "data-loss",
                "manual",
                "require",
                "verify",
                "param",
                "preview",
                "transaction",
            }
        )
    ),
)
def test_unknown_directive_is_an_error_naming_its_line(before: list[str], name: str) -> None:
    """A typo is never a silently ignored comment."""
    text = "\n".join([*before, f"-- backout:{name} HIGH", "SELECT 1;"]) + "\n"
    with pytest.raises(ProjectError) as info:
        parse_directives(text, "fuzz.sql", ScriptKind.ROLLBACK)
    assert info.value.line == len(before) + 1
    _count("unknown_directives")


# --- parameter binding -----------------------------------------------------------------------

PG_VALUES = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    TRICKY,
    st.integers(-(2**63), 2**63 - 1),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.booleans(),
    st.dates(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.uuids(),
)

#: SQL around the placeholder: strings, comments and casts that contain ":v" must stay text
CONTEXTS = [
    ("SELECT :v", 0),
    ("SELECT ':v' AS s, :v AS v -- :v in a comment", 1),
    ("SELECT /* :v */ :v", 0),
    ('SELECT :v AS ":v"', 0),
    ("SELECT $q$ :v $q$ AS s, :v AS v", 1),
]


def _pg_cast(value: object) -> str:
    if isinstance(value, bool):
        return "::boolean"
    if isinstance(value, int):
        return "::bigint"
    if isinstance(value, decimal.Decimal):
        return "::numeric"
    if isinstance(value, dt.datetime):
        return "::timestamptz"
    if isinstance(value, dt.date):
        return "::date"
    if isinstance(value, uuid.UUID):
        return "::uuid"
    return "::text"


@pytest.mark.postgres
@FUZZ
@given(value=PG_VALUES, context=st.sampled_from(CONTEXTS))
def test_pg_parameters_round_trip_as_data(
    pg_scratch: Any, value: object, context: tuple[str, int]
) -> None:
    """What goes in comes back, from a real PostgreSQL; the text around stays text."""
    sql, column = context
    sql = sql.replace(":v", ":v" + _pg_cast(value), 1) if column == 0 else sql
    bound_sql, params = PG.bind(sql, {"v": value})
    row = pg_scratch.execute(bound_sql, params).fetchone()
    got = row[column]
    if column == 1:
        assert row[0].strip() == ":v"
    if isinstance(value, decimal.Decimal):
        assert decimal.Decimal(got) == value
    else:
        assert got == value
    _count("pg_params")


@pytest.mark.postgres
@FUZZ
@given(value=TRICKY.map(lambda s: s + "'); DROP TABLE bound; --"))
def test_pg_hostile_value_is_stored_not_run(pg_scratch: Any, value: str) -> None:
    """A value written to look like SQL is stored as it is; the table survives."""
    sql, params = PG.bind("INSERT INTO bound (v) VALUES (:v) RETURNING v", {"v": value})
    assert pg_scratch.execute(sql, params).fetchone()[0] == value
    assert pg_scratch.execute("SELECT count(*) FROM bound WHERE v = %s", (value,)).fetchone()[0]
    pg_scratch.execute("TRUNCATE bound")
    _count("pg_hostile")


SQ_VALUES = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    TRICKY,
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.dates(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)


def _sqlite_expected(value: object) -> object:
    adapted = SQ.adapt(value)
    if isinstance(adapted, bool):
        return int(adapted)
    return adapted


@FUZZ
@given(value=SQ_VALUES, context=st.sampled_from(CONTEXTS[:4]))
def test_sqlite_parameters_round_trip_as_data(value: object, context: tuple[str, int]) -> None:
    """What goes in comes back, from SQLite; the text around stays text."""
    sql, column = context
    bound_sql, params = SQ.bind(sql, {"v": value})
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE bound (v)")
    row = conn.execute(bound_sql, params).fetchone()
    assert row[column] == _sqlite_expected(value)
    if column == 1:
        assert row[0] == ":v"
    hostile = f"{value}'); DROP TABLE bound; --"
    sql2, params2 = SQ.bind("INSERT INTO bound (v) VALUES (:v)", {"v": hostile})
    conn.execute(sql2, params2)
    assert conn.execute("SELECT v FROM bound").fetchall() == [(hostile,)]
    conn.close()
    _count("sqlite_params")


def test_zz_record_fuzz_counts() -> None:
    """Record how many examples each property ran (for the report)."""
    record_result("fuzz", {"examples_per_property": fuzz_examples(), "ran": dict(COUNTS)})
