"""Issue 15: the host tools' own migration locks, golden values computed by hand from each
tool's source (golang-migrate v4 ``database/util.go``, ``database/{postgres,mysql}``; Flyway's
``PostgreSQLAdvisoryLockTemplate`` and ``MySQLNamedLockTemplate``), independently of
:mod:`backout.dialects.host_locks` (own CRC-32 and own ``String.hashCode`` below)."""

from __future__ import annotations

import pytest

from backout.dialects import dialect_for
from backout.dialects.host_locks import (
    FLYWAY_LOCK_MAGIC_NUM,
    flyway_mysql_name,
    flyway_postgres_key,
    golang_migrate_lock_id,
    java_string_hash,
)
from backout.model.urls import parse_url


def crc32_ieee(data: bytes) -> int:
    """Go's ``crc32.ChecksumIEEE``, bit by bit (reflected polynomial 0xEDB88320)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def java_hash(text: str) -> int:
    """``s[0]*31^(n-1) + ... + s[n-1]`` in Java ``int`` arithmetic (ASCII text here)."""
    value = 0
    for char in text:
        value = (value * 31 + ord(char)) % 2**32
    return value - 2**32 if value >= 2**31 else value


def test_golang_migrate_matches_upstream_own_test_vectors() -> None:
    # database/util_test.go TestGenerateAdvisoryLockId, verbatim
    assert golang_migrate_lock_id("database_name") == 1764327054
    assert golang_migrate_lock_id("database_name", "schema_name_1") == 3244152297
    assert golang_migrate_lock_id("database_name", "schema_name_2") == 810103531


def test_golang_migrate_postgres_id_by_hand() -> None:
    # Lock(): GenerateAdvisoryLockId(DatabaseName, migrationsSchemaName, migrationsTableName);
    # Open() sets DatabaseName to the URL's path, "/app" for postgres://.../app
    data = b"/app\x00public\x00schema_migrations"
    assert crc32_ieee(data) == 1508312721  # 0x59E70691
    # sum * uint32(1486364155), wrapped to 32 bits as Go's uint32 multiplication does
    expected = 1508312721 * 1486364155 % 2**32
    assert expected == 257547563
    assert golang_migrate_lock_id("/app", "public", "schema_migrations") == expected
    url = parse_url("postgresql://u@127.0.0.1:5432/app")
    locks = dialect_for(url).host_locks(
        "golang-migrate", url, schema=None, table="schema_migrations"
    )
    assert [(lock.key, lock.owner) for lock in locks] == [(257547563, "golang-migrate")]


def test_golang_migrate_mysql_name_by_hand() -> None:
    # Lock(): GenerateAdvisoryLockId(fmt.Sprintf("%s:%s", DatabaseName, MigrationsTable)),
    # passed to GET_LOCK(?, 10) as the decimal string
    assert crc32_ieee(b"app:schema_migrations") == 1438030534  # 0x55B69AC6
    expected = 1438030534 * 1486364155 % 2**32
    assert expected == 2938252834
    url = parse_url("mysql://root@127.0.0.1:3306/app")
    locks = dialect_for(url).host_locks(
        "golang-migrate", url, schema=None, table="schema_migrations"
    )
    assert [(lock.key, lock.owner) for lock in locks] == [("2938252834", "golang-migrate")]


def test_flyway_postgres_key_by_hand() -> None:
    # LOCK_MAGIC_NUM = 'F'<<40 + 'l'<<32 + 'y'<<24 + 'w'<<16 + 'a'<<8 + 'y'
    magic = (0x46 << 40) + (0x6C << 32) + (0x79 << 24) + (0x77 << 16) + (0x61 << 8) + 0x79
    assert magic == FLYWAY_LOCK_MAGIC_NUM == 77431708279161
    # discriminator: table.toString().hashCode(), toString() = "schema"."table" quoted
    table = '"public"."flyway_schema_history"'
    assert java_hash(table) == java_string_hash(table) == 2125624436
    assert flyway_postgres_key("public", "flyway_schema_history") == magic + 2125624436
    url = parse_url("postgresql://u@127.0.0.1:5432/app")
    locks = dialect_for(url).host_locks("flyway", url, schema=None, table="flyway_schema_history")
    assert [(lock.key, lock.owner) for lock in locks] == [(77433833903597, "Flyway")]


def test_flyway_mysql_name_by_hand() -> None:
    # lockName = "Flyway-" + discriminator; toString() = `database`.`table` (backticks)
    table = "`app`.`flyway_schema_history`"
    assert java_hash(table) == java_string_hash(table) == -320650056  # a negative int
    assert flyway_mysql_name("app", "flyway_schema_history") == "Flyway--320650056"


@pytest.mark.parametrize(
    "url", ["postgresql://u@h/app", "mysql://root@h/app", "sqlite:///tmp/app.db"]
)
def test_dbmate_takes_no_lock_and_sqlite_none_at_all(url: str) -> None:
    parsed = parse_url(url)
    dialect = dialect_for(parsed)
    assert dialect.host_locks("dbmate", parsed, schema=None, table="schema_migrations") == []
    if parsed.dialect == "sqlite":
        for tool in ("golang-migrate", "flyway", "prisma"):
            assert dialect.host_locks(tool, parsed, schema=None, table="t") == []


def test_java_hash_handles_non_ascii_as_utf16() -> None:
    # "é" is one UTF-16 unit (0xE9); "😀" two (surrogates 0xD83D 0xDE00)
    assert java_string_hash("é") == 0xE9
    assert java_string_hash("😀") == 0xD83D * 31 + 0xDE00
