"""Starting database client programs (pg_dump, pg_restore, psql, mariadb-dump, mariadb).

Every launch of a client program goes through :func:`run` or :func:`start`, which refuse to
start one whose command line holds any of the connection's secrets: ``ps`` (``/proc/*/cmdline``)
shows a command line to every user of the machine. Credentials travel only through the
environment (``PGPASSWORD``) or an inherited file descriptor (MySQL option files, see
:func:`secret_file`), never through a named file a crash could leave behind.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from backout.model.errors import BackoutError

#: set while a fleet target runs (:func:`shielded_from_interrupts`)
_SHIELDED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "backout_client_programs_shielded", default=False
)


@contextlib.contextmanager
def shielded_from_interrupts() -> Iterator[None]:
    """Client programs started in this block (in this thread) run in a session of their own.

    A terminal sends Ctrl-C's SIGINT to its whole foreground process group: a fleet run lets
    the targets running finish (docs/fleet.md), so their pg_dump or psql must not be killed
    by it. A single command keeps them in its group: Ctrl-C stops them with it.
    """
    token = _SHIELDED.set(True)
    try:
        yield
    finally:
        _SHIELDED.reset(token)


def _session_kw(kw: dict[str, Any]) -> dict[str, Any]:
    return {"start_new_session": True, **kw} if _SHIELDED.get() else kw


class SecretOnCommandLine(BackoutError):
    """A client program was about to be started with a password in its arguments."""


def _checked(args: Sequence[str | Path], secrets: Sequence[str]) -> list[str]:
    """The arguments as strings; SecretOnCommandLine when one holds a secret."""
    argv = [str(a) for a in args]
    for secret in secrets:
        if secret and any(secret in arg for arg in argv):
            raise SecretOnCommandLine(
                f"refusing to start {Path(argv[0]).name}: its command line would hold a "
                "password (visible to every user in `ps`)",
                hint="this is a bug in backout; please report it",
            )
    return argv


def run(
    args: Sequence[str | Path],
    *,
    secrets: Sequence[str],
    env: Mapping[str, str] | None = None,
    **kw: Any,
) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run`` of a client program, after checking its command line holds no
    secret. OSError when it cannot start."""
    argv = _checked(args, secrets)
    return subprocess.run(
        argv, env=dict(env) if env is not None else None, check=False, **_session_kw(kw)
    )


def start(
    args: Sequence[str | Path],
    *,
    secrets: Sequence[str],
    env: Mapping[str, str] | None = None,
    **kw: Any,
) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` of a client program, after checking its command line holds no
    secret. OSError when it cannot start."""
    argv = _checked(args, secrets)
    return subprocess.Popen(argv, env=dict(env) if env is not None else None, **_session_kw(kw))


@contextlib.contextmanager
def secret_file(content: str) -> Iterator[tuple[str, int]]:
    """A file holding ``content`` that exists only as an open descriptor: (path, fd).

    The path is ``/dev/fd/N``; pass ``fd`` in ``pass_fds`` to the child. The file has no name
    in any folder (a ``memfd``, or an unnamed ``O_TMPFILE``; a pipe as the last resort), so a
    kill -9 of backout or of the child leaves nothing behind: the kernel frees it with the
    last descriptor.
    """
    data = content.encode("utf-8")
    fd = _anonymous_file(data)
    try:
        yield f"/dev/fd/{fd}", fd
    finally:
        os.close(fd)


def _anonymous_file(data: bytes) -> int:
    """A descriptor of an unnamed file holding ``data`` (read from the start)."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None:
        try:
            fd = int(memfd("backout-client-options", getattr(os, "MFD_CLOEXEC", 0)))
        except OSError:
            fd = -1
        if fd >= 0:
            # A memfd starts world-writable, and the MySQL tools ignore such an option file.
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.lseek(fd, 0, os.SEEK_SET)
            return fd
    # A pipe works where there is no memfd (the option file is read once), and its buffer
    # holds far more than an option file.
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
    finally:
        os.close(write_end)
    return read_end
