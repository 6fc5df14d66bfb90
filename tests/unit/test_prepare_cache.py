"""A script is split once per process (a rehearsal walk prepares each one several times), and
split again when its text changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.dialects import dialect_for
from backout.dialects.postgres.dialect import PostgresDialect
from backout.model.script import ScriptKind, load_script
from backout.model.urls import parse_url
from backout.run.runner import prepare


def test_a_script_is_split_once_and_again_when_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialect = dialect_for(parse_url("postgresql://u@localhost/db", base_dir=tmp_path))
    splits: list[str] = []
    real = PostgresDialect.split

    def split(self: PostgresDialect, text: str, display: str, **kw: object) -> object:
        splits.append(text)
        return real(self, text, display, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(PostgresDialect, "split", split)
    path = tmp_path / "001_a.up.sql"
    path.write_text("CREATE TABLE a_once (id int);\nCREATE INDEX ON a_once (id);\n")
    first = prepare(dialect, load_script(path, "001_a.up.sql", ScriptKind.FORWARD))
    again = load_script(path, "001_a.up.sql", ScriptKind.FORWARD)
    second = prepare(dialect, again)
    assert len(splits) == 1
    assert second.script is again and second.statements == first.statements
    path.write_text("CREATE TABLE a_once (id int);\n")
    edited = prepare(dialect, load_script(path, "001_a.up.sql", ScriptKind.FORWARD))
    assert len(splits) == 2
    assert [s.sql.strip().rstrip(";") for s in edited.statements] == [
        "CREATE TABLE a_once (id int)"
    ]
