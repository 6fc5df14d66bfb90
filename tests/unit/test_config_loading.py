"""Configuration: precedence (DESIGN §5), validation naming the file, durations."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backout.model.errors import ConfigError
from backout.project.config import DEFAULT_URL, Config, load_config, parse_duration

TOML_URL = "postgresql://toml@h/db"
DOTENV_URL = "postgresql://dotenv@h/db"
ENV_URL = "postgresql://environment@h/db"
FLAG_URL = "postgresql://flag@h/db"


def write(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


BAD_DURATION = "expected a duration such as '2s' or '500ms', got"


def config_error(root: Path, **kwargs: object) -> str:
    kwargs.setdefault("environ", {})
    with pytest.raises(ConfigError) as info:
        load_config(root, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def test_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert config == Config(root=tmp_path.resolve())
    assert (config.database_url, config.url_source, config.config_file) == (
        DEFAULT_URL,
        "default",
        None,
    )
    assert (config.lock_timeout, config.lock_retries, config.statement_timeout) == (2.0, 5, 0.0)
    assert (config.hook_timeout, dict(config.hooks), config.history_schema) == (
        300.0,
        {},
        "backout",
    )
    assert config.url.path == tmp_path.resolve() / "backout.db"
    assert config.backups == tmp_path.resolve() / ".backout" / "backups"
    assert config.shadow is None


def test_root_defaults_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(environ={}).root == tmp_path.resolve()


# --- precedence: defaults < file < .env < environment < flag --------------------------------------

LEVELS = [
    ("backout.toml", TOML_URL),
    (".env", DOTENV_URL),
    ("environment", ENV_URL),
    ("flag", FLAG_URL),
]


@pytest.mark.parametrize("present", range(16))
def test_url_precedence_for_every_combination(tmp_path: Path, present: int) -> None:
    given_levels = [level for bit, level in enumerate(LEVELS) if present & (1 << bit)]
    names = {name for name, _ in given_levels}
    if "backout.toml" in names:
        write(tmp_path, {"backout.toml": f'database_url = "{TOML_URL}"\n'})
    if ".env" in names:
        write(tmp_path, {".env": f"OTHER=1\nDATABASE_URL={DOTENV_URL}\n"})
    environ = {"DATABASE_URL": ENV_URL} if "environment" in names else {"HOME": "/x"}
    flag = FLAG_URL if "flag" in names else None
    config = load_config(tmp_path, environ=environ, url=flag)
    expected_source, expected_url = given_levels[-1] if given_levels else ("default", DEFAULT_URL)
    assert (config.url_source, config.database_url) == (expected_source, expected_url)


def test_pyproject_tool_section(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": (
                '[project]\nname = "x"\n\n[tool.backout]\n'
                f'database_url = "{TOML_URL}"\nlock_timeout = "5s"\n'
            )
        },
    )
    config = load_config(tmp_path, environ={})
    assert (config.database_url, config.url_source, config.lock_timeout) == (
        TOML_URL,
        "pyproject.toml",
        5.0,
    )
    assert config.config_file == tmp_path.resolve() / "pyproject.toml"


def test_pyproject_without_tool_backout_is_not_a_config_file(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[tool.ruff]\nline-length = 100\n"})
    config = load_config(tmp_path, environ={})
    assert (config.config_file, config.url_source) == (None, "default")


def test_backout_toml_wins_over_pyproject(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "backout.toml": 'database_url = "sqlite:///a.db"\n',
            "pyproject.toml": '[tool.backout]\ndatabase_url = "sqlite:///b.db"\n',
        },
    )
    config = load_config(tmp_path, environ={})
    assert (config.database_url, config.url_source) == ("sqlite:///a.db", "backout.toml")


def test_explicit_config_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "backout.toml": 'database_url = "sqlite:///ignored.db"\n',
            "conf/ci.toml": 'database_url = "sqlite:///ci.db"\nlock_retries = 0\n',
            "conf/pyproject.toml": '[tool.backout]\ndatabase_url = "sqlite:///py.db"\n',
        },
    )
    ci = load_config(tmp_path, config_file=tmp_path / "conf" / "ci.toml", environ={})
    assert (ci.database_url, ci.url_source, ci.lock_retries) == ("sqlite:///ci.db", "ci.toml", 0)
    py = load_config(tmp_path, config_file=tmp_path / "conf" / "pyproject.toml", environ={})
    assert (py.database_url, py.url_source) == ("sqlite:///py.db", "pyproject.toml")
    missing = tmp_path / "conf" / "nope.toml"
    assert config_error(tmp_path, config_file=missing) == f"{missing}: configuration file not found"


def test_prisma_dotenv(tmp_path: Path) -> None:
    write(tmp_path, {"prisma/.env": f'DATABASE_URL="{DOTENV_URL}"\n'})
    config = load_config(tmp_path, environ={})
    assert (config.database_url, config.url_source) == (DOTENV_URL, "prisma/.env")
    write(tmp_path, {".env": "DATABASE_URL=sqlite:///root.db\n"})
    assert load_config(tmp_path, environ={}).url_source == ".env"


def test_empty_values_do_not_count(tmp_path: Path) -> None:
    write(tmp_path, {".env": "DATABASE_URL=\n", "backout.toml": f'database_url = "{TOML_URL}"\n'})
    config = load_config(tmp_path, environ={"DATABASE_URL": ""}, url="")
    assert (config.database_url, config.url_source) == (TOML_URL, "backout.toml")


def test_flags_override_file_settings(tmp_path: Path) -> None:
    write(tmp_path, {"backout.toml": 'lock_timeout = "5s"\nlock_retries = 3\nlayout = "plain"\n'})
    config = load_config(
        tmp_path, environ={}, lock_timeout="250ms", lock_retries=None, layout="dbmate"
    )
    assert (config.lock_timeout, config.lock_retries, config.layout) == (0.25, 3, "dbmate")


def test_unknown_flag(tmp_path: Path) -> None:
    assert config_error(tmp_path, colour="red") == "unknown setting 'colour'"


def test_flag_duration_errors_name_the_flag(tmp_path: Path) -> None:
    assert config_error(tmp_path, lock_timeout="soon") == (
        "--lock-timeout: expected a duration such as '2s' or '500ms', got 'soon'"
    )


def test_with_overrides(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert config.with_overrides(lock_retries=9).lock_retries == 9
    assert config.lock_retries == 5


# --- settings from the file -----------------------------------------------------------------------


def test_every_setting(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "backout.toml": """
layout = "prisma"
migrations_dir = "db/prisma/migrations"
rollback_dir = "db/rollbacks"
database_url = "postgresql://app@h/db"
shadow_url = "postgresql://app@h/shadow"
backup_dir = "../backups"
lock_timeout = 3
lock_retries = 7
statement_timeout = "1m"
history_schema = "ops"

