"""Hooks and the Prisma CLI run through one child-process runner: output masked before it is
cut to its limit, a run over its timeout killed with its process group."""

from __future__ import annotations

import time
from pathlib import Path

from backout.model.urls import parse_url
from backout.project.config import Config
from backout.run.hooks import run_hook

SECRET = "s3cr3t-hunter2-password"


def test_a_hook_output_cut_inside_the_password_shows_none_of_it(tmp_path: Path) -> None:
    url = parse_url(f"postgresql://app:{SECRET}@db.example.com:5432/app")
    # the password straddles the 20,000-character limit counted from the end
    tail = "y" * (20_000 - len(SECRET) // 2)
    command = f"printf '%s' 'x{SECRET}{tail}'"
    config = Config(root=tmp_path, hooks={"smoke": command})
    result = run_hook(config, "smoke", url)
    assert result is not None and result.ok, result
    assert SECRET[-8:] not in result.output  # the password's end, kept by the cut
    assert result.output.endswith(tail)


def test_a_hook_over_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    url = parse_url("sqlite:///x.db", base_dir=tmp_path)
    marker = tmp_path / "child-ran"
    command = f"(sleep 3; touch {marker}) & sleep 30"
    config = Config(root=tmp_path, hooks={"smoke": command}, hook_timeout=0.5)
    result = run_hook(config, "smoke", url)
    assert result is not None and result.timed_out and not result.ok
    assert result.duration_s < 10
    time.sleep(3.5)
    assert not marker.exists()
