"""PostgreSQL: schema-only copies kept between runs for ``plan``'s simulation.

A kept copy is a scratch database (named and swept by :mod:`backout.dialects.scratch_names`)
whose comment is :data:`KEPT_LABEL` followed by the key it was made for (see
:mod:`backout.analysis.simulate`: the live schema's fingerprint). A run claims one by renaming it
to a scratch name of its own: PostgreSQL renames a database only while no session is connected
to it, and only one of two runs renaming the same database succeeds, so a copy is never handed
to two runs at once. The name then records the claim's time, which spares the copy from the
sweep while it is idle for less than :data:`~backout.dialects.scratch_names.KEPT_IDLE_S`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from backout.dialects import scratch_names
from backout.dialects.base import Actor, KeptCopies, Session
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

    def create_scratch(self, server: DatabaseURL, actor: Actor, prefix: str) -> str: ...

    def copy_database(
        self, source: DatabaseURL, target: DatabaseURL, actor: Actor, *, data: bool
    ) -> None: ...

    def drop_scratch(self, server: DatabaseURL, actor: Actor, name: str) -> None: ...


#: how a kept copy's comment starts; the key follows
KEPT_LABEL = "backout kept schema-only copy, key "

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
