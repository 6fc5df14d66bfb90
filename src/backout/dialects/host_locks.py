"""The migration locks other tools take, computed exactly as each tool computes them (issue #15).

backout's run lock also takes the host tool's own lock, so the tool and backout never migrate
one database at the same time (see docs/history.md, tool by tool, for the derivation):

- golang-migrate (``database/util.go`` ``GenerateAdvisoryLockId``): the CRC-32 (IEEE) of its
  names joined by a NUL byte, times the salt 1486364155, modulo 2**32 (Go ``uint32``);
- Flyway (``PostgreSQLAdvisoryLockTemplate``, ``MySQLNamedLockTemplate``): Java's
  ``String.hashCode()`` of the history table as Flyway quotes it, added to the magic number
  spelling "Flyway" (PostgreSQL), or after ``Flyway-`` (MySQL).

Pure functions: the dialects pick which one their database needs.
"""

from __future__ import annotations

import zlib

from backout.model.identifiers import quote_identifier

#: ``advisoryLockIdSalt`` in golang-migrate's database/util.go
GOLANG_MIGRATE_SALT = 1486364155
#: ``LOCK_MAGIC_NUM`` in Flyway's PostgreSQLAdvisoryLockTemplate: the bytes of "Flyway"
FLYWAY_LOCK_MAGIC_NUM = int.from_bytes(b"Flyway", "big")


def golang_migrate_lock_id(database_name: str, *additional_names: str) -> int:
    """golang-migrate's ``GenerateAdvisoryLockId(databaseName, additionalNames...)``."""
    data = "\x00".join((database_name, *additional_names)).encode()
    return (zlib.crc32(data) * GOLANG_MIGRATE_SALT) & 0xFFFFFFFF


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode()``: over UTF-16 code units, as a signed 32-bit int."""
    units = text.encode("utf-16-be")
    value = 0
    for i in range(0, len(units), 2):
        value = (value * 31 + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def flyway_postgres_key(schema: str, table: str) -> int:
    """Flyway's advisory lock key for ``"schema"."table"`` (``Table.toString()``)."""
    # PostgreSQLDatabase.doQuote: always quoted, a '"' doubled (the standard rule)
    quoted = f"{quote_identifier(schema)}.{quote_identifier(table)}"
    return FLYWAY_LOCK_MAGIC_NUM + java_string_hash(quoted)


def flyway_mysql_name(database: str, table: str) -> str:
    """Flyway's named lock for ```database`.`table``` (MySQL quotes without escaping)."""
    return f"Flyway-{java_string_hash(f'`{database}`.`{table}`')}"
