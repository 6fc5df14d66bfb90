"""Scripts: reading SQL files, parsing and validating ``-- backout:`` directives.

Statement splitting is dialect-specific and lives in ``dialects/``; this module only defines the
:class:`Statement` model the splitters return. The directive syntax is specified in
``docs/directives.md``; keep the two in step.
"""

from __future__ import annotations

import datetime as dt
import decimal
import difflib
import enum
import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from backout.model.errors import ProjectError


class Risk(enum.IntEnum):
    """Data-loss risk, declared by a script's author or computed by backout."""

    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    def __str__(self) -> str:
        return self.name


class ScriptKind(enum.StrEnum):
    """What a script is for; decides which directives it may carry."""

    FORWARD = "forward"
    ROLLBACK = "rollback"
    PARTIAL = "partial"


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a script, with the 1-based line where it starts in its file."""

    sql: str
    line: int
    index: int

    def excerpt(self, width: int = 80) -> str:
        """The statement on one line, shortened to ``width`` characters."""
        flat = " ".join(self.sql.split())
        return flat if len(flat) <= width else flat[: width - 1] + "…"


@dataclass(frozen=True)
class SqlCheck:
    """A query from a ``require``, ``verify`` or ``preview`` directive."""

    sql: str
    line: int


PARAM_TYPES: dict[str, str] = {
    "text": "text",
    "integer": "integer",
    "int": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "numeric": "numeric",
    "decimal": "numeric",
    "boolean": "boolean",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "uuid": "uuid",
}

_TRUE = {"true", "yes", "on", "1", "t", "y"}
_FALSE = {"false", "no", "off", "0", "f", "n"}
# ASCII digits only: int() and Decimal() also take "1_000" and non-ASCII digits, which are not
# what a user means by "an integer" and would be bound as a surprising value.
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_NUMERIC = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def convert_param(type_name: str, raw: str) -> object:
    """Convert a command-line string to the Python value of a ``param`` type; ValueError if bad."""
    kind = PARAM_TYPES.get(type_name.lower())
    if kind is None:
        raise ValueError(f"unknown parameter type {type_name!r}")
    if kind == "text":
        return raw
    return _CONVERTERS[kind](raw.strip(), raw)


def _to_integer(value: str, raw: str) -> int:
    if not _INTEGER.match(value):
        raise ValueError(f"not an integer: {raw!r}")
    return int(value)


def _to_numeric(value: str, raw: str) -> decimal.Decimal:
    if not _NUMERIC.match(value):
        raise ValueError(f"not a number: {raw!r}")
    return decimal.Decimal(value)


def _to_boolean(value: str, raw: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def _to_date(value: str, raw: str) -> dt.date:
    if not _DATE.match(value):
        raise ValueError(f"not a date (YYYY-MM-DD): {raw!r}")
    return dt.date.fromisoformat(value)


def _to_timestamp(value: str, raw: str) -> dt.datetime:
    stamp = dt.datetime.fromisoformat(value)
    if stamp.tzinfo is not None:
        raise ValueError(f"timestamp must not carry a time zone (use timestamptz): {raw!r}")
    return stamp


def _to_timestamptz(value: str, raw: str) -> dt.datetime:
    stamp = dt.datetime.fromisoformat(value)
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)


def _to_uuid(value: str, raw: str) -> uuid.UUID:
    return uuid.UUID(value)


#: a ``param`` type (other than text) → (stripped value, value as given) → Python value
_CONVERTERS: dict[str, Callable[[str, str], object]] = {
    "integer": _to_integer,
    "numeric": _to_numeric,
    "boolean": _to_boolean,
    "date": _to_date,
    "timestamp": _to_timestamp,
    "timestamptz": _to_timestamptz,
    "uuid": _to_uuid,
}


@dataclass(frozen=True)
class ParamSpec:
    """A typed parameter declared by ``-- backout:param NAME TYPE [= DEFAULT]``."""

    name: str
    type: str
    default: str | None
    line: int


@dataclass(frozen=True)
class Directives:
    """Everything a script declares about itself."""

    risk: Risk | None = None
    impact: tuple[str, ...] = ()
    data_loss: tuple[str, ...] = ()
    manual: tuple[str, ...] = ()
    require: tuple[SqlCheck, ...] = ()
    verify: tuple[SqlCheck, ...] = ()
    params: tuple[ParamSpec, ...] = ()
    preview: SqlCheck | None = None
    transaction: bool = True
    #: ``data-only``: the migration changes rows only, so the rollback has no schema to put
    #: back and may have no statement at all (the why, as written)
    data_only: str | None = None


@dataclass(frozen=True)
class Script:
    """A SQL script from disk (or a section of one) with its validated directives."""

    path: Path
    #: path shown in messages, relative to the project root where possible
    display: str
    kind: ScriptKind
    text: str
    #: 1-based line of the file where :attr:`text` starts (dbmate sections start mid-file)
    first_line: int
    #: sha256 hex of the bytes backout (and Prisma) compare to detect edits
    checksum: str
    directives: Directives = field(default_factory=Directives)
    #: checksums that also count as unchanged (the file with other line endings, as Prisma)
    equivalent_checksums: frozenset[str] = frozenset()

    def matches_checksum(self, checksum: str) -> bool:
        """True when a recorded checksum is this script's (ignoring CRLF/LF differences)."""
        return checksum == self.checksum or checksum in self.equivalent_checksums


