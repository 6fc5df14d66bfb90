"""Ctrl-C on a fleet run lets the running targets finish (docs/fleet.md): the terminal sends
SIGINT to its whole foreground process group, so a client program a running target started
(pg_dump, psql, mariadb-dump) must not be in it, or it dies and its target fails."""

from __future__ import annotations

import os
import sys

from backout.dialects import client_programs

PGID = [sys.executable, "-c", "import os; print(os.getpgid(0))"]


def group_of_child() -> int:
    done = client_programs.run(PGID, secrets=(), capture_output=True)
    return int(done.stdout)


def test_client_programs_of_a_fleet_target_are_out_of_the_terminals_reach() -> None:
    assert group_of_child() == os.getpgid(0)  # a single command: Ctrl-C stops them too
    with client_programs.shielded_from_interrupts():
        assert group_of_child() != os.getpgid(0)
        process = client_programs.start(PGID, secrets=(), stdout=-1)
        out, _ = process.communicate()
        assert int(out) != os.getpgid(0)
    assert group_of_child() == os.getpgid(0)
