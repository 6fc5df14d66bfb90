"""A backup folder others may open is tightened to 0700 before a backup goes in (issue 12)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import backout.cli.backups  # noqa: F401 - registers backup/backups/restore on the CLI
from tests.helpers import copy_example, run


@pytest.mark.parametrize("mode", [0o777, 0o755, 0o770])
def test_an_open_backup_folder_is_tightened_with_a_notice(
    tmp_path: Path, sqlite_url: str, mode: int
) -> None:
    project = copy_example("vouchers-sqlite", tmp_path)
    assert run(["up"], project=project, url=sqlite_url).exit_code == 0
    folder = project / ".backout" / "backups"
    folder.mkdir(parents=True)
    os.chmod(folder, mode)
    result = run(["backup", "--full"], project=project, url=sqlite_url)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert f"was mode {mode:04o}" in result.output
    assert "tightened to 0700" in result.output
    files = [p for p in folder.iterdir() if not p.name.startswith(".")]
    assert files
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}


def test_a_private_backup_folder_is_used_without_a_notice(tmp_path: Path, sqlite_url: str) -> None:
    project = copy_example("vouchers-sqlite", tmp_path)
    assert run(["up"], project=project, url=sqlite_url).exit_code == 0
    result = run(["backup", "--full"], project=project, url=sqlite_url)
    assert result.exit_code == 0, result.output
    assert "tightened" not in result.output
    assert stat.S_IMODE((project / ".backout" / "backups").stat().st_mode) == 0o700
