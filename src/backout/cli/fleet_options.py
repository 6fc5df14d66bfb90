"""``--targets FILE``, ``--parallel N``, ``--keep-going``, ``--canary K``: the options that run a
command over many databases (docs/fleet.md), as one decorator the commands share.

Light on purpose, like :mod:`backout.cli.common`: the fleet itself (threads, the targets file,
:mod:`backout.cli.fleet`) is imported only when ``--targets`` is given, so a single-target
command never pays for it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from backout.model.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

_FLEET = "backout.fleet"


def _remember_fleet(ctx: click.Context, param: click.Parameter, value: object) -> None:
    """Keep a fleet option in ``ctx.meta`` (the command function never sees it)."""
    if value is not None and value is not False and param.name is not None:
        ctx.meta.setdefault(_FLEET, {})[param.name] = value


#: the options of a fleet run (docs/fleet.md), on status, up, plan, rollback, check, test, backup
_FLEET_OPTIONS = (
    click.option(
        "--targets",
        metavar="FILE",
        expose_value=False,
        callback=_remember_fleet,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Run on every database or schema FILE lists, not on --url (docs/fleet.md).",
    ),
    click.option(
        "--parallel",
        metavar="N",
        expose_value=False,
        callback=_remember_fleet,
        type=click.IntRange(min=1),
        help="With --targets: run N targets at a time (default 4).",
    ),
    click.option(
        "--keep-going",
        is_flag=True,
        expose_value=False,
        callback=_remember_fleet,
        help="With --targets: go on after a target fails (default: start no new one).",
    ),
    click.option(
        "--canary",
        metavar="K",
        expose_value=False,
        callback=_remember_fleet,
        type=click.IntRange(min=0),
        help="With --targets: run the first K targets alone; the rest only if all succeed.",
    ),
)


def fleet_options(func: F) -> F:
    """``--targets FILE`` and its ``--parallel``, ``--keep-going``, ``--canary``: the command on
    many databases. Without ``--targets`` the command runs as it always does; with it, the
    fleet's module (threads, the targets file) is loaded and runs the command per target.
    Put it below :func:`backout.cli.common.handle_errors`: the command function itself is
    untouched."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        options: dict[str, Any] = ctx.meta.get(_FLEET, {})
        if "targets" not in options:
            if options:
                given = ", ".join(f"--{name.replace('_', '-')}" for name in sorted(options))
                raise UsageError(f"{given} go(es) with --targets FILE")
            return func(*args, **kwargs)
        # loaded only here: a single-target command never pays for threads and the fleet
        from backout.cli import fleet

        return fleet.run(ctx, options)

    for option in reversed(_FLEET_OPTIONS):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]
