"""Issue 16 (fleet): one command over many databases or schemas, ``--targets FILE``.

On PostgreSQL with 20 databases and with 20 schemas of one database, and on MariaDB with a few
databases (all uniquely named, dropped even when a test fails): a target that fails midway is
left as it was while the others are rolled back (``--keep-going``) or not started (the
default), the summary says exactly what each database shows, a second run finishes the job and
repeats nothing, the canary goes first, and a run killed with SIGKILL is finished by the next.
Every assertion reads each target's own tables and history.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import mysql_connect, mysql_url_for, run, sql, write
from tests.integration.test_json_docs import assert_documented, fleet_example

INIT = "20240101000000_init"
ITEMS = "20240201000000_items"

PRISMA = {
    "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
    f"prisma/migrations/{INIT}/migration.sql": (
        'CREATE TABLE "Order" (id integer PRIMARY KEY, note text);\n'
        "INSERT INTO \"Order\" VALUES (1, 'a'), (2, 'b');\n"
    ),
    f"prisma/migrations/{ITEMS}/migration.sql": (
        'CREATE TABLE "Tag" (id integer PRIMARY KEY);\n'
        'CREATE TABLE "Item" (id integer PRIMARY KEY, "orderId" integer REFERENCES "Order" (id));\n'
    ),
    # statement 1 drops Tag; statement 2 fails where a view depends on Item: undone as a whole
    f"prisma/rollback/{ITEMS}_rollback.sql": (
        '-- backout:risk HIGH\nDROP TABLE "Tag";\nDROP TABLE "Item";\n'
    ),
}
YES = ["--yes", "--no-simulate"]


def fleet(project: Path, *args: str, code: int) -> dict[str, Any]:
    """Run a fleet command with --json; its document, after checking the exit code."""
    argv = [str(project / a) if a == "targets.txt" else a for a in args]
    result = run([*argv, "--json"], project=project)
    assert result.exit_code == code, result.output
    document = json.loads(result.stdout)
    assert document["error"] is None if code == 0 else document["error"]["exit_code"] == code
    return document


def outcomes(document: dict[str, Any]) -> list[str]:
    return [t["outcome"] for t in document["targets"]]


def pg_tables(url: str, schema: str = "public") -> set[str]:
    rows = sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
    return {str(r[0]) for r in rows}


def prisma_rows(url: str, schema: str = "public") -> dict[str, tuple[bool, int]]:
    """Per migration: (applied now, how many ledger rows it has)."""
    rows = sql(
        url,
        f"SELECT migration_name, bool_or(rolled_back_at IS NULL AND finished_at IS NOT NULL), "
        f'count(*) FROM "{schema}"._prisma_migrations GROUP BY 1',
    )
    return {str(r[0]): (bool(r[1]), int(r[2])) for r in rows}


def rollback_events(url: str) -> list[str]:
    """The outcomes of the rollback events of backout's history, oldest first."""
    rows = sql(url, "SELECT outcome FROM backout.events WHERE event = 'rollback' ORDER BY id")
    return [str(r[0]) for r in rows]


def assert_pg_state(url: str, outcome: str, schema: str = "public") -> None:
    """The database says what the summary said of it."""
    tables = pg_tables(url, schema)
    ledger = prisma_rows(url, schema)
    if outcome == "ok":
        assert {"Item", "Tag"}.isdisjoint(tables), (url, schema, tables)
        assert ledger[ITEMS] == (False, 1), (url, schema, ledger)
    else:  # failed (undone as a whole) or not run: untouched
        assert {"Order", "Item", "Tag"} <= tables, (url, schema, tables)
        assert ledger[ITEMS] == (True, 1), (url, schema, ledger)
    assert ledger[INIT] == (True, 1)


@pytest.fixture
def pg_databases(pg_admin_url: str) -> Iterator[list[str]]:
    """20 new PostgreSQL databases; dropped afterwards, whatever happens."""
    yield from _pg_databases(pg_admin_url, 20)


@pytest.fixture
def eight_pg_databases(pg_admin_url: str) -> Iterator[list[str]]:
    """8 new PostgreSQL databases; dropped afterwards, whatever happens."""
    yield from _pg_databases(pg_admin_url, 8)