# --- reading files --------------------------------------------------------------------------


def read_bytes(path: Path, display: str) -> bytes:
    """Read a file's bytes, turning OS errors into a one-line ProjectError naming the file."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ProjectError(f"cannot read file: {exc.strerror or exc}", path=display) from exc


def decode_sql(data: bytes, display: str) -> str:
    """Decode UTF-8 (an optional BOM is dropped), naming file and line of any invalid byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ProjectError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            path=display,
            line=line,
            hint="save the file as UTF-8",
        ) from exc
    return text.removeprefix("\ufeff")


def sha256_hex(data: bytes) -> str:
    """Lowercase sha256 hex digest, the checksum Prisma stores for migration.sql."""
    return hashlib.sha256(data).hexdigest()


def line_ending_checksums(data: bytes) -> frozenset[str]:
    """Checksums of ``data`` with LF and with CRLF line endings, except ``data``'s own."""
    if b"\n" not in data:
        return frozenset()
    unix = data.replace(b"\r\n", b"\n")
    variants = {sha256_hex(unix), sha256_hex(unix.replace(b"\n", b"\r\n"))}
    return frozenset(variants - {sha256_hex(data)})


def load_script(path: Path, display: str, kind: ScriptKind) -> Script:
    """Read a whole-file script, validating its directives."""
    data = read_bytes(path, display)
    text = decode_sql(data, display)
    script = make_script(path, display, kind, text, first_line=1, checksum=sha256_hex(data))
    return replace(script, equivalent_checksums=line_ending_checksums(data))


def make_script(
    path: Path, display: str, kind: ScriptKind, text: str, *, first_line: int, checksum: str
) -> Script:
    """Build a Script from already-decoded text (used for dbmate sections too)."""
    directives = parse_directives(text, display, kind, first_line=first_line)
    return Script(
        path=path,
        display=display,
        kind=kind,
        text=text,
        first_line=first_line,
        checksum=checksum,
        directives=directives,
    )


# --- directives -----------------------------------------------------------------------------

_DIRECTIVE_LINE = re.compile(r"^\s*--\s*backout\s*:(?P<rest>.*)$", re.IGNORECASE)
_NAME_VALUE = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_-]*)(?:\s+(?P<value>.*))?$")
_PARAM = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<type>[A-Za-z]+)(?:\s*=\s*(?P<default>.+))?$"
)

_ALLOWED: dict[str, frozenset[ScriptKind]] = {
    "risk": frozenset({ScriptKind.ROLLBACK, ScriptKind.PARTIAL}),
    "impact": frozenset({ScriptKind.ROLLBACK, ScriptKind.PARTIAL}),
    "data-loss": frozenset({ScriptKind.ROLLBACK, ScriptKind.PARTIAL}),
    "manual": frozenset(ScriptKind),
    "require": frozenset(ScriptKind),
    "verify": frozenset(ScriptKind),
    "param": frozenset({ScriptKind.PARTIAL}),
    "preview": frozenset({ScriptKind.PARTIAL}),
    "transaction": frozenset(ScriptKind),
    "data-only": frozenset({ScriptKind.ROLLBACK}),
}
DIRECTIVE_NAMES: tuple[str, ...] = tuple(_ALLOWED)
_ONCE = frozenset({"risk", "preview", "transaction", "data-only"})


@dataclass(frozen=True)
class RawDirective:
    """A directive as written: lower-cased name, value with continuations joined, its line."""

    name: str
    value: str
    line: int


