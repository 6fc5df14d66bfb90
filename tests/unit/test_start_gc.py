"""The collector's pause while ``backout`` starts (backout.__main__, cli.common.end_start_pause).

Each check runs in a fresh interpreter: the pause is process-wide state.
"""

from __future__ import annotations

import subprocess
import sys

ENTRY = """
import gc, sys
import backout.__main__ as entry
print("@@paused at import:", not gc.isenabled(), file=sys.stderr)
sys.argv = ["backout", *sys.argv[1:]]
try:
    entry.main()
except SystemExit:
    pass
print("@@collecting after:", gc.isenabled(), file=sys.stderr)
print("@@frozen:", gc.get_freeze_count(), file=sys.stderr)
"""


def _run(code: str, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return [line[2:] for line in done.stderr.splitlines() if line.startswith("@@")]


def test_the_entry_pauses_the_collector_until_the_command_is_loaded() -> None:
    paused, collecting, frozen = _run(ENTRY, "lint", "--help")
    assert paused == "paused at import: True"
    assert collecting == "collecting after: True"
    # what starting built (the modules of click, backout and the command) is frozen
    assert int(frozen.split(":")[1]) > 10_000


def test_a_command_runs_with_the_collector_on() -> None:
    code = """
import gc, sys
import backout.__main__ as entry
from backout.cli import common
seen = []
real = common.BackoutGroup.invoke
def invoke(self, ctx):
    # the command group resolves and loads the command inside invoke; look from a callback
    ctx.call_on_close(lambda: seen.append(gc.isenabled()))
    return real(self, ctx)
common.BackoutGroup.invoke = invoke
sys.argv = ["backout", "lint", "--help"]
try:
    entry.main()
except SystemExit:
    pass
print("on during the command:", seen)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "on during the command: [True]" in done.stdout


def test_the_command_line_run_in_process_leaves_the_collector_alone() -> None:
    code = """
import gc, sys
from click.testing import CliRunner
from backout.cli import main
CliRunner().invoke(main, ["lint", "--help"])
print("@@collecting after:", gc.isenabled(), file=sys.stderr)
print("@@frozen:", gc.get_freeze_count(), file=sys.stderr)
"""
    collecting, frozen = _run(code)
    assert collecting == "collecting after: True"
    assert frozen == "frozen: 0"
