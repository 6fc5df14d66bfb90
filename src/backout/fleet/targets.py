"""The targets file (``--targets FILE``): the databases or schemas one command runs on.

One line each, ``#`` starts a comment, blank lines are skipped (docs/fleet.md)::

    postgresql://app@db1:5432/shop          # a database URL: one target
    base = postgresql://app@db2:5432/saas   # the base of the lines below it
    schema = tenant_a                       # base?schema=tenant_a (MySQL: the database)
    database = tenant_b                     # the base's server, database tenant_b
    query = SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant%' ORDER BY 1

A ``query`` runs on the base (in a transaction that is rolled back) when the file is read;
each row's first column is a URL, or a name taken as a ``schema =`` line. Every problem is
refused, naming the file and line, before any target is touched: a line that is none of
these, a ``schema``/``database``/``query`` before any ``base``, an empty list, the same
database twice. Passwords never leave this module: a target is shown masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from backout.dialects import dialect_for
from backout.dialects.base import Actor, Dialect
from backout.model.errors import BackoutError, ConfigError
from backout.model.urls import DatabaseURL, mask_url, parse_url, with_params

__all__ = ["Target", "lock_scope", "read_targets", "sharing_a_database"]

_DIRECTIVE = re.compile(r"^(?P<key>[a-z_]+)\s*=\s*(?P<value>.*)$")
_KEYS = ("base", "schema", "database", "query")
_NAME = re.compile(r"^[^\s/?#'\"\\]{1,63}$")


@dataclass(frozen=True)
class Target:
    """One database (or schema) of the fleet; ``str()`` is masked."""

    #: the URL to connect with (may hold a password: never show it, use :attr:`name`)
    url: str
    #: ``FILE:LINE`` of the line that named it
    origin: str

    @property
    def name(self) -> str:
        """The target as shown everywhere: its URL with the password masked."""
        return parse_url(self.url, base_dir=Path.cwd()).masked()

    def __str__(self) -> str:
        return self.name


def read_targets(path: Path, *, base_dir: Path) -> list[Target]:
    """The targets ``path`` lists, in its order; ConfigError naming the file and line for a
    line that is not understood, an empty list, or a database named twice. Runs the file's
    ``query`` lines on their base (read-only)."""
    try:
        # utf-8-sig: a byte order mark (Windows editors write one) is not part of the first line
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the targets file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the targets file is not valid UTF-8") from exc
    targets: list[Target] = []
    base: DatabaseURL | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        if not line:
            continue
        where = f"{path}:{number}"
        match = _DIRECTIVE.match(line)
        if match is None:
            targets.append(Target(_url(line, where, base_dir).raw, where))
            continue
        key, value = match["key"], match["value"].strip()
        if key == "base":
            base = _url(value, where, base_dir)
        else:
            targets.extend(_from_base(key, value, base, where))
    if not targets:
        raise ConfigError(
            f"{path}: the targets file lists no target",
            hint="one database URL per line, or `base = URL` then `schema = NAME` lines "
            "(docs/fleet.md)",
        )
    _refuse_duplicates(targets, base_dir)
    return targets


def _strip_comment(raw: str) -> str:
    """The line without its comment: ``#`` at the start, or after a space (a URL may hold
    ``#`` in a password, which must be percent-encoded as ``%23`` anyway)."""
    line = raw.strip()
    if line.startswith("#"):
        return ""
    return re.split(r"\s#", line, maxsplit=1)[0].strip()


def _url(value: str, where: str, base_dir: Path) -> DatabaseURL:
    """A database URL of the file, ConfigError naming the line otherwise."""
    if "://" not in value and not value.startswith("file:"):
        # The line itself is not shown: it may hold a password in a form no mask recognises.
        raise ConfigError(
            f"{where}: expected a database URL (scheme://...) or `KEY = VALUE` with KEY one of "
            f"{', '.join(_KEYS)}"
        )
    try:
        return parse_url(value, base_dir=base_dir)
    except ConfigError as exc:
        # Nor is a URL that does not parse: what looks like its password may be cut short.
        message = exc.message.replace(repr(mask_url(value)), "(the line's URL, not repeated)")
        raise ConfigError(f"{where}: {message}", hint=exc.hint) from None


