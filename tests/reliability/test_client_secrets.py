"""Secrets on every client-program path: ``ps`` never shows the password.

backout starts client programs (pg_dump, pg_restore, psql; mariadb-dump, mariadb) for backups,
restores, and the database copies of ``plan``'s simulation, ``test`` and ``check``'s replay.
Each command below runs as a real process, with the URL's password given in its user-info or as
``?password=``, while a sampler reads every process's command line (``/proc/*/cmdline``, what
``ps`` shows every user) every few milliseconds. The password must never appear there, and the
client programs must have been seen (so that the sampling could have caught one).

PostgreSQL here trusts every local connection, so a wrong password would connect too: the
assertion is on the command lines. MariaDB checks the password for real (a uniquely named
user), so there the commands succeeding proves the password reached the tools.

Another check: a kill -9 of backout while ``mariadb-dump`` runs leaves no file holding the
password anywhere under the temporary folder (the option file is an unnamed descriptor).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from backout.model.urls import parse_url
from tests.helpers import mysql_connect
from tests.reliability.common import base_env, record_result

PASSWORD_CHARS = "Pw-{}-s3cr3t"
_TOOLS = ("pg_dump", "pg_restore", "psql", "mariadb-dump", "mysqldump", "mariadb", "mysql")


class CommandLines:
    """Samples every process's command line while it runs."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        me = str(os.getpid())
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or entry.name == me:
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                        raw = handle.read()
                except OSError:
                    continue
                if raw:
                    self.seen.add(raw.replace(b"\0", b" ").decode("utf-8", "replace").strip())
            self.samples += 1
            time.sleep(0.002)

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def tools(self) -> set[str]:
        """Names of the client programs seen."""
        return {
            Path(line.split(" ", 1)[0]).name
            for line in self.seen
            if Path(line.split(" ", 1)[0]).name in _TOOLS
        }


