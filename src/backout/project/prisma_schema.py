"""The ``datasource`` block of a Prisma schema: where Prisma's CLI connects.

Prisma Migrate connects with ``directUrl`` when the datasource has one, else with ``url``
(prisma-engines' ``Datasource::load_direct_url``); each is a string literal or ``env("NAME")``.
A production project behind a connection pooler (PgBouncer, Supavisor, Accelerate) points
``url`` at the pooler and ``directUrl`` at the database server, so backout, like Prisma Migrate,
connects with ``directUrl``.

Also where a project's schema file is (``rollback --update-schema`` rewrites it) and which
environment variables its datasource reads (the Prisma CLI is given the database URL in those,
never on its command line).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from backout.model.errors import ConfigError, ProjectError
from backout.project.migration import Project

#: ``datasource db {``: the block's body ends at the next ``}`` outside a string (a datasource
#: has no nested blocks; its lists use brackets; a literal URL's password may hold a ``}``)
_BLOCK = re.compile(
    # a string ends at its closing quote, or at the end of its line when unterminated
    r'\bdatasource\s+(?P<name>\w+)\s*\{(?P<body>(?:[^}"]|"(?:[^"\\\n]|\\.)*(?:"|(?=\n|$)))*)\}'
)
_FIELD = re.compile(r"^\s*(?P<key>\w+)\s*=\s*(?P<value>.*?)\s*$")
_ENV = re.compile(r'^env\s*\(\s*"(?P<name>(?:[^"\\]|\\.)*)"\s*\)$')
_STRING = re.compile(r'^"(?:[^"\\]|\\.)*"$')

#: ``schema: "…"`` in prisma.config.ts (a string literal; anything else is not read)
_CONFIG_SCHEMA = re.compile(r"""^\s*schema\s*:\s*(?P<q>["'`])(?P<path>[^"'`\n]+)(?P=q)""", re.M)
#: where Prisma 6 reads its configuration, before package.json's ``prisma`` key
_CONFIG_FILES = ("prisma.config.ts", "prisma.config.mts", "prisma.config.js", "prisma.config.mjs")


class UnsetVariable(ConfigError):
    """The environment variable a URL's ``env("NAME")`` names is not set anywhere, or is empty
    (as a CI job without secrets has it)."""


@dataclass(frozen=True)
class DatasourceField:
    """One URL field of the datasource: a literal or the name of an environment variable."""

    key: str
    #: the string literal's value, or None for ``env("NAME")``
    literal: str | None
    #: the variable ``env("NAME")`` names, or None for a literal
    env: str | None
    #: the file (as shown in messages) and the field's line (None: not known)
    path: str
    line: int | None

    @property
    def where(self) -> str:
        """``prisma/schema.prisma:7``, for messages."""
        return f"{self.path}:{self.line}" if self.line is not None else self.path

    def describe(self) -> str:
        """How the schema spells it: ``directUrl = env("DIRECT_URL")`` (never the literal,
        which may hold a password)."""
        return f'{self.key} = env("{self.env}")' if self.env is not None else f"{self.key}"

    def resolve(self, lookup: Callable[[str], str | None]) -> str:
        """The URL: the literal, or the variable's value from ``lookup`` (the environment,
        then .env files, as Prisma loads them); a ConfigError when it is unset or empty."""
        if self.env is None:
            literal = self.literal or ""
            if not literal.strip():
                raise ConfigError(f"{self.where}: {self.key} is an empty string")
            return literal
        value = lookup(self.env)
        if value is None:
            raise UnsetVariable(
                f"{self.where}: {self.describe()}: environment variable {self.env} is not set "
                "(nor in .env or prisma/.env)",
                hint=f"set {self.env} to the database's direct URL, or pass --url",
            )
        if not value.strip():
            raise UnsetVariable(
                f"{self.where}: {self.describe()}: environment variable {self.env} is empty"
            )
        return value


@dataclass(frozen=True)
class Datasource:
    """What backout reads of a schema's ``datasource`` block: its ``directUrl`` (``url`` is
    ``DATABASE_URL`` by Prisma's convention, which backout reads itself)."""

    path: str
    direct_url: DatasourceField | None = None
    url: DatasourceField | None = None

    @property
    def env_vars(self) -> tuple[str, ...]:
        """The variables ``env("…")`` names in ``url`` and ``directUrl``, in that order."""
        named = (field.env for field in (self.url, self.direct_url) if field is not None)
        return tuple(dict.fromkeys(name for name in named if name))

    @property
    def literal(self) -> str | None:
        """The first setting given as a literal string instead of ``env(…)`` (its key)."""
        for field in (self.url, self.direct_url):
            if field is not None and field.env is None:
                return field.key
        return None


def strip_comments(text: str) -> str:
    """``text`` with its ``//`` comments blanked (not those inside string literals, such as
    the ``//`` of ``"postgresql://..."``); line numbers are kept."""
    out: list[str] = []
    for line in text.split("\n"):
        in_string = escaped = False
        cut = len(line)
        for index, char in enumerate(line):
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif line.startswith("//", index):
                cut = index
                break
        out.append(line[:cut])
    return "\n".join(out)


def url_field(key: str, text: str, path: str, line: int | None = None) -> DatasourceField:
    """A URL setting written as a URL or as Prisma's ``env("NAME")`` (``direct_url`` in
    backout.toml: the TOML string's own text)."""
    env = _ENV.match(text.strip())
    if env is not None:
        return DatasourceField(key, None, _unquote(f'"{env["name"]}"'), path, line)
    return DatasourceField(key, text, None, path, line)


def _field(key: str, value: str, path: str, line: int) -> DatasourceField:
    env = _ENV.match(value)
    if env is not None:
        return DatasourceField(key, None, _unquote(f'"{env["name"]}"'), path, line)
    if _STRING.match(value):
        return DatasourceField(key, _unquote(value), None, path, line)
    # the value is not repeated: it may be a URL with a password
    raise ConfigError(
        f'{path}:{line}: {key} must be a string or env("NAME"), not an unquoted value'
        if not value.startswith('"')
        else f"{path}:{line}: {key}: unterminated string"
    )


def _unquote(quoted: str) -> str:
    try:
        return str(json.loads(quoted))
    except ValueError:
        return quoted[1:-1]


def parse_datasource(text: str, path: str) -> Datasource | None:
    """The datasource block of one schema file's text; None when it has none."""
    clean = strip_comments(text)
    block = _BLOCK.search(clean)
    if block is None:
        return None
    first_line = clean.count("\n", 0, block.start("body")) + 1
    fields: dict[str, DatasourceField] = {}
    for offset, raw in enumerate(block["body"].split("\n")):
        match = _FIELD.match(raw)
        if match is not None and match["key"] in ("url", "directUrl"):
            fields[match["key"]] = _field(match["key"], match["value"], path, first_line + offset)
    return Datasource(path=path, direct_url=fields.get("directUrl"), url=fields.get("url"))


def datasource_of(text: str, path: str) -> Datasource:
    """The datasource of one schema file's text (an empty one when it has none)."""
    return parse_datasource(text, path) or Datasource(path=path)


def schema_files(root: Path, prisma_dir: Path | None = None) -> list[Path]:
    """The Prisma schema files Prisma's CLI would read, in order: ``prisma/schema.prisma``,
    the ``prisma/schema/`` folder of a multi-file schema, any other ``.prisma`` file under
    ``prisma/`` at any depth (Prisma 6.7's multi-file layout: ``prisma/models/...``),
    ``schema.prisma`` at the root."""
    prisma = prisma_dir or root / "prisma"
    found = [prisma / "schema.prisma"]
    folder = prisma / "schema"
    if folder.is_dir():
        found.extend(sorted(folder.glob("*.prisma")))
    if prisma.is_dir():
        found.extend(path for path in sorted(prisma.rglob("*.prisma")) if path not in found)
    found.append(root / "schema.prisma")
    return [path for path in found if path.is_file()]


def read_datasource(root: Path, files: Iterable[Path]) -> Datasource | None:
    """The first datasource block among ``files`` (a Prisma project has one)."""
    for path in files:
        display = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{display}: cannot read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{display}: not valid UTF-8") from exc
        datasource = parse_datasource(text, display)
        if datasource is not None:
            return datasource
    return None


def schema_path(project: Project) -> Path:
    """Where Prisma's default schema file is: ``schema.prisma`` beside the migrations folder
    (``prisma/migrations`` → ``prisma/schema.prisma``)."""
    return project.migrations_dir.parent / "schema.prisma"


def require_schema(project: Project) -> Path:
    """The schema file of a Prisma project; ProjectError when the project is not a Prisma
    one, or has no ``schema.prisma`` beside its migrations (a multi-file ``schema/`` folder
    included)."""
    if project.layout != "prisma":
        raise ProjectError(
            f"--update-schema updates a Prisma schema, but this project's layout is "
            f"{project.layout}",
            hint="leave --update-schema out (and update_schema in backout.toml's [prisma])",
        )
    declared = declared_schema(project.root)
    if declared is not None:
        return _declared_file(project, *declared)
    path = schema_path(project)
    if path.is_file():
        return path
    folder = path.parent / "schema"
    if folder.is_dir() and any(folder.glob("*.prisma")):
        raise ProjectError(
            "--update-schema supports one schema.prisma; this project has a multi-file "
            "schema folder",
            path=project.rel(folder),
            hint="update the schema by hand, then run `npx prisma generate`",
        )
    raise ProjectError(
        "--update-schema: no schema.prisma beside the migrations folder",
        path=project.rel(path),
        hint="leave --update-schema out, or restore the file first",
    )


def declared_schema(root: Path) -> tuple[str, str] | None:
    """The schema path Prisma is configured with in the project folder, and where: a string
    ``schema`` in prisma.config.ts, else ``"prisma": {"schema": …}`` in package.json."""
    for name in _CONFIG_FILES:
        text = _text(root / name)
        if text is not None:
            found = _CONFIG_SCHEMA.search(re.sub(r"//[^\n]*", "", text))
            return (found["path"], f"{name}: schema") if found else None
    text = _text(root / "package.json")
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    settings = data.get("prisma") if isinstance(data, dict) else None
    value = settings.get("schema") if isinstance(settings, dict) else None
    return (value, "package.json: prisma.schema") if isinstance(value, str) and value else None


def _declared_file(project: Project, value: str, source: str) -> Path:
    """The schema file a Prisma configuration names (relative to the project folder)."""
    path = project.root / value
    if path.is_file():
        return path
    files = sorted(path.rglob("*.prisma")) if path.is_dir() else []
    if len(files) == 1:  # a folder holding one schema file (``schema: "prisma/"``)
        return files[0]
    if path.is_dir():
        raise ProjectError(
            f"--update-schema supports one schema file; {source} names the folder {value} "
            "(a multi-file schema)",
            hint="update the schema by hand, then run `npx prisma generate`",
        )
    raise ProjectError(
        f"--update-schema: {source} names {value}, which does not exist",
        hint="leave --update-schema out, or correct the path",
    )


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
