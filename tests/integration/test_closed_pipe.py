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
