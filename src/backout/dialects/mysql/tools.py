"""Finding the MySQL/MariaDB client tools, and handing them credentials safely.

``mariadb-dump`` (or ``mysqldump``) writes backups and copies; ``mariadb`` (or ``mysql``) loads
them into a new database. Looked for, in order: ``$BACKOUT_MYSQL_BIN`` when it is set (and only
there), else ``PATH``. For a MariaDB server the MariaDB names are preferred, for MySQL the MySQL
ones (MySQL 8's mysqldump asks a MariaDB server for column statistics it does not have).

The password never appears on a command line (where ``ps`` shows it), nor in a named file: it
goes into an option file that exists only as a descriptor the tool inherits
(:func:`backout.dialects.client_programs.secret_file`), passed with
``--defaults-extra-file=/dev/fd/N``, so a kill -9 leaves no copy of it anywhere.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from backout.dialects.client_programs import secret_file
from backout.model.errors import ToolMissing
from backout.model.urls import DatabaseURL

#: a folder holding the client tools; when set, the only place they are looked for
MYSQL_BIN_ENV: Final = "BACKOUT_MYSQL_BIN"
_VERSION = re.compile(r"(?:Ver|Distrib)\s+(\d+)\.(\d+)(?:\.(\d+))?")
_NAMES: Final = {
    "dump": {"mariadb": ("mariadb-dump", "mysqldump"), "mysql": ("mysqldump", "mariadb-dump")},
    "client": {"mariadb": ("mariadb", "mysql"), "mysql": ("mysql", "mariadb")},
}


@dataclass(frozen=True)
class MysqlTool:
    """A found tool: where, and what ``--version`` says."""

    path: str
    version: str
    #: the tool comes with MariaDB (``mariadb-dump``, or a ``mysqldump`` that says MariaDB)
    mariadb: bool
    #: ``--ignore-table-data`` is supported (MariaDB's dump tool has it, MySQL's does not)
    ignore_table_data: bool = False


@functools.lru_cache(maxsize=16)
def _describe(path: str) -> tuple[str, bool, bool] | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except OSError:
        return None
    match = _VERSION.search(out)
    if match is None:
        return None
    mariadb = "mariadb" in out.lower()
    distrib = re.search(r"Distrib\s+([\w.\-]+?),?\s", out)
    text = distrib.group(1).rstrip(",") if distrib else ".".join(g for g in match.groups() if g)
    ignore = False
    if "dump" in Path(path).name:
        try:
            helptext = subprocess.run(
                [path, "--help"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
            ignore = "--ignore-table-data" in helptext
        except OSError:
            ignore = False
    return text, mariadb, ignore


def _candidates(names: tuple[str, ...]) -> list[str]:
    folder = os.environ.get(MYSQL_BIN_ENV)
    if folder:
        return [str(Path(folder) / name) for name in names if (Path(folder) / name).exists()]
    found = [shutil.which(name) for name in names]
    return list(dict.fromkeys(f for f in found if f))


def find_tool(kind: str, *, server_is_mariadb: bool) -> MysqlTool:
    """The dump tool (``kind="dump"``) or the client (``"client"``); ToolMissing if none."""
    names = _NAMES[kind]["mariadb" if server_is_mariadb else "mysql"]
    for candidate in _candidates(names):
        described = _describe(candidate)
        if described is None:
            continue
        text, mariadb, ignore = described
        if not server_is_mariadb and mariadb:
            # MariaDB's tools mostly work against MySQL; keep looking for MySQL's own first.
            continue
        return MysqlTool(candidate, text, mariadb, ignore)
    # Fall back to any tool that runs, whichever flavour it is.
    for candidate in _candidates(names):
        described = _describe(candidate)
        if described is not None:
            return MysqlTool(candidate, described[0], described[1], described[2])
    where = (
        f" in ${MYSQL_BIN_ENV} ({os.environ[MYSQL_BIN_ENV]})" if MYSQL_BIN_ENV in os.environ else ""
    )
    raise ToolMissing(
        f"{' or '.join(names)} is needed and was not found{where}",
        hint="install the MariaDB or MySQL client tools (Debian: mariadb-client), or point "
        f"{MYSQL_BIN_ENV} at the folder holding them",
    )


def _option_value(value: str) -> str:
    """A value for a MySQL option file, double-quoted with backslash escapes."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@dataclass(frozen=True)
class ClientOptions:
    """How a tool reaches the server: its first options, and the descriptors it inherits."""

    #: ``--defaults-extra-file=/dev/fd/N`` first (it must be a tool's first option), then host,
    #: port, user: never the password
    args: list[str]
    #: pass these to the child (``pass_fds``): the option file holding the password
    fds: tuple[int, ...]


#: earlier versions wrote the password into ``<tmp>/backout-mysql-*/client.cnf``, which a kill
#: -9 left behind; such a folder older than this is certainly no longer read (the tools read
#: their option files when they start)
_LEGACY_AGE_S: Final = 60.0


def sweep_legacy_option_files(folder: Path | None = None) -> list[Path]:
    """Remove option files earlier versions left in the temporary folder; the folders removed.

    Only this user's ``backout-mysql-*`` folders (mode 0700, as they were made) older than a
    minute, holding nothing but ``client.cnf``.
    """
    base = folder or Path(tempfile.gettempdir())
    removed = []
    for candidate in base.glob("backout-mysql-*"):
        try:
            info = candidate.lstat()
            if (
                not candidate.is_dir()
                or candidate.is_symlink()
                or info.st_uid != os.geteuid()
                or time.time() - info.st_mtime < _LEGACY_AGE_S
                or {p.name for p in candidate.iterdir()} - {"client.cnf"}
            ):
                continue
            (candidate / "client.cnf").unlink(missing_ok=True)
            candidate.rmdir()
            removed.append(candidate)
        except OSError:
            continue  # another run swept it first, or it is not ours to touch
    return removed


@contextmanager
def client_options(url: DatabaseURL) -> Iterator[ClientOptions]:
    """Options reaching ``url``'s server, the password in an inherited, unnamed option file."""
    sweep_legacy_option_files()
    lines = ["[client]"]
    if url.password:
        lines.append(f"password={_option_value(url.password)}")
    with secret_file("\n".join(lines) + "\n") as (path, fd):
        args = [f"--defaults-extra-file={path}"]
        socket = dict(url.params).get("socket") or dict(url.params).get("unix_socket")
        if socket:
            args.append(f"--socket={socket}")
        else:
            args.append(f"--host={url.host or '127.0.0.1'}")
            args.append(f"--port={url.port or 3306}")
            args.append("--protocol=TCP")
        if url.user:
            args.append(f"--user={url.user}")
        yield ClientOptions(args, (fd,))