def _pg_databases(pg_admin_url: str, count: int) -> Iterator[list[str]]:
    import psycopg

    names = [f"backout_t_{uuid.uuid4().hex[:10]}_f{i:02}" for i in range(count)]
    base, _, _ = pg_admin_url.rpartition("/")
    created: list[str] = []
    try:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            for name in names:
                conn.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
        yield [f"{base}/{name}" for name in names]
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            for name in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_rollback_over_20_postgres_databases(tmp_path: Path, pg_databases: list[str]) -> None:
    project = write(tmp_path / "app", PRISMA)
    (project / "targets.txt").write_text(
        "# one database per tenant\n" + "\n".join(pg_databases) + "\n", encoding="utf-8"
    )
    up = fleet(project, "up", "--targets", "targets.txt", "--parallel", "8", code=0)
    assert outcomes(up) == ["ok"] * 20
    # plan simulates on schema-only copies: 20 threads of one process share the kept ones
    plan = fleet(
        project, "plan", "--to", INIT, "--targets", "targets.txt", "--parallel", "8", code=0
    )
    assert {t["detail"] for t in plan["targets"]} == {f"rolls back {ITEMS}; 0 row(s) lost"}
    # tenant 7 has a view on Item: its rollback fails at statement 2, after dropping Tag
    sql(pg_databases[7], 'CREATE VIEW item_view AS SELECT * FROM "Item"')

    # default: no target starts after the failure; the ones running finish
    first = fleet(
        project,
        "rollback",
        "--to",
        INIT,
        "--targets",
        "targets.txt",
        "--parallel",
        "4",
        *YES,
        code=7,
    )
    states = outcomes(first)
    assert states[7] == "failed" and first["targets"][7]["exit_code"] == 4
    assert "item_view" in first["targets"][7]["error"]["message"]
    assert states[:7] == ["ok"] * 7 and states.count("not_run") >= 8
    assert set(states) == {"ok", "failed", "not_run"}
    for url, target in zip(pg_databases, first["targets"], strict=True):
        assert target["target"] == url
        assert_pg_state(url, target["outcome"])
        assert (target["backup"] is not None) == (target["outcome"] == "ok")

    # again, keep going: the ones done are skipped (their own history says so), the rest run
    second = fleet(
        project,
        "rollback",
        "--to",
        INIT,
        "--targets",
        "targets.txt",
        "--parallel",
        "4",
        "--keep-going",
        *YES,
        code=7,
    )
    expected = ["already_done" if s == "ok" else "ok" for s in states]
    expected[7] = "failed"
    assert outcomes(second) == expected
    for url, target in zip(pg_databases, second["targets"], strict=True):
        assert_pg_state(url, "failed" if target["outcome"] == "failed" else "ok")

    # the cause fixed, the third run rolls back tenant 7 only
    sql(pg_databases[7], "DROP VIEW item_view")
    third = fleet(project, "rollback", "--to", INIT, "--targets", "targets.txt", *YES, code=0)
    assert outcomes(third) == ["already_done"] * 7 + ["ok"] + ["already_done"] * 12
    for i, url in enumerate(pg_databases):
        assert_pg_state(url, "ok")
        # one rollback event per attempt made on that database: never one rolled back twice
        events = rollback_events(url)
        assert events[-1] != "failed" and events.count("failed") == (2 if i == 7 else 0), events
        assert len([e for e in events if e != "failed"]) == 1, events


def test_status_and_rollback_over_20_schemas_of_one_database(tmp_path: Path, pg_url: str) -> None:
    project = write(tmp_path / "app", PRISMA)
    schemas = [f"tenant_{i:02}" for i in range(20)]
    for schema in schemas:
        sql(pg_url, f'CREATE SCHEMA "{schema}"')
    (project / "targets.txt").write_text(
        f"base = {pg_url}\n"
        "query = SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1\n",
        encoding="utf-8",
    )
    up = fleet(project, "up", "--targets", "targets.txt", "--parallel", "8", code=0)
    assert [t["target"] for t in up["targets"]] == [f"{pg_url}?schema={s}" for s in schemas]
    sql(pg_url, 'CREATE VIEW tenant_03.item_view AS SELECT * FROM tenant_03."Item"')
    status = fleet(project, "status", "--targets", "targets.txt", code=0)
    assert outcomes(status) == ["ok"] * 20 and "2 applied" in status["targets"][0]["detail"]

    # schemas of one database share its run lock: they run one after the other, never wait
    done = fleet(
        project,
        "rollback",
        "--to",
        INIT,
        "--targets",
        "targets.txt",
        "--parallel",
        "8",
        "--keep-going",
        "--lock-wait",
        "0",
        *YES,
        code=7,
    )
    assert outcomes(done) == ["ok"] * 3 + ["failed"] + ["ok"] * 16
    for schema, target in zip(schemas, done["targets"], strict=True):
        assert_pg_state(pg_url, target["outcome"], schema)
    ids = [t["backup"] for t in done["targets"] if t["backup"]]
    assert len(set(ids)) == 19  # one backup per schema, each its own id
    # status reuses one connection for the schemas of a database: each reads its own schema
    after = fleet(project, "status", "--targets", "targets.txt", "--parallel", "3", code=0)
    applied = [t["detail"].split(" applied")[0] for t in after["targets"]]
    assert applied == ["1"] * 3 + ["2"] + ["1"] * 16


