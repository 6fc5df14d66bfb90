"""Issue 15, last part: ``rollback --update-schema=pull|git``, the seeds' "update the Prisma
schema, run ``prisma generate``" step.

With the real Prisma 6 CLI (``../shared/tools/prisma6``, installed once per session like
tests/integration/test_prisma_cli.py, or found at ``$BACKOUT_PRISMA6_DIR`` where ``.ci/run``
installs it) and a real git repository of two commits in a temporary folder: schema.prisma's
content afterwards, the diff shown, what ``prisma generate`` produced, the exit code when it
fails (5: the rollback stands), and the refusals (the database and the files unchanged).

The generator is ``prisma-client`` with an ``output`` folder: it generates offline. (The older
``prisma-client-js`` installs ``@prisma/client`` from the npm registry on its first run.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from backout.rollback.schema_update import unified_diff
from tests.helpers import REPO, db_state, run, sql, write
from tests.integration.test_exit_codes_doc import documented_codes
from tests.integration.test_json_docs import assert_documented, documented

GENERATOR = 'generator client {\n  provider = "prisma-client"\n  output   = "../generated"\n}\n'
DATASOURCE = 'datasource db {{\n  provider = "{provider}"\n  url      = env("DATABASE_URL")\n}}\n'
USER_V1 = "model User {\n  id    Int    @id @default(autoincrement())\n  email String\n}\n"
USER_V2 = (
    "model User {\n  id       Int     @id @default(autoincrement())\n  email    String\n"
    "  nickname String?\n}\n"
)
INIT = 'CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" TEXT NOT NULL);\n'
INIT_SQLITE = (
    'CREATE TABLE "User" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "email" TEXT NOT NULL);\n'
)
NICK = 'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\n'
NICK_DOWN = '-- backout:risk HIGH\nALTER TABLE "User" DROP COLUMN "nickname";\n'
NICK_ID = "20250102000000_nickname"


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: must run, not skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def prisma6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where node_modules/.bin/prisma is the real Prisma 6 CLI."""
    given = os.environ.get("BACKOUT_PRISMA6_DIR")
    if given and (Path(given) / "node_modules" / ".bin" / "prisma").exists():
        return Path(given)
    tools = REPO.parent / "shared" / "tools" / "prisma6"
    if not (tools / "setup.sh").is_file():
        _missing(f"the Prisma 6 tools are not at {tools}")
    if shutil.which("npm") is None:
        _missing("npm is not installed")
    target = tmp_path_factory.mktemp("prisma6")
    done = subprocess.run(
        ["bash", str(tools / "setup.sh"), str(target)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0 or not (target / "node_modules" / "prisma").is_dir():
        _missing(f"Prisma 6 set-up failed: {(done.stderr or done.stdout)[-500:]}")
    return target


def prisma_env(home: Path) -> dict[str, str]:
    """The variables the set-up's env.sh exports (the WASM engine's stand-ins), but not its
    DATABASE_URL: backout passes the URL itself."""
    env = {}
    for line in (home / "env.sh").read_text().splitlines():
        for name, value in re.findall(r"(\w+)=(\S+)", line.removeprefix("export ")):
            if name != "DATABASE_URL":
                env[name] = value
    return env


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def schema(provider: str, model: str, generator: str = GENERATOR) -> str:
    return f"{generator}\n{DATASOURCE.format(provider=provider)}\n{model}"


def project(
    tmp_path: Path,
    *,
    provider: str = "postgresql",
    prisma6: Path | None = None,
    commits: bool = True,
    v1_generator: str = GENERATOR,
    top: Path | None = None,
    schema_name: str = "schema.prisma",
) -> Path:
    """A Prisma project of two migrations (init; nickname, with its rollback). With
    ``commits``, a git repository of two commits: init with schema v1, then nickname with
    schema v2. With ``prisma6``, the real Prisma CLI in its node_modules."""
    root = tmp_path / "app"
    write(
        root,
        {
            f"prisma/{schema_name}": schema(provider, USER_V1, v1_generator),
            "prisma/migrations/migration_lock.toml": f'provider = "{provider}"\n',
            "prisma/migrations/20250101000000_init/migration.sql": (
                INIT if provider == "postgresql" else INIT_SQLITE
            ),
        },
    )
    if commits:
        git(root.parent, "init", "-q", str(top or root))
        git(root, "config", "user.email", "t@example.com")
        git(root, "config", "user.name", "t")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "init")
    write(
        root,
        {
            f"prisma/{schema_name}": schema(provider, USER_V2),
            f"prisma/migrations/{NICK_ID}/migration.sql": NICK,
            f"prisma/rollback/{NICK_ID}_rollback.sql": NICK_DOWN,
        },
    )
    if commits:
        git(root, "add", "-A")
        git(root, "commit", "-qm", "nickname")
    if prisma6 is not None:  # untracked, as node_modules is in an application's checkout
        (root / "node_modules").symlink_to(prisma6 / "node_modules")
        for name in ("package.json", "prisma.config.ts"):
            shutil.copy(prisma6 / name, root / name)
    return root


def columns(url: str) -> list[str]:
    if url.startswith("sqlite"):
        return [r[1] for r in sql(url, "SELECT * FROM pragma_table_info('User')")]
    rows = sql(
        url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'User' "
        "ORDER BY ordinal_position",
    )
    return [r[0] for r in rows]


def rolled_back_in_history(url: str) -> bool:
    rows = sql(
        url, f"SELECT rolled_back_at FROM _prisma_migrations WHERE migration_name = '{NICK_ID}'"
    )
    return rows[0][0] is not None


# --- with the real Prisma CLI, on PostgreSQL ---------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_pull_rewrites_the_schema_from_the_database_and_generates(
    tmp_path: Path, pg_url: str, prisma6: Path
) -> None:
    root = project(tmp_path, prisma6=prisma6)
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    env = prisma_env(prisma6)

    result = run(["rollback", "--yes", "--update-schema=pull"], project=root, url=pg_url, env=env)

    assert result.exit_code == 0, result.output
    assert columns(pg_url) == ["id", "email"] and rolled_back_in_history(pg_url)
    text = (root / "prisma" / "schema.prisma").read_text()
    model = re.search(r"model User \{[^}]*\}", text)
    assert model is not None and "email" in model[0] and "nickname" not in model[0]
    assert GENERATOR in text and 'url      = env("DATABASE_URL")' in text  # kept by db pull
    assert "-  nickname String?" in result.stdout  # the diff shown
    assert "`npx prisma db pull --schema prisma/schema.prisma` passed" in result.stdout
    assert "`npx prisma generate --schema prisma/schema.prisma` passed" in result.stdout
    generated = (root / "generated" / "models" / "User.ts").read_text()
    assert "email" in generated and "nickname" not in generated


