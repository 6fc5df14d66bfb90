"""The Prisma CLI, as ``rollback --update-schema`` runs it (``prisma db pull``, ``prisma
generate``).

Which CLI: the command configured as ``[prisma] command`` in backout.toml (``"yarn prisma"``,
``"pnpm exec prisma"``...), else ``node_modules/.bin/prisma`` of the project folder or of a
folder above it (what ``npx prisma`` runs; never ``npx`` itself, which would download a CLI of
any version from the registry when none is installed).

The database URL goes to the CLI in its environment only: in ``DATABASE_URL`` and in every
variable the datasource of schema.prisma names (``url = env("…")``, ``directUrl``), never on
its command line. Its output is kept, scrubbed of the password.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from backout.model.urls import DatabaseURL, mask_url
from backout.run.child import run_captured


@dataclass(frozen=True)
class PrismaCLI:
    """A runnable Prisma CLI."""

    argv: tuple[str, ...]
    #: how it is shown: ``npx prisma`` (the project's node_modules/.bin/prisma) or the
    #: configured command
    shown: str


@dataclass(frozen=True)
class CommandRun:
    """One command run after a rollback (git or the Prisma CLI)."""

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
        """One line: passed, or how it failed, with its last line of output."""
        if self.timed_out:
            return f"`{self.command}` timed out after {self.duration_s:.0f}s"
        if not self.ok:
            lines = [line.strip() for line in self.output.splitlines() if line.strip()]
            # Prisma prints its error first, then advice: the error says more
            errors = [line for line in lines if line.startswith("Error")]
            said = (errors or lines[-1:] or [""])[0]
            return f"`{self.command}` exited {self.exit_code}: {said}"
        return f"`{self.command}` passed ({self.duration_s:.1f}s)"


def find_prisma_cli(root: Path, configured: str | None) -> tuple[PrismaCLI | None, str]:
    """The Prisma CLI to run for the project at ``root``; or None and why there is none."""
    if configured:
        argv = shlex.split(configured)
        first = argv[0]
        found = (root / first).exists() if "/" in first else shutil.which(first) is not None
        shown = mask_url(configured)  # a URL in it is shown without its password
        if not found:
            return None, f"{first} (of [prisma] command = {shown!r}) was not found"
        return PrismaCLI(tuple(argv), shown), ""
    for folder in (root.resolve(), *root.resolve().parents):
        binary = folder / "node_modules" / ".bin" / "prisma"
        if binary.exists():
            if shutil.which("node") is None:
                return None, f"{binary} needs node, which is not on PATH"
            return PrismaCLI((str(binary),), "npx prisma"), ""
    return None, (
        f"the Prisma CLI was not found: no node_modules/.bin/prisma in {root} or a folder "
        "above it (`npm install --save-dev prisma`), and no [prisma] command in backout.toml"
    )


def cli_environment(url: DatabaseURL, env_vars: Sequence[str]) -> dict[str, str]:
    """The environment of a Prisma CLI run: the URL as configured (Prisma's own form) in
    ``DATABASE_URL`` and in each of ``env_vars``; Prisma's update check and telemetry off."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", *env_vars):
        env[name] = url.raw
    env["PRISMA_HIDE_UPDATE_MESSAGE"] = "1"
    env["CHECKPOINT_DISABLE"] = "1"
    return env


def run_cli(
    cli: PrismaCLI,
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    secrets: tuple[str, ...],
) -> CommandRun:
    """Run ``cli args`` in ``cwd``; a run longer than ``timeout`` (0: none) is killed with its
    process group."""
    shown = f"{cli.shown} {shlex.join(args)}"
    started = time.monotonic()
    try:
        run = run_captured(
            [*cli.argv, *args],
            cwd=cwd,
            env=env,
            timeout=timeout,
            secrets=secrets,
            stdin_closed=True,
        )
    except OSError as exc:
        return CommandRun(shown, None, f"cannot start it: {exc}", time.monotonic() - started)
    return CommandRun(
        command=shown,
        exit_code=run.exit_code,
        output=run.output,
        duration_s=run.duration_s,
        timed_out=run.timed_out,
    )
