"""The ``backout`` command line: parse, build a Config, call :mod:`backout.api`, render.

This package stays light on import so ``backout --help`` starts fast: each command's module
(and with it the library, rich and the database drivers) is imported only when that command
runs (see :class:`backout.cli.common.BackoutGroup`).
"""

from __future__ import annotations

from pathlib import Path

import click

from backout import __version__
from backout.cli.common import BackoutGroup, project_options

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=BackoutGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="backout")
@project_options
def main(url: str | None, project: Path | None, config_file: Path | None) -> None:
    """Safe, rehearsed rollbacks for SQL schema migrations.

    Reads Prisma (prisma/migrations + prisma/rollback), plain SQL (NNN_name.up.sql/.down.sql)
    and dbmate projects. The database comes from DATABASE_URL (environment or .env), --url,
    or backout.toml; without any, sqlite:///backout.db.

    --url, -C and --config work before the command (backout -C app status) or after it.

    Exit codes: 0 ok, 1 checks found problems or declined, 2 bad usage or input,
    3 lock held or timeout, 4 database error (the change was undone).
    """


# Command modules register themselves on ``main`` when a command of theirs first runs
# (BackoutGroup.get_command; the table is backout.cli.common.COMMANDS).
