"""The CLI loads a command's module only when that command runs (issue 14): ``--help`` lists
every command from backout.cli.common.COMMANDS, which must say what the commands say."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
from click.testing import CliRunner

from backout.cli import main
from backout.cli.common import COMMANDS


def _real_command(name: str) -> click.Command:
    importlib.import_module(COMMANDS[name][0])
    return main.commands[name]


def test_the_table_says_what_each_command_says() -> None:
    for name, (module, short_help) in COMMANDS.items():
        command = _real_command(name)
        assert command.callback is not None
        assert command.callback.__module__ == module, name
        assert short_help == command.get_short_help_str(limit=10_000), name
        assert not command.hidden, name


def test_every_registered_command_is_in_the_table() -> None:
    for module in {m for m, _ in COMMANDS.values()}:
        importlib.import_module(module)
    assert set(main.commands) == set(COMMANDS)


def test_help_lists_every_command_as_click_would_with_all_of_them_loaded() -> None:
    lazy = CliRunner().invoke(main, ["--help"], terminal_width=100)
    assert lazy.exit_code == 0, lazy.output
    for name in COMMANDS:
        _real_command(name)
    context = click.Context(main, info_name="backout", terminal_width=100)
    formatter = context.make_formatter()
    click.Group.format_commands(main, context, formatter)
    listed = formatter.getvalue()
    assert listed.strip() and listed in lazy.output
    for name in COMMANDS:
        assert f"  {name} " in listed


def test_help_and_version_import_no_command_module_nor_heavy_library() -> None:
    code = (
        "import sys\n"
        "from backout.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        # backout.api itself is the verbs' table (nothing loaded); its verbs must wait
        "loaded = [m for m in sys.modules if m.startswith(('backout.cli.', 'backout.api.',"
        " 'psycopg', 'pglast', 'sqlglot', 'rich', 'pymysql'))]\n"
        "print(sorted(m for m in loaded if m != 'backout.cli.common'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "status" in done.stdout


def test_a_command_loads_only_its_own_module() -> None:
    code = (
        "import sys\n"
        "from backout.cli import main\n"
        "try:\n"
        "    main(['lint', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('backout.cli.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stdout.strip().splitlines()[-1]
    assert "backout.cli.lint" in loaded
    assert "backout.cli.rollback" not in loaded and "backout.cli.migrate" not in loaded
