"""Flyway layout: ``V<version>__<description>.sql``, undo ``U<version>__<description>.sql``.

- forward: ``V<version>__<description>.sql`` in Flyway's locations (default ``db/migration``,
  or ``src/main/resources/db/migration`` in a Maven/Gradle project), searched recursively as
  Flyway scans them;
- rollback: ``U<version>__<description>.sql``, Flyway's own name for an undo script (an undo
  runs only in paid Flyway editions; Flyway Community ignores these files, so shipping them is
  harmless); paired with its migration by version;
- repeatable: ``R__<description>.sql`` is listed (``Project.repeatables``), never rolled back;
- partial rollbacks: ``<id or version>_rollback.<part>.sql`` in the rollback folder (default
  ``rollback/`` beside the first location), never inside a location, where Flyway would run
  any ``V``-prefixed file as a migration;
- settings: ``flyway.toml`` (Flyway 10) or ``flyway.conf`` / ``conf/flyway.conf`` at the
  project root: locations, prefixes, separator, suffixes, ``table`` and ``schemas``;
- history: backout's tables, plus Flyway's ``flyway_schema_history``
  (:mod:`backout.run.hosts.flyway`).

Versions compare as Flyway's ``MigrationVersion`` compares them: ``_`` is read as ``.``, each
dotted part numerically, trailing zero parts ignored (``1.10 > 1.9``, ``1.0 == 1``).
Descriptions are Flyway's: the part after the separator with ``_`` read as a space.
"""

from __future__ import annotations

import re
import tomllib
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

from backout.model.errors import ProjectError
from backout.model.script import Script, ScriptKind, load_script
from backout.project.layouts.common import RollbackIndex, check_readable
from backout.project.migration import Migration, Project, display_path

DEFAULT_LOCATIONS = ("classpath:db/migration",)
DEFAULT_TABLE = "flyway_schema_history"
#: where ``classpath:`` locations live in a Maven/Gradle project, then at the root
CLASSPATH_ROOTS = ("src/main/resources", "")
_VERSION = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")


@dataclass(frozen=True)
class FlywaySettings:
    """The Flyway settings backout reads (Flyway's defaults where no file says otherwise)."""

    locations: tuple[str, ...] = DEFAULT_LOCATIONS
    prefix: str = "V"
    undo_prefix: str = "U"
    repeatable_prefix: str = "R"
    separator: str = "__"
    suffixes: tuple[str, ...] = (".sql",)
    table: str = DEFAULT_TABLE
    #: ``schemas`` (the first holds the history table) or ``defaultSchema`` first
    schemas: tuple[str, ...] = ()
    #: the file the settings came from ('' for Flyway's defaults)
    source: str = ""


@dataclass(frozen=True)
class FlywayName:
    """A file name as Flyway parses it."""

    kind: str  # "versioned" | "undo" | "repeatable"
    #: the version as Flyway stores it (``_`` read as ``.``), '' for repeatables
    version: str
    description: str
    #: the raw description part of the name (underscores kept)
    raw_description: str


