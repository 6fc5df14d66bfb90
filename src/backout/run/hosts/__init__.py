"""The host histories, one module per host tool; :func:`host_history_for` picks the layout's.

A new host tool adds its module here and one entry to :data:`FACTORIES` (keyed by layout name).
"""

from __future__ import annotations

from collections.abc import Callable

from backout.run.host_history import HostHistory, HostSetup
from backout.run.hosts.dbmate import DbmateHistory
from backout.run.hosts.flyway import FlywayHistory
from backout.run.hosts.golang_migrate import GolangMigrateHistory

#: layout name -> constructor of its host history (the Prisma layout has none: its ledger is
#: Prisma's own table)
FACTORIES: dict[str, Callable[[HostSetup], HostHistory]] = {
    "dbmate": DbmateHistory,
    "plain": GolangMigrateHistory,
    "flyway": FlywayHistory,
}


def host_history_for(setup: HostSetup) -> HostHistory | None:
    """The host history of ``setup.project``'s layout, or None when it keeps none."""
    factory = FACTORIES.get(setup.project.layout)
    return factory(setup) if factory is not None else None
