"""`backout lint` through the CLI and the library: the examples, exit codes, `--json`, PATHS,
suppression, the database check (edited migrations) and squawk.

The examples' findings are golden files under ``tests/golden/lint``; regenerate with::

    BACKOUT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/integration/test_lint.py

and review every changed line: each is a finding lint now reports (or stopped reporting).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import backout.cli.lint  # noqa: F401 - registers the command until cli/__init__ imports it
from backout.lint import linter as lint_module
from backout.lint.linter import LintReport, find_squawk, lint
from backout.project.config import load_config
from tests.helpers import EXAMPLES, REPO, copy_example, run, write

GOLDEN = REPO / "tests" / "golden" / "lint"
UPDATE_GOLDEN = os.environ.get("BACKOUT_UPDATE_GOLDEN") == "1"

CLEAN = {
    "migrations/001_users.up.sql": """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
        CREATE INDEX users_email ON users (email);
    """,
    "migrations/001_users.down.sql": """
        -- backout:risk HIGH
        -- backout:data-loss every user
        DROP TABLE users;
    """,
    "migrations/002_posts.up.sql": """
        CREATE TABLE posts (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users (id),
            title TEXT
        );
    """,
    "migrations/002_posts.down.sql": """
        -- backout:risk HIGH
        DROP TABLE posts;
    """,
}


def no_squawk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint_module, "find_squawk", lambda: None)


def report_lines(report: LintReport) -> list[str]:
    return [
        f"{f.severity.value} {f.rule} {f.location or '(project)'}: {f.message}"
        for f in report.findings
    ]


# --- the examples ------------------------------------------------------------------------------


@pytest.mark.parametrize("example", ["giftregistry", "vouchers", "vouchers-sqlite"])
def test_examples_lint_with_exactly_the_expected_findings(example: str) -> None:
    config = load_config(EXAMPLES / example, environ={})
    report = lint(config, check_database=False, squawk=False)
    text = "".join(line + "\n" for line in report_lines(report))
    golden = GOLDEN / f"{example}.txt"
    if UPDATE_GOLDEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_giftregistry_init_has_no_rollback_by_design() -> None:
    config = load_config(EXAMPLES / "giftregistry", environ={})
    report = lint(config, check_database=False, squawk=False)
    missing = [f for f in report.findings if f.rule == "BO101"]
    assert [f.migration for f in missing] == ["20250101000000_init"]
    accepted = lint(
        config, check_database=False, squawk=False, ignore=["BO101:20250101000000_init"]
    )
    assert "BO101" not in {f.rule for f in accepted.findings}


def test_examples_have_no_sync_or_order_problems() -> None:
    """The hand-written example rollbacks undo their migrations completely, in FK order."""
    for example in ("giftregistry", "vouchers", "vouchers-sqlite"):
        report = lint(load_config(EXAMPLES / example, environ={}), squawk=False)
        rules = {f.rule for f in report.findings}
        assert not rules & {"BO201", "BO202", "BO203", "BO204", "BO301", "BO302"}, example
        assert not rules & {"BO303", "BO304", "BO305", "BO402", "BO501"}, example


# --- the command -------------------------------------------------------------------------------


def test_clean_project_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_squawk(monkeypatch)
    project = write(tmp_path, CLEAN)
    result = run(["lint"], project=project)
    assert result.exit_code == 0, result.output
    assert "No problems in 2 migration(s), 4 script(s)" in result.output
    assert "database: not configured" in result.output
    assert "squawk: not applicable (sqlite)" in result.output


def test_error_exits_1_and_is_shown_as_a_table(tmp_path: Path) -> None:
    project = write(
        tmp_path, {**CLEAN, "migrations/003_tags.up.sql": "CREATE TABLE tags (id int);"}
    )
    result = run(["lint"], project=project)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["location", "severity", "rule", "message"]
    assert lines[1].startswith("migrations/003_tags.up.sql:1")
    assert "error" in lines[1] and "BO101 missing-rollback" in lines[1]
    assert "1 error(s), 0 warning(s) in 3 migration(s), 5 script(s)" in result.output


def test_warnings_only_exit_0(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["migrations/002_posts.up.sql"] += "UPDATE users SET email = lower(email);\n"
    result = run(["lint"], project=write(tmp_path, files))
    assert result.exit_code == 0, result.output
    assert "BO401 dml-without-where" in result.output
    assert "0 error(s), 1 warning(s)" in result.output


def test_json_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_squawk(monkeypatch)
    files = {**CLEAN, "migrations/003_tags.up.sql": "CREATE TABLE tags (id int);"}
    result = run(["lint", "--json"], project=write(tmp_path, files))
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["format"] == 1
    assert set(doc) == {"format", "findings", "summary"}
    (finding,) = doc["findings"]
    assert finding == {
        "rule": "BO101",
        "name": "missing-rollback",
        "severity": "error",
        "file": "migrations/003_tags.up.sql",
        "line": 1,
        "message": finding["message"],
        "migration": "003_tags",
        "docs": "docs/lint/BO101.md",
    }
    assert "003_tags" in finding["message"]
    assert doc["summary"] == {
        "errors": 1,
        "warnings": 0,
        "suppressed": 0,
        "migrations": 3,
        "scripts": 5,
        "dialect": "sqlite",
        "database": "not configured",
        "squawk": "not applicable (sqlite)",
        "own_findings": 1,
        "squawk_findings": 0,
        "squawk_by_rule": {},
    }


def test_json_says_squawk_is_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_squawk(monkeypatch)
    project = write(tmp_path, CLEAN)
    result = run(["lint", "--json"], project=project, url="postgresql://u@127.0.0.1:1/db")
    doc = json.loads(result.stdout)
    assert doc["summary"]["squawk"] == "not installed"
    assert doc["summary"]["dialect"] == "postgresql"


def test_project_that_does_not_load_exits_2(tmp_path: Path) -> None:
    result = run(["lint"], project=tmp_path)
    assert result.exit_code == 2
    assert "no migrations folder" in result.output


def test_invalid_directive_exits_2(tmp_path: Path) -> None:
    files = {**CLEAN, "migrations/002_posts.down.sql": "-- backout:rsik HIGH\nDROP TABLE posts;"}
    result = run(["lint"], project=write(tmp_path, files))
    assert result.exit_code == 2
    assert "002_posts.down.sql:1" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ignore", "BO999"], "unknown rule"),
        (["--offline", "--check-database"], "contradict"),
        (["no/such/file.sql"], "no such file"),
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(["lint", *args], project=write(tmp_path, CLEAN))
    assert result.exit_code == 2, result.output
    assert message in result.output


# --- PATHS ---------------------------------------------------------------------------------------

BROKEN = {
    **CLEAN,
    "migrations/001_users.down.sql": "DROP TABLE users;",  # BO103
    "migrations/002_posts.down.sql": "-- backout:risk LOW\nDROP TABLE posts;",  # BO104
    "migrations/003_tags.up.sql": "CREATE TABLE tags (id int);",  # BO101
    "seeds/dev.sql": "DELETE FROM users;",
}


def test_paths_restrict_findings_to_their_migrations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write(tmp_path, BROKEN)
    monkeypatch.chdir(project)
    everything = run(["lint", "--json"], project=project)
    assert {f["rule"] for f in json.loads(everything.stdout)["findings"]} == {
        "BO101",
        "BO103",
        "BO104",
    }
    # a changed rollback selects its migration (relative to the current folder, as pre-commit)
    result = run(["lint", "--json", "migrations/002_posts.down.sql"], project=project)
    doc = json.loads(result.stdout)
    assert [f["rule"] for f in doc["findings"]] == ["BO104"]
    assert doc["summary"]["migrations"] == 1
    assert result.exit_code == 1
    # a file that is no migration selects nothing
    result = run(["lint", "--json", "seeds/dev.sql"], project=project)
    doc = json.loads(result.stdout)
    assert doc["findings"] == [] and doc["summary"]["migrations"] == 0
    assert result.exit_code == 0
    # a folder selects everything under it
    result = run(["lint", "--json", "migrations"], project=project)
    assert len(json.loads(result.stdout)["findings"]) == 3


def test_paths_still_see_earlier_migrations(tmp_path: Path) -> None:
    """The foreign-key model is built from every earlier migration, selected or not."""
    files = {
        **CLEAN,
        "migrations/003_drop_users.up.sql": "DROP TABLE users;",
        "migrations/003_drop_users.down.sql": "-- backout:risk NONE\nSELECT 1;",
    }
    project = write(tmp_path, files)
    result = run(
        ["lint", "--json", str(project / "migrations/003_drop_users.up.sql")], project=project
    )
    rules = [f["rule"] for f in json.loads(result.stdout)["findings"]]
    assert "BO301" in rules


# --- suppression ---------------------------------------------------------------------------------


def test_suppressed_findings_are_counted(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["migrations/002_posts.up.sql"] += (
        "-- lint-ignore: BO401 emails are normalised once, on purpose\n"
        "UPDATE users SET email = lower(email);\n"
    )
    result = run(["lint"], project=write(tmp_path, files))
    assert result.exit_code == 0, result.output
    assert "No problems" in result.output and "1 suppressed" in result.output


def test_ignore_flag_for_one_migration(tmp_path: Path) -> None:
    files = {**CLEAN, "migrations/003_tags.up.sql": "CREATE TABLE tags (id int);"}
    project = write(tmp_path, files)
    result = run(["lint", "--ignore", "BO101:003_tags"], project=project)
    assert result.exit_code == 0, result.output
    result = run(["lint", "--ignore", "BO101:001_users"], project=project)
    assert result.exit_code == 1


# --- the database --------------------------------------------------------------------------------


def test_edited_after_apply_needs_the_database(tmp_path: Path, sqlite_url: str) -> None:
    project = write(tmp_path, CLEAN)
    assert run(["up"], project=project, url=sqlite_url).exit_code == 0
    forward = project / "migrations/001_users.up.sql"
    forward.write_text(forward.read_text() + "-- an edit\n", encoding="utf-8")

    result = run(["lint", "--json"], project=project, url=sqlite_url)
    doc = json.loads(result.stdout)
    assert result.exit_code == 1
    assert doc["summary"]["database"] == "checked"
    (finding,) = doc["findings"]
    assert finding["rule"] == "BO502"
    assert finding["file"] == "migrations/001_users.up.sql"
    assert "edited after it was applied" in finding["message"]

    offline = run(["lint", "--json", "--offline"], project=project, url=sqlite_url)
    assert offline.exit_code == 0
    assert json.loads(offline.stdout)["summary"]["database"] == "offline"
    # without an explicit URL the (default) database is not read
    assert (
        json.loads(run(["lint", "--json"], project=project).stdout)["summary"]["database"]
        == "not configured"
    )


def test_missing_sqlite_file_is_not_found(tmp_path: Path, sqlite_url: str) -> None:
    project = write(tmp_path, CLEAN)
    result = run(["lint", "--json"], project=project, url=sqlite_url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["database"] == "not found"
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_unreachable_database_is_a_warning_with_the_password_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_squawk(monkeypatch)
    project = write(tmp_path, CLEAN)
    url = "postgresql://app:s3cret-pw@127.0.0.1:1/app"
    result = run(["lint", "--json"], project=project, url=url)
    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output
    doc = json.loads(result.stdout)
    assert doc["summary"]["database"] == "unavailable"
    (finding,) = doc["findings"]
    assert finding["rule"] == "BO503" and finding["severity"] == "warning"
    assert finding["file"] is None and finding["line"] is None
    assert finding["message"].startswith("could not check applied state: ")


@pytest.mark.postgres
def test_edited_after_apply_on_postgres(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_squawk(monkeypatch)
    project = copy_example("vouchers", tmp_path)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    forward = project / "prisma/migrations/20240315000000_add_voucher_system/migration.sql"
    forward.write_text(forward.read_text() + "\n-- edited\n", encoding="utf-8")
    result = run(["lint", "--json"], project=project, url=pg_url)
    doc = json.loads(result.stdout)
    assert doc["summary"]["database"] == "checked"
    edited = [f for f in doc["findings"] if f["rule"] == "BO502"]
    assert [f["migration"] for f in edited] == ["20240315000000_add_voucher_system"]


# --- squawk --------------------------------------------------------------------------------------


@pytest.fixture
def squawk() -> str:
    """The squawk binary. Optional: skipped when missing, unless CI is set (then it fails)."""
    binary = find_squawk()
    if binary is None:
        message = "squawk is not installed (pip install 'backout[squawk]')"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI is set, so squawk tests must run", pytrace=False)
        pytest.skip(message)
    return binary


PG = {
    "migrations/001_init.up.sql": "CREATE TABLE t (id bigint PRIMARY KEY, name text);\n",
    "migrations/001_init.down.sql": "-- backout:risk HIGH\nDROP TABLE t;\n",
    "migrations/002_index.up.sql": ("-- a comment first\n\nCREATE INDEX t_name_idx ON t (name);\n"),
    "migrations/002_index.down.sql": "-- backout:risk LOW\nDROP INDEX t_name_idx;\n",
}
PG_URL = "postgresql://u@127.0.0.1:1/db"


def test_squawk_findings_are_mapped_to_file_and_line(tmp_path: Path, squawk: str) -> None:
    config = load_config(write(tmp_path, PG), environ={}, url=PG_URL)
    report = lint(config, check_database=False)
    assert report.squawk == "2.70.0"
    by_rule = {f.rule: f for f in report.findings}
    index = by_rule["squawk:require-concurrent-index-creation"]
    assert (index.file, index.line) == ("migrations/002_index.up.sql", 3)
    assert index.severity.value == "warning"
    assert index.migration == "002_index"
    assert index.docs == "https://squawkhq.com/docs/require-concurrent-index-creation"
    assert "concurrently" in index.message.lower()
    # backout sets lock and statement timeouts itself; drops are a rollback's purpose
    assert not any(r in by_rule for r in ("squawk:require-lock-timeout", "squawk:ban-drop-table"))
    # in backout's transaction: no "make it re-runnable" advice
    assert "squawk:prefer-robust-stmts" not in by_rule


def test_squawk_drop_rules_apply_to_forward_migrations(tmp_path: Path, squawk: str) -> None:
    files = {
        **PG,
        "migrations/003_drop.up.sql": "DROP TABLE t;\n",
        "migrations/003_drop.down.sql": (
            "-- backout:risk NONE\n-- backout:data-loss t\n"
            "CREATE TABLE t (id bigint PRIMARY KEY, name text);\n"
        ),
    }
    config = load_config(write(tmp_path, files), environ={}, url=PG_URL)
    report = lint(config, check_database=False)
    drops = [f for f in report.findings if f.rule == "squawk:ban-drop-table"]
    assert [(f.file, f.line) for f in drops] == [("migrations/003_drop.up.sql", 1)]


def test_squawk_findings_can_be_suppressed(tmp_path: Path, squawk: str) -> None:
    files = dict(PG)
    files["migrations/002_index.up.sql"] = (
        "SELECT 1;\n-- lint-ignore: squawk:require-concurrent-index-creation small table\n"
        "CREATE INDEX t_name_idx ON t (name);\n"
    )
    config = load_config(write(tmp_path, files), environ={}, url=PG_URL)
    report = lint(config, check_database=False)
    assert not any(f.rule == "squawk:require-concurrent-index-creation" for f in report.findings)
    assert report.suppressed >= 1
    ignored = lint(
        load_config(write(tmp_path / "b", PG), environ={}, url=PG_URL),
        check_database=False,
        ignore=["squawk:require-concurrent-index-creation"],
    )
    assert not any(f.rule == "squawk:require-concurrent-index-creation" for f in ignored.findings)


def test_squawk_through_the_cli(tmp_path: Path, squawk: str) -> None:
    result = run(["lint", "--json"], project=write(tmp_path, PG), url=PG_URL)
    doc = json.loads(result.stdout)
    assert doc["summary"]["squawk"] == "2.70.0"
    assert any(f["rule"].startswith("squawk:") for f in doc["findings"])
    skipped = run(["lint", "--json", "--no-squawk"], project=tmp_path, url=PG_URL)
    assert json.loads(skipped.stdout)["summary"]["squawk"] == "disabled"


def test_squawk_that_fails_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "squawk"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'squawk 9.9.9'\necho 'boom: bad config' >&2\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(lint_module, "find_squawk", lambda: str(fake))
    config = load_config(write(tmp_path / "p", PG), environ={}, url=PG_URL)
    report = lint(config, check_database=False)
    failed = [f for f in report.findings if f.rule == "BO504"]
    assert len(failed) == 1 and "squawk printed no JSON" in failed[0].message
    assert report.ok and report.squawk == "9.9.9 (failed)"


# --- pre-commit ----------------------------------------------------------------------------------


def test_pre_commit_hook_definition() -> None:
    text = (REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert "- id: backout-lint" in text
    for line in (
        "entry: backout lint",
        "language: python",
        r"files: \.sql$",
        "pass_filenames: true",
    ):
        assert f"  {line}\n" in text, line


def test_relative_paths_from_the_project_folder(tmp_path: Path) -> None:
    project = write(tmp_path / "backend", BROKEN)
    result = run(["lint", "--json", "migrations/002_posts.down.sql"], project=project)
    assert result.exit_code == 1, result.output
    assert [f["rule"] for f in json.loads(result.stdout)["findings"]] == ["BO104"]


def test_squawk_findings_come_after_backouts_own_and_are_grouped(
    tmp_path: Path, squawk: str
) -> None:
    files = {**PG, "migrations/003_more.up.sql": "CREATE INDEX t_id_idx ON t (id);\n"}
    root = write(tmp_path, files)
    report = lint(load_config(root, environ={}, url=PG_URL), check_database=False)
    rules = [f.rule for f in report.findings]
    # ranked: backout's BO101 (migration 003) before squawk's notes on 002 and 003
    assert rules[0] == "BO101" and all(r.startswith("squawk:") for r in rules[1:])
    assert report.squawk_by_rule()["squawk:require-concurrent-index-creation"] == 2
    assert report.summary()["own_findings"] == 1

    grouped = run(["lint", "--offline"], project=root, url=PG_URL)
    text = " ".join(grouped.stdout.split())
    assert "squawk: 3 finding(s) in 3 script(s), by rule" in text
    assert "squawk:require-concurrent-index-creation warning 2" in text
    assert "1 from backout's rules, 3 from squawk's" in text
    # one line per squawk rule, not one per finding: the message itself is not repeated
    index_message = next(f.message for f in report.from_squawk)
    assert " ".join(index_message.split())[:40] not in text
    detailed = run(["lint", "--offline", "--squawk-details"], project=root, url=PG_URL)
    assert " ".join(index_message.split())[:40] in " ".join(detailed.stdout.split())


def test_squawk_transaction_nesting_is_left_to_backout(tmp_path: Path, squawk: str) -> None:
    files = {
        **PG,
        "migrations/003_enum.up.sql": (
            "CREATE TYPE r AS ENUM ('A');\nBEGIN;\nCREATE TYPE r_new AS ENUM ('A', 'B');\n"
            "ALTER TYPE r RENAME TO r_old;\nALTER TYPE r_new RENAME TO r;\nDROP TYPE r_old;\n"
            "COMMIT;\n"
        ),
        "migrations/003_enum.down.sql": "-- backout:risk LOW\nDROP TYPE r;\n",
    }
    report = lint(load_config(write(tmp_path, files), environ={}, url=PG_URL), check_database=False)
    assert "squawk:transaction-nesting" not in {f.rule for f in report.findings}
    assert not [f for f in report.own if f.file == "migrations/003_enum.up.sql"]
