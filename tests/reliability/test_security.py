"""Security properties.

- Backup files, their schema snapshots, the catalog and its lock are created 0600 in a 0700
  folder, even under ``umask 000`` (created that way, not tightened afterwards); so is SQLite's
  run-lock file.
- Hostile identifiers (quotes, semicolons, ``--``, ``%s``, ``:name``, ``$1``, non-ASCII) survive
  up, backup, rollback and restore as names: the schema fingerprint after the restore is the one
  before, and the other tables are untouched. Hostile parameter values given on the command line
  are stored as data.
- Destructive commands (rollback, partial rollback, restore, emergency) refuse to run without a
  terminal and without ``--yes``, even when "y" is piped in: exit 1, database unchanged.
- The emergency runbook's incident report and hook output never show the password (the hook
  itself receives it, as documented); the secrets scan (test_zz_secrets.py) greps them too.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import db_state
from tests.reliability.common import (
    PASSWORD,
    Artifacts,
    base_env,
    cli,
    observe,
    record_result,
    spawn,
)

HOSTILE_TABLE = 'or"ders; DROP TABLE items; --'
HOSTILE_COLUMN = "n:ote %s $1 ' naïve ☃"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _files(dialect: str) -> dict[str, str]:
    table, column = _quote(HOSTILE_TABLE), _quote(HOSTILE_COLUMN)
    if dialect == "postgresql":
        return {
            "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
            "prisma/migrations/20240101000000_base/migration.sql": """
                CREATE TABLE items (id integer PRIMARY KEY, note text);
                INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 300) g;
            """,
            "prisma/migrations/20240201000000_hostile/migration.sql": f"""
                CREATE TYPE {_quote("mo'od;--")} AS ENUM ('a;b', 'c''d');
                CREATE TABLE {table} (
                    id integer PRIMARY KEY,
                    {column} text,
                    m {_quote("mo'od;--")} NOT NULL DEFAULT 'a;b'
                );
                INSERT INTO {table} (id, {column}) SELECT g, 'v ' || g
                    FROM generate_series(1, 50) g;
                CREATE INDEX {_quote("idx; DROP TABLE items")} ON {table} ({column});
                COMMENT ON TABLE {table} IS 'it''s -- not a comment; really';
            """,
            "prisma/rollback/20240201000000_hostile_rollback.sql": f"""
                -- backout:risk HIGH
                DROP TABLE {table};
                DROP TYPE {_quote("mo'od;--")};
            """,
            "prisma/rollback/20240201000000_hostile_rollback.setnote.sql": """
                -- backout:risk HIGH
                -- backout:param v text
                UPDATE items SET note = :v WHERE id = 1;
            """,
        }
    return {
        "migrations/001_base.up.sql": """
            CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT);
            WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 300)
            INSERT INTO items SELECT x, 'item ' || x FROM g;
        """,
        "migrations/002_hostile.up.sql": f"""
            CREATE TABLE {table} (id INTEGER PRIMARY KEY, {column} TEXT);
            WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 50)
            INSERT INTO {table} (id, {column}) SELECT x, 'v ' || x FROM g;
            CREATE INDEX {_quote("idx; DROP TABLE items")} ON {table} ({column});
            CREATE VIEW {_quote("v'iew")} AS SELECT {column} FROM {table};
        """,
        "migrations/002_hostile.down.sql": f"""
            -- backout:risk HIGH
            DROP VIEW {_quote("v'iew")};
            DROP TABLE {table};
        """,
        "migrations/002_hostile.down.setnote.sql": """
            -- backout:risk HIGH
            -- backout:param v text
            UPDATE items SET note = :v WHERE id = 1;
        """,
    }


def _project(root: Path, dialect: str, hooks: str = "") -> Path:
    for rel, text in _files(dialect).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    if hooks:
        (root / "backout.toml").write_text(hooks, encoding="utf-8")
    return root


def _ids(dialect: str) -> tuple[str, str]:
    return ("20240101000000", "20240201000000") if dialect == "postgresql" else ("001", "002")


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(dialect, URL): a SQLite file, or a PostgreSQL database whose URL has the password."""
    if request.param == "sqlite":
        return "sqlite", f"sqlite:///{tmp_path}/app.db"
    request.applymarker(pytest.mark.postgres)
    make: Callable[[], str] = request.getfixturevalue("pg_database")
    return "postgresql", make()


def _modes(folder: Path) -> dict[str, str]:
    return {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in folder.iterdir()}


def test_backup_files_are_created_0600_under_umask_000(
    target: tuple[str, str], tmp_path: Path, artifacts: Artifacts
) -> None:
    """Folder 0700, every file 0600, with umask 000 in the backout process."""
    dialect, url = target
    project = _project(tmp_path / "p", dialect)
    base, _ = _ids(dialect)
    for args in (["up"], ["backup", "--full"], ["rollback", "--to", base, "--yes"]):
        done = spawn(
            args, project=project, url=url, artifacts=artifacts, label="umask", umask=0
        ).wait(timeout=120)
        assert done.exit_code == 0, done.describe()
    folder = project / ".backout" / "backups"
    assert oct(stat.S_IMODE(folder.stat().st_mode)) == "0o700"
    modes = _modes(folder)
    assert len(modes) >= 5, modes
    assert set(modes.values()) == {"0o600"}, modes
    if dialect == "sqlite":
        lock = tmp_path / "app.db.backout-lock"
        assert oct(stat.S_IMODE(lock.stat().st_mode)) == "0o600"
    record_result("security", {f"file_modes_{dialect}": modes})


