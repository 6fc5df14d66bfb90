"""Shared CLI plumbing: common options, Config building, error → exit code mapping."""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from backout import api
from backout.model import interrupts
from backout.model.documents import envelope
from backout.model.errors import BackoutError, Terminated, UsageError
from backout.model.urls import mask_url
from backout.project.config import load_config

if TYPE_CHECKING:
    from backout.project.config import Config

F = TypeVar("F", bound=Callable[..., Any])


def project_options(func: F) -> F:
    """``--url``, ``-C/--project`` and ``--config``, accepted by every command."""
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Configuration file (default: backout.toml, else [tool.backout] in pyproject.toml).",
    )(func)
    func = click.option(
        "-C",
        "--project",
        "project",
        type=click.Path(file_okay=False, path_type=Path),
        help="Project folder (default: the current folder).",
    )(func)
    func = click.option(
        "--url",
        envvar=None,
        help="Database URL; overrides DATABASE_URL and backout.toml.",
    )(func)
    return func


_LOCK_WAIT = "backout.lock_wait"


def lock_wait_option(func: F) -> F:
    """``--lock-wait DURATION``, on every command that takes the run lock."""

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.meta[_LOCK_WAIT] = value

    return click.option(
        "--lock-wait",
        metavar="DURATION",
        expose_value=False,
        callback=remember,
        help="Wait this long for the run lock while another run holds it, then exit 3 "
        "(default 5s, or lock_wait in backout.toml; 0: do not wait).",
    )(func)


def build_config(
    *, url: str | None, project: Path | None, config_file: Path | None, **flags: Any
) -> Config:
    """The Config for this invocation (flags have the highest precedence).

    Options given before the command (``backout -C app status``) count too; after it wins.
    """
    context = click.get_current_context(silent=True)
    if context is not None:
        early = context.find_root().params
        url = url or early.get("url")
        project = project or early.get("project")
        config_file = config_file or early.get("config_file")

        flags.setdefault("lock_wait", context.meta.get(_LOCK_WAIT))

    root = project.resolve() if project else None
    if root is not None and not root.is_dir():
        raise UsageError(f"project folder {project} does not exist")
    return load_config(root, config_file=config_file, url=url, **flags)


