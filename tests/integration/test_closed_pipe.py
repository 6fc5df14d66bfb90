"""Issue 13, item 12: ``backout plan | head -3`` ends quietly, as Unix tools do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import run, write

PROJECT = {
    "backout.toml": 'layout = "plain"\n',
    **{
        f"migrations/{n:03d}_t{n}.up.sql": f"CREATE TABLE t{n} (id INTEGER PRIMARY KEY);\n"
        for n in range(1, 41)
    },
    **{
        f"migrations/{n:03d}_t{n}.down.sql": f"-- backout:risk LOW\nDROP TABLE t{n};\n"
        for n in range(1, 41)
    },
}


def test_a_reader_closing_the_pipe_ends_it_quietly(tmp_path: Path, sqlite_url: str) -> None:
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    for args in (["plan", "--steps", "40"], ["status"], ["history"]):
        reader, writer = os.pipe()
        os.close(reader)  # the reader is gone before backout writes its first line
        env = {**os.environ, "DATABASE_URL": "", "NO_COLOR": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "backout", *args, "-C", str(root), "--url", sqlite_url],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        os.close(writer)
        assert done.stderr == "", f"{args}: {done.stderr}"
        assert done.returncode == 141, args


EMERGENCY = (sys.executable, "-m", "backout", "emergency", "--to", "001", "--yes")


def test_an_emergency_goes_on_when_its_output_is_closed(tmp_path: Path, sqlite_url: str) -> None:
    """``backout emergency --yes | head`` (or a tee that died): once stop_app has run, the
    procedure must not stop half-way because nobody reads its progress, which would leave the
    application stopped and the database not rolled back."""
    import time

    flag = tmp_path / "stopped"
    root = write(
        tmp_path / "p",
        {
            **PROJECT,
            "backout.toml": 'layout = "plain"\n[hooks]\n'
            f'stop_app = "touch {flag}; sleep 1"\ndeploy_previous = "true"\n',
        },
    )
    assert run(["up", "--to", "002"], project=root, url=sqlite_url).exit_code == 0
    reader, writer = os.pipe()
    env = {**os.environ, "DATABASE_URL": "", "NO_COLOR": "1"}
    process = subprocess.Popen(
        [*EMERGENCY, "-C", str(root), "--url", sqlite_url],
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    os.close(writer)
    deadline = time.monotonic() + 60
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.close(reader)  # the reader goes away while stop_app runs
    _, stderr = process.communicate(timeout=120)
    assert flag.exists()
    state = run(["status", "--json"], project=root, url=sqlite_url)
    import json

    states = [m["state"] for m in json.loads(state.stdout)["migrations"][:2]]
    assert states == ["applied", "rolled_back"], stderr
    assert process.returncode == 141, stderr
