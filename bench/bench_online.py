"""Issue 3: online safety. Does a rollback stall the application behind a long transaction?

    python bench/bench_online.py            # long transaction of 10 s, 4 client threads
    python bench/bench_online.py --quick    # 6 s

The scene, on a fresh copy of the giftregistry example (5,000 registries, latest applied
migration `20250720000000_encrypt_access_tokens`, whose rollback deletes a few sessions and then
runs `ALTER TABLE "sessions" DROP COLUMN ...`, which needs an ACCESS EXCLUSIVE lock):

- t = 0: the "application" starts: 4 threads, each with its own connection, receive a request
  every 20 ms (open loop: on a fixed schedule, answered or not) and run one small query for it
  (70 % read of one session by id, 15 % update of one session's `"expires"`, 15 % read of a
  registry by slug). A query's latency counts from its request's arrival, so a stalled
  client's backlog counts as delayed too;
- t = 1 s: a long transaction (a report) takes `LOCK TABLE "sessions" IN ACCESS SHARE MODE`
  and holds it for the hold time, then commits. On its own it blocks nobody;
- t = 2 s: the rollback starts; the application runs until 2 s after it finished.

Arms, each on a fresh database: no rollback at all (the baseline: what the long transaction
alone does to the application); `psql -1 -f <rollback>`, whose ALTER waits in the lock queue
for the whole long transaction, and every query on `sessions` queues behind it;
`backout rollback` with its default 2 s lock timeout (each attempt gives up after 2 s, undoes
itself and retries with backoff) and with `--lock-timeout 500ms`.

Reported per arm: queries, how many were delayed more than 1 s and more than the arm's lock
timeout, the worst latency, errors, and how the rollback ended. Target: backout delays no
query beyond its lock timeout; naive psql stalls the application for the whole long
transaction.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    backout_cmd,
    copy_example,
    machine_facts,
    pg_clone,
    pg_exec,
    pg_query,
    pg_template,
    psql_cmd,
    run,
    table,
)

SCRIPT = "prisma/rollback/20250720000000_encrypt_access_tokens_rollback.sql"
THREADS = 4
READ_SESSION = 'SELECT "id", "shop", "accessToken", "scope" FROM "sessions" WHERE "id" = %s'
PAUSE = 0.02
_ATTEMPTS = re.compile(r"(\d+) attempt\(s\)")


def _build(project: Path, scale: int):
    def build(url: str) -> None:
        from backout.demo.sampledata import fill

        run([*backout_cmd(), "up", "-C", str(project), "--url", url])
        rows = fill("giftregistry", url, scale=scale, seed=1)
        print(f"  filled {sum(rows.values()):,} rows")
        # The scene's rollback is the latest migration's: undo the newest one first.
        run(
            [
                *backout_cmd(),
                "rollback",
                "-C",
                str(project),
                "--url",
                url,
                "--steps",
                "1",
                "--backup",
                "none",
                "--i-accept-data-loss",
                "--yes",
                "--no-simulate",
            ]
        )
        pg_exec(url, "VACUUM ANALYZE", "CHECKPOINT")

    return build


@dataclass
class Sample:
    started: float
    latency: float
    kind: str
    error: str | None = None


@dataclass
class Application:
    """Client threads issuing small queries and recording their latencies."""

    url: str
    session_ids: list[str]
    slugs: list[str]
    t0: float = field(default_factory=time.perf_counter)
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def worker(self, seed: int) -> None:
        import psycopg

        rng = random.Random(seed)
        conn = psycopg.connect(self.url, autocommit=True)
        # Open loop: requests arrive on a fixed schedule whether or not the previous one was
        # answered, and a query's latency counts from its arrival (a stalled client would
        # otherwise simply stop issuing queries, hiding the stall).
        arrival = self.t0 + PAUSE * seed / THREADS
        try:
            while not self.stop.is_set():
                wait = arrival - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                roll = rng.random()
                if roll < 0.70:
                    kind = "read session"
                    sql = READ_SESSION
                    params: tuple[object, ...] = (rng.choice(self.session_ids),)
                elif roll < 0.85:
                    kind = "update session"
                    sql = 'UPDATE "sessions" SET "expires" = now() WHERE "id" = %s'
                    params = (rng.choice(self.session_ids),)
                else:
                    kind = "read registry"
                    sql = 'SELECT "id", "title", "status" FROM "registries" WHERE "slug" = %s'
                    params = (rng.choice(self.slugs),)
                started = arrival
                arrival += PAUSE
                error = None
                try:
                    conn.execute(
                        sql, params
                    ).fetchall() if kind != "update session" else conn.execute(sql, params)
                except psycopg.Error as exc:
                    error = type(exc).__name__
                    if conn.closed:
                        conn = psycopg.connect(self.url, autocommit=True)
                latency = time.perf_counter() - started
                with self.lock:
                    self.samples.append(Sample(started, latency, kind, error))
        finally:
            conn.close()

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        return threads


def _long_transaction(url: str, hold: float, done: threading.Event) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute('LOCK TABLE "sessions" IN ACCESS SHARE MODE')
        time.sleep(hold)
        conn.commit()
    done.set()


@dataclass
class Outcome:
    arm: str
    lock_timeout: float | None
    samples: list[Sample]
    rollback: str
    rollback_seconds: float
    long_ended: float


def _scene(
    url: str, arm: str, command: list[str] | None, hold: float, lock_timeout: float | None
) -> Outcome:
    session_ids = [
        str(r[0])
        for r in pg_query(url, 'SELECT "id" FROM "sessions" WHERE "accessToken" IS NOT NULL')
    ]
    slugs = [str(r[0]) for r in pg_query(url, 'SELECT "slug" FROM "registries" LIMIT 2000')]
    app = Application(url, session_ids, slugs)
    t0 = app.t0
    threads = app.start()
    time.sleep(1.0)
    ended = threading.Event()
    long_tx = threading.Thread(target=_long_transaction, args=(url, hold, ended), daemon=True)
    long_tx.start()
    time.sleep(1.0)
    rollback = "none"
    started = time.perf_counter()
    if command is not None:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        attempts = _ATTEMPTS.search(done.stdout)
        last = (done.stderr.strip().splitlines() or [""])[-1]
        rollback = f"exit {done.returncode}" + (
            f", {attempts[1]} attempt(s)"
            if attempts
            else (f": {last[:70]}" if done.returncode else "")
        )
    finished = time.perf_counter()
    long_tx.join()
    long_end = time.perf_counter()
    time.sleep(max(0.0, 2.0 - (time.perf_counter() - max(finished, long_end))))
    app.stop.set()
    for thread in threads:
        thread.join()
    for sample in app.samples:
        sample.started -= t0
    return Outcome(arm, lock_timeout, app.samples, rollback, finished - started, long_end - t0)


def _stalled(samples: list[Sample], threshold: float = 0.1) -> float:
    """Seconds during which some query waited longer than ``threshold`` (merged intervals)."""
    spans = sorted((s.started, s.started + s.latency) for s in samples if s.latency > threshold)
    total, end = 0.0, float("-inf")
    for start, stop in spans:
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="hold the long transaction 6 s")
    parser.add_argument("--hold", type=float, help="seconds the long transaction holds its lock")
    parser.add_argument("--scale", type=int, default=5_000, help="giftregistry registries")
    args = parser.parse_args()
    hold = args.hold or (6.0 if args.quick else 10.0)
    os.environ.pop("DATABASE_URL", None)
    print(f"machine: {machine_facts()}")
    with tempfile.TemporaryDirectory(prefix="backout-bench-") as folder:
        tmp = Path(folder)
        project = copy_example("giftregistry", tmp)
        print(f"building the template (giftregistry, scale {args.scale:,})")

        def backout(timeout: str) -> list[str]:
            return [
                *backout_cmd(),
                "rollback",
                "-C",
                str(project),
                "--backup",
                "none",
                "--i-accept-data-loss",
                "--yes",
                "--no-simulate",
                "--lock-timeout",
                timeout,
            ]

        arms: list[tuple[str, list[str] | None, float | None]] = [
            ("long transaction alone, no rollback (baseline)", None, None),
            ("psql -1 -f rollback.sql (naive)", [], None),
            ("backout rollback (lock timeout 2s, default)", backout("2s"), 2.0),
            ("backout rollback --lock-timeout 500ms", backout("500ms"), 0.5),
        ]
        outcomes = []
        with pg_template(_build(project, args.scale), label="online") as template:
            for name, command, timeout in arms:
                with pg_clone(template) as url:
                    argv: list[str] | None
                    if command is None:
                        argv = None
                    elif not command:
                        argv = [*psql_cmd(url), "-1", "-f", str(project / SCRIPT)]
                    else:
                        argv = [*command, "--url", url]
                    outcome = _scene(url, name, argv, hold, timeout)
                    outcomes.append(outcome)
                    worst = max(s.latency for s in outcome.samples)
                    print(
                        f"  {name}: {len(outcome.samples)} queries, worst {worst:.2f}s, "
                        f"{outcome.rollback}"
                    )
    rows: list[tuple[object, ...]] = []
    for outcome in outcomes:
        ok = outcome.samples
        over_1 = sum(1 for s in ok if s.latency > 1.0)
        limit = outcome.lock_timeout
        over_limit = (
            str(sum(1 for s in ok if s.latency > limit + 0.1)) if limit is not None else "-"
        )
        worst = max(s.latency for s in ok)
        errors = sum(1 for s in ok if s.error)
        rows.append(
            (
                outcome.arm,
                len(ok),
                over_1,
                over_limit,
                f"{worst:.2f}",
                f"{_stalled(ok):.1f}",
                errors,
                f"{outcome.rollback_seconds:.1f}s" if outcome.rollback != "none" else "-",
                outcome.rollback,
            )
        )
    table(
        f"application queries while a transaction holds a lock on sessions for {hold:g} s "
        f"({THREADS} threads, a request every {PAUSE * 1000:.0f} ms each, open loop)",
        (
            "arm",
            "queries",
            "> 1 s",
            "> lock timeout",
            "worst s",
            "stalled s",
            "errors",
            "rollback took",
            "rollback",
        ),
        rows,
    )
    print(
        "\n'> lock timeout' counts queries delayed more than the arm's lock timeout + 0.1 s; "
        "'stalled s' is how long, in all, some query was waiting more than 0.1 s. "
        "The long transaction holds its lock from t=1 s to t=%.0f s; the rollback starts at "
        "t=2 s." % (1 + hold)
    )


if __name__ == "__main__":
    main()
