"""Configuration: one frozen :class:`Config`, built with a fixed precedence.

Lowest to highest: defaults; ``backout.toml`` (or ``[tool.backout]`` in ``pyproject.toml``);
``DATABASE_URL`` from ``.env`` then from the environment (Prisma's convention); command-line flags.
With no URL at all the database is ``sqlite:///backout.db`` in the project folder.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from backout.dialects.scratch_names import check_prefix
from backout.model.errors import ConfigError
from backout.model.urls import DatabaseURL, parse_url
from backout.project.prisma_schema import UnsetVariable, read_datasource, schema_files, url_field

DEFAULT_URL = "sqlite:///backout.db"
LAYOUT_NAMES = ("prisma", "plain", "dbmate", "flyway")
HOOK_NAMES = ("stop_app", "before_rollback", "after_rollback", "deploy_previous", "smoke")
#: ``rollback --update-schema`` / ``[prisma] update_schema``: how schema.prisma follows a rollback
UPDATE_SCHEMA_MODES = ("off", "pull", "git")
CONFIG_FILE = "backout.toml"
#: how :attr:`Config.url_source` starts for a direct URL
DIRECT_SOURCES = ("directUrl in ", "direct_url in ")

_DURATION = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|min|h)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(value: object, what: str) -> float:
    """``"2s"``, ``"500ms"``, ``"1m"`` or a number of seconds → seconds (0 means no limit)."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a duration such as '2s' or '500ms', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ConfigError(f"{what}: expected a duration such as '2s' or '500ms', got {value!r}")
        seconds = float(match["num"]) * _UNITS[match["unit"]]
    if not math.isfinite(seconds):
        raise ConfigError(f"{what}: expected a duration such as '2s' or '500ms', got {value!r}")
    if seconds < 0:
        raise ConfigError(f"{what}: must not be negative")
    return seconds


@dataclass(frozen=True)
class Config:
    """Everything a command needs to know about the project and the database."""

    root: Path
    database_url: str = DEFAULT_URL
    #: where the URL came from: default, backout.toml, pyproject.toml, .env, environment,
    #: directUrl in prisma/schema.prisma, direct_url in backout.toml, flag
    url_source: str = "default"
    config_file: Path | None = None
    layout: str | None = None
    migrations_dir: Path | None = None
    rollback_dir: Path | None = None
    shadow_url: str | None = None
    backup_dir: Path | None = None
    lock_timeout: float = 2.0
    lock_retries: int = 5
    #: how long to wait for the run lock another run holds before giving up (exit 3)
    lock_wait: float = 5.0
    #: names of scratch databases start with this (teams sharing a server can tell theirs)
    scratch_prefix: str = "backout_scratch_"
    statement_timeout: float = 0.0
    hooks: Mapping[str, str] = field(default_factory=dict)
    hook_timeout: float = 300.0
    #: schema holding backout's own tables where the database has schemas (PostgreSQL)
    history_schema: str = "backout"
    #: the host tool's history table (dbmate's ``--migrations-table``, golang-migrate's
    #: ``x-migrations-table``), ``table`` or ``schema.table``; None: the tool's default
    migrations_table: str | None = None
    #: ``DBMATE_MIGRATIONS_TABLE`` from the environment (the dbmate layout only: it wins over
    #: :attr:`migrations_table`, as environment variables win over the file)
    dbmate_migrations_table: str | None = None
    #: after a rollback, update schema.prisma: "off", "pull" (prisma db pull) or "git"
    update_schema: str = "off"
    #: how to run the Prisma CLI (``[prisma] command``); None: node_modules/.bin/prisma
    prisma_command: str | None = None

    @property
    def url_is_direct(self) -> bool:
        """The URL is a direct URL (Prisma's ``directUrl``, backout.toml's ``direct_url``):
        one meant for migrations, past any connection pooler."""
        return self.url_source.startswith(DIRECT_SOURCES)

    @property
    def url(self) -> DatabaseURL:
        """The parsed database URL (SQLite paths resolved against the project)."""
        return parse_url(self.database_url, base_dir=self._sqlite_base(self.database_url))

    @property
    def shadow(self) -> DatabaseURL | None:
        """The parsed shadow URL, if configured."""
        if not self.shadow_url:
            return None
        return parse_url(self.shadow_url, base_dir=self._sqlite_base(self.shadow_url))

    @property
    def backups(self) -> Path:
        """Folder for backups and their catalog."""
        return self.backup_dir or self.root / ".backout" / "backups"

    def _sqlite_base(self, raw: str) -> Path:
        # Prisma resolves file: URLs against the folder holding schema.prisma.
        if raw.startswith("file:") and (self.root / "prisma" / "schema.prisma").is_file():
            return self.root / "prisma"
        return self.root

    def with_overrides(self, **changes: Any) -> Config:
        """A copy with some fields changed (flags are applied this way)."""
        return replace(self, **changes)