def source_lines(text: str) -> list[str]:
    """The lines of a script as editors and the splitters number them: split at ``\\n`` only.

    ``str.splitlines`` also breaks at form feeds, ``\\x1c``-``\\x1e``, ``\\x85`` and
    ``\\u2028``/``\\u2029``, which would shift every reported line number after one of them
    and could turn text inside a string literal into a directive line. A trailing ``\\r`` is
    dropped.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def scan_directives(text: str, display: str, *, first_line: int = 1) -> list[RawDirective]:
    """Find every ``-- backout:`` line, joining backslash continuations; syntax errors raise."""
    lines = source_lines(text)
    found: list[RawDirective] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE_LINE.match(lines[i])
        if match is None:
            i += 1
            continue
        line_no = first_line + i
        rest = match["rest"].strip()
        while rest.endswith("\\"):
            rest = rest[:-1].rstrip()
            i += 1
            if i >= len(lines):
                raise ProjectError(
                    "directive continues (ends with \\) past the end of the script",
                    path=display,
                    line=line_no,
                )
            nxt = lines[i].lstrip()
            if not nxt.startswith("--") or _DIRECTIVE_LINE.match(lines[i]):
                raise ProjectError(
                    "a directive ending with \\ must continue on a '--' comment line",
                    path=display,
                    line=first_line + i,
                )
            rest = f"{rest} {nxt[2:].strip()}".strip()
        parts = _NAME_VALUE.match(rest)
        if parts is None:
            raise ProjectError(
                f"malformed directive {rest!r}: expected '-- backout:NAME VALUE'",
                path=display,
                line=line_no,
            )
        name = parts["name"].lower()
        if name not in _ALLOWED:
            close = difflib.get_close_matches(name, DIRECTIVE_NAMES, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ProjectError(
                f"unknown directive '{name}' ({hint}known: {', '.join(DIRECTIVE_NAMES)})",
                path=display,
                line=line_no,
            )
        found.append(RawDirective(name, (parts["value"] or "").strip(), line_no))
        i += 1
    return found


def parse_directives(
    text: str, display: str, kind: ScriptKind, *, first_line: int = 1
) -> Directives:
    """Parse and validate a script's directives for its kind; errors name file and line."""
    found = _FoundDirectives()
    seen: set[str] = set()
    for raw in scan_directives(text, display, first_line=first_line):
        if kind not in _ALLOWED[raw.name]:
            allowed = ", ".join(sorted(k.value for k in _ALLOWED[raw.name]))
            raise _directive_error(
                raw,
                display,
                f"directive '{raw.name}' is not allowed in a {kind.value} script "
                f"(only in: {allowed})",
            )
        if raw.name in _ONCE and raw.name in seen:
            raise _directive_error(raw, display, f"directive '{raw.name}' given twice")
        seen.add(raw.name)
        if not raw.value:
            raise _directive_error(raw, display, f"directive '{raw.name}' needs a value")
        found.add(raw, display)
    return found.directives()


def _directive_error(raw: RawDirective, display: str, message: str) -> ProjectError:
    return ProjectError(message, path=display, line=raw.line)


@dataclass
class _FoundDirectives:
    """The directives of one script as they are read, checked one by one."""

    risk: Risk | None = None
    lists: dict[str, list[str]] = field(
        default_factory=lambda: {"impact": [], "data-loss": [], "manual": []}
    )
    checks: dict[str, list[SqlCheck]] = field(default_factory=lambda: {"require": [], "verify": []})
    params: list[ParamSpec] = field(default_factory=list)
    preview: SqlCheck | None = None
    transaction: bool = True
    data_only: str | None = None

    def add(self, raw: RawDirective, display: str) -> None:
        """Record one directive (allowed here, given once where once is the rule, with a value)."""
        if raw.name == "risk":
            try:
                self.risk = Risk[raw.value.upper()]
            except KeyError:
                raise _directive_error(
                    raw,
                    display,
                    f"risk must be one of NONE, LOW, MEDIUM, HIGH (got {raw.value!r})",
                ) from None
        elif raw.name in self.lists:
            self.lists[raw.name].append(raw.value)
        elif raw.name in self.checks:
            self.checks[raw.name].append(SqlCheck(raw.value, raw.line))
        elif raw.name == "preview":
            self.preview = SqlCheck(raw.value, raw.line)
        elif raw.name == "transaction":
            if raw.value.lower() not in {"on", "off"}:
                message = f"transaction must be 'on' or 'off' (got {raw.value!r})"
                raise _directive_error(raw, display, message)
            self.transaction = raw.value.lower() == "on"
        elif raw.name == "data-only":
            self.data_only = raw.value
        elif raw.name == "param":
            spec = _parse_param(raw, display)
            if any(p.name == spec.name for p in self.params):
                raise _directive_error(raw, display, f"parameter '{spec.name}' declared twice")
            self.params.append(spec)

    def directives(self) -> Directives:
        return Directives(
            risk=self.risk,
            impact=tuple(self.lists["impact"]),
            data_loss=tuple(self.lists["data-loss"]),
            manual=tuple(self.lists["manual"]),
            require=tuple(self.checks["require"]),
            verify=tuple(self.checks["verify"]),
            params=tuple(self.params),
            preview=self.preview,
            transaction=self.transaction,
            data_only=self.data_only,
        )


def _parse_param(raw: RawDirective, display: str) -> ParamSpec:
    match = _PARAM.match(raw.value)
    if match is None:
        raise ProjectError(
            f"malformed param {raw.value!r}: expected 'NAME TYPE' or 'NAME TYPE = DEFAULT'",
            path=display,
            line=raw.line,
        )
    type_name = match["type"].lower()
    if type_name not in PARAM_TYPES:
        raise ProjectError(
            f"param '{match['name']}' has unknown type {match['type']!r} "
            f"(known: {', '.join(sorted(set(PARAM_TYPES.values())))})",
            path=display,
            line=raw.line,
        )
    default = match["default"].strip() if match["default"] else None
    if default is not None:
        try:
            convert_param(type_name, default)
        except ValueError as exc:
            raise ProjectError(
                f"param '{match['name']}' default {default!r} is not a valid {type_name}: {exc}",
                path=display,
                line=raw.line,
            ) from None
    return ParamSpec(name=match["name"], type=type_name, default=default, line=raw.line)
