"""A fleet command skips a target "already there" (docs/fleet.md): it must never skip one that
is not, or whose history the command itself must look at first."""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace
from typing import Any

from backout.fleet.goals import AppliedUpTo, RolledBackTo
from backout.run.journal import InterruptedRun
from backout.run.status import MigrationStatus, State, StatusReport

IDS = ("001", "002", "003")


def project() -> Any:
    migrations = [SimpleNamespace(id=i) for i in IDS]
    return SimpleNamespace(
        migrations=migrations, find=lambda i: next(m for m in migrations if m.id == i)
    )


def entry(id_: str, state: State, **kw: Any) -> MigrationStatus:
    known = id_ in IDS
    return MigrationStatus(id_, id_, state, SimpleNamespace(id=id_) if known else None, **kw)  # type: ignore[arg-type]


def stopped(id_: str) -> InterruptedRun:
    now = dt.datetime.now(dt.UTC)
    fields = {f.name: None for f in dataclasses.fields(InterruptedRun)}
    fields.update(run_id="r", direction="down", migration=id_, migration_key=id_, script="x",
                  script_checksum="c", total=2, started_at=now, stopped_at=now, applied=(0,),
                  hashes={})  # fmt: skip
    return InterruptedRun(**fields)


def report(*entries: MigrationStatus, **kw: Any) -> StatusReport:
    return StatusReport(entries=entries, ledger_exists=True, **kw)


A, P = State.APPLIED, State.PENDING


def test_rolled_back_to_is_reached_only_when_nothing_after_it_may_remain() -> None:
    goal = RolledBackTo("001")
    assert goal.reached_in(project(), report(entry("001", A), entry("002", P), entry("003", P)))
    assert not goal.reached_in(project(), report(entry("001", A), entry("002", A)))
    assert not goal.reached_in(project(), report(entry("001", A), entry("002", State.FAILED)))
    # applied on the database, its file unknown here (deployed by newer code): after 001?
    assert not goal.reached_in(
        project(), report(entry("001", A), entry("002", P), entry("004_newer", A))
    )
    # 001 itself was half rolled back by an interrupted run
    assert not goal.reached_in(
        project(), report(entry("001", A, interrupted=stopped("001")), entry("002", P))
    )
    # the database is half-restored: its history is not where it seems
    half = report(entry("001", A), entry("002", P), unfinished_restores=(stopped("002"),))
    assert not goal.reached_in(project(), half)
    # 001 itself is not applied (a tenant never migrated, a database that does not exist):
    # `rollback --to 001` refuses there; the fleet must not call it "already there"
    assert not goal.reached_in(project(), report(entry("001", P), entry("002", P)))
    assert not goal.reached_in(project(), report())


def test_applied_up_to_is_not_reached_on_a_half_restored_database() -> None:
    goal = AppliedUpTo()
    done = [entry(i, A) for i in IDS]
    assert goal.reached_in(project(), report(*done))
    assert not goal.reached_in(project(), report(*done, unfinished_restores=(stopped("003"),)))
