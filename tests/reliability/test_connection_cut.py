"""A database connection cut mid-run: the outcome is before-or-after, with one clear error line
and exit 4, and the same command then succeeds.

- PostgreSQL: ``pg_terminate_backend`` on every connection whose application_name is the run's
  (``backout/<version> <user>@<host> pid <pid>``), at a random moment after start-up: what an
  administrator, a failover or a pooler restart does to a session.
- SQLite has no connection to cut. The realistic equivalent is the storage going away under the
  open file: here the volume holding the database (a small tmpfs) is filled by another process
  at a random moment, so every later write of the run fails (``SQLITE_FULL``), exactly as a full
  or failing disk does. Closing the file descriptor from outside (gdb) would let the number be
  reused by another file, which no real failure does; removing write permission does not affect
  an open descriptor (and root ignores it); renaming the file is invisible to an open handle.

The runs use the same cycle and checks as the kill -9 lanes (tests/reliability/crash.py), one
lane per database, started in the background by tests/reliability/lanes.py.
Every exit code other than 0 or 4 is a failure. (Restores and backups used to report a cut as
exit 2, bugs B3 and B4: their deterministic reproducers are in test_regressions.py.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.reliability.common import cut_trials, record_result
from tests.reliability.lanes import LaneRuns, check, summarize


def _show(summary: dict[str, Any]) -> None:
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=1))


@pytest.mark.postgres
def test_connection_cut_postgres(background_lanes: LaneRuns, pg_admin_url: str) -> None:
    """pg_terminate_backend mid-run: before-or-after, one error line, exit 4, re-run works."""
    summary = summarize("postgresql", background_lanes.results("postgresql", "cut"))
    record_result("cut_postgresql", summary)
    _show(summary)
    check(
        "postgresql",
        summary,
        "tests/reliability/test_connection_cut.py::test_connection_cut_postgres",
        per_command=cut_trials(),
    )


def test_connection_cut_sqlite(background_lanes: LaneRuns) -> None:
    """The database's volume fills mid-run: before-or-after, one error line, exit 4."""
    if not background_lanes.volume_mounted:
        pytest.skip("cannot mount a tmpfs for the database (needs root)")
    summary = summarize("sqlite", background_lanes.results("sqlite", "cut"))
    record_result("cut_sqlite", summary)
    _show(summary)
    check(
        "sqlite",
        summary,
        "tests/reliability/test_connection_cut.py::test_connection_cut_sqlite",
        per_command=cut_trials(),
    )