def fail(message: str, hint: str | None, code: int) -> None:
    """Print a one-line error (and an optional hint) to stderr and exit with ``code``."""
    click.echo(f"error: {mask_url(message)}", err=True)
    if hint:
        click.echo(f"hint: {mask_url(hint)}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`~backout.model.errors.Terminated` (a
    KeyboardInterrupt) once: what is in flight is undone and recorded as on Ctrl-C. Later
    SIGTERMs are ignored so that this clean-up can finish (a SIGKILL still ends it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False
    interrupts.reset()

    def terminate(_signum: int, _frame: object) -> None:
        nonlocal raised
        if raised:
            return
        raised = True
        if interrupts.holding():
            interrupts.hold()  # a COMMIT went through: raised where the next one begins
        else:
            raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _end_by_sigterm() -> None:
    """A SIGTERM held past a COMMIT, and the command done: say so, then end by the signal."""
    interrupts.reset()
    click.echo(
        "error: SIGTERM arrived after the change had been committed: the change is complete, "
        "and backout stopped once the command was done (`backout status` shows it)",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)


def handle_errors(func: F) -> F:
    """Turn BackoutError into its exit code, and Ctrl-C into 130, with one clear line."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _sigterm_as_interrupt():
                return func(*args, **kwargs)
        except BackoutError as exc:
            fail(str(exc), exc.hint, exc.exit_code)
        except Terminated:
            fail(
                "terminated by SIGTERM: any open transaction was rolled back (a run that had "
                "started is recorded as failed in history)",
                "`backout status` shows where things stand",
                Terminated.exit_code,
            )
        except KeyboardInterrupt:
            fail(INTERRUPTED, None, 130)
        finally:
            if interrupts.pending():
                _end_by_sigterm()
        return None

    return wrapper  # type: ignore[return-value]


#: what Ctrl-C leaves: the open transaction is rolled back (see :func:`handle_errors`)
INTERRUPTED = "interrupted: the open transaction was rolled back"


def ask(question: str, *, err: bool) -> bool:
    """A yes/no question on the terminal, default no. With ``--json`` (``err``) it is asked on
    stderr: stdout holds the document only, and may be a file the user cannot see. Ctrl-C or
    the end of input at the prompt is a no (the caller's ``Declined``: nothing was changed)."""
    try:
        return click.confirm(question, default=False, err=err)
    except click.Abort:
        click.echo("", err=True)
        return False


class ActionDocument:
    """``--json`` of a command that acts: one document on stdout, whether it succeeds or fails
    (docs/json.md). Use as ``with ActionDocument("rollback", as_json) as doc: ...`` and call
    :meth:`emit` with the result; an error leaves as the document's ``error``, then goes on to
    :func:`handle_errors` (the stderr line and the exit code)."""

    def __init__(self, command: str, enabled: bool) -> None:
        import datetime as dt

        self.command = command
        self.enabled = enabled
        self.started = dt.datetime.now(dt.UTC)

    def __enter__(self) -> ActionDocument:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if not self.enabled:
            return

        if isinstance(exc, BackoutError):
            self._echo(envelope(self.command, "error", self.started, self._now(), exc))
        elif isinstance(exc, KeyboardInterrupt):
            document = envelope(self.command, "error", self.started, self._now())
            document["error"] = {
                "message": INTERRUPTED,
                "hint": None,
                "exit_code": 130,
                "kind": "KeyboardInterrupt",
            }
            self._echo(document)

    def emit(self, outcome: str, fields: dict[str, Any]) -> None:
        """Print the document of a command that finished (when ``--json`` was given)."""
        if not self.enabled:
            return

        self._echo({**envelope(self.command, outcome, self.started, self._now()), **fields})

    @staticmethod
    def _now() -> Any:
        import datetime as dt

        return dt.datetime.now(dt.UTC)

    @staticmethod
    def _echo(document: dict[str, Any]) -> None:
        import json

        click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


#: the order a user meets the commands in (help lists them this way)
#: Every command, in the order a user meets them: name → (the module that defines it, its short
#: help as ``backout --help`` lists it). ``--help`` reads this table, so listing the commands
#: imports none of their modules; running one imports only its module
#: (:meth:`BackoutGroup.get_command`). tests/unit/test_cli_lazy.py checks the table against the
#: commands themselves, so it cannot drift.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("backout.cli.migrate", "Write backout.toml for this project (detects the layout)."),
    "new": (
        "backout.cli.migrate",
        "Scaffold a migration and its rollback script with a directive header.",
    ),
    "status": (
        "backout.cli.migrate",
        "Show every migration: applied, pending, failed, rolled back; rollbacks and their risk.",
    ),
    "up": (
        "backout.cli.migrate",
        "Apply pending migrations in order, each in one transaction, under the run lock.",
    ),
    "plan": (
        "backout.cli.rollback",
        "Show what a rollback would do: scripts, computed impact and risk, checks, backup.",
    ),
    "rollback": (
        "backout.cli.rollback",
        "Roll back applied migrations: backup, lock, one transaction, verify, record.",
    ),
    "backup": (
        "backout.cli.backups",
        "Take a verified backup now: the one a rollback would take, or everything with --full.",
    ),
    "backups": (
        "backout.cli.backups",
        "List the backup catalog, oldest first: id, kind, when, size, tables, sha256, reason.",
    ),
    "restore": (
        "backout.cli.backups",
        "Restore BACKUP (an id, a unique id prefix, or `latest`) over the current database.",
    ),
    "check": (
        "backout.cli.rehearse",
        "Look for orphaned rows, leftovers, drift and failing verify queries.",
    ),
    "test": (
        "backout.cli.rehearse",
        "Rehearse rollbacks on a throwaway copy of the database, with its data.",
    ),
    "generate": (
        "backout.cli.rehearse",
        "Draft the rollback of ID from the schema before and after it.",
    ),
    "lint": (
        "backout.cli.lint",
        "Check migrations and rollbacks statically: every problem, in one run.",
    ),
    "resolve": (
        "backout.cli.migrate",
        "Fix the bookkeeping of a migration, as `prisma migrate resolve` does.",
    ),
    "history": (
        "backout.cli.history",
        "Show the append-only audit log: applies, rollbacks, restores, resolves, backups.",
    ),
    "emergency": (
        "backout.cli.emergency",
        "Emergency runbook: stop app, full backup, roll back, deploy previous, check, smoke.",
    ),
    "demo": (
        "backout.cli.demo",
        "A guided tour on SQLite: up, status, plan, rollback with backup, history, restore.",
    ),
}
COMMAND_ORDER = tuple(COMMANDS)


#: the exit status of a process killed by SIGPIPE (128 + 13), which shells report for
#: ``yes | head -1``: what a reader closing the pipe early looks like to a Unix tool
CLOSED_PIPE_EXIT = 141


def _closed_pipe() -> None:
    """The reader of stdout went away (``backout plan | head -3``): stop quietly, as Unix
    tools do. stdout is pointed at /dev/null so the interpreter's last flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(CLOSED_PIPE_EXIT)


#: the commands whose ``--json`` prints a document on every error too (ActionDocument)
ACTION_COMMANDS = ("rollback", "up", "backup", "restore", "emergency")


def _usage_document(command: str, exc: click.UsageError) -> None:
    """The ``--json`` document of a command click refused before it ran."""
    import datetime as dt
    import json

    now = dt.datetime.now(dt.UTC)
    document = envelope(command, "error", now, now)
    document["error"] = {
        "message": exc.format_message(),
        "hint": f"backout {command} --help",
        "exit_code": exc.exit_code,
        "kind": "UsageError",
    }
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


#: set by :mod:`backout.__main__`: the garbage collector is paused while the command line loads
START_PAUSE = {"paused": False}


def end_start_pause() -> None:
    """The command's code is loaded: freeze what starting built, and collect again.

    ``backout`` starts by importing its modules and click's with the collector paused (see
    :mod:`backout.__main__`); every module, class and function made then lives until the process
    ends, so collections that walk them again and again (and once more at exit) free nothing.
    ``gc.freeze`` moves them out of every later collection; what the command itself creates is
    collected as usual. Called once the command's module is loaded; a no-op otherwise (the CLI
    run in-process by tests, or a library user's own interpreter, keep their collector as is).
    """
    if START_PAUSE["paused"]:
        START_PAUSE["paused"] = False
        gc.freeze()
        gc.enable()


class BackoutGroup(click.Group):
    """Loads a command's module only when that command runs (click's lazy group: ``--help``
    lists :data:`COMMANDS` without importing them); lists commands in the order a user meets
    them, not alphabetically; stops quietly when stdout's reader closes the pipe."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *sorted(set(self.commands) - set(COMMANDS))]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, importing the module that defines it (and registers it) on first use."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name][0])
            if cmd_name in api.VERBS:  # the library's side of it, loaded now rather than later
                importlib.import_module(f"backout.api.verbs.{api.VERBS[cmd_name]}")
        end_start_pause()
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their short help, from :data:`COMMANDS` (nothing imported)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in COMMANDS:
                # shortened as click shortens a command's own help
                listed = click.Command(name, help=COMMANDS[name][1])
                rows.append((name, listed.get_short_help_str(limit)))
            elif not self.commands[name].hidden:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a closed stdout ends it quietly (see :func:`_closed_pipe`); with
        ``--json``, a command that acts refused by click (bad usage) still prints its
        document (docs/json.md)."""
        argv = [*getattr(ctx, "_protected_args", ()), *ctx.args]
        try:
            try:
                return super().invoke(ctx)
            except click.UsageError as exc:
                if argv and argv[0] in ACTION_COMMANDS and "--json" in argv[1:]:
                    _usage_document(argv[0], exc)
                raise
            finally:
                # Flushed here, not at exit: a closed pipe must surface where it is handled.
                sys.stdout.flush()
        except BrokenPipeError:
            _closed_pipe()
        return None
