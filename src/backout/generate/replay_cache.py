"""Saved replays for ``generate``: the state after the first N migrations, reused next time.

Drafting the rollback of a late migration needs the database as it is just before it: every
earlier migration replayed from empty, hundreds on a real project. That state depends only on
those migrations' files, so it is saved once (where the dialect can: PostgreSQL's
``pg_dump``) under a key that chains the checksums of the migrations before it, and restored on
the next run. Editing, adding, removing or reordering any earlier file changes the key, and a
missing key falls back to the longest saved prefix, then to a replay. A restored state is
only used when its schema fingerprint is the one recorded when it was saved, and a file only
loaded on a server of the version it was saved from (:meth:`Dialect.state_origin`).

Files live in ``<project>/.backout/cache/replay/`` (``<key>.dump`` and ``<key>.json``); the
newest :data:`KEEP` are kept.

Where the dialect can (PostgreSQL), the state is also kept on the server where scratch
databases are made, as a template database (see :mod:`backout.dialects.postgres.kept`): a
copy of it is one server-side file copy, no statement replayed or loaded. The server drops it
by itself once unused for a while (the scratch sweep); the file stays, and a state loaded
from the file is kept on the server again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from backout import __version__
from backout.dialects.base import KeptStates
from backout.model.errors import BackoutError
from backout.model.schema import SchemaSnapshot
from backout.project.migration import Migration
from backout.run.workspace import Workspace

#: saved states kept per project (the newest ones)
KEEP = 4
#: prefixes shorter than this are replayed: saving them costs more than it saves
MIN_PREFIX = 10
#: the saved files' format, part of the key: a file of an older format is never loaded
FORMAT = 2


def cache_dir(ws: Workspace) -> Path:
    """Where the saved replays of this project live."""
    return ws.config.root / ".backout" / "cache" / "replay"


def prefix_keys(ws: Workspace, migrations: Sequence[Migration]) -> list[str]:
    """``keys[k]``: the key of the state after ``migrations[:k]`` (chained checksums, with the
    dialect, backout's version, the file format and the URL's schema, which all shape the
    state)."""
    shaped_by = f"{ws.dialect.name}\0{__version__}\0{FORMAT}\0{ws.url.schema or ''}"
    digest = hashlib.sha256(shaped_by.encode())
    keys = [digest.hexdigest()]
    for migration in migrations:
        digest.update(b"\0" + migration.up.checksum.encode())
        keys.append(digest.copy().hexdigest())
    return keys


def enabled(ws: Workspace) -> bool:
    """Whether states can be saved for this workspace's database."""
    return ws.dialect.caches_states


def kept_states(ws: Workspace) -> KeptStates | None:
    """Where the server keeps this project's states (None: the dialect keeps none)."""
    owner = hashlib.sha256(str(ws.config.root.resolve()).encode()).hexdigest()[:16]
    return ws.dialect.kept_states(
        ws.url, ws.config.shadow, ws.actor, prefix=ws.config.scratch_prefix, owner=owner
    )


def longest_saved(
    ws: Workspace, states: KeptStates | None, keys: Sequence[str], limit: int
) -> tuple[int, str | None]:
    """The longest prefix length ``k <= limit`` with a saved state (0: none), and the
    fingerprint recorded with its state kept on the server (None: only a file holds it)."""
    if not enabled(ws) or limit < MIN_PREFIX:
        return 0, None
    on_server: dict[str, str] = {}
    if states is not None:
        try:
            on_server = states.find(keys[MIN_PREFIX : limit + 1])
        except BackoutError:
            on_server = {}
    folder = cache_dir(ws)
    for k in range(limit, MIN_PREFIX - 1, -1):
        if keys[k] in on_server:
            return k, on_server[keys[k]]
        if (folder / f"{keys[k]}.dump").is_file() and (folder / f"{keys[k]}.json").is_file():
            return k, None
    return 0, None


def restore(ws: Workspace, key: str) -> str | None:
    """Load the saved state ``key`` into the workspace's (empty, scratch) database; the
    fingerprint it must show afterwards, or None when it could not be loaded."""
    folder = cache_dir(ws)
    try:
        recorded = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        if not isinstance(recorded, dict):
            return None
        if recorded.get("origin", "") != ws.dialect.state_origin(ws.url, ws.actor):
            return None  # saved from another server version
        ws.dialect.load_state(ws.url, ws.actor, folder / f"{key}.dump")
    except (OSError, ValueError, BackoutError):
        return None
    fingerprint = recorded.get("fingerprint")
    return fingerprint if isinstance(fingerprint, str) else None


def forget(ws: Workspace, states: KeptStates | None, key: str) -> None:
    """Remove a saved state that did not restore faithfully (file and server)."""
    for suffix in (".dump", ".json"):
        (cache_dir(ws) / f"{key}{suffix}").unlink(missing_ok=True)
    if states is not None:
        with suppress(BackoutError):  # else the server's sweep drops it later
            states.discard(key)


def keep(states: KeptStates | None, scratch: Workspace, key: str, fingerprint: str) -> None:
    """Keep the scratch database's state on the server (no session may be connected to it);
    one that cannot be kept (no right to create databases) is not an error."""
    if states is None:
        return
    with suppress(BackoutError):
        states.keep(scratch.url, key, fingerprint)


def save(ws: Workspace, states: KeptStates | None, key: str, snapshot: SchemaSnapshot) -> None:
    """Save the workspace's database state under ``key``, in a file (the newest :data:`KEEP`
    are kept) and on the server, with no session connected to it.

    A cache that cannot be written (read-only folder, missing pg_dump) is not an error: the
    next run replays again."""
    fingerprint = snapshot.fingerprint()
    keep(states, ws, key, fingerprint)
    folder = cache_dir(ws)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        ws.dialect.save_state(ws.url, ws.actor, folder / f"{key}.dump")
        (folder / f"{key}.json").write_text(
            json.dumps(
                {"fingerprint": fingerprint, "origin": ws.dialect.state_origin(ws.url, ws.actor)}
            ),
            encoding="utf-8",
        )
    except (OSError, BackoutError):
        forget(ws, None, key)
        return
    dumps = sorted(folder.glob("*.dump"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in dumps[KEEP:]:
        forget(ws, None, old.stem)