@pytest.mark.postgres
@pytest.mark.slow
def test_git_restores_the_schema_of_the_commit_before_the_migration(
    tmp_path: Path, pg_url: str, prisma6: Path
) -> None:
    root = project(tmp_path, prisma6=prisma6)
    # the configuration file's key, not the flag
    write(root, {"backout.toml": '[prisma]\nupdate_schema = "git"\n'})
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    v1 = git(root, "rev-parse", "HEAD~1")
    expected = subprocess.run(
        ["git", "-C", str(root), "show", "HEAD~1:prisma/schema.prisma"],
        capture_output=True,
        check=True,
    ).stdout
    env = prisma_env(prisma6)

    result = run(["rollback", "--yes", "--json"], project=root, url=pg_url, env=env)

    assert result.exit_code == 0, result.output
    assert columns(pg_url) == ["id", "email"] and rolled_back_in_history(pg_url)
    assert (root / "prisma" / "schema.prisma").read_bytes() == expected
    document = json.loads(result.stdout)
    assert_documented(documented()["rollback"][2], document)
    update = document["schema_update"]
    assert update["status"] == "updated" and update["generate"] == "ok"
    assert update["commit"] == v1 and update["mode"] == "git"
    assert update["diff"].startswith("--- a/prisma/schema.prisma\n+++ b/prisma/schema.prisma\n")
    assert "-  nickname String?\n" in update["diff"]
    assert update["manual"] == [] and update["error"] is None
    generated = (root / "generated" / "models" / "User.ts").read_text()
    assert "email" in generated and "nickname" not in generated
    # the diff takes it back: git apply -R restores what the rollback replaced
    (root / "d.patch").write_text(update["diff"])
    git(root, "apply", "-R", "d.patch")
    assert git(root, "status", "--porcelain", "prisma") == ""


@pytest.mark.postgres
@pytest.mark.slow
def test_a_failed_generate_leaves_the_rollback_and_says_what_to_run(
    tmp_path: Path, pg_url: str, prisma6: Path
) -> None:
    # the schema of the commit before the migration has a generator prisma generate refuses
    broken = 'generator client {\n  provider = "prisma-client"\n}\n'
    root = project(tmp_path, prisma6=prisma6, v1_generator=broken)
    assert run(["up"], project=root, url=pg_url).exit_code == 0

    result = run(
        ["rollback", "--yes", "--update-schema=git"],
        project=root,
        url=pg_url,
        env=prisma_env(prisma6),
    )

    assert result.exit_code == 6, result.output
    assert columns(pg_url) == ["id", "email"] and rolled_back_in_history(pg_url)
    assert (root / "prisma" / "schema.prisma").read_text() == schema("postgresql", USER_V1, broken)
    assert not (root / "generated").exists()
    assert "An output path is required" in result.stdout  # the CLI's own output, shown
    (error, hint) = result.stderr.strip().splitlines()[-2:]
    assert error.startswith(
        "error: --update-schema=git: `npx prisma generate --schema prisma/schema.prisma` "
        "exited 1: Error: An output path is required"
    )
    assert error.endswith("the rollback itself is committed")
    assert "prisma/schema.prisma was restored from git commit" in hint
    assert "the Prisma Client was NOT generated" in hint
    assert hint.endswith("To do by hand: npx prisma generate --schema prisma/schema.prisma")


