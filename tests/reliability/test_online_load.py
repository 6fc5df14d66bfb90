"""Online safety: a rollback under application load, with a long transaction in the way.

Application-like load: worker threads, each with its own connection, run small reads and
writes on the table the rollback alters (``items``) and on the table it drops (``audit``), and
record every query's latency and error. A "reporting" session keeps a transaction open on
``items`` (ACCESS SHARE) for a few seconds, so the rollback's ``ALTER TABLE items DROP COLUMN``
cannot get its lock at first.

What must hold (PostgreSQL):

- the rollback completes (retrying after each ``lock_timeout``);
- no application query waits longer than the lock timeout plus a margin: a DDL statement queued
  behind the long transaction blocks every later query on the table, and ``lock_timeout``
  bounds that;
- no application error other than those the rollback's own DDL must cause once it commits
  (``undefined_column`` on the dropped column, ``undefined_table`` on the dropped table);
- no row the application committed to ``items`` is lost (``audit`` is declared lost).

SQLite is not measured here: it has one writer at a time by design, so any write transaction
(backout's included) delays application writers for its whole length; ``busy_timeout`` is the
only knob. What backout controls is that reading never takes the write lock (bug B2, fixed:
test_regressions.py::test_plan_reads_while_an_application_writes_sqlite).
"""

from __future__ import annotations

import random
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.common import (
    Artifacts,
    cli,
    master_seed,
    pg_connect,
    record_result,
    spawn,
)

LOCK_TIMEOUT = 0.5
#: scheduling noise on a busy 2-core machine; without lock_timeout the wait would be the
#: long transaction's whole length (LONG_TRANSACTION)
MARGIN = 1.0
WORKERS = 4
LONG_TRANSACTION = 3.0

FILES = {
    "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
    "prisma/migrations/20240101000000_base/migration.sql": """
        CREATE TABLE items (id serial PRIMARY KEY, qty integer NOT NULL, note text);
        INSERT INTO items (qty, note) SELECT g, 'seed' FROM generate_series(1, 20000) g;
    """,
    "prisma/migrations/20240201000000_extra/migration.sql": """
        ALTER TABLE items ADD COLUMN extra text;
        CREATE TABLE audit (id serial PRIMARY KEY, item_id integer NOT NULL, at timestamptz
            NOT NULL DEFAULT now());
        INSERT INTO audit (item_id) SELECT id FROM items WHERE id % 10 = 0;
    """,
    "prisma/rollback/20240201000000_extra_rollback.sql": """
        -- backout:risk HIGH
        -- backout:data-loss every audit row, and items.extra
        DROP TABLE audit;
        ALTER TABLE items DROP COLUMN extra;
    """,
}

#: SQLSTATEs the rollback's DDL must cause once committed: the dropped column and table
EXPECTED = {"42703", "42P01"}


class Load:
    """Worker threads doing small reads and writes; every latency and error recorded."""

    def __init__(self, url: str, seed: int) -> None:
        self.url = url
        self.seed = seed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.latencies: list[tuple[float, float, str]] = []
        self.errors: Counter[str] = Counter()
        self.inserted: list[int] = []
        self.threads = [threading.Thread(target=self.work, args=(n,)) for n in range(WORKERS)]

    def work(self, n: int) -> None:
        """One application connection."""
        rng = random.Random(f"{self.seed}:{n}")
        with pg_connect(self.url, application_name=f"app-{n}") as conn:
            while not self.stop.is_set():
                kind = rng.choices(
                    ["read", "update", "insert", "extra", "audit"], [40, 25, 15, 10, 10]
                )[0]
                key = rng.randint(1, 20000)
                started = time.monotonic()
                try:
                    if kind == "read":
                        conn.execute("SELECT qty FROM items WHERE id = %s", (key,)).fetchall()
                    elif kind == "update":
                        conn.execute("UPDATE items SET qty = qty + 1 WHERE id = %s", (key,))
                    elif kind == "insert":
                        row = conn.execute(
                            "INSERT INTO items (qty, note) VALUES (1, 'app') RETURNING id"
                        ).fetchone()
                        with self.lock:
                            self.inserted.append(int(row[0]))
                    elif kind == "extra":
                        conn.execute("SELECT extra FROM items WHERE id = %s", (key,)).fetchall()
                    else:
                        conn.execute("INSERT INTO audit (item_id) VALUES (%s)", (key,))
                    code = "ok"
                except Exception as exc:  # noqa: BLE001 - every application error is counted
                    code = getattr(exc, "sqlstate", None) or type(exc).__name__
                elapsed = time.monotonic() - started
                with self.lock:
                    self.latencies.append((started, elapsed, kind))
                    if code != "ok":
                        self.errors[f"{kind}:{code}"] += 1
                time.sleep(0.005)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def _project(root: Path) -> Path:
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


