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
import signal
import subprocess
import time
from dataclasses import dataclass

from backout.config import Config
from backout.dialects import dialect_for
from backout.urls import DatabaseURL, scrub

_OUTPUT_LIMIT = 20_000


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
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        shell=True,
        cwd=config.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    timed_out = False
    try:
        raw, _ = process.communicate(timeout=config.hook_timeout or None)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        raw, _ = process.communicate()
    output = scrub(raw.decode("utf-8", "replace")[-_OUTPUT_LIMIT:], url.secrets)
    return HookResult(
        name=name,
        command=command,
        exit_code=process.returncode,
        output=output,
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
    )
