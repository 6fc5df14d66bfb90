"""Where the real Prisma corpora are: ``<repo root>/../shared/corpora`` (unmodified, read in place,
never copied into the repository), or ``$BACKOUT_CORPORA``. Under ``CI`` a missing corpus fails
the test instead of skipping it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import REPO

#: the corpora the issue names, and how many migrations each holds
CORPORA = {"trigger.dev": 820, "umami": 19, "hoppscotch": 21}


def corpora_root() -> Path:
    """The folder holding ``<name>/prisma/migrations`` for each corpus."""
    configured = os.environ.get("BACKOUT_CORPORA")
    return Path(configured) if configured else REPO.parent / "shared" / "corpora"


def corpus(name: str) -> Path:
    """The project folder of corpus ``name`` (fails under CI, else skips, when it is missing)."""
    root = corpora_root() / name
    if not (root / "prisma" / "migrations").is_dir():
        message = f"corpus {name} not found at {root} (set BACKOUT_CORPORA)"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: corpus tests must run, not skip)", pytrace=False)
        pytest.skip(message)
    return root


def migration_folders(root: Path) -> list[Path]:
    """The corpus's migration folders, in Prisma's (lexical) order."""
    return sorted(p for p in (root / "prisma" / "migrations").iterdir() if p.is_dir())