def _from_base(key: str, value: str, base: DatabaseURL | None, where: str) -> list[Target]:
    """The targets of a ``schema``, ``database`` or ``query`` line."""
    if key not in _KEYS:
        raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})")
    if base is None:
        raise ConfigError(f"{where}: `{key} =` needs a `base = URL` line before it")
    if not value:
        raise ConfigError(f"{where}: `{key} =` needs a value")
    if key == "query":
        return [_named(base, row, where) for row in _query(base, value, where)]
    if key == "database":
        return [Target(_in_database(base, _name(value, where), where).raw, where)]
    return [_named(base, value, where)]


def _named(base: DatabaseURL, value: str, where: str) -> Target:
    """A ``schema =`` value (or a query's row): a URL as it is, else a schema of ``base``."""
    if "://" in value:
        return Target(_url(value, where, Path.cwd()).raw, where)
    name = _name(value, where)
    dialect = dialect_for(base)
    if dialect.has_schemas:
        return Target(with_params(base, schema=name), where)
    # Where a schema is a database (MySQL, MariaDB), the tenant's schema is its database.
    return Target(_in_database(base, name, where).raw, where)


def _in_database(base: DatabaseURL, name: str, where: str) -> DatabaseURL:
    if base.path is not None or base.database == ":memory:":
        raise ConfigError(f"{where}: a SQLite base has no other databases or schemas")
    return base.with_database(name)


def _name(value: str, where: str) -> str:
    if not _NAME.match(value):
        raise ConfigError(f"{where}: {value!r} is not a schema or database name")
    return value


def _query(base: DatabaseURL, sql: str, where: str) -> list[str]:
    """The first column of every row ``sql`` returns on ``base``, run in a transaction that
    is rolled back (it lists targets; it must change nothing)."""
    dialect = dialect_for(base)
    _one_statement(dialect, sql, where)
    try:
        session = dialect.connect(base, actor=Actor.current(), create=False)
    except BackoutError as exc:
        raise type(exc)(f"{where}: {exc.message}", hint=exc.hint) from None
    try:
        session.begin()
        try:
            rows = session.query(sql)
        finally:
            session.rollback()
    except BackoutError as exc:
        raise ConfigError(f"{where}: the query failed: {exc.message}") from None
    finally:
        session.close()
    values = [str(row[0]).strip() for row in rows if row and row[0] is not None]
    if not values:
        raise ConfigError(f"{where}: the query returned no row (no target)")
    return values


def _one_statement(dialect: Dialect, sql: str, where: str) -> None:
    """ConfigError unless ``sql`` is one statement: a second one could end the transaction
    the query is rolled back in (``COMMIT; DROP TABLE ...``) and change the base for good."""
    try:
        count = len(dialect.split(sql, where))
    except BackoutError as exc:
        raise ConfigError(f"{where}: the query does not parse: {exc.message}") from None
    if count != 1:
        raise ConfigError(
            f"{where}: `query =` takes one statement (a SELECT), not {count}: it lists the "
            "targets and must change nothing"
        )


def _identity(target: Target, base_dir: Path) -> tuple[object, ...]:
    """What makes two targets the same database: the server, the database and the schema
    (not the user, password or other parameters)."""
    url = parse_url(target.url, base_dir=base_dir)
    if url.path is not None:
        return (url.dialect, str(url.path.resolve()))
    dialect = dialect_for(url)
    port = url.port or dialect.default_port  # `h` and `h:5432` are one server
    schema = url.schema or dialect.default_schema  # `d` and `d?schema=public` one schema
    return (url.dialect, (url.host or "").lower(), port, url.database, schema)


def _refuse_duplicates(targets: list[Target], base_dir: Path) -> None:
    seen: dict[tuple[object, ...], Target] = {}
    for target in targets:
        key = _identity(target, base_dir)
        if key in seen:
            raise ConfigError(
                f"{target.origin}: {target.name} is listed twice (first at "
                f"{seen[key].origin}): a target must be run once",
            )
        seen[key] = target


def lock_scope(target: Target, base_dir: Path) -> tuple[object, ...]:
    """Targets with the same scope share a run lock (schemas of one database): commands that
    take it run them one after the other rather than wait for each other's lock."""
    identity = _identity(target, base_dir)
    return identity if len(identity) == 2 else identity[:-1]


def sharing_a_database(targets: list[Target], base_dir: Path) -> tuple[Target, Target] | None:
    """Two targets that are schemas of one database, if any."""
    seen: dict[tuple[object, ...], Target] = {}
    for target in targets:
        scope = lock_scope(target, base_dir)
        if scope in seen:
            return seen[scope], target
        seen[scope] = target
    return None
