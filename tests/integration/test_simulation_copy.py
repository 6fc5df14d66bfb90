"""``plan``'s simulation keeps its schema-only copy for the next run while the live schema is
unchanged (issue 14): never a stale copy, never one another run uses, swept once abandoned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backout.dialects import scratch_names
from backout.dialects.postgres.kept import KEPT_LABEL
from tests.helpers import run, sql, write


@pytest.fixture
def prefix(pg_admin_url: str) -> Iterator[str]:
    """This test's own scratch prefix: no other run sweeps or claims its copies; every
    database named with it is dropped afterwards."""
    mine = f"t{uuid.uuid4().hex[:10]}_"
    try:
        yield mine
    finally:
        for name, _oid, _label in _copies(pg_admin_url, mine):
            sql(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _copies(admin: str, prefix: str) -> list[tuple[str, int, str]]:
    """(name, oid, comment) of the databases named with ``prefix``."""
    rows = sql(
        admin,
        "SELECT datname, oid::int, coalesce(shobj_description(oid, 'pg_database'), '') "
        "FROM pg_database WHERE datname LIKE %s ORDER BY oid",
        (prefix.replace("_", "\\_") + "%",),
    )
    return [(str(n), int(o), str(c)) for n, o, c in rows]


def _project(tmp_path: Path, prefix: str, down: str = "DROP TABLE items;") -> Path:
    return write(
        tmp_path,
        {
            "backout.toml": f'layout = "plain"\nscratch_prefix = "{prefix}"\n',
            "migrations/001_base.up.sql": "CREATE TABLE parent (id INTEGER PRIMARY KEY);",
            "migrations/002_items.up.sql": (
                "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT, "
                "parent_id INTEGER REFERENCES parent (id));"
            ),
            "migrations/002_items.down.sql": f"-- backout:risk HIGH\n{down}\n",
        },
    )


def _simulation(project: Path, url: str) -> dict[str, object]:
    result = run(["plan", "--json"], project=project, url=url)
    assert result.exit_code in (0, 1), result.stderr
    simulation = json.loads(result.stdout)["steps"][0]["impact"]["simulation"]
    assert isinstance(simulation, dict)
    return simulation


def _rename(admin: str, name: str, *, pid: int, created: int) -> str:
    """Rename a copy as if ``pid`` had last used it at ``created``."""
    owner = scratch_names.owner_of(name, name.split("_", maxsplit=1)[0] + "_")
    assert owner is not None
    new = name.replace(f"_{owner.pid}_{owner.created}_", f"_{pid}_{created}_")
    sql(admin, f'ALTER DATABASE "{name}" RENAME TO "{new}"')
    return new


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _copy_url(admin: str, name: str) -> str:
    return admin.rsplit("/", 1)[0] + "/" + name


def test_the_copy_is_kept_and_reused_while_the_schema_is_unchanged(
    tmp_path: Path, pg_url: str, pg_admin_url: str, prefix: str
) -> None:
    project = _project(tmp_path, prefix)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    first = _simulation(project, pg_url)
    (kept,) = _copies(pg_admin_url, prefix)
    assert kept[2].startswith(KEPT_LABEL)
    second = _simulation(project, pg_url)
    (again,) = _copies(pg_admin_url, prefix)
    assert again[1] == kept[1]  # the same database (oid), claimed again under a new name
    assert again[0] != kept[0]
    assert first == second
    assert first["ran"] is True and 'removed table "items"' in first["changes"]  # type: ignore[operator]
    # the scripts ran in a transaction that was rolled back: the copy still has items
    tables = sql(
        _copy_url(pg_admin_url, again[0]),
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    # (and golang-migrate's history table, a copy of the live one's)
    assert tables == [("items",), ("parent",), ("schema_migrations",)]


def test_a_changed_live_schema_gets_a_new_copy(
    tmp_path: Path, pg_url: str, pg_admin_url: str, prefix: str
) -> None:
    project = _project(tmp_path, prefix)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    _simulation(project, pg_url)
    (old,) = _copies(pg_admin_url, prefix)
    sql(pg_url, "ALTER TABLE items ADD COLUMN extra TEXT")
    simulation = _simulation(project, pg_url)
    copies = _copies(pg_admin_url, prefix)
    assert len(copies) == 2 and copies[0][1] == old[1]  # the old one is left to the sweep
    assert copies[1][2] != old[2]  # labelled with another key
    assert 'removed table "items"' in simulation["changes"]  # type: ignore[operator]
    # the new copy holds the new column
    assert sql(
        _copy_url(pg_admin_url, copies[1][0]),
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'items' AND column_name = 'extra'",
    ) == [(1,)]


def test_a_copy_changed_behind_its_label_is_dropped_not_used(
    tmp_path: Path, pg_url: str, pg_admin_url: str, prefix: str
) -> None:
    project = _project(tmp_path, prefix)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    _simulation(project, pg_url)
    (tampered,) = _copies(pg_admin_url, prefix)
    sql(_copy_url(pg_admin_url, tampered[0]), "DROP TABLE items")
    simulation = _simulation(project, pg_url)
    # on the tampered copy DROP TABLE items would fail; the simulation ran on a true copy
    assert simulation["ran"] is True and not simulation.get("error")
    assert 'removed table "items"' in simulation["changes"]  # type: ignore[operator]
    assert tampered[1] not in [oid for _, oid, _ in _copies(pg_admin_url, prefix)]


def test_a_copy_in_use_by_another_run_is_not_touched(
    tmp_path: Path, pg_url: str, pg_admin_url: str, prefix: str
) -> None:
    project = _project(tmp_path, prefix)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    _simulation(project, pg_url)
    (busy,) = _copies(pg_admin_url, prefix)
    with psycopg.connect(_copy_url(pg_admin_url, busy[0]), autocommit=True) as other:
        simulation = _simulation(project, pg_url)
        assert other.execute("SELECT count(*) FROM items").fetchone() == (0,)
        copies = _copies(pg_admin_url, prefix)
    assert simulation["ran"] is True
    assert (busy[0], busy[1]) in [(n, o) for n, o, _ in copies]  # same name, same database
    assert len(copies) == 2


def test_a_kept_copy_of_a_live_process_elsewhere_is_not_claimed(
    tmp_path: Path, pg_url: str, pg_admin_url: str, prefix: str
) -> None:
    project = _project(tmp_path, prefix)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    _simulation(project, pg_url)
    (kept,) = _copies(pg_admin_url, prefix)
    theirs = _rename(pg_admin_url, kept[0], pid=os.getppid(), created=int(time.time()))
    _simulation(project, pg_url)
    copies = _copies(pg_admin_url, prefix)
    assert (theirs, kept[1]) in [(n, o) for n, o, _ in copies] and len(copies) == 2


def test_an_abandoned_kept_copy_is_swept_and_a_recent_one_spared(
    tmp_path: Path, pg_url: str, pg_admin_url: str, prefix: str
) -> None:
    project = _project(tmp_path, prefix)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    _simulation(project, pg_url)
    (kept,) = _copies(pg_admin_url, prefix)
    idle = int(time.time()) - scratch_names.KEPT_IDLE_S - 60
    _rename(pg_admin_url, kept[0], pid=_dead_pid(), created=idle)
    sql(pg_url, "ALTER TABLE items ADD COLUMN extra TEXT")  # another key: not claimed
    _simulation(project, pg_url)
    (recent,) = _copies(pg_admin_url, prefix)  # the idle one was swept
    assert recent[1] != kept[1]
    recent_name = _rename(pg_admin_url, recent[0], pid=_dead_pid(), created=int(time.time()) - 60)
    sql(pg_url, "ALTER TABLE items ADD COLUMN more TEXT")
    _simulation(project, pg_url)
    names = [n for n, _, _ in _copies(pg_admin_url, prefix)]
    assert recent_name in names and len(names) == 2


def test_a_script_that_cannot_run_in_a_transaction_gets_a_throwaway_copy(
    tmp_path: Path, pg_url: str, pg_admin_url: str, prefix: str
) -> None:
    project = _project(
        tmp_path, prefix, down="DROP INDEX CONCURRENTLY IF EXISTS nothing;\nDROP TABLE items;"
    )
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    simulation = _simulation(project, pg_url)
    assert simulation["ran"] is True and 'removed table "items"' in simulation["changes"]  # type: ignore[operator]
    assert _copies(pg_admin_url, prefix) == []


def test_what_a_snapshot_leaves_out_still_changes_the_key(
    tmp_path: Path, pg_url: str, pg_admin_url: str, prefix: str
) -> None:
    """A row security policy is not in a schema snapshot; the kept copy's key sees it."""
    project = _project(tmp_path, prefix, down="DROP POLICY p ON items;\nDROP TABLE items;")
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    before = _simulation(project, pg_url)
    assert "does not exist" in str(before["error"])  # no policy p yet: fails on the copy
    sql(pg_url, "CREATE POLICY p ON items USING (true)")
    after = _simulation(project, pg_url)
    assert after["ran"] is True and not after.get("error")
    assert len(_copies(pg_admin_url, prefix)) == 2
