"""Issue 16: connection poolers. Through a real PgBouncer (Debian's, installed by .ci/run):
transaction mode is refused before anything runs (exit 5, naming how to give a direct URL);
session mode works; Prisma's ``directUrl`` takes backout past the pooler.

Each test module run starts two private PgBouncers (transaction and session mode) on free ports,
with their own ini and auth files in a temporary folder, in front of the test PostgreSQL; they
are stopped afterwards, also when a test fails. With CI set, a missing pgbouncer fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from backout.dialects.postgres.dialect import BACKOUT_LOCK_KEY, PRISMA_LOCK_KEY
from tests.helpers import db_state, run, write

PGBOUNCER_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")

PROJECT = {
    "prisma/schema.prisma": """\
        datasource db {
          provider = "postgresql"
          url      = env("DATABASE_URL")
        }
        """,
    "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
    "prisma/migrations/20240101000000_users/migration.sql": (
        'CREATE TABLE "User" (id INTEGER PRIMARY KEY, name TEXT);\n'
        "INSERT INTO \"User\" VALUES (1, 'ada');\n"
    ),
    "prisma/rollback/20240101000000_users_rollback.sql": (
        '-- backout:risk HIGH\nDROP TABLE "User";\n'
    ),
    "prisma/migrations/20240102000000_posts/migration.sql": (
        'CREATE TABLE "Post" (id INTEGER PRIMARY KEY);\n'
    ),
    "prisma/rollback/20240102000000_posts_rollback.sql": (
        '-- backout:risk HIGH\nDROP TABLE "Post";\n'
    ),
}
DIRECT_SCHEMA = """\
    datasource db {
      provider  = "postgresql"
      url       = env("DATABASE_URL")   // the application's: through the pooler
      directUrl = env("DIRECT_URL")     // Prisma Migrate's, and backout's
    }
    """


def _pgbouncer() -> str:
    found = shutil.which("pgbouncer") or next(
        (p for p in PGBOUNCER_PATHS if os.access(p, os.X_OK)), None
    )
    if found is None:
        message = "pgbouncer is not installed (.ci/run installs Debian's)"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: pooler tests must run, not skip)", pytrace=False)
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pooler:
    """A running private PgBouncer; :meth:`url` gives a database through it."""

    mode: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, direct_url: str) -> str:
        parts = urlsplit(direct_url)
        user = f"{parts.username}@" if parts.username else ""
        return f"postgresql://{user}127.0.0.1:{self.port}{parts.path}"


def _start(
    binary: str, folder: Path, mode: str, server: str, name: str = "", settings: str = ""
) -> Pooler:
    """``name``: of its files (default: the mode); ``settings``: more lines of the ini."""
    name = name or mode
    parts = urlsplit(server)
    port = _free_port()
    user = parts.username or "postgres"
    (folder / f"{name}.users").write_text(f'"{user}" "{parts.password or ""}"\n')
    ini = folder / f"{name}.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / f'{name}.users'}\n"
        f"pool_mode = {mode}\nlogfile =\npidfile =\n"
        f"{settings}\n"
    )
    for path in folder.iterdir():
        path.chmod(0o644)
    log = folder / f"{name}.log"
    # PgBouncer refuses to run as root (CI runs as root): then it runs as nobody
    user_args: dict[str, object] = {}
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        user_args = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, str(ini)], stdout=out, stderr=subprocess.STDOUT, **user_args
        )
    pooler = Pooler(mode, port, process, log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer ({mode}) exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return pooler
        except OSError:
            time.sleep(0.05)
    _stop(pooler)
    raise RuntimeError(f"pgbouncer ({mode}) did not listen on {port}")


def _stop(pooler: Pooler) -> None:
    if pooler.process.poll() is None:
        pooler.process.terminate()
        try:
            pooler.process.wait(10)
        except subprocess.TimeoutExpired:
            pooler.process.kill()
            pooler.process.wait()


#: transaction-mode PgBouncers with settings that once let a pooler pass or hang the check:
#: idle servers lent in turn; a pool of one server (a client waits for it, here at most 20 s)
TRANSACTION_VARIANTS = {
    "transaction-round-robin": "server_round_robin = 1",
    "transaction-pool-of-one": "default_pool_size = 1\nquery_wait_timeout = 20",
}


@pytest.fixture(scope="module")
def poolers(pg_admin_url: str) -> Iterator[dict[str, Pooler]]:
    """PgBouncers in transaction, session and statement mode in front of the test server, and
    the variants of transaction mode in TRANSACTION_VARIANTS."""
    binary = _pgbouncer()
    folder = Path(tempfile.mkdtemp(prefix="backout_pgbouncer_"))
    folder.chmod(0o755)
    started: dict[str, Pooler] = {}
    try:
        for mode in ("transaction", "session", "statement"):
            started[mode] = _start(binary, folder, mode, pg_admin_url)
        for name, settings in TRANSACTION_VARIANTS.items():
            started[name] = _start(binary, folder, "transaction", pg_admin_url, name, settings)
        yield started
    finally:
        for pooler in started.values():
            _stop(pooler)
        shutil.rmtree(folder, ignore_errors=True)


def advisory_locks(url: str) -> list[tuple[int, int]]:
    """The advisory locks on this database (classid, objid) that backout or Prisma use (the
    server is shared: other tests hold them on databases of their own)."""
    with psycopg.connect(url, autocommit=True) as conn:
        keys = [(k >> 32) & 0xFFFFFFFF for k in (BACKOUT_LOCK_KEY, PRISMA_LOCK_KEY)]
        return conn.execute(
            "SELECT classid::bigint, objid::bigint FROM pg_locks "
            "WHERE locktype = 'advisory' AND classid::bigint = ANY(%s) AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            (keys,),
        ).fetchall()


def tables(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("command", [["up"], ["status"], ["rollback", "--yes"], ["plan"]])
def test_transaction_pooler_is_refused_before_anything(
    tmp_path: Path, pg_url: str, poolers: dict[str, Pooler], command: list[str]
) -> None:
    project = write(tmp_path, PROJECT)
    if command[0] in ("rollback", "plan"):
        assert run(["up"], project=project, url=pg_url).exit_code == 0
    before = db_state(pg_url)
    pooled = poolers["transaction"].url(pg_url)
    result = run(command, project=project, env={"DATABASE_URL": pooled})
    assert result.exit_code == 5, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert "connection pooler in transaction mode" in lines[0]
    assert "(URL from environment)" in lines[0]
    assert (
        "hint: give backout a direct URL, as Prisma Migrate takes one: "
        'directUrl = env("DIRECT_URL")' in result.output
    )
    assert db_state(pg_url) == before
    assert advisory_locks(pg_url) == []


def test_direct_url_through_a_pooler_is_named(
    tmp_path: Path, pg_url: str, poolers: dict[str, Pooler]
) -> None:
    project = write(tmp_path, {**PROJECT, "prisma/schema.prisma": DIRECT_SCHEMA})
    pooled = poolers["transaction"].url(pg_url)
    result = run(["up"], project=project, env={"DIRECT_URL": pooled})
    assert result.exit_code == 5, result.output
    assert "(URL from directUrl in prisma/schema.prisma)" in result.output
    assert "the direct URL (directUrl in prisma/schema.prisma) must reach the database" in (
        result.output
    )
    assert tables(pg_url) == set()


def test_prisma_pgbouncer_flag_is_refused_without_connecting(tmp_path: Path) -> None:
    project = write(tmp_path, PROJECT)
    # nothing listens on port 1: the refusal comes before any connection attempt
    flagged = "postgresql://postgres@127.0.0.1:1/db?pgbouncer=true"
    result = run(["status"], project=project, env={"DATABASE_URL": flagged})
    assert result.exit_code == 5, result.output
    assert "says pgbouncer=true" in result.output


def test_session_pooler_works(tmp_path: Path, pg_url: str, poolers: dict[str, Pooler]) -> None:
    project = write(tmp_path, PROJECT)
    pooled = poolers["session"].url(pg_url)
    env = {"DATABASE_URL": pooled}
    up = run(["up"], project=project, env=env)
    assert up.exit_code == 0, up.output
    assert {"public.User", "public.Post"} <= tables(pg_url)
    status = run(["status"], project=project, env=env)
    assert status.exit_code == 0, status.output
    rollback = run(["rollback", "--yes"], project=project, env=env)
    assert rollback.exit_code == 0, rollback.output
    assert "public.Post" not in tables(pg_url) and "public.User" in tables(pg_url)
    assert advisory_locks(pg_url) == []


def test_direct_url_takes_backout_past_the_pooler(
    tmp_path: Path, pg_url: str, poolers: dict[str, Pooler]
) -> None:
    project = write(tmp_path, {**PROJECT, "prisma/schema.prisma": DIRECT_SCHEMA})
    env = {"DATABASE_URL": poolers["transaction"].url(pg_url), "DIRECT_URL": pg_url}
    status = run(["status"], project=project, env=env)
    assert status.exit_code == 0, status.output
    assert "(from directUrl in prisma/schema.prisma)" in status.output
    up = run(["up"], project=project, env=env)
    assert up.exit_code == 0, up.output
    assert {"public.User", "public.Post"} <= tables(pg_url)
    rollback = run(["rollback", "--yes"], project=project, env=env)
    assert rollback.exit_code == 0, rollback.output
    assert "public.Post" not in tables(pg_url)


def test_direct_url_is_used_not_url(tmp_path: Path, pg_url: str) -> None:
    """``url`` at a port where nothing listens: only directUrl can have been used."""
    project = write(tmp_path, {**PROJECT, "prisma/schema.prisma": DIRECT_SCHEMA})
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere", "DIRECT_URL": pg_url}
    up = run(["up", "--json"], project=project, env=env)
    assert up.exit_code == 0, up.output
    assert {"public.User", "public.Post"} <= tables(pg_url)


def test_detection_holds_under_load(pg_url: str, poolers: dict[str, Pooler]) -> None:
    """Other clients busy on the same transaction pool (so the backend a probe released may be
    taken by one of them): every probe still sees the pooling; the session pool never does."""
    import threading

    from backout.dialects.postgres import pooler as probe
    from backout.model.errors import PoolerRefused
    from backout.model.urls import parse_url

    stop = threading.Event()

    def busy(url: str) -> None:
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
            while not stop.is_set():
                conn.execute("SELECT pg_sleep(0.001)")

    verdicts: dict[str, list[bool]] = {}
    for mode in ("transaction", "session"):
        pool = poolers[mode]
        url = pool.url(pg_url)
        workers = [threading.Thread(target=busy, args=(url,)) for _ in range(4)]
        for worker in workers:
            worker.start()
        try:
            verdicts[mode] = []
            for _ in range(10):
                probe._VERIFIED.clear()
                with psycopg.connect(url, autocommit=True) as conn:
                    try:
                        probe.check_not_transaction_pooled(conn, url, parse_url(url))
                        verdicts[mode].append(False)
                    except PoolerRefused:
                        verdicts[mode].append(True)
        finally:
            stop.set()
            for worker in workers:
                worker.join()
            stop.clear()
    assert verdicts == {"transaction": [True] * 10, "session": [False] * 10}


def test_statement_pooler_is_refused(
    tmp_path: Path, pg_url: str, poolers: dict[str, Pooler]
) -> None:
    project = write(tmp_path, PROJECT)
    result = run(["up"], project=project, env={"DATABASE_URL": poolers["statement"].url(pg_url)})
    assert result.exit_code == 5, result.output
    assert "statement pooling" in result.output
    assert tables(pg_url) == set()
    assert advisory_locks(pg_url) == []


def test_hint_for_other_layouts_names_backout_toml(
    tmp_path: Path, pg_url: str, poolers: dict[str, Pooler]
) -> None:
    project = write(
        tmp_path,
        {
            "backout.toml": 'layout = "plain"\n',
            "migrations/001_a.up.sql": "CREATE TABLE a (id int);\n",
            "migrations/001_a.down.sql": "-- backout:risk HIGH\nDROP TABLE a;\n",
        },
    )
    pooled = poolers["transaction"].url(pg_url)
    result = run(["up"], project=project, env={"DATABASE_URL": pooled})
    assert result.exit_code == 5, result.output
    assert "hint: give backout a direct URL (the database server, not the pooler): " in (
        result.output
    )
    assert "schema.prisma" not in result.output
    assert tables(pg_url) == set()
    fixed = write(project, {"backout.toml": 'layout = "plain"\ndirect_url = \'env("DIRECT")\'\n'})
    result = run(["up"], project=fixed, env={"DATABASE_URL": pooled, "DIRECT": pg_url})
    assert result.exit_code == 0, result.output
    assert "public.a" in tables(pg_url)


def test_round_robin_transaction_pooler_with_two_idle_servers(
    pg_url: str, poolers: dict[str, Pooler]
) -> None:
    """``server_round_robin = 1`` hands out the longest-idle server: with exactly two idle
    servers, the probe's second connection takes the other one and the first connection keeps
    getting its own, unless the probe looks twice before the second connection pins one."""
    from backout.dialects.postgres import pooler as probe
    from backout.model.errors import PoolerRefused
    from backout.model.urls import parse_url

    url = poolers["transaction-round-robin"].url(pg_url)
    # two clients in transactions at once: the pool opens (and then keeps) two servers
    warm = [psycopg.connect(url) for _ in range(2)]
    for conn in warm:
        conn.execute("SELECT 1")
    for conn in warm:
        conn.close()
    verdicts = []
    for _ in range(5):
        probe._VERIFIED.clear()
        with psycopg.connect(url, autocommit=True) as conn:
            try:
                probe.check_not_transaction_pooled(conn, url, parse_url(url))
                verdicts.append(False)
            except PoolerRefused:
                verdicts.append(True)
    assert verdicts == [True] * 5


def test_transaction_pooler_with_a_pool_of_one_is_refused_at_once(
    pg_url: str, poolers: dict[str, Pooler]
) -> None:
    """With a single server, the probe's second connection pins the very backend the first one
    needs for its next look: the verdict must come before that look, not after PgBouncer's
    query_wait_timeout (120 s by default) ends it with an error."""
    from backout.dialects.postgres import pooler as probe
    from backout.model.errors import PoolerRefused
    from backout.model.urls import parse_url

    url = poolers["transaction-pool-of-one"].url(pg_url)
    for _ in range(3):
        probe._VERIFIED.clear()
        started = time.monotonic()
        with (
            psycopg.connect(url, autocommit=True) as conn,
            pytest.raises(PoolerRefused, match="was lent to another connection"),
        ):
            probe.check_not_transaction_pooled(conn, url, parse_url(url))
        assert time.monotonic() - started < 5


class _CoincidentPort:
    """A connection through the pooler whose server connection happens to have this socket's
    local port (possible: the kernel reuses a local port toward another address): the server's
    ``inet_client_port()`` then equals it, and only the other end's port tells them apart."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn

    def execute(self, query: str, *args: object, **kwargs: object) -> object:
        cursor = self.conn.execute(query, *args, **kwargs)  # type: ignore[call-overload]
        if "inet_client_port" not in query:
            return cursor
        own = socket.socket(fileno=os.dup(self.conn.pgconn.socket))
        with own:
            port = own.getsockname()[1]
        row = cursor.fetchone()
        return _Rows([(port, *row[1:])])


