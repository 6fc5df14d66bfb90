"""Run the command line as ``python -m backout``."""

from __future__ import annotations

from backout.cli import main

if __name__ == "__main__":
    main()
