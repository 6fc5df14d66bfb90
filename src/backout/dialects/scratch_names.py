"""Names of scratch databases, and telling an abandoned one from one in use.

A scratch database (a rehearsal's copy, ``plan``'s simulation, ``check``'s replay) is named
``<prefix><host>_<pid>_<start>_<random>``: the prefix (``scratch_prefix`` in backout.toml,
default ``backout_scratch_``), 8 hex digits of the sha256 of the host name and the pid
namespace (containers sharing a host name cannot see each other's processes), the owning process
id, its creation time (Unix seconds) and 6 random hex digits. A run that is killed cannot drop
its scratch database; the next run that creates one on the same server first drops those that
are certainly abandoned:

- created on this host by a process that no longer exists, and no session is connected to it
  (the connection check guards against two machines sharing a host name); or
- older than :data:`MAX_AGE_S` (a day: no rehearsal runs that long), wherever it came from,
  and no session is connected to it (the age is read from the creating host's clock, which
  may be days behind this one's).

Anything else, including names of other tools and of older backout versions (which held no
owner), is left alone.

A *kept* copy (``plan``'s schema-only simulation copy, which outlives its run to be reused while
the live schema is unchanged: see :mod:`backout.analysis.simulate`) has such a name too. A run
that reuses one first renames it to a name of its own, which records the time of its last use;
it is abandoned by the rules above only once it has been idle for :data:`KEPT_IDLE_S`. Only a
copy made on this host by a process that no longer exists (or by this very process) may be
claimed, and only while no session is connected to it (:func:`claimable`).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Final

from backout.model.errors import ConfigError

DEFAULT_PREFIX: Final = "backout_scratch_"
#: a scratch database older than this is abandoned whoever created it
MAX_AGE_S: Final = 24 * 3600
#: a kept copy left idle this long (since its last use) is abandoned like any other
KEPT_IDLE_S: Final = 15 * 60
_PREFIX: Final = re.compile(r"[a-z][a-z0-9_]{0,23}")


def check_prefix(prefix: str, where: str) -> str:
    """The prefix if it is safe in every database's names; ConfigError otherwise."""
    if not _PREFIX.fullmatch(prefix):
        raise ConfigError(
            f"{where}: scratch_prefix must be 1-24 characters: lowercase letters, digits and "
            f"'_', starting with a letter (got {prefix!r})"
        )
    return prefix


def _pid_namespace() -> str:
    """This process's pid namespace ("" where there is none to read): processes of another
    one (a container sharing the host name) are invisible here, so they would look dead."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _host_tag() -> str:
    """The host name and the pid namespace: where a process id can be checked."""
    seen_from = f"{socket.gethostname()}\0{_pid_namespace()}"
    return hashlib.sha256(seen_from.encode("utf-8")).hexdigest()[:8]


def new_name(prefix: str = DEFAULT_PREFIX) -> str:
    """A fresh scratch database name owned by this process on this host."""
    return f"{prefix}{_host_tag()}_{os.getpid()}_{int(time.time())}_{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class ScratchOwner:
    """What a scratch database's name says about who created it, and when."""

    host: str
    pid: int
    created: int


def owner_of(name: str, prefix: str = DEFAULT_PREFIX) -> ScratchOwner | None:
    """The owner a name records (None: not a name :func:`new_name` makes)."""
    match = re.fullmatch(
        re.escape(prefix) + r"([0-9a-f]{8})_(\d{1,10})_(\d{9,11})_[0-9a-f]{6}", name
    )
    if match is None:
        return None
    return ScratchOwner(match[1], int(match[2]), int(match[3]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def abandoned(
    name: str, connections: int, prefix: str = DEFAULT_PREFIX, *, kept: bool = False
) -> bool:
    """True only when the database ``name`` is certainly abandoned (see the module docstring).

    ``connections``: sessions connected to it now. ``kept``: it is a kept copy, which is spared
    until it has been idle for :data:`KEPT_IDLE_S`.
    """
    owner = owner_of(name, prefix)
    if owner is None:
        return False
    if connections:
        return False  # in use, whatever its name says (another host's clock may be behind)
    idle = time.time() - owner.created
    if idle > MAX_AGE_S:
        return True
    if kept and idle < KEPT_IDLE_S:
        return False
    return owner.host == _host_tag() and not _alive(owner.pid)


def claimable(name: str, connections: int, prefix: str = DEFAULT_PREFIX) -> bool:
    """Whether this process may take over the kept copy ``name``: made on this host by a
    process that is gone, or by this one, and no session is connected to it."""
    owner = owner_of(name, prefix)
    if owner is None or connections or owner.host != _host_tag():
        return False
    return owner.pid == os.getpid() or not _alive(owner.pid)


def sweep(
    found: Iterable[tuple[str, int]],
    drop: Callable[[str], object],
    prefix: str = DEFAULT_PREFIX,
    *,
    kept: Collection[str] = (),
) -> list[str]:
    """Drop the abandoned ones of ``found`` (name, connections); the names dropped.

    ``kept``: the names of kept copies among them (see :func:`abandoned`).
    """
    dropped = []
    for name, connections in found:
        if abandoned(name, connections, prefix, kept=name in kept):
            drop(name)
            dropped.append(name)
    return dropped