def test_schema_tenants_need_a_ledger_per_schema(tmp_path: Path, pg_url: str) -> None:
    project = write(
        tmp_path / "plain",
        {"backout.toml": 'layout = "plain"\n', "migrations/001_a.up.sql": "CREATE TABLE a ();\n"},
    )
    (project / "targets.txt").write_text(
        f"base = {pg_url}\nschema = one\nschema = two\n", encoding="utf-8"
    )
    result = run(["up", "--targets", str(project / "targets.txt")], project=project)
    assert result.exit_code == 2
    assert "targets.txt:3:" in result.output and "one table (backout.migrations)" in result.output
    assert sql(pg_url, "SELECT count(*) FROM pg_namespace WHERE nspname IN ('one', 'two')") == [
        (0,)
    ]


PLAIN_MYSQL = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/001_base.up.sql": "CREATE TABLE base (id INT PRIMARY KEY);\n",
    "migrations/001_base.down.sql": "-- backout:risk HIGH\nDROP TABLE base;\n",
    "migrations/002_items.up.sql": "CREATE TABLE items (id INT PRIMARY KEY);\n"
    "INSERT INTO items VALUES (1), (2);\n",
    "migrations/002_items.down.sql": "-- backout:risk HIGH\nDROP TABLE items;\n",
}


@pytest.fixture
def mysql_databases(mysql_admin_url: str) -> Iterator[list[str]]:
    """Four new MariaDB databases; dropped afterwards, whatever happens."""
    names = [f"backout_t_{uuid.uuid4().hex[:10]}_f{i}" for i in range(4)]
    conn = mysql_connect(mysql_admin_url, database=None)
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f"CREATE DATABASE `{name}`")
        yield [mysql_url_for(mysql_admin_url, name) for name in names]
    finally:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def mysql_state(url: str) -> tuple[set[str], dict[str, bool]]:
    """The tables, and per migration whether backout's ledger has it applied."""
    tables = {str(r[0]) for r in sql(url, "SHOW TABLES")}
    rows = sql(url, "SELECT migration_id, rolled_back_at IS NULL FROM backout_migrations")
    return tables, {str(r[0]): bool(r[1]) for r in rows}


def test_rollback_over_mariadb_databases(tmp_path: Path, mysql_databases: list[str]) -> None:
    project = write(tmp_path / "app", PLAIN_MYSQL)
    (project / "targets.txt").write_text(
        "base = "
        + mysql_databases[0]
        + "\n"
        + "".join(f"schema = {url.rsplit('/', 1)[1]}\n" for url in mysql_databases),
        encoding="utf-8",
    )
    up = fleet(project, "up", "--targets", "targets.txt", "--parallel", "2", code=0)
    assert [t["target"] for t in up["targets"]] == mysql_databases  # a schema is a database
    # database 1 has a table referencing items: DROP TABLE items fails, and changes nothing
    sql(
        mysql_databases[1], "CREATE TABLE refs (item INT, FOREIGN KEY (item) REFERENCES items (id))"
    )
    refused = run(["rollback", "--targets", str(project / "targets.txt"), "--yes"], project=project)
    assert refused.exit_code == 2 and "needs --to ID" in refused.output

    done = fleet(
        project,
        "rollback",
        "--to",
        "001_base",
        "--targets",
        "targets.txt",
        "--parallel",
        "2",
        "--keep-going",
        *YES,
        code=7,
    )
    assert outcomes(done) == ["ok", "failed", "ok", "ok"]
    for url, target in zip(mysql_databases, done["targets"], strict=True):
        tables, ledger = mysql_state(url)
        rolled_back = target["outcome"] == "ok"
        assert ("items" not in tables) == rolled_back, (url, tables)
        assert ledger == {"001_base": True, "002_items": not rolled_back}
    again = fleet(project, "rollback", "--to", "001_base", "--targets", "targets.txt", *YES, code=7)
    assert outcomes(again) == ["already_done", "failed", "already_done", "already_done"]
    assert mysql_state(mysql_databases[1])[1]["002_items"] is True


