"""Issue 7: the overhead of `backout rollback` over the `mariadb` client running the same script,
on MariaDB, on about a million rows.

    python bench/bench_mysql.py            # ~1 million rows (scale 135,000), 3 rounds per arm
    python bench/bench_mysql.py --quick    # ~100,000 rows, 3 rounds

The vouchers-mysql example (examples/vouchers-mysql), migrated and filled with
`backout.demo.sampledata.fill`, is kept as a template database; every timed command gets its own
fresh copy of it (`SHOW CREATE TABLE` + `INSERT ... SELECT`, server-side), so all arms start
from the identical state. Two scripts:

- **full rollback** (`..._rollback.sql`): `DELETE`, `DELETE`, `DROP TABLE`, `DROP TABLE`. It
  holds DDL, which MySQL commits implicitly, so backout runs it statement by statement and
  journals every statement;
- **clear-data partial** (`..._rollback.clear-data.sql`): a multi-table `UPDATE` over the
  balances, two `DELETE`s and an `UPDATE`: plain DML, so backout runs it in one transaction,
  with its `require`/`verify` queries.

Arms, interleaved (the order rotates each round), summarised by their medians:

- `mariadb <db> < script.sql`: the runbook's way; the baseline (autocommit, no checks);
- the same with the script's own `require` queries before it and `verify` queries after it:
  the work backout does to prove the rollback worked (the vouchers scripts verify that every
  balance is the sum of its transactions: a full aggregate over the token ledger);
- `backout rollback ... --backup none --i-accept-data-loss --yes --no-simulate`: lock, plan and
  impact counts, journal or transaction, require/verify, history;
- the same with the default scoped backup (`mariadb-dump`), for information.

Two ratios are printed: backout (no backup) over the bare client, and over the client doing
the same checks. Process start-up (`backout --version`) is reported apart: a constant.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ADMIN = os.environ.get("BACKOUT_BENCH_MYSQL", "mysql://root@127.0.0.1:3306/test")
FULL = "prisma/rollback/20240315000000_add_voucher_system_rollback.sql"
CLEAR = "prisma/rollback/20240315000000_add_voucher_system_rollback.clear-data.sql"


def _connect(database: str | None = None):  # type: ignore[no-untyped-def]
    import pymysql

    from backout.model.urls import parse_url

    url = parse_url(ADMIN)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.user,
        password=url.password or "",
        database=database,
        autocommit=True,
        charset="utf8mb4",
    )


def _url(database: str) -> str:
    return ADMIN.rsplit("/", 1)[0] + "/" + database


def _exec(database: str | None, *statements: str) -> None:
    conn = _connect(database)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def _backout() -> list[str]:
    script = Path(sys.executable).parent / "backout"
    return [str(script)] if script.exists() else [sys.executable, "-m", "backout"]


def make_template(scale: int, project: Path) -> tuple[str, dict[str, int]]:
    """A migrated, filled, analysed copy of the example; returns (database, rows per table)."""
    from backout.demo.sampledata import fill

    name = f"bench_tpl_{uuid.uuid4().hex[:8]}"
    _exec(None, f"CREATE DATABASE `{name}`")
    env = {**os.environ, "DATABASE_URL": _url(name), "NO_COLOR": "1"}
    subprocess.run(
        [*_backout(), "up", "-C", str(project)], env=env, check=True, capture_output=True
    )
    counts = fill("vouchers-mysql", _url(name), scale=scale)
    conn = _connect(name)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            for (table,) in cur.fetchall():
                cur.execute(f"ANALYZE TABLE `{table}`")
                cur.fetchall()
    finally:
        conn.close()
    return name, counts


def clone(template: str) -> str:
    """A fresh server-side copy of ``template`` (schema with foreign keys, rows, history)."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    conn = _connect(template)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute("SET SESSION FOREIGN_KEY_CHECKS = 0")
            cur.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
            tables = [str(r[0]) for r in cur.fetchall()]
            for table in tables:
                cur.execute(f"SHOW CREATE TABLE `{template}`.`{table}`")
                create = str(cur.fetchone()[1])
                cur.execute(f"USE `{name}`")
                cur.execute(create)
                cur.execute(f"INSERT INTO `{name}`.`{table}` SELECT * FROM `{template}`.`{table}`")
                cur.execute(f"USE `{template}`")
            cur.execute(f"USE `{name}`")
            for table in tables:
                cur.execute(f"ANALYZE TABLE `{table}`")
                cur.fetchall()
    finally:
        conn.close()
    return name


def drop(database: str) -> None:
    _exec(None, f"DROP DATABASE IF EXISTS `{database}`")


