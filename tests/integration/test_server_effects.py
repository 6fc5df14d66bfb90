"""Server-side effects (issue 12, item 3): `plan` rates them HIGH and names them; `lint` flags
them (BO403). A program run on the server, a server file read or written, another server
reached: no rollback or restore undoes them, so they never pass as LOW with "nothing" lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run, sql, write

CASES = {
    "postgres": [
        ("COPY posts FROM PROGRAM 'echo 1'", "runs a program on the database server"),
        ("COPY posts TO '/tmp/backout-never-written.csv'", "writes the server file"),
        ("SELECT pg_read_file('/etc/hostname')", "reads a file on the database server"),
        ("SELECT lo_import('/etc/hostname')", "reads a file on the database server"),
        ("SELECT dblink_exec('dbname=x', 'DROP TABLE t')", "runs SQL on another database"),
        # dblink lives in the schema its extension was created in
        ("SELECT public.dblink_exec('dbname=x', 'DROP TABLE t')", "runs SQL on another database"),
        (
            "DO $$ BEGIN PERFORM pg_read_file('/etc/hostname'); END $$",
            "reads a file on the database server (pg_read_file()) (in DO block)",
        ),
    ],
    "mysql": [
        ("LOAD DATA INFILE '/tmp/x.csv' INTO TABLE posts", "LOAD DATA INFILE"),
        ("SELECT * FROM posts INTO OUTFILE '/tmp/x.csv'", "INTO OUTFILE"),
        ("SELECT LOAD_FILE('/etc/hostname')", "reads a file on the database server"),
    ],
    "sqlite": [
        ("ATTACH DATABASE '/tmp/backout-never.db' AS other", "opens another database file"),
        ("SELECT load_extension('nope')", "loads a native library"),
    ],
}
PARAMS = [(db, stmt, what) for db, cases in CASES.items() for stmt, what in cases]


def project(root: Path, statement: str) -> Path:
    """Two plain migrations; the rollback of the second declares LOW and does ``statement``."""
    return write(
        root / "proj",
        {
            "backout.toml": 'layout = "plain"\n',
            "migrations/001_posts.up.sql": "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n",
            "migrations/001_posts.down.sql": "-- backout:risk HIGH\nDROP TABLE posts;\n",
            "migrations/002_flag.up.sql": "CREATE TABLE flags (id INTEGER PRIMARY KEY);\n",
            "migrations/002_flag.down.sql": f"-- backout:risk LOW\n{statement};\n"
            "DROP TABLE flags;\n",
        },
    )


@pytest.mark.parametrize(("db", "statement", "what"), PARAMS)
def test_plan_rates_server_side_effects_high_and_lint_flags_them(
    request: pytest.FixtureRequest, tmp_path: Path, db: str, statement: str, what: str
) -> None:
    fixture = {"sqlite": "sqlite_url", "postgres": "pg_url", "mysql": "mysql_url"}[db]
    url = str(request.getfixturevalue(fixture))
    proj = project(tmp_path, statement)
    assert run(["up"], project=proj, url=url).exit_code == 0
    plan = run(["plan", "--json"], project=proj, url=url)
    doc = json.loads(plan.stdout)
    (step,) = doc["steps"]
    impact = step["impact"]
    assert impact["computed_risk"] == "HIGH", impact
    assert any(what in r and "outside the database" in r for r in impact["reasons"]), impact
    assert any(what in s for s in impact["side_effects"]), impact
    human = run(["plan"], project=proj, url=url)
    assert "outside the database" in human.output and what in human.output
    lint = run(["lint", "--json"], project=proj, url=url)
    assert lint.exit_code == 1
    found = [f for f in json.loads(lint.stdout)["findings"] if f["rule"] == "BO403"]
    assert [(Path(f["file"]).name, f["line"]) for f in found] == [("002_flag.down.sql", 2)]
    # plan changed nothing: both migrations still applied, the table still there
    assert sql(url, "SELECT count(*) FROM flags") == [(0,)]


@pytest.mark.parametrize(
    ("db", "statement"),
    [
        ("mysql", "INSERT INTO posts VALUES (1) -- exported later with SELECT INTO OUTFILE\n"),
        ("mysql", "UPDATE posts SET id = 2 WHERE id = 1 /* never load_file(x) here */"),
        ("mysql", "INSERT INTO notes VALUES ('export it with INTO DUMPFILE or sys_exec(1)')"),
        ("postgres", "INSERT INTO notes VALUES ('COPY notes TO PROGRAM and pg_read_file()')"),
        ("sqlite", "INSERT INTO notes VALUES ('ATTACH it, then load_extension(x)')"),
    ],
)
def test_words_in_literals_and_comments_are_no_server_side_effect(
    request: pytest.FixtureRequest, tmp_path: Path, db: str, statement: str
) -> None:
    fixture = {"sqlite": "sqlite_url", "postgres": "pg_url", "mysql": "mysql_url"}[db]
    url = str(request.getfixturevalue(fixture))
    proj = project(tmp_path, statement)
    (proj / "migrations/002_flag.up.sql").write_text(
        "CREATE TABLE flags (id INTEGER PRIMARY KEY);\nCREATE TABLE notes (body VARCHAR(200));\n"
    )
    assert run(["up"], project=proj, url=url).exit_code == 0
    doc = json.loads(run(["plan", "--json"], project=proj, url=url).stdout)
    (step,) = doc["steps"]
    assert not step["impact"]["side_effects"] or not any(
        "outside the database" in s for s in step["impact"]["side_effects"]
    ), step["impact"]
    lint = json.loads(run(["lint", "--json"], project=proj, url=url).stdout)
    assert [f for f in lint["findings"] if f["rule"] == "BO403"] == []