_KEYS = {
    "layout",
    "migrations_dir",
    "rollback_dir",
    "database_url",
    "direct_url",
    "shadow_url",
    "backup_dir",
    "lock_timeout",
    "lock_retries",
    "lock_wait",
    "scratch_prefix",
    "statement_timeout",
    "history_schema",
    "migrations_table",
    "hooks",
    "prisma",
}
_PRISMA_KEYS = {"update_schema", "command"}
_HOOK_KEYS = {*HOOK_NAMES, "timeout"}
_DURATION_KEYS = ("lock_timeout", "statement_timeout", "lock_wait")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _file_settings(root: Path, explicit: Path | None) -> tuple[dict[str, Any], Path | None, str]:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: configuration file not found")
        data = _read_toml(explicit)
        if explicit.name == "pyproject.toml":
            return _tool_section(explicit, data) or {}, explicit, "pyproject.toml"
        return data, explicit, explicit.name
    own = root / CONFIG_FILE
    if own.is_file():
        return _read_toml(own), own, CONFIG_FILE
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        section = _tool_section(pyproject, _read_toml(pyproject))
        if section is not None:
            return section, pyproject, "pyproject.toml"
    return {}, None, ""


def _tool_section(path: Path, data: dict[str, Any]) -> dict[str, Any] | None:
    """``[tool.backout]`` of a pyproject.toml, None when absent; an error when not a table."""
    tool = data.get("tool", {})
    section = tool.get("backout") if isinstance(tool, dict) else None
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.backout] must be a table")
    return dict(section)


def _dotenv_url(root: Path, name: str = "DATABASE_URL") -> tuple[str | None, str]:
    """The variable ``name`` from ``.env``, else ``prisma/.env`` (Prisma loads both), and the
    file it came from; an empty value counts as none."""
    for candidate in (root / ".env", root / "prisma" / ".env"):
        if candidate.is_file():
            # imported only when there is a file to read: every command starts here
            from dotenv import dotenv_values

            value = dotenv_values(candidate).get(name)
            if value:
                return value, str(candidate.relative_to(root))
    return None, ""


def load_config(
    root: Path | None = None,
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    url: str | None = None,
    validate_url: bool = True,
    direct_url_optional: bool = False,
    **flags: Any,
) -> Config:
    """Build the Config for the project at ``root`` (default: the current folder).

    ``url`` and ``flags`` are command-line values; ``None`` means "not given".
    ``validate_url=False`` is for commands that never connect (init, new), which ignore the
    direct URL; ``direct_url_optional`` for those that can do without the database (lint):
    a direct URL whose variable is unset or empty is then passed over instead of refused.
    """
    root = (root or Path.cwd()).resolve()
    env = os.environ if environ is None else environ
    data, path, source_name = _file_settings(root, config_file)
    where = str(path) if path else CONFIG_FILE
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s): {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(_KEYS))})"
        )
    values: dict[str, Any] = {"root": root, "config_file": path}
    values.update(_file_values(data, where, root))
    values.update(_hook_values(data.get("hooks", {}), where))
    values.update(_prisma_values(data.get("prisma", {}), where))
    chosen = _choose_url(data, source_name, where, root, env, url)
    if validate_url and not url:
        try:
            chosen = _direct_url(data, where, root, env, values) or chosen
        except UnsetVariable:
            if not direct_url_optional:
                raise
    values["database_url"] = chosen.url
    values["url_source"] = chosen.source
    if env.get("DBMATE_MIGRATIONS_TABLE"):
        values["dbmate_migrations_table"] = check_table_name(
            env["DBMATE_MIGRATIONS_TABLE"], "the DBMATE_MIGRATIONS_TABLE environment variable"
        )
    values.update(_flag_values(flags))
    config = Config(**values)
    if validate_url:
        shadow_origin = "--shadow-url" if flags.get("shadow_url") else f"shadow_url in {where}"
        _validate_urls(config, chosen.origin, shadow_origin)
    return config


