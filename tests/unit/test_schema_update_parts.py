"""The parts of ``rollback --update-schema`` that need no database: the datasource's env
variables, the diff, the atomic write, the ``[prisma]`` settings, finding the Prisma CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from backout.model.errors import ConfigError
from backout.model.urls import parse_url
from backout.project.config import load_config
from backout.project.prisma_schema import datasource_of
from backout.rollback.schema_update import unified_diff, write_atomically
from backout.run.prisma_cli import PrismaCLI, cli_environment, find_prisma_cli, run_cli


def test_the_datasource_names_its_variables() -> None:
    text = """
    // datasource old { url = env("NOT_THIS") }
    generator client { provider = "prisma-client-js" }
    datasource db {
      provider  = "postgresql"
      url       = env("POSTGRES_PRISMA_URL") // pooled
      directUrl = env( "POSTGRES_URL_NON_POOLING" )
    }
    """
    found = datasource_of(text, "schema.prisma")
    assert found.env_vars == ("POSTGRES_PRISMA_URL", "POSTGRES_URL_NON_POOLING")
    assert found.literal is None


def test_a_literal_url_is_reported() -> None:
    found = datasource_of(
        'datasource db {\n  provider = "sqlite"\n  url = "file:./dev.db"\n}\n', "schema.prisma"
    )
    assert found.literal == "url" and found.env_vars == ()


def test_no_datasource() -> None:
    assert datasource_of("generator client {}\n", "schema.prisma").env_vars == ()


def test_the_diff_is_git_style_and_applies_in_reverse(tmp_path: Path) -> None:
    before = b"model A {\n  id Int @id\n  x Int\n}\n"
    after = b"model A {\n  id Int @id\n}"  # no newline at the end
    diff = unified_diff(before, after, "prisma/schema.prisma")
    assert diff.startswith("--- a/prisma/schema.prisma\n+++ b/prisma/schema.prisma\n@@ ")
    assert "-  x Int\n" in diff and diff.endswith("+}\n\\ No newline at end of file\n")
    assert unified_diff(before, before, "s") == ""
    # `git apply -R` takes it back
    (tmp_path / "prisma").mkdir()
    (tmp_path / "prisma" / "schema.prisma").write_bytes(after)
    (tmp_path / "d.patch").write_text(diff)
    subprocess.run(["git", "apply", "-R", "--unsafe-paths", "d.patch"], cwd=tmp_path, check=True)
    assert (tmp_path / "prisma" / "schema.prisma").read_bytes() == before


def test_the_atomic_write_keeps_the_permissions(tmp_path: Path) -> None:
    path = tmp_path / "schema.prisma"
    path.write_text("old")
    path.chmod(0o640)
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["schema.prisma"]


def test_prisma_settings(tmp_path: Path) -> None:
    (tmp_path / "backout.toml").write_text(
        '[prisma]\nupdate_schema = "git"\ncommand = " yarn prisma "\n'
    )
    config = load_config(tmp_path, environ={})
    assert config.update_schema == "git" and config.prisma_command == "yarn prisma"
    assert load_config(tmp_path / ".." / tmp_path.name, environ={}).update_schema == "git"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[prisma]\nupdate_schema = "yes"\n', "prisma.update_schema: expected one of off, pull"),
        ("[prisma]\nschema = 1\n", "unknown setting(s) in [prisma]: schema"),
        ('[prisma]\ncommand = ""\n', "prisma.command must be a non-empty string"),
        ('prisma = "x"\n', "[prisma] must be a table"),
        ('[prisma]\ncommand = "yarn \'prisma"\n', "prisma.command: No closing quotation"),
    ],
)
def test_bad_prisma_settings(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "backout.toml").write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path, environ={})
    assert message in str(raised.value)


def test_the_cli_is_found_in_node_modules_above(tmp_path: Path) -> None:
    binary = tmp_path / "node_modules" / ".bin" / "prisma"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    app = tmp_path / "packages" / "app"
    app.mkdir(parents=True)
    cli, why = find_prisma_cli(app, None)
    if cli is None:  # no node on this machine: said so
        assert "needs node" in why
        return
    assert cli.argv == (str(binary),) and cli.shown == "npx prisma" and why == ""


def test_no_cli_says_why(tmp_path: Path) -> None:
    cli, why = find_prisma_cli(tmp_path, None)
    assert cli is None and why.startswith("the Prisma CLI was not found: no node_modules")
    cli, why = find_prisma_cli(tmp_path, "no-such-program-xyz prisma")
    assert cli is None
    assert (
        why
        == "no-such-program-xyz (of [prisma] command = 'no-such-program-xyz prisma') was not found"
    )
    cli, why = find_prisma_cli(tmp_path, f"{os.__file__} x")  # a path that exists
    assert cli is not None and cli.argv == (os.__file__, "x")


def test_the_diff_splits_lines_as_git_does(tmp_path: Path) -> None:
    """Only "\\n" ends a line: a form feed or U+2028 in a comment is part of its line, so the
    diff still applies in reverse."""
    before = "// a\u2028b\x0cc\nmodel A {\n  x Int\n}\n".encode()
    after = "// a\u2028b\x0cc\nmodel A {\n}\n".encode()
    diff = unified_diff(before, after, "prisma/schema.prisma")
    assert diff.count("\n") == 7  # ---, +++, @@, 3 context lines, the removal
    (tmp_path / "prisma").mkdir()
    (tmp_path / "prisma" / "schema.prisma").write_bytes(after)
    (tmp_path / "d.patch").write_bytes(diff.encode())
    subprocess.run(["git", "apply", "-R", "--unsafe-paths", "d.patch"], cwd=tmp_path, check=True)
    assert (tmp_path / "prisma" / "schema.prisma").read_bytes() == before


def test_the_atomic_write_goes_through_a_symlink(tmp_path: Path) -> None:
    """A schema.prisma that links to a shared file: the file is updated, the link stays."""
    target = tmp_path / "shared.prisma"
    target.write_text("old")
    link = tmp_path / "schema.prisma"
    link.symlink_to(target.name)
    write_atomically(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"


def test_output_cut_to_its_limit_never_keeps_part_of_a_password(tmp_path: Path) -> None:
    """The CLI's output is kept to its last 20,000 characters: masked before it is cut, so a
    cut inside the password does not leave the rest of it."""
    password = "s3cr3t-Passw0rd-4711"
    url = parse_url(f"postgresql://app:{password}@127.0.0.1:5432/db")
    tail = 20_000 - (len(password) - 3) - len("@127.0.0.1:5432/db\n")
    script = tmp_path / "cli"
    script.write_text(f"#!/bin/sh\necho \"$DATABASE_URL\"\nhead -c {tail} /dev/zero | tr '\\0' x\n")
    script.chmod(0o755)
    cli = PrismaCLI((str(script),), "cli")
    run = run_cli(
        cli, [], cwd=tmp_path, env=cli_environment(url, ()), timeout=30, secrets=url.secrets
    )
    assert run.ok
    assert password[3:] not in run.output and password[5:] not in run.output


def test_a_password_in_the_configured_command_is_masked_where_shown(tmp_path: Path) -> None:
    configured = "env DATABASE_URL=postgresql://app:pw-123456@db/app npx prisma"
    cli, _ = find_prisma_cli(tmp_path, configured)
    assert cli is not None and "pw-123456" in " ".join(cli.argv)  # run as configured
    assert "pw-123456" not in cli.shown and "postgresql://app:***@db/app" in cli.shown
    _, why = find_prisma_cli(tmp_path, configured.replace("env ", "no-such-env-xyz "))
    assert "pw-123456" not in why