def timed(args: list[str], *, env: dict[str, str], stdin: Path | None = None) -> float:
    started = time.perf_counter()
    with stdin.open("rb") if stdin else open(os.devnull, "rb") as source:
        done = subprocess.run(args, env=env, stdin=source, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"failed ({done.returncode}): {' '.join(args)}\n{done.stderr.decode()[-2000:]}"
        )
    return elapsed


def client_args(database: str) -> list[str]:
    from backout.model.urls import parse_url

    url = parse_url(ADMIN)
    tool = shutil.which("mariadb") or shutil.which("mysql")
    if tool is None:
        raise SystemExit("the mariadb (or mysql) client is needed for the baseline")
    args = [tool, f"--host={url.host or '127.0.0.1'}", f"--port={url.port or 3306}"]
    if url.user:
        args.append(f"--user={url.user}")
    return [*args, database]


def with_checks(project: Path, script: str) -> Path:
    """The script with its own ``require`` queries before it and ``verify`` queries after it,
    as someone following the runbook carefully would run them by hand."""
    from backout.model.script import ScriptKind, load_script

    kind = ScriptKind.PARTIAL if script.count(".") > 1 else ScriptKind.ROLLBACK
    loaded = load_script(project / script, script, kind)
    checked = project.parent / (Path(script).name + ".checked.sql")  # outside the project
    requires = "".join(f"{c.sql};\n" for c in loaded.directives.require)
    verifies = "".join(f"{c.sql};\n" for c in loaded.directives.verify)
    checked.write_text(requires + loaded.text + "\n" + verifies, encoding="utf-8")
    return checked


def arms(
    project: Path, script: str, partial: str | None
) -> dict[str, tuple[list[str], Path | None]]:
    """Arm name → (backout command, or the client's input file)."""
    extra = ["--partial", partial] if partial else []
    base = [*_backout(), "rollback", "-C", str(project), *extra, "--yes", "--no-simulate"]
    return {
        "mariadb < script": ([], project / script),
        "mariadb < require + script + verify": ([], with_checks(project, script)),
        "backout rollback (no backup)": ([*base, "--backup", "none", "--i-accept-data-loss"], None),
        "backout rollback (scoped backup)": (base, None),
    }


def bench(
    template: str, project: Path, script: str, partial: str | None, rounds: int
) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    names = list(arms(project, script, partial))
    for round_ in range(rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for arm in order:
            database = clone(template)
            try:
                command, client_input = arms(project, script, partial)[arm]
                env = {**os.environ, "DATABASE_URL": _url(database), "NO_COLOR": "1"}
                from backout.model.urls import parse_url

                password = parse_url(ADMIN).password
                if password:
                    env["MYSQL_PWD"] = password  # the baseline client only; backout uses the URL
                if client_input is not None:
                    seconds = timed(client_args(database), env=env, stdin=client_input)
                else:
                    seconds = timed(command, env=env)
                timings.setdefault(arm, []).append(seconds)
            finally:
                drop(database)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="about 100,000 rows")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    scale = 13_500 if args.quick else 135_000
    with tempfile.TemporaryDirectory(prefix="backout-bench-mysql-") as scratch:
        project = Path(scratch) / "vouchers-mysql"
        shutil.copytree(REPO / "examples" / "vouchers-mysql", project)
        started = time.perf_counter()
        template, counts = make_template(scale, project)
        tables = ", ".join(f"{t} {n:,}" for t, n in counts.items())
        elapsed = time.perf_counter() - started
        print(f"template: {sum(counts.values()):,} rows ({tables}) in {elapsed:.1f} s")
        try:
            startup = statistics.median(
                timed([*_backout(), "--version"], env=dict(os.environ)) for _ in range(5)
            )
            print(f"backout start-up (backout --version): {startup:.2f} s\n")
            for title, script, partial in (
                ("full rollback: DELETE x2, DROP TABLE x2 (DDL: journaled)", FULL, None),
                (
                    "clear-data partial: UPDATE ... JOIN, DELETE x2, UPDATE (DML: one transaction)",
                    CLEAR,
                    "clear-data",
                ),
            ):
                timings = bench(template, project, script, partial, args.rounds)
                baseline = statistics.median(timings["mariadb < script"])
                print(title)
                for arm, samples in timings.items():
                    median = statistics.median(samples)
                    shown = ", ".join(f"{s:.2f}" for s in samples)
                    print(
                        f"  {arm:37} {median:7.2f} s  (x{median / baseline:.2f}, "
                        f"+{median - baseline:.2f} s)  samples {shown}"
                    )
                ours = statistics.median(timings["backout rollback (no backup)"])
                same_work = statistics.median(timings["mariadb < require + script + verify"])
                print(
                    f"  ratio backout / mariadb client: {ours / baseline:.2f}; "
                    f"/ the client doing the same checks: {ours / same_work:.2f} "
                    f"(+{ours - same_work:.2f} s)\n"
                )
        finally:
            drop(template)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    main()
