"""Settling a statement that was running when a run died, by looking at the schema: an index
left invalid (a CONCURRENTLY build or drop cut short) and names without a schema."""

from __future__ import annotations

import pytest

from backout.dialects.postgres.dialect import PostgresDialect
from backout.model.schema import IndexInfo, SchemaSnapshot
from backout.model.script import Statement
from backout.run.journal import observe


def snapshot(valid: bool) -> SchemaSnapshot:
    index = IndexInfo(schema="public", name="T_i", table="T", columns=("id",), valid=valid)
    return SchemaSnapshot(
        dialect="postgresql",
        default_schema="public",
        schemas=("public",),
        indexes={index.key: index},
    )


def verdict(sql: str, valid: bool) -> bool | None:
    effects = PostgresDialect().analyze([Statement(sql=sql, line=1, index=1)])
    return observe(effects.effects, snapshot(valid))


@pytest.mark.parametrize("table", ['"T"', 'public."T"'])
def test_create_index_took_effect_only_when_the_index_is_valid(table: str) -> None:
    sql = f'CREATE INDEX CONCURRENTLY "T_i" ON {table} (id)'
    assert verdict(sql, valid=True) is True
    assert verdict(sql, valid=False) is False


@pytest.mark.parametrize("name", ['"T_i"', 'public."T_i"'])
def test_drop_index_cut_short_leaves_it_there_invalid_not_dropped(name: str) -> None:
    sql = f"DROP INDEX CONCURRENTLY {name}"
    assert verdict(sql, valid=False) is False
    assert verdict(sql, valid=True) is False
