"""Issue 13, item 16: the SQLite vouchers example's ``reverse-tokens`` runs as SQLite runs well,
with the same result as the PostgreSQL example's; ``plan`` warns when a partial rollback's
statement would visit a large table once per row, as the database's own EXPLAIN says.

(How long the rewritten script takes is measured in bench/, not timed here.)
"""

from __future__ import annotations

from pathlib import Path

from backout.demo.sampledata import fill
from tests.helpers import copy_example, db_state, run, sql, write

PARTIAL = ["--partial", "reverse-tokens", "--param", "since=2024-06-01"]
SCRIPT = "prisma/rollback/20240315000000_add_voucher_system_rollback.reverse-tokens.sql"
#: the example's balance update as it was: a correlated subquery per balance, which SQLite
#: runs as a search of the whole ("source", "createdAt") range per user (49 s at 10k users)
CORRELATED = """\
-- backout:risk HIGH
-- backout:param since timestamptz
UPDATE "UserTokenBalance"
SET "balance" = "balance" - (
        SELECT sum(tt."amount")
        FROM "TokenTransaction" AS tt
        WHERE tt."userId" = "UserTokenBalance"."userId"
          AND tt."source" = 'voucher_redemption'
          AND tt."createdAt" > strftime('%Y-%m-%d %H:%M:%f', :since)
    )
WHERE "userId" IN (
    SELECT "userId" FROM "TokenTransaction"
    WHERE "source" = 'voucher_redemption'
      AND "createdAt" > strftime('%Y-%m-%d %H:%M:%f', :since)
);
"""


def example(tmp_path: Path, name: str, url: str, scale: int) -> Path:
    root = copy_example(name, tmp_path)
    assert run(["up"], project=root, url=url).exit_code == 0
    fill(name, url, scale=scale)
    return root


def test_sqlite_plan_warns_about_the_correlated_form(tmp_path: Path, sqlite_url: str) -> None:
    root = example(tmp_path, "vouchers-sqlite", sqlite_url, scale=1500)
    before = db_state(sqlite_url)
    sound = run(["plan", *PARTIAL], project=root, url=sqlite_url)
    assert sound.exit_code == 0, sound.output
    assert "per row" not in sound.output

    write(root, {SCRIPT: CORRELATED})
    slow = run(["plan", *PARTIAL], project=root, url=sqlite_url)
    assert slow.exit_code == 0, slow.output  # a warning: the plan is still possible
    text = " ".join(slow.output.split())
    assert f"{SCRIPT}:3: runs a subquery once per row that visits about" in text
    assert "rows of TokenTransaction each time (EXPLAIN QUERY PLAN: SEARCH tt USING INDEX" in text
    assert db_state(sqlite_url) == before


def test_sqlite_result_equals_postgres(tmp_path: Path, sqlite_url: str, pg_url: str) -> None:
    lite = example(tmp_path / "lite", "vouchers-sqlite", sqlite_url, scale=300)
    pg = example(tmp_path / "pg", "vouchers", pg_url, scale=300)
    args = ["rollback", *PARTIAL, "--backup", "none", "--i-accept-data-loss", "--yes"]
    for root, url in ((lite, sqlite_url), (pg, pg_url)):
        result = run(args, project=root, url=url)
        assert result.exit_code == 0, result.output
    queries = (
        'SELECT "userId", "balance" FROM "UserTokenBalance" ORDER BY 1',
        'SELECT "id", "userId", "amount", "source" FROM "TokenTransaction" ORDER BY 1',
        'SELECT "id", "currentUses" FROM "Voucher" ORDER BY 1',
    )
    for query in queries:
        lite_rows = [tuple(str(v) for v in row) for row in sql(sqlite_url, query)]
        pg_rows = [tuple(str(v) for v in row) for row in sql(pg_url, query)]
        assert lite_rows == pg_rows, query
    reversed_rows = sql(
        sqlite_url,
        """SELECT count(*) FROM "TokenTransaction" WHERE source = 'voucher_redemption'
           AND "createdAt" > '2024-06-01'""",
    )
    assert reversed_rows == [(0,)]


def test_postgres_plan_warns_about_a_seq_scan_per_row(tmp_path: Path, pg_url: str) -> None:
    root = write(
        tmp_path / "p",
        {
            "backout.toml": 'layout = "plain"\n',
            "migrations/001_t.up.sql": """
                CREATE TABLE owners (id int PRIMARY KEY, items int NOT NULL DEFAULT 0);
                CREATE TABLE items (id int PRIMARY KEY, owner int NOT NULL);
                INSERT INTO owners (id) SELECT g FROM generate_series(1, 50) g;
                INSERT INTO items SELECT g, g % 50 + 1 FROM generate_series(1, 5000) g;
            """,
            "migrations/001_t.down.sql": "-- backout:risk HIGH\nDROP TABLE items, owners;\n",
            "migrations/001_t.down.recount.sql": (
                "-- backout:risk MEDIUM\n"
                "UPDATE owners\n"
                "SET items = (SELECT count(*) FROM items i WHERE i.owner = owners.id);\n"
            ),
        },
    )
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    result = run(["plan", "--partial", "recount"], project=root, url=pg_url)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "migrations/001_t.down.recount.sql:2: runs a subquery once per row" in text
    assert "(EXPLAIN: Seq Scan on items" in text
    sql(pg_url, "CREATE INDEX items_owner_idx ON items (owner)")
    sql(pg_url, "ANALYZE items")
    indexed = run(["plan", "--partial", "recount"], project=root, url=pg_url)
    assert "per row" not in indexed.output


def test_mysql_plan_warns_about_a_dependent_subquery(tmp_path: Path, mysql_url: str) -> None:
    numbers = ", ".join(f"({n}, {n % 50 + 1})" for n in range(1, 5001))
    owners = ", ".join(f"({n})" for n in range(1, 51))
    root = write(
        tmp_path / "p",
        {
            "backout.toml": 'layout = "plain"\n',
            "migrations/001_t.up.sql": (
                "CREATE TABLE owners (id int PRIMARY KEY, items int NOT NULL DEFAULT 0);\n"
                "CREATE TABLE items (id int PRIMARY KEY, owner int NOT NULL);\n"
                f"INSERT INTO owners (id) VALUES {owners};\n"
                f"INSERT INTO items VALUES {numbers};\n"
            ),
            "migrations/001_t.down.sql": (
                "-- backout:risk HIGH\nDROP TABLE items;\nDROP TABLE owners;\n"
            ),
            "migrations/001_t.down.recount.sql": (
                "-- backout:risk MEDIUM\n"
                "UPDATE owners\n"
                "SET items = (SELECT count(*) FROM items i WHERE i.owner = owners.id);\n"
            ),
        },
    )
    assert run(["up"], project=root, url=mysql_url).exit_code == 0
    sql(mysql_url, "ANALYZE TABLE items")
    result = run(["plan", "--partial", "recount"], project=root, url=mysql_url)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "migrations/001_t.down.recount.sql:2: runs a subquery once per row" in text
    assert "(EXPLAIN: DEPENDENT SUBQUERY on i: type ALL" in text