def rolled_back(url: str) -> bool:
    return not prisma_rows(url)[ITEMS][0]


def test_a_run_killed_with_sigkill_is_finished_by_the_next(
    tmp_path: Path, eight_pg_databases: list[str]
) -> None:
    """kill -9 of the whole run after some targets: the next run finishes the rest and rolls
    nothing back twice (each target's ledger rows and events say so)."""
    urls = eight_pg_databases
    # before_rollback sleeps: the run is slow enough to be killed part-way
    project = write(
        tmp_path / "app", {**PRISMA, "backout.toml": '[hooks]\nbefore_rollback = "sleep 0.6"\n'}
    )
    targets = project / "targets.txt"
    targets.write_text("\n".join(urls) + "\n", encoding="utf-8")
    assert fleet(project, "up", "--targets", "targets.txt", code=0)["counts"]["ok"] == 8
    command = [sys.executable, "-m", "backout", "rollback", "--to", INIT, "--targets"]
    command += [str(targets), "--parallel", "2", "-C", str(project), *YES]
    env = {**os.environ, "DATABASE_URL": "", "NO_COLOR": "1"}
    process = subprocess.Popen(
        command,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while sum(rolled_back(u) for u in urls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    done_before = [rolled_back(u) for u in urls]
    assert 3 <= sum(done_before) < 8, done_before

    again = fleet(project, "rollback", "--to", INIT, "--targets", "targets.txt", *YES, code=0)
    assert outcomes(again) == ["already_done" if d else "ok" for d in done_before]
    for url in urls:
        assert_pg_state(url, "ok")
        # one successful rollback per database; a target killed mid-run left no success
        assert len([e for e in rollback_events(url) if e != "failed"]) == 1, url


SQLITE = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/001_a.up.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY);\n",
    "migrations/002_b.up.sql": "CREATE TABLE b (id INTEGER PRIMARY KEY);\n",
    "migrations/002_b.down.sql": "-- backout:risk LOW\nDROP TABLE b;\n",
}


def sqlite_has_b(path: Path) -> bool:
    return bool(sql(f"sqlite:///{path}", "SELECT name FROM sqlite_master WHERE name = 'b'"))


def test_the_canary_goes_first_and_alone(tmp_path: Path) -> None:
    project = write(tmp_path / "app", SQLITE)
    files = [tmp_path / f"t{i}.db" for i in range(6)]
    (project / "targets.txt").write_text(
        "".join(f"sqlite:///{f}  # tenant {i}\n" for i, f in enumerate(files)), encoding="utf-8"
    )
    fleet(project, "up", "--targets", "targets.txt", code=0)
    # the second canary fails (b has a row there: risk LOW understates it, exit 1): the
    # others are not started, even with keep-going
    sql(f"sqlite:///{files[1]}", "INSERT INTO b VALUES (1)")
    refused = fleet(
        project,
        "rollback",
        "--to",
        "001_a",
        "--targets",
        "targets.txt",
        "--canary",
        "2",
        "--keep-going",
        *YES,
        code=7,
    )
    assert outcomes(refused) == ["ok", "failed"] + ["not_run"] * 4
    assert_documented(fleet_example(), refused)  # docs/json.md's example, field for field
    assert refused["targets"][1]["exit_code"] == 1
    assert "canary" in refused["stopped"]
    assert [sqlite_has_b(f) for f in files] == [False] + [True] * 5

    # the canary fixed: the first two go alone, then the rest in parallel
    sql(f"sqlite:///{files[1]}", "DELETE FROM b")
    done = fleet(
        project,
        "rollback",
        "--to",
        "001_a",
        "--targets",
        "targets.txt",
        "--canary",
        "2",
        *YES,
        code=0,
    )
    assert outcomes(done) == ["already_done", "ok", "ok", "ok", "ok", "ok"]
    assert not any(sqlite_has_b(f) for f in files)


