"""The targets file of ``--targets`` (docs/fleet.md): every bad line is refused with its file
and line, passwords never show, and the fleet options need --targets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.helpers import sql

from backout.cli import main
from backout.fleet.targets import read_targets
from backout.model.errors import ConfigError


def targets(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "targets.txt"
    path.write_text(text, encoding="utf-8")
    return [t.name for t in read_targets(path, base_dir=tmp_path)]


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        targets(tmp_path, text)
    return str(caught.value)


def test_urls_comments_and_schemas_of_a_base(tmp_path: Path) -> None:
    found = targets(
        tmp_path,
        "# tenants\n\npostgresql://app:s3cret@db1/shop   # the shop\n"
        "base = postgresql://app:s3cret@db2:5433/saas?sslmode=require\n"
        "schema = tenant_a\nschema = tenant_b\ndatabase = other\n"
        "base = mysql://root:pw@maria/x\nschema = t1\n",
    )
    assert found == [
        "postgresql://app:***@db1/shop",
        "postgresql://app:***@db2:5433/saas?sslmode=require&schema=tenant_a",
        "postgresql://app:***@db2:5433/saas?sslmode=require&schema=tenant_b",
        "postgresql://app:***@db2:5433/other?sslmode=require",
        "mysql://root:***@maria/t1",  # a MySQL schema is a database
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sqlite:///a.db\nnot a url\n",
            "targets.txt:2: expected a database URL (scheme://...) or `KEY = VALUE`",
        ),
        ("schema = a\n", "targets.txt:1: `schema =` needs a `base = URL` line before it"),
        ("base = postgresql://h/d\nschemas = a\n", "targets.txt:2: unknown key 'schemas'"),
        ("base = postgresql://h/d\nschema = a b\n", "targets.txt:2: 'a b' is not a schema"),
        ("base = sqlite:///x.db\nschema = a\n", "targets.txt:2: a SQLite base has no other"),
        ("oracle://h/d\n", "targets.txt:1: unsupported database URL"),
        ("# nothing\n\n", "targets.txt: the targets file lists no target"),
        (
            "postgresql://u:pw1@h/d\nbase = postgresql://v:pw2@H/d\nschema = s\n"
            "postgresql://u@h/d?schema=s\n",
            "targets.txt:4: postgresql://u@h/d?schema=s is listed twice (first at",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    error = refused(tmp_path, text)
    assert message in error
    assert "pw1" not in error and "pw2" not in error


def test_a_password_in_a_bad_line_is_masked(tmp_path: Path) -> None:
    error = refused(tmp_path, "postgresql://u:hunter2@h/d\npostgresql//u:hunter2@h/d\n")
    assert "targets.txt:2:" in error and "hunter2" not in error
    error = refused(tmp_path, "postgres://u:hunter2@h:notaport/d\n")
    assert "hunter2" not in error and "targets.txt:1:" in error


def test_fleet_options_need_targets(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["status", "--parallel", "2", "-C", str(tmp_path)])
    assert result.exit_code == 2
    assert "--parallel go(es) with --targets FILE" in result.output


def test_a_single_target_command_does_not_load_the_fleet(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from backout.cli import main\n"
        "try:\n"
        f"    main(['status', '-C', {str(tmp_path)!r}, '--url', 'sqlite:///x.db'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('backout.cli.fleet', "
        "'backout.fleet', 'backout.api.verbs.fleet', 'concurrent.futures'))))\n"
    )
    (tmp_path / "migrations").mkdir()
    (tmp_path / "backout.toml").write_text('layout = "plain"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "['backout.cli.fleet_options']"


def test_a_byte_order_mark_and_crlf_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_bytes(b"\xef\xbb\xbfbase = postgresql://h/d\r\nschema = a  # one\r\n")
    assert [t.name for t in read_targets(path, base_dir=tmp_path)] == ["postgresql://h/d?schema=a"]


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://u@h/d\npostgresql://u@h:5432/d\n",
        "postgres://u@h:5432/d?schema=s\nbase = postgresql://v@H/d\nschema = s\n",
        "mysql://root@h/d\nmariadb://root@h:3306/d\n",
        # no ?schema= is public (Prisma's default; PostgreSQL's search_path)
        "postgresql://u@h/d\npostgresql://u@h/d?schema=public\n",
    ],
)
def test_the_default_port_spelled_out_is_the_same_database(tmp_path: Path, text: str) -> None:
    assert "is listed twice" in refused(tmp_path, text)


def test_a_password_no_mask_recognises_is_still_never_shown(tmp_path: Path) -> None:
    """A password with a space (not percent-encoded): the URL parses, and its target's name,
    shown in every summary, error and document, must not hold it."""
    names = targets(tmp_path, "postgresql://u:hunter 2@h/d\n")
    assert names == ["postgresql://u:***@h/d"]
    # cut short by a comment: what remains of the password is not repeated either
    error = refused(tmp_path, "postgresql://u:hun #ter2@h/d\n")
    assert "targets.txt:1:" in error and "hun" not in error.split("targets.txt:1:")[1]


def test_a_query_line_changes_nothing_even_when_it_tries(tmp_path: Path, pg_url: str) -> None:
    """`query =` is rolled back (docs/fleet.md): a second statement that commits first, then
    drops a table, must not run; the file is refused naming the line."""
    sql(pg_url, "CREATE TABLE keep_me (id int)")
    error = refused(
        tmp_path,
        f"base = {pg_url}\nquery = COMMIT; DROP TABLE keep_me; SELECT 'tenant_a'\n",
    )
    assert "targets.txt:2:" in error and "one statement" in error
    assert sql(pg_url, "SELECT to_regclass('keep_me') IS NOT NULL") == [(True,)]
    # one statement that writes is rolled back
    text = f"base = {pg_url}\nquery = INSERT INTO keep_me VALUES (1) RETURNING 'tenant_x'\n"
    assert targets(tmp_path, text) == [f"{pg_url}?schema=tenant_x"]
    assert sql(pg_url, "SELECT count(*) FROM keep_me") == [(0,)]