def _file_values(data: dict[str, Any], where: str, root: Path) -> dict[str, Any]:
    """The settings of a configuration file's top level, checked (hooks aside)."""
    values: dict[str, Any] = {}
    for key in ("migrations_dir", "rollback_dir", "backup_dir"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise ConfigError(f"{where}: {key} must be a non-empty string")
            values[key] = (root / data[key]).resolve()
    for key in ("layout", "shadow_url", "history_schema", "database_url", "direct_url"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{where}: {key} must be a string")
    for key in ("layout", "shadow_url", "history_schema"):
        if key in data:
            values[key] = data[key]
    values.update(_name_values(data, where))
    if "layout" in data and data["layout"] not in LAYOUT_NAMES:
        raise ConfigError(
            f"{where}: unknown layout {data['layout']!r} (known: {', '.join(LAYOUT_NAMES)})"
        )
    values.update(_limit_values(data, where))
    return values


def _name_values(data: dict[str, Any], where: str) -> dict[str, Any]:
    """``scratch_prefix`` and ``migrations_table``, checked."""
    values: dict[str, Any] = {}
    if "migrations_table" in data:
        if not isinstance(data["migrations_table"], str):
            raise ConfigError(f"{where}: migrations_table must be a string")
        values["migrations_table"] = check_table_name(
            data["migrations_table"], f"{where}: migrations_table"
        )
    if "scratch_prefix" in data:
        if not isinstance(data["scratch_prefix"], str):
            raise ConfigError(f"{where}: scratch_prefix must be a string")
        values["scratch_prefix"] = check_prefix(data["scratch_prefix"], where)
    return values


_TABLE_NAME = re.compile(r"^[A-Za-z_][\w$]{0,62}(?:\.[A-Za-z_][\w$]{0,62})?$")


def check_table_name(value: str, what: str) -> str:
    """A host history table name, ``table`` or ``schema.table``; ConfigError naming ``what``."""
    if not _TABLE_NAME.match(value):
        raise ConfigError(
            f"{what}: {value!r} is not a table name (expected table or schema.table, letters, "
            "digits and _ only, each part at most 63 characters)"
        )
    return value


def _limit_values(data: dict[str, Any], where: str) -> dict[str, Any]:
    """The timeouts and retries of a configuration file's top level, checked."""
    values: dict[str, Any] = {}
    for key in _DURATION_KEYS:
        if key in data:
            values[key] = parse_duration(data[key], f"{where}: {key}")
    if "lock_retries" in data:
        retries = data["lock_retries"]
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ConfigError(f"{where}: lock_retries must be a non-negative integer")
        values["lock_retries"] = retries
    return values


def _hook_values(hooks: object, where: str) -> dict[str, Any]:
    """``hooks`` and ``hook_timeout`` from a configuration file's ``[hooks]`` table, checked."""
    if not isinstance(hooks, dict):
        raise ConfigError(f"{where}: [hooks] must be a table")
    bad_hooks = set(hooks) - _HOOK_KEYS
    if bad_hooks:
        raise ConfigError(
            f"{where}: unknown hook(s): {', '.join(sorted(bad_hooks))} "
            f"(known: {', '.join(HOOK_NAMES)})"
        )
    values: dict[str, Any] = {}
    if "timeout" in hooks:
        values["hook_timeout"] = parse_duration(hooks["timeout"], f"{where}: hooks.timeout")
    for name, command in hooks.items():
        if name != "timeout" and not isinstance(command, str):
            raise ConfigError(f"{where}: hooks.{name} must be a shell command (a string)")
    values["hooks"] = {k: v for k, v in hooks.items() if k != "timeout"}
    return values


def _prisma_values(prisma: object, where: str) -> dict[str, Any]:
    """``update_schema`` and ``prisma_command`` from a configuration file's ``[prisma]`` table."""
    if not isinstance(prisma, dict):
        raise ConfigError(f"{where}: [prisma] must be a table")
    unknown = set(prisma) - _PRISMA_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) in [prisma]: {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(_PRISMA_KEYS))})"
        )
    values: dict[str, Any] = {}
    if "update_schema" in prisma:
        values["update_schema"] = check_update_schema(
            prisma["update_schema"], f"{where}: prisma.update_schema"
        )
    if "command" in prisma:
        command = prisma["command"]
        if not isinstance(command, str) or not command.strip():
            raise ConfigError(f"{where}: prisma.command must be a non-empty string")
        try:
            shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"{where}: prisma.command: {exc}: {command}") from exc
        values["prisma_command"] = command.strip()
    return values


def check_update_schema(value: object, what: str) -> str:
    """``value`` when it is a mode of :data:`UPDATE_SCHEMA_MODES`, else ConfigError."""
    if value not in UPDATE_SCHEMA_MODES:
        raise ConfigError(
            f"{what}: expected one of {', '.join(UPDATE_SCHEMA_MODES)}, got {value!r}"
        )
    return str(value)


