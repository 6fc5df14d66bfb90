"""Regenerate docs/reliability.md from a real run of the reliability suite.

    python -m tests.reliability.report                 # default sizes (what CI runs)
    python -m tests.reliability.report --trials 500    # a bigger run
    python -m tests.reliability.report --seed 12345    # replay a seed

It runs ``pytest tests/reliability`` with a fresh results folder, then writes the figures the
tests recorded (nothing is typed in) with the date, the machine, the versions, the exact command
and the runtime. ``--results DIR`` renders an existing results folder instead of running.
The exit code is pytest's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reliability.md"


def _run(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout or done.stderr).strip()


def machine_facts() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    system = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                system = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    from backout import __version__

    server = "?"
    try:
        import psycopg

        admin = os.environ.get("BACKOUT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
        with psycopg.connect(admin, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            server = str(row[0]) if row else "?"
    except Exception as exc:  # noqa: BLE001 - a fact we could not read is shown as such
        server = f"not reachable ({type(exc).__name__})"
    commit = _run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"])
    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "system": f"{system} ({platform.machine()})",
        "Python": platform.python_version(),
        "backout": f"{__version__} (git {commit}" + (", src/ modified)" if dirty else ")"),
        "PostgreSQL server": server,
        "pg_dump": _run(["pg_dump", "--version"]),
        "SQLite": sqlite3.sqlite_version,
    }


def load(folder: Path) -> dict[str, Any]:
    """Every results file, by name."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(folder.glob("*.json"))
    }


# --- rendering --------------------------------------------------------------------------------


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(c).replace("|", "\\|").replace("\n", " ") for c in row]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _crash_section(title: str, data: dict[str, Any] | None, cut: bool) -> list[str]:
    if not data:
        return [f"### {title}", "", "Not run in this session (server missing?).", ""]
    out = [f"### {title}", ""]
    head = ["command", "runs", "interrupted mid-run", "ended first", "left before", "left after"]
    head += ["in between", "survived"]
    if cut:
        head += ["exit codes"]
    rows = []
    for command, f in data["per_command"].items():
        row = [
            command,
            f["trials"],
            f["killed"],
            f["finished_before_kill"],
            f["left_before"],
            f["left_after"],
            f["in_between"],
            f["survived"],
        ]
        if cut:
            codes = ", ".join(f"{k}: {v}" for k, v in f["exit_codes"].items())
            row += [codes]
        rows.append(row)
    out += _table(head, rows)
    out.append("")
    out.append(
        f"{data['trials']} trials in {data['lanes']} lane(s), seed {data['seed']}; "
        f"{data['survived']} survived every check."
    )
    lane_seconds = ", ".join(f"{s:g} s" for s in data["lane_seconds"])
    out.append(f"Lane run times: {lane_seconds}.")
    extras = []
    orphans = sum(f["orphaned_processes"] for f in data["per_command"].values())
    if orphans:
        extras.append(
            f"{orphans} child process(es) (pg_dump / pg_restore) outlived a killed backout and "
            "were waited for"
        )
    if data.get("stray_backup_files"):
        extras.append(
            f"{data['stray_backup_files']} uncatalogued file(s) left in the backup folders by "
            "killed runs (named by `backout backups` as uncatalogued; never restored from, "
            "not deleted automatically)"
        )
    if "leftover_scratch_databases" in data:
        extras.append(
            f"{len(data['leftover_scratch_databases'])} scratch database(s) left on the server "
            "by killed plan simulations"
        )
    without = sum(f["after_state_without_event"] for f in data["per_command"].values())
    if without:
        extras.append(f"{without} trial(s) reached the after-state without its event")
    if data.get("max_backend_wait"):
        extras.append(
            f"longest wait for the server to drop a killed run's connections: "
            f"{data['max_backend_wait']:g} s"
        )
    for extra in extras:
        out.append(f"- {extra}.")
    out.append("")
    phases: dict[str, int] = {}
    for f in data["per_command"].values():
        for phase, count in f["phases"].items():
            phases[phase] = phases.get(phase, 0) + count
    if phases:
        out.append("Where the interrupted runs were (from the progress they had printed):")
        out.append("")
        ranked = sorted(phases.items(), key=lambda kv: -kv[1])
        out += _table(["phase", "runs"], [[p, c] for p, c in ranked[:14]])
        out.append("")
    if cut and data.get("error_lines"):
        out.append("Error lines seen (distinct, first 8):")
        out.append("")
        out += [f"- {_code(line[:200])}" for line in data["error_lines"][:8]]
        out.append("")
    if data.get("failures"):
        out.append("**Failed trials:**")
        out.append("")
        for t in data["failures"][:10]:
            out.append(
                f"- lane {t['lane']} cycle {t['cycle']} {t['command']} after {t['delay']} s: "
                + "; ".join(p[:200] for p in t["problems"])
            )
        out.append("")
    return out


