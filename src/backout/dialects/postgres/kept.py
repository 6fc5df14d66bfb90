"""PostgreSQL: databases kept between runs: ``plan``'s schema-only copies, ``generate``'s states.

A kept copy is a scratch database (named and swept by :mod:`backout.dialects.scratch_names`)
whose comment is :data:`KEPT_LABEL` followed by the key it was made for (see
:mod:`backout.analysis.simulate`: the live schema's fingerprint). A run claims one by renaming it
to a scratch name of its own: PostgreSQL renames a database only while no session is connected
to it, and only one of two runs renaming the same database succeeds, so a copy is never handed
to two runs at once. The name then records the claim's time, which spares the copy from the
sweep while it is idle for less than :data:`~backout.dialects.scratch_names.KEPT_IDLE_S`.

A kept *state* (:class:`PostgresKeptStates`, ``generate``'s saved replay) is a template: a
scratch database whose comment is :data:`STATE_LABEL`, the key, the schema fingerprint it
holds and its owner (a digest of the project's folder), and which accepts no connection
(``ALLOW_CONNECTIONS false``), so nothing changes it after it was made. A run copies it with
``CREATE DATABASE ... TEMPLATE``, a server-side copy of its files, then renames it to a fresh
scratch name, which records the time of this use for the sweep. Each owner keeps its newest
:data:`STATES_KEPT`.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from typing import Protocol

from backout.dialects import scratch_names
from backout.dialects.base import Actor, KeptCopies, KeptStates, Session
from backout.model.errors import DatabaseError
from backout.model.urls import DatabaseURL


class ScratchServer(Protocol):
    """What a kept copy needs of its dialect: sessions, quoting, and scratch databases
    (PostgreSQL's dialect; named here so that this module need not import it)."""

    def connect(
        self,
        url: DatabaseURL,
        *,
        actor: Actor,
        connect_timeout: float = ...,
        create: bool = ...,
    ) -> Session: ...

    def quote(self, identifier: str) -> str: ...

    def create_scratch(
        self,
        server: DatabaseURL,
        actor: Actor,
        prefix: str,
        *,
        template: str | None = ...,
        admin: Session | None = ...,
    ) -> str: ...

    def copy_database(
        self, source: DatabaseURL, target: DatabaseURL, actor: Actor, *, data: bool
    ) -> None: ...

    def drop_scratch(self, server: DatabaseURL, actor: Actor, name: str) -> None: ...


#: how the comment of every kept database starts (the sweep spares them while recently used)
KEPT_ANY = "backout kept "
#: how a kept copy's comment starts; the key follows
KEPT_LABEL = KEPT_ANY + "schema-only copy, key "
#: how a kept state's comment starts; the key, fingerprint and owner follow
STATE_LABEL = KEPT_ANY + "replay state, key "
#: kept states per owner (the most recently made or used)
STATES_KEPT = 4

#: kept copies this process has claimed and not yet kept or discarded: another thread of it
#: (a fleet run plans many targets at once) must not claim them, though this process owns them
_IN_USE: set[str] = set()
_IN_USE_LOCK = threading.Lock()

_CANDIDATES = (
    "SELECT d.datname, (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname) "
    "FROM pg_database d WHERE d.datname LIKE %s "
    "AND shobj_description(d.oid, 'pg_database') = %s ORDER BY d.datname"
)


class PostgresKeptCopies(KeptCopies):
    """Kept copies of ``source`` on ``server`` (``shadow_url``, else the source's server)."""

    def __init__(
        self,
        dialect: ScratchServer,
        source: DatabaseURL,
        server: DatabaseURL,
        actor: Actor,
        prefix: str,
        *,
        admin: Session | None = None,
    ) -> None:
        self.dialect = dialect
        self.source = source
        self.server = server
        self.actor = actor
        self.prefix = prefix
        #: an open session on ``server`` lent by the caller (not closed here), else None: a
        #: connection of its own for each piece of bookkeeping
        self.admin = admin

    @contextmanager
    def _admin(self) -> Iterator[Session]:
        """A session on the server: the one lent, else a new one closed after."""
        if self.admin is not None:
            yield self.admin
            return
        admin = self.dialect.connect(self.server, actor=self.actor)
        try:
            yield admin
        finally:
            admin.close()

    def claim(self, key: str) -> DatabaseURL | None:
        pattern = self.prefix.replace("_", "\\_") + "%"
        with self._admin() as admin:
            found = admin.query(_CANDIDATES, (pattern, KEPT_LABEL + key))
            for found_name, connections in found:
                name = str(found_name)
                if not scratch_names.claimable(name, int(connections), self.prefix):
                    continue
                mine = scratch_names.new_name(self.prefix)
                with _IN_USE_LOCK:
                    if name in _IN_USE:
                        continue  # claimed by another thread of this process
                    try:
                        admin.execute(
                            f"ALTER DATABASE {self.dialect.quote(name)} "
                            f"RENAME TO {self.dialect.quote(mine)}"
                        )
                    except DatabaseError:
                        continue  # another run took it (or dropped it) first
                    _IN_USE.add(mine)
                return self.server.with_database(mine)
        return None

    def create(self) -> DatabaseURL:
        name = self.dialect.create_scratch(self.server, self.actor, self.prefix)
        copy = self.server.with_database(name)
        try:
            self.dialect.copy_database(self.source, copy, self.actor, data=False)
        except BaseException:
            self.discard(copy)
            raise
        return copy

    def keep(self, copy: DatabaseURL, key: str) -> None:
        label = (KEPT_LABEL + key).replace("'", "''")  # COMMENT takes no parameter
        try:
            with self._admin() as admin:
                admin.execute(
                    f"COMMENT ON DATABASE {self.dialect.quote(copy.database or '')} IS '{label}'"
                )
        finally:
            _released(copy)

    def discard(self, copy: DatabaseURL) -> None:
        try:
            self.dialect.drop_scratch(self.server, self.actor, copy.database or "")
        finally:
            _released(copy)


def _released(copy: DatabaseURL) -> None:
    """The copy is no longer in use by this process (kept for later, or dropped)."""
    with _IN_USE_LOCK:
        _IN_USE.discard(copy.database or "")


_STATES = (
    "SELECT d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d "
    "WHERE d.datname LIKE %s AND shobj_description(d.oid, 'pg_database') LIKE %s "
    "ORDER BY d.datname"
)


class PostgresKeptStates(KeptStates):
    """Kept states (templates) on ``server`` (``shadow_url``, else the project's server)."""

    def __init__(
        self, dialect: ScratchServer, server: DatabaseURL, actor: Actor, prefix: str, owner: str
    ) -> None:
        self.dialect = dialect
        self.server = server
        self.actor = actor
        self.prefix = prefix
        self.owner = owner
        #: key -> name, as :meth:`find` listed them
        self._found: dict[str, str] = {}

    def _listed(self, admin: Session) -> list[tuple[str, str, str, str]]:
        """(name, key, fingerprint, owner) of every kept state on the server with our prefix."""
        pattern = self.prefix.replace("_", "\\_") + "%"
        found = []
        for name, comment in admin.query(_STATES, (pattern, STATE_LABEL + "%")):
            fields = str(comment)[len(STATE_LABEL) :].split(" ")
            # "<key> fingerprint <fingerprint> owner <owner>"
            if len(fields) == 5 and fields[1] == "fingerprint" and fields[3] == "owner":
                found.append((str(name), fields[0], fields[2], fields[4]))
        return found

    def _named(self, admin: Session, key: str) -> list[str]:
        return [name for name, k, _, _ in self._listed(admin) if k == key]

    def find(self, keys: Collection[str]) -> dict[str, str]:
        wanted = set(keys)
        with self.dialect.connect(self.server, actor=self.actor) as admin:
            listed = [row for row in self._listed(admin) if row[1] in wanted]
        self._found = {k: name for name, k, _, _ in listed}
        return {k: fp for _, k, fp, _ in listed}

    @contextmanager
    def copy(self, key: str) -> Iterator[DatabaseURL]:
        with self.dialect.connect(self.server, actor=self.actor) as admin:
            # the name find() just listed (gone meanwhile: the copy fails), else look it up
            listed = self._found.pop(key, None)
            names = [listed] if listed is not None else self._named(admin, key)
            if not names:
                raise DatabaseError(f"no kept state {key[:12]} on {self.server.masked()}")
            name = self.dialect.create_scratch(
                self.server, self.actor, self.prefix, template=names[0], admin=admin
            )
            self._touch(admin, names[0])
        try:
            yield self.server.with_database(name)
        finally:
            self.dialect.drop_scratch(self.server, self.actor, name)

    def _touch(self, admin: Session, name: str) -> None:
        """Rename the kept state to a fresh scratch name: the sweep counts its idle time from
        now. Not done while another run copies it (that run renames it too)."""
        quote = self.dialect.quote
        with suppress(DatabaseError):
            admin.execute("SET lock_timeout = '1s'")
            fresh = scratch_names.new_name(self.prefix)
            admin.execute(f"ALTER DATABASE {quote(name)} RENAME TO {quote(fresh)}")

    def keep(self, scratch: DatabaseURL, key: str, fingerprint: str) -> None:
        name = self.dialect.create_scratch(
            self.server, self.actor, self.prefix, template=scratch.database or ""
        )
        label = f"{STATE_LABEL}{key} fingerprint {fingerprint} owner {self.owner}"
        quote = self.dialect.quote
        try:
            with self.dialect.connect(self.server, actor=self.actor) as admin:
                admin.execute(f"ALTER DATABASE {quote(name)} ALLOW_CONNECTIONS false")
                admin.execute(f"COMMENT ON DATABASE {quote(name)} IS '{label}'")
                mine = [(n, o) for n, _, _, o in self._listed(admin) if o == self.owner]
        except BaseException:
            self.dialect.drop_scratch(self.server, self.actor, name)
            raise
        # the newest first: a name records when it was made or last used
        by_age = sorted(mine, key=lambda row: _made(row[0], self.prefix), reverse=True)
        for old, _ in by_age[STATES_KEPT:]:
            self.dialect.drop_scratch(self.server, self.actor, old)

    def discard(self, key: str) -> None:
        with self.dialect.connect(self.server, actor=self.actor) as admin:
            names = self._named(admin, key)
        for name in names:
            self.dialect.drop_scratch(self.server, self.actor, name)


def _made(name: str, prefix: str) -> int:
    owner = scratch_names.owner_of(name, prefix)
    return owner.created if owner is not None else 0
