"""Concurrency: eight ``backout rollback`` processes started at once on one database.

Exactly one runs; the seven others must exit 3 promptly (before the winner is done: they never
wait), each naming the holder (the winner's process id); the database ends rolled back once,
with one backup and one ``rollback`` event. (A loser used to wait in its planning for the
winner's table lock, B1 and B2, and SQLite's holder could be read unnamed, B7: their
reproducers are in test_regressions.py.) The same with Prisma Migrate's advisory lock held by
another session: every backout exits 3 naming it, and nothing changes.

The winner's rollback sleeps for a few seconds inside its transaction (``pg_sleep`` or a long
counting query on SQLite), so that all eight have started and reached the lock while it holds.
They run with ``--no-simulate``: the plan's rehearsal on a scratch copy would run that sleep
too, before the lock, and measure the rehearsal instead of the lock.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from backout.dialects.postgres.dialect import PRISMA_LOCK_KEY
from tests.reliability.common import (
    Artifacts,
    Outcome,
    cli,
    observe,
    pg_connect,
    record_result,
    spawn,
    sqlite_lock_free,
)

RUNS = 8

PG_FILES = {
    "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
    "prisma/migrations/20240101000000_base/migration.sql": """
        CREATE TABLE items (id integer PRIMARY KEY, qty integer NOT NULL);
        INSERT INTO items SELECT g, g FROM generate_series(1, 1000) g;
    """,
    "prisma/migrations/20240201000000_extra/migration.sql": """
        ALTER TABLE items ADD COLUMN extra text;
        CREATE TABLE extra_log (id integer PRIMARY KEY, item_id integer REFERENCES items (id));
    """,
    "prisma/rollback/20240201000000_extra_rollback.sql": """
        -- backout:risk HIGH
        DROP TABLE extra_log;
        SELECT pg_sleep({hold});
        ALTER TABLE items DROP COLUMN extra;
    """,
}

SQLITE_FILES = {
    "migrations/001_base.up.sql": """
        CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL);
        WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 1000)
        INSERT INTO items SELECT x, x FROM g;
    """,
    "migrations/002_extra.up.sql": """
        ALTER TABLE items ADD COLUMN extra TEXT;
        CREATE TABLE extra_log (id INTEGER PRIMARY KEY, item_id INTEGER REFERENCES items (id));
    """,
    "migrations/002_extra.down.sql": """
        -- backout:risk HIGH
        DROP TABLE extra_log;
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {steps})
        SELECT count(*) FROM c;
        ALTER TABLE items DROP COLUMN extra;
    """,
}


def _project(root: Path, files: dict[str, str], **values: Any) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text.format(**values)).lstrip("\n"), encoding="utf-8")
    return root


def _race(
    project: Path,
    url: str,
    base: str,
    artifacts: Artifacts,
    label: str,
    while_running: Callable[[], Any] | None = None,
) -> tuple[list[Outcome], Any]:
    """Start RUNS rollbacks at once; returns their outcomes (and what while_running saw)."""
    children = [
        spawn(
            # at the first try: this race checks the refusal itself (waiting: tests/locks)
            ["rollback", "--to", base, "--yes", "--no-simulate", "--lock-wait", "0"],
            project=project,
            url=url,
            artifacts=artifacts,
            label=f"{label}-{n}",
        )
        for n in range(RUNS)
    ]
    # One waiter per child, so that each duration ends when that child exits (waiting for them
    # one after the other would give a quick loser listed after the winner the winner's time).
    with ThreadPoolExecutor(max_workers=RUNS) as pool:
        waits = [pool.submit(child.wait, 300) for child in children]
        seen = while_running() if while_running is not None else None
        outcomes = [w.result() for w in waits]
    return outcomes, seen


def _finished_at(outcome: Outcome, started: float) -> float:
    return started + outcome.duration


def _check_race(
    outcomes: list[Outcome], before_events: int, state: Any, r_schema: str
) -> dict[str, Any]:
    winners = [o for o in outcomes if o.exit_code == 0 and "Rolled back" in o.stdout]
    # A process that started planning only after the winner had committed finds nothing to do.
    late = [o for o in outcomes if o.exit_code == 0 and "Nothing to roll back" in o.stdout]
    losers = [o for o in outcomes if o.exit_code != 0]
    assert len(winners) + len(late) + len(losers) == len(outcomes), outcomes
    assert len(winners) == 1, "\n\n".join(o.describe() for o in outcomes)
    winner = winners[0]
    assert "Rolled back 1 migration(s)" in winner.stdout, winner.describe()
    prompt = named = 0
    for loser in losers:
        assert "Traceback" not in loser.stderr, loser.describe()
        assert len(loser.error_lines) == 1, loser.describe()
        line = loser.error_lines[0]
        assert loser.exit_code == 3, loser.describe()
        # The holder is named: SQLite's lock file holds the winner's label, PostgreSQL's
        # message shows the winner's application_name (with its process id).
        assert f"pid {winner.pid}" in line, loser.describe()
        named += 1
        # Started together: a loser never waits for the winner (B1/B2), it ends first.
        assert loser.duration < winner.duration, loser.describe() + "\n" + winner.describe()
        if loser.duration < winner.duration - 1.0:
            prompt += 1
    # Whatever the losers did, they changed nothing: the rollback ran exactly once.
    assert state.schema == r_schema, "the database is not rolled back"
    new = state.events[before_events:]
    assert [e[1:3] for e in new] == [("rollback", "ok")], new
    return {
        "runs": len(outcomes),
        "ran": len(winners),
        "arrived_after_the_winner": len(late),
        "exited_3_naming_holder": named,
        "losers_done_before_winner": prompt,
        "winner_seconds": round(winner.duration, 2),
        "loser_seconds": sorted(round(o.duration, 2) for o in losers),
        "loser_error": next((o.error_lines[0][:200] for o in losers if o.exit_code == 3), ""),
    }


def _backups(project: Path) -> int:
    catalog = project / ".backout" / "backups" / "catalog.json"
    if not catalog.exists():
        return 0
    return len(json.loads(catalog.read_text())["backups"])


@pytest.mark.postgres
def test_eight_rollbacks_at_once_postgres(
    tmp_path: Path, pg_database: Callable[[], str], artifacts: Artifacts
) -> None:
    """One runs, seven exit 3 naming it; Prisma's lock is held meanwhile (migrate deploy waits)."""
    url = pg_database()
    project = _project(tmp_path / "p", PG_FILES, hold=4)
    assert (
        cli(["up"], project=project, url=url, artifacts=artifacts, label="race-pg-up").exit_code
        == 0
    )
    r_schema = ""
    applied = observe(url, prisma=True)
    # The state after the rollback: read from a copy of the project without the sleep.
    scratch = pg_database()
    copy = _project(tmp_path / "copy", PG_FILES, hold=0)
    cli(["up"], project=copy, url=scratch, artifacts=artifacts, label="race-pg-ref-up")
    done = cli(
        ["rollback", "--to", "20240101000000", "--yes", "--backup", "none", "--i-accept-data-loss"],
        project=copy,
        url=scratch,
        artifacts=artifacts,
        label="race-pg-ref-rollback",
    )
    assert done.exit_code == 0, done.describe()
    r_schema = observe(scratch, prisma=True).schema

    def prisma_lock_taken() -> bool:
        # While the winner holds the run lock, `prisma migrate deploy` could not take its own.
        deadline = time.monotonic() + 60
        with pg_connect(url) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
                    "AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())",
                    (PRISMA_LOCK_KEY,),
                ).fetchone()
                if row and row[0]:
                    got = conn.execute("SELECT pg_try_advisory_lock(%s)", (PRISMA_LOCK_KEY,))
                    return not got.fetchone()[0]
                time.sleep(0.05)
        return False

    outcomes, prisma_blocked = _race(
        project, url, "20240101000000", artifacts, "race-pg", prisma_lock_taken
    )
    figures = _check_race(outcomes, len(applied.events), observe(url, prisma=True), r_schema)
    assert prisma_blocked, "Prisma's advisory lock was not held during the rollback"
    assert _backups(project) == 1
    figures["prisma_lock_held_during_run"] = prisma_blocked
    record_result("concurrency", {"postgresql": figures})


