"""`?schema=` scoping (issue 12, item 2): two Prisma projects in one PostgreSQL database.

Each project owns the schema its URL names. Every command of one (up, status, check, plan,
backup, restore, test) stays inside it: the other project's tables, and tables of no project
(``public.audit``), keep their rows and their shape whatever it does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run, sql, write

NOBACKUP = ["--backup", "none", "--i-accept-data-loss", "--yes"]


def prisma_project(root: Path) -> Path:
    """A two-migration Prisma project (unqualified names: they land in ``?schema=``)."""
    return write(
        root,
        {
            "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
            "prisma/migrations/20240101000000_init/migration.sql": (
                'CREATE TABLE "Order" (id integer PRIMARY KEY, note text);\n'
            ),
            "prisma/migrations/20240201000000_items/migration.sql": (
                'CREATE TABLE "Item" (id integer PRIMARY KEY, '
                '"orderId" integer REFERENCES "Order" (id));\n'
            ),
            "prisma/rollback/20240201000000_items_rollback.sql": (
                '-- backout:risk HIGH\n-- backout:verify SELECT true\nDROP TABLE "Item";\n'
            ),
        },
    )


def state_outside(url: str) -> list[tuple[object, ...]]:
    """Rows and tables of project b and of public.audit: what project a must never touch."""
    tables = sql(
        url,
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('b', 'public') ORDER BY 1, 2",
    )
    rows = sql(url, 'SELECT count(*), sum(id) FROM b."Order"') + sql(
        url, "SELECT count(*), sum(id) FROM public.audit"
    )
    return [*tables, *rows]


@pytest.fixture
def two_projects(pg_url: str, tmp_path: Path) -> tuple[Path, str, Path, str]:
    """Projects a and b in one database (both migrated, b with rows) and public.audit."""
    a, b = prisma_project(tmp_path / "a"), prisma_project(tmp_path / "b")
    url_a, url_b = f"{pg_url}?schema=a", f"{pg_url}?schema=b"
    sql(pg_url, "CREATE TABLE public.audit (id integer PRIMARY KEY)")
    sql(pg_url, "INSERT INTO public.audit SELECT generate_series(1, 500)")
    first = run(["up"], project=a, url=url_a)
    assert first.exit_code == 0, first.output + first.stderr
    second = run(["up"], project=b, url=url_b)
    assert second.exit_code == 0, second.output + second.stderr
    sql(pg_url, "INSERT INTO b.\"Order\" SELECT g, 'b' FROM generate_series(1, 500) g")
    sql(pg_url, "INSERT INTO a.\"Order\" SELECT g, 'a' FROM generate_series(1, 20) g")
    return a, url_a, b, url_b


def test_second_project_up_and_status_stay_in_their_schema(
    two_projects: tuple[Path, str, Path, str],
) -> None:
    a, url_a, b, url_b = two_projects
    for project, url in ((a, url_a), (b, url_b)):
        doc = json.loads(run(["status", "--json"], project=project, url=url).stdout)
        assert [m["state"] for m in doc["migrations"]] == ["applied", "applied"]
    check = run(["check"], project=a, url=url_a)
    assert check.exit_code == 0, check.output + check.stderr


def test_restore_of_one_projects_full_backup_leaves_the_other_intact(
    two_projects: tuple[Path, str, Path, str], pg_url: str
) -> None:
    a, url_a, _, _ = two_projects
    before = state_outside(pg_url)
    taken = run(["backup", "--full"], project=a, url=url_a)
    assert taken.exit_code == 0, taken.output + taken.stderr
    (record,) = json.loads(run(["backups", "--json"], project=a, url=url_a).stdout)["backups"]
    assert record["tables"] and all(t.startswith(("a.", "backout.")) for t in record["tables"])
    sql(pg_url, 'DELETE FROM a."Order" WHERE id > 10')
    restored = run(["restore", "latest", "--yes"], project=a, url=url_a)
    assert restored.exit_code == 0, restored.output + restored.stderr
    assert "b." not in restored.output and "public.audit" not in restored.output
    assert sql(pg_url, 'SELECT count(*) FROM a."Order"') == [(20,)]
    assert state_outside(pg_url) == before


def test_restore_refuses_a_backup_reaching_beyond_the_project(
    two_projects: tuple[Path, str, Path, str], pg_url: str
) -> None:
    """A backup of the whole database restored with ?schema=a would reach b and public."""
    a, url_a, _, _ = two_projects
    whole = run(["backup", "--full"], project=a, url=pg_url)
    assert whole.exit_code == 0, whole.output + whole.stderr
    before = state_outside(pg_url)
    restored = run(["restore", "latest", "--yes"], project=a, url=url_a)
    assert restored.exit_code == 2, restored.output + restored.stderr
    assert "taken of the whole database" in restored.stderr
    assert "covers ?schema=a; nothing changed" in restored.stderr
    assert state_outside(pg_url) == before
    assert sql(pg_url, 'SELECT count(*) FROM a."Order"') == [(20,)]
    listed = json.loads(run(["backups", "--json"], project=a, url=url_a).stdout)["backups"]
    assert len(listed) == 1  # refused before the pre-restore backup


def test_restore_of_a_scoped_backup_without_its_scope_is_refused(
    two_projects: tuple[Path, str, Path, str], pg_url: str
) -> None:
    """Project a's backup restored through a URL without ?schema= would reach b and public."""
    a, url_a, _, _ = two_projects
    assert run(["backup", "--full"], project=a, url=url_a).exit_code == 0
    before = state_outside(pg_url)
    restored = run(["restore", "latest", "--yes"], project=a, url=pg_url)
    assert restored.exit_code == 2, restored.output + restored.stderr
    assert "taken of ?schema=a" in restored.stderr and "nothing changed" in restored.stderr
    assert state_outside(pg_url) == before
    assert sql(pg_url, 'SELECT count(*) FROM a."Order"') == [(20,)]


