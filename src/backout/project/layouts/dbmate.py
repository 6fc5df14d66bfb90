"""dbmate layout: one file per migration with ``-- migrate:up`` and ``-- migrate:down`` sections.

- ``<version>_<name>.sql`` (version all digits), in ``db/migrations`` by default;
- ``-- migrate:up transaction:false`` means the section runs outside a transaction;
- partial rollbacks: ``<version>_<name>_rollback.<part>.sql`` beside the migration;
- history: backout's own tables, keyed by version.

The forward checksum covers the ``up`` section only, so fixing a rollback section is not
reported as an edit of an applied migration.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from pathlib import Path

from backout.model.errors import ProjectError
from backout.model.script import (
    Script,
    ScriptKind,
    decode_sql,
    line_ending_checksums,
    load_script,
    make_script,
    read_bytes,
    scan_directives,
    sha256_hex,
)
from backout.project.layouts.common import (
    ROLLBACK_FILE,
    RollbackIndex,
    check_readable,
    check_unique_versions,
    version_order,
)
from backout.project.migration import Migration, Project, display_path

MIGRATION_FILE = re.compile(r"^(?P<version>\d+)(?:_(?P<name>[^.]*))?\.sql$")
MARKER = re.compile(r"^\s*--\s*migrate:(?P<dir>up|down)\b(?P<options>.*)$", re.IGNORECASE)


def looks_like_dbmate(path: Path) -> bool:
    """True when the file has a ``-- migrate:up`` marker (cheap check for layout detection)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(65536)
    except OSError:
        return False
    return b"migrate:up" in head


def load(root: Path, folder: Path, rollback_dir: Path | None) -> Project:
    """Read a dbmate project whose migrations are in ``folder``."""

    def rel(path: Path) -> str:
        return display_path(root, path)

    index = RollbackIndex()
    migrations: list[Migration] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        check_readable(entry, rel(entry))
        if not entry.is_file() or entry.suffix != ".sql":
            continue
        rollback = ROLLBACK_FILE.match(entry.name)
        if rollback is not None and rollback["part"]:
            index.add(
                rollback["id"], load_script(entry, rel(entry), ScriptKind.PARTIAL), rollback["part"]
            )
            continue
        match = MIGRATION_FILE.match(entry.name)
        if match is None:
            raise ProjectError(
                "unrecognised SQL file (expected <version>_<name>.sql with -- migrate:up)",
                path=rel(entry),
            )
        up, down = _sections(entry, rel(entry))
        version = match["version"]
        name = match["name"] or ""
        migration_id = entry.stem
        if down is not None:
            index.add(migration_id, down, None)
        migrations.append(
            Migration(id=migration_id, version=version, name=name, key=version, up=up, down=None)
        )
    if rollback_dir is not None:
        if not rollback_dir.is_dir():
            raise ProjectError("rollback folder does not exist", path=rel(rollback_dir))
        index.scan_rollback_folder(rollback_dir, rel(rollback_dir))
    migrations.sort(key=version_order)
    check_unique_versions(migrations)
    return Project(
        root=root,
        layout="dbmate",
        migrations_dir=folder,
        rollback_dir=rollback_dir,
        migrations=tuple(index.attach(migrations)),
        ledger="backout",
    )


def _sections(path: Path, display: str) -> tuple[Script, Script | None]:
    text = decode_sql(read_bytes(path, display), display)
    # Lines end at "\n" only (as the splitters count them); str.splitlines would also break at
    # form feeds and other separators and shift every line number after them.
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)
    markers: list[tuple[int, str, str]] = []
    for number, line in enumerate(lines):
        found = MARKER.match(line)
        if found:
            markers.append((number, found["dir"].lower(), found["options"].strip()))
    ups = [number for number, d, _ in markers if d == "up"]
    downs = [number for number, d, _ in markers if d == "down"]
    if not ups:
        raise ProjectError("expected exactly one '-- migrate:up' marker", path=display)
    if len(ups) > 1:
        raise ProjectError("'-- migrate:up' appears more than once", path=display, line=ups[1] + 1)
    if len(downs) > 1:
        raise ProjectError(
            "'-- migrate:down' appears more than once", path=display, line=downs[1] + 1
        )
    if markers[0][1] != "up":
        raise ProjectError(
            "'-- migrate:down' comes before '-- migrate:up'", path=display, line=downs[0] + 1
        )
    preamble = "".join(lines[: markers[0][0]])
    stray = scan_directives(preamble, display)
    if stray:
        raise ProjectError(
            "directive before '-- migrate:up': put it inside the section it belongs to",
            path=display,
            line=stray[0].line,
        )
    scripts: dict[str, Script] = {}
    bounds = [*markers, (len(lines), "", "")]
    for (start, direction, options), (end, _, _) in itertools.pairwise(bounds):
        body = "".join(lines[start + 1 : end])
        data = body.encode("utf-8")
        kind = ScriptKind.FORWARD if direction == "up" else ScriptKind.ROLLBACK
        script = make_script(
            path, display, kind, body, first_line=start + 2, checksum=sha256_hex(data)
        )
        script = replace(script, equivalent_checksums=line_ending_checksums(data))
        opts = _options(options, display, start + 1)
        if opts.get("transaction") == "false" and script.directives.transaction:
            script = _without_transaction(script)
        scripts[direction] = script
    return scripts["up"], scripts.get("down")


def _options(text: str, display: str, line: int) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in text.split():
        key, sep, value = item.partition(":")
        if not sep or key != "transaction" or value not in {"true", "false"}:
            raise ProjectError(
                f"unknown dbmate option {item!r} (known: transaction:true|false)",
                path=display,
                line=line,
            )
        options[key] = value
    return options


def _without_transaction(script: Script) -> Script:
    return replace(script, directives=replace(script.directives, transaction=False))
