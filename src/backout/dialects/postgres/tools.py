"""Finding PostgreSQL client tools (pg_dump, pg_restore, psql) new enough for the server.

pg_dump refuses to dump a server newer than itself, so the tool's major version must be at
least the server's. Looked for, in order: ``$BACKOUT_PG_BIN``, ``PATH``, and Debian/Ubuntu's
``/usr/lib/postgresql/<major>/bin``. Passwords go through ``PGPASSWORD``, never the command line
(:func:`libpq_target`; every launch goes through :mod:`backout.dialects.client_programs`).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from backout.model.errors import ToolMissing
from backout.model.urls import DatabaseURL

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgTool:
    """A found tool and its version."""

    path: str
    major: int
    version: str


@functools.lru_cache(maxsize=32)
def _version_of(path: str) -> tuple[int, str] | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return None
    match = _VERSION.search(out)
    if match is None:
        return None
    return int(match[1]), out.strip().split(")")[-1].strip()


def _candidates(name: str) -> list[str]:
    found: list[str] = []
    folder = os.environ.get("BACKOUT_PG_BIN")
    if folder:
        found.append(str(Path(folder) / name))
    on_path = shutil.which(name)
    if on_path:
        found.append(on_path)
    debian = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
        reverse=True,
    )
    found.extend(str(p) for p in debian)
    return list(dict.fromkeys(found))


def find_tool(name: str, server_major: int) -> PgTool:
    """The first ``name`` whose major version is at least ``server_major``; ToolMissing if none."""
    seen: list[str] = []
    for candidate in _candidates(name):
        version = _version_of(candidate)
        if version is None:
            continue
        major, text = version
        if major >= server_major:
            return PgTool(candidate, major, text)
        seen.append(f"{candidate} ({text})")
    where = "; found only " + ", ".join(seen) if seen else ""
    raise ToolMissing(
        f"{name} {server_major} or newer is needed for this PostgreSQL {server_major} "
        f"server{where}",
        hint=f"install the PostgreSQL {server_major} client tools, or point BACKOUT_PG_BIN "
        "at their bin folder",
    )


def libpq_target(url: DatabaseURL) -> tuple[str, dict[str, str]]:
    """A libpq connection string holding no password, and the environment carrying it.

    The one place a PostgreSQL client program's target is built: a password given in the
    URL's user-info or as ``?password=`` goes into ``PGPASSWORD``, never the command line.
    """
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = urlsplit(url.raw)
    base = urlunsplit(
        ("postgresql", parts.netloc, parts.path, urlencode(url.params, quote_via=quote), "")
    )
    params = conninfo_to_dict(base)
    password = params.pop("password", None)
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if password:
        env["PGPASSWORD"] = str(password)
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return make_conninfo("", **params), env


def strip_restrict(text: str) -> str:
    """pg_dump 15.18+ writes ``\\restrict <random>`` / ``\\unrestrict`` lines: drop them."""
    return "\n".join(
        line for line in text.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )
