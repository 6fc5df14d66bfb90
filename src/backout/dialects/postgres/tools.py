"""Finding the PostgreSQL client tools (pg_dump, pg_restore): the one finder every caller uses.

pg_dump refuses to dump a server newer than itself, so a pair is used only when both tools are
at least as new as the server (the major version from 10 on, major.minor before). Backups,
restores, schema dumps, cached states and ``test``'s copies all call :func:`find_tools`, so
they all run the same binaries for the same server. Looked for: in ``$BACKOUT_PG_BIN`` when
it is set (and only there), else on ``PATH`` and then in Debian/Ubuntu's
``/usr/lib/postgresql/<major>/bin`` (newest first); the first pair new enough wins.

The tools' target is a libpq connection string built by psycopg (:func:`libpq_target`) with a
connect timeout; the password goes through ``PGPASSWORD``, never the command line (every
launch goes through :mod:`backout.dialects.client_programs`).
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from backout.model.errors import ToolMissing
from backout.model.urls import DatabaseURL

if TYPE_CHECKING:
    from backout.dialects.base import Session

#: a folder holding pg_dump and pg_restore; when set, the only place they are looked for
PG_BIN_ENV: Final = "BACKOUT_PG_BIN"
#: where Debian and Ubuntu install each major version's client tools
VERSIONED_BIN_GLOB: Final = "/usr/lib/postgresql/*/bin"
#: seconds a client program waits for the server to accept its connection
CONNECT_TIMEOUT: Final = "10"

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")

#: a PostgreSQL version as ``(major, minor)``; from 10 on only the major counts
Version = tuple[int, int]


@dataclass(frozen=True)
class PgTools:
    """A pg_dump/pg_restore pair and their version (``"15"``, ``"9.6"``)."""

    dump: Path
    restore: Path
    version: str


def server_version(session: Session) -> Version:
    """The server's ``(major, minor)``: ``(15, 0)`` style from 10 on, ``(9, 6)`` before."""
    number = int(session.query("SHOW server_version_num")[0][0])
    if number >= 100000:
        return number // 10000, 0
    return number // 10000, number // 100 % 100


def _version_of(tool: Path) -> tuple[str, Version] | None:
    """``(text, (major, minor))`` from ``tool --version``; None when it does not run."""
    return _version_run(tool) if tool.is_file() else None


@functools.lru_cache(maxsize=32)
def _version_run(tool: Path) -> tuple[str, Version] | None:
    try:
        done = subprocess.run(
            [str(tool), "--version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(done.stdout)
    if done.returncode != 0 or match is None:
        return None
    major, minor = int(match[1]), int(match[2] or 0)
    text = f"{major}.{minor}" if match[2] else str(major)
    return text, (major, minor)


def _release(version: Version) -> Version:
    """The part of a version that must be at least the server's: 9.6, or 15 (not 15.2)."""
    return version if version[0] < 10 else (version[0], 0)


def _show(version: Version) -> str:
    return f"{version[0]}.{version[1]}" if version[0] < 10 else str(version[0])


def _candidates() -> Iterator[tuple[Path, Path]]:
    """pg_dump/pg_restore pairs in the order they are tried."""
    folder = os.environ.get(PG_BIN_ENV)
    if folder:
        yield Path(folder) / "pg_dump", Path(folder) / "pg_restore"
        return
    dump, restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    if dump and restore:
        yield Path(dump), Path(restore)

    def major(path: str) -> int:
        digits = Path(path).parent.name
        return int(digits) if digits.isdigit() else 0

    for bin_dir in sorted(glob.glob(VERSIONED_BIN_GLOB), key=major, reverse=True):
        yield Path(bin_dir) / "pg_dump", Path(bin_dir) / "pg_restore"


def _working_pairs() -> Iterator[tuple[PgTools, Version]]:
    """The candidate pairs whose tools both run, with the older of their two versions."""
    for dump, restore in _candidates():
        dump_version, restore_version = _version_of(dump), _version_of(restore)
        if dump_version is None or restore_version is None:
            continue
        oldest = min(_release(dump_version[1]), _release(restore_version[1]))
        yield PgTools(dump=dump, restore=restore, version=dump_version[0]), oldest


def _missing(server: Version, seen: list[str]) -> ToolMissing:
    where = (
        f"${PG_BIN_ENV} ({os.environ[PG_BIN_ENV]})"
        if os.environ.get(PG_BIN_ENV)
        else f"PATH and {VERSIONED_BIN_GLOB}"
    )
    hint = (
        f"install the PostgreSQL {_show(server)} client tools (e.g. postgresql-client-"
        f"{_show(server)}), or set {PG_BIN_ENV} to a folder holding pg_dump and pg_restore"
    )
    if seen:
        return ToolMissing(
            f"pg_dump and pg_restore must be at least as new as the server (PostgreSQL "
            f"{_show(server)}); found only {', '.join(seen)} in {where}",
            hint=hint,
        )
    return ToolMissing(f"pg_dump and pg_restore were not found in {where}", hint=hint)


def find_tools(server: Version) -> PgTools:
    """The first pg_dump/pg_restore pair at least as new as the server; ToolMissing if none."""
    seen: list[str] = []
    for tools, oldest in _working_pairs():
        if oldest >= _release(server):
            return tools
        seen.append(f"pg_dump {tools.version} ({tools.dump})")
    raise _missing(server, seen)


def tools_for_archive() -> PgTools:
    """The newest pair found: pg_restore reads the archives of every older pg_dump."""
    pairs = sorted(_working_pairs(), key=lambda pair: pair[1], reverse=True)
    if not pairs:
        raise _missing((0, 0), [])
    return pairs[0][0]


def libpq_target(url: DatabaseURL) -> tuple[str, dict[str, str]]:
    """A libpq connection string holding no password, and the environment carrying it.

    The one place a PostgreSQL client program's target is built: a password given in the
    URL's user-info or as ``?password=`` goes into ``PGPASSWORD``, never the command line;
    ``PGCONNECT_TIMEOUT`` bounds the wait for the server unless the URL or the caller's
    environment sets one.
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
    env.setdefault("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT)
    return make_conninfo("", **params), env


def strip_restrict(text: str) -> str:
    """pg_dump 15.18+ writes ``\\restrict <random>`` / ``\\unrestrict`` lines: drop them."""
    return "\n".join(
        line for line in text.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )
