"""Fail unless the active environment holds exactly what requirements/dev.lock pins.

Run after `pip install -r requirements/dev.lock` and the project's own install (.ci/run): an
install that moved a pin (a range in pyproject.toml that excludes a locked version) or added a
package the lock lacks (a dependency added to pyproject.toml without regenerating the lock)
fails here. Regenerate the lock as the README's "Developing" section says.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parent.parent / "requirements" / "dev.lock"
# Installed by the venv or the editable install itself, not by the lock.
NOT_LOCKED = {"pip", "setuptools", "backout"}


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        found = re.match(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line)
        if not found:
            continue
        name, version, marker = found.groups()
        if marker is None or Marker(marker).evaluate():
            pins[canonicalize_name(name)] = version
    return pins


def installed() -> dict[str, str]:
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }


def main() -> int:
    pins, have = locked(), installed()
    if not pins:
        print(f"{LOCK}: no pins found", file=sys.stderr)
        return 1
    problems = [
        f"{name}: locked {version}, installed {have.get(name, 'nothing')}"
        for name, version in sorted(pins.items())
        if have.get(name) != version
    ]
    problems += [
        f"{name} {version} is installed but not locked"
        for name, version in sorted(have.items())
        if name not in pins and name not in NOT_LOCKED
    ]
    if problems:
        print("the environment does not match requirements/dev.lock:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"environment matches requirements/dev.lock ({len(pins)} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