def test_hostile_identifiers_round_trip(
    target: tuple[str, str], tmp_path: Path, artifacts: Artifacts
) -> None:
    """up, backup, rollback, restore with hostile names: the names are data throughout."""
    dialect, url = target
    prisma = dialect == "postgresql"
    project = _project(tmp_path / "p", dialect)
    base, change = _ids(dialect)

    def go(args: list[str], label: str) -> Any:
        outcome = cli(args, project=project, url=url, artifacts=artifacts, label=label)
        assert outcome.exit_code == 0, outcome.describe()
        return outcome

    go(["up"], "hostile-up")
    applied = observe(url, prisma=prisma)
    assert any(HOSTILE_TABLE in name for name, _, _ in applied.data), applied.data
    go(["backup", "--full"], "hostile-backup")
    listing = json.loads(go(["backups", "--json"], "hostile-backups").stdout)
    assert any(HOSTILE_TABLE in t for t in listing["backups"][-1]["tables"])
    go(["rollback", "--to", base, "--yes"], "hostile-rollback")
    rolled = observe(url, prisma=prisma)
    assert not any(HOSTILE_TABLE in name for name, _, _ in rolled.data)
    assert rolled.rows()["public.items" if prisma else "items"] == 300
    full_id = listing["backups"][-1]["id"]
    go(["restore", full_id, "--yes"], "hostile-restore")
    restored = observe(url, prisma=prisma)
    assert restored.shape == applied.shape
    # A hostile parameter value is stored as it is.
    value = "x'); DROP TABLE items; -- :v %s $1 ☃"
    go(
        ["rollback", change, "--partial", "setnote", "--param", f"v={value}", "--yes"],
        "hostile-param",
    )
    rows = _select(url, "SELECT note FROM items WHERE id = 1")
    assert rows == [(value,)]
    assert _select(url, "SELECT count(*) FROM items") == [(300,)]
    record_result("security", {f"hostile_round_trip_{dialect}": "ok"})


def _select(url: str, sql: str) -> list[tuple[Any, ...]]:
    from tests.helpers import sql as run_sql

    return run_sql(url, sql)


DESTRUCTIVE = {
    "rollback": lambda base, change: ["rollback", "--to", base],
    "partial rollback": lambda base, change: [
        "rollback",
        change,
        "--partial",
        "setnote",
        "--param",
        "v=gone",
    ],
    "restore": lambda base, change: ["restore", "latest"],
    "emergency": lambda base, change: ["emergency", "--to", base],
}


@pytest.mark.parametrize("command", list(DESTRUCTIVE))
def test_destructive_commands_refuse_without_terminal_and_yes(
    target: tuple[str, str], tmp_path: Path, artifacts: Artifacts, command: str
) -> None:
    """No terminal, no --yes, "y" piped in: exit 1, nothing changes, not even the backups."""
    dialect, url = target
    project = _project(tmp_path / "p", dialect)
    base, change = _ids(dialect)
    assert cli(["up"], project=project, url=url, artifacts=artifacts, label="d-up").exit_code == 0
    assert (
        cli(
            ["backup", "--full"], project=project, url=url, artifacts=artifacts, label="d-bk"
        ).exit_code
        == 0
    )
    before = db_state(url)
    backups = sorted((project / ".backout" / "backups").iterdir())
    args = DESTRUCTIVE[command](base, change)
    proc = subprocess.run(
        [sys.executable, "-m", "backout", *args, "-C", str(project), "--url", url],
        input="y\nyes\n",
        capture_output=True,
        text=True,
        env=base_env(),
        timeout=120,
        check=False,
    )
    artifacts.save(f"refuse-{command}.out", proc.stdout)
    artifacts.save(f"refuse-{command}.err", proc.stderr)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    after = db_state(url)
    assert (after.schema, after.data) == (before.schema, before.data)
    assert sorted((project / ".backout" / "backups").iterdir()) == backups
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--yes" in errors[0], proc.stderr
    # Nothing changed, history included: a refused emergency records no event.
    assert after == before
    if command == "emergency":
        # The runbook still writes its incident report, and says why in "Where things stand".
        assert any("--yes" in line for line in proc.stdout.splitlines()), proc.stdout
        assert len(list((project / "incidents").glob("*.md"))) == 1
    else:
        assert not (project / "incidents").exists()
    shown = errors[0]
    record_result("security", {f"refuses_{command}_{dialect}": shown[:160]})


@pytest.mark.postgres
def test_emergency_report_and_hooks_never_show_the_password(
    tmp_path: Path, pg_database: Callable[[], str], artifacts: Artifacts
) -> None:
    """The runbook end to end with hooks that print DATABASE_URL: output and incident masked."""
    url = pg_database()
    hooks = textwrap.dedent(
        """\
        [hooks]
        stop_app = "echo stopping app for $DATABASE_URL"
        deploy_previous = "echo deploying against $DATABASE_URL"
        smoke = "echo smoke ok $DATABASE_URL"
        """
    )
    project = _project(tmp_path / "p", "postgresql", hooks=hooks)
    assert cli(["up"], project=project, url=url, artifacts=artifacts, label="em-up").exit_code == 0
    outcome = cli(
        ["emergency", "--to", "20240101000000", "--yes"],
        project=project,
        url=url,
        artifacts=artifacts,
        label="emergency",
    )
    reports = sorted((project / "incidents").glob("*.md"))
    text = outcome.stdout + outcome.stderr + "".join(p.read_text() for p in reports)
    assert reports, outcome.describe()
    assert PASSWORD not in text
    assert outcome.exit_code == 0, outcome.describe()
    record_result(
        "security",
        {"emergency_incident_reports": [p.name for p in reports], "emergency_exit": 0},
    )
