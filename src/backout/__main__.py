"""The command line's entry point: ``backout`` (the installed script) and ``python -m backout``.

Starting ``backout`` builds tens of thousands of objects that live until it exits: modules,
classes, functions, click's and the driver's. The garbage collector would walk them again and
again while they load, and once more at exit, and free none of them: on ``backout status`` that
was a third of its own time. So the collector is paused from here until the command's code is
loaded (:func:`backout.cli.common.end_start_pause` freezes what was built and starts collecting
again), and at exit what is left is frozen too: the process is ending, the operating system
frees it. Nothing that holds data waits for a collection: files and connections are closed by
the code that opened them, and standard output is flushed by the command line before this.
"""

from __future__ import annotations

import gc

gc.disable()

# after the pause: that is the point of it
from backout.cli import common  # noqa: E402
from backout.cli import main as command_line  # noqa: E402

common.START_PAUSE["paused"] = True


def main() -> None:
    """Run the command line; at exit, no last collection over what is about to be freed."""
    try:
        command_line()
    finally:
        common.end_start_pause()  # a run that stopped before its command loaded
        gc.freeze()


if __name__ == "__main__":
    main()
