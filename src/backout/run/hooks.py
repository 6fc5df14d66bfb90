"""Hooks: shell commands run around rollbacks (``stop_app``, ``after_rollback``, ``smoke``...).

Each hook gets ``DATABASE_URL`` of the database it concerns, in a form its tools accept (the
real URL, password included, in the environment only: the hook has to connect),
``BACKOUT_SCHEMA`` when the project is scoped to a schema, ``BACKOUT_PRISMA_URL`` (the URL as
configured, for Prisma) and ``BACKOUT_HOOK`` with its name. Its output is kept, scrubbed of
the password, for the CLI and incident reports. A hook that runs longer than
``hooks.timeout`` is killed, with its whole process group.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass

from backout.dialects import dialect_for
from backout.model.errors import ToolMissing
from backout.model.urls import DatabaseURL
from backout.project.config import Config
from backout.run.child import run_captured


@dataclass(frozen=True)
class HookResult:
    """What one hook did."""

    name: str
    command: str
    exit_code: int | None
    output: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """Exited 0 in time."""
        return self.exit_code == 0 and not self.timed_out

    def describe(self) -> str:
        """One line: what went wrong, or that it passed."""
        if self.timed_out:
            return f"hook {self.name} timed out after {self.duration_s:.0f}s: {self.command}"
        if self.exit_code != 0:
            last = self.output.strip().splitlines()[-1:] or [""]
            return f"hook {self.name} exited {self.exit_code}: {self.command}: {last[0]}"
        return f"hook {self.name} passed ({self.duration_s:.1f}s)"


def run_hook(config: Config, name: str, url: DatabaseURL) -> HookResult | None:
    """Run the configured hook ``name`` (None when it is not configured)."""
    command = config.hooks.get(name, "").strip()
    if not command:
        return None
    env = {**os.environ, **dialect_for(url).hook_environment(url), "BACKOUT_HOOK": name}
    run = run_captured(
        command, cwd=config.root, env=env, timeout=config.hook_timeout, secrets=url.secrets
    )
    return HookResult(
        name=name,
        command=command,
        exit_code=run.exit_code,
        output=run.output,
        duration_s=run.duration_s,
        timed_out=run.timed_out,
    )


#: words a shell runs itself: no program to look for
_SHELL_WORDS = frozenset(
    {".", ":", "[", "[[", "!", "{", "(", "alias", "break", "builtin", "case", "cd", "command"}
    | {"continue", "echo", "eval", "exec", "exit", "export", "false", "for", "function", "if"}
    | {"printf", "pwd", "read", "return", "set", "shift", "source", "test", "times", "trap"}
    | {"true", "type", "ulimit", "umask", "unset", "until", "wait", "while"}
)
_PLAIN_WORD = re.compile(r"^[A-Za-z0-9_./+-]+$")


def missing_hook_program(config: Config, name: str) -> ToolMissing | None:
    """ToolMissing when hook ``name``'s command starts with a program that cannot be found
    (a typo, or a tool not installed on this machine), found before anything runs.

    Only a plain first word is looked up (``npx``, ``./scripts/stop.sh``); a command starting
    with shell syntax (a variable assignment, a builtin, a subshell) is left to the shell."""
    command = config.hooks.get(name, "").strip()
    if not command:
        return None
    try:
        first = shlex.split(command)[0]
    except (ValueError, IndexError):
        return None  # unbalanced quotes and such: the shell will say
    if first in _SHELL_WORDS or not _PLAIN_WORD.match(first):
        return None
    # a path is relative to the project folder, where hooks run
    found = (config.root / first).exists() if "/" in first else shutil.which(first) is not None
    if found:
        return None
    return ToolMissing(
        f"hook {name}: {first} not found: {command}",
        hint="install it, fix the command in backout.toml's [hooks], or remove the hook",
    )
