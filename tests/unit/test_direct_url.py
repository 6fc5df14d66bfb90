"""Issue 16: Prisma's ``directUrl`` (and backout.toml's ``direct_url``) as the URL backout
connects with, parsed from schema.prisma the way Prisma reads it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backout.model.errors import ConfigError
from backout.project.config import load_config
from backout.project.prisma_schema import parse_datasource, strip_comments

POOLED = "postgresql://app:secret@pooler:6432/db?pgbouncer=true"
DIRECT = "postgresql://app:secret@db:5432/db"

SCHEMA = """\
// datasource db { directUrl = "postgresql://commented@out/db" }
generator client {
  provider = "prisma-client-js"
}

/// the database
datasource db {
  provider  = "postgresql" // comment after a value
  url       = env("DATABASE_URL")
  // directUrl = env("OLD_DIRECT_URL")
  directUrl = env("DIRECT_URL") // Prisma Migrate connects here
}

model User {
  id Int @id // directUrl = env("NOT_THIS")
}
"""


def project(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "prisma" / "migrations").mkdir(parents=True, exist_ok=True)
    return root


def test_env_direct_url_is_read_past_comments() -> None:
    datasource = parse_datasource(SCHEMA, "prisma/schema.prisma")
    assert datasource is not None and datasource.direct_url is not None
    field = datasource.direct_url
    assert (field.env, field.literal, field.line) == ("DIRECT_URL", None, 11)
    assert field.where == "prisma/schema.prisma:11"


def test_literal_direct_url_keeps_its_double_slash() -> None:
    text = (
        'datasource db {\n  provider = "postgresql"\n'
        '  directUrl = "postgresql://u@h:5432/d" // x\n}\n'
    )
    datasource = parse_datasource(text, "schema.prisma")
    assert datasource is not None and datasource.direct_url is not None
    assert datasource.direct_url.literal == "postgresql://u@h:5432/d"
    assert datasource.direct_url.env is None


def test_no_datasource_or_no_direct_url() -> None:
    assert parse_datasource("model A { id Int @id }\n", "s.prisma") is None
    text = 'datasource db {\n  provider = "postgresql"\n  url = env("DATABASE_URL")\n}\n'
    datasource = parse_datasource(text, "s.prisma")
    assert datasource is not None and datasource.direct_url is None


def test_strip_comments_keeps_strings_and_lines() -> None:
    text = 'a = "x // y" // gone\n// all gone\nb = "q\\"//" // c'
    assert strip_comments(text) == 'a = "x // y" \n\nb = "q\\"//" '


def test_bad_direct_url_value_names_file_and_line() -> None:
    text = 'datasource db {\n  provider = "postgresql"\n  directUrl = DIRECT_URL\n}\n'
    with pytest.raises(
        ConfigError, match=r'^s\.prisma:3: directUrl must be a string or env\("NAME"\)'
    ):
        parse_datasource(text, "s.prisma")


def test_direct_url_beats_database_url(tmp_path: Path) -> None:
    root = project(tmp_path, {"prisma/schema.prisma": SCHEMA})
    config = load_config(root, environ={"DATABASE_URL": POOLED, "DIRECT_URL": DIRECT})
    assert config.database_url == DIRECT
    assert config.url_source == "directUrl in prisma/schema.prisma"
    assert config.url_is_direct


def test_direct_url_variable_from_dotenv(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {"prisma/schema.prisma": SCHEMA, "prisma/.env": f'DIRECT_URL="{DIRECT}"\n'},
    )
    config = load_config(root, environ={"DATABASE_URL": POOLED})
    assert config.database_url == DIRECT


def test_environment_beats_dotenv_for_the_variable(tmp_path: Path) -> None:
    root = project(
        tmp_path, {"prisma/schema.prisma": SCHEMA, ".env": 'DIRECT_URL="postgresql://old@h/db"\n'}
    )
    config = load_config(root, environ={"DIRECT_URL": DIRECT})
    assert config.database_url == DIRECT


def test_flag_beats_direct_url_and_needs_no_variable(tmp_path: Path) -> None:
    root = project(tmp_path, {"prisma/schema.prisma": SCHEMA})
    config = load_config(root, environ={}, url="postgresql://flag@h/db")
    assert (config.database_url, config.url_source) == ("postgresql://flag@h/db", "flag")
    assert not config.url_is_direct


def test_missing_variable_is_one_line_naming_schema_and_variable(tmp_path: Path) -> None:
    root = project(tmp_path, {"prisma/schema.prisma": SCHEMA})
    with pytest.raises(ConfigError) as info:
        load_config(root, environ={"DATABASE_URL": POOLED})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith('prisma/schema.prisma:11: directUrl = env("DIRECT_URL"): ')
    assert "DIRECT_URL is not set" in message


def test_empty_variable_is_an_error(tmp_path: Path) -> None:
    root = project(tmp_path, {"prisma/schema.prisma": SCHEMA})
    with pytest.raises(ConfigError, match="environment variable DIRECT_URL is empty"):
        load_config(root, environ={"DIRECT_URL": " "})


def test_commands_that_never_connect_do_not_need_it(tmp_path: Path) -> None:
    root = project(tmp_path, {"prisma/schema.prisma": SCHEMA})
    config = load_config(root, environ={}, validate_url=False)
    assert not config.url_is_direct


def test_literal_direct_url(tmp_path: Path) -> None:
    schema = f'datasource db {{\n  provider = "postgresql"\n  directUrl = "{DIRECT}"\n}}\n'
    root = project(tmp_path, {"prisma/schema.prisma": schema})
    config = load_config(root, environ={"DATABASE_URL": POOLED})
    assert config.database_url == DIRECT


def test_multi_file_schema_folder(tmp_path: Path) -> None:
    root = project(tmp_path, {"prisma/schema/db.prisma": SCHEMA})
    config = load_config(root, environ={"DIRECT_URL": DIRECT})
    assert config.url_source == "directUrl in prisma/schema/db.prisma"


def test_toml_direct_url_beats_schema(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "prisma/schema.prisma": SCHEMA,
            "backout.toml": "direct_url = 'env(\"BACKOUT_DIRECT\")'\n",
        },
    )
    config = load_config(
        root, environ={"DIRECT_URL": "postgresql://x@h/db", "BACKOUT_DIRECT": DIRECT}
    )
    assert (config.database_url, config.url_source) == (DIRECT, "direct_url in backout.toml")


def test_toml_direct_url_literal_for_any_layout(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "backout.toml").write_text(f'layout = "plain"\ndirect_url = "{DIRECT}"\n')
    config = load_config(tmp_path, environ={"DATABASE_URL": POOLED})
    assert config.database_url == DIRECT and config.url_is_direct


def test_other_layout_ignores_schema_prisma(tmp_path: Path) -> None:
    root = project(tmp_path, {"prisma/schema.prisma": SCHEMA, "backout.toml": 'layout = "plain"\n'})
    config = load_config(root, environ={"DATABASE_URL": POOLED})
    assert config.database_url == POOLED


def test_optional_direct_url_is_passed_over_when_its_variable_is_unset(tmp_path: Path) -> None:
    """lint (which can do without the database) falls back instead of refusing."""
    root = project(tmp_path, {"prisma/schema.prisma": SCHEMA})
    config = load_config(root, environ={}, direct_url_optional=True)
    assert (config.url_source, config.url_is_direct) == ("default", False)


def test_optional_direct_url_is_passed_over_when_its_variable_is_empty(tmp_path: Path) -> None:
    """A CI job without secrets has the variable set but empty (GitHub Actions' ``${{
    secrets.DIRECT_URL }}`` on a fork's pull request): lint passes over it as over an unset
    one, and a command that connects still refuses it."""
    root = project(tmp_path, {"prisma/schema.prisma": SCHEMA})
    config = load_config(root, environ={"DIRECT_URL": ""}, direct_url_optional=True)
    assert (config.url_source, config.url_is_direct) == ("default", False)
    with pytest.raises(ConfigError, match="environment variable DIRECT_URL is empty"):
        load_config(root, environ={"DIRECT_URL": ""})


def test_lint_runs_offline_without_the_variable(tmp_path: Path) -> None:
    from tests.helpers import run

    root = project(
        tmp_path,
        {
            "prisma/schema.prisma": SCHEMA,
            "prisma/migrations/20240101000000_a/migration.sql": "CREATE TABLE a (id int);\n",
            "prisma/rollback/20240101000000_a_rollback.sql": (
                "-- backout:risk HIGH\nDROP TABLE a;\n"
            ),
        },
    )
    assert run(["lint"], project=root).exit_code == 0
    refused = run(["lint", "--check-database"], project=root)
    assert refused.exit_code == 2 and "DIRECT_URL is not set" in refused.output


@given(
    st.lists(
        st.tuples(
            st.text(alphabet='ab =(){}"\\:/', max_size=20),
            st.text(alphabet='xyz /"', max_size=10),
        ),
        max_size=8,
    )
)
def test_strip_comments_only_cuts_at_a_comment_outside_strings(
    lines: list[tuple[str, str]],
) -> None:
    """Lines are kept (numbers stay right); a line without "//" is unchanged; what is cut
    starts with a "//"."""
    text = "\n".join(f'{code} "{literal}"' for code, literal in lines)
    stripped = strip_comments(text).split("\n")
    assert len(stripped) == len(text.split("\n"))
    for before, after in zip(text.split("\n"), stripped, strict=True):
        assert before.startswith(after)
        if "//" not in before:
            assert after == before
        elif after != before:
            assert before[len(after) :].startswith("//")


def test_schema_beside_a_configured_migrations_folder(tmp_path: Path) -> None:
    """A monorepo: the schema sits beside migrations_dir, as the layout reads its provider."""
    root = project(
        tmp_path,
        {
            "apps/api/prisma/schema.prisma": SCHEMA,
            "backout.toml": 'migrations_dir = "apps/api/prisma/migrations"\n',
        },
    )
    (root / "apps/api/prisma/migrations").mkdir()
    config = load_config(root, environ={"DIRECT_URL": DIRECT})
    assert config.url_source == "directUrl in apps/api/prisma/schema.prisma"


def test_a_bad_direct_url_names_where_it_came_from(tmp_path: Path) -> None:
    root = project(tmp_path, {"prisma/schema.prisma": SCHEMA})
    with pytest.raises(ConfigError) as info:
        load_config(root, environ={"DIRECT_URL": "oracle://u:pw@h/db"})
    message = str(info.value)
    assert message.startswith("unsupported database URL 'oracle://u:***@h/db'")
    assert message.endswith('(from directUrl = env("DIRECT_URL") in prisma/schema.prisma:11)')


def test_a_brace_inside_a_string_does_not_end_the_datasource() -> None:
    """A generated password may hold ``}``: the block goes on past it (else directUrl, after
    it, would be missed and backout would quietly connect with DATABASE_URL, the pooler)."""
    text = (
        "datasource db {\n"
        '  url       = "postgresql://app:p}w@pooler:6432/db"\n'
        '  directUrl = env("DIRECT_URL")\n'
        "}\n"
    )
    datasource = parse_datasource(text, "prisma/schema.prisma")
    assert datasource is not None and datasource.direct_url is not None
    assert (datasource.direct_url.env, datasource.direct_url.line) == ("DIRECT_URL", 3)


def test_env_with_a_space_before_its_parenthesis() -> None:
    """Prisma's grammar allows whitespace between a function's name and its arguments."""
    datasource = parse_datasource('datasource db {\n  directUrl = env ("D")\n}\n', "s.prisma")
    assert datasource is not None and datasource.direct_url is not None
    assert datasource.direct_url.env == "D"


def test_an_unquoted_value_is_refused_without_showing_it() -> None:
    """Whatever was written may be a URL with a password: the message does not repeat it."""
    with pytest.raises(ConfigError) as caught:
        parse_datasource("datasource db {\n  directUrl = postgres:hunter2@db\n}\n", "s.prisma")
    assert "s.prisma:2" in caught.value.message
    assert "hunter2" not in str(caught.value)


def test_an_unterminated_string_is_still_reported() -> None:
    with pytest.raises(ConfigError, match=r"s\.prisma:2: directUrl: unterminated string"):
        parse_datasource('datasource db {\n  directUrl = "postgres://x\n}\n', "s.prisma")


def test_multi_file_schema_with_the_datasource_in_a_subfolder(tmp_path: Path) -> None:
    """Prisma 6.7's multi-file layout reads every .prisma file under the schema folder, at any
    depth: prisma/schema.prisma (the generator) beside prisma/models/*.prisma."""
    generator = 'generator client {\n  provider = "prisma-client-js"\n}\n'
    root = project(
        tmp_path,
        {"prisma/schema.prisma": generator, "prisma/models/db/datasource.prisma": SCHEMA},
    )
    config = load_config(root, environ={"DIRECT_URL": DIRECT, "DATABASE_URL": POOLED})
    assert config.url_source == "directUrl in prisma/models/db/datasource.prisma"
    assert config.database_url == DIRECT
