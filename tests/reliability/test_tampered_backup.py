"""Tampered backups are refused on every database, before anything changes (issue 12 item 7).

Lane "tampered backup": for each database, a full backup's bytes are edited (a value changed,
the row count kept; or rows removed and the catalog's row counts edited to match) and the
catalog's size and sha256 recomputed, as someone who can write the backup folder would. Then
``restore`` (over the database, and ``--into`` a new one) must refuse it, exit 2, with one
error line, and leave the database exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import backout.cli.backups  # noqa: F401 - registers backup/restore on the CLI
from tests.helpers import db_state, run, sql, write
from tests.reliability.common import record_result

FILES = {
    "migrations/001_accounts.up.sql": "CREATE TABLE accounts (id integer PRIMARY KEY, "
    "owner varchar(40) NOT NULL, balance integer NOT NULL);\n",
    "migrations/001_accounts.down.sql": "DROP TABLE accounts;\n",
}


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path / 'app.db'}"
    elif request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
        yield "postgresql", str(request.getfixturevalue("pg_url"))
    else:
        request.applymarker(pytest.mark.mysql)
        yield "mysql", str(request.getfixturevalue("mysql_url"))


def _tamper(dialect: str, path: Path, how: str) -> None:
    """Edit the backup file: ``value`` (one balance changed) or ``rows`` (rows removed)."""
    if dialect == "sqlite":
        conn = sqlite3.connect(path)
        if how == "value":
            conn.execute("UPDATE accounts SET balance = 999999 WHERE id = 1")
        else:
            conn.execute("DELETE FROM accounts WHERE id > 10")
        conn.commit()
        conn.close()
        return
    data = path.read_bytes()
    if dialect == "mysql":
        if how == "value":
            edited = data.replace(b"(1,'owner 1',100)", b"(1,'owner 1',999)", 1)
        else:
            edited = re.sub(rb",\s*\((?:1[1-9]|20),'owner (?:1[1-9]|20)',[0-9]+\)", b"", data)
    else:
        # The custom archive: flip bytes in the middle of the data.
        middle = len(data) // 2
        edited = (
            data[:middle]
            + bytes(b ^ 0x55 for b in data[middle : middle + 16])
            + data[middle + 16 :]
        )
    assert edited != data, "the tamper did not change the file"
    path.write_bytes(edited)


def _recompute(folder: Path, backup_id: str, rows: int | None) -> None:
    """What an attacker with the folder does: the catalog's size and sha256 made to match."""
    catalog = folder / "catalog.json"
    document = json.loads(catalog.read_text())
    for record in document["backups"]:
        if record["id"] == backup_id:
            path = folder / record["file"]
            record["size"] = path.stat().st_size
            record["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            if rows is not None:
                for key in record["row_counts"]:
                    if key.endswith("accounts"):
                        record["row_counts"][key] = rows
    catalog.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


@pytest.mark.parametrize("how", ["value", "rows"])
def test_a_tampered_backup_with_a_recomputed_checksum_is_refused(
    target: tuple[str, str], tmp_path: Path, how: str
) -> None:
    dialect, url = target
    project = write(tmp_path / "p", FILES)
    write(project, {"backout.toml": 'layout = "plain"\n'})
    assert run(["up"], project=project, url=url).exit_code == 0
    values = ", ".join(f"({i}, 'owner {i}', {i * 100})" for i in range(1, 21))
    sql(url, f"INSERT INTO accounts (id, owner, balance) VALUES {values}")
    made = run(["backup", "--full"], project=project, url=url)
    assert made.exit_code == 0, made.output
    backup_id = made.output.split("Backup ", 1)[1].split(" ", 1)[0]
    sql(url, "UPDATE accounts SET balance = balance + 1")
    before = db_state(url)
    folder = project / ".backout" / "backups"
    record = next(
        r
        for r in json.loads((folder / "catalog.json").read_text())["backups"]
        if r["id"] == backup_id
    )
    _tamper(dialect, folder / record["file"], how)
    _recompute(folder, backup_id, 10 if how == "rows" else None)

    refused = run(["restore", backup_id, "--yes"], project=project, url=url)
    assert refused.exit_code == 2, refused.output
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, refused.stderr
    assert "was changed after it was taken" in errors[0] or "damaged" in errors[0], errors[0]
    after = db_state(url)
    assert (after.schema, after.data) == (before.schema, before.data)

    into = _into_url(dialect, url, tmp_path)
    refused_into = run(["restore", backup_id, "--into", into], project=project, url=url)
    assert refused_into.exit_code == 2, refused_into.output
    record_result(
        "tampered_backup",
        {f"{dialect}_{how}": {"refused": True, "message": errors[0][:160]}},
    )


def _into_url(dialect: str, url: str, tmp_path: Path) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'into.db'}"
    # A name that is never created: the refusal comes before.
    return url.rsplit("/", 1)[0] + f"/backout_into_{uuid.uuid4().hex[:8]}"