def _settings(results: dict[str, Any], meta: dict[str, Any]) -> str:
    got = results.get("settings")
    if not got:
        return str(meta.get("settings", "?"))
    return (
        f"BACKOUT_RELIABILITY_TRIALS={got['trials']} (kills per command and database), "
        f"BACKOUT_RELIABILITY_CUT_TRIALS={got['cut_trials']}, "
        f"BACKOUT_RELIABILITY_FUZZ={got['fuzz']}, BACKOUT_RELIABILITY_SEED={got['seed']}"
        + (f", CI={got['ci']}" if got.get("ci") else "")
    )


def _lane_rows(results: dict[str, Any]) -> list[list[Any]]:
    """One row per lane of the unreported-states and secrets lanes (issue 12)."""
    rows: list[list[Any]] = []
    kills = results.get("mariadb_kills", {})
    for key, title in (
        ("restore", "MariaDB kill -9 during `restore`"),
        ("undo_partial", "MariaDB kill -9 during `rollback --undo-partial`'s restore"),
    ):
        lane = kills.get(key)
        if lane:
            left = sorted({t["left"] for t in lane["trials"]})
            rows.append([title, len(lane["trials"]), lane["held"], "left: " + ", ".join(left)])
    backup = results.get("backup_during_restore", {}).get("mariadb")
    if backup:
        labelled = sum(1 for r in backup["rounds"] if r["labelled_half_restored"])
        rows.append(
            [
                "`backup --full` during a MariaDB restore",
                len(backup["rounds"]),
                backup["held"],
                f"{labelled} backup(s) of a half-restored database, labelled so",
            ]
        )
    tampered = results.get("tampered_backup", {})
    if tampered:
        rows.append(
            [
                "tampered backup, checksum recomputed ("
                + ", ".join(sorted({k.rsplit("_", 1)[0] for k in tampered}))
                + ")",
                len(tampered),
                sum(1 for v in tampered.values() if v.get("refused")),
                "refused before any change",
            ]
        )
    secrets = results.get("client_secrets", {})
    if secrets:
        tools = sorted({t for v in secrets.values() for t in v.get("tools_seen", [])})
        rows.append(
            [
                "password on a client program's command line (`ps` sampled)",
                len(secrets),
                len(secrets),
                "client programs seen: " + ", ".join(tools),
            ]
        )
    sweep = results.get("scratch_sweep", {})
    kill = sweep.get("kill_9_postgresql")
    if kill:
        rows.append(["scratch databases left by kill -9, swept", kill["trials"], kill["held"], ""])
    sigterm = results.get("sigterm", {}).get("postgresql")
    if sigterm:
        codes = sorted({str(t["exit"]) for t in sigterm["trials"]})
        rows.append(
            [
                "SIGTERM at random moments (`up`, `rollback`)",
                len(sigterm["trials"]),
                sigterm["held"],
                "exit codes: " + ", ".join(codes),
            ]
        )
    return rows


def _states_section(results: dict[str, Any]) -> list[str]:
    """Half-finished states, tampering, secrets on command lines, leftovers, SIGTERM."""
    rows = _lane_rows(results)
    out = ["", "## States nobody reports, secrets, leftovers", ""]
    if not rows:
        return [*out, "Not run in this session."]
    out += [
        "Each lane checks that whatever a kill, a concurrent command, a tampered file or a "
        "signal leaves is told truthfully (`status`, `check`, history) and can be finished, "
        "that no password reaches a client program's command line, and that nothing is left "
        "behind.",
        "",
    ]
    return out + _table(["lane", "trials", "held", "notes"], rows)


