"""A Prisma project's ``schema.prisma``: where it is, and which environment variables its
datasource reads the database URL from (``url = env("DATABASE_URL")``, ``directUrl``).

Read for ``rollback --update-schema``: the Prisma CLI is given the database URL in those
variables (never on its command line), so it reads the database backout rolled back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from backout.model.errors import ProjectError
from backout.project.migration import Project

#: ``datasource db { … }`` (comments removed first; a datasource holds no nested braces)
_DATASOURCE = re.compile(r"\bdatasource\s+\w+\s*\{(?P<body>[^}]*)\}", re.S)
#: ``url = env("NAME")`` / ``directUrl = env("NAME")`` inside it; or a literal string
_SETTING = re.compile(
    r"^\s*(?P<key>url|directUrl)\s*=\s*(?:env\(\s*\"(?P<env>[^\"]+)\"\s*\)|(?P<literal>\"))",
    re.M,
)


#: ``schema: "…"`` in prisma.config.ts (a string literal; anything else is not read)
_CONFIG_SCHEMA = re.compile(r"""^\s*schema\s*:\s*(?P<q>["'`])(?P<path>[^"'`\n]+)(?P=q)""", re.M)
#: where Prisma 6 reads its configuration, before package.json's ``prisma`` key
_CONFIG_FILES = ("prisma.config.ts", "prisma.config.mts", "prisma.config.js", "prisma.config.mjs")


@dataclass(frozen=True)
class Datasource:
    """How a schema's datasource finds its database."""

    #: variables named by ``env("…")`` in ``url`` and ``directUrl``, in that order
    env_vars: tuple[str, ...]
    #: the setting given as a literal string instead of ``env(…)`` (``url``), if any
    literal: str | None = None


def schema_path(project: Project) -> Path:
    """Where Prisma's default schema file is: ``schema.prisma`` beside the migrations folder
    (``prisma/migrations`` → ``prisma/schema.prisma``)."""
    return project.migrations_dir.parent / "schema.prisma"


def read_datasource(text: str) -> Datasource:
    """The env variables (or literal URL) the first datasource block of ``text`` names."""
    uncommented = re.sub(r"//[^\n]*", "", text)
    match = _DATASOURCE.search(uncommented)
    if match is None:
        return Datasource(env_vars=())
    names: list[str] = []
    literal = None
    for setting in _SETTING.finditer(match["body"]):
        if setting["env"]:
            names.append(setting["env"])
        elif literal is None:
            literal = setting["key"]
    return Datasource(env_vars=tuple(dict.fromkeys(names)), literal=literal)


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