# --- without the Prisma CLI --------------------------------------------------------------------


def test_without_the_cli_git_restores_and_leaves_generate_to_do(
    tmp_path: Path, sqlite_url: str
) -> None:
    root = project(tmp_path, provider="sqlite")
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(["rollback", "--yes", "--update-schema=git"], project=root, url=sqlite_url)
    assert result.exit_code == 0, result.output
    assert columns(sqlite_url) == ["id", "email"]
    assert (root / "prisma" / "schema.prisma").read_text() == schema("sqlite", USER_V1)
    assert "-  nickname String?" in result.stdout
    assert "Not done here: the Prisma CLI was not found: no node_modules/.bin/prisma" in (
        result.stdout
    )
    assert "  1. npx prisma generate --schema prisma/schema.prisma" in result.stdout


def test_without_git_the_git_steps_are_printed(tmp_path: Path, sqlite_url: str) -> None:
    """git mode in a work tree (a .git folder) where git is not installed: nothing is changed,
    the steps are printed with the reason."""
    root = project(tmp_path, provider="sqlite")
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    before = (root / "prisma" / "schema.prisma").read_bytes()
    empty = tmp_path / "empty-path"
    empty.mkdir()
    result = run(
        ["rollback", "--yes", "--update-schema=git", "--json"],
        project=root,
        url=sqlite_url,
        env={"PATH": str(empty)},
    )
    assert result.exit_code == 0, result.output
    assert columns(sqlite_url) == ["id", "email"]
    assert (root / "prisma" / "schema.prisma").read_bytes() == before
    update = json.loads(result.stdout)["schema_update"]
    assert update["status"] == "manual" and update["reason"] == "git is not on PATH"
    assert update["manual"][0].startswith(
        "git show <commit>^:./prisma/schema.prisma > prisma/schema.prisma  (<commit>: "
    )
    assert update["manual"][1] == "npx prisma generate --schema prisma/schema.prisma"


@pytest.mark.postgres
def test_without_the_cli_pull_changes_nothing_and_prints_the_steps(
    tmp_path: Path, pg_url: str
) -> None:
    root = project(tmp_path)
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    before = (root / "prisma" / "schema.prisma").read_bytes()
    result = run(["rollback", "--yes", "--update-schema=pull", "--json"], project=root, url=pg_url)
    assert result.exit_code == 0, result.output
    assert columns(pg_url) == ["id", "email"]
    assert (root / "prisma" / "schema.prisma").read_bytes() == before
    update = json.loads(result.stdout)["schema_update"]
    assert update["status"] == "manual" and update["diff"] == "" and update["commands"] == []
    assert update["reason"].startswith("the Prisma CLI was not found")
    assert update["manual"] == [
        "npx prisma db pull --schema prisma/schema.prisma  (with DATABASE_URL set to the "
        "database's URL)",
        "npx prisma generate --schema prisma/schema.prisma",
    ]


def test_a_configured_command_gets_the_url_in_its_environment_only(
    tmp_path: Path, sqlite_url: str
) -> None:
    """``[prisma] command``: run as configured, with the URL in DATABASE_URL and in the
    variable the datasource names, and never among its arguments."""
    root = project(tmp_path, provider="sqlite")
    text = (root / "prisma" / "schema.prisma").read_text()
    text = text.replace('url      = env("DATABASE_URL")', 'url      = env("APP_DB")')
    write(root, {"prisma/schema.prisma": text})
    git(root, "commit", "-qam", "APP_DB")
    log = tmp_path / "calls.log"
    fake = tmp_path / "fake-prisma"
    fake.write_text(f'#!/bin/sh\necho "$* | $DATABASE_URL | $APP_DB" >> {log}\n')
    fake.chmod(0o755)
    write(root, {"backout.toml": f'[prisma]\ncommand = "{fake}"\n'})
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    # git mode: the commit before the nickname migration; the datasource of the current file
    result = run(["rollback", "--yes", "--update-schema=git"], project=root, url=sqlite_url)
    assert result.exit_code == 0, result.output
    assert log.read_text() == (
        f"generate --schema prisma/schema.prisma | {sqlite_url} | {sqlite_url}\n"
    )
    assert f"`{fake} generate --schema prisma/schema.prisma` passed" in result.stdout


