"""Issue 13, item 16: reading per-row scans out of PostgreSQL's and MySQL's EXPLAIN."""

from __future__ import annotations

from backout.dialects.mysql import explain as mysql_explain
from backout.dialects.postgres import explain as pg_explain

MYSQL_COLUMNS = ["id", "select_type", "table", "type", "possible_keys", "key", "rows", "Extra"]


def test_mysql_dependent_subquery_over_many_rows_is_found() -> None:
    rows = [
        (1, "PRIMARY", "UserTokenBalance", "ALL", None, None, 10000, "Using where"),
        (2, "DEPENDENT SUBQUERY", "tt", "ref", "src_idx", "src_idx", 8700, "Using where"),
    ]
    (scan,) = mysql_explain.per_row_scans(MYSQL_COLUMNS, rows)
    assert (scan.table, scan.rows_per_run) == ("tt", 8700)
    assert "DEPENDENT SUBQUERY on tt: type ref, key src_idx" in scan.describe("EXPLAIN")


def test_mysql_small_or_independent_subqueries_are_not() -> None:
    rows = [
        (1, "PRIMARY", "b", "ALL", None, None, 10000, ""),
        (2, "DEPENDENT SUBQUERY", "tt", "ref", "user_idx", "user_idx", 4, ""),
        (3, "SUBQUERY", "big", "ALL", None, None, 900000, ""),
    ]
    assert mysql_explain.per_row_scans(MYSQL_COLUMNS, rows) == []


def test_postgres_seq_scan_under_a_subplan_is_found() -> None:
    plan = {
        "Node Type": "ModifyTable",
        "Plans": [
            {
                "Node Type": "Seq Scan",
                "Relation Name": "owners",
                "Plans": [
                    {
                        "Node Type": "Aggregate",
                        "Parent Relationship": "SubPlan",
                        "Plans": [
                            {"Node Type": "Seq Scan", "Relation Name": "items", "Filter": "(x)"}
                        ],
                    }
                ],
            },
            {
                "Node Type": "Seq Scan",
                "Relation Name": "once",
                "Parent Relationship": "InitPlan",
            },
        ],
    }
    sizes = {"items": 5000, "owners": 50, "once": 900000}
    (scan,) = pg_explain.per_row_scans(plan, lambda schema, name: sizes[name])
    assert (scan.table, scan.rows_per_run, scan.detail) == ("items", 5000, "Seq Scan on items (x)")


def test_postgres_index_scan_by_key_under_a_subplan_is_not() -> None:
    plan = {
        "Node Type": "Seq Scan",
        "Relation Name": "owners",
        "Plans": [
            {
                "Node Type": "Index Only Scan",
                "Parent Relationship": "SubPlan",
                "Relation Name": "items",
                "Plan Rows": 100,
            }
        ],
    }
    assert pg_explain.per_row_scans(plan, lambda schema, name: 10**6) == []
