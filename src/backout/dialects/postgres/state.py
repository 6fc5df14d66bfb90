"""A scratch database's whole state to a file and back (``pg_dump``/``pg_restore``, custom format).

``generate`` keeps the state reached after replaying a prefix of the history, so the next draft
of a late migration does not replay hundreds of migrations again (see
backout.generate.replay_cache).
Credentials go to the tools through the environment, never the command line.
"""

from __future__ import annotations

import os
from pathlib import Path

from backout.dialects import client_programs
from backout.dialects.postgres import tools as pg_tools
from backout.model.errors import DatabaseError
from backout.model.urls import DatabaseURL, scrub


def _fail(what: str, url: DatabaseURL, stderr: bytes) -> DatabaseError:
    detail = stderr.decode("utf-8", "replace").strip()
    last = detail.splitlines()[-1] if detail else "unknown error"
    return DatabaseError(f"{what} {url.masked()} failed: " + scrub(last, url.secrets))


def save_state(url: DatabaseURL, server: pg_tools.Version, path: Path) -> None:
    """Dump the database at ``url`` (schema and rows) into ``path``, atomically."""
    tools = pg_tools.find_tools(server)
    target, env = pg_tools.libpq_target(url)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        done = client_programs.run(
            [tools.dump, "--format=custom", "--no-owner", "--no-acl", "-f", partial, target],
            secrets=url.secrets,
            capture_output=True,
            env=env,
        )
        if done.returncode != 0:
            raise _fail("saving the state of", url, done.stderr)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def load_state(url: DatabaseURL, server: pg_tools.Version, path: Path) -> None:
    """Restore a :func:`save_state` file into the (empty) database at ``url``."""
    tools = pg_tools.find_tools(server)
    target, env = pg_tools.libpq_target(url)
    done = client_programs.run(
        [tools.restore, "--no-owner", "--no-acl", "--single-transaction", "-d", target, path],
        secrets=url.secrets,
        capture_output=True,
        env=env,
    )
    if done.returncode != 0:
        raise _fail("restoring a cached state into", url, done.stderr)