@pytest.mark.postgres
def test_rollback_under_load_postgres(
    tmp_path: Path, pg_database: Callable[[], str], artifacts: Artifacts
) -> None:
    """No application query delayed beyond lock_timeout + margin; only the DDL's own errors."""
    url = pg_database()
    project = _project(tmp_path / "p")
    applied = cli(["up"], project=project, url=url, artifacts=artifacts, label="load-up")
    assert applied.exit_code == 0, applied.describe()
    with pg_connect(url) as conn:
        audit_rows = conn.execute("SELECT count(*) FROM audit").fetchone()[0]
    import psycopg

    with Load(url, master_seed()) as load:
        time.sleep(1.0)  # the load runs alone for a while
        reporter = psycopg.connect(url, application_name="long-report")
        reporter.execute("SELECT count(*) FROM items")  # ACCESS SHARE, held until commit
        held_until = time.monotonic() + LONG_TRANSACTION
        timer = threading.Timer(LONG_TRANSACTION, reporter.commit)
        timer.start()
        rollback_started = time.monotonic()
        child = spawn(
            [
                "rollback",
                "--to",
                "20240101000000",
                "--yes",
                "--no-simulate",
                "--lock-timeout",
                f"{int(LOCK_TIMEOUT * 1000)}ms",
            ],
            project=project,
            url=url,
            artifacts=artifacts,
            label="load-rollback",
        )
        outcome = child.wait(timeout=300)
        rollback_ended = time.monotonic()
        timer.join()
        reporter.close()
        time.sleep(1.0)  # and after it
    assert outcome.exit_code == 0, outcome.describe()
    assert held_until < rollback_ended, "the long transaction ended after the rollback?"

    threshold = LOCK_TIMEOUT + MARGIN
    delayed = [(s, e, k) for s, e, k in load.latencies if e > threshold]
    during = [x for x in load.latencies if rollback_started <= x[0] <= rollback_ended]
    unexpected = {k: v for k, v in load.errors.items() if k.split(":")[1] not in EXPECTED}
    ddl_errors = {k: v for k, v in load.errors.items() if k.split(":")[1] in EXPECTED}
    # Errors the DDL causes may only hit the dropped column and table.
    assert all(k.split(":")[0] in {"extra", "audit"} for k in ddl_errors), ddl_errors
    with pg_connect(url) as conn:
        present = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM items WHERE id = ANY(%s)", (load.inserted,)
            ).fetchall()
        }
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'items'"
            ).fetchall()
        }
    lost = len(set(load.inserted) - present)
    attempts = outcome.stdout.split(" attempt(s)")[0].rsplit(" ", 1)[-1]
    figures: dict[str, Any] = {
        "workers": WORKERS,
        "application_queries": len(load.latencies),
        "queries_during_rollback": len(during),
        "lock_timeout_s": LOCK_TIMEOUT,
        "threshold_s": threshold,
        "delayed_beyond_threshold": len(delayed),
        "max_latency_s": round(max(e for _, e, _ in load.latencies), 3),
        "p99_latency_during_rollback_s": round(
            sorted(e for _, e, _ in during)[int(len(during) * 0.99) - 1] if during else 0.0, 3
        ),
        "long_transaction_s": LONG_TRANSACTION,
        "rollback_seconds": round(rollback_ended - rollback_started, 2),
        "rollback_attempts": attempts,
        "errors_caused_by_the_ddl": dict(ddl_errors),
        "unexpected_errors": dict(unexpected),
        "rows_committed_by_the_application": len(load.inserted),
        "application_rows_lost": lost,
        "declared_loss_audit_rows": audit_rows,
    }
    record_result("online_load", figures)
    print(figures)
    assert "extra" not in columns
    assert not delayed, f"{len(delayed)} application queries waited more than {threshold}s"
    assert not unexpected, unexpected
    assert lost == 0, f"{lost} committed application rows are gone"
    assert len(during) > 50, "the load did not run during the rollback"
