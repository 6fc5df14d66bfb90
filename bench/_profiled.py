"""Run the backout command line with its phases timed, for the benchmarks.

    python bench/_profiled.py OUT.json ARGS...     # = backout ARGS..., plus OUT.json

It is the real command (``backout.cli.main``, same imports, same exit codes); it only wraps a
few functions in :class:`_common.Stopwatch` and, when the command ends, writes
``{"total": seconds, "phases": {label: [seconds, calls]}}`` to OUT.json. So every timed run of
a benchmark also says where its own time went, measured at the same moment.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Stopwatch, watch_rollback_phases

STARTED = time.perf_counter()


def main() -> None:
    out = Path(sys.argv[1])
    watch = Stopwatch()
    imports = time.perf_counter()
    watch_rollback_phases(watch)
    from backout.cli import main as cli

    imports = time.perf_counter() - imports

    code: int | str | None = 0
    try:
        cli.main(sys.argv[2:], prog_name="backout")
    except SystemExit as exc:
        code = exc.code
    finally:
        phases = {"imports (backout, up front)": [imports, 1]}
        phases.update({k: [watch.seconds[k], watch.calls[k]] for k in watch.seconds})
        out.write_text(
            json.dumps({"total": time.perf_counter() - STARTED, "phases": phases}, indent=1)
        )
    sys.exit(code)


if __name__ == "__main__":
    main()
