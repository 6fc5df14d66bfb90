"""Reading a project's files as version control (git) has them: which commit added a path, a
file's content at a commit. Read-only: nothing here changes the repository or the work tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from backout.model.errors import ProjectError

_TIMEOUT = 60.0


@dataclass(frozen=True)
class GitRepo:
    """A git work tree, found from a folder inside it."""

    top: Path

    def _git(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        try:
            return subprocess.run(
                ["git", "-C", str(self.top), *args],
                capture_output=True,
                env=env,
                check=False,
                timeout=_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProjectError(f"git {' '.join(args)} failed: {exc}") from exc

    def relative(self, path: Path) -> str:
        """``path`` as git names it: relative to the top of the work tree, with ``/``."""
        try:
            return path.resolve().relative_to(self.top).as_posix()
        except ValueError as exc:
            raise ProjectError(f"{path} is outside the git work tree {self.top}") from exc

    def first_added(self, path: str) -> str | None:
        """The oldest commit of HEAD's first-parent history that added ``path``, following
        renames (None: never committed). A migration merged from a branch is added by the
        merge: its first parent is the branch it was merged into, as it was before."""
        done = self._git(
            "log", "--follow", "--first-parent", "-m", "--diff-filter=A", "--format=%H", "--", path
        )
        if done.returncode != 0:
            raise ProjectError(f"git log failed: {_stderr(done)}")
        commits = done.stdout.decode().split()
        return commits[-1] if commits else None

    def parent(self, commit: str) -> str | None:
        """The (first) parent of ``commit``; None for a root commit."""
        done = self._git("rev-parse", "--verify", "--quiet", f"{commit}^")
        if done.returncode != 0:
            return None
        return done.stdout.decode().strip() or None

    def show(self, commit: str, path: str) -> bytes | None:
        """The bytes of ``path`` at ``commit`` as a checkout writes them (line endings,
        filters of .gitattributes and core.autocrlf); None: no such file there."""
        done = self._git("cat-file", "--filters", f"{commit}:{path}")
        return done.stdout if done.returncode == 0 else None

    def depth(self, commit: str) -> int:
        """How many commits ``commit``'s history holds (an ancestor has fewer)."""
        done = self._git("rev-list", "--count", commit)
        if done.returncode != 0:
            raise ProjectError(f"git rev-list failed: {_stderr(done)}")
        return int(done.stdout.decode().strip())

    def is_shallow(self) -> bool:
        """True for a shallow clone (``git clone --depth``): its history is cut off."""
        done = self._git("rev-parse", "--is-shallow-repository")
        return done.stdout.decode().strip() == "true"

    def exists(self, commit: str, path: str) -> bool:
        """True when ``path`` is a file of ``commit``'s tree."""
        return self._git("cat-file", "-e", f"{commit}:{path}").returncode == 0


def git_available() -> bool:
    """True when the ``git`` program is on PATH."""
    return shutil.which("git") is not None


def inside_git_folder(folder: Path) -> bool:
    """True when ``folder`` or a parent holds ``.git`` (a work tree, as far as can be told
    without the git program)."""
    folder = folder.resolve()
    return any((candidate / ".git").exists() for candidate in (folder, *folder.parents))


def open_repo(folder: Path) -> GitRepo | None:
    """The git work tree ``folder`` is in (None: it is in none); ProjectError when git fails
    for another reason (its "dubious ownership" check, a broken configuration). Needs
    :func:`git_available`."""
    probe = GitRepo(folder.resolve())
    done = probe._git("rev-parse", "--show-toplevel")
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        if not said or "not a git repository" in said[0]:
            return None
        raise ProjectError(
            f"git cannot read the repository at {folder}: {said[0].removeprefix('fatal: ')}",
            hint=" ".join(line.strip() for line in said[1:]) or None,
        )
    return GitRepo(Path(done.stdout.decode().strip()).resolve())


def _stderr(done: subprocess.CompletedProcess[bytes]) -> str:
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"