@pytest.mark.postgres
def test_prisma_lock_held_postgres(
    tmp_path: Path, pg_database: Callable[[], str], artifacts: Artifacts
) -> None:
    """`prisma migrate deploy` holds its advisory lock: eight backouts exit 3, nothing changes."""
    url = pg_database()
    project = _project(tmp_path / "p", PG_FILES, hold=0)
    assert (
        cli(["up"], project=project, url=url, artifacts=artifacts, label="prisma-up").exit_code == 0
    )
    before = observe(url, prisma=True)
    with pg_connect(url, application_name="prisma-migrate") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (PRISMA_LOCK_KEY,))
        outcomes, _ = _race(project, url, "20240101000000", artifacts, "prisma-held")
        more = project / "prisma/migrations/20240301000000_more/migration.sql"
        more.parent.mkdir(parents=True)
        more.write_text("CREATE TABLE more_items (id integer PRIMARY KEY);\n")
        up = spawn(["up"], project=project, url=url, artifacts=artifacts, label="prisma-held-up")
        outcomes.append(up.wait(timeout=120))
    prisma = "the Prisma Migrate run lock (advisory lock 72707369)"
    for outcome in outcomes:
        assert outcome.exit_code == 3, outcome.describe()
        assert len(outcome.error_lines) == 1, outcome.describe()
        line = outcome.error_lines[0]
        # Racing each other, a backout may meet another backout's own lock first (it holds
        # backout's lock until it fails on Prisma's): both name their holder.
        assert (prisma in line and "(prisma-migrate, user " in line) or (
            "the backout run lock" in line
            and ("(backout/" in line or "it has just released it" in line)
        ), outcome.describe()
        assert outcome.duration < 30
    assert prisma in outcomes[-1].error_lines[0], "up alone must meet Prisma's lock"
    after = observe(url, prisma=True)
    assert after.shape == before.shape
    assert after.events == before.events
    assert _backups(project) == 0
    record_result(
        "concurrency",
        {
            "prisma_lock": {
                "runs": len(outcomes),
                "exited_3": sum(1 for o in outcomes if o.exit_code == 3),
                "slowest_seconds": round(max(o.duration for o in outcomes), 2),
                "error": outcomes[0].error_lines[0][:200],
            }
        },
    )


