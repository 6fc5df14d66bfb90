"""pytest plugin: rehearse a project's rollbacks inside its own test suite (docs/pytest-plugin.md).

Installed with backout (entry point ``pytest11``), it adds nothing to a test run until asked:

- ``pytest --backout-rehearse`` adds one test, ``backout::rehearsal``, that runs ``backout
  test`` on a throwaway copy of the database, with its data, and fails with every finding;
- the ``backout_rehearsal`` fixture runs the same rehearsal from a test of the project's own::

      def test_rollbacks(backout_rehearsal):
          backout_rehearsal()

Where the data comes from: ``--backout-from URL`` (a staging database, a replica), else the
project's configured database (``DATABASE_URL``, ``.env``, ``backout.toml``). ``--backout-all``
walks every migration on an empty database instead (no source needed). The project is the
rootdir, or ``--backout-project DIR`` / the ``backout_project`` ini option.

This module imports nothing heavy at import time: pytest loads it in every run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from backout import api
from backout.project.config import load_config

if TYPE_CHECKING:
    from backout.rehearsal.report import RehearsalReport


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--backout-rehearse``, ``--backout-from``, ``--backout-all``, ``--backout-project``."""
    group = parser.getgroup("backout", "rehearse rollbacks with backout")
    group.addoption(
        "--backout-rehearse",
        action="store_true",
        default=False,
        help="Add a test that rehearses every pending rollback (or the newest applied one) on "
        "a throwaway copy of the database, with its data.",
    )
    group.addoption(
        "--backout-from",
        metavar="URL",
        default=None,
        help="Copy this database for rehearsals instead of the project's configured one.",
    )
    group.addoption(
        "--backout-all",
        action="store_true",
        default=False,
        help="Rehearse every migration in order on an empty database instead of a copy.",
    )
    group.addoption(
        "--backout-project",
        metavar="DIR",
        default=None,
        help="The backout project (default: the backout_project ini option, or rootdir).",
    )
    parser.addini("backout_project", "Folder of the backout project (relative to rootdir).")


def _project(config: pytest.Config) -> Path:
    given = config.getoption("--backout-project") or config.getini("backout_project")
    root = Path(config.rootpath)
    return (root / given).resolve() if given else root


def run_rehearsal(
    config: pytest.Config,
    ids: Sequence[str] = (),
    *,
    all_: bool | None = None,
    from_url: str | None = None,
    ignore_column_order: bool = True,
    with_smoke: bool = True,
) -> RehearsalReport:
    """Rehearse with the plugin's options (arguments given here win)."""
    walk_all = config.getoption("--backout-all") if all_ is None else all_
    source = from_url or (None if walk_all else config.getoption("--backout-from"))
    backout_config = load_config(_project(config))
    return api.test(
        backout_config,
        ids,
        all_=walk_all,
        from_url=source,
        ignore_column_order=ignore_column_order,
        with_smoke=with_smoke,
    )


def describe_failures(report: RehearsalReport) -> str:
    """Every failed rehearsal and its findings, one per line (the assertion message)."""
    lines = [f"backout rehearsal on {report.source} failed:"]
    for migration in report.failed:
        lines.append(f"  {migration.id} ({migration.mode}, {migration.status}):")
        lines += [f"    - {failure.message}" for failure in migration.failures]
        lines += [f"    - {note}" for note in migration.notes if not migration.failures]
    if report.smoke is not None and not report.smoke.ok:
        lines.append(f"  {report.smoke.describe()}")
    lines += [f"  note: {note}" for note in report.notes]
    return "\n".join(lines)


class Rehearse(Protocol):
    """What the ``backout_rehearsal`` fixture is: call it to rehearse."""

    def __call__(
        self,
        *ids: str,
        all_: bool | None = None,
        from_url: str | None = None,
        ignore_column_order: bool = True,
        with_smoke: bool = True,
        check: bool = True,
    ) -> RehearsalReport: ...


@pytest.fixture
def backout_rehearsal(request: pytest.FixtureRequest) -> Rehearse:
    """Rehearse the project's rollbacks on a throwaway copy with data; fails the test with
    precise findings (``check=False`` only returns the report)."""

    def rehearse(
        *ids: str,
        all_: bool | None = None,
        from_url: str | None = None,
        ignore_column_order: bool = True,
        with_smoke: bool = True,
        check: bool = True,
    ) -> RehearsalReport:
        report = run_rehearsal(
            request.config,
            ids,
            all_=all_,
            from_url=from_url,
            ignore_column_order=ignore_column_order,
            with_smoke=with_smoke,
        )
        if check and not report.ok:
            pytest.fail(describe_failures(report), pytrace=False)
        return report

    return rehearse


class RehearsalItem(pytest.Item):
    """``backout::rehearsal``: the test ``--backout-rehearse`` adds."""

    def runtest(self) -> None:
        """Run the rehearsal; fail with every finding."""
        report = run_rehearsal(self.config)
        if not report.ok:
            raise RehearsalFailed(describe_failures(report))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The findings, without a traceback into backout."""
        if isinstance(excinfo.value, RehearsalFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the test comes from, for pytest's report."""
        return self.path, None, "backout rehearsal"


class RehearsalFailed(Exception):
    """A rehearsal found problems."""


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With ``--backout-rehearse``, append the ``backout::rehearsal`` test."""
    if config.getoption("--backout-rehearse"):
        make: Callable[..., RehearsalItem] = RehearsalItem.from_parent
        items.append(make(session, name="rehearsal", nodeid="backout::rehearsal"))
