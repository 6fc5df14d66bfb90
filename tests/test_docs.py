"""Issue 14: the command reference (docs/commands/) cannot drift from the command line.

Every command and subcommand of ``backout`` is found through click's public API (so a lazily
loaded group works as well as an eager one). Its page, ``docs/commands/<command>.md``, must:

- show it in the synopsis (the code block before the first ``##`` heading: the lines starting
  with ``backout <command>``, and their indented continuation lines), naming every argument and
  every option the command has (by one of its flags; ``--no-x`` forms too; a choice with its
  values, ``--backup scoped|full|none``), and no option it does not have;
- describe each of its own options (all but ``--url``, ``-C/--project`` and ``--config``, which
  docs/commands/README.md describes once) in a row of its ``## Flags`` table, and name no
  option there that it does not have.

docs/commands/README.md must index every command, in the order ``backout --help`` lists them,
and describe the options every command accepts. Anywhere in the docs, a command line
(``backout X --flag``, or ```X --flag``` in prose) names only flags X has. The ``--json``
documents are checked against real output in tests/integration/test_json_docs.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from backout.cli import main
from tests.helpers import REPO

COMMANDS_DIR = REPO / "docs" / "commands"
FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


@dataclass(frozen=True)
class Documented:
    """A command as the command line defines it."""

    path: tuple[str, ...]
    command: click.Command
    help_flags: tuple[str, ...]

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def page(self) -> Path:
        """A subcommand is documented on its top-level command's page."""
        return COMMANDS_DIR / f"{self.path[0]}.md"

    def flags(self) -> set[str]:
        """Every flag the command accepts (``-h``/``--help`` and hidden ones included)."""
        found = set(self.help_flags)
        for param in self.command.params:
            if isinstance(param, click.Option):
                found.update(param.opts, param.secondary_opts)
        return found

    def options(self, params: list[click.Parameter]) -> list[tuple[str, ...]]:
        """The visible options among ``params``, each as its flags: ``--simulate`` and
        ``--no-simulate`` are two, ``-C`` and ``--project`` two names of one."""
        found: list[tuple[str, ...]] = []
        for param in params:
            if isinstance(param, click.Option) and not param.hidden:
                found += [tuple(names) for names in (param.opts, param.secondary_opts) if names]
        return found

    def arguments(self) -> list[str]:
        """Each argument's word as ``--help`` shows it (``ID`` of its metavar ``[ID]``)."""
        return [
            re.findall(r"\w+", param.human_readable_name)[0]
            for param in self.command.params
            if isinstance(param, click.Argument)
        ]