def test_eight_rollbacks_at_once_sqlite(tmp_path: Path, artifacts: Artifacts) -> None:
    """One runs, seven exit 3 naming it; the lock file is held meanwhile."""
    url = f"sqlite:///{tmp_path}/app.db"
    project = _project(tmp_path / "p", SQLITE_FILES, steps=10_000_000)
    assert (
        cli(["up"], project=project, url=url, artifacts=artifacts, label="race-sq-up").exit_code
        == 0
    )
    applied = observe(url, prisma=False)
    ref_url = f"sqlite:///{tmp_path}/ref.db"
    copy = _project(tmp_path / "copy", SQLITE_FILES, steps=1)
    cli(["up"], project=copy, url=ref_url, artifacts=artifacts, label="race-sq-ref-up")
    done = cli(
        ["rollback", "--to", "001", "--yes", "--backup", "none", "--i-accept-data-loss"],
        project=copy,
        url=ref_url,
        artifacts=artifacts,
        label="race-sq-ref-rollback",
    )
    assert done.exit_code == 0, done.describe()
    r_schema = observe(ref_url, prisma=False).schema
    db = tmp_path / "app.db"

    def lock_taken() -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not sqlite_lock_free(db):
                return True
            time.sleep(0.02)
        return False

    outcomes, held = _race(project, url, "001", artifacts, "race-sq", lock_taken)
    figures = _check_race(outcomes, len(applied.events), observe(url, prisma=False), r_schema)
    assert held
    assert _backups(project) == 1
    assert sqlite_lock_free(db)
    record_result("concurrency", {"sqlite": figures})