def test_an_unreachable_target_refuses_the_run_before_any_change(
    tmp_path: Path, pg_url: str
) -> None:
    project = write(tmp_path / "app", PRISMA)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    missing = pg_url.rsplit("/", 1)[0] + f"/backout_t_{uuid.uuid4().hex[:10]}_missing"
    (project / "targets.txt").write_text(f"{pg_url}\n{missing}\n", encoding="utf-8")
    refused = fleet(project, "rollback", "--to", INIT, "--targets", "targets.txt", *YES, code=4)
    assert refused["outcome"] == "error" and "targets.txt:2" in refused["error"]["message"]
    assert "nothing was run on any target" in refused["error"]["message"]
    assert_pg_state(pg_url, "not_run")
    assert rollback_events(pg_url) == []
    # backup connects to every target first: no backup is taken anywhere
    refused = fleet(project, "backup", "--targets", "targets.txt", code=4)
    assert "targets.txt:2" in refused["error"]["message"]
    assert not list((project / ".backout" / "backups").glob("*.dump"))


def test_ctrl_c_lets_the_running_targets_finish_and_starts_no_other(tmp_path: Path) -> None:
    project = write(
        tmp_path / "app",
        {**SQLITE, "backout.toml": 'layout = "plain"\n[hooks]\nbefore_rollback = "sleep 0.5"\n'},
    )
    files = [tmp_path / f"t{i}.db" for i in range(6)]
    targets = project / "targets.txt"
    targets.write_text("".join(f"sqlite:///{f}\n" for f in files), encoding="utf-8")
    fleet(project, "up", "--targets", "targets.txt", code=0)
    command = [sys.executable, "-m", "backout", "rollback", "--to", "001_a"]
    command += ["--targets", str(targets), "--parallel", "2", "--yes", "--json", "-C", str(project)]
    process = subprocess.Popen(
        command, env={**os.environ, "DATABASE_URL": ""}, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while all(sqlite_has_b(f) for f in files) and time.monotonic() < deadline:
        time.sleep(0.05)  # until a first target is done: the next ones are running then
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    document = json.loads(out)
    states = outcomes(document)
    assert document["outcome"] == "interrupted" and "not_run" in states and "ok" in states
    assert "failed" not in states  # the running ones finished
    assert [not sqlite_has_b(f) for f in files] == [s == "ok" for s in states]


def test_every_command_takes_targets(tmp_path: Path) -> None:
    """status, up, plan, check, test and backup over SQLite files: each target's own result."""
    project = write(tmp_path / "app", SQLITE)
    files = [tmp_path / f"t{i}.db" for i in range(3)]
    (project / "targets.txt").write_text(
        "".join(f"sqlite:///{f}\n" for f in files), encoding="utf-8"
    )
    assert outcomes(fleet(project, "up", "--targets", "targets.txt", code=0)) == ["ok"] * 3
    sql(f"sqlite:///{files[2]}", "INSERT INTO b VALUES (1)")
    plan = fleet(project, "plan", "--to", "001_a", "--targets", "targets.txt", code=1)
    assert outcomes(plan) == ["ok", "ok", "problems"] and plan["outcome"] == "problems"
    assert "declares risk LOW but backout computes HIGH" in plan["targets"][2]["detail"]
    check = fleet(project, "check", "--targets", "targets.txt", code=0)
    assert outcomes(check) == ["ok"] * 3
    test = fleet(project, "test", "--targets", "targets.txt", "--no-smoke", code=0)
    assert outcomes(test) == ["ok"] * 3
    backup = fleet(project, "backup", "--targets", "targets.txt", code=0)
    ids = [t["backup"] for t in backup["targets"]]
    assert len(set(ids)) == 3 and all(ids)
    listed = json.loads(run(["backups", "--json"], project=project).stdout)["backups"]
    assert {b["id"] for b in listed} == set(ids)
    # a target with a failed migration needs attention: status says so, and goes on (the
    # latest one failed, as backout and golang-migrate record it: no finish, dirty)
    sql(
        f"sqlite:///{files[0]}",
        "UPDATE backout_migrations SET finished_at = NULL, logs = 'x' "
        "WHERE migration_key = (SELECT max(migration_key) FROM backout_migrations)",
    )
    sql(f"sqlite:///{files[0]}", "UPDATE schema_migrations SET dirty = 1")
    status = fleet(project, "status", "--targets", "targets.txt", code=1)
    assert outcomes(status) == ["problems", "ok", "ok"]
    assert "1 failed migration(s)" in status["targets"][0]["detail"]
