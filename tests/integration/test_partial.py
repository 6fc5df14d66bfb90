"""Partial (data-only) rollbacks: the seed's voucher procedures end to end, with balances."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from backout.demo.sampledata import fill
from tests.helpers import (
    MATRIX,
    copy_example,
    db_state,
    dialect_of,
    matrix_url,
    run,
    wait_for_shared_server_locks,
)
from tests.helpers import sql as run_sql

VOUCHERS = "20240315000000_add_voucher_system"
ACCEPT = ["--yes", "--backup", "none", "--i-accept-data-loss"]


#: the vouchers example's flavour for each database of the matrix
EXAMPLES = {"sqlite": "vouchers-sqlite", "postgres": "vouchers", "mysql": "vouchers-mysql"}


@pytest.fixture(params=list(MATRIX))
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """The vouchers example (its PostgreSQL, SQLite or MySQL flavour), migrated and filled."""
    url = matrix_url(request)
    example = EXAMPLES[request.param]
    project = copy_example(example, tmp_path)
    wait_for_shared_server_locks(project, url)
    assert run(["up"], project=project, url=url).exit_code == 0
    fill(example, url, scale=200, seed=7)
    return project, url


def native(url: str, text: str) -> str:
    """SQL written with ``"quoted"`` identifiers, in backticks on MySQL (no string here is
    double-quoted)."""
    return text.replace('"', "`") if dialect_of(url) == "mysql" else text


def sql(url: str, statement: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
    """:func:`tests.helpers.sql` of the :func:`native` statement."""
    return run_sql(url, native(url, statement), params)


def balances_consistent(url: str) -> bool:
    rows = sql(
        url,
        'SELECT count(*) FROM "UserTokenBalance" b WHERE b."balance" <> (SELECT '
        'coalesce(sum(t."amount"), 0) FROM "TokenTransaction" t WHERE t."userId" = b."userId")',
    )
    return rows == [(0,)]


def applied(project: Path, url: str) -> list[str]:
    doc = json.loads(run(["status", "--json"], project=project, url=url).stdout)
    return [m["id"] for m in doc["migrations"] if m["state"] == "applied"]


def test_reverse_tokens_since_a_date(setup: tuple[Path, str]) -> None:
    project, url = setup
    since = "2024-09-01"
    redemption = "\"source\" = 'voucher_redemption'"
    total_before = sql(url, 'SELECT sum("balance") FROM "UserTokenBalance"')[0][0]
    all_tx = sql(url, f'SELECT count(*) FROM "TokenTransaction" WHERE {redemption}')[0][0]
    plan = run(
        ["plan", "--partial", "reverse-tokens", "--param", f"since={since}", "--json"],
        project=project,
        url=url,
    )
    doc = json.loads(plan.stdout)
    (step,) = doc["steps"]
    reversed_rows = next(x["count"] for x in step["impact"]["losses"] if x["kind"] == "rows")
    assert 0 < reversed_rows < all_tx
    result = run(
        ["rollback", VOUCHERS, "--partial", "reverse-tokens", "--param", f"since={since}", *ACCEPT],
        project=project,
        url=url,
    )
    assert result.exit_code == 0, result.stderr
    assert f"{reversed_rows} row(s) will be affected" in result.output  # the preview
    assert "The migration stays applied" in result.output
    left = sql(url, f'SELECT count(*) FROM "TokenTransaction" WHERE {redemption}')[0][0]
    assert left == all_tx - reversed_rows
    assert balances_consistent(url)
    total_after = sql(url, 'SELECT sum("balance") FROM "UserTokenBalance"')[0][0]
    assert total_after < total_before
    assert applied(project, url) == ["20240101000000_init", VOUCHERS]
    events = json.loads(run(["history", "--json"], project=project, url=url).stdout)["events"]
    last = events[-1]
    assert (last["event"], last["outcome"], last["migration"]) == (
        "partial_rollback",
        "ok",
        VOUCHERS,
    )
    assert last["details"]["partial"] == "reverse-tokens"
    assert last["details"]["params"]["since"].startswith("2024-09-01")


def test_clear_data_keeps_structure(setup: tuple[Path, str]) -> None:
    project, url = setup
    before = db_state(url)
    result = run(["rollback", "--partial", "clear-data", *ACCEPT], project=project, url=url)
    assert result.exit_code == 0, result.stderr
    assert sql(url, 'SELECT count(*) FROM "VoucherRedemption"') == [(0,)]
    assert sql(url, 'SELECT count(*) FROM "Voucher" WHERE "currentUses" <> 0') == [(0,)]
    assert balances_consistent(url)
    assert db_state(url).schema == before.schema  # data only
    assert applied(project, url) == ["20240101000000_init", VOUCHERS]


def test_full_rollback_of_the_voucher_system(setup: tuple[Path, str]) -> None:
    project, url = setup
    users = sql(url, 'SELECT count(*) FROM "User"')
    result = run(["rollback", *ACCEPT], project=project, url=url)
    assert result.exit_code == 0, result.stderr
    assert applied(project, url) == ["20240101000000_init"]
    assert sql(url, 'SELECT count(*) FROM "User"') == users
    assert balances_consistent(url)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--partial", "nope"],
            "no migration has a partial rollback 'nope' (known: clear-data, reverse-tokens)",
        ),
        (
            [VOUCHERS, "--partial", "nope"],
            "has no partial rollback 'nope' (it has: clear-data, reverse-tokens)",
        ),
        (["--partial", "reverse-tokens"], "missing --param since=<timestamptz>"),
        (
            ["--partial", "reverse-tokens", "--param", "since=yesterday"],
            "--param since: not a valid timestamptz",
        ),
        (
            ["--partial", "reverse-tokens", "--param", "since=2024-01-01", "--param", "x=1"],
            "unknown parameter(s) x (declared: since)",
        ),
        (["--partial", "reverse-tokens", "--param", "since"], "expected KEY=VALUE"),
        (["--partial", "clear-data", "--to", "20240101000000_init"], "--to/--steps do not apply"),
        (["--param", "since=2024-01-01"], "ID and --param go with --partial NAME"),
    ],
)
def test_bad_partial_requests_change_nothing(
    setup: tuple[Path, str], args: list[str], message: str
) -> None:
    project, url = setup
    before = db_state(url)
    result = run(["rollback", *args, *ACCEPT], project=project, url=url)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert db_state(url) == before


def test_failing_preview_stops_before_anything(setup: tuple[Path, str]) -> None:
    project, url = setup
    script = next((project / "prisma/rollback").glob("*reverse-tokens.sql"))
    text = script.read_text()
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("-- backout:preview"))
    lines[index] = "-- backout:preview SELECT * FROM no_such_table WHERE x > :since"
    script.write_text("\n".join(lines) + "\n")
    before = db_state(url)
    result = run(
        ["rollback", "--partial", "reverse-tokens", "--param", "since=2024-01-01", *ACCEPT],
        project=project,
        url=url,
    )
    assert result.exit_code == 4
    assert f"{script.name}:{index + 1}: preview query failed" in result.stderr
    assert db_state(url) == before


def test_parameter_values_are_bound_not_pasted(setup: tuple[Path, str]) -> None:
    """A hostile value is data: it cannot end the string and inject SQL."""
    project, url = setup
    script = next((project / "prisma/rollback").glob("*clear-data.sql"))
    # MySQL refuses a subquery on the table an UPDATE changes (1093): ORDER BY ... LIMIT there
    first = (
        'ORDER BY "id" LIMIT 1'
        if dialect_of(url) == "mysql"
        else 'WHERE "id" = (SELECT min("id") FROM "Voucher")'
    )
    script.write_text(
        native(
            url,
            "-- backout:risk HIGH\n-- backout:param note text\n"
            "-- backout:preview SELECT :note AS note\n"
            f'UPDATE "Voucher" SET "code" = :note {first};\n',
        )
    )
    hostile = 'x\'); DROP TABLE "User"; --'
    result = run(
        ["rollback", "--partial", "clear-data", "--param", f"note={hostile}", *ACCEPT],
        project=project,
        url=url,
    )
    assert result.exit_code == 0, result.stderr
    assert sql(url, 'SELECT count(*) FROM "Voucher" WHERE "code" = %s', (hostile,)) == [(1,)]
    assert sql(url, 'SELECT count(*) FROM "User"')[0][0] > 0