def _data_safety_section(results: dict[str, Any]) -> list[str]:
    """Checks that write, and ``?schema=`` scoping (tests/reliability/test_data_safety.py)."""
    checks = results.get("check_writes", {})
    scope = results.get("schema_scope", {})
    lines = ["## Data safety: checks that write, and schema scoping", ""]
    lines += [
        "A rollback's `require`/`verify` query that tries to delete every user, run through "
        "every path that runs a check ("
        + ", ".join(f"`{p}`" for p in next((v["paths"] for v in checks.values()), []))
        + "), with the script in one transaction and (hidden writes) `transaction off`. "
        "A write the text shows (a data-modifying CTE, DML) must be refused before anything "
        "runs (exit 2, file and line); one it hides (a stored function that deletes) must be "
        "undone by the savepoint or read-only transaction the check runs in. After every run "
        "the table must hold all its rows.",
        "",
    ]
    lines += _table(
        ["database", "runs", "refused before running", "exit codes", "runs that changed rows"],
        [
            [
                name,
                v["runs"],
                v["refused_before_running"],
                ", ".join(f"{k}: {n}" for k, n in sorted(v["exit_codes"].items())),
                v["runs_that_changed_rows"],
            ]
            for name, v in sorted(checks.items())
        ]
        or [["not run", "", "", "", ""]],
    )
    lines += [
        "",
        "Two Prisma projects in one PostgreSQL database (`?schema=a`, `?schema=b`) beside a "
        "table of no project (`public.audit`): project a runs "
        + ", ".join(f"`{c}`" for c in scope.get("commands", []))
        + f" ({scope.get('runs', '?')} runs with both `up`s); b's and public's tables, rows "
        f"({scope.get('rows_outside', '?')}) and content checksums are compared after each. "
        "Commands that touched another schema: "
        + (", ".join(scope.get("commands_that_touched_another_schema", [])) or "none")
        + ".",
        "",
    ]
    return lines


