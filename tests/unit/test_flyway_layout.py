"""The Flyway layout: names, versions, descriptions, settings files, checksums as Flyway's.

The golden checksums below were derived by hand from Flyway's source, not from backout's code:
``LoadableResource.calculateChecksum`` (2023-2024 sources; ``ChecksumCalculator`` before) reads the
file with ``BufferedReader.readLine`` (terminators ``\\n``, ``\\r``, ``\\r\\n`` dropped), drops a
BOM from the first line (``BomFilter.FilterBomFromString``), feeds each line's UTF-8 bytes into
one ``java.util.zip.CRC32`` and stores ``(int) crc32.getValue()``, a signed 32-bit int. The
numbers were computed once with ``zlib.crc32`` following those steps line by line and are
written here as literals.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from backout.model.errors import ProjectError
from backout.project.config import Config
from backout.project.layouts import detect, load_project
from backout.project.layouts.flyway import (
    FlywaySettings,
    flyway_checksum,
    parse_name,
    read_settings,
    version_parts,
)
from backout.project.migration import Project
from backout.project.scaffold import new

BODY = "CREATE TABLE users (id int);{eol}INSERT INTO users VALUES (1);{eol}"
#: Flyway's checksum of BODY, whatever its line endings (the Java steps, by hand)
BODY_CHECKSUM = -1929710232


def make(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def checksum_of(root: Path, data: bytes) -> int:
    make(root, {"db/migration/V1__x.sql": data})
    project = load_project(root)
    return flyway_checksum(project.migrations[0].up.text)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"", 0, id="empty file: no line, CRC32 of nothing"),
        pytest.param(BODY.format(eol="\n").encode(), BODY_CHECKSUM, id="LF"),
        pytest.param(BODY.format(eol="\r\n").encode(), BODY_CHECKSUM, id="CRLF"),
        pytest.param(BODY.format(eol="\r").encode(), BODY_CHECKSUM, id="CR (old Mac)"),
        pytest.param(b"\xef\xbb\xbf" + BODY.format(eol="\n").encode(), BODY_CHECKSUM, id="BOM"),
        pytest.param(BODY.format(eol="\n").encode()[:-1], BODY_CHECKSUM, id="no final newline"),
        pytest.param(
            "CREATE TABLE café (naïve text); -- 日本 😀\n".encode(), 1093894549, id="non-ASCII"
        ),
        pytest.param(b"\n\nSELECT 1;\n\n", 78787420, id="blank lines add nothing"),
        pytest.param(b"SELECT 2;\n", 798974111, id="positive"),
    ],
)
def test_checksum_is_flyways(tmp_path: Path, data: bytes, expected: int) -> None:
    assert checksum_of(tmp_path, data) == expected


def test_checksum_is_a_signed_32_bit_int() -> None:
    assert flyway_checksum(BODY.format(eol="\n")) == BODY_CHECKSUM < 0
    values = [flyway_checksum(f"SELECT {i};") for i in range(200)]
    assert all(-(2**31) <= v < 2**31 for v in values)
    assert any(v < 0 for v in values) and any(v > 0 for v in values)


def test_versions_compare_as_flyway() -> None:
    assert version_parts("1.10") > version_parts("1.9")
    assert version_parts("1_1") == (1, 1)
    assert version_parts("1.0") == version_parts("1") == version_parts("1.0.0")
    assert version_parts("2") > version_parts("1.999")
    assert version_parts("20240101000000") > version_parts("9")


def test_names_parse_as_flyway() -> None:
    s = FlywaySettings()
    v = parse_name("V1_1__add_user_table.sql", s)
    assert v is not None and (v.kind, v.version, v.description) == (
        "versioned",
        "1.1",
        "add user table",
    )
    u = parse_name("U1.1__add_user_table.sql", s)
    assert u is not None and (u.kind, u.version) == ("undo", "1.1")
    r = parse_name("R__refresh_views.sql", s)
    assert r is not None
    assert (r.kind, r.version, r.description) == ("repeatable", "", "refresh views")
    assert parse_name("V2.sql", s) is not None  # no description: Flyway accepts it
    for ignored in ("README.sql", "afterMigrate.sql", "notes.txt", "Vacuum.sql", "v1__lower.sql"):
        assert parse_name(ignored, s) is None, ignored
    with pytest.raises(ProjectError, match=r"cannot read version '1\.x'"):
        parse_name("V1.x__broken.sql", s)


PROJECT = {
    "db/migration/V1__create_users.sql": "CREATE TABLE users (id int);\n",
    "db/migration/U1__create_users.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "db/migration/V1.9__nine.sql": "CREATE TABLE nine (id int);\n",
    "db/migration/sub/V1_10__ten.sql": "CREATE TABLE ten (id int);\n",
    "db/migration/U1.10__ten.sql": "DROP TABLE ten;\n",
    "db/migration/R__views.sql": "CREATE OR REPLACE VIEW v AS SELECT 1 AS x;\n",
    "db/migration/afterMigrate.sql": "-- a Flyway callback: not a migration\n",
    "db/rollback/V1_10__ten_rollback.purge.sql": "DELETE FROM ten;\n",
}


def test_project_in_flyway_order_with_undo_and_repeatables(tmp_path: Path) -> None:
    make(tmp_path, PROJECT)
    assert detect(tmp_path) == ("flyway", tmp_path / "db/migration")
    project = load_project(tmp_path)
    assert project.layout == "flyway"
    assert [m.key for m in project.migrations] == ["1", "1.9", "1.10"]
    assert [m.id for m in project.migrations] == ["V1__create_users", "V1.9__nine", "V1_10__ten"]
    first, nine, ten = project.migrations
    assert first.down is not None and first.down.display == "db/migration/U1__create_users.sql"
    assert nine.down is None
    assert ten.up.display == "db/migration/sub/V1_10__ten.sql"
    assert ten.down is not None and ten.down.display == "db/migration/U1.10__ten.sql"
    assert [part for part, _ in ten.partials] == ["purge"]
    assert [s.display for s in project.repeatables] == ["db/migration/R__views.sql"]
    assert project.find("1.10") is ten and project.find("V1_10__ten") is ten


def test_undo_pairs_by_version_value(tmp_path: Path) -> None:
    make(
        tmp_path,
        {"db/migration/V1__a.sql": "SELECT 1;\n", "db/migration/U1.0__a.sql": "SELECT 2;\n"},
    )
    (migration,) = load_project(tmp_path).migrations
    assert migration.down is not None


def test_same_version_twice_is_refused(tmp_path: Path) -> None:
    make(tmp_path, {"db/migration/V1__a.sql": "", "db/migration/V1.0__b.sql": ""})
    with pytest.raises(ProjectError, match="share version") as info:
        load_project(tmp_path)
    assert "V1__a.sql" in str(info.value) and "V1.0__b.sql" in str(info.value)


def test_undo_without_migration_is_refused(tmp_path: Path) -> None:
    make(tmp_path, {"db/migration/V1__a.sql": "", "db/migration/U2__b.sql": ""})
    with pytest.raises(ProjectError, match="rollback for migration '2'"):
        load_project(tmp_path)


def test_maven_layout_is_detected(tmp_path: Path) -> None:
    make(tmp_path, {"src/main/resources/db/migration/V1__a.sql": "SELECT 1;\n"})
    assert detect(tmp_path) == ("flyway", tmp_path / "src/main/resources/db/migration")


def test_flyway_conf_settings(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "flyway.conf": "# Flyway settings\nflyway.url=jdbc:postgresql://x/y\n"
            "flyway.locations=filesystem:sql/one,\\\n  filesystem:sql/two\n"
            "flyway.sqlMigrationPrefix=M\nflyway.sqlMigrationSeparator=-\n"
            "flyway.table=schema_history\nflyway.schemas=app,audit\n",
            "sql/one/M1-first.sql": "SELECT 1;\n",
            "sql/two/M2-second.sql": "SELECT 2;\n",
        },
    )
    settings = read_settings(tmp_path)
    assert settings.locations == ("filesystem:sql/one", "filesystem:sql/two")
    assert (settings.prefix, settings.separator, settings.table) == ("M", "-", "schema_history")
    assert settings.schemas == ("app", "audit")
    assert detect(tmp_path) == ("flyway", tmp_path / "sql/one")
    project = load_project(tmp_path)
    assert [m.key for m in project.migrations] == ["1", "2"]


def test_flyway_toml_settings(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "flyway.toml": '[environments.prod]\nurl = "jdbc:postgresql://x/y"\n'
            'schemas = ["app"]\n\n[flyway]\nenvironment = "prod"\n'
            'locations = ["filesystem:migrations"]\ntable = "fsh"\n',
            "migrations/V1__first.sql": "SELECT 1;\n",
        },
    )
    settings = read_settings(tmp_path)
    assert settings.locations == ("filesystem:migrations",)
    assert (settings.table, settings.schemas) == ("fsh", ("app",))
    assert detect(tmp_path) == ("flyway", tmp_path / "migrations")


def test_wildcard_location_is_refused(tmp_path: Path) -> None:
    make(tmp_path, {"flyway.conf": "flyway.locations=filesystem:db/**/migration\n"})
    with pytest.raises(ProjectError, match="wildcard") as info:
        detect(tmp_path)
    assert "flyway.conf" in str(info.value)


def test_explicit_layout_and_new_scaffold_flyway_names(tmp_path: Path) -> None:
    (tmp_path / "db/migration").mkdir(parents=True)
    config = Config(root=tmp_path, layout="flyway")
    result = new(config, "Add Users")
    names = sorted(p.name for p in result.created)
    assert names[0].startswith("U") and names[0].endswith("__add_users.sql")
    assert names[1] == "V" + names[0][1:]
    project: Project = load_project(tmp_path, layout="flyway")
    (migration,) = project.migrations
    assert migration.down is not None and migration.id == result.migration_id


def test_undo_path_follows_the_projects_prefixes(tmp_path: Path) -> None:
    from backout.project.layouts.flyway import undo_path

    assert undo_path(tmp_path, tmp_path / "db/migration/sub/V1_1__a.sql") == (
        tmp_path / "db/migration/sub/U1_1__a.sql"
    )
    make(
        tmp_path, {"flyway.conf": "flyway.sqlMigrationPrefix=M\nflyway.undoSqlMigrationPrefix=D\n"}
    )
    assert undo_path(tmp_path, tmp_path / "x/M2__b.sql") == tmp_path / "x/D2__b.sql"
    (tmp_path / "db/migration").mkdir(parents=True)
    created = new(Config(root=tmp_path, layout="flyway"), "c").created
    assert sorted(p.name[0] for p in created) == ["D", "M"]
