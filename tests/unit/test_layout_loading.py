"""Layouts: reading Prisma, plain and dbmate folders into a Project, and every error they raise."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from backout.model.errors import ProjectError, UsageError
from backout.model.script import Risk, ScriptKind, SqlCheck
from backout.project.layouts import detect, load_project
from backout.project.migration import Project


def make(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Create ``files`` under ``root`` (str is written as UTF-8, bytes as they are)."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def load_error(root: Path, **kwargs: object) -> ProjectError:
    with pytest.raises(ProjectError) as info:
        load_project(root, **kwargs)  # type: ignore[arg-type]
    return info.value


def sha(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


# --- Prisma ---------------------------------------------------------------------------------------

A = "20240101000000_init"
B = "20240202000000_add_items"
C = "20240303000000_voucher"

PRISMA = {
    "prisma/schema.prisma": 'datasource db { provider = "postgresql" }\n',
    "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
    f"prisma/migrations/{A}/migration.sql": "CREATE TABLE users (id int);\n",
    f"prisma/migrations/{B}/migration.sql": "CREATE TABLE items (id int);\n",
    f"prisma/migrations/{C}/migration.sql": "CREATE TABLE vouchers (id int);\n",
    # the seeds' convention
    f"prisma/rollback/{A}_rollback.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    f"prisma/rollback/{A}_rollback.purge.sql": "-- backout:param since date\nDELETE FROM users;\n",
    "prisma/rollback/README.md": "not SQL, ignored\n",
    # Prisma's documented convention, with a partial beside it
    f"prisma/migrations/{B}/down.sql": "-- backout:risk LOW\nDROP TABLE items;\n",
    f"prisma/migrations/{B}/down.cleanup.sql": "DELETE FROM items;\n",
    f"prisma/migrations/{B}/notes.txt": "ignored\n",
}


def test_prisma_project(tmp_path: Path) -> None:
    root = make(tmp_path, PRISMA)
    assert detect(root) == ("prisma", root / "prisma" / "migrations")
    project = load_project(root)
    assert (project.layout, project.ledger, project.provider) == ("prisma", "prisma", "postgresql")
    assert project.migrations_dir == root / "prisma" / "migrations"
    assert project.rollback_dir == root / "prisma" / "rollback"
    a, b, c = project.migrations
    assert [m.id for m in project.migrations] == [A, B, C]
    assert [m.key for m in project.migrations] == [A, B, C]
    assert (a.version, a.name) == ("20240101000000", "init")
    assert a.up.display == f"prisma/migrations/{A}/migration.sql"
    assert a.up.kind is ScriptKind.FORWARD
    assert a.up.checksum == sha("CREATE TABLE users (id int);\n")
    assert a.down is not None and a.down.display == f"prisma/rollback/{A}_rollback.sql"
    assert a.down.kind is ScriptKind.ROLLBACK and a.down.directives.risk is Risk.HIGH
    assert [(name, s.display, s.kind) for name, s in a.partials] == [
        ("purge", f"prisma/rollback/{A}_rollback.purge.sql", ScriptKind.PARTIAL)
    ]
    assert a.partial("purge") is not None and a.partial("nope") is None
    assert b.down is not None and b.down.display == f"prisma/migrations/{B}/down.sql"
    assert b.down.directives.risk is Risk.LOW
    assert [name for name, _ in b.partials] == ["cleanup"]
    assert c.down is None and c.partials == ()


def test_prisma_without_lock_file_or_rollback_folder(tmp_path: Path) -> None:
    root = make(tmp_path, {f"prisma/migrations/{A}/migration.sql": "SELECT 1;\n"})
    project = load_project(root)
    assert project.provider is None
    assert [m.id for m in project.migrations] == [A]


def test_prisma_sqlite_provider(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            "prisma/migrations/migration_lock.toml": '# comment\nprovider = "sqlite"\n',
            f"prisma/migrations/{A}/migration.sql": "SELECT 1;\n",
        },
    )
    assert load_project(root).provider == "sqlite"


def test_prisma_invalid_lock_file_names_it(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            "prisma/migrations/migration_lock.toml": "provider = \n",
            f"prisma/migrations/{A}/migration.sql": "SELECT 1;\n",
        },
    )
    message = str(load_error(root))
    assert message.startswith(
        "prisma/migrations/migration_lock.toml: cannot read migration_lock.toml: "
    )


def test_prisma_down_sql_and_rollback_file_together(tmp_path: Path) -> None:
    root = make(tmp_path, {**PRISMA, f"prisma/migrations/{A}/down.sql": "DROP TABLE users;\n"})
    exc = load_error(root)
    assert str(exc) == (
        f"prisma/rollback/{A}_rollback.sql: migration {A} has two rollback scripts: "
        f"prisma/migrations/{A}/down.sql and prisma/rollback/{A}_rollback.sql"
    )
    assert exc.hint == "keep one of them"


def test_prisma_same_partial_in_both_places(tmp_path: Path) -> None:
    root = make(tmp_path, {**PRISMA, f"prisma/rollback/{B}_rollback.cleanup.sql": "SELECT 1;\n"})
    assert str(load_error(root)) == (
        f"prisma/rollback/{B}_rollback.cleanup.sql: migration {B} has two partial rollbacks "
        f"'cleanup': prisma/migrations/{B}/down.cleanup.sql and "
        f"prisma/rollback/{B}_rollback.cleanup.sql"
    )


def test_prisma_rollback_without_migration_suggests_the_closest(tmp_path: Path) -> None:
    typo = "20240101000000_inti"
    root = make(tmp_path, {**PRISMA, f"prisma/rollback/{typo}_rollback.sql": "SELECT 1;\n"})
    exc = load_error(root)
    assert str(exc) == (
        f"prisma/rollback/{typo}_rollback.sql: rollback for migration '{typo}', "
        "which does not exist"
    )
    assert exc.hint == f"did you mean {A}?"


def test_prisma_partial_without_migration(tmp_path: Path) -> None:
    root = make(tmp_path, {**PRISMA, "prisma/rollback/zzz_rollback.p.sql": "SELECT 1;\n"})
    exc = load_error(root)
    assert str(exc) == (
        "prisma/rollback/zzz_rollback.p.sql: rollback for migration 'zzz', which does not exist"
    )
    assert exc.hint is None


def test_prisma_folder_without_migration_sql(tmp_path: Path) -> None:
    root = make(tmp_path, {**PRISMA, "prisma/migrations/20240404000000_empty/down.sql": "x"})
    exc = load_error(root)
    assert str(exc) == (
        "prisma/migrations/20240404000000_empty: migration folder without migration.sql"
    )


def test_prisma_unrecognised_file_in_the_rollback_folder(tmp_path: Path) -> None:
    root = make(tmp_path, {**PRISMA, "prisma/rollback/notes.sql": "SELECT 1;\n"})
    assert str(load_error(root)) == (
        "prisma/rollback/notes.sql: unrecognised file in the rollback folder "
        "(expected <migration>_rollback.sql or <migration>_rollback.<part>.sql)"
    )


def test_prisma_unrecognised_file_in_a_migration_folder(tmp_path: Path) -> None:
    root = make(tmp_path, {**PRISMA, f"prisma/migrations/{C}/fixup.sql": "SELECT 1;\n"})
    assert str(load_error(root)) == (
        f"prisma/migrations/{C}/fixup.sql: unrecognised SQL file in a migration folder "
        "(expected down.sql or down.<part>.sql)"
    )


def test_prisma_rollback_file_in_the_wrong_migration_folder(tmp_path: Path) -> None:
    root = make(tmp_path, {**PRISMA, f"prisma/migrations/{C}/{A}_rollback.sql": "SELECT 1;\n"})
    assert str(load_error(root)) == (
        f"prisma/migrations/{C}/{A}_rollback.sql: rollback names migration '{A}' but sits in {C}/"
    )


def test_prisma_rollback_file_named_for_its_own_folder_is_accepted(tmp_path: Path) -> None:
    root = make(tmp_path, {**PRISMA, f"prisma/migrations/{C}/{C}_rollback.sql": "SELECT 1;\n"})
    down = load_project(root).migrations[2].down
    assert down is not None and down.display == f"prisma/migrations/{C}/{C}_rollback.sql"


def test_prisma_sql_file_loose_in_the_migrations_folder(tmp_path: Path) -> None:
    # e.g. a rollback dropped next to the migration folders: never skipped silently
    root = make(tmp_path, {**PRISMA, f"prisma/migrations/{C}_rollback.sql": "DROP TABLE v;\n"})
    assert str(load_error(root)) == (
        f"prisma/migrations/{C}_rollback.sql: unrecognised SQL file in the migrations folder "
        "(a migration is a folder holding migration.sql; rollbacks go in prisma/rollback/ or "
        "the migration's folder as down.sql)"
    )


def test_prisma_directive_errors_name_file_and_line(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {**PRISMA, f"prisma/migrations/{C}/migration.sql": "SELECT 1;\n-- backout:risk HIGH\n"},
    )
    assert str(load_error(root)) == (
        f"prisma/migrations/{C}/migration.sql:2: directive 'risk' is not allowed in a forward "
        "script (only in: partial, rollback)"
    )


def test_prisma_explicit_rollback_dir(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            f"prisma/migrations/{A}/migration.sql": "SELECT 1;\n",
            f"ops/rollbacks/{A}_rollback.sql": "SELECT 2;\n",
        },
    )
    project = load_project(root, rollback_dir=root / "ops" / "rollbacks")
    down = project.migrations[0].down
    assert down is not None and down.display == f"ops/rollbacks/{A}_rollback.sql"
    exc = load_error(root, rollback_dir=root / "nowhere")
    assert str(exc) == "nowhere: rollback folder does not exist"


# --- plain (golang-migrate) -----------------------------------------------------------------------

PLAIN = {
    "migrations/1_users.up.sql": "CREATE TABLE users (id int);\n",
    "migrations/1_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/2_items.up.sql": "CREATE TABLE items (id int);\n",
    "migrations/2_items_rollback.purge.sql": "DELETE FROM items;\n",
    "migrations/10_orders.up.sql": "CREATE TABLE orders (id int);\n",
    "migrations/10_orders.down.sql": "DROP TABLE orders;\n",
    "migrations/10_orders.down.cleanup.sql": "DELETE FROM orders;\n",
    "migrations/README.md": "ignored\n",
}


def test_plain_project_in_numeric_order(tmp_path: Path) -> None:
    root = make(tmp_path, PLAIN)
    assert detect(root) == ("plain", root / "migrations")
    project = load_project(root)
    assert (project.layout, project.ledger, project.provider) == ("plain", "backout", None)
    assert [m.id for m in project.migrations] == ["1_users", "2_items", "10_orders"]
    assert [m.key for m in project.migrations] == ["1", "2", "10"]
    assert [(m.version, m.name) for m in project.migrations] == [
        ("1", "users"),
        ("2", "items"),
        ("10", "orders"),
    ]
    users, items, orders = project.migrations
    assert users.up.display == "migrations/1_users.up.sql"
    assert users.down is not None and users.down.directives.risk is Risk.HIGH
    assert items.down is None
    assert [(n, s.display) for n, s in items.partials] == [
        ("purge", "migrations/2_items_rollback.purge.sql")
    ]
    assert orders.down is not None and orders.down.display == "migrations/10_orders.down.sql"
    assert [(n, s.kind) for n, s in orders.partials] == [("cleanup", ScriptKind.PARTIAL)]


def test_plain_in_db_migrations(tmp_path: Path) -> None:
    root = make(tmp_path, {"db/migrations/1_a.up.sql": "SELECT 1;\n"})
    assert detect(root) == ("plain", root / "db" / "migrations")
    assert [m.id for m in load_project(root).migrations] == ["1_a"]


def test_plain_version_order_is_numeric_not_textual(tmp_path: Path) -> None:
    names = ["9_a", "10_b", "100_c", "0099_d", "20240101000000_e", "2_f"]
    root = make(tmp_path, {f"migrations/{n}.up.sql": "SELECT 1;\n" for n in names})
    ids = [m.id for m in load_project(root).migrations]
    assert ids == ["2_f", "9_a", "10_b", "0099_d", "100_c", "20240101000000_e"]


def test_plain_two_migrations_with_the_same_version(tmp_path: Path) -> None:
    root = make(tmp_path, {**PLAIN, "migrations/2_other.up.sql": "SELECT 1;\n"})
    exc = load_error(root)
    assert str(exc) == (
        "migrations/2_other.up.sql: two migrations share version 2: 2_items and 2_other"
    )
    assert exc.hint == "give one of them a new version"


def test_plain_rollback_without_migration_suggests_the_closest(tmp_path: Path) -> None:
    root = make(tmp_path, {**PLAIN, "migrations/2_itemz.down.sql": "SELECT 1;\n"})
    exc = load_error(root)
    assert str(exc) == (
        "migrations/2_itemz.down.sql: rollback for migration '2_itemz', which does not exist"
    )
    assert exc.hint == "did you mean 2_items?"


def test_plain_partial_without_migration(tmp_path: Path) -> None:
    root = make(tmp_path, {**PLAIN, "migrations/3_gone.down.purge.sql": "SELECT 1;\n"})
    assert str(load_error(root)) == (
        "migrations/3_gone.down.purge.sql: rollback for migration '3_gone', which does not exist"
    )


@pytest.mark.parametrize(
    "name", ["notes.sql", "1_users.sql", "1_users.sideways.sql", "users.up.sql", "1_a.b.up.sql"]
)
def test_plain_unrecognised_sql_file(tmp_path: Path, name: str) -> None:
    root = make(tmp_path, {**PLAIN, f"migrations/{name}": "SELECT 1;\n"})
    assert str(load_error(root)) == (
        f"migrations/{name}: unrecognised SQL file (expected <version>_<name>.up.sql or .down.sql)"
    )


def test_plain_forward_migration_with_a_part_name(tmp_path: Path) -> None:
    root = make(tmp_path, {**PLAIN, "migrations/2_items.up.extra.sql": "SELECT 1;\n"})
    assert str(load_error(root)) == (
        "migrations/2_items.up.extra.sql: a forward migration cannot have a part name"
    )


def test_plain_same_partial_twice(tmp_path: Path) -> None:
    root = make(tmp_path, {**PLAIN, "migrations/2_items.down.purge.sql": "SELECT 1;\n"})
    assert str(load_error(root)) == (
        "migrations/2_items_rollback.purge.sql: migration 2_items has two partial rollbacks "
        "'purge': migrations/2_items.down.purge.sql and migrations/2_items_rollback.purge.sql"
    )


def test_plain_rollbacks_named_by_version_and_by_id_are_both_attached(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            "migrations/1_users.up.sql": "SELECT 1;\n",
            "migrations/1_users.down.sql": "SELECT 2;\n",
            "migrations/1_rollback.purge.sql": "SELECT 3;\n",
        },
    )
    (users,) = load_project(root).migrations
    assert users.down is not None and users.down.display == "migrations/1_users.down.sql"
    assert [(n, s.display) for n, s in users.partials] == [
        ("purge", "migrations/1_rollback.purge.sql")
    ]


def test_plain_two_full_rollbacks_via_id_and_version(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            "migrations/1_users.up.sql": "SELECT 1;\n",
            "migrations/1_users.down.sql": "SELECT 2;\n",
            "rollbacks/1_rollback.sql": "SELECT 3;\n",
        },
    )
    exc = load_error(root, rollback_dir=root / "rollbacks")
    assert str(exc) == (
        "rollbacks/1_rollback.sql: migration 1_users has two rollback scripts: "
        "migrations/1_users.down.sql and rollbacks/1_rollback.sql"
    )


def test_plain_forward_directive_rules(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {"migrations/1_a.up.sql": "-- backout:verify SELECT 1\n-- backout:param x int\n"},
    )
    assert str(load_error(root)) == (
        "migrations/1_a.up.sql:2: directive 'param' is not allowed in a forward script "
        "(only in: partial)"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a file whatever its mode")
def test_unreadable_file_names_it(tmp_path: Path) -> None:
    root = make(tmp_path, PLAIN)
    path = root / "migrations" / "2_items.up.sql"
    path.chmod(0)
    try:
        assert str(load_error(root)) == (
            "migrations/2_items.up.sql: cannot read file: Permission denied"
        )
    finally:
        path.chmod(0o644)


def test_read_error_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same as the chmod test, but also when running as root.
    root = make(tmp_path, PLAIN)
    target = root / "migrations" / "10_orders.down.sql"
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert str(load_error(root)) == (
        "migrations/10_orders.down.sql: cannot read file: Permission denied"
    )


def test_non_utf8_migration_names_file_and_line(tmp_path: Path) -> None:
    root = make(tmp_path, {**PLAIN, "migrations/2_items.up.sql": b"SELECT 1;\n-- \xff\n"})
    assert str(load_error(root)) == (
        "migrations/2_items.up.sql:2: not valid UTF-8 (byte 0xff at offset 13)"
    )


# --- dbmate ---------------------------------------------------------------------------------------

DBMATE_A_UP = "CREATE TABLE users (id int);\n-- backout:verify SELECT 1\n\n"
DBMATE_A_DOWN = "-- backout:risk HIGH\n-- backout:impact drops users\nDROP TABLE users;\n"
DBMATE_A = f"-- a preamble comment\n-- migrate:up\n{DBMATE_A_UP}-- migrate:down\n{DBMATE_A_DOWN}"
DBMATE = {
    "db/migrations/20240101000000_users.sql": DBMATE_A,
    "db/migrations/20240102000000_index.sql": (
        "-- migrate:up transaction:false\n"
        "CREATE INDEX CONCURRENTLY i ON users (id);\n"
        "-- migrate:down transaction:false\n"
        "DROP INDEX CONCURRENTLY i;\n"
    ),
    "db/migrations/20240103000000_seed.sql": "-- migrate:up\nINSERT INTO users VALUES (1);\n",
    "db/migrations/20240103000000_seed_rollback.wipe.sql": "DELETE FROM users;\n",
}


def test_dbmate_project(tmp_path: Path) -> None:
    root = make(tmp_path, DBMATE)
    assert detect(root) == ("dbmate", root / "db" / "migrations")
    project = load_project(root)
    assert (project.layout, project.ledger) == ("dbmate", "backout")
    users, index, seed = project.migrations
    assert [m.id for m in project.migrations] == [
        "20240101000000_users",
        "20240102000000_index",
        "20240103000000_seed",
    ]
    assert [m.key for m in project.migrations] == [
        "20240101000000",
        "20240102000000",
        "20240103000000",
    ]
    assert users.up.text == DBMATE_A_UP
    assert users.up.first_line == 3
    assert users.up.kind is ScriptKind.FORWARD
    assert users.up.directives.verify == (SqlCheck("SELECT 1", 4),)
    assert users.up.checksum == sha(DBMATE_A_UP)
    assert users.up.display == "db/migrations/20240101000000_users.sql"
    assert users.down is not None
    assert users.down.text == DBMATE_A_DOWN
    assert (users.down.first_line, users.down.kind) == (7, ScriptKind.ROLLBACK)
    assert users.down.directives.risk is Risk.HIGH
    assert users.down.directives.impact == ("drops users",)
    assert users.up.directives.transaction and users.down.directives.transaction
    assert index.up.directives.transaction is False
    assert index.down is not None and index.down.directives.transaction is False
    assert seed.down is None
    assert [(n, s.display) for n, s in seed.partials] == [
        ("wipe", "db/migrations/20240103000000_seed_rollback.wipe.sql")
    ]


def test_dbmate_checksum_covers_only_the_up_section(tmp_path: Path) -> None:
    root = make(tmp_path, DBMATE)
    before = load_project(root).migrations[0]
    path = root / "db/migrations/20240101000000_users.sql"
    path.write_text(DBMATE_A.replace("DROP TABLE users;", "DROP TABLE IF EXISTS users;"))
    edited_down = load_project(root).migrations[0]
    assert edited_down.up.checksum == before.up.checksum
    assert edited_down.down is not None and before.down is not None
    assert edited_down.down.checksum != before.down.checksum
    path.write_text(DBMATE_A.replace("-- a preamble comment", "-- another preamble"))
    assert load_project(root).migrations[0].up.checksum == before.up.checksum
    path.write_text(
        DBMATE_A.replace("CREATE TABLE users (id int)", "CREATE TABLE users (id bigint)")
    )
    assert load_project(root).migrations[0].up.checksum != before.up.checksum


def test_dbmate_crlf_checkout_matches_the_lf_checksum(tmp_path: Path) -> None:
    lf = make(tmp_path / "lf", DBMATE)
    crlf_files = {k: v.replace("\n", "\r\n").encode() for k, v in DBMATE.items()}
    crlf = make(tmp_path / "crlf", crlf_files)
    up_lf = load_project(lf).migrations[0].up
    up_crlf = load_project(crlf).migrations[0].up
    assert up_lf.checksum != up_crlf.checksum
    assert up_crlf.matches_checksum(up_lf.checksum)
    assert up_lf.matches_checksum(up_crlf.checksum)
    assert up_crlf.directives.verify == (SqlCheck("SELECT 1", 4),)


def test_dbmate_bom_and_form_feed_keep_line_numbers(tmp_path: Path) -> None:
    text = "\ufeff-- migrate:up\nSELECT '\x0c';\n-- backout:rsik HIGH\n"
    root = make(tmp_path, {"db/migrations/1_a.sql": text.encode()})
    assert str(load_error(root)).startswith("db/migrations/1_a.sql:3: unknown directive 'rsik'")


def test_dbmate_numeric_order(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {f"db/migrations/{v}_m.sql": "-- migrate:up\nSELECT 1;\n" for v in ("100", "9", "10")},
    )
    assert [m.id for m in load_project(root).migrations] == ["9_m", "10_m", "100_m"]


def test_dbmate_same_version_twice(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            "db/migrations/5_a.sql": "-- migrate:up\nSELECT 1;\n",
            "db/migrations/5_b.sql": "-- migrate:up\nSELECT 2;\n",
        },
    )
    assert (
        str(load_error(root))
        == "db/migrations/5_b.sql: two migrations share version 5: 5_a and 5_b"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "SELECT 1;\n-- migrate:down\nSELECT 2;\n",
            "db/migrations/2_bad.sql: expected exactly one '-- migrate:up' marker",
        ),
        (
            "-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n",
            "db/migrations/2_bad.sql:3: '-- migrate:up' appears more than once",
        ),
        (
            "-- migrate:up\nSELECT 1;\n-- migrate:down\n\n-- migrate:down\n",
            "db/migrations/2_bad.sql:5: '-- migrate:down' appears more than once",
        ),
        (
            "-- migrate:down\nSELECT 2;\n-- migrate:up\nSELECT 1;\n",
            "db/migrations/2_bad.sql:1: '-- migrate:down' comes before '-- migrate:up'",
        ),
        (
            "-- intro\n-- backout:risk HIGH\n-- migrate:up\nSELECT 1;\n",
            "db/migrations/2_bad.sql:2: directive before '-- migrate:up': "
            "put it inside the section it belongs to",
        ),
        (
            "-- migrate:up transaction:maybe\nSELECT 1;\n",
            "db/migrations/2_bad.sql:1: unknown dbmate option 'transaction:maybe' "
            "(known: transaction:true|false)",
        ),
        (
            "-- migrate:up\nSELECT 1;\n\n-- migrate:down fast:true\nSELECT 2;\n",
            "db/migrations/2_bad.sql:4: unknown dbmate option 'fast:true' "
            "(known: transaction:true|false)",
        ),
        (
            "-- migrate:up\nSELECT 1;\n-- migrate:down\n-- backout:risk SEVERE\n",
            "db/migrations/2_bad.sql:4: risk must be one of NONE, LOW, MEDIUM, HIGH (got 'SEVERE')",
        ),
        (
            "-- migrate:up\n-- backout:risk HIGH\nSELECT 1;\n",
            "db/migrations/2_bad.sql:2: directive 'risk' is not allowed in a forward script "
            "(only in: partial, rollback)",
        ),
    ],
)
def test_dbmate_errors(tmp_path: Path, text: str, message: str) -> None:
    root = make(tmp_path, {**DBMATE, "db/migrations/2_bad.sql": text})
    assert str(load_error(root)) == message


def test_dbmate_unrecognised_sql_file(tmp_path: Path) -> None:
    root = make(tmp_path, {**DBMATE, "db/migrations/seed.sql": "-- migrate:up\nSELECT 1;\n"})
    assert str(load_error(root)) == (
        "db/migrations/seed.sql: unrecognised SQL file "
        "(expected <version>_<name>.sql with -- migrate:up)"
    )


def test_dbmate_partial_without_migration(tmp_path: Path) -> None:
    root = make(tmp_path, {**DBMATE, "db/migrations/20240109000000_seed_rollback.x.sql": "x"})
    exc = load_error(root)
    assert str(exc) == (
        "db/migrations/20240109000000_seed_rollback.x.sql: rollback for migration "
        "'20240109000000_seed', which does not exist"
    )
    assert exc.hint == "did you mean 20240103000000_seed?"


def test_dbmate_transaction_directive_and_option(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            "db/migrations/1_a.sql": (
                "-- migrate:up transaction:true\n-- backout:transaction off\nVACUUM;\n"
                "-- migrate:down transaction:false\n-- backout:transaction on\nSELECT 1;\n"
            )
        },
    )
    (migration,) = load_project(root).migrations
    assert migration.up.directives.transaction is False
    assert migration.down is not None and migration.down.directives.transaction is False


# --- detection -----------------------------------------------------------------------------------


def test_no_migrations_folder(tmp_path: Path) -> None:
    make(tmp_path, {"README.md": "hello\n", "migrations/notes.txt": "x"})
    exc = load_error(tmp_path)
    assert str(exc) == (
        f"no migrations folder found in {tmp_path} "
        "(looked for prisma/migrations, migrations/, db/migrations/ and Flyway's db/migration/)"
    )


def test_two_layouts_in_one_project(tmp_path: Path) -> None:
    root = make(tmp_path, {**PLAIN, f"prisma/migrations/{A}/migration.sql": "SELECT 1;\n"})
    exc = load_error(root)
    assert str(exc) == "ambiguous layout: found plain (migrations), prisma (prisma/migrations)"
    assert exc.hint == "set layout (and migrations_dir) in backout.toml"


def test_two_layouts_in_one_folder(tmp_path: Path) -> None:
    root = make(tmp_path, {**PLAIN, "migrations/20_x.sql": "-- migrate:up\nSELECT 1;\n"})
    assert (
        str(load_error(root)) == "ambiguous layout: found dbmate (migrations), plain (migrations)"
    )
    exc = load_error(root, migrations_dir=root / "migrations")
    assert str(exc) == (
        f"{root / 'migrations'}: ambiguous layout: the folder holds dbmate and plain migrations"
    )


def test_explicit_layout_and_folder(tmp_path: Path) -> None:
    root = make(tmp_path, {"sql/1_a.up.sql": "SELECT 1;\n"})
    assert detect(root, root / "sql") == ("plain", root / "sql")
    project = load_project(root, layout="plain", migrations_dir=root / "sql")
    assert [m.id for m in project.migrations] == ["1_a"]
    assert project.migrations[0].up.display == "sql/1_a.up.sql"


def test_explicit_folder_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert str(load_error(tmp_path, migrations_dir=missing)) == (
        f"{missing}: migrations folder does not exist"
    )
    assert str(load_error(tmp_path, layout="plain")) == (
        f"{tmp_path / 'migrations'}: migrations folder does not exist"
    )


def test_explicit_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    exc = load_error(tmp_path, migrations_dir=tmp_path / "sql")
    assert str(exc) == f"{tmp_path / 'sql'}: cannot tell the layout of an empty migrations folder"
    # an empty prisma/migrations is a new Prisma project
    (tmp_path / "prisma" / "migrations").mkdir(parents=True)
    assert load_project(tmp_path).layout == "prisma"
    assert load_project(tmp_path).migrations == ()


def test_unknown_layout_name(tmp_path: Path) -> None:
    assert str(load_error(tmp_path, layout="liquibase")) == (
        "unknown layout 'liquibase' (known: prisma, plain, dbmate, flyway)"
    )


# --- Project.find ---------------------------------------------------------------------------------


def find_error(project: Project, ref: str) -> UsageError:
    with pytest.raises(UsageError) as info:
        project.find(ref)
    return info.value


def test_find_by_id_key_version_and_path(tmp_path: Path) -> None:
    prisma = load_project(make(tmp_path / "p", PRISMA))
    assert prisma.find(A).id == A
    assert prisma.find("20240202000000").id == B
    assert prisma.find(f"prisma/migrations/{C}/").id == C
    assert prisma.find(f"  {A}  ").id == A
    plain = load_project(make(tmp_path / "q", PLAIN))
    assert plain.find("10").id == "10_orders"
    assert plain.find("10_orders").id == "10_orders"
    assert plain.index_of(plain.find("2")) == 1


def test_find_ambiguous_version(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            "prisma/migrations/20240101000000_a/migration.sql": "SELECT 1;\n",
            "prisma/migrations/20240101000000_b/migration.sql": "SELECT 2;\n",
        },
    )
    project = load_project(root)
    assert str(find_error(project, "20240101000000")) == (
        "migration reference '20240101000000' is ambiguous: 20240101000000_a, 20240101000000_b"
    )
    assert project.find("20240101000000_b").id == "20240101000000_b"


def test_find_unknown_suggests_the_closest(tmp_path: Path) -> None:
    project = load_project(make(tmp_path, PLAIN))
    exc = find_error(project, "10_ordres")
    assert str(exc) == "unknown migration '10_ordres'"
    assert exc.hint == "did you mean 10_orders?"
    far = find_error(project, "zzzzzzzzzzzz")
    assert far.hint == "see `backout status` for the ids"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (f"prisma/migrations/{A}/migration.sql", A),
        (f"prisma/migrations/{B}/down.sql", B),
        (f"prisma/migrations/{B}/down.cleanup.sql", B),
        (f"prisma/rollback/{A}_rollback.sql", A),
        (f"prisma/rollback/{A}_rollback.purge.sql", A),
        (f"{C}_rollback.sql", C),
    ],
)
def test_find_by_a_pasted_prisma_file_path(tmp_path: Path, ref: str, expected: str) -> None:
    assert load_project(make(tmp_path, PRISMA)).find(ref).id == expected


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("migrations/1_users.up.sql", "1_users"),
        ("1_users.down.sql", "1_users"),
        ("migrations/10_orders.down.cleanup.sql", "10_orders"),
        ("./migrations/2_items_rollback.purge.sql", "2_items"),
    ],
)
def test_find_by_a_pasted_plain_file_path(tmp_path: Path, ref: str, expected: str) -> None:
    assert load_project(make(tmp_path, PLAIN)).find(ref).id == expected


def test_find_by_a_pasted_dbmate_file_path(tmp_path: Path) -> None:
    project = load_project(make(tmp_path, DBMATE))
    assert project.find("db/migrations/20240101000000_users.sql").id == "20240101000000_users"
    assert str(find_error(project, "db/migrations/20240101000000_usres.sql")) == (
        "unknown migration '20240101000000_usres'"
    )
