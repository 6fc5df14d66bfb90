"""Database backends. :func:`dialect_for` maps a parsed URL to its :class:`Dialect`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from backout.model.errors import ConfigError
from backout.model.urls import DatabaseURL

if TYPE_CHECKING:
    # type-only: importing a light dialects module (scratch_names) must not load base
    from backout.dialects.base import Dialect

#: dialect name → (module, class); modules are imported on first use
_DIALECTS: dict[str, tuple[str, str]] = {
    "postgresql": ("backout.dialects.postgres.dialect", "PostgresDialect"),
    "sqlite": ("backout.dialects.sqlite.dialect", "SqliteDialect"),
    "mysql": ("backout.dialects.mysql.dialect", "MysqlDialect"),
}


def dialect_for(url: DatabaseURL) -> Dialect:
    """The dialect that serves ``url`` (drivers are imported only when connecting)."""
    entry = _DIALECTS.get(url.dialect)
    if entry is None:
        raise ConfigError(f"no dialect for {url.masked()}")
    module_name, class_name = entry
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ConfigError(
            f"{url.dialect} support is not available in this version ({url.masked()})"
        ) from None
    dialect: Dialect = getattr(module, class_name)()
    return dialect
