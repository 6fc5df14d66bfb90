"""Issue 13, items 1-3: every refusal comes before the first side effect, with its reason.

``emergency`` checks everything its later steps will check before ``stop_app`` runs (and its
dry run reports exactly those refusals); ``plan`` and ``rollback`` refuse a rollback that fails
on the schema-only copy; every non-zero exit says why on stderr.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import MATRIX, db_state, matrix_url, run, write

BASE = {
    "migrations/001_users.up.sql": """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
        INSERT INTO users VALUES (1, 'a@example.com');
    """,
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/002_posts.up.sql": """
        CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id));
        INSERT INTO posts VALUES (10, 1);
    """,
    "migrations/002_posts.down.sql": "-- backout:risk HIGH\nDROP TABLE posts;\n",
}

UNDERSTATED = {"migrations/002_posts.down.sql": "-- backout:risk LOW\nDROP TABLE posts;\n"}
# Runs on no copy of the database: the table it drops does not exist.
BROKEN = {"migrations/002_posts.down.sql": "-- backout:risk HIGH\nDROP TABLE postz;\n"}


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


def project(tmp_path: Path, log: Path, files: dict[str, str], toml: str = "") -> Path:
    hooks = (
        f'stop_app = "echo stop_app >> {log}"\n'
        f'deploy_previous = "echo deploy_previous >> {log}"\n'
        f'before_rollback = "echo before_rollback >> {log}"\n'
    )
    return write(
        tmp_path / "p",
        {**BASE, **files, "backout.toml": f'layout = "plain"\n{toml}[hooks]\n{hooks}'},
    )


def applied(tmp_path: Path, url: str, files: dict[str, str], toml: str = "") -> Path:
    """The project with both migrations applied (scripts swapped in after ``up``)."""
    log = tmp_path / "hooks.log"
    root = project(tmp_path, log, {}, toml)
    assert run(["up"], project=root, url=url).exit_code == 0
    write(root, files)
    return root


CASES = {
    "understated": (UNDERSTATED, "", 1, "declares risk LOW but backout computes HIGH"),
    "broken": (BROKEN, "", 1, "fails on a schema-only copy"),
    "backup folder": ({}, 'backup_dir = "not-a-folder/backups"\n', 2, "is not writable"),
}


@pytest.mark.parametrize("case", CASES)
def test_emergency_refuses_before_stop_app(tmp_path: Path, url: str, case: str) -> None:
    files, toml, code, reason = CASES[case]
    root = applied(tmp_path, url, files, toml)
    (root / "not-a-folder").write_text("a file, so no folder can be made under it")
    before = db_state(url)
    log = tmp_path / "hooks.log"

    dry = run(["emergency", "--to", "001", "--dry-run"], project=root, url=url)
    assert dry.exit_code == code, dry.output + dry.stderr
    assert reason in dry.output and reason in dry.stderr
    assert "The procedure can run" not in dry.output

    real = run(["emergency", "--to", "001", "--yes"], project=root, url=url)
    assert real.exit_code == code, real.output + real.stderr
    assert reason in real.stderr
    assert not log.exists(), "stop_app ran although the rollback was going to be refused"
    assert db_state(url) == before
    assert not list((root / ".backout" / "backups").glob("*")) if case != "backup folder" else True


def test_emergency_dry_run_lists_every_refusal(tmp_path: Path, sqlite_url: str) -> None:
    root = applied(tmp_path, sqlite_url, UNDERSTATED, 'backup_dir = "not-a-folder/backups"\n')
    (root / "not-a-folder").write_text("x")
    result = run(["emergency", "--to", "001", "--dry-run"], project=root, url=sqlite_url)
    assert result.exit_code == 1, result.output + result.stderr
    assert "declares risk LOW" in result.output and "is not writable" in result.output


def test_emergency_accepting_data_loss_goes_ahead(tmp_path: Path, sqlite_url: str) -> None:
    root = applied(tmp_path, sqlite_url, UNDERSTATED)
    args = ["emergency", "--to", "001", "--yes", "--i-accept-data-loss"]
    result = run(args, project=root, url=sqlite_url)
    assert result.exit_code == 0, result.output + result.stderr
    assert "posts" not in {name.rsplit(".", 1)[-1] for name in db_state(sqlite_url).data}


def test_plan_refuses_a_rollback_that_fails_on_the_copy(tmp_path: Path, url: str) -> None:
    root = applied(tmp_path, url, BROKEN)
    before = db_state(url)
    result = run(["plan"], project=root, url=url)
    assert result.exit_code == 1, result.output + result.stderr
    assert result.stderr.startswith("error: ")
    assert "fails on a schema-only copy" in result.stderr
    assert db_state(url) == before


def test_rollback_refuses_before_the_backup(tmp_path: Path, url: str) -> None:
    root = applied(tmp_path, url, BROKEN)
    before = db_state(url)
    result = run(["rollback", "--yes"], project=root, url=url)
    assert result.exit_code == 1, result.output + result.stderr
    assert "fails on a schema-only copy" in result.stderr
    assert "--ignore-simulation-failure" in result.stderr
    assert not (root / ".backout" / "backups").exists() or not list(
        (root / ".backout" / "backups").glob("*.*")
    )
    assert not (tmp_path / "hooks.log").exists()
    assert db_state(url) == before


def test_rollback_override_is_explicit(tmp_path: Path, sqlite_url: str) -> None:
    root = applied(tmp_path, sqlite_url, BROKEN)
    args = ["rollback", "--yes", "--ignore-simulation-failure"]
    result = run(args, project=root, url=sqlite_url)
    # Overridden knowingly: the backup is taken, then the database itself refuses (undone).
    assert result.exit_code == 4, result.output + result.stderr
    assert "postz" in result.stderr
    assert "posts" in {name.rsplit(".", 1)[-1] for name in db_state(sqlite_url).data}


def test_plan_says_why_it_exits_1(tmp_path: Path, sqlite_url: str) -> None:
    root = applied(tmp_path, sqlite_url, UNDERSTATED)
    result = run(["plan"], project=root, url=sqlite_url, env={"COLUMNS": "80"})
    assert result.exit_code == 1
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert "declares risk LOW but backout computes HIGH" in line


def test_emergency_with_the_lock_held_stops_before_stop_app(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    root = applied(tmp_path, pg_url, {})
    before = db_state(pg_url)
    key = int.from_bytes(b"backout", "big")
    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        dry = run(["emergency", "--to", "001", "--dry-run"], project=root, url=pg_url)
        assert dry.exit_code == 3, dry.output
        assert "run lock" in dry.stderr and "held by pid" in dry.stderr
        real = run(["emergency", "--to", "001", "--yes"], project=root, url=pg_url)
        assert real.exit_code == 3, real.output
    assert not (tmp_path / "hooks.log").exists()
    assert db_state(pg_url) == before


def test_emergency_with_a_missing_hook_program_stops_first(tmp_path: Path, sqlite_url: str) -> None:
    root = applied(tmp_path, sqlite_url, {})
    log = tmp_path / "hooks.log"
    write(
        root,
        {
            "backout.toml": 'layout = "plain"\n[hooks]\n'
            f'stop_app = "echo stop_app >> {log}"\n'
            'deploy_previous = "deploy-previous-typo --now"\n'
        },
    )
    before = db_state(sqlite_url)
    for args in (["--dry-run"], ["--yes"]):
        result = run(["emergency", "--to", "001", *args], project=root, url=sqlite_url)
        assert result.exit_code == 2, result.output
        assert "hook deploy_previous: deploy-previous-typo not found" in result.stderr
    assert not log.exists()
    assert db_state(sqlite_url) == before