@dataclass
class _Rows:
    rows: list[tuple[object, ...]]

    def fetchone(self) -> tuple[object, ...]:
        return self.rows[0]


def test_a_pooler_is_not_taken_for_direct_on_a_coincident_client_port(
    pg_url: str, poolers: dict[str, Pooler]
) -> None:
    from backout.dialects.postgres import pooler as probe
    from backout.model.errors import PoolerRefused
    from backout.model.urls import parse_url

    url = poolers["transaction"].url(pg_url)
    probe._VERIFIED.clear()
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(PoolerRefused):
        probe.check_not_transaction_pooled(_CoincidentPort(conn), url, parse_url(url))


def test_a_direct_tcp_connection_costs_one_query_and_leaves_nothing(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ends' ports match: no second connection, no transaction, no prepared statement."""
    from backout.dialects.postgres import pooler as probe
    from backout.model.urls import parse_url

    probe._VERIFIED.clear()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with monkeypatch.context() as patched:
            patched.setattr(psycopg, "connect", pytest.fail)
            probe.check_not_transaction_pooled(conn, pg_url, parse_url(pg_url))
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


def test_pooler_given_with_url_flag_is_named_in_the_hint(
    tmp_path: Path, pg_url: str, poolers: dict[str, Pooler]
) -> None:
    """--url beats every direct URL: the hint must not send the user to directUrl, which
    would change nothing, but to the flag itself."""
    project = write(tmp_path, {**PROJECT, "prisma/schema.prisma": DIRECT_SCHEMA})
    pooled = poolers["transaction"].url(pg_url)
    result = run(["up"], project=project, url=pooled, env={"DIRECT_URL": pg_url})
    assert result.exit_code == 5, result.output
    assert "(URL from flag)" in result.output
    hint = next(line for line in result.output.splitlines() if line.startswith("hint:"))
    assert "--url" in hint and "directUrl" not in hint and "direct_url" not in hint
    assert tables(pg_url) == set()