@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        ["rollback", *NOBACKUP],
        ["rollback", "--yes"],  # with its scoped backup
        ["test", "--all"],
        ["test", "20240201000000_items"],  # on a copy of the database
        ["plan", "--simulate"],
        ["check"],
    ],
    ids=["plan", "rollback", "rollback-backup", "test", "test-copy", "plan-simulate", "check"],
)
def test_commands_of_one_project_never_touch_the_other(
    two_projects: tuple[Path, str, Path, str], pg_url: str, command: list[str]
) -> None:
    a, url_a, _, _ = two_projects
    before = state_outside(pg_url)
    result = run(command, project=a, url=url_a)
    assert result.exit_code == 0, result.output + result.stderr
    assert "b.Order" not in result.output and '"b"' not in result.output
    assert state_outside(pg_url) == before


@pytest.mark.parametrize("command", ["test", "simulate", "restore-into"])
def test_schema_public_the_prisma_default_copies_and_restores(
    pg_url: str, tmp_path: Path, command: str
) -> None:
    """`?schema=public` (Prisma's default URL): a dump confined to it says CREATE SCHEMA
    public, which a new database already has. The copy and the restore still succeed."""
    proj = prisma_project(tmp_path / "p")
    url = f"{pg_url}?schema=public"
    assert run(["up"], project=proj, url=url).exit_code == 0
    sql(pg_url, "INSERT INTO public.\"Order\" SELECT g, 'p' FROM generate_series(1, 30) g")
    if command == "test":
        result = run(["test", "20240201000000_items"], project=proj, url=url)
        assert result.exit_code == 0, result.output + result.stderr
    elif command == "simulate":
        result = run(["plan", "--simulate"], project=proj, url=url)
        assert result.exit_code == 0, result.output + result.stderr
        assert "simulation skipped" not in result.output + result.stderr
    else:
        assert run(["backup", "--full"], project=proj, url=url).exit_code == 0
        into = pg_url.rsplit("/", 1)[0] + "/" + pg_url.rsplit("/", 1)[1] + "_into"
        try:
            result = run(
                ["restore", "latest", "--into", f"{into}?schema=public", "--yes"],
                project=proj,
                url=url,
            )
            assert result.exit_code == 0, result.output + result.stderr
            assert sql(into, 'SELECT count(*) FROM public."Order"') == [(30,)]
        finally:
            admin = pg_url.rsplit("/", 1)[0] + "/postgres"
            name = into.rsplit("/", 1)[1]
            sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert sql(pg_url, 'SELECT count(*) FROM public."Order"') == [(30,)]


