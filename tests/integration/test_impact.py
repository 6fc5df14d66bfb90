"""Computed impact on the live database: exact counts, cascades, estimates, risk gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import MATRIX, db_state, dialect_of, matrix_url, run, sql, write


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


def project_with(tmp_path: Path, down: str, *, risk: str = "HIGH", extra: str = "") -> Path:
    return write(
        tmp_path,
        {
            "migrations/001_base.up.sql": """
                CREATE TABLE parent (id INTEGER PRIMARY KEY, note TEXT);
                CREATE TABLE child (
                    id INTEGER PRIMARY KEY,
                    parent_id INTEGER REFERENCES parent (id) ON DELETE CASCADE
                );
            """,
            "migrations/002_items.up.sql": f"""
                CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT, code TEXT UNIQUE);
                {extra}
            """,
            "migrations/002_items.down.sql": f"-- backout:risk {risk}\n{down}\n",
        },
    )


def fill(url: str, items: int, labels: int) -> None:
    """``items`` rows in items, ``labels`` of them with a non-null label."""
    if url.startswith("sqlite"):
        sql(
            url,
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
            f"{items}) INSERT INTO items SELECT i, CASE WHEN i <= {labels} THEN 'x' END, "
            "'c' || i FROM n",
        )
    elif dialect_of(url) == "mysql":  # MariaDB's SEQUENCE engine
        sql(
            url,
            f"INSERT INTO items SELECT seq, CASE WHEN seq <= {labels} THEN 'x' END, "
            f"CONCAT('c', seq) FROM seq_1_to_{items}",
        )
    else:
        sql(
            url,
            f"INSERT INTO items SELECT i, CASE WHEN i <= {labels} THEN 'x' END, 'c' || i "
            f"FROM generate_series(1, {items}) i",
        )


def impact(project: Path, url: str, *extra: str) -> dict:  # type: ignore[type-arg]
    result = run(["plan", "--json", *extra], project=project, url=url)
    assert result.exit_code in (0, 1), result.stderr
    (step,) = json.loads(result.stdout)["steps"]
    return step["impact"]


def test_dropped_table_of_1234_rows_is_exactly_1234_and_high(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, "DROP TABLE items;")
    assert run(["up"], project=project, url=url).exit_code == 0
    fill(url, 1234, 17)
    before = db_state(url)
    found = impact(project, url)
    (loss,) = found["losses"]
    assert (loss["kind"], loss["count"], loss["estimated"]) == ("rows", 1234, False)
    assert found["computed_risk"] == "HIGH"
    assert db_state(url) == before  # plan counted, changed nothing


def test_dropped_column_with_17_values_is_exactly_17_and_medium(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, "ALTER TABLE items DROP COLUMN label;", risk="MEDIUM")
    assert run(["up"], project=project, url=url).exit_code == 0
    fill(url, 1234, 17)
    found = impact(project, url)
    (loss,) = found["losses"]
    assert (loss["kind"], loss["count"], loss["key"]) == ("values", 17, False)
    assert found["computed_risk"] == "MEDIUM"
    assert found["understated"] is False


def test_dropped_key_column_is_high(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, "ALTER TABLE items DROP COLUMN code;", risk="MEDIUM")
    assert run(["up"], project=project, url=url).exit_code == 0
    fill(url, 50, 0)
    found = impact(project, url)
    assert found["losses"][0]["key"] is True
    assert found["computed_risk"] == "HIGH"
    assert found["understated"] is True


def test_empty_objects_are_low(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, "DROP TABLE items;", risk="LOW")
    assert run(["up"], project=project, url=url).exit_code == 0
    found = impact(project, url)
    assert found["losses"][0]["count"] == 0
    assert found["computed_risk"] == "LOW"


def test_delete_counts_where_and_cascades(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, "DELETE FROM parent WHERE id <= 3;\nDROP TABLE items;")
    assert run(["up"], project=project, url=url).exit_code == 0
    sql(url, "INSERT INTO parent (id) VALUES (1), (2), (3), (4), (5)")
    sql(url, "INSERT INTO child (id, parent_id) VALUES (1, 1), (2, 1), (3, 2), (4, 5)")
    found = impact(project, url)
    rows = {(x["object"], x["cascade_table"]): x["count"] for x in found["losses"]}
    parent = next(k for k in rows if "parent" in k[0] and k[1] is None)
    assert rows[parent] == 3
    cascade = next(k for k in rows if k[1] is not None)
    assert cascade[1].endswith("child") and rows[cascade] == 3


def test_update_counts_matched_rows_as_values(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, "UPDATE items SET label = NULL WHERE id > 40;", risk="MEDIUM")
    assert run(["up"], project=project, url=url).exit_code == 0
    fill(url, 50, 50)
    (loss,) = impact(project, url)["losses"]
    assert (loss["kind"], loss["count"]) == ("values", 10)


def test_understated_risk_requires_accepting_data_loss(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, "DROP TABLE items;", risk="LOW")
    assert run(["up"], project=project, url=url).exit_code == 0
    fill(url, 10, 10)
    plan = run(["plan"], project=project, url=url)
    assert plan.exit_code == 1
    assert "understated" in plan.output
    before = db_state(url)
    refused = run(
        ["rollback", "--yes", "--backup", "none", "--i-accept-data-loss", "--dry-run"],
        project=project,
        url=url,
    )
    assert refused.exit_code == 0  # a dry run only shows
    refused = run(["rollback", "--yes", "--backup", "full"], project=project, url=url)
    assert refused.exit_code == 1
    assert "declares risk LOW but backout computes HIGH" in refused.stderr
    assert "10 row(s) lost" in refused.stderr
    assert db_state(url) == before
    accepted = run(
        ["rollback", "--yes", "--backup", "none", "--i-accept-data-loss"], project=project, url=url
    )
    assert accepted.exit_code == 0, accepted.stderr


def test_markdown_for_pull_requests(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, "DROP TABLE items;")
    assert run(["up"], project=project, url=url).exit_code == 0
    fill(url, 7, 7)
    result = run(["plan", "--format", "markdown"], project=project, url=url)
    assert result.exit_code == 0, result.stderr
    assert result.output.startswith("### backout rollback plan: 1 migration(s)")
    assert "| 1 | `002_items` | HIGH | **HIGH** | 7 rows of table" in result.output


@pytest.mark.postgres
def test_large_tables_are_estimated_unless_exact(tmp_path: Path, pg_url: str) -> None:
    project = project_with(tmp_path, "DROP TABLE items;")
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    fill(pg_url, 150_000, 150_000)
    sql(pg_url, "ANALYZE items")
    (loss,) = impact(project, pg_url)["losses"]
    assert loss["estimated"] is True
    assert abs(loss["count"] - 150_000) < 15_000
    (exact,) = impact(project, pg_url, "--exact")["losses"]
    assert (exact["count"], exact["estimated"]) == (150_000, False)


@pytest.mark.postgres
def test_a_parameterised_delete_on_a_large_table_is_estimated(tmp_path: Path, pg_url: str) -> None:
    project = project_with(tmp_path, "DROP TABLE items;")
    write(
        project,
        {
            "migrations/002_items.down.purge.sql": """
                -- backout:risk HIGH
                -- backout:param above integer
                DELETE FROM items WHERE id > :above;
            """
        },
    )
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    fill(pg_url, 150_000, 0)
    sql(pg_url, "ANALYZE items")
    partial = ["--partial", "purge", "--param", "above=120000"]
    (loss,) = impact(project, pg_url, *partial)["losses"]
    # The planner's estimate with the value bound, not a count of every row.
    assert loss["estimated"] is True
    assert abs(loss["count"] - 30_000) < 3_000
    (exact,) = impact(project, pg_url, *partial, "--exact")["losses"]
    assert (exact["count"], exact["estimated"]) == (30_000, False)
    assert sql(pg_url, "SELECT count(*) FROM items") == [(150_000,)]


def test_dynamic_sql_needs_review_and_is_high(tmp_path: Path, pg_url: str) -> None:
    project = project_with(
        tmp_path,
        "DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'items'; END $$;",
        risk="LOW",
    )
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    found = impact(project, pg_url)
    assert found["needs_review"]
    assert found["computed_risk"] == "HIGH"
    plan = json.loads(run(["plan", "--json"], project=project, url=pg_url).stdout)
    assert plan["backup"]["mode"] == "full"  # scope unknown → full backup


def test_simulation_sees_what_dynamic_sql_does(tmp_path: Path, pg_url: str) -> None:
    project = project_with(tmp_path, "DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'items'; END $$;")
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    doc = json.loads(run(["plan", "--json"], project=project, url=pg_url).stdout)
    simulation = doc["steps"][0]["impact"]["simulation"]
    assert simulation["ran"] is True
    assert 'removed table "items"' in simulation["changes"]
    assert any(
        'drops table "items", which the parser did not see' in d
        for d in simulation["disagreements"]
    )
    assert any("which the parser did not see" in w for w in doc["warnings"])


def test_simulation_reports_cascade_side_effects(tmp_path: Path, pg_url: str) -> None:
    """PostgreSQL only: SQLite has no DROP ... CASCADE."""
    url = pg_url
    project = project_with(
        tmp_path, "DROP TABLE items;", extra="CREATE TABLE tags (id INTEGER PRIMARY KEY);"
    )
    (project / "migrations/002_items.down.sql").write_text(
        "-- backout:risk HIGH\nDROP TABLE parent CASCADE;\nDROP TABLE items;\nDROP TABLE tags;\n"
    )
    assert run(["up"], project=project, url=url).exit_code == 0
    doc = json.loads(run(["plan", "--json"], project=project, url=url).stdout)
    impact = doc["steps"][0]["impact"]
    assert any("child_parent_id_fkey" in d for d in impact["simulation"]["disagreements"])
    assert any(
        "CASCADE also drops foreign key child_parent_id_fkey" in s for s in impact["side_effects"]
    )


def test_simulation_failure_is_reported_and_refused(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, "DROP TABLE items;\nDROP TABLE no_such_table;")
    assert run(["up"], project=project, url=url).exit_code == 0
    result = run(["plan", "--json"], project=project, url=url)
    # The rollback would fail for real: plan says so and exits 1 (issue 13, item 2).
    assert result.exit_code == 1
    assert "no_such_table" in result.stderr
    doc = json.loads(result.stdout)
    assert "fails on a schema-only copy" in doc["steps"][0]["impact"]["simulation"]["error"]
    assert "no_such_table" in doc["steps"][0]["impact"]["simulation"]["error"]
