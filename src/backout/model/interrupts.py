"""The point of no return: SIGTERM waits while a transaction commits, and after.

The command line turns SIGTERM into :class:`~backout.model.errors.Terminated`, raised wherever
the program is, so that what is in flight is undone (backout.cli.common). Raised just after a
COMMIT had gone through, it would undo nothing, yet the command would say it stopped, and it
could record the change as failed. So the library marks its commits (backout.run.runner's
Executor): from the moment a COMMIT is sent until the next transaction begins, a SIGTERM is
*held*, not raised. The next transaction's start raises it, with nothing open; a command that
has no transaction left finishes, and the command line then ends the process by the signal.

The state is per thread: the signal handler runs in the main thread, whose commits are the ones
it interrupts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from backout.model.errors import Terminated

_STATE = threading.local()


def holding() -> bool:
    """True while a signal must wait: a COMMIT sent, and no transaction begun since."""
    return bool(getattr(_STATE, "holding", False))


def hold() -> None:
    """What the signal handler does instead of raising while :func:`holding`."""
    _STATE.pending = True


def pending() -> bool:
    """True when a held signal is still waiting (the command ends, and the process with it)."""
    return bool(getattr(_STATE, "pending", False))


@contextmanager
def committing() -> Iterator[None]:
    """Around a COMMIT: from here on a signal waits. A COMMIT that fails undid the
    transaction, so a signal held meanwhile is raised at once, as it would have been."""
    _STATE.holding = True
    try:
        yield
    except BaseException:
        _STATE.holding = False
        if pending():
            _STATE.pending = False
            raise Terminated from None
        raise


def beginning() -> None:
    """A transaction is about to begin: a held signal is raised now, with nothing open."""
    _STATE.holding = False
    if pending():
        _STATE.pending = False
        raise Terminated


def reset() -> None:
    """A command starts: nothing held."""
    _STATE.holding = False
    _STATE.pending = False
