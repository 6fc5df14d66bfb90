"""`backout emergency`: the whole procedure, its stops, and the incident report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import MATRIX, db_state, matrix_url, run, write

PROJECT = {
    "migrations/001_users.up.sql": """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
        INSERT INTO users VALUES (1, 'a@example.com');
    """,
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/002_posts.up.sql": """
        CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id));
        INSERT INTO posts VALUES (10, 1);
    """,
    "migrations/002_posts.down.sql": (
        "-- backout:risk HIGH\n-- backout:manual Tell the blog team\nDROP TABLE posts;\n"
    ),
    "migrations/003_flag.up.sql": "ALTER TABLE users ADD COLUMN flag INTEGER;\n",
}


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


def project_with_hooks(tmp_path: Path, log: Path, **overrides: str) -> Path:
    hooks = {
        "stop_app": f'echo stop_app >> "{log}"',
        "deploy_previous": f'echo deploy_previous >> "{log}"',
        "smoke": f'echo "smoke $DATABASE_URL" >> "{log}"',
        **overrides,
    }
    body = "\n".join(f'{k} = "{v.replace(chr(34), chr(92) + chr(34))}"' for k, v in hooks.items())
    return write(
        tmp_path / "p",
        {**PROJECT, "backout.toml": f'layout = "plain"\n[hooks]\ntimeout = "2s"\n{body}\n'},
    )


def report_of(project: Path) -> str:
    (report,) = (project / "incidents").glob("*.md")
    return report.read_text()


def test_the_whole_procedure(tmp_path: Path, url: str) -> None:
    log = tmp_path / "hooks.log"
    project = project_with_hooks(tmp_path, log)
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    result = run(["emergency", "--to", "001_users", "--yes"], project=project, url=url)
    assert result.exit_code == 0, result.output + result.stderr
    assert log.read_text().split("\n")[:3] == ["stop_app", "deploy_previous", f"smoke {url}"]
    status = json.loads(run(["status", "--json"], project=project, url=url).stdout)
    assert [m["state"] for m in status["migrations"]] == ["applied", "rolled_back", "pending"]
    backups = json.loads(run(["backups", "--json"], project=project, url=url).stdout)
    (backup,) = backups["backups"]
    assert backup["kind"] == "full"
    text = report_of(project)
    for heading in (
        "## Where things stand",
        "## Timeline (UTC)",
        "### Data lost",
        "## Backup",
        "## Checks",
        "## Root cause",
        "## Follow-ups",
    ):
        assert heading in text
    assert backup["sha256"] in text and backup["id"] in text
    assert "1 rows of table" in text  # posts held one row
    assert "- [ ] Tell the blog team" in text
    events = json.loads(run(["history", "--json"], project=project, url=url).stdout)["events"]
    # listed by when they began: the emergency, then the rollback it ran
    assert [e["event"] for e in events[-2:]] == ["emergency", "rollback"]
    assert events[-2]["outcome"] == "ok" and events[-2]["backup"] == backup["id"]


def test_dry_run_changes_nothing_and_runs_no_hook(tmp_path: Path, url: str) -> None:
    log = tmp_path / "hooks.log"
    project = project_with_hooks(tmp_path, log)
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    before = db_state(url)
    result = run(["emergency", "--to", "001", "--dry-run"], project=project, url=url)
    assert result.exit_code == 0, result.output + result.stderr
    assert "DROP TABLE posts;" in result.output
    assert not log.exists()
    assert db_state(url) == before
    (report,) = (project / "incidents").glob("*_dry-run.md")
    assert "dry run (nothing was changed)" in report.read_text()


def test_no_rollback_script_stops_before_anything(tmp_path: Path, url: str) -> None:
    log = tmp_path / "hooks.log"
    project = project_with_hooks(tmp_path, log)
    assert run(["up"], project=project, url=url).exit_code == 0
    before = db_state(url)
    result = run(["emergency", "--to", "002", "--yes"], project=project, url=url)
    assert result.exit_code == 2
    assert "no rollback script for 1 migration(s) in range: 003_flag" in result.output
    assert not log.exists()
    assert db_state(url) == before
    assert "Nothing was changed: the rollback cannot be planned." in report_of(project)


def test_failing_deploy_says_the_database_is_rolled_back(tmp_path: Path, url: str) -> None:
    log = tmp_path / "hooks.log"
    project = project_with_hooks(tmp_path, log, deploy_previous="exit 7")
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    result = run(["emergency", "--to", "001", "--yes"], project=project, url=url)
    assert result.exit_code == 1
    assert "The database IS rolled back to 001_users" in result.output
    assert "smoke" not in log.read_text()  # stopped at the first failure
    text = report_of(project)
    assert "FAILED at deploy_previous" in text and "deploy the previous version by hand" in text


def test_failing_after_rollback_hook_goes_on_and_exits_1(tmp_path: Path, url: str) -> None:
    log = tmp_path / "hooks.log"
    project = project_with_hooks(tmp_path, log, after_rollback="exit 5")
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    result = run(["emergency", "--to", "001", "--yes"], project=project, url=url)
    assert result.exit_code == 1, result.output + result.stderr
    assert "hook after_rollback exited 5" in result.output
    # the rollback stands and the procedure went on: the previous version was deployed
    tables = {name.rsplit(".", 1)[-1] for name in db_state(url).data}
    assert "users" in tables and "posts" not in tables
    assert log.read_text().splitlines()[:2] == ["stop_app", "deploy_previous"]
    assert "hook after_rollback exited 5" in report_of(project)


def test_hanging_hook_times_out_and_nothing_changes(tmp_path: Path, url: str) -> None:
    log = tmp_path / "hooks.log"
    project = project_with_hooks(tmp_path, log, stop_app="sleep 30")
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    before = db_state(url)
    result = run(["emergency", "--to", "001", "--yes"], project=project, url=url)
    assert result.exit_code == 1
    assert "timed out after 2s" in result.output
    assert db_state(url) == before


def test_without_terminal_and_yes_it_refuses(tmp_path: Path, url: str) -> None:
    log = tmp_path / "hooks.log"
    project = project_with_hooks(tmp_path, log)
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    before = db_state(url)
    result = run(["emergency", "--to", "001"], project=project, url=url)
    assert result.exit_code == 1
    assert "pass --yes" in result.output
    assert db_state(url) == before and not log.exists()


def test_without_deploy_previous_it_does_not_say_it_deployed(
    tmp_path: Path, sqlite_url: str
) -> None:
    """stop_app ran, no deploy_previous hook: the application is still stopped, and the
    summary must say so, not "the previous version is deployed and the checks passed"."""
    log = tmp_path / "hooks.log"
    project = write(
        tmp_path / "p",
        {
            **PROJECT,
            "backout.toml": f'layout = "plain"\n[hooks]\nstop_app = "echo stop >> {log}"\n',
        },
    )
    assert run(["up", "--to", "002"], project=project, url=sqlite_url).exit_code == 0
    result = run(["emergency", "--to", "001_users", "--yes"], project=project, url=sqlite_url)
    assert result.exit_code == 0, result.output + result.stderr
    assert log.read_text() == "stop\n"
    stands = " ".join(result.output.split("Where things stand:")[1].split())
    assert "previous version is deployed" not in stands
    assert "checks passed" not in stands or "smoke" in stands
    assert "no deploy_previous hook" in stands and "still stopped" in stands
    assert "previous version is deployed" not in report_of(project)
    status = json.loads(run(["status", "--json"], project=project, url=sqlite_url).stdout)
    assert [m["state"] for m in status["migrations"]] == ["applied", "rolled_back", "pending"]