@dataclass(frozen=True)
class _ChosenURL:
    """The database URL that wins the precedence, and where it came from."""

    url: str
    #: for Config.url_source: default, backout.toml, pyproject.toml, .env, environment, flag
    source: str
    #: for error messages: "--url", "the DATABASE_URL environment variable", ...
    origin: str


def _choose_url(
    data: dict[str, Any],
    source_name: str,
    where: str,
    root: Path,
    env: Mapping[str, str],
    url: str | None,
) -> _ChosenURL:
    """The URL by precedence: default, configuration file, .env, environment, ``--url``."""
    chosen = _ChosenURL(DEFAULT_URL, "default", "the default")
    if data.get("database_url"):
        chosen = _ChosenURL(data["database_url"], source_name, where)
    dotenv_url, dotenv_name = _dotenv_url(root)
    if dotenv_url:
        chosen = _ChosenURL(dotenv_url, dotenv_name, f"DATABASE_URL in {root / dotenv_name}")
    if env.get("DATABASE_URL"):
        chosen = _ChosenURL(
            env["DATABASE_URL"], "environment", "the DATABASE_URL environment variable"
        )
    if url:
        chosen = _ChosenURL(url, "flag", "--url")
    return chosen


def _direct_url(
    data: dict[str, Any], where: str, root: Path, env: Mapping[str, str], values: dict[str, Any]
) -> _ChosenURL | None:
    """The direct URL, which beats ``DATABASE_URL`` as Prisma Migrate's ``directUrl`` beats
    ``url``: ``direct_url`` in the configuration file, else the ``directUrl`` of the Prisma
    schema's datasource (beside the migrations folder when ``migrations_dir`` is set, as the
    Prisma layout reads its provider); None when neither is set. Its ``env("NAME")`` is read
    from the environment, then from .env and prisma/.env, as Prisma does; unset or empty is an
    error (Prisma's too), naming the file and the variable."""

    def lookup(name: str) -> str | None:
        return env[name] if name in env else _dotenv_url(root, name)[0]

    if data.get("direct_url"):
        field = url_field("direct_url", data["direct_url"], where)
        return _ChosenURL(
            field.resolve(lookup),
            f"direct_url in {Path(where).name}",
            field.describe() + f" in {where}",
        )
    if values.get("layout") not in (None, "prisma"):
        return None
    migrations: Path | None = values.get("migrations_dir")
    datasource = read_datasource(
        root, schema_files(root, migrations.parent if migrations else None)
    )
    if datasource is None or datasource.direct_url is None:
        return None
    field = datasource.direct_url
    return _ChosenURL(
        field.resolve(lookup),
        f"directUrl in {field.path}",
        f"{field.describe()} in {field.where}",
    )


def direct_url_hint(config: Config, *, prisma: bool = True) -> str:
    """How to give backout a direct URL (one past the connection pooler), for a refusal;
    ``prisma``: the project is in the Prisma layout, whose schema can name one."""
    if config.url_source == "flag":
        # --url beats every direct URL: naming directUrl would change nothing
        return "--url must reach the database server itself, not the pooler (see docs/poolers.md)"
    if config.url_is_direct:
        return (
            f"the direct URL ({config.url_source}) must reach the database server itself, "
            "not the pooler: correct it, or pass --url"
        )
    if not prisma:
        return (
            "give backout a direct URL (the database server, not the pooler): "
            "direct_url = 'env(\"DIRECT_URL\")' in backout.toml, or --url (see docs/poolers.md)"
        )
    return (
        'give backout a direct URL, as Prisma Migrate takes one: directUrl = env("DIRECT_URL") '
        "in the datasource of prisma/schema.prisma, or direct_url in backout.toml, or --url "
        "(see docs/poolers.md)"
    )


def _flag_values(flags: Mapping[str, Any]) -> dict[str, Any]:
    """The command-line flags that were given, durations parsed."""
    values: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None:
            continue
        if key not in Config.__dataclass_fields__:
            raise ConfigError(f"unknown setting {key!r}")
        if key in _DURATION_KEYS:
            values[key] = parse_duration(value, f"--{key.replace('_', '-')}")
        else:
            values[key] = value
    return values


def _validate_urls(config: Config, url_origin: str, shadow_origin: str) -> None:
    """Parse the URLs now, so a bad one fails with where it came from."""
    try:
        config.url  # noqa: B018 - validate the URL now, with a clear message
    except ConfigError as exc:
        raise ConfigError(f"{exc.message} (from {url_origin})", hint=exc.hint) from None
    if config.shadow_url:
        try:
            config.shadow  # noqa: B018
        except ConfigError as exc:
            raise ConfigError(f"{exc.message} (from {shadow_origin})", hint=exc.hint) from None
