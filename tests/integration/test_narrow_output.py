"""Issue 13, item 11: at 80 columns ids, risks and data lost are never cut; without a terminal,
COLUMNS is respected and no value is wrapped into pieces."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from backout.cli.render import Column, fitted_table
from backout.demo.sampledata import fill
from tests.helpers import copy_example, run

MIGRATION = "20240315000000_add_voucher_system"
SCRIPT = f"prisma/rollback/{MIGRATION}_rollback.sql"


@pytest.fixture
def vouchers(tmp_path: Path, sqlite_url: str) -> Path:
    root = copy_example("vouchers-sqlite", tmp_path)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    fill("vouchers-sqlite", sqlite_url, scale=200)
    return root


@pytest.mark.parametrize("columns", ["80", "60"])
def test_plan_keeps_ids_risks_and_losses_whole(
    vouchers: Path, sqlite_url: str, columns: str
) -> None:
    result = run(
        ["plan", "--no-simulate"], project=vouchers, url=sqlite_url, env={"COLUMNS": columns}
    )
    assert result.exit_code == 0, result.output
    document = json.loads(run(["plan", "--json"], project=vouchers, url=sqlite_url).stdout)
    lost = document["steps"][0]["impact"]["losses"]
    rows = sum(loss["count"] for loss in lost if loss["kind"] == "rows")
    lines = result.stdout.splitlines()
    table = [line for line in lines if MIGRATION in line or "HIGH" in line or "rows" in line]
    text = "\n".join(table)
    assert MIGRATION in text and SCRIPT in text
    assert text.count("HIGH") >= 2  # declared and computed
    assert f"{rows:,} rows" in text
    assert "…" not in text
    # the table (or its vertical form) fits; a value longer than the width stays whole
    for line in lines[2:8]:
        assert len(line.rstrip()) <= int(columns) or line.rstrip().endswith(SCRIPT), line


def test_backups_keep_ids_whole(vouchers: Path, sqlite_url: str) -> None:
    assert run(["backup"], project=vouchers, url=sqlite_url).exit_code == 0
    (record,) = json.loads(run(["backups", "--json"], project=vouchers, url=sqlite_url).stdout)[
        "backups"
    ]
    for columns in ("80", "40"):
        result = run(["backups"], project=vouchers, url=sqlite_url, env={"COLUMNS": columns})
        assert result.exit_code == 0
        assert record["id"] in result.stdout.split()  # one word: never cut, never wrapped
        assert record["sha256"][:12] in result.stdout.split()


def test_on_a_narrow_terminal_paths_wrap_and_ids_stay_whole() -> None:
    identifier = "20240315000000_add_voucher_system"
    path = "prisma/rollback/20240315000000_add_voucher_system_rollback.sql"
    columns = [
        Column("#"),
        Column("migration"),
        Column("rollback script", wraps=True),
        Column("declared"),
        Column("computed"),
        Column("data lost"),
    ]
    row = ["1", identifier, path, "HIGH", "HIGH", "1,234 rows"]
    for width, wrapped in ((100, True), (80, False)):
        buffer = io.StringIO()
        out = Console(file=buffer, width=width, force_terminal=True, color_system=None)
        fitted_table(out, columns, [row])
        text = buffer.getvalue()
        assert identifier in text and "1,234 rows" in text and text.count("HIGH") == 2
        # 100: a table whose path wraps; 80: too narrow for the whole values, so vertical
        assert (path not in text) is wrapped
        assert all(len(line) <= width for line in text.splitlines())


def test_without_columns_nothing_wraps(vouchers: Path, sqlite_url: str) -> None:
    result = run(["plan", "--no-simulate"], project=vouchers, url=sqlite_url, env={"COLUMNS": ""})
    assert any(MIGRATION in line and SCRIPT in line for line in result.stdout.splitlines())
