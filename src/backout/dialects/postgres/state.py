"""A scratch database's whole state to a file and back (``pg_dump`` as SQL, one batch back).

``generate`` keeps the state reached after replaying a prefix of the history, so the next draft
of a late migration does not replay hundreds of migrations again (see
backout.generate.replay_cache).

The file is a plain ``pg_dump`` with rows as multi-row ``INSERT`` statements (no ``COPY``), so
it loads as one batch of statements on one connection: one round trip and one implicit
transaction, about twice as fast as ``pg_restore``, which sends each of the hundreds of objects
of a long history separately. Credentials go to the tool through the environment, never the
command line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from backout.dialects import client_programs
from backout.dialects.postgres import tools as pg_tools
from backout.model.errors import DatabaseError
from backout.model.urls import DatabaseURL, scrub

#: psql's ``\restrict KEY`` guard line (pg_dump since 17.6, 15.14), before the first statement
_PSQL_GUARD = re.compile(r"\A((?:--[^\n]*\n|\n)*)\\restrict ([A-Za-z0-9]+)\n")


def _fail(what: str, url: DatabaseURL, stderr: bytes) -> DatabaseError:
    detail = stderr.decode("utf-8", "replace").strip()
    last = detail.splitlines()[-1] if detail else "unknown error"
    return DatabaseError(f"{what} {url.masked()} failed: " + scrub(last, url.secrets))


def save_state(url: DatabaseURL, server: pg_tools.Version, path: Path) -> None:
    """Dump the database at ``url`` (schema and rows) into ``path`` as SQL, atomically."""
    tools = pg_tools.find_tools(server)
    target, env = pg_tools.libpq_target(url)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        done = client_programs.run(
            [
                tools.dump,
                "--format=plain",
                "--inserts",
                "--rows-per-insert=1000",
                "--no-owner",
                "--no-acl",
                "-f",
                partial,
                target,
            ],
            secrets=url.secrets,
            capture_output=True,
            env=env,
        )
        if done.returncode != 0:
            raise _fail("saving the state of", url, done.stderr)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def state_sql(path: Path) -> str:
    """The statements of a :func:`save_state` file, without psql's guard lines.

    ``\\restrict KEY`` and ``\\unrestrict KEY`` are meta-commands for psql around the
    statements, with a random key that no row's text holds; nothing else in a dump made with
    ``--inserts`` is one (a row's text that happens to start a line with a backslash is kept).
    """
    text = path.read_text(encoding="utf-8")
    guard = _PSQL_GUARD.match(text)
    if guard is None:
        return text
    key = guard.group(2)
    tail = text[guard.end() :]
    return guard.group(1) + tail.replace(f"\n\\unrestrict {key}\n", "\n")