@pytest.mark.parametrize("command", ["test", "simulate"])
def test_copy_of_a_scope_has_the_extensions_it_uses_from_other_schemas(
    pg_url: str, tmp_path: Path, command: str
) -> None:
    """Supabase's layout: extensions in schema `extensions`, the project in ?schema=public.
    A dump confined to public holds no CREATE EXTENSION: the copy must have them anyway."""
    sql(pg_url, "CREATE SCHEMA extensions")
    sql(pg_url, "CREATE EXTENSION citext SCHEMA extensions")
    proj = write(
        tmp_path / "p",
        {
            "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
            "prisma/migrations/20240101000000_init/migration.sql": (
                'CREATE TABLE "User" (id integer PRIMARY KEY, email extensions.citext);\n'
            ),
            "prisma/migrations/20240201000000_items/migration.sql": (
                'CREATE TABLE "Item" (id integer PRIMARY KEY);\n'
            ),
            "prisma/rollback/20240201000000_items_rollback.sql": (
                '-- backout:risk HIGH\nDROP TABLE "Item";\n'
            ),
        },
    )
    url = f"{pg_url}?schema=public"
    assert run(["up"], project=proj, url=url).exit_code == 0
    sql(pg_url, "INSERT INTO public.\"User\" VALUES (1, 'A@x.org')")
    if command == "test":
        result = run(["test", "20240201000000_items"], project=proj, url=url)
        assert result.exit_code == 0, result.output + result.stderr
    else:
        result = run(["plan", "--simulate"], project=proj, url=url)
        assert result.exit_code == 0, result.output + result.stderr
        assert "simulation skipped" not in result.output + result.stderr
    assert sql(pg_url, 'SELECT count(*) FROM public."User"') == [(1,)]


def test_rows_outside_the_scope_that_a_delete_cascades_to_are_not_lost_silently(
    pg_url: str, tmp_path: Path
) -> None:
    """b.orders references a.users ON DELETE CASCADE. Project a's rollback deletes users: the
    cascade deletes b's rows, which a's plan cannot count and a's backup does not hold. The
    rollback names them and refuses without --i-accept-data-loss."""
    proj = write(
        tmp_path / "a",
        {
            "backout.toml": 'layout = "plain"\n',
            "migrations/001_users.up.sql": "CREATE TABLE users (id integer PRIMARY KEY);\n",
            "migrations/001_users.down.sql": "DROP TABLE users;\n",
            "migrations/002_seed.up.sql": "INSERT INTO users SELECT generate_series(1, 10);\n",
            "migrations/002_seed.down.sql": (
                "-- backout:risk HIGH\nDELETE FROM users WHERE id > 5;\n"
            ),
        },
    )
    url = f"{pg_url}?schema=a"
    assert run(["up"], project=proj, url=url).exit_code == 0
    sql(pg_url, "CREATE SCHEMA b")
    sql(
        pg_url,
        "CREATE TABLE b.orders (id integer PRIMARY KEY, "
        "user_id integer REFERENCES a.users ON DELETE CASCADE)",
    )
    sql(pg_url, "INSERT INTO b.orders SELECT g, g FROM generate_series(1, 10) g")
    plan = run(["plan"], project=proj, url=url)
    assert "b.orders" in plan.output + plan.stderr, plan.output + plan.stderr
    result = run(["rollback", "--yes"], project=proj, url=url)
    assert result.exit_code == 1, result.output + result.stderr
    assert "b.orders" in result.stderr and "--i-accept-data-loss" in result.stderr
    assert sql(pg_url, "SELECT count(*) FROM b.orders") == [(10,)]
    assert sql(pg_url, "SELECT count(*) FROM a.users") == [(10,)]


def test_restore_never_drops_what_other_schemas_build_on_the_projects_tables(
    two_projects: tuple[Path, str, Path, str], pg_url: str
) -> None:
    """A view and a foreign key in schema b build on a."Order": a restore of a that rebuilds
    a."Order" (DROP … CASCADE) would drop them. Refused, with b as it was."""
    a, url_a, _, _ = two_projects
    assert run(["backup", "--full"], project=a, url=url_a).exit_code == 0
    sql(pg_url, 'CREATE VIEW b.a_orders AS SELECT id FROM a."Order"')
    sql(pg_url, 'CREATE TABLE b.refs (id integer PRIMARY KEY, o integer REFERENCES a."Order")')
    sql(pg_url, "INSERT INTO b.refs VALUES (1, 1)")
    restored = run(["restore", "latest", "--yes"], project=a, url=url_a)
    assert restored.exit_code != 0, restored.output + restored.stderr
    assert "outside" in restored.stderr and "nothing changed" in restored.stderr
    assert sql(pg_url, "SELECT count(*) FROM b.a_orders") == [(20,)]
    fks = "SELECT count(*) FROM pg_constraint WHERE conrelid = 'b.refs'::regclass AND contype = 'f'"
    assert sql(pg_url, fks) == [(1,)]


@pytest.mark.parametrize("command", ["test", "restore-into"])
def test_extensions_inside_the_scope_are_copied_and_backed_up(
    pg_url: str, tmp_path: Path, command: str
) -> None:
    """pg_dump --schema=X leaves out CREATE EXTENSION even for an extension in X: a project
    whose migration creates citext in its schema must still copy and restore."""
    proj = write(
        tmp_path / "p",
        {
            "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
            "prisma/migrations/20240101000000_init/migration.sql": (
                "CREATE EXTENSION IF NOT EXISTS citext;\n"
                'CREATE TABLE "User" (id integer PRIMARY KEY, email citext);\n'
            ),
            "prisma/migrations/20240201000000_items/migration.sql": (
                'CREATE TABLE "Item" (id integer PRIMARY KEY);\n'
            ),
            "prisma/rollback/20240201000000_items_rollback.sql": (
                '-- backout:risk HIGH\nDROP TABLE "Item";\n'
            ),
        },
    )
    url = f"{pg_url}?schema=app"
    assert run(["up"], project=proj, url=url).exit_code == 0
    sql(pg_url, "INSERT INTO app.\"User\" VALUES (1, 'A@x.org')")
    if command == "test":
        result = run(["test", "20240201000000_items"], project=proj, url=url)
        assert result.exit_code == 0, result.output + result.stderr
        return
    assert run(["backup", "--full"], project=proj, url=url).exit_code == 0
    into = pg_url + "_into"
    try:
        result = run(
            ["restore", "latest", "--into", f"{into}?schema=app", "--yes"], project=proj, url=url
        )
        assert result.exit_code == 0, result.output + result.stderr
        assert sql(into, 'SELECT email::text FROM app."User"') == [("A@x.org",)]
        ext = "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'citext'"
        assert sql(into, ext) == [("app",)]
    finally:
        admin = pg_url.rsplit("/", 1)[0] + "/postgres"
        sql(admin, f'DROP DATABASE IF EXISTS "{into.rsplit("/", 1)[1]}" WITH (FORCE)')
