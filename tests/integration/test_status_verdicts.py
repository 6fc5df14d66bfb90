"""Issue 14: ``status`` saves its verdicts on scripts (backout.run.verdicts) and parses only
what changed, yet reports exactly what parsing every script would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backout.run import verdicts as verdicts_module
from backout.run.verdicts import Verdict, verdicts_file
from tests.helpers import db_state, run, write

PROJECT = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/002_pets.up.sql": "CREATE TABLE pets (id INTEGER PRIMARY KEY);\n",
    "migrations/002_pets.down.sql": "-- backout:risk HIGH\nDROP TABLE pets;\n",
}
BROKEN = "-- backout:risk HIGH\nDROP TABLEE users;\n"
#: a pending migration with its own BEGIN/COMMIT: status notes how `up` runs it
WITH_CONTROL = "BEGIN;\nCREATE TABLE toys (id INTEGER PRIMARY KEY);\nCOMMIT;\n"


@pytest.fixture
def judged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The displayed paths of the scripts judged (parsed), not found saved."""
    calls: list[str] = []
    real = verdicts_module.judge

    def counting(dialect, script):  # type: ignore[no-untyped-def]
        calls.append(script.display)
        return real(dialect, script)

    monkeypatch.setattr(verdicts_module, "judge", counting)
    return calls


def _status(root: Path, url: str) -> tuple[int, str]:
    result = run(["status"], project=root, url=url)
    return result.exit_code, result.output


def test_a_second_status_parses_nothing_and_says_the_same(
    tmp_path: Path, sqlite_url: str, judged: list[str]
) -> None:
    root = write(tmp_path / "p", PROJECT)
    assert run(["up", "--to", "001_users"], project=root, url=sqlite_url).exit_code == 0
    write(root, {"migrations/003_toys.up.sql": WITH_CONTROL})
    first = _status(root, sqlite_url)
    assert sorted(judged) == [
        "migrations/001_users.down.sql",
        "migrations/002_pets.down.sql",
        "migrations/002_pets.up.sql",
        "migrations/003_toys.up.sql",
    ]
    assert "note: migrations/003_toys.up.sql" in first[1]
    assert verdicts_file(root).is_file()
    judged.clear()
    assert _status(root, sqlite_url) == first
    assert judged == []
    document = json.loads(run(["status", "--json"], project=root, url=sqlite_url).stdout)
    assert document["notes"] and document["summary"]["broken_scripts"] == 0
    assert judged == []


def test_an_edited_script_is_parsed_again(
    tmp_path: Path, sqlite_url: str, judged: list[str]
) -> None:
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    assert _status(root, sqlite_url)[0] == 0
    judged.clear()
    write(root, {"migrations/001_users.down.sql": BROKEN})
    before = db_state(sqlite_url)
    code, output = _status(root, sqlite_url)
    assert judged == ["migrations/001_users.down.sql"]
    assert code == 1
    assert "broken rollback: migrations/001_users.down.sql:2:" in output
    # the same error `rollback` gives, from the saved verdict too
    judged.clear()
    assert _status(root, sqlite_url) == (code, output)
    assert judged == []
    rollback = run(["rollback", "--steps", "2", "--yes"], project=root, url=sqlite_url)
    assert rollback.exit_code == 2
    assert rollback.stderr.splitlines()[0].removeprefix("error: ") in output
    assert db_state(sqlite_url) == before
    # fixed again: parsed again, and sound
    write(root, PROJECT)
    judged.clear()
    assert _status(root, sqlite_url)[0] == 0
    assert judged == ["migrations/001_users.down.sql"]


def test_other_code_judges_again(
    tmp_path: Path, sqlite_url: str, judged: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another backout or parser release (here: another code identity) never reuses a
    verdict: a script that parsed before may not now."""
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    _status(root, sqlite_url)
    judged.clear()
    real = verdicts_module.code_identity
    monkeypatch.setattr(verdicts_module, "code_identity", lambda d: real(d) + "\0other parser")
    _status(root, sqlite_url)
    assert len(judged) == 2


def test_a_saved_verdict_is_only_trusted_for_its_key(
    tmp_path: Path, sqlite_url: str, judged: list[str]
) -> None:
    """A damaged or foreign cache file is ignored and replaced, never believed."""
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    for damaged in ("not json", '{"format": 99, "verdicts": {}}', '{"format": 1}', "[]"):
        verdicts_file(root).parent.mkdir(parents=True, exist_ok=True)
        verdicts_file(root).write_text(damaged, encoding="utf-8")
        judged.clear()
        assert _status(root, sqlite_url)[0] == 0
        assert len(judged) == 2
    # a malformed entry under the right key is judged again too
    document = json.loads(verdicts_file(root).read_text(encoding="utf-8"))
    for key in document["verdicts"]:
        document["verdicts"][key] = {"error": "x", "notes": "not a list"}
    verdicts_file(root).write_text(json.dumps(document), encoding="utf-8")
    judged.clear()
    assert _status(root, sqlite_url)[0] == 0
    assert len(judged) == 2


def test_a_read_only_project_still_gets_the_whole_status(
    tmp_path: Path, sqlite_url: str, judged: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write(tmp_path / "p", {**PROJECT, "migrations/001_users.down.sql": BROKEN})
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(Path, "mkdir", refuse)
    for _ in range(2):
        judged.clear()
        code, output = _status(root, sqlite_url)
        assert code == 1 and "broken rollback: migrations/001_users.down.sql:2:" in output
        assert len(judged) == 2
    assert not verdicts_file(root).exists()


def test_a_verdict_round_trips_through_the_file(tmp_path: Path) -> None:
    saved = {"error": "a.sql:2: syntax error", "notes": ["n1", "n2"]}
    assert verdicts_module._verdict_from(saved) == Verdict("a.sql:2: syntax error", ("n1", "n2"))
    assert verdicts_module._verdict_from({"error": None, "notes": [1]}) is None


def test_a_warm_status_imports_no_parser(tmp_path: Path, pg_url: str) -> None:
    """The point of it: on PostgreSQL a second ``status`` does not import pglast."""
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    code = (
        "import sys\n"
        "from backout.cli import main\n"
        "try:\n"
        f"    main(['status', '-C', {str(root)!r}, '--url', {pg_url!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('pglast' in sys.modules)\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert [r.stdout.strip().splitlines()[-1] for r in runs] == ["True", "False"]
    assert runs[0].stdout.splitlines()[:-1] == runs[1].stdout.splitlines()[:-1]
