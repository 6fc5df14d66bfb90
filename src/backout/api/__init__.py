"""The library's public verbs: one function per command. They take a Config, return result
objects, and never print or exit; the CLI renders what they return.

``from backout import api; api.status(config)``: this module is the facade. Each verb lives in
a module of :mod:`backout.api.verbs` that imports only its own capability, and is imported
when the verb is first used (PEP 562 ``__getattr__``, the counterpart of the CLI's lazy
group), so ``status`` does not load rollback, simulation, backup, lint... :data:`VERBS` is the
table; tests/unit/test_api_facade.py checks it against the modules and ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backout.api.verbs.backup import backup, backups, restore, uncatalogued_backup_files
    from backout.api.verbs.emergency import emergency
    from backout.api.verbs.fleet import FleetPlan, FleetResult, fleet_plan, fleet_run
    from backout.api.verbs.history import HistoryResult, history
    from backout.api.verbs.lint import lint
    from backout.api.verbs.migrate import Progress, ResolveResult, UpResult, resolve, up
    from backout.api.verbs.recovery import recover
    from backout.api.verbs.rehearsal import check, generate, test
    from backout.api.verbs.rollback import (
        PartialRequest,
        PlanView,
        RollbackResult,
        plan,
        rollback,
    )
    from backout.api.verbs.scaffold import InitResult, NewResult, init, new
    from backout.api.verbs.status import StatusResult, status

#: public name → the module of backout.api.verbs that defines it
VERBS: dict[str, str] = {
    "init": "scaffold",
    "new": "scaffold",
    "InitResult": "scaffold",
    "NewResult": "scaffold",
    "status": "status",
    "StatusResult": "status",
    "up": "migrate",
    "resolve": "migrate",
    "UpResult": "migrate",
    "ResolveResult": "migrate",
    "Progress": "migrate",
    "plan": "rollback",
    "rollback": "rollback",
    "recover": "recovery",
    "PlanView": "rollback",
    "PartialRequest": "rollback",
    "RollbackResult": "rollback",
    "backup": "backup",
    "backups": "backup",
    "uncatalogued_backup_files": "backup",
    "restore": "backup",
    "history": "history",
    "HistoryResult": "history",
    "lint": "lint",
    "emergency": "emergency",
    "fleet_plan": "fleet",
    "fleet_run": "fleet",
    "FleetPlan": "fleet",
    "FleetResult": "fleet",
    "check": "rehearsal",
    "test": "rehearsal",
    "generate": "rehearsal",
}

__all__ = [
    "FleetPlan",
    "FleetResult",
    "HistoryResult",
    "InitResult",
    "NewResult",
    "PartialRequest",
    "PlanView",
    "Progress",
    "ResolveResult",
    "RollbackResult",
    "StatusResult",
    "UpResult",
    "backup",
    "backups",
    "check",
    "emergency",
    "fleet_plan",
    "fleet_run",
    "generate",
    "history",
    "init",
    "lint",
    "new",
    "plan",
    "recover",
    "resolve",
    "restore",
    "rollback",
    "status",
    "test",
    "uncatalogued_backup_files",
    "up",
]


def __getattr__(name: str) -> Any:
    """A verb (or result type), importing the one module of backout.api.verbs that has it."""
    module = VERBS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"backout.api.verbs.{module}"), name)
    globals()[name] = value  # found once: later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
