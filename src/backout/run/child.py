"""One way to run a child program whose output backout shows (hooks, the Prisma CLI, git for
``--update-schema``): its own process group, killed whole after the timeout or on Ctrl-C or
SIGTERM (which its own session does not receive), output masked and then cut to a limit."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from backout.model.urls import scrub

#: characters of a child's output kept (its end: where errors are)
OUTPUT_LIMIT = 20_000


@dataclass(frozen=True)
class Captured:
    """How a child program ended, and its output (stdout and stderr together)."""

    exit_code: int | None
    output: str
    duration_s: float
    timed_out: bool


def run_captured(
    command: str | Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    secrets: tuple[str, ...],
    stdin_closed: bool = False,
) -> Captured:
    """Run ``command`` (a string: through the shell) in ``cwd``; a run longer than ``timeout``
    (0: none) is killed with its process group. OSError when it cannot be started."""
    started = time.monotonic()
    process = subprocess.Popen(
        command if isinstance(command, str) else list(command),
        shell=isinstance(command, str),
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL if stdin_closed else None,
        start_new_session=True,
    )
    timed_out = False
    try:
        raw, _ = process.communicate(timeout=timeout or None)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        raw, _ = process.communicate()
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    # masked, then cut: a cut first could fall inside a password and leave the rest of it
    output = scrub(raw.decode("utf-8", "replace"), secrets)[-OUTPUT_LIMIT:]
    return Captured(process.returncode, output, time.monotonic() - started, timed_out)
