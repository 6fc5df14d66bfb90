"""The secrets scan: no password in anything the suite produced. Runs last (file name order).

Every PostgreSQL URL of the suite carries :data:`PASSWORD` (trust authentication ignores it, so
the connections work), and the bad-URL cases carry :data:`PASSWORD_SPECIAL` too. This test
reads, byte for byte, every file under:

- the artifacts folder: every stdout and stderr of every backout run (in-process and
  subprocess), and every history row of every PostgreSQL database the suite used (saved just
  before the database was dropped);
- pytest's temporary folder of this session: every project, with its backups, their schema
  snapshots, the catalog, lock files, incident reports; the crash lanes' logs and results;
- the results folder (what docs/reliability.md is made from);
- the PostgreSQL server's log, when it is readable here;

and every file *name* in them, for the passwords, raw and percent-encoded. Run alone (``-k``),
it scans whatever the session produced before it.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.reliability.common import PASSWORD, PASSWORD_SPECIAL, Artifacts, record_result

NEEDLES = sorted(
    {
        p.encode()
        for p in (PASSWORD, PASSWORD_SPECIAL, quote(PASSWORD_SPECIAL, safe=""), quote(PASSWORD))
    }
)


def _roots(artifacts: Artifacts, basetemp: Path) -> list[Path]:
    roots = [artifacts.root, basetemp, Path(os.environ["BACKOUT_RELIABILITY_RESULTS"])]
    return [r for r in roots if r.exists()]


def _server_logs() -> list[Path]:
    return [Path(p) for p in glob.glob("/var/log/postgresql/*.log") if os.access(p, os.R_OK)]


def test_no_password_in_any_artifact(
    artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Grep every artifact of the session (and the server log) for the suite's passwords."""
    files: list[Path] = []
    seen: set[Path] = set()
    for root in _roots(artifacts, tmp_path_factory.getbasetemp()):
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.resolve() not in seen:
                seen.add(path.resolve())
                files.append(path)
    found: list[str] = []
    size = 0
    for path in files:
        if any(n.decode() in str(path) for n in NEEDLES):
            found.append(f"file name: {path}")
        data = path.read_bytes()
        size += len(data)
        for needle in NEEDLES:
            if needle in data:
                at = data.index(needle)
                context = data[max(0, at - 80) : at + 20].decode("utf-8", "replace")
                found.append(f"{path}: ...{context}...")
    logs = _server_logs()
    for log in logs:
        data = log.read_bytes()
        size += len(data)
        found.extend(f"{log}: server log" for n in NEEDLES if n in data)
    kinds: dict[str, int] = {}
    for path in files:
        kind = path.suffix or path.name
        kinds[kind] = kinds.get(kind, 0) + 1
    record_result(
        "secrets",
        {
            "files_scanned": len(files),
            "server_logs_scanned": len(logs),
            "bytes_scanned": size,
            "by_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:15]),
            "backup_files": sum(1 for p in files if p.suffix in {".dump", ".sqlite3"}),
            "incident_reports": sum(1 for p in files if p.parent.name == "incidents"),
            "history_dumps": sum(1 for p in files if p.name.endswith(".tsv")),
            "found": found[:20],
        },
    )
    assert len(files) > 0
    assert not found, "\n".join(found[:20])
