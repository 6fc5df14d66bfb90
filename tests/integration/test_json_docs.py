"""Issues 13 (item 13) and 14: every JSON example of the docs against the real document.

The examples are those of docs/json.md and of the command pages (docs/commands/*.md). Each is
produced here by the real command on a real project (SQLite): the session the documentation
describes, command by command. Each real document must have exactly the
example's keys, recursively (nested objects and list items too), with the same JSON types;
values that vary (ids, times, paths, counts) need not match, but enumerated values (states,
kinds, outcomes) must be the real ones, and times follow the page's convention. Then the
database state backs the documents up. :data:`EXAMPLES` and :data:`PAGE_EXAMPLES` count the
examples, so a new one cannot go unchecked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from backout.demo.sampledata import fill
from tests.helpers import REPO, copy_example, run, sql, write

PROJECT = {
    "backout.toml": 'layout = "plain"\n[hooks]\nafter_rollback = "echo done"\n',
    "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT "
    "NULL);\nINSERT INTO users VALUES (1, 'a@example.com');\n",
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/002_posts.up.sql": "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER "
    "REFERENCES users (id));\nINSERT INTO posts VALUES (10, 1), (11, 1);\n",
    "migrations/002_posts.down.sql": (
        "-- backout:risk HIGH\n-- backout:manual Tell the blog team\nDROP TABLE posts;\n"
    ),
}


#: every example of docs/json.md, per command: how many, each checked by a test below
#: (an example added to the docs without a check here fails test_every_example_is_checked)
EXAMPLES = {
    "status": 3,  # the document; a failed migration's `remains`; an `interrupted` run
    "plan": 2,  # the document; a partial rollback's
    "backups": 1,
    "check": 1,
    "test": 1,
    "lint": 1,
    "history": 1,
    "up": 1,
    "backup": 1,
    # the document; an error; with --update-schema (checked by test_schema_update.py with the
    # real Prisma CLI)
    "rollback": 3,
    "restore": 1,
    "emergency": 1,
}

#: the JSON examples of the command pages (docs/commands/<command>.md), checked the same way
PAGE_EXAMPLES = {"backups": 1, "check": 1, "lint": 1, "test": 1}

#: keys whose values come from a closed set (states, kinds, outcomes): an example's value must
#: be the one the real document has, so it is one the code produces
ENUMERATED = {
    "action",
    "command",
    "computed_risk",
    "database_source",
    "declared_risk",
    "dialect",
    "direction",
    "event",
    "kind",
    "layout",
    "mode",
    "outcome",
    "risk",
    "rule",
    "severity",
    "state",
    "status",
    "verdict",
}

#: the timestamp convention of docs/json.md (UTC, milliseconds, ``Z``)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
#: an example's placeholder for list items left out
ELIDED = "..."


def documented() -> dict[str, list[Any]]:
    """Every ```json block under each ``## `X --json` `` or ``### `X --json` `` heading of
    docs/json.md, per command, in order."""
    text = (REPO / "docs" / "json.md").read_text(encoding="utf-8")
    found: dict[str, list[Any]] = {}
    for match in re.finditer(r"^##+ `(\w+) --json`\n(.*?)(?=^##|\Z)", text, re.S | re.M):
        blocks = re.findall(r"```json\n(.*?)```", match.group(2), re.S)
        found.setdefault(match.group(1), []).extend(json.loads(b) for b in blocks)
    return found


def fleet_example() -> Any:
    """The ``--targets`` document's example (checked by tests/integration/test_fleet.py)."""
    text = (REPO / "docs" / "json.md").read_text(encoding="utf-8")
    section = text.split("## `--targets` runs: the fleet document", 1)[1].split("\n## ", 1)[0]
    return json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])


def page_examples() -> dict[str, list[Any]]:
    """Every ```json block of each command's page, per command, in order."""
    found: dict[str, list[Any]] = {}
    for page in sorted((REPO / "docs" / "commands").glob("*.md")):
        blocks = re.findall(r"^```json\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)
        if blocks:
            found[page.stem] = [json.loads(b) for b in blocks]
    return found


def assert_same_shape(doc: Any, real: Any, path: str = "$") -> None:
    """Same keys at every level (nested objects and list items too), the same JSON types, and
    the same value where the key is :data:`ENUMERATED`. A documented ``null`` matches anything
    (the field is nullable); a documented value needs a real one. The documented items of a
    list are compared with the real list's first items, in order (``"..."`` is skipped)."""
    if doc is None:
        return
    assert real is not None, f"{path}: documented {doc!r}, real null"
    if isinstance(doc, dict):
        assert isinstance(real, dict), f"{path}: documented an object, real {real!r}"
        assert sorted(doc) == sorted(real), f"{path}: documented {sorted(doc)}, real {sorted(real)}"
        for key in doc:
            assert_same_shape(doc[key], real[key], f"{path}.{key}")
            if key in ENUMERATED and isinstance(doc[key], str):
                assert doc[key] == real[key], (
                    f"{path}.{key}: documented {doc[key]!r}, real {real[key]!r}"
                )
    elif isinstance(doc, list):
        assert isinstance(real, list), f"{path}: documented a list, real {real!r}"
        items = [d for d in doc if d != ELIDED]
        assert len(real) >= len(items), f"{path}: documented {len(items)} item(s), real {len(real)}"
        for i, (d, r) in enumerate(zip(items, real, strict=False)):
            assert_same_shape(d, r, f"{path}[{i}]")
    elif isinstance(doc, bool) or isinstance(real, bool):
        assert type(doc) is type(real), f"{path}: documented {doc!r}, real {real!r}"
    elif isinstance(doc, int | float):
        assert isinstance(real, int | float), f"{path}: documented {doc!r}, real {real!r}"
    else:
        assert type(doc) is type(real), f"{path}: documented {doc!r}, real {real!r}"


def timestamps(document: Any) -> list[Any]:
    """The value of every ``..._at`` key of ``document`` (its times; a partial's parameter
    values and the rows of a preview are data, not times of backout's)."""
    if isinstance(document, list):
        return [t for value in document for t in timestamps(value)]
    if not isinstance(document, dict):
        return []
    found = [value for key, value in document.items() if key.endswith("_at") and value is not None]
    return found + [t for value in document.values() for t in timestamps(value)]


def assert_documented(doc: Any, real: Any) -> None:
    """``real`` has the example's shape, and its times follow the convention."""
    assert_same_shape(doc, real)
    for when in timestamps(real):
        assert isinstance(when, str) and TIMESTAMP.fullmatch(when), f"{when}: not UTC, ms, Z"


def test_every_example_is_checked() -> None:
    docs = documented()
    assert {command: len(blocks) for command, blocks in docs.items()} == EXAMPLES
    pages = page_examples()
    assert {command: len(blocks) for command, blocks in pages.items()} == PAGE_EXAMPLES
    for when in timestamps(docs) + timestamps(pages):
        assert isinstance(when, str) and TIMESTAMP.fullmatch(when), f"docs/json.md: {when}"


def keys(document: Any) -> set[str]:
    """Every key of ``document``, at any depth."""
    if isinstance(document, dict):
        return set(document) | {k for value in document.values() for k in keys(value)}
    if isinstance(document, list):
        return {k for value in document for k in keys(value)}
    return set()


def test_the_tables_name_only_real_fields() -> None:
    """A field the tables of docs/json.md describe is a field of its examples (which are real:
    the tests below), so a renamed or removed field cannot stay described."""
    text = (REPO / "docs" / "json.md").read_text(encoding="utf-8")
    real = keys(list(documented().values())) | keys(fleet_example())
    described = {
        name
        for line in text.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`(\w+)`", line.split("|")[1])
    }
    assert described, "no field table found"
    assert described <= real, f"described, in no example: {sorted(described - real)}"


def act(root: Path, url: str, *args: str, code: int = 0) -> dict[str, Any]:
    result = run([*args, "--json"], project=root, url=url)
    assert result.exit_code == code, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_documented_documents_match_real_ones(tmp_path: Path, sqlite_url: str) -> None:
    docs = documented()
    assert set(docs) >= {"up", "backup", "rollback", "restore", "emergency"}
    root = write(tmp_path / "p", PROJECT)

    up = act(root, sqlite_url, "up")
    assert_documented(docs["up"][0], up)
    assert [m["id"] for m in up["applied"]] == ["001_users", "002_posts"]

    backup = act(root, sqlite_url, "backup")
    assert_documented(docs["backup"][0], backup)
    assert backup["rows"]["posts"] == 2

    rollback = act(root, sqlite_url, "rollback", "--yes")
    assert_documented(docs["rollback"][0], rollback)
    assert rollback["outcome"] == "rolled_back" and rollback["rows_lost"] == 2
    assert sql(sqlite_url, "SELECT count(*) FROM sqlite_master WHERE name = 'posts'") == [(0,)]

    restore = act(root, sqlite_url, "restore", rollback["backup"]["id"], "--yes")
    assert_documented(docs["restore"][0], restore)
    assert sql(sqlite_url, "SELECT count(*) FROM posts") == [(2,)]
    assert restore["schema_changes"] == ['re-creates table "posts"']

    emergency = act(root, sqlite_url, "emergency", "--to", "001", "--yes")
    assert_documented(docs["emergency"][0], emergency)
    assert len(emergency["steps"]) == 7 and emergency["rolled_back"] == ["002_posts"]

    error = act(root, sqlite_url, "rollback", "--to", "002", "--yes", code=2)
    assert_documented(docs["rollback"][1], error)
    assert error["error"]["exit_code"] == 2 and error["outcome"] == "error"


def test_a_refused_emergency_document(tmp_path: Path, sqlite_url: str) -> None:
    root = write(tmp_path / "p", PROJECT)
    act(root, sqlite_url, "up")
    write(root, {"migrations/002_posts.down.sql": "-- backout:risk LOW\nDROP TABLE posts;\n"})
    document = act(root, sqlite_url, "emergency", "--to", "001", "--yes", code=1)
    assert document["outcome"] == "failed" and document["failed_step"] == "plan"
    assert document["error"]["exit_code"] == 1
    assert "declares risk LOW" in document["refusals"][0]
    assert [s["status"] for s in document["steps"]][:2] == ["failed", "pending"]


class _Terminal:
    """``sys`` as the CLI sees it on a terminal (CliRunner's stdin is not one)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    @property
    def stdin(self) -> Any:
        stdin = self._real.stdin

        class Tty:
            def isatty(self) -> bool:
                return True

            def __getattr__(self, name: str) -> Any:
                return getattr(stdin, name)

        return Tty()


def test_a_declined_prompt_keeps_stdout_one_document(
    tmp_path: Path, sqlite_url: str, monkeypatch: Any
) -> None:
    """``backout rollback --json > out.json`` on a terminal: the question is asked where the
    user sees it (stderr), and out.json holds the document only."""
    import sys

    import backout.cli.rollback

    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    monkeypatch.setattr(backout.cli.rollback, "sys", _Terminal(sys))
    result = run(["rollback", "--json"], project=root, url=sqlite_url, input="n\n")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["outcome"] == "error" and document["error"]["kind"] == "Declined"
    assert "Roll back 1 migration(s)?" in result.stderr
    assert sql(sqlite_url, "SELECT count(*) FROM posts") == [(2,)]


def test_ctrl_c_leaves_one_document(tmp_path: Path, sqlite_url: str, monkeypatch: Any) -> None:
    import backout.backup.take

    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(backout.backup.take, "take_backup", interrupted)
    result = run(["backup", "--json"], project=root, url=sqlite_url)
    assert result.exit_code == 130
    document = json.loads(result.stdout)
    assert document["outcome"] == "error" and document["error"]["exit_code"] == 130
    assert "error: interrupted" in result.stderr


def test_a_usage_error_leaves_one_document(tmp_path: Path, sqlite_url: str) -> None:
    """A script reading ``backout rollback --json --steps "$N"`` gets a document even when
    click refuses the arguments (exit 2, its usage message on stderr)."""
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(["rollback", "--json", "--steps", "abc"], project=root, url=sqlite_url)
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["command"] == "rollback" and document["outcome"] == "error"
    assert document["error"]["exit_code"] == 2 and "--steps" in document["error"]["message"]
    assert "Invalid value for '--steps'" in result.stderr
    assert sql(sqlite_url, "SELECT count(*) FROM posts") == [(2,)]
    # a read-only command prints nothing on stdout (docs/json.md)
    result = run(["status", "--json", "--bogus"], project=root, url=sqlite_url)
    assert result.exit_code == 2 and result.stdout == ""


def read(root: Path | None, url: str | None, *args: str, code: int = 0) -> dict[str, Any]:
    """The document of a read-only command (its exit code checked)."""
    result = run([*args, "--json"], project=root, url=url)
    assert result.exit_code == code, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_the_read_only_documents_match_real_ones(tmp_path: Path, sqlite_url: str) -> None:
    """The examples' session: the vouchers example (Prisma, SQLite) with sample data."""
    docs = documented()
    root = copy_example("vouchers-sqlite", tmp_path)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    fill("vouchers-sqlite", sqlite_url, scale=10)

    assert_documented(docs["status"][0], read(root, sqlite_url, "status"))
    plan = read(root, sqlite_url, "plan")
    assert_documented(docs["plan"][0], plan)
    assert (
        plan["steps"][0]["impact"]["losses"][0]["count"]
        == sql(sqlite_url, 'SELECT count(*) FROM "VoucherRedemption"')[0][0]
    )
    partial = read(
        root,
        sqlite_url,
        "plan",
        "20240315000000",
        "--partial",
        "reverse-tokens",
        "--param",
        "since=2024-01-01",
    )
    assert_documented(docs["plan"][1], partial)
    assert_documented(docs["test"][0], read(root, sqlite_url, "test"))

    sql(sqlite_url, 'CREATE TABLE "Leftover" (id INTEGER)')
    sql(
        sqlite_url,
        'INSERT INTO "VoucherRedemption" ("id", "voucherId", "userId") '
        """SELECT 'r-orphan', "id", 'nope2' FROM "Voucher" LIMIT 1""",
    )
    check = read(root, sqlite_url, "check", code=1)
    assert_documented(docs["check"][0], check)
    assert_documented(page_examples()["check"][0], check)
    sql(sqlite_url, 'DELETE FROM "VoucherRedemption" WHERE "id" = \'r-orphan\'')

    assert run(["rollback", "--yes"], project=root, url=sqlite_url).exit_code == 0
    assert run(["backup", "--full"], project=root, url=sqlite_url).exit_code == 0
    history = read(root, sqlite_url, "history")
    assert [e["event"] for e in history["events"]][-2:] == ["rollback", "backup"]
    assert_documented(docs["history"][0], {**history, "events": history["events"][-2:]})
    backups = read(root, sqlite_url, "backups")
    assert_documented(docs["backups"][0], backups)
    assert_documented(page_examples()["backups"][0], backups)
    assert [b["kind"] for b in backups["backups"]] == ["scoped", "full"]


def test_a_failed_migrations_remains(tmp_path: Path, sqlite_url: str) -> None:
    """Prisma recorded the failure (0 steps); its first statement is in the database."""
    root = write(
        tmp_path / "app",
        {
            "prisma/schema.prisma": 'datasource db {\n  provider = "sqlite"\n  url = "file:x"\n}\n',
            "prisma/migrations/migration_lock.toml": 'provider = "sqlite"\n',
            "prisma/migrations/20250101000000_init/migration.sql": (
                'CREATE TABLE "User" ("id" INTEGER PRIMARY KEY);\n'
            ),
        },
    )
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    write(
        root,
        {
            "prisma/migrations/20250102000000_next/migration.sql": (
                'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\n'
                'ALTER TABLE "Nope" ADD COLUMN "flag" INTEGER;\n'
            )
        },
    )
    sql(sqlite_url, 'ALTER TABLE "User" ADD COLUMN "nickname" TEXT')
    sql(
        sqlite_url,
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at, "
        "applied_steps_count) VALUES ('0b6f3d4e-1a2b-4c3d-8e9f-000000000001', 'x', "
        "'20250102000000_next', 'Database error: no such table: Nope', '2025-01-02 00:00:00', 0)",
    )
    status = read(root, sqlite_url, "status", code=1)
    assert status["migrations"][1]["state"] == "failed"
    remains = status["migrations"][1]["remains"]
    assert_documented(documented()["status"][1], remains)
    assert [s["verdict"] for s in remains["statements"]] == ["applied", "not applied"]


def test_an_interrupted_run(tmp_path: Path, sqlite_url: str) -> None:
    """A ``transaction off`` rollback that failed at its second statement."""
    root = write(
        tmp_path / "p",
        {
            "backout.toml": 'layout = "plain"\n',
            "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
            "migrations/002_more.up.sql": (
                "CREATE TABLE a (id INTEGER);\nCREATE TABLE b (id INTEGER);\n"
            ),
            "migrations/002_more.down.sql": (
                "-- backout:risk LOW\n-- backout:transaction off\n"
                "DROP TABLE a;\nDROP TABLE nope;\nDROP TABLE b;\n"
            ),
        },
    )
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(["rollback", "--yes", "--no-simulate"], project=root, url=sqlite_url)
    assert result.exit_code == 4, result.output
    assert sql(sqlite_url, "SELECT name FROM sqlite_master WHERE name IN ('a', 'b')") == [("b",)]
    status = read(root, sqlite_url, "status", code=1)
    interrupted = status["migrations"][1]["interrupted"]
    assert_documented(documented()["status"][2], interrupted)
    assert interrupted["applied"] == [1] and interrupted["next"] == 2


def test_the_lint_document(tmp_path: Path) -> None:
    """``backout lint -C examples/giftregistry --no-squawk --json``, its BO101 finding left out."""
    root = copy_example("giftregistry", tmp_path)
    document = read(root, None, "lint", "--no-squawk", code=1)
    findings = [f for f in document["findings"] if f["rule"] != "BO101"]
    assert len(findings) < len(document["findings"])
    assert_documented(documented()["lint"][0], {**document, "findings": findings})
    assert_documented(page_examples()["lint"][0], {**document, "findings": findings})


def test_a_failed_rehearsal(tmp_path: Path, sqlite_url: str) -> None:
    """docs/commands/test.md's example: a rollback that leaves a table behind."""
    root = write(
        tmp_path / "p",
        {
            "backout.toml": 'layout = "plain"\n',
            "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
            "migrations/002_more.up.sql": "CREATE TABLE a (id INTEGER);\nCREATE TABLE b (x INT);\n",
            "migrations/002_more.down.sql": "-- backout:risk HIGH\nDROP TABLE a;\n",
        },
    )
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    document = read(root, sqlite_url, "test", code=1)
    assert_documented(page_examples()["test"][0], document)
    assert document["migrations"][0]["failures"][0]["kind"] == "schema"