[hooks]
stop_app = "systemctl stop app"
before_rollback = "echo before"
after_rollback = "npx prisma generate"
deploy_previous = "deploy --previous"
smoke = "curl -f localhost/health"
timeout = "90s"
"""
        },
    )
    root = tmp_path.resolve()
    config = load_config(tmp_path, environ={})
    assert config.layout == "prisma"
    assert config.migrations_dir == root / "db" / "prisma" / "migrations"
    assert config.rollback_dir == root / "db" / "rollbacks"
    assert config.backup_dir == root.parent / "backups"
    assert config.backups == root.parent / "backups"
    assert (config.lock_timeout, config.lock_retries, config.statement_timeout) == (3.0, 7, 60.0)
    assert config.history_schema == "ops"
    assert config.shadow is not None and config.shadow.database == "shadow"
    assert dict(config.hooks) == {
        "stop_app": "systemctl stop app",
        "before_rollback": "echo before",
        "after_rollback": "npx prisma generate",
        "deploy_previous": "deploy --previous",
        "smoke": "curl -f localhost/health",
    }
    assert config.hook_timeout == 90.0


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            'layot = "plain"\n',
            "unknown setting(s): layot (known: backup_dir, database_url, direct_url, "
            "history_schema, hooks, layout, lock_retries, lock_timeout, lock_wait, "
            "migrations_dir, migrations_table, prisma, rollback_dir, scratch_prefix, shadow_url, "
            "statement_timeout)",
        ),
        (
            "[hooks]\nafter = 'x'\nsmoek = 'y'\n",
            "unknown hook(s): after, smoek "
            "(known: stop_app, before_rollback, after_rollback, deploy_previous, smoke)",
        ),
        ("hooks = 'x'\n", "[hooks] must be a table"),
        ("[hooks]\nsmoke = ['curl', 'x']\n", "hooks.smoke must be a shell command (a string)"),
        ("[hooks]\ntimeout = 'later'\n", f"hooks.timeout: {BAD_DURATION} 'later'"),
        ("migrations_dir = ''\n", "migrations_dir must be a non-empty string"),
        ("rollback_dir = 5\n", "rollback_dir must be a non-empty string"),
        ("layout = 3\n", "layout must be a string"),
        (
            "layout = 'liquibase'\n",
            "unknown layout 'liquibase' (known: prisma, plain, dbmate, flyway)",
        ),
        ("database_url = 5\n", "database_url must be a string"),
        ("shadow_url = false\n", "shadow_url must be a string"),
        ("lock_retries = -1\n", "lock_retries must be a non-negative integer"),
        ("lock_retries = true\n", "lock_retries must be a non-negative integer"),
        ("lock_retries = 1.5\n", "lock_retries must be a non-negative integer"),
        ("lock_timeout = 'fast'\n", f"lock_timeout: {BAD_DURATION} 'fast'"),
        ("statement_timeout = -1\n", "statement_timeout: must not be negative"),
        ("lock_timeout = nan\n", f"lock_timeout: {BAD_DURATION} nan"),
        ("lock_timeout = inf\n", f"lock_timeout: {BAD_DURATION} inf"),
    ],
)  # fmt: skip
def test_file_errors_name_the_file(tmp_path: Path, toml: str, message: str) -> None:
    write(tmp_path, {"backout.toml": toml})
    assert config_error(tmp_path) == f"{tmp_path.resolve() / 'backout.toml'}: {message}"


def test_pyproject_errors_name_pyproject(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[tool.backout]\nlayot = 'x'\n"})
    path = tmp_path.resolve() / "pyproject.toml"
    assert config_error(tmp_path).startswith(f"{path}: unknown setting(s): layot")
    write(tmp_path, {"pyproject.toml": "[tool]\nbackout = 3\n"})
    assert config_error(tmp_path) == f"{path}: [tool.backout] must be a table"


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"backout.toml": 'layout = "plain\n'})
    message = config_error(tmp_path)
    assert message.startswith(f"{tmp_path.resolve() / 'backout.toml'}: invalid TOML: ")
    assert "line 1" in message


def test_non_utf8_toml_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"backout.toml": b"layout = '\xff'\n"})
    assert config_error(tmp_path) == f"{tmp_path.resolve() / 'backout.toml'}: not valid UTF-8"


@pytest.mark.parametrize(
    ("files", "environ", "flag", "origin"),
    [
        ({"backout.toml": 'database_url = "redis://h"\n'}, {}, None, "{root}/backout.toml"),
        ({".env": "DATABASE_URL=redis://h\n"}, {}, None, "DATABASE_URL in {root}/.env"),
        ({}, {"DATABASE_URL": "redis://h"}, None, "the DATABASE_URL environment variable"),
        ({}, {}, "redis://h", "--url"),
    ],
)
def test_bad_url_errors_say_where_the_url_came_from(
    tmp_path: Path, files: dict[str, str], environ: dict[str, str], flag: str | None, origin: str
) -> None:
    write(tmp_path, files)
    message = config_error(tmp_path, environ=environ, url=flag)
    assert message == (
        "unsupported database URL 'redis://h': expected one of file:, mariadb://, mysql://, "
        f"postgres://, postgresql://, sqlite:// (from {origin.format(root=tmp_path.resolve())})"
    )


def test_bad_shadow_url_names_its_origin(tmp_path: Path) -> None:
    write(tmp_path, {"backout.toml": 'shadow_url = "sqlite://x"\n'})
    path = tmp_path.resolve() / "backout.toml"
    assert config_error(tmp_path).endswith(f"(from shadow_url in {path})")
    assert config_error(tmp_path, shadow_url="nope").endswith("(from --shadow-url)")


def test_bad_url_never_shows_its_password(tmp_path: Path) -> None:
    message = config_error(tmp_path, url="redis://u:hunter2@h")
    assert "hunter2" not in message
    assert "redis://u:***@h" in message


# --- SQLite paths are resolved against the project ------------------------------------------------


def test_sqlite_relative_to_the_project_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(tmp_path)
    config = load_config(project, environ={}, url="sqlite:///data/app.db")
    assert config.url.path == project.resolve() / "data" / "app.db"


def test_prisma_file_url_is_relative_to_the_schema_folder(tmp_path: Path) -> None:
    write(tmp_path, {"prisma/schema.prisma": "// schema\n"})
    root = tmp_path.resolve()
    config = load_config(tmp_path, environ={"DATABASE_URL": "file:./dev.db"})
    assert config.url.path == root / "prisma" / "dev.db"
    # a sqlite:/// URL is still relative to the project root
    assert load_config(tmp_path, environ={}, url="sqlite:///dev.db").url.path == root / "dev.db"
    shadow = load_config(tmp_path, environ={}, shadow_url="file:./shadow.db").shadow
    assert shadow is not None and shadow.path == root / "prisma" / "shadow.db"


def test_file_url_without_a_prisma_schema_is_relative_to_the_root(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={"DATABASE_URL": "file:./dev.db"})
    assert config.url.path == tmp_path.resolve() / "dev.db"


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2s", 2.0),
        ("500ms", 0.5),
        ("1m", 60.0),
        ("2min", 120.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        (" 3 s ", 3.0),
        ("10", 10.0),
        ("0", 0.0),
        (3, 3.0),
        (0.25, 0.25),
        (0, 0.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value, "x") == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2 sec", "x: expected a duration such as '2s' or '500ms', got '2 sec'"),
        ("fast", "x: expected a duration such as '2s' or '500ms', got 'fast'"),
        ("", "x: expected a duration such as '2s' or '500ms', got ''"),
        ("-1s", "x: expected a duration such as '2s' or '500ms', got '-1s'"),
        ("1e3", "x: expected a duration such as '2s' or '500ms', got '1e3'"),
        (True, "x: expected a duration such as '2s' or '500ms', got True"),
        (None, "x: expected a duration such as '2s' or '500ms', got None"),
        (math.nan, "x: expected a duration such as '2s' or '500ms', got nan"),
        (math.inf, "x: expected a duration such as '2s' or '500ms', got inf"),
        (-1, "x: must not be negative"),
        (-0.5, "x: must not be negative"),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, "x")
    assert str(info.value) == message


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["ms", "s", "m", "min", "h", ""]))
def test_property_duration_units(n: int, unit: str) -> None:
    factor = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "": 1.0}[unit]
    assert parse_duration(f"{n}{unit}", "x") == pytest.approx(n * factor)


def test_lock_wait_and_scratch_prefix_from_backout_toml(tmp_path: Path) -> None:
    """Issue 12: ``lock_wait`` (a duration) and ``scratch_prefix`` (a safe name start)."""
    from backout.project.config import load_config

    (tmp_path / "backout.toml").write_text('lock_wait = "750ms"\nscratch_prefix = "team_a_"\n')
    config = load_config(tmp_path)
    assert (config.lock_wait, config.scratch_prefix) == (0.75, "team_a_")
    assert load_config(tmp_path, lock_wait="0").lock_wait == 0.0
    (tmp_path / "backout.toml").write_text('scratch_prefix = "Team-A"\n')
    with pytest.raises(ConfigError, match="scratch_prefix must be 1-24 characters"):
        load_config(tmp_path)