def render(results: dict[str, Any], meta: dict[str, Any]) -> str:
    """docs/reliability.md."""
    facts = meta["facts"]
    bad = results.get("bad_inputs", {})
    crash = [results.get("crash_postgresql"), results.get("crash_sqlite")]
    cuts = [results.get("cut_postgresql"), results.get("cut_sqlite")]

    def landed(group: list[dict[str, Any] | None]) -> tuple[int, int, int]:
        commands = [f for c in group if c for f in c["per_command"].values()]
        return (
            sum(f["killed"] for f in commands),
            sum(f.get("killed_survived", f["survived"]) for f in commands),
            sum(f["trials"] for f in commands),
        )

    kills, kills_ok, kill_runs = landed(crash)
    cut_total, cut_ok, cut_runs = landed(cuts)
    bad_bugs = sum(1 for v in bad.values() if v["verdict"] != "ok")
    between = sum(f["in_between"] for c in crash + cuts if c for f in c["per_command"].values())
    concurrency = results.get("concurrency", {})
    concurrent_runs = sum(v.get("runs", 0) for v in concurrency.values() if isinstance(v, dict))
    load_ = results.get("online_load", {})
    bad_ok = sum(1 for v in bad.values() if v["verdict"] == "ok")
    secrets = results.get("secrets", {})
    fuzz = results.get("fuzz", {})
    bugs = results.get("known_bugs", {})
    regressions = results.get("regressions", {})
    timing = results.get("timing", {})
    checks = results.get("check_writes", {})
    scope = results.get("schema_scope", {})

    lines = [
        "# Reliability: measured",
        "",
        "<!-- Generated by `python -m tests.reliability.report`; do not edit by hand. -->",
        "",
        "backout is for the worst moment of a deploy, so it must never make things worse. This",
        "page is produced by one command that runs the reliability suite (`tests/reliability/`,",
        "also part of the README's `pytest`) and writes down what it measured. Every figure",
        "below comes from that run.",
        "",
        f"- **Date**: {meta['date']}",
        f"- **Command**: `{meta['command']}`",
        f"- **Suite run time**: {meta['seconds']:.0f} s ({meta['pytest']})",
        f"- **Settings**: {_settings(results, meta)}",
    ]
    lines += [f"- **{k}**: {v}" for k, v in facts.items()]
    lines += [
        "",
        "## Summary",
        "",
    ]
    lines += _table(
        ["what", "figure"],
        [
            [
                "kill -9 trials (kills that landed mid-run) / survived every check",
                f"{kills} / {kills_ok} ({kill_runs} runs started; the others ended first)",
            ],
            [
                "connection cuts that landed mid-run / survived every check",
                f"{cut_total} / {cut_ok} ({cut_runs} runs started)",
            ],
            ["trials that left the database in between", between],
            [
                "concurrent runs (8 at once, and against Prisma's lock)",
                f"{concurrent_runs}",
            ],
            [
                "application queries during rollbacks / delayed beyond lock_timeout + margin",
                f"{load_.get('queries_during_rollback', '?')} / "
                f"{load_.get('delayed_beyond_threshold', '?')}",
            ],
            [
                "unexpected application errors",
                sum(load_.get("unexpected_errors", {}).values()) if load_ else "?",
            ],
            [
                "bad inputs tried / handled as documented",
                f"{len(bad)} / {bad_ok}" + (f" (+{bad_bugs} known bugs)" if bad_bugs else ""),
            ],
            [
                "fuzz examples (hypothesis, databases as oracle)",
                sum(fuzz.get("ran", {}).values()),
            ],
            [
                "artifacts scanned for secrets / passwords found",
                f"{secrets.get('files_scanned', '?')} files "
                f"({secrets.get('bytes_scanned', 0) / 1e6:.0f} MB) "
                f"+ {secrets.get('server_logs_scanned', 0)} server log(s) / "
                f"{len(secrets.get('found', []))}",
            ],
            [
                "rows lost beyond what a rollback declares",
                f"{between} (crash trials) + {load_.get('application_rows_lost', '?')} "
                "(application rows under load)",
            ],
            [
                "check paths run with a writing require/verify / runs that changed rows",
                f"{sum(v['runs'] for v in checks.values())} / "
                f"{sum(v['runs_that_changed_rows'] for v in checks.values())}",
            ],
            [
                "commands of one ?schema= project / that touched another schema",
                f"{len(scope.get('commands', []))} / "
                f"{len(scope.get('commands_that_touched_another_schema', []))}",
            ],
            [
                "known bugs (xfail, strict) still present",
                sum(1 for b in bugs.values() if "xfailed" in b["outcome"]),
            ],
            [
                "regression tests of fixed bugs / passing",
                f"{len(regressions)} / "
                f"{sum(1 for r in regressions.values() if r['outcome'].startswith('passes'))}",
            ],
        ],
    )
    lines += [
        "",
        "## Crash safety: kill -9",
        "",
        "Each trial starts a real `python -m backout ...` process and kills it with SIGKILL after "
        "a random delay: one trial in ten during Python's start-up, the others uniformly between "
        "the end of start-up and the command's measured duration. Then: the schema and every "
        "table's rows must equal exactly the state before or after; the ledger must agree with "
        "the schema and claim no failure; no event may claim a success not reached; the run lock "
        "must be free (no advisory lock left in `pg_locks`; a new `flock` on the SQLite lock "
        "file succeeds); the backup catalog must be intact (sizes, sha256, modes 0600). Then "
        "the same command runs again: after a kill that left the state before, that re-run is "
        "the next trial (up to 4 kills in a row); a chain ends with a run to completion that "
        "must succeed and reach the state after. A lane drives one "
        "database through `backup --full`, `up`, a partial rollback, `rollback` (scoped backup "
        "included; plan simulation every tenth time) and `restore` of the backup (see "
        '`tests/reliability/crash.py`). "interrupted mid-run" counts the kills that landed while '
        'the process ran (the quota counts only these); "ended first" the runs that had already '
        "exited (each then served as its chain's run to completion).",
        "",
    ]
    lines += _crash_section("PostgreSQL (Prisma layout)", crash[0], cut=False)
    lines += _crash_section("SQLite (plain layout)", crash[1], cut=False)
    lines += [
        "## Crash safety: the connection cut mid-run",
        "",
        "PostgreSQL: `pg_terminate_backend` on every connection of the run (found by its "
        "`application_name`, `backout/<version> <user>@<host> pid <pid>`) at a random moment. "
        "SQLite has no connection to cut; the realistic equivalent is the storage failing under "
        "the open file: the tmpfs holding the database is filled by another process at a random "
        "moment, so every later write fails (`SQLITE_FULL`). The run must end by itself with one "
        "`error:` line and exit 4 (or exit 0 if it had finished), leaving the state before or "
        "after; then the same checks as above. A cut that makes `up` record the migration as "
        "failed (as Prisma does) is resolved with `resolve --rolled-back` before the re-run.",
        "",
    ]
    lines += _crash_section("PostgreSQL", cuts[0], cut=True)
    lines += _crash_section("SQLite (volume full)", cuts[1], cut=True)

    lines += _data_safety_section(results)
    lines += ["## Concurrency", ""]
    rows = []
    for name, v in concurrency.items():
        if name == "prisma_lock":
            rows.append(
                [
                    "PostgreSQL, Prisma's advisory lock 72707369 held by `prisma-migrate`",
                    v["runs"],
                    "0",
                    v["exited_3"],
                    f"slowest {v['slowest_seconds']} s",
                ]
            )
        else:
            rows.append(
                [
                    f"{name}: 8 rollbacks at once",
                    v["runs"],
                    v["ran"],
                    v["exited_3_naming_holder"],
                    f"winner {v['winner_seconds']} s; losers {v['loser_seconds']} s; "
                    f"{v['losers_done_before_winner']} ended over 1 s before the winner",
                ]
            )
    lines += _table(
        ["scenario", "runs", "ran", "exited 3 naming the holder", "timing"],
        rows,
    )
    if concurrency:
        sample = next(
            (v.get("loser_error") or v.get("error") for v in concurrency.values() if v), ""
        )
        lines += ["", f"A loser's line: {_code(sample)}", ""]
    lines += ["## Online safety under load (PostgreSQL)", ""]
    if load_:
        lines += [
            f"{load_['workers']} application connections ran small reads, updates and inserts "
            f"on the altered table and the dropped one while a transaction held `items` for "
            f"{load_['long_transaction_s']:g} s and `backout rollback --lock-timeout "
            f"{int(load_['lock_timeout_s'] * 1000)}ms` ran "
            f"({load_['rollback_attempts']} attempts, {load_['rollback_seconds']} s).",
            "",
        ]
        lines += _table(
            ["figure", "value"],
            [
                [
                    "application queries (all / during the rollback)",
                    f"{load_['application_queries']} / {load_['queries_during_rollback']}",
                ],
                [
                    f"delayed beyond {load_['threshold_s']:g} s (lock_timeout + margin)",
                    load_["delayed_beyond_threshold"],
                ],
                ["longest application query", f"{load_['max_latency_s']} s"],
                ["p99 during the rollback", f"{load_['p99_latency_during_rollback_s']} s"],
                ["errors the rollback's DDL must cause", load_["errors_caused_by_the_ddl"]],
                ["other application errors", load_["unexpected_errors"] or 0],
                [
                    "rows the application committed / lost",
                    f"{load_['rows_committed_by_the_application']} / "
                    f"{load_['application_rows_lost']}",
                ],
                ["rows lost as declared (`audit`)", load_["declared_loss_audit_rows"]],
            ],
        )
        lines.append("")
    else:
        lines += ["Not run in this session.", ""]

    lines += [
        "## Bad-input corpus",
        "",
        "Each case is a small project, a state and one command (`tests/reliability/"
        "test_bad_inputs.py`). Checked: the first line of stderr (after progress lines) is one "
        "`error:` line naming the file, line or object, no traceback, the documented exit code, "
        "no password shown, and the schema fingerprint, table contents, history rows and backup "
        "folder byte-identical before and after (cases where the run starts and fails may only "
        "append a `failed` event).",
        "",
    ]
    lines += _table(
        ["case", "db", "command", "exit", "first line", "verdict"],
        [
            [
                name,
                v["dialect"],
                _code(v["command"]),
                v["exit"],
                _code(v["first_line"][:110]),
                v["verdict"][:80],
            ]
            for name, v in sorted(bad.items())
        ],
    )
    lines += [
        "",
        "## Fuzzing",
        "",
        f"{fuzz.get('examples_per_property', '?')} examples per property "
        "(`BACKOUT_RELIABILITY_FUZZ`). Statement splitting is compared with the database's own "
        "parser: the whole script run by the server (simple query protocol) or by "
        "`sqlite3.executescript`, against backout's statements run one at a time (a merged "
        "statement is refused by the driver); both logs must be the numbers in order.",
        "",
    ]
    lines += _table(["property", "examples run"], sorted(fuzz.get("ran", {}).items()))
    security = results.get("security", {})
    lines += ["", "## Security", ""]
    lines += [
        f"- Passwords: {secrets.get('files_scanned', '?')} files "
        f"({secrets.get('backup_files', '?')} backups, {secrets.get('history_dumps', '?')} "
        f"history dumps, {secrets.get('incident_reports', '?')} incident reports, and every "
        "stdout/stderr) plus the PostgreSQL server log were scanned for the suite's passwords, "
        "raw and percent-encoded, in contents and file names: "
        f"{len(secrets.get('found', [])) or 'none'} found.",
    ]
    for key, value in sorted(security.items()):
        if key.startswith("file_modes_"):
            modes = sorted(set(value.values()))
            lines.append(
                f"- Backup folder files on {key.removeprefix('file_modes_')} under `umask 000`: "
                f"{len(value)} files, modes {', '.join(modes)}."
            )
    refusals = {k: v for k, v in security.items() if k.startswith("refuses_")}
    if refusals:
        example = next(
            (v for k, v in sorted(refusals.items()) if k.startswith("refuses_rollback")),
            next(iter(refusals.values())),
        )
        lines.append(
            f"- Destructive commands (rollback, partial rollback, restore, emergency) without a "
            f"terminal and without `--yes` ({len(refusals)} runs, `y` piped in): exit 1, "
            "schema, data and backups unchanged. For example: " + _code(example)
        )
    hostile = [k for k in security if k.startswith("hostile_round_trip_")]
    if hostile:
        lines.append(
            "- Hostile identifiers (`or\"ders; DROP TABLE items; --`, `n:ote %s $1 ' naïve ☃`) "
            "survived up, backup, rollback and restore on "
            + ", ".join(k.removeprefix("hostile_round_trip_") for k in hostile)
            + "; a hostile `--param` value was stored as data."
        )
    lines += _states_section(results)
    lines += ["", "## Bugs found", ""]
    found = {**regressions, **bugs}
    if found:
        lines += [
            "Each bug the suite found has a deterministic reproducer: an xfail (strict) test while "
            "the bug is there, a regression test (test_regressions.py, or a case of the "
            "bad-input corpus) once it is fixed.",
            "",
        ]
        lines += _table(
            ["reproducer", "status", "what"],
            [[_code(node), b["outcome"], b["reason"]] for node, b in sorted(found.items())],
        )
    else:
        lines.append("None in this run.")
    lines += ["", "## Other observations from this run", ""]
    strays = sum(c.get("stray_backup_files", 0) for c in crash if c)
    if strays:
        lines.append(
            f"- Killed backups leave files behind: {strays} uncatalogued file(s) (complete or "
            "partial dumps, some empty, and schema snapshots) remained in the lanes' backup "
            "folders. `backout backups` names them as uncatalogued (a warning; `uncatalogued` "
            "in `--json`), restore never uses them, and nothing removes them automatically; "
            "they are 0600 like the rest."
        )
    vague = sorted(
        {
            line
            for c in cuts
            if c
            for line in c.get("error_lines", [])
            if ".sql" not in line and "backup" not in line and len(line) < 90
        }
    )
    if vague:
        lines.append(
            "- Error lines after a cut that name no file, statement or step: "
            + ", ".join(_code(v) for v in vague[:4])
            + ". (For example a COMMIT that fails on a full disk.)"
        )
    emergency = [v for k, v in security.items() if k.startswith("refuses_emergency")]
    if emergency:
        lines.append(
            "- `emergency` without a terminal and without `--yes` exits 1 and changes nothing "
            f"(history included), says so on stderr as {_code(emergency[0])}, and still "
            "writes an incident report."
        )
    clicks = [k for k in bad if k.startswith("flags-") and bad[k]["first_line"].startswith("Usage")]
    if clicks:
        lines.append(
            f"- click's own usage errors ({len(clicks)} cases: unknown option, bad choice) print "
            "`Usage:` ... `Error: ...`, not one `error:` line; docs/exit-codes.md lists them "
            "apart."
        )
    if len(lines) and lines[-1] == "":
        lines.append("None.")
    lines += [
        "",
        "## Time per file",
        "",
        "The crash and cut lanes run in the background from the start of the suite, while the "
        "files that do not measure time run; the crash and cut tests then wait for them (their "
        "time below is that wait; the lanes' own run times are given above).",
        "",
    ]
    lines += _table(["file", "seconds"], sorted(timing.items(), key=lambda kv: -kv[1]))
    lines += [
        "",
        "## Running it",
        "",
        "- `pytest` runs the suite with everything else (default sizes: 50 kill trials per "
        "command and database, 5 connection cuts, 150 fuzz examples per property); "
        "`pytest tests/reliability` alone.",
        "- Bigger runs: `BACKOUT_RELIABILITY_TRIALS=500` (kill trials per command and "
        "database), `BACKOUT_RELIABILITY_CUT_TRIALS=50`, `BACKOUT_RELIABILITY_FUZZ=2000`.",
        "- Replay: every run prints `BACKOUT_RELIABILITY_SEED=...` in pytest's header (without "
        "`-q`), in each failure and on this page; setting it replays the same kill schedule "
        "(delays and cut points; the exact instruction a kill lands on still depends on "
        "timing).",
        "- This page: `python -m tests.reliability.report` (options `--trials`, `--seed`; "
        "`--results DIR` renders a finished run).",
        "- Needs PostgreSQL on 127.0.0.1:5432 (with `CI` set its tests fail instead of "
        "skipping) and root for the tmpfs-based cases (disk full, read-only folder).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the suite (or read a results folder) and write docs/reliability.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, help="kill -9 trials per command and database")
    parser.add_argument("--cut-trials", type=int, help="connection cuts per command and database")
    parser.add_argument("--fuzz", type=int, help="hypothesis examples per property")
    parser.add_argument("--seed", type=int, help="BACKOUT_RELIABILITY_SEED")
    parser.add_argument("--results", type=Path, help="render this results folder, do not run")
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)

    env = dict(os.environ)
    for name, value in (
        ("BACKOUT_RELIABILITY_TRIALS", args.trials),
        ("BACKOUT_RELIABILITY_CUT_TRIALS", args.cut_trials),
        ("BACKOUT_RELIABILITY_FUZZ", args.fuzz),
        ("BACKOUT_RELIABILITY_SEED", args.seed),
    ):
        if value is not None:
            env[name] = str(value)
    command = "python -m tests.reliability.report" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    code = 0
    if args.results is not None:
        folder = args.results
        meta_path = folder / "_meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        meta.setdefault("date", "(not recorded)")
        meta.setdefault("command", "pytest tests/reliability (rendered with --results)")
        meta.setdefault("seconds", sum(load(folder).get("timing", {}).values()))
        meta.setdefault("pytest", "see the test run")
        meta.setdefault("settings", "(not recorded)")
        meta.setdefault("facts", machine_facts())
    else:
        folder = Path(tempfile.mkdtemp(prefix="backout-reliability-"))
        env["BACKOUT_RELIABILITY_RESULTS"] = str(folder)
        pytest_cmd = [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-rxX"]
        print("running:", shlex.join(pytest_cmd), file=sys.stderr)
        started = time.monotonic()
        done = subprocess.run(
            pytest_cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False
        )
        seconds = time.monotonic() - started
        code = done.returncode
        (folder / "pytest.log").write_text(done.stdout + done.stderr, encoding="utf-8")
        tail = [line for line in done.stdout.splitlines() if line.strip()]
        summary = tail[-1].strip("= ") if tail else f"exit {code}"
        seed = next(
            (
                part.split("=", 1)[1]
                for line in done.stdout.splitlines()
                if line.startswith("reliability:")
                for part in line.split()
                if part.startswith("BACKOUT_RELIABILITY_SEED=")
            ),
            "?",
        )
        meta = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command,
            "seconds": seconds,
            "pytest": f"pytest: {summary}, exit {code}",
            "settings": (
                " ".join(
                    f"{k}={env[k]}"
                    for k in (
                        "BACKOUT_RELIABILITY_TRIALS",
                        "BACKOUT_RELIABILITY_CUT_TRIALS",
                        "BACKOUT_RELIABILITY_FUZZ",
                    )
                    if k in env
                )
                or "defaults"
            )
            + f", BACKOUT_RELIABILITY_SEED={seed}"
            + (f", CI={env['CI']}" if env.get("CI") else ""),
            "facts": machine_facts(),
        }
        (folder / "_meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        print(f"pytest exit {code} in {seconds:.0f} s; results in {folder}", file=sys.stderr)
    results = {k: v for k, v in load(folder).items() if not k.startswith("_")}
    args.out.write_text(render(results, meta), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
