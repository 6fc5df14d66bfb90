"""What every ``--json`` document shares, whichever layer builds it: the format number, the
timestamps, and the envelope of the commands that act (docs/json.md). Light on purpose: the
CLI prints an error document before it has loaded the library."""

from __future__ import annotations

import datetime as dt
from typing import Any

from backout.model.errors import BackoutError

#: the version of the ``--json`` documents' shape; every document carries it as ``"format"``
JSON_FORMAT = 1


def iso(value: dt.datetime | None) -> str | None:
    """UTC ISO 8601 with milliseconds, or None."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(
    command: str,
    outcome: str,
    started: dt.datetime,
    finished: dt.datetime,
    error: BackoutError | None = None,
) -> dict[str, Any]:
    """The fields every action document has."""
    return {
        "format": JSON_FORMAT,
        "command": command,
        "outcome": outcome,
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_s": round((finished - started).total_seconds(), 3),
        "error": error_json(error) if error is not None else None,
    }


def error_json(error: BackoutError) -> dict[str, Any]:
    """An error as the CLI reports it: message, hint, exit code and kind."""
    return {
        "message": str(error),
        "hint": error.hint,
        "exit_code": error.exit_code,
        "kind": type(error).__name__,
    }
