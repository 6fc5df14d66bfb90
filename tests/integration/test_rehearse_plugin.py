"""The pytest plugin, tested with pytester: a project adds rehearsal to its own suite with one
line, and it runs on the project's data."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from backout.demo import sampledata
from tests.helpers import EXAMPLES, REPO, run

pytest_plugins = ["pytester"]

VOUCHERS = "20240315000000_add_voucher_system"


@pytest.fixture
def app(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The vouchers-sqlite example as a project with data, its DATABASE_URL in the environment."""
    root = pytester.path
    for item in (EXAMPLES / "vouchers-sqlite").iterdir():
        if item.is_dir():
            shutil.copytree(item, root / item.name)
    url = f"sqlite:///{root / 'app.db'}"
    assert run(["up"], project=root, url=url).exit_code == 0
    sampledata.fill("vouchers-sqlite", url, scale=30)
    monkeypatch.setenv("DATABASE_URL", url)
    # Only the plugin under test: no other installed plugin may change the outcome.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return root


def _break_rollback(root: Path) -> None:
    path = root / "prisma" / "rollback" / f"{VOUCHERS}_rollback.sql"
    text = path.read_text()
    path.write_text(
        text.replace('DELETE FROM "Voucher";', 'DELETE FROM "Voucher";\nDELETE FROM "User";')
    )


def test_fixture_in_one_line(pytester: pytest.Pytester, app: Path) -> None:
    pytester.makepyfile(
        test_rollbacks="""
        def test_rollbacks(backout_rehearsal):
            backout_rehearsal()
        """
    )
    result = pytester.runpytest_subprocess("-p", "backout.pytest_plugin")
    result.assert_outcomes(passed=1)
    _break_rollback(app)
    result = pytester.runpytest_subprocess("-p", "backout.pytest_plugin")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*{VOUCHERS} (backward, failed):*",
            '*rows of table "User" were deleted although*',
        ]
    )


def test_fixture_returns_the_report(pytester: pytest.Pytester, app: Path) -> None:
    pytester.makepyfile(
        test_rollbacks=f"""
        def test_report(backout_rehearsal):
            report = backout_rehearsal(check=False)
            assert report.mode == "copy"
            assert [m.id for m in report.migrations] == ["{VOUCHERS}"]
            assert report.ok

        def test_all(backout_rehearsal):
            report = backout_rehearsal(all_=True)
            assert report.mode == "all"
        """
    )
    result = pytester.runpytest_subprocess("-p", "backout.pytest_plugin")
    result.assert_outcomes(passed=2)


def test_option_adds_a_rehearsal_test(pytester: pytest.Pytester, app: Path) -> None:
    pytester.makepyfile(test_nothing="def test_app():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "backout.pytest_plugin", "-rA")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess(
        "-p", "backout.pytest_plugin", "--backout-rehearse", "-rA"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["PASSED backout::rehearsal"])
    _break_rollback(app)
    result = pytester.runpytest_subprocess("-p", "backout.pytest_plugin", "--backout-rehearse")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*backout rehearsal on sqlite:///*failed:*"])


def test_from_option_copies_another_database(pytester: pytest.Pytester, app: Path) -> None:
    other = app / "staging.db"
    shutil.copy(app / "app.db", other)
    (app / "app.db").unlink()  # the configured database is gone: only --backout-from has data
    pytester.makepyfile(test_nothing="def test_app():\n    assert True\n")
    result = pytester.runpytest_subprocess(
        "-p", "backout.pytest_plugin", "--backout-rehearse", f"--backout-from=sqlite:///{other}"
    )
    result.assert_outcomes(passed=2)


def test_entry_point_is_declared() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert data["project"]["entry-points"]["pytest11"] == {"backout": "backout.pytest_plugin"}