UNDO_FILES = {
    "migrations/001_accounts.up.sql": FILES["migrations/001_accounts.up.sql"],
    "migrations/001_accounts.down.sql": FILES["migrations/001_accounts.down.sql"],
    "migrations/002_extra.up.sql": "ALTER TABLE accounts ADD COLUMN extra integer NULL;\n",
    # drops a column holding data (no inverse), then fails: the undo goes by the backup
    "migrations/002_extra.down.sql": "-- backout:risk HIGH\n"
    "ALTER TABLE accounts DROP COLUMN extra;\nALTER TABLE nope ADD COLUMN x integer;\n",
}


@pytest.mark.mysql
def test_undo_partial_refuses_the_rollbacks_backup_when_it_was_tampered(
    tmp_path: Path, mysql_url: str
) -> None:
    """The backup a failed (journaled) rollback took is what ``--undo-partial`` restores: the
    sha256 the database recorded for it must be checked there too, not only for a rollback
    that succeeded."""
    project = write(tmp_path / "p", UNDO_FILES)
    write(project, {"backout.toml": 'layout = "plain"\n'})
    assert run(["up"], project=project, url=mysql_url).exit_code == 0
    values = ", ".join(f"({i}, 'owner {i}', {i * 100}, {i})" for i in range(1, 21))
    sql(mysql_url, f"INSERT INTO accounts (id, owner, balance, extra) VALUES {values}")
    failed = run(
        ["rollback", "--yes", "--no-simulate", "--backup", "full"], project=project, url=mysql_url
    )
    assert failed.exit_code == 4, failed.output + failed.stderr
    before = db_state(mysql_url)
    folder = project / ".backout" / "backups"
    records = json.loads((folder / "catalog.json").read_text())["backups"]
    assert len(records) == 1, records
    data = (folder / records[0]["file"]).read_bytes()
    edited = data.replace(b"(1,'owner 1',100,", b"(1,'owner 1',999,", 1)
    assert edited != data
    (folder / records[0]["file"]).write_bytes(edited)
    _recompute(folder, records[0]["id"], None)

    refused = run(["rollback", "--undo-partial", "--yes"], project=project, url=mysql_url)
    assert refused.exit_code == 2, refused.output + refused.stderr
    assert "was changed after it was taken" in refused.stderr, refused.stderr
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (before.schema, before.data)
    assert sql(mysql_url, "SELECT balance FROM accounts WHERE id = 1") != [(999,)]


def test_a_backup_the_history_holds_no_sha256_for_is_restored_saying_so(tmp_path: Path) -> None:
    """A backup an older backout took (no sha256 in the history) cannot be checked against the
    history: the restore goes on (it may be the only one), and says the check was by its
    catalog only instead of implying more."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    project = write(tmp_path / "p", FILES)
    write(project, {"backout.toml": 'layout = "plain"\n'})
    assert run(["up"], project=project, url=url).exit_code == 0
    sql(url, "INSERT INTO accounts (id, owner, balance) VALUES (1, 'a', 1)")
    made = run(["backup", "--full"], project=project, url=url)
    assert made.exit_code == 0, made.output
    backup_id = made.output.split("Backup ", 1)[1].split(" ", 1)[0]
    recorded = run(["restore", backup_id, "--yes"], project=project, url=url)
    assert recorded.exit_code == 0, recorded.output
    assert "holds no sha256" not in recorded.stderr
    # as an older backout left it: no sha256 in the backup event
    sql(url, f"UPDATE backout_events SET details = '{{}}' WHERE backup = '{backup_id}'")
    restored = run(["restore", backup_id, "--yes"], project=project, url=url)
    assert restored.exit_code == 0, restored.output
    flat = " ".join(restored.stderr.split())
    assert "history holds no sha256 for it" in flat, restored.stderr
    assert "checked against its catalog entry only" in flat


def test_a_restore_into_a_new_database_after_the_old_one_is_gone_says_how_it_checked(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    project = write(tmp_path / "p", FILES)
    write(project, {"backout.toml": 'layout = "plain"\n'})
    assert run(["up"], project=project, url=url).exit_code == 0
    made = run(["backup", "--full"], project=project, url=url)
    assert made.exit_code == 0, made.output
    backup_id = made.output.split("Backup ", 1)[1].split(" ", 1)[0]
    (tmp_path / "app.db").unlink()
    into = f"sqlite:///{tmp_path / 'new.db'}"
    restored = run(["restore", backup_id, "--into", into], project=project, url=url)
    assert restored.exit_code == 0, restored.output + restored.stderr
    flat = " ".join(restored.stderr.split())
    assert "checked against its catalog entry only" in flat, restored.stderr