def version_parts(version: str) -> tuple[int, ...]:
    """Flyway's comparison key for ``version`` (``1.10`` → (1, 10); trailing zeros dropped)."""
    parts = [int(p) for p in version.replace("_", ".").split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def flyway_checksum(text: str) -> int:
    """Flyway's checksum of a script's text, as a signed 32-bit int (what it stores).

    Flyway (``LoadableResource.calculateChecksum``; before 9.x
    ``ChecksumCalculator.calculateChecksumForResource``) reads the decoded file with
    ``BufferedReader.readLine`` (lines end at ``\\n``, ``\\r`` or ``\\r\\n``, terminators
    dropped, no empty last line after a final terminator), strips a BOM from the first line,
    and feeds each line's UTF-8 bytes into one CRC32, cast to ``int``. ``text`` is already
    BOM-free (:func:`~backout.model.script.decode_sql`).
    """
    crc = 0
    for line in re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff")):
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def parse_name(name: str, settings: FlywaySettings) -> FlywayName | None:
    """What Flyway makes of file ``name``; None when it is no migration of ours (Flyway
    ignores it too). A versioned or undo name whose version is not Flyway's is an error."""
    suffix = next((s for s in settings.suffixes if name.endswith(s)), None)
    if suffix is None:
        return None
    stem = name[: -len(suffix)]
    # Flyway tries the longest prefix first (ResourceNameParser.populatePrefixes)
    prefixes = sorted(
        [
            (settings.prefix, "versioned"),
            (settings.undo_prefix, "undo"),
            (settings.repeatable_prefix, "repeatable"),
        ],
        key=lambda p: -len(p[0]),
    )
    for prefix, kind in prefixes:
        if not stem.startswith(prefix):
            continue
        rest = stem[len(prefix) :]
        version, sep, raw = rest.partition(settings.separator)
        description = raw.replace("_", " ")
        if kind == "repeatable":
            if version or not sep:
                return None  # Flyway: invalid repeatable name, ignored (README.sql...)
            return FlywayName(kind, "", description, raw)
        normalized = version.replace("_", ".")
        if not _VERSION.match(normalized):
            if version[:1].isdigit():
                raise ProjectError(
                    f"Flyway cannot read version {version!r} in this file name "
                    f"(expected {prefix}1.2{settings.separator}description{suffix})",
                    path=name,
                )
            return None
        return FlywayName(kind, normalized, description, raw)
    return None


def undo_path(root: Path, forward: Path) -> Path:
    """Where Flyway's undo script of ``forward`` (``V1__a.sql``) goes: ``U1__a.sql`` beside it
    (the prefixes of the project's Flyway settings)."""
    settings = read_settings(root)
    rest = forward.name.removeprefix(settings.prefix)
    return forward.with_name(settings.undo_prefix + rest)


def read_settings(root: Path) -> FlywaySettings:
    """Flyway's settings from ``flyway.toml``, else ``flyway.conf`` / ``conf/flyway.conf``."""
    toml = root / "flyway.toml"
    if toml.is_file():
        return _toml_settings(toml, display_path(root, toml))
    for rel in ("flyway.conf", "conf/flyway.conf"):
        conf = root / rel
        if conf.is_file():
            return _conf_settings(conf, rel)
    return FlywaySettings()


def _split_list(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(p.strip() for p in str(value).split(",") if p.strip())


def _settings_from(values: dict[str, object], source: str) -> FlywaySettings:
    base = FlywaySettings(source=source)
    changes: dict[str, object] = {}
    for key, field_name in (
        ("sqlMigrationPrefix", "prefix"),
        ("undoSqlMigrationPrefix", "undo_prefix"),
        ("repeatableSqlMigrationPrefix", "repeatable_prefix"),
        ("sqlMigrationSeparator", "separator"),
        ("table", "table"),
    ):
        if key in values and str(values[key]).strip():
            changes[field_name] = str(values[key]).strip()
    if "locations" in values:
        changes["locations"] = _split_list(values["locations"]) or DEFAULT_LOCATIONS
    if "sqlMigrationSuffixes" in values:
        changes["suffixes"] = _split_list(values["sqlMigrationSuffixes"]) or base.suffixes
    schemas = _split_list(values.get("schemas", ""))
    default = str(values.get("defaultSchema", "") or "").strip()
    if default:
        schemas = (default, *[s for s in schemas if s != default])
    changes["schemas"] = schemas
    return replace(base, **changes)  # type: ignore[arg-type]


def _toml_settings(path: Path, display: str) -> FlywaySettings:
    """Flyway 10's TOML: ``[flyway]`` settings; ``schemas`` from ``[environments.<env>]``
    (``flyway.environment``, default ``default``) where ``[flyway]`` names none."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProjectError(f"cannot read Flyway's configuration: {exc}", path=display) from exc
    flyway = data.get("flyway", {})
    if not isinstance(flyway, dict):
        raise ProjectError("[flyway] is not a table", path=display)
    values: dict[str, object] = dict(flyway)
    environment = str(flyway.get("environment", "default"))
    env = data.get("environments", {}).get(environment, {})
    if isinstance(env, dict) and "schemas" not in values and "schemas" in env:
        values["schemas"] = env["schemas"]
    return _settings_from(values, display)


def _conf_settings(path: Path, display: str) -> FlywaySettings:
    """A Java properties file: ``flyway.key=value`` (``:`` or ``=``), ``#``/``!`` comments,
    backslash continuations."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"cannot read Flyway's configuration: {exc}", path=display) from exc
    values: dict[str, object] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        pending = ""
        if not line or line[0] in "#!":
            continue
        match = re.match(r"^([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if match and match[1].startswith("flyway."):
            values[match[1].removeprefix("flyway.")] = match[2].strip()
    return _settings_from(values, display)


def location_dirs(root: Path, settings: FlywaySettings) -> list[Path]:
    """The folders Flyway's locations name, existing or not, in order (``classpath:`` under
    ``src/main/resources`` first, then at the root; ``filesystem:`` from the root)."""
    folders: list[Path] = []
    for location in settings.locations:
        scheme, sep, rest = location.partition(":")
        if not sep:
            scheme, rest = "classpath", location
        if any(ch in rest for ch in "*?{"):
            raise ProjectError(
                f"Flyway location {location!r} uses a wildcard, which backout does not read",
                path=settings.source or None,
                hint="list the folders, or set migrations_dir in backout.toml",
            )
        if scheme == "filesystem":
            folders.append(root / rest)
        elif scheme == "classpath":
            folders.extend(root / prefix / rest for prefix in CLASSPATH_ROOTS)
        else:
            raise ProjectError(
                f"Flyway location {location!r}: backout reads filesystem: and classpath: only",
                path=settings.source or None,
            )
    return folders


def holds_migration(folder: Path, settings: FlywaySettings) -> bool:
    """True when ``folder`` (or a folder under it) holds a Flyway versioned migration."""
    if not folder.is_dir():
        return False
    for entry in folder.rglob("*"):
        try:
            parsed = parse_name(entry.name, settings)
        except ProjectError:
            return True
        if parsed is not None and parsed.kind == "versioned" and entry.is_file():
            return True
    return False


def find_location(root: Path) -> Path | None:
    """The first location holding a Flyway migration (for layout detection), or None."""
    settings = read_settings(root)
    return next((f for f in location_dirs(root, settings) if holds_migration(f, settings)), None)


def load(root: Path, folder: Path, rollback_dir: Path | None) -> Project:
    """Read a Flyway project whose (first) location is ``folder``."""
    settings = read_settings(root)
    declared = [f for f in location_dirs(root, settings) if f.is_dir()]
    folders = declared if folder in declared else [folder]
    scan = _Scan(root, settings)
    for location in folders:
        scan.location(location)
    scan.pair_undo()
    rollbacks = rollback_dir if rollback_dir is not None else folders[0].parent / "rollback"
    if rollbacks.is_dir():
        scan.index.scan_rollback_folder(rollbacks, display_path(root, rollbacks))
    elif rollback_dir is not None:
        raise ProjectError("rollback folder does not exist", path=display_path(root, rollback_dir))
    migrations = sorted(scan.migrations, key=lambda m: version_parts(m.key))
    return Project(
        root=root,
        layout="flyway",
        migrations_dir=folders[0],
        rollback_dir=rollbacks if rollbacks.is_dir() else None,
        migrations=tuple(scan.index.attach(migrations)),
        ledger="backout",
        repeatables=tuple(sorted(scan.repeatables, key=lambda s: s.display)),
    )


class _Scan:
    """The files of Flyway's locations, read as Flyway reads them."""

    def __init__(self, root: Path, settings: FlywaySettings):
        self.root = root
        self.settings = settings
        self.index = RollbackIndex()
        self.migrations: list[Migration] = []
        self.repeatables: list[Script] = []
        #: Flyway's version parts -> (file shown, history key) of each versioned migration
        self.versions: dict[tuple[int, ...], tuple[str, str]] = {}
        self.undo: dict[tuple[int, ...], tuple[str, str]] = {}
        self.undo_scripts: dict[tuple[int, ...], Script] = {}

    def location(self, folder: Path) -> None:
        """Every file under ``folder``, recursively, in name order."""
        for entry in sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix()):
            display = display_path(self.root, entry)
            check_readable(entry, display)
            if not entry.is_file():
                continue
            try:
                parsed = parse_name(entry.name, self.settings)
            except ProjectError as exc:
                raise ProjectError(exc.message, path=display) from exc
            if parsed is not None:
                self._add(entry, display, parsed)

    def pair_undo(self) -> None:
        """Pair each undo script with the migration of the same Flyway version (``U1.0``
        undoes ``V1``); an undo with no migration is reported by ``RollbackIndex.attach``."""
        for parts, script in self.undo_scripts.items():
            key = self.versions[parts][1] if parts in self.versions else self.undo[parts][1]
            self.index.add(key, script, None)

    def _add(self, entry: Path, display: str, parsed: FlywayName) -> None:
        if parsed.kind == "repeatable":
            self.repeatables.append(load_script(entry, display, ScriptKind.FORWARD))
            return
        parts = version_parts(parsed.version)
        seen = self.versions if parsed.kind == "versioned" else self.undo
        if parts in seen:
            what = "migration" if parsed.kind == "versioned" else "undo script"
            raise ProjectError(
                f"two Flyway {what}s share version {parsed.version}: {seen[parts][0]} and "
                f"{display} (Flyway refuses this too)",
                path=display,
                hint="give one of them a new version",
            )
        seen[parts] = (display, parsed.version)
        if parsed.kind == "undo":
            self.undo_scripts[parts] = load_script(entry, display, ScriptKind.ROLLBACK)
            return
        self.migrations.append(
            Migration(
                id=entry.name[: entry.name.rfind(".")],
                version=parsed.version,
                name=parsed.raw_description,
                key=parsed.version,
                up=load_script(entry, display, ScriptKind.FORWARD),
                down=None,
            )
        )