def walk(ctx: click.Context, path: tuple[str, ...] = ()) -> Iterator[Documented]:
    """Every command under ``ctx.command``, depth first, in the order ``--help`` lists them."""
    group = ctx.command
    assert isinstance(group, click.Group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        sub = click.Context(command, parent=ctx, info_name=name)
        help_option = command.get_help_option(sub)
        help_flags = tuple(help_option.opts) if help_option is not None else ()
        yield Documented((*path, name), command, help_flags)
        if isinstance(command, click.Group):
            yield from walk(sub, (*path, name))


def root_context() -> click.Context:
    """The context ``backout`` runs in (its settings give ``-h`` as well as ``--help``)."""
    return click.Context(main, info_name="backout", **main.context_settings)


COMMANDS = list(walk(root_context()))
COMMON = [p for p in main.params if isinstance(p, click.Option) and p.expose_value]


def synopsis(entry: Documented) -> str:
    """The synopsis lines of the command on its page (see the module docstring)."""
    text = entry.page.read_text(encoding="utf-8").split("\n## ", 1)[0]
    # a group's lines are not its subcommands' lines
    subcommands = [e.name for e in COMMANDS if e.name.startswith(f"{entry.name} ")]
    lines: list[str] = []
    for block in re.findall(r"^```\w*\n(.*?)^```", text, re.S | re.M):
        taking = False
        for line in block.splitlines():
            if line.startswith("backout "):
                taking = re.match(rf"backout {re.escape(entry.name)}(\s|$)", line) is not None
                taking &= not any(re.match(rf"backout {n}(\s|$)", line) for n in subcommands)
            elif not line.startswith((" ", "\t")):
                taking = False
            if taking:
                lines.append(line)
    return "\n".join(lines)


def flag_rows(page: Path) -> list[str]:
    """The first cell of each row of the page's ``## Flags`` table."""
    text = page.read_text(encoding="utf-8")
    sections = re.findall(r"^## Flags\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert len(sections) <= 1, f"{page.name}: more than one ## Flags section"
    rows = [line for line in "".join(sections).splitlines() if line.startswith("| `")]
    return [row.strip("|").split("|")[0] for row in rows]


def ids(entries: list[Documented]) -> list[str]:
    return [e.name for e in entries]


def test_commands_are_found() -> None:
    """The walk sees the real command set (a lazy group lists them without importing)."""
    names = {e.name for e in COMMANDS}
    assert {"up", "rollback", "status", "emergency", "demo"} <= names


@pytest.mark.parametrize("entry", COMMANDS, ids=ids(COMMANDS))
def test_the_synopsis_names_every_option_and_argument(entry: Documented) -> None:
    assert entry.page.exists(), f"{entry.name}: no page {entry.page.relative_to(REPO)}"
    shown = synopsis(entry)
    assert shown, f"{entry.page.name}: no synopsis line starting with `backout {entry.name}`"
    named = set(FLAG.findall(shown))
    missing = [o for o in entry.options(entry.command.params) if not named & set(o)]
    assert not missing, f"{entry.page.name}: the synopsis does not name {missing}"
    unknown = named - entry.flags()
    assert not unknown, f"{entry.page.name}: the synopsis names {sorted(unknown)}, not options"
    for argument in entry.arguments():
        assert re.search(rf"\b{argument}\b", shown), f"{entry.page.name}: no {argument}"
    for param in entry.command.params:
        if isinstance(param, click.Option) and isinstance(param.type, click.Choice):
            # the values a choice takes: `--backup scoped|full|none`
            values = "|".join(str(c) for c in param.type.choices)
            assert f"{param.opts[-1]} {values}" in shown, f"{entry.page.name}: not {values}"


@pytest.mark.parametrize("entry", COMMANDS, ids=ids(COMMANDS))
def test_the_flags_table_describes_every_option(entry: Documented) -> None:
    own = [p for p in entry.command.params if p.name not in {c.name for c in COMMON}]
    rows = flag_rows(entry.page)
    named = {flag for row in rows for flag in FLAG.findall(row)}
    missing = {f for o in entry.options(own) for f in o if f.startswith("--")} - named
    assert not missing, f"{entry.page.name}: the ## Flags table has no row for {sorted(missing)}"
    # a group and its subcommands share a page, and its table
    unknown = named - {f for e in COMMANDS if e.page == entry.page for f in e.flags()}
    assert not unknown, f"{entry.page.name}: the ## Flags table names {sorted(unknown)}"


def test_the_index_lists_every_command_in_help_order() -> None:
    text = (COMMANDS_DIR / "README.md").read_text(encoding="utf-8")
    index = text.split("\n## ", 1)[0]
    linked = re.findall(r"^\| \[`backout (\S+?)[` ].*?\]\((\S+?)\.md\)", index, re.M)
    top = [e.path[0] for e in COMMANDS if len(e.path) == 1]
    assert [name for name, _ in linked] == top
    assert all(name == page for name, page in linked), linked
    assert "(commands/README.md)" in (REPO / "docs" / "commands.md").read_text(encoding="utf-8")


def test_the_options_every_command_accepts() -> None:
    """README's table describes ``main``'s options, and every command accepts them."""
    text = (COMMANDS_DIR / "README.md").read_text(encoding="utf-8")
    section = text.split("## Options every command accepts", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|")[0] for line in section.splitlines() if line[:3] == "| `"]
    named = {flag for row in rows for flag in FLAG.findall(row)}
    help_option = main.get_help_option(root_context())
    assert help_option is not None
    common = {flag for p in COMMON for flag in p.opts}
    assert named == common | set(help_option.opts)
    for entry in COMMANDS:
        if entry.name != "demo":  # builds its own project (README says so)
            assert common <= entry.flags(), entry.name


#: docs that name a command with flags it does not have on purpose: the record of the bad
#: inputs the reliability suite feeds the command line (``rollback --frobnicate``)
BAD_INPUTS = {REPO / "docs" / "reliability.md"}


def mentions(text: str) -> Iterator[tuple[str, str]]:
    """(command, flag) of each command line in ``text``: ``backout X --flag`` (in code, after a
    backtick or ``$ ``) and ``\\`X --flag\\``` (prose naming another command's flag)."""
    names = "|".join(re.escape(e.name) for e in sorted(COMMANDS, key=lambda e: -len(e.name)))
    lines = re.compile(rf"(?:`|^\$ |^)backout ({names})\b([^`\n]*)", re.M)
    quoted = re.compile(rf"`({names}) (--?[^`\n]*)`")
    for match in [*lines.finditer(text), *quoted.finditer(text)]:
        # a shell pipeline or list continues with another program
        words = re.split(r"\||;|&&", match.group(2))[0]
        for flag in FLAG.findall(words):
            yield match.group(1), flag


def test_every_command_line_in_the_docs_names_real_flags() -> None:
    """README, docs/ and the examples' READMEs: a flag named with a command is one it has."""
    known = {e.name: e.flags() for e in COMMANDS}
    files = [REPO / "README.md", *(REPO / "docs").rglob("*.md"), *REPO.glob("examples/*/*.md")]
    wrong = [
        f"{path.relative_to(REPO)}: {command} {flag}"
        for path in files
        if path not in BAD_INPUTS
        for command, flag in mentions(path.read_text(encoding="utf-8"))
        if flag not in known[command]
    ]
    assert not wrong, wrong


def test_the_commands_with_json_output() -> None:
    """docs/json.md's two tables and docs/commands/README.md name the commands that have
    ``--json``, all of them."""
    with_json = {e.name for e in COMMANDS if "--json" in e.flags()}
    text = (REPO / "docs" / "json.md").read_text(encoding="utf-8")
    tables = text.split("## Stability", 1)[0]
    assert set(re.findall(r"^\| \[`(\w+) --json`\]", tables, re.M)) == with_json
    readme = (COMMANDS_DIR / "README.md").read_text(encoding="utf-8")
    bullet = readme.split("- **`--json`**", 1)[1].split("\n- ", 1)[0]
    assert set(re.findall(r"`(\w+)`", bullet.split(")", 1)[0])) == with_json