def _project(root: Path) -> Path:
    files = {
        "migrations/001_items.up.sql": """
            CREATE TABLE items (id integer PRIMARY KEY, note varchar(50));
            INSERT INTO items (id, note) VALUES (1, 'a'), (2, 'b'), (3, 'c');
        """,
        "migrations/001_items.down.sql": "DROP TABLE items;\n",
        "migrations/002_extra.up.sql": "ALTER TABLE items ADD COLUMN extra integer;\n",
        "migrations/002_extra.down.sql": "ALTER TABLE items DROP COLUMN extra;\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def _run(args: list[str], project: Path, url: str) -> subprocess.CompletedProcess[str]:
    """``python -m backout ARGS`` with the URL in the environment (not on its command line)."""
    return subprocess.run(
        [sys.executable, "-m", "backout", *args, "-C", str(project)],
        env=base_env({"DATABASE_URL": url}),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@contextlib.contextmanager
def _pg_role(admin_url: str, password: str) -> Iterator[tuple[str, str]]:
    """A password role owning a new database: (role, database)."""
    from tests.reliability.common import pg_connect

    tag = uuid.uuid4().hex[:10]
    role, database = f"backout_pw_{tag}", f"backout_pw_{tag}"
    with pg_connect(admin_url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{password}'")
        conn.execute(f"CREATE DATABASE {database} OWNER {role}")
    try:
        yield role, database
    finally:
        with pg_connect(admin_url) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'backout_scratch%%' "
                "AND pg_get_userbyid(datdba) = %s",
                (role,),
            ).fetchall()
            for (name,) in rows:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def _mysql_host(admin_url: str) -> str:
    """``host:port`` of the MariaDB server the tests use (``BACKOUT_TEST_MYSQL``)."""
    parsed = parse_url(admin_url)
    return f"{parsed.host or '127.0.0.1'}:{parsed.port or 3306}"


@contextlib.contextmanager
def _mysql_user(password: str, admin_url: str) -> Iterator[tuple[str, str]]:
    """A password user with its own database: (user, database)."""
    tag = uuid.uuid4().hex[:10]
    user, database = f"bo_pw_{tag}", f"backout_pw_{tag}"

    def admin(*sql: str) -> None:
        conn = mysql_connect(admin_url, database=None)
        try:
            with conn.cursor() as cur:
                for statement in sql:
                    cur.execute(statement)
        finally:
            conn.close()

    admin(
        f"CREATE DATABASE `{database}`",
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
        f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'",
        f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'",
        f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'localhost'",
    )
    try:
        yield user, database
    finally:
        admin(
            f"DROP DATABASE IF EXISTS `{database}`",
            f"DROP USER IF EXISTS '{user}'@'%'",
            f"DROP USER IF EXISTS '{user}'@'localhost'",
        )


def _urls(scheme: str, user: str, password: str, host: str, database: str) -> dict[str, str]:
    secret = quote(password, safe="")
    return {
        "user-info": f"{scheme}://{user}:{secret}@{host}/{database}",
        "query": f"{scheme}://{user}@{host}/{database}?password={secret}",
    }


#: each command, and the client programs it must be seen starting
_COMMANDS: list[tuple[list[str], bool]] = [
    (["up"], False),
    (["backup", "--full"], True),
    (["plan", "--simulate"], True),
    (["test", "002"], True),
    (["check"], False),
    (["restore", "latest", "--into", "{into}"], True),
    (["restore", "latest", "--yes"], True),
]


def _sweep(project: Path, url: str, into: str, form: str) -> dict[str, object]:
    """Run every command with the URL ``url``; what was seen."""
    password = _password_of(url)
    found: list[str] = []
    tools: set[str] = set()
    ran: dict[str, int] = {}
    for args, needs_tool in _COMMANDS:
        argv = [a.replace("{into}", into) for a in args]
        with CommandLines() as lines:
            done = _run(argv, project, url)
        shown = " ".join(args[:2])
        ran[shown] = done.returncode
        # check may find problems (exit 1): what matters here is how it ran its replay
        allowed = (0, 1) if args[0] == "check" else (0,)
        assert done.returncode in allowed, f"{form}: {shown}: {done.stdout[-800:]}{done.stderr}"
        assert password not in done.stdout + done.stderr
        # backout's own command line holds what the user typed (``--into URL``): not ours.
        found += [
            line
            for line in lines.seen
            if (password in line or quote(password) in line) and " -m backout " not in line
        ]
        seen = lines.tools()
        tools |= seen
        if needs_tool:
            assert seen, f"{form}: {shown}: no client program seen in {lines.samples} samples"
    assert not found, f"{form}: a command line held the password: {found[0][:200]}"
    return {"commands": ran, "tools_seen": sorted(tools)}


def _password_of(url: str) -> str:
    from urllib.parse import parse_qsl, unquote

    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    return dict(parse_qsl(parts.query))["password"]


@pytest.mark.postgres
@pytest.mark.parametrize("form", ["user-info", "query"])
def test_postgres_client_programs_never_see_the_password(
    pg_admin_url: str, tmp_path: Path, form: str
) -> None:
    password = PASSWORD_CHARS.format(uuid.uuid4().hex[:6])
    with _pg_role(pg_admin_url, password) as (role, database):
        host = f"{urlsplit(pg_admin_url).hostname}:{urlsplit(pg_admin_url).port or 5432}"
        url = _urls("postgresql", role, password, host, database)[form]
        into = _urls("postgresql", role, password, host, database + "_into")[form]
        project = _project(tmp_path / "project")
        try:
            result = _sweep(project, url, into, form)
        finally:
            from tests.reliability.common import pg_connect

            with pg_connect(pg_admin_url) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {database}_into WITH (FORCE)")
        assert {"pg_dump", "pg_restore"} <= set(result["tools_seen"])  # type: ignore[arg-type]
        record_result("client_secrets", {f"postgresql_{form}": result})


@pytest.mark.mysql
@pytest.mark.parametrize("form", ["user-info", "query"])
def test_mariadb_client_programs_never_see_the_password(
    mysql_admin_url: str, tmp_path: Path, form: str
) -> None:
    password = PASSWORD_CHARS.format(uuid.uuid4().hex[:6])
    host = _mysql_host(mysql_admin_url)
    with _mysql_user(password, mysql_admin_url) as (user, database):
        url = _urls("mysql", user, password, host, database)[form]
        into = _urls("mysql", user, password, host, database + "_into")[form]
        project = _project(tmp_path / "project")
        try:
            result = _sweep(project, url, into, form)
        finally:
            conn = mysql_connect(mysql_admin_url, database=None)
            try:
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{database}_into`")
            finally:
                conn.close()
        assert "mariadb-dump" in result["tools_seen"] or "mysqldump" in result["tools_seen"]  # type: ignore[operator]
        record_result("client_secrets", {f"mariadb_{form}": result})


@pytest.mark.mysql
def test_kill_9_during_mariadb_dump_strands_no_password_file(
    mysql_admin_url: str, tmp_path: Path
) -> None:
    """kill -9 backout (and its dump) while mariadb-dump runs: no file holds the password."""
    password = PASSWORD_CHARS.format(uuid.uuid4().hex[:6])
    temp = tmp_path / "tmp"
    temp.mkdir()
    with _mysql_user(password, mysql_admin_url) as (user, database):
        url = _urls("mysql", user, password, _mysql_host(mysql_admin_url), database)["user-info"]
        project = _project(tmp_path / "project")
        assert _run(["up"], project, url).returncode == 0
        conn = mysql_connect(mysql_admin_url, database=database)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO items (id, note) SELECT seq, REPEAT('x', 50) FROM seq_4_to_200000"
                )
        finally:
            conn.close()
        killed = 0
        for _ in range(3):
            proc = subprocess.Popen(
                [sys.executable, "-m", "backout", "backup", "--full", "-C", str(project)],
                env=base_env({"DATABASE_URL": url, "TMPDIR": str(temp)}),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if any("mariadb-dump" in line or "mysqldump" in line for line in _children()):
                    break
                time.sleep(0.005)
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                killed += 1
            proc.wait()
        assert killed, "mariadb-dump was never seen running"
        stranded = [
            p
            for folder in (temp, Path(tempfile.gettempdir()))
            for p in folder.rglob("*")
            if p.is_file() and _holds(p, password)
        ]
        assert not stranded, f"files holding the password after kill -9: {stranded}"
        record_result("client_secrets", {"mariadb_kill_9_during_dump": {"kills": killed}})


def _children() -> list[str]:
    lines = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    lines.append(handle.read().replace(b"\0", b" ").decode("utf-8", "replace"))
            except OSError:
                continue
    return lines


def _holds(path: Path, password: str) -> bool:
    try:
        if path.stat().st_size > 1 << 20:
            return False
        return password.encode() in path.read_bytes()
    except OSError:
        return False


def test_option_files_earlier_versions_left_are_swept(tmp_path: Path) -> None:
    """Earlier versions' ``backout-mysql-*/client.cnf`` (a kill -9 left them): removed when
    certainly stale (this user's, over a minute old, nothing else inside); others kept."""
    from backout.dialects.mysql.tools import sweep_legacy_option_files

    def folder(name: str, *, age: float, extra: bool = False) -> Path:
        path = tmp_path / name
        path.mkdir(mode=0o700)
        (path / "client.cnf").write_text('[client]\npassword="x"\n')
        if extra:
            (path / "other").write_text("")
        old = time.time() - age
        os.utime(path, (old, old))
        return path

    stale = folder("backout-mysql-abc", age=3600)
    fresh = folder("backout-mysql-def", age=1)
    mixed = folder("backout-mysql-ghi", age=3600, extra=True)
    other = folder("something-else", age=3600)
    assert sweep_legacy_option_files(tmp_path) == [stale]
    assert not stale.exists() and fresh.exists() and mixed.exists() and other.exists()
