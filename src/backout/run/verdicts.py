"""Saved verdicts on scripts, so that ``status`` does not parse every script on every run.

``status`` reports each rollback script ``rollback`` would refuse, and how ``up`` will run each
pending migration: both are what :func:`backout.run.runner.prepare` says of the script, which
splits it with the dialect's parser (on PostgreSQL, importing pglast alone takes ~30 ms, as
long as the rest of ``status``). A verdict depends only on the script and on the code that
judges it, so it is saved under a key of both:

- the script: its text, kind, displayed path and first line (all that its directives and the
  error's file and line come from);
- the code: backout's version and the size and time of every one of its source files (an
  edited checkout counts as other code), the dialect, and the installed files of the parser
  packages the dialect names (:attr:`~backout.dialects.base.Dialect.parser_packages`).

An edited script, another backout or another parser release make another key: the script is
judged again, never answered from a stale verdict. Verdicts live in
``<project>/.backout/cache/verdicts.json``, only those of the last run; a file that cannot be
read or written is ignored (the scripts are judged every time, as before).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import backout
from backout.dialects.base import Dialect
from backout.model.errors import ProjectError
from backout.model.script import Script
from backout.run.runner import prepare

#: the cache file's format: a file of another format is ignored (and replaced)
FORMAT = 1


@dataclass(frozen=True)
class Verdict:
    """What :func:`~backout.run.runner.prepare` says of a script."""

    #: the one-line error ``rollback`` and ``up`` refuse it with (None: it runs)
    error: str | None
    #: how it runs where it is not one plain transaction (see ``PreparedScript.notes``)
    notes: tuple[str, ...] = ()


def judge(dialect: Dialect, script: Script) -> Verdict:
    """Prepare ``script`` as ``rollback`` and ``up`` do, and say what they would."""
    try:
        prepared = prepare(dialect, script)
    except ProjectError as exc:
        return Verdict(error=str(exc))
    return Verdict(error=None, notes=tuple(prepared.notes(dialect)))


def verdicts_file(root: Path) -> Path:
    """Where a project's saved verdicts live."""
    return root / ".backout" / "cache" / "verdicts.json"


def _stamp(path: str) -> str:
    info = os.stat(path)
    return f"{info.st_size}:{info.st_mtime_ns}"


def _source_stamp(folder: str) -> str:
    """The newest modification and the count of the .py files under ``folder``."""
    newest, count = 0, 0
    pending = [folder]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                    pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    newest = max(newest, entry.stat().st_mtime_ns)
                    count += 1
    return f"{count}:{newest}"


def code_identity(dialect: Dialect) -> str:
    """The code a verdict comes from: backout (version and source files), the dialect and
    its parser packages' installed files."""
    return _code_identity(type(dialect))


@functools.cache
def _code_identity(dialect: type[Dialect]) -> str:
    """:func:`code_identity`, found once per process: the code this process runs is what it
    imported (a fleet run judges hundreds of targets; the source folder is scanned once)."""
    parts = [
        backout.__version__,
        _source_stamp(os.path.dirname(backout.__file__ or "")),
        f"{dialect.__module__}.{dialect.__qualname__}",
    ]
    for package in dialect.parser_packages:
        spec = importlib.util.find_spec(package)
        origin = spec.origin if spec is not None else None
        parts.append(f"{package}={origin}:{_stamp(origin)}" if origin else f"{package}=absent")
    return "\0".join(parts)


class VerdictCache:
    """The saved verdicts of one project for one dialect; :meth:`save` keeps this run's."""

    def __init__(self, root: Path, dialect: Dialect) -> None:
        self.path = verdicts_file(root)
        self.dialect = dialect
        self._code = code_identity(dialect)
        self._saved = self._load()
        self._used: dict[str, Verdict] = {}
        #: how many verdicts were judged (not found saved) in this run
        self.judged = 0

    def _load(self) -> dict[str, Any]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, unreadable, or damaged: judge again
            return {}
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            return {}
        verdicts = document.get("verdicts")
        return verdicts if isinstance(verdicts, dict) else {}

    def _key(self, script: Script) -> str:
        digest = hashlib.sha256(self._code.encode())
        for part in (script.kind.value, script.display, str(script.first_line), script.text):
            digest.update(b"\0" + part.encode())
        return digest.hexdigest()

    def verdict(self, script: Script) -> Verdict:
        """The script's verdict: the saved one for this exact script and code, else judged."""
        key = self._key(script)
        found = _verdict_from(self._saved.get(key))
        if found is None:
            found = judge(self.dialect, script)
            self.judged += 1
        self._used[key] = found
        return found

    def save(self) -> None:
        """Keep this run's verdicts (only when they differ from the saved ones)."""
        if set(self._used) == set(self._saved) and not self.judged:
            return
        document = {
            "format": FORMAT,
            "verdicts": {
                key: {"error": v.error, "notes": list(v.notes)} for key, v in self._used.items()
            },
        }
        # per thread too: the targets of a fleet run save the same cache at the same time
        writer = f"{os.getpid()}.{threading.get_ident()}"
        partial = self.path.with_name(f".{self.path.name}.{writer}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(document, sort_keys=True), encoding="utf-8")
            os.replace(partial, self.path)
        except OSError:
            # A read-only project folder: nothing is saved, the next run judges again.
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)


def _verdict_from(saved: object) -> Verdict | None:
    """A saved verdict, or None when there is none or it is not one this code wrote."""
    if not isinstance(saved, dict):
        return None
    error, notes = saved.get("error"), saved.get("notes")
    if not (error is None or isinstance(error, str)) or not isinstance(notes, list):
        return None
    if not all(isinstance(n, str) for n in notes):
        return None
    return Verdict(error=error, notes=tuple(notes))
