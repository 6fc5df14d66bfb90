"""Fixtures of the reliability suite: the artifacts folder, password-carrying database URLs.

Every run of backout in this suite leaves its stdout, stderr and files under one artifacts
folder; the last test (test_zz_secrets.py) greps all of it for the suite's passwords.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.reliability.common import (
    PASSWORD,
    Artifacts,
    master_seed,
    pg_connect,
    trials,
)


def pytest_configure(config: pytest.Config) -> None:
    """Register ``regression``: the test reproduces a fixed bug (its text says which)."""
    config.addinivalue_line(
        "markers", "regression(what): reproduces a fixed backout bug; `what` says which"
    )


@pytest.fixture(autouse=True)
def _regression_label(request: pytest.FixtureRequest) -> None:
    """Carry a ``regression`` mark's text to the test report (for the reliability report)."""
    mark = request.node.get_closest_marker("regression")
    if mark is not None and mark.args:
        request.node.user_properties.append(("regression", str(mark.args[0])))


def pytest_report_header(config: pytest.Config) -> str:
    """Print the seed, so that any failure can be replayed."""
    return (
        f"reliability: BACKOUT_RELIABILITY_SEED={master_seed()} "
        f"BACKOUT_RELIABILITY_TRIALS={trials()}"
    )


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """The session's artifacts folder (in pytest's temporary folder, which pytest rotates);
    also sets the results folder when ``BACKOUT_RELIABILITY_RESULTS`` does not name one."""
    from tests.reliability.common import cut_trials, fuzz_examples, record_result

    base = tmp_path_factory.getbasetemp()
    if not os.environ.get("BACKOUT_RELIABILITY_RESULTS"):
        os.environ["BACKOUT_RELIABILITY_RESULTS"] = str(base / "reliability-results")
    record_result(
        "settings",
        {
            "seed": master_seed(),
            "trials": trials(),
            "cut_trials": cut_trials(),
            "fuzz": fuzz_examples(),
            "ci": os.environ.get("CI", ""),
        },
    )
    return Artifacts(base / "reliability-artifacts")


def with_password(admin_url: str, database: str, password: str = PASSWORD) -> str:
    """``postgresql://user:PASSWORD@host:port/database`` from the admin URL."""
    from urllib.parse import quote, urlsplit

    parts = urlsplit(admin_url)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    return f"postgresql://{user}:{quote(password, safe='')}@{host}:{port}/{database}"


def dump_history(url: str, artifacts: Artifacts, label: str) -> None:
    """Keep every history row of a database as an artifact (scanned for secrets)."""
    lines = []
    with pg_connect(url) as conn:
        for table in ("public._prisma_migrations", "backout.migrations", "backout.events"):
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
            if exists and exists[0]:
                for row in conn.execute(f"SELECT * FROM {table}").fetchall():
                    lines.append(f"{table}\t" + "\t".join(map(str, row)))
    artifacts.save(f"history-{label}.tsv", "\n".join(lines) + "\n")


@pytest.fixture
def pg_database(pg_admin_url: str, artifacts: Artifacts) -> Iterator[Callable[[], str]]:
    """Factory of new PostgreSQL databases whose URLs carry :data:`PASSWORD`.

    At teardown every history row is saved as an artifact, then the databases are dropped.
    """
    created: list[tuple[str, str]] = []

    def make() -> str:
        name = f"backout_rel_{uuid.uuid4().hex[:10]}"
        with pg_connect(pg_admin_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = with_password(pg_admin_url, name)
        created.append((name, url))
        return url

    yield make
    for name, url in created:
        try:
            dump_history(url, artifacts, name)
        finally:
            with pg_connect(pg_admin_url) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_TIMES: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep, for the report: seconds per test file, every xfail (known bug) outcome, and the
    outcome of every regression test of a fixed bug."""
    from tests.reliability.common import record_result

    if "tests/reliability/" not in report.nodeid or not os.environ.get(
        "BACKOUT_RELIABILITY_RESULTS"
    ):
        return
    module = report.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    _TIMES[module] = _TIMES.get(module, 0.0) + report.duration
    record_result("timing", {module: round(_TIMES[module], 1)})
    if report.when == "call" and hasattr(report, "wasxfail"):
        outcome = "xfailed (bug still there)" if report.skipped else "XPASS (fixed?)"
        record_result(
            "known_bugs", {report.nodeid: {"outcome": outcome, "reason": report.wasxfail}}
        )
    fixed = dict(report.user_properties).get("regression")
    if report.when == "call" and fixed is not None:
        outcome = "passes (fixed)" if report.passed else f"{report.outcome.upper()} (bug is back)"
        record_result("regressions", {report.nodeid: {"outcome": outcome, "reason": fixed}})
    if report.when == "call":
        counts = _OUTCOMES.setdefault(report.outcome, 0)
        _OUTCOMES[report.outcome] = counts + 1
        record_result("outcomes", dict(_OUTCOMES))


_OUTCOMES: dict[str, int] = {}


@pytest.fixture(scope="session", autouse=True)
def background_lanes(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: Artifacts,
) -> Iterator[Any]:
    """The crash and cut lanes, started when the suite starts (see lanes.py)."""
    from tests.reliability.lanes import start_lanes

    with start_lanes(request, tmp_path_factory.mktemp("lanes"), artifacts) as runs:
        yield runs


#: run order: what the lanes do not disturb first, then the lanes' results, then what measures
#: time (on a quiet machine), then the secrets scan over everything
_ORDER = {
    "test_bad_inputs.py": 1,
    "test_fuzz.py": 1,
    "test_security.py": 1,
    "test_crash.py": 2,
    "test_connection_cut.py": 2,
    "test_concurrency.py": 3,
    "test_online_load.py": 3,
    "test_regressions.py": 3,
    "test_zz_secrets.py": 9,
}


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Order this folder's tests (see _ORDER); other tests keep their places."""
    slots = [i for i, item in enumerate(items) if "tests/reliability/" in item.nodeid]
    ordered = sorted(
        (items[i] for i in slots),
        key=lambda item: _ORDER.get(item.nodeid.split("::")[0].rsplit("/", 1)[-1], 5),
    )
    for slot, item in zip(slots, ordered, strict=True):
        items[slot] = item
