"""``init`` and ``new``: write backout.toml, scaffold migrations."""

from __future__ import annotations

from backout.project import scaffold
from backout.project.config import Config

InitResult = scaffold.InitResult
NewResult = scaffold.NewResult


def init(config: Config, *, layout: str | None = None, force: bool = False) -> InitResult:
    """Write backout.toml, detecting the project's layout unless ``layout`` is given."""
    return scaffold.init(config, layout=layout, force=force)


def new(config: Config, name: str) -> NewResult:
    """Scaffold a forward migration and its rollback (or only the rollback of an existing id)."""
    return scaffold.new(config, name)