@pytest.mark.postgres
def test_the_password_reaches_the_cli_in_its_environment_only(tmp_path: Path, pg_url: str) -> None:
    """The URL's password is in the CLI's environment, never among its arguments, and masked
    where its output is shown (the server trusts local connections: any password works)."""
    secret = "s3cr3t-pw-4711"
    url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    root = project(tmp_path)
    args_log, env_log = tmp_path / "args.log", tmp_path / "env.log"
    fake = tmp_path / "fake-prisma"
    fake.write_text(
        f'#!/bin/sh\necho "$*" > {args_log}\necho "$DATABASE_URL" > {env_log}\n'
        'echo "Error: cannot reach $DATABASE_URL"\nexit 1\n'
    )
    fake.chmod(0o755)
    write(root, {"backout.toml": f'[prisma]\ncommand = "{fake}"\n'})
    assert run(["up"], project=root, url=url).exit_code == 0
    result = run(["rollback", "--yes", "--update-schema=git", "--json"], project=root, url=url)
    assert result.exit_code == 6, result.output
    assert columns(pg_url) == ["id", "email"]
    assert env_log.read_text().strip() == url  # the CLI got the real URL...
    assert secret not in args_log.read_text()  # ...not on its command line
    assert secret not in result.stdout + result.stderr
    assert "Error: cannot reach postgresql://postgres:***@" in result.stderr


def test_a_failing_cli_exits_with_the_documented_code(tmp_path: Path, sqlite_url: str) -> None:
    """Exit 6 (docs/exit-codes.md): the rollback stands, schema.prisma as said."""
    (code,) = [c for c, cell in documented_codes()["rollback"].items() if "--update-schema" in cell]
    root = project(tmp_path, provider="sqlite")
    fake = tmp_path / "failing-prisma"
    fake.write_text("#!/bin/sh\necho 'Error: something Prisma says' >&2\nexit 3\n")
    fake.chmod(0o755)
    write(root, {"backout.toml": f'[prisma]\ncommand = "{fake}"\n'})
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(["rollback", "--yes", "--update-schema=git"], project=root, url=sqlite_url)
    assert result.exit_code == code == 6, result.output
    assert columns(sqlite_url) == ["id", "email"]
    assert (root / "prisma" / "schema.prisma").read_text() == schema("sqlite", USER_V1)
    assert "Error: something Prisma says" in result.stdout
    assert f"`{fake} generate --schema prisma/schema.prisma` exited 3" in result.stderr
    assert "the Prisma Client was NOT generated" in result.stderr
    assert f"To do by hand: {fake} generate --schema prisma/schema.prisma" in result.stderr


# --- refusals: nothing happens -----------------------------------------------------------------


def _not_prisma(root: Path) -> None:
    write(root, {"backout.toml": 'layout = "plain"\nmigrations_dir = "sql"\n'})
    write(root, {"sql/001_a.up.sql": "SELECT 1;\n", "sql/001_a.down.sql": "SELECT 1;\n"})


def _no_schema(root: Path) -> None:
    (root / "prisma" / "schema.prisma").unlink()


def _literal_url(root: Path) -> None:
    path = root / "prisma" / "schema.prisma"
    path.write_text(path.read_text().replace('env("DATABASE_URL")', '"file:./other.db"'))


def _uncommitted(root: Path) -> None:
    git(root, "reset", "-q", "--soft", "HEAD~1")
    git(root, "reset", "-q")


def _first_commit(root: Path) -> None:
    git(root, "reset", "-q", "--soft", "HEAD~1")
    git(root, "commit", "--amend", "-qm", "init and nickname together, in the first commit")


def _together(root: Path) -> None:
    git(root, "update-ref", "-d", "HEAD")  # history gone; the files stay
    git(root, "rm", "-q", "-r", "--cached", ".")
    write(root, {"README.md": "app\n"})
    git(root, "add", "README.md")
    git(root, "commit", "-qm", "base")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init and nickname together")


REFUSALS = [
    ("not-prisma", _not_prisma, "pull", "--update-schema updates a Prisma schema, but"),
    ("no-schema", _no_schema, "git", "--update-schema: no schema.prisma beside"),
    ("pull-sqlite", None, "pull", "backout's own tables (backout_events, ...) share"),
    ("literal-url", _literal_url, "pull", "the datasource's url is a literal string"),
    ("not-committed", _uncommitted, "git", f"{NICK_ID}/migration.sql was never committed"),
    ("first-commit", _first_commit, "git", "was added by the first commit"),
    ("same-commit", _together, "git", "were added by the same commit"),
]


