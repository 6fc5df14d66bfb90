"""Issue 13, item 13: the ``--json`` documents of the commands that act, as docs/json.md shows.

The session the documentation describes is run here, command by command, and each real
document must have exactly the documented fields, with the same types (values differ: ids,
times). Then the database state backs the documents up.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.helpers import REPO, run, sql, write

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


def documented() -> dict[str, list[Any]]:
    """Every ```json block under each ``### `X --json` `` heading of docs/json.md."""
    text = (REPO / "docs" / "json.md").read_text(encoding="utf-8")
    found: dict[str, list[Any]] = {}
    for match in re.finditer(r"^### `(\w+) --json`\n(.*?)(?=^##)", text, re.S | re.M):
        blocks = re.findall(r"```json\n(.*?)```", match.group(2), re.S)
        found[match.group(1)] = [json.loads(b) for b in blocks]
    return found


def assert_same_shape(doc: Any, real: Any, path: str = "$") -> None:
    """Same keys at every level and the same JSON types; ``null`` on either side matches."""
    if doc is None or real is None:
        return
    if isinstance(doc, dict):
        assert isinstance(real, dict), path
        assert sorted(doc) == sorted(real), f"{path}: documented {sorted(doc)}, real {sorted(real)}"
        for key in doc:
            assert_same_shape(doc[key], real[key], f"{path}.{key}")
    elif isinstance(doc, list):
        assert isinstance(real, list), path
        for d, r in zip(doc, real, strict=False):
            assert_same_shape(d, r, f"{path}[]")
    elif isinstance(doc, bool) or isinstance(real, bool):
        assert type(doc) is type(real), path
    elif isinstance(doc, int | float):
        assert isinstance(real, int | float), path
    else:
        assert type(doc) is type(real), path


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
    assert_same_shape(docs["up"][0], up)
    assert [m["id"] for m in up["applied"]] == ["001_users", "002_posts"]

    backup = act(root, sqlite_url, "backup")
    assert_same_shape(docs["backup"][0], backup)
    assert backup["rows"]["posts"] == 2

    rollback = act(root, sqlite_url, "rollback", "--yes")
    assert_same_shape(docs["rollback"][0], rollback)
    assert rollback["outcome"] == "rolled_back" and rollback["rows_lost"] == 2
    assert sql(sqlite_url, "SELECT count(*) FROM sqlite_master WHERE name = 'posts'") == [(0,)]

    restore = act(root, sqlite_url, "restore", rollback["backup"]["id"], "--yes")
    assert_same_shape(docs["restore"][0], restore)
    assert sql(sqlite_url, "SELECT count(*) FROM posts") == [(2,)]
    assert restore["schema_changes"] == ['re-creates table "posts"']

    emergency = act(root, sqlite_url, "emergency", "--to", "001", "--yes")
    assert_same_shape(docs["emergency"][0], emergency)
    assert len(emergency["steps"]) == 7 and emergency["rolled_back"] == ["002_posts"]

    error = act(root, sqlite_url, "rollback", "--to", "002", "--yes", code=2)
    assert_same_shape(docs["rollback"][1], error)
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
