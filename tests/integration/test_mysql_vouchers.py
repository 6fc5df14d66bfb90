"""Every command on MySQL/MariaDB, on the vouchers-mysql example (Prisma layout): the ledger as
Prisma writes it, rollbacks with backups, partial rollbacks, backup and restore, the run lock,
and bad input."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path

import pytest

from backout.demo.sampledata import fill
from backout.model.urls import parse_url
from tests.helpers import copy_example, db_state, mysql_connect, run, sql, write

pytestmark = pytest.mark.mysql

INIT = "20240101000000_init"
VOUCHERS = "20240315000000_add_voucher_system"


def status_doc(project: Path, url: str) -> dict[str, object]:
    return json.loads(run(["status", "--json"], project=project, url=url).stdout)  # type: ignore[no-any-return]


def states(project: Path, url: str) -> dict[str, str]:
    migrations = status_doc(project, url)["migrations"]
    assert isinstance(migrations, list)
    return {m["id"]: m["state"] for m in migrations}


def balances_consistent(url: str) -> bool:
    (wrong,) = sql(
        url,
        "SELECT count(*) FROM `UserTokenBalance` b LEFT JOIN (SELECT `userId`, SUM(`amount`) "
        "AS total FROM `TokenTransaction` GROUP BY `userId`) t ON t.`userId` = b.`userId` "
        "WHERE b.`balance` <> COALESCE(t.total, 0)",
    )[0]
    return int(wrong) == 0


@pytest.fixture
def vouchers(tmp_path: Path, mysql_url: str) -> Path:
    """The example, migrated and filled with sample rows."""
    project = copy_example("vouchers-mysql", tmp_path)
    result = run(["up"], project=project, url=mysql_url)
    assert result.exit_code == 0, result.stderr
    fill("vouchers-mysql", mysql_url, scale=300)
    return project


def test_up_writes_prisma_migrations_as_prisma_does(tmp_path: Path, mysql_url: str) -> None:
    project = copy_example("vouchers-mysql", tmp_path)
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=2)
    assert run(["up"], project=project, url=mysql_url).exit_code == 0
    (create,) = sql(mysql_url, "SHOW CREATE TABLE _prisma_migrations")
    ddl = " ".join(str(create[1]).split())
    for column in (
        "`id` varchar(36) NOT NULL",
        "`checksum` varchar(64) NOT NULL",
        "`finished_at` datetime(3) DEFAULT NULL",
        "`migration_name` varchar(255) NOT NULL",
        "`logs` text DEFAULT NULL",
        "`started_at` datetime(3) NOT NULL DEFAULT current_timestamp(3)",
        "`applied_steps_count` int(10) unsigned NOT NULL DEFAULT 0",
        "COLLATE=utf8mb4_unicode_ci",
    ):
        assert column in ddl, ddl
    rows = sql(
        mysql_url,
        "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, "
        "applied_steps_count FROM _prisma_migrations ORDER BY started_at",
    )
    assert [r[3] for r in rows] == [INIT, VOUCHERS]
    for row_id, checksum, finished, name, logs, rolled_back, started_at, steps in rows:
        uuid.UUID(row_id)
        data = (project / "prisma" / "migrations" / name / "migration.sql").read_bytes()
        assert checksum == hashlib.sha256(data).hexdigest()
        assert logs is None and rolled_back is None and steps == 1
        assert started <= started_at <= finished  # naive UTC, as Prisma stores it
        assert finished.microsecond % 1000 == 0  # milliseconds
    assert not sql(mysql_url, "SHOW TABLES LIKE 'backout\\_migrations'")  # Prisma's ledger only


def test_failed_up_leaves_the_row_prisma_leaves(tmp_path: Path, mysql_url: str) -> None:
    project = copy_example("vouchers-mysql", tmp_path)
    bad = project / "prisma" / "migrations" / "20240401000000_add_flag" / "migration.sql"
    write(
        project,
        {
            str(bad.relative_to(project)): (
                "ALTER TABLE `User` ADD COLUMN `flag` INTEGER NULL;\n"
                "ALTER TABLE `Nope` ADD COLUMN `x` INTEGER NULL;\n"
            )
        },
    )
    result = run(["up"], project=project, url=mysql_url)
    assert result.exit_code == 4
    ((finished, rolled_back, steps, logs),) = sql(
        mysql_url,
        "SELECT finished_at, rolled_back_at, applied_steps_count, logs FROM _prisma_migrations "
        "WHERE migration_name = '20240401000000_add_flag'",
    )
    assert finished is None and rolled_back is None
    assert steps == 1  # statement 1 of 2 stays applied
    assert "Database error code: 1146" in logs and "1 of 2 statements were applied" in logs
    assert states(project, mysql_url)["20240401000000_add_flag"] == "failed"
    # `resolve --rolled-back` after undoing by hand, as with prisma migrate resolve
    sql(mysql_url, "ALTER TABLE `User` DROP COLUMN `flag`")
    assert (
        run(
            ["resolve", "20240401000000_add_flag", "--rolled-back"], project=project, url=mysql_url
        ).exit_code
        == 0
    )
    assert states(project, mysql_url)["20240401000000_add_flag"] == "pending"
    assert status_doc(project, mysql_url)["summary"]["interrupted"] == 0  # type: ignore[index]


def test_full_rollback_with_scoped_backup_then_restore(vouchers: Path, mysql_url: str) -> None:
    before = db_state(mysql_url)
    plan = run(["plan", "--json"], project=vouchers, url=mysql_url)
    doc = json.loads(plan.stdout)
    assert doc["backup"]["mode"] == "scoped"
    result = run(["rollback", "--yes"], project=vouchers, url=mysql_url)
    assert result.exit_code == 0, result.stderr
    assert states(vouchers, mysql_url) == {INIT: "applied", VOUCHERS: "rolled_back"}
    assert not sql(mysql_url, "SHOW TABLES LIKE 'Voucher%'")
    ((rolled_back,),) = sql(
        mysql_url,
        "SELECT rolled_back_at IS NOT NULL FROM _prisma_migrations WHERE migration_name = %s",
        (VOUCHERS,),
    )
    assert rolled_back  # the row is kept, marked: prisma migrate deploy would re-apply it
    assert balances_consistent(mysql_url)
    backups = json.loads(run(["backups", "--json"], project=vouchers, url=mysql_url).stdout)
    latest = backups["backups"][-1]
    assert latest["kind"] == "scoped" and latest["dialect"] == "mysql"
    assert "Voucher" in latest["tables"] and "_prisma_migrations" in latest["tables"]
    restored = run(["restore", latest["id"], "--yes"], project=vouchers, url=mysql_url)
    assert restored.exit_code == 0, restored.stderr
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (before.schema, before.data)
    assert states(vouchers, mysql_url) == {INIT: "applied", VOUCHERS: "applied"}


def test_full_backup_restore_over_and_into(vouchers: Path, mysql_url: str) -> None:
    before = db_state(mysql_url)
    result = run(["backup", "--full"], project=vouchers, url=mysql_url)
    assert result.exit_code == 0, result.stderr
    record = json.loads(run(["backups", "--json"], project=vouchers, url=mysql_url).stdout)[
        "backups"
    ][-1]
    path = vouchers / ".backout" / "backups" / record["file"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert "password" not in path.read_text(encoding="utf-8", errors="replace").lower()
    sql(mysql_url, "DELETE FROM `TokenTransaction` WHERE `amount` < 0")
    sql(mysql_url, "ALTER TABLE `User` ADD COLUMN `junk` INT NULL")
    assert db_state(mysql_url).schema != before.schema
    restored = run(["restore", record["id"], "--yes"], project=vouchers, url=mysql_url)
    assert restored.exit_code == 0, restored.stderr
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (before.schema, before.data)

    target = f"{mysql_url}_into"
    try:
        into = run(
            ["restore", record["id"], "--into", target, "--yes"], project=vouchers, url=mysql_url
        )
        assert into.exit_code == 0, into.stderr
        copy = db_state(target)
        assert (copy.schema, copy.data) == (before.schema, before.data)
    finally:
        sql(mysql_url, f"DROP DATABASE IF EXISTS `{target.rsplit('/', 1)[1]}`")


def test_restore_refuses_a_damaged_backup(vouchers: Path, mysql_url: str) -> None:
    assert run(["backup", "--full"], project=vouchers, url=mysql_url).exit_code == 0
    record = json.loads(run(["backups", "--json"], project=vouchers, url=mysql_url).stdout)[
        "backups"
    ][-1]
    path = vouchers / ".backout" / "backups" / record["file"]
    path.write_bytes(path.read_bytes()[:-200])
    before = db_state(mysql_url)
    result = run(["restore", record["id"], "--yes"], project=vouchers, url=mysql_url)
    assert result.exit_code == 2 and "is damaged" in result.stderr
    assert db_state(mysql_url) == before


def test_partial_rollbacks_are_atomic_and_bind_parameters(vouchers: Path, mysql_url: str) -> None:
    (after_cutoff,) = sql(
        mysql_url,
        "SELECT count(*) FROM `TokenTransaction` WHERE `source` = 'voucher_redemption' "
        "AND `createdAt` > '2024-09-01'",
    )[0:1]
    assert after_cutoff[0] > 0
    plan = run(
        ["plan", VOUCHERS, "--partial", "reverse-tokens", "--param", "since=2024-09-01"],
        project=vouchers,
        url=mysql_url,
    )
    assert plan.exit_code == 0, plan.stderr
    assert f"{after_cutoff[0]:,} row(s) will be affected" in plan.output
    assert "Execution: one transaction" in plan.output
    result = run(
        [
            "rollback",
            "--partial",
            "reverse-tokens",
            "--param",
            "since=2024-09-01T00:00:00+00:00",
            "--yes",
        ],
        project=vouchers,
        url=mysql_url,
    )
    assert result.exit_code == 0, result.stderr
    (left,) = sql(
        mysql_url,
        "SELECT count(*) FROM `TokenTransaction` WHERE `source` = 'voucher_redemption' "
        "AND `createdAt` > '2024-09-01'",
    )
    assert left == (0,)
    assert balances_consistent(mysql_url)
    assert states(vouchers, mysql_url)[VOUCHERS] == "applied"

    # A bad parameter value is refused before anything runs.
    bad = run(
        ["rollback", "--partial", "reverse-tokens", "--param", "since=yesterday", "--yes"],
        project=vouchers,
        url=mysql_url,
    )
    assert bad.exit_code == 2 and "not a valid timestamptz" in bad.stderr

    # clear-data's verify fails after its statements: everything is undone (one transaction).
    sql(mysql_url, "CREATE TABLE `VoucherRedemptionCopy` AS SELECT * FROM `VoucherRedemption`")
    before = db_state(mysql_url)
    script = vouchers / "prisma" / "rollback" / f"{VOUCHERS}_rollback.clear-data.sql"
    script.write_text(
        script.read_text(encoding="utf-8").replace(
            "-- backout:manual", "-- backout:verify SELECT 0 = 1\n-- backout:manual", 1
        ),
        encoding="utf-8",
    )
    failed = run(
        [
            "rollback",
            "--partial",
            "clear-data",
            "--yes",
            "--backup",
            "none",
            "--i-accept-data-loss",
        ],
        project=vouchers,
        url=mysql_url,
    )
    assert failed.exit_code == 1 and "verify failed" in failed.stderr
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (before.schema, before.data)


def test_history_lint_and_dry_run(vouchers: Path, mysql_url: str) -> None:
    dry = run(["rollback", "--dry-run", "--no-simulate"], project=vouchers, url=mysql_url)
    assert dry.exit_code == 0
    assert "GET_LOCK('prisma_migrate', 0)" in dry.output
    assert "DROP TABLE IF EXISTS `VoucherRedemption`;" in dry.output
    history = json.loads(run(["history", "--json"], project=vouchers, url=mysql_url).stdout)
    assert [(e["event"], e["migration"]) for e in history["events"]] == [
        ("apply", INIT),
        ("apply", VOUCHERS),
    ]
    lint = run(["lint", "--json"], project=vouchers, url=mysql_url)
    assert lint.exit_code in (0, 1), lint.stderr
    assert "Traceback" not in lint.stderr


def test_simulation_runs_on_a_scratch_database(vouchers: Path, mysql_url: str) -> None:
    plan = run(["plan"], project=vouchers, url=mysql_url)
    assert plan.exit_code == 0, plan.stderr
    assert "simulation skipped" not in plan.output
    assert "the simulation drops" not in plan.output
    leftovers = sql(mysql_url, "SHOW DATABASES LIKE 'backout\\_scratch\\_%'")
    assert leftovers == []


@pytest.mark.parametrize("lock", ["backout", "prisma_migrate"])
def test_lock_held_exits_3_naming_the_holder(vouchers: Path, mysql_url: str, lock: str) -> None:
    database = mysql_url.rsplit("/", 1)[1]
    name = f"backout:{database}" if lock == "backout" else "prisma_migrate"
    other = mysql_connect(mysql_url, autocommit=False, init_command=None)
    try:
        with other.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0), CONNECTION_ID()", (name,))
            got, connection = cur.fetchone()
        assert got == 1
        before = db_state(mysql_url)
        for args in (
            ["rollback", "--yes"],
            ["rollback", "--resume", "--yes"],
            ["resolve", INIT, "--applied"],
        ):
            result = run(args, project=vouchers, url=mysql_url)
            assert result.exit_code == 3, (args, result.stderr)
            assert f"GET_LOCK('{name}')" in result.stderr
            assert f"held by connection {connection} (user root from 127.0.0.1" in result.stderr
        assert db_state(mysql_url) == before
    finally:
        other.close()


def test_lock_timeout_retries_then_exits_3(tmp_path: Path, mysql_url: str) -> None:
    project = write(
        tmp_path,
        {
            "migrations/001_t.up.sql": "CREATE TABLE t (id INT PRIMARY KEY, v INT);\n",
            "migrations/002_alter.up.sql": "ALTER TABLE t ADD COLUMN w INT;\n",
            "backout.toml": 'layout = "plain"\nlock_retries = 1\nlock_timeout = "1s"\n',
        },
    )
    assert run(["up", "--to", "001"], project=project, url=mysql_url).exit_code == 0
    other = mysql_connect(mysql_url, autocommit=False, init_command=None)
    try:
        with other.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM t FOR UPDATE")  # holds a metadata lock on t
        result = run(["up"], project=project, url=mysql_url)
    finally:
        other.rollback()
        other.close()
    assert result.exit_code == 3
    assert "could not get a lock within 1s after 2 attempts" in result.stderr
    assert "lock not granted within 1s (attempt 1 of 2)" in result.stderr
    assert "ADD COLUMN w" not in str(sql(mysql_url, "SHOW CREATE TABLE t"))
    assert run(["up"], project=project, url=mysql_url).exit_code == 2  # failed: resolve first


@pytest.mark.parametrize(
    ("url_suffix", "code", "message"),
    [
        ("", 2, "names no database"),
        ("/backout_does_not_exist", 4, "Unknown database"),
    ],
)
def test_bad_urls(
    tmp_path: Path, mysql_admin_url: str, url_suffix: str, code: int, message: str
) -> None:
    project = copy_example("vouchers-mysql", tmp_path)
    base = mysql_admin_url.rsplit("/", 1)[0]
    result = run(["status"], project=project, url=base + url_suffix)
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_scripts_are_refused_before_anything_runs(tmp_path: Path, mysql_url: str) -> None:
    project = write(
        tmp_path,
        {
            "migrations/001_t.up.sql": "CREATE TABLE t (id INT PRIMARY KEY);\n",
            "migrations/002_bad.up.sql": "INSERT INTO t VALUES (1);\nSELECT 'unterminated;\n",
            "migrations/003_tx.up.sql": "CREATE TABLE u (id INT);\nSTART TRANSACTION;\n",
            "backout.toml": 'layout = "plain"\n',
        },
    )
    assert run(["up", "--to", "001"], project=project, url=mysql_url).exit_code == 0
    before = db_state(mysql_url)
    result = run(["up"], project=project, url=mysql_url)
    assert result.exit_code == 2
    assert "migrations/002_bad.up.sql:2: unterminated string" in result.stderr
    assert db_state(mysql_url) == before
    (project / "migrations" / "002_bad.up.sql").write_text("INSERT INTO t VALUES (1);\n")
    result = run(["up"], project=project, url=mysql_url)
    assert result.exit_code == 2
    assert "migrations/003_tx.up.sql:2: START TRANSACTION is never committed" in result.stderr


def test_mariadb_url_scheme_and_password_never_shown(tmp_path: Path, mysql_url: str) -> None:
    database = mysql_url.rsplit("/", 1)[1]
    user = f"bo_{uuid.uuid4().hex[:8]}"
    secret = "s3cr3t-" + uuid.uuid4().hex[:6]
    sql(mysql_url, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{secret}'")
    try:
        sql(mysql_url, f"GRANT ALL ON `{database}`.* TO '{user}'@'%'")
        project = copy_example("vouchers-mysql", tmp_path)
        parsed = parse_url(mysql_url)
        where = f"{parsed.host or '127.0.0.1'}:{parsed.port or 3306}"
        url = f"mariadb://{user}:{secret}@{where}/{database}"
        result = run(["up"], project=project, url=url)
        assert result.exit_code == 0, result.stderr
        backup = run(["backup", "--full"], project=project, url=url)
        assert backup.exit_code == 0, backup.stderr
        shown = backup.output + backup.stderr
        assert secret not in shown
        catalog = (project / ".backout" / "backups" / "catalog.json").read_text()
        assert secret not in catalog and "***" in catalog
        wrong = run(["status"], project=project, url=url.replace(secret, "wrong-password"))
        assert wrong.exit_code == 4 and "wrong-password" not in wrong.stderr
    finally:
        sql(mysql_url, f"DROP USER IF EXISTS '{user}'@'%'")


def test_statement_timeout_is_enforced_by_mariadb(tmp_path: Path, mysql_url: str) -> None:
    project = write(
        tmp_path,
        {
            "migrations/001_t.up.sql": "CREATE TABLE t (id INT PRIMARY KEY);\n",
            "migrations/002_slow.up.sql": "INSERT INTO t SELECT SLEEP(5);\n",
            "backout.toml": 'layout = "plain"\nstatement_timeout = "1s"\n',
        },
    )
    result = run(["up"], project=project, url=mysql_url)
    assert result.exit_code == 3
    assert "ran longer than the statement timeout (1s)" in result.stderr
    assert sql(mysql_url, "SELECT count(*) FROM t") == [(0,)]
    assert states(project, mysql_url) == {"001_t": "applied", "002_slow": "pending"}