@pytest.mark.parametrize(
    ("change", "mode", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refused_before_anything_happens(
    tmp_path: Path, sqlite_url: str, change: object, mode: str, message: str
) -> None:
    root = project(tmp_path, provider="sqlite")
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    if callable(change):
        change(root)
    files = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}
    before = db_state(sqlite_url)
    result = run(["rollback", "--yes", f"--update-schema={mode}"], project=root, url=sqlite_url)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert db_state(sqlite_url) == before
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == files  # no backup written, schema.prisma untouched


def test_refused_outside_a_git_work_tree(tmp_path: Path, sqlite_url: str) -> None:
    root = project(tmp_path, provider="sqlite", commits=False)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    before = db_state(sqlite_url)
    result = run(["rollback", "--yes", "--update-schema=git"], project=root, url=sqlite_url)
    assert result.exit_code == 2, result.output
    assert "is not inside a git work tree" in result.stderr
    assert db_state(sqlite_url) == before
    assert not (root / ".backout").exists()


def test_never_touched_without_the_flag(tmp_path: Path, sqlite_url: str) -> None:
    root = project(tmp_path, provider="sqlite")
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    before = (root / "prisma" / "schema.prisma").read_bytes()
    result = run(["rollback", "--yes", "--json"], project=root, url=sqlite_url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["schema_update"] is None
    assert columns(sqlite_url) == ["id", "email"]
    assert (root / "prisma" / "schema.prisma").read_bytes() == before


def test_dry_run_shows_the_diff_and_changes_nothing(tmp_path: Path, sqlite_url: str) -> None:
    root = project(tmp_path, provider="sqlite")
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    before = (root / "prisma" / "schema.prisma").read_bytes()
    result = run(["rollback", "--dry-run", "--update-schema=git"], project=root, url=sqlite_url)
    assert result.exit_code == 0, result.output
    assert "-- --update-schema=git: after COMMIT, prisma/schema.prisma restored" in result.stdout
    assert "-  nickname String?" in result.stdout
    assert (root / "prisma" / "schema.prisma").read_bytes() == before
    assert "nickname" in columns(sqlite_url)


# --- which commit git mode restores from ------------------------------------------------------


NICK2_ID = "20250103000000_nickname2"
NICK2 = 'ALTER TABLE "User" ADD COLUMN "age" INTEGER;\n'
NICK2_DOWN = '-- backout:risk HIGH\nALTER TABLE "User" DROP COLUMN "age";\n'
USER_V3 = USER_V2.replace("String?\n}", "String?\n  age      Int?\n}")


def _schema_file(root: Path) -> Path:
    return root / "prisma" / "schema.prisma"


def test_a_renamed_migration_folder_is_followed_to_the_commit_that_added_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The migration's folder was renamed in a later commit: the schema is the one before the
    commit that first added the migration, not before the rename."""
    root = project(tmp_path, provider="sqlite")
    migrations = root / "prisma" / "migrations"
    git(root, "mv", f"prisma/migrations/{NICK_ID}", "prisma/migrations/20250102000000_nick")
    git(root, "commit", "-q", "--amend", "-m", "nickname, under its first name")
    git(root, "mv", "prisma/migrations/20250102000000_nick", f"prisma/migrations/{NICK_ID}")
    git(root, "commit", "-qm", "rename")
    assert (migrations / NICK_ID / "migration.sql").is_file()
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(["rollback", "--yes", "--update-schema=git"], project=root, url=sqlite_url)
    assert result.exit_code == 0, result.output
    assert columns(sqlite_url) == ["id", "email"]
    assert _schema_file(root).read_text() == schema("sqlite", USER_V1)


def _branch_history(root: Path) -> None:
    """init; a feature branch adds the nickname migration; meanwhile main adds an older-named
    one (age), then merges the feature: main's first-parent history is init, age, merge."""
    git(root, "branch", "-q", "-m", "main")
    git(root, "reset", "-q", "--hard", "HEAD~1")
    git(root, "checkout", "-q", "-b", "feature")
    write(
        root,
        {
            "prisma/schema.prisma": schema("sqlite", USER_V2),
            f"prisma/migrations/{NICK2_ID}/migration.sql": NICK,
            f"prisma/rollback/{NICK2_ID}_rollback.sql": NICK_DOWN,
        },
    )
    git(root, "add", "-A")
    git(root, "commit", "-qm", "feature: nickname")
    git(root, "checkout", "-q", "main")
    age = USER_V1.replace("String\n}", "String\n  age   Int?\n}")
    write(
        root,
        {
            "prisma/schema.prisma": schema("sqlite", age),
            f"prisma/migrations/{NICK_ID}/migration.sql": NICK2,
            f"prisma/rollback/{NICK_ID}_rollback.sql": NICK2_DOWN,
        },
    )
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main: age")
    subprocess.run(
        ["git", "-C", str(root), "merge", "-q", "--no-edit", "feature"],
        capture_output=True,
        check=False,  # schema.prisma conflicts: resolved below
    )
    write(root, {"prisma/schema.prisma": schema("sqlite", USER_V3.replace("  age", "  age   "))})
    git(root, "add", "-A")
    git(root, "commit", "-qm", "merge feature")


def test_a_migration_merged_from_a_branch_restores_the_schema_before_the_merge(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The nickname migration came from a branch whose parent lacks main's age migration: the
    schema before the merge (main's first parent) keeps age, which stays applied."""
    root = project(tmp_path, provider="sqlite")
    _branch_history(root)
    on_main = subprocess.run(
        ["git", "-C", str(root), "show", "HEAD^1:prisma/schema.prisma"],
        capture_output=True,
        check=True,
    ).stdout
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(
        ["rollback", "--yes", "--update-schema=git", "--json"], project=root, url=sqlite_url
    )
    assert result.exit_code == 0, result.output
    assert columns(sqlite_url) == ["id", "email", "age"]
    assert _schema_file(root).read_bytes() == on_main
    assert json.loads(result.stdout)["schema_update"]["commit"] == git(root, "rev-parse", "HEAD^1")


def test_several_migrations_committed_out_of_name_order(tmp_path: Path, sqlite_url: str) -> None:
    """Two migrations rolled back at once, the newer-named committed first: the schema is from
    before the first of their commits, which has neither."""
    root = project(tmp_path, provider="sqlite")
    git(root, "reset", "-q", "--soft", "HEAD~1")
    git(root, "reset", "-q")
    write(
        root,
        {
            f"prisma/migrations/{NICK2_ID}/migration.sql": NICK2,
            f"prisma/rollback/{NICK2_ID}_rollback.sql": NICK2_DOWN,
        },
    )
    with_age = USER_V1.replace("String\n}", "String\n  age   Int?\n}")
    write(root, {"prisma/schema.prisma": schema("sqlite", with_age)})
    git(root, "add", "prisma/schema.prisma", f"prisma/migrations/{NICK2_ID}")
    git(root, "add", f"prisma/rollback/{NICK2_ID}_rollback.sql")
    git(root, "commit", "-qm", "age (named later, committed first)")
    write(root, {"prisma/schema.prisma": schema("sqlite", USER_V3)})
    git(root, "add", "-A")
    git(root, "commit", "-qm", "nickname")
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(
        ["rollback", "--yes", "--steps", "2", "--update-schema=git"], project=root, url=sqlite_url
    )
    assert result.exit_code == 0, result.output
    assert columns(sqlite_url) == ["id", "email"]
    assert _schema_file(root).read_text() == schema("sqlite", USER_V1)


def test_a_shallow_clone_is_refused_with_the_true_reason(tmp_path: Path, sqlite_url: str) -> None:
    origin = project(tmp_path, provider="sqlite")
    root = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{origin}", str(root)],
        check=True,
        capture_output=True,
    )
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    before = db_state(sqlite_url)
    result = run(["rollback", "--yes", "--update-schema=git"], project=root, url=sqlite_url)
    assert result.exit_code == 2, result.output
    assert "shallow clone" in result.stderr and "first commit" not in result.stderr
    assert db_state(sqlite_url) == before


def test_windows_line_endings_stay_as_git_checks_files_out(tmp_path: Path, sqlite_url: str) -> None:
    """With eol=crlf (as core.autocrlf on Windows), the restored file has CRLF like the rest of
    the checkout, and the diff shows the one line that changed."""
    root = project(tmp_path, provider="sqlite")
    write(root, {".gitattributes": "*.prisma text eol=crlf\n"})
    git(root, "add", ".gitattributes")
    git(root, "commit", "-qm", "eol")
    _schema_file(root).unlink()
    git(root, "checkout", "--", "prisma/schema.prisma")
    assert b"\r\n" in _schema_file(root).read_bytes()
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(
        ["rollback", "--yes", "--update-schema=git", "--json"], project=root, url=sqlite_url
    )
    assert result.exit_code == 0, result.output
    expected = schema("sqlite", USER_V1).replace("\n", "\r\n").encode()
    assert _schema_file(root).read_bytes() == expected
    diff = json.loads(result.stdout)["schema_update"]["diff"]
    # the lines the LF checkout's diff changes, no more (each ending in CRLF, as the file)
    v2, v1 = (schema("sqlite", model).encode() for model in (USER_V2, USER_V1))
    assert diff.replace("\r\n", "\n") == unified_diff(v2, v1, "prisma/schema.prisma")
    assert "-  nickname String?\r\n" in diff


# --- uncommitted edits to schema.prisma ------------------------------------------------------

DRAFT = "\nmodel Draft {\n  id Int @id\n}\n"


def test_uncommitted_edits_are_kept_in_a_copy_and_said(tmp_path: Path, sqlite_url: str) -> None:
    """schema.prisma has edits git does not hold: restoring from git would lose them, so a copy
    is kept first, and the result says where."""
    root = project(tmp_path, provider="sqlite")
    edited = schema("sqlite", USER_V2) + DRAFT
    write(root, {"prisma/schema.prisma": edited})
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    dry = run(["rollback", "--dry-run", "--update-schema=git"], project=root, url=sqlite_url)
    assert "has changes git does not hold: a copy will be kept in .backout/" in dry.stdout
    assert not (root / ".backout" / "schema-update").exists()

    result = run(
        ["rollback", "--yes", "--update-schema=git", "--json"], project=root, url=sqlite_url
    )
    assert result.exit_code == 0, result.output
    assert _schema_file(root).read_text() == schema("sqlite", USER_V1)
    update = json.loads(result.stdout)["schema_update"]
    kept = update["kept_copy"]
    assert kept.startswith(".backout/schema-update/") and kept.endswith("schema.prisma")
    assert (root / kept).read_text() == edited
    assert f"your previous prisma/schema.prisma is kept in {kept}" in update["where_things_stand"]


def test_a_committed_schema_needs_no_copy(tmp_path: Path, sqlite_url: str) -> None:
    root = project(tmp_path, provider="sqlite")
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(
        ["rollback", "--yes", "--update-schema=git", "--json"], project=root, url=sqlite_url
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["schema_update"]["kept_copy"] is None
    assert not (root / ".backout" / "schema-update").exists()


@pytest.mark.postgres
def test_pull_outside_git_keeps_a_copy_of_what_it_rewrites(tmp_path: Path, pg_url: str) -> None:
    """No git work tree: nothing else holds the file prisma db pull rewrites."""
    root = project(tmp_path, commits=False)
    original = _schema_file(root).read_text()
    fake = tmp_path / "fake-prisma"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = db ]; then echo "// pulled" > prisma/schema.prisma; fi\n'
    )
    fake.chmod(0o755)
    write(root, {"backout.toml": f'[prisma]\ncommand = "{fake}"\n'})
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    result = run(["rollback", "--yes", "--update-schema=pull"], project=root, url=pg_url)
    assert result.exit_code == 0, result.output
    assert columns(pg_url) == ["id", "email"]
    assert _schema_file(root).read_text() == "// pulled\n"
    (kept,) = (root / ".backout" / "schema-update").iterdir()
    assert kept.read_text() == original
    assert f"is kept in .backout/schema-update/{kept.name}" in " ".join(result.stdout.split())


# --- a project in a subfolder of its repository ----------------------------------------------


def test_a_project_below_the_top_of_its_repository(tmp_path: Path, sqlite_url: str) -> None:
    root = project(tmp_path / "mono", provider="sqlite", top=tmp_path / "mono")
    assert (tmp_path / "mono" / ".git").is_dir() and not (root / ".git").exists()
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(
        ["rollback", "--yes", "--update-schema=git", "--json"], project=root, url=sqlite_url
    )
    assert result.exit_code == 0, result.output
    assert _schema_file(root).read_text() == schema("sqlite", USER_V1)
    assert json.loads(result.stdout)["schema_update"]["kept_copy"] is None


def test_without_git_the_printed_step_works_from_a_subfolder(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The printed `git show <commit>^:<path>` names the file relative to where it is run (the
    project folder): a bare path would be read from the top of the repository."""
    root = project(tmp_path / "mono", provider="sqlite", top=tmp_path / "mono")
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    empty = tmp_path / "empty-path"
    empty.mkdir()
    result = run(
        ["rollback", "--yes", "--update-schema=git", "--json"],
        project=root,
        url=sqlite_url,
        env={"PATH": str(empty)},
    )
    assert result.exit_code == 0, result.output
    step = json.loads(result.stdout)["schema_update"]["manual"][0]
    command = step.split("  (")[0].replace("<commit>", git(root, "rev-parse", "HEAD"))
    done = subprocess.run(command, shell=True, cwd=root, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert _schema_file(root).read_text() == schema("sqlite", USER_V1)


# --- a schema file named by package.json or prisma.config.ts ---------------------------------

DECLARED = {
    "package.json": '{"name": "app", "prisma": {"schema": "prisma/app.prisma"}}\n',
    "prisma.config.ts": (
        'import { defineConfig } from "prisma/config";\n'
        "export default defineConfig({\n  schema: 'prisma/app.prisma',\n});\n"
    ),
}


@pytest.mark.parametrize("declared_in", sorted(DECLARED))
def test_the_schema_file_prisma_is_configured_with(
    tmp_path: Path, sqlite_url: str, declared_in: str
) -> None:
    """The file Prisma uses (package.json's prisma.schema, prisma.config.ts's schema) is the
    one updated and generated from, not a stray schema.prisma beside it."""
    root = project(tmp_path, provider="sqlite", schema_name="app.prisma")
    write(root, {declared_in: DECLARED[declared_in]})
    stray = "// an old copy nobody uses\n"
    write(root, {"prisma/schema.prisma": stray})
    log = tmp_path / "calls.log"
    fake = tmp_path / "fake-prisma"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    fake.chmod(0o755)
    write(root, {"backout.toml": f'[prisma]\ncommand = "{fake}"\n'})
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(["rollback", "--yes", "--update-schema=git"], project=root, url=sqlite_url)
    assert result.exit_code == 0, result.output
    assert (root / "prisma" / "app.prisma").read_text() == schema("sqlite", USER_V1)
    assert _schema_file(root).read_text() == stray
    assert log.read_text() == "generate --schema prisma/app.prisma\n"


def test_a_declared_schema_that_does_not_exist_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    root = project(tmp_path, provider="sqlite")
    write(root, {"package.json": '{"prisma": {"schema": "db/missing.prisma"}}\n'})
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    before = db_state(sqlite_url)
    result = run(["rollback", "--yes", "--update-schema=git"], project=root, url=sqlite_url)
    assert result.exit_code == 2, result.output
    assert "package.json: prisma.schema names db/missing.prisma, which does not exist" in (
        result.stderr
    )
    assert db_state(sqlite_url) == before


def test_a_hanging_cli_is_stopped_at_the_timeout(tmp_path: Path, sqlite_url: str) -> None:
    """A CLI that never ends (and a child of it) is killed after hooks.timeout: exit 6, the
    rollback committed, the message says it timed out."""
    root = project(tmp_path, provider="sqlite")
    fake = tmp_path / "hanging-prisma"
    fake.write_text("#!/bin/sh\nsleep 120 &\nsleep 120\n")
    fake.chmod(0o755)
    write(root, {"backout.toml": f'[prisma]\ncommand = "{fake}"\n[hooks]\ntimeout = "1s"\n'})
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    started = time.monotonic()
    result = run(["rollback", "--yes", "--update-schema=git"], project=root, url=sqlite_url)
    assert time.monotonic() - started < 30
    assert result.exit_code == 6, result.output
    assert columns(sqlite_url) == ["id", "email"]
    assert f"`{fake} generate --schema prisma/schema.prisma` timed out after 1s" in result.stderr
    assert _schema_file(root).read_text() == schema("sqlite", USER_V1)


def test_a_repository_git_cannot_read_is_not_called_no_repository(
    tmp_path: Path, sqlite_url: str
) -> None:
    """git fails for a reason of its own (here a broken global configuration; in a container,
    often "dubious ownership"): git's reason is shown, not "not inside a git work tree"."""
    root = project(tmp_path, provider="sqlite")
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    broken = tmp_path / "gitconfig"
    broken.write_text("[core\n")
    before = db_state(sqlite_url)
    result = run(
        ["rollback", "--yes", "--update-schema=git"],
        project=root,
        url=sqlite_url,
        env={"GIT_CONFIG_GLOBAL": str(broken)},
    )
    assert result.exit_code == 2, result.output
    assert "not inside a git work tree" not in result.stderr
    assert "git cannot read the repository" in result.stderr and "bad config" in result.stderr
    assert db_state(sqlite_url) == before


def test_a_configured_schema_folder_with_one_file(tmp_path: Path, sqlite_url: str) -> None:
    """prisma.config.ts's ``schema: "prisma/"`` (Prisma's own example): one .prisma file in
    it is the schema."""
    root = project(tmp_path, provider="sqlite")
    write(root, {"prisma.config.ts": 'export default defineConfig({\n  schema: "prisma/",\n});\n'})
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(["rollback", "--yes", "--update-schema=git"], project=root, url=sqlite_url)
    assert result.exit_code == 0, result.output
    assert _schema_file(root).read_text() == schema("sqlite", USER_V1)
    write(root, {"prisma/models/post.prisma": "model Post {\n  id Int @id\n}\n"})
    result = run(["rollback", "--dry-run", "--update-schema=git"], project=root, url=sqlite_url)
    assert result.exit_code == 2, result.output
    assert "prisma.config.ts: schema names the folder prisma/ (a multi-file schema)" in (
        result.stderr
    )
