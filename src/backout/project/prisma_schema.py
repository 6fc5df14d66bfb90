"""A Prisma project's ``schema.prisma``: where it is, and which environment variables its
datasource reads the database URL from (``url = env("DATABASE_URL")``, ``directUrl``).

Read for ``rollback --update-schema``: the Prisma CLI is given the database URL in those
variables (never on its command line), so it reads the database backout rolled back.
"""

from __future__ import annotations

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
