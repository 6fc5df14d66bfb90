"""Which repeatable ``R__`` migrations Flyway counts as pending, outdated, up to date or failed
(``MigrationInfoServiceImpl``, ``MigrationInfoImpl.getState``), from its history rows."""

from __future__ import annotations

from pathlib import Path

from backout.model.script import ScriptKind, load_script
from backout.project.layouts.flyway import FlywaySettings, flyway_checksum
from backout.run.hosts.flyway import FlywayRow, repeatable_states

TEXT = "CREATE VIEW v AS SELECT 1;\n"


def row(
    rank: int,
    description: str,
    checksum: int | None,
    *,
    success: bool = True,
    type_: str = "SQL",
    version: str | None = None,
) -> FlywayRow:
    return FlywayRow(
        rank, version, description, type_, "R__x.sql", checksum, "me", None, 1, success
    )


def states(tmp_path: Path, rows: list[FlywayRow]) -> dict[str, str]:
    scripts = []
    for name in ("R__views.sql", "R__a_b.sql"):
        path = tmp_path / name
        path.write_text(TEXT, encoding="utf-8")
        scripts.append(load_script(path, name, ScriptKind.FORWARD))
    found = repeatable_states(tuple(scripts), rows, FlywaySettings())
    assert [r.description for r in found] == ["a b", "views"]  # Flyway's order
    return {r.description: r.state for r in found}


def test_states_from_flyways_rows(tmp_path: Path) -> None:
    same = flyway_checksum(TEXT)
    assert states(tmp_path, []) == {"a b": "pending", "views": "pending"}
    # only the latest run counts; a versioned row of the same description is not a run
    assert states(
        tmp_path, [row(1, "views", same), row(2, "views", 7), row(3, "a b", 1, version="1")]
    ) == {
        "a b": "pending",
        "views": "outdated",
    }
    assert states(tmp_path, [row(1, "views", 7), row(2, "views", same), row(3, "a b", same)]) == {
        "a b": "up to date",
        "views": "up to date",
    }
    # a failed run stays failed (Flyway's migrate refuses) until deleted
    assert (
        states(tmp_path, [row(1, "views", same, success=False), row(2, "views", same)])["views"]
        == "failed"
    )
    deleted = [row(1, "views", same, success=False), row(2, "views", None, type_="DELETE")]
    assert states(tmp_path, deleted)["views"] == "outdated"  # pending again: Flyway re-runs it
