"""``lint``: static checks over the migration folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from backout.lint import linter as _lint
from backout.project.config import Config

if TYPE_CHECKING:
    from backout.lint.linter import LintReport


def lint(
    config: Config,
    paths: Sequence[Path] = (),
    *,
    check_database: bool | None = None,
    ignore: Sequence[str] = (),
    squawk: bool = True,
) -> LintReport:
    """Static checks over the migration folder; every problem is a finding (docs/lint/)."""
    return _lint.lint(config, paths, check_database=check_database, ignore=ignore, squawk=squawk)
