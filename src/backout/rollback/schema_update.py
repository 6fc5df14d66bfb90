"""``rollback --update-schema=pull|git``: the runbook's "revert schema.prisma, run ``prisma
generate``" step, done after the rollback committed.

- ``pull``: ``prisma db pull`` rewrites schema.prisma from the database as it now is;
- ``git``: schema.prisma is restored as it was in the commit before the one that added the
  oldest rolled-back migration (``git log --diff-filter=A -- <its migration.sql>``, then
  ``<commit>^:prisma/schema.prisma``);

then ``prisma generate``. Everything that can make the request impossible (not a Prisma
project, no schema.prisma, no git work tree, no commit to restore from) is found before the
rollback starts, so it is refused with nothing changed. What can only fail afterwards (the CLI
itself) leaves the rollback committed: the result says what state schema.prisma is in and
what to run by hand. Without the Prisma CLI (or git), the steps are left to do by hand, with
the reason.
"""

from __future__ import annotations

import difflib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backout.model.errors import ProjectError, SchemaUpdateFailed, UsageError
from backout.project.prisma_schema import datasource_of, require_schema
from backout.project.vcs import GitRepo, git_available, inside_git_folder, open_repo
from backout.rollback.steps import RollbackPlan
from backout.run.prisma_cli import CommandRun, PrismaCLI, cli_environment, find_prisma_cli, run_cli
from backout.run.workspace import Workspace

PULL, GIT = "pull", "git"
#: where a copy of schema.prisma is kept when git does not hold what the update replaces
COPIES = ".backout/schema-update"


@dataclass(frozen=True)
class GitSource:
    """Where ``git`` mode takes schema.prisma from."""

    #: the oldest migration rolled back, and the commit that added its migration.sql
    migration: str
    added_in: str
    #: the parent of :attr:`added_in`: schema.prisma is taken from this commit
    commit: str
    #: schema.prisma's path as git names it (from the top of the work tree)
    path: str
    content: bytes


@dataclass(frozen=True)
class SchemaUpdatePlan:
    """What ``--update-schema`` will do after the rollback commits."""

    mode: str
    schema: Path
    #: schema.prisma as shown and passed to the CLI (relative to the project folder)
    shown: str
    #: the Prisma CLI, or None and why there is none (:attr:`cli_missing`)
    cli: PrismaCLI | None
    cli_missing: str
    #: the variables the datasource reads its URL from (besides DATABASE_URL)
    env_vars: tuple[str, ...] = ()
    git: GitSource | None = None
    #: git mode without the git program: why schema.prisma cannot be restored here
    git_missing: str = ""
    #: schema.prisma as git's HEAD holds it (None: no git, or not committed); when the file
    #: differs, a copy is kept before it is changed (:data:`COPIES`)
    committed: bytes | None = None
    #: the file differed from :attr:`committed` when planned
    uncommitted: bool = False

    @property
    def prisma(self) -> str:
        """The Prisma CLI as a user types it."""
        return self.cli.shown if self.cli is not None else "npx prisma"

    def generate_command(self) -> str:
        """``prisma generate`` for this schema."""
        return f"{self.prisma} generate --schema {self.shown}"

    def update_command(self) -> str:
        """The command that updates schema.prisma, as a user would run it."""
        if self.mode == PULL:
            names = " and ".join(dict.fromkeys(("DATABASE_URL", *self.env_vars)))
            return (
                f"{self.prisma} db pull --schema {self.shown}  "
                f"(with {names} set to the database's URL)"
            )
        if self.git is None:
            return (
                # ./: git reads <commit>:<path> from the top of the repository otherwise
                f"git show <commit>^:./{self.shown} > {self.shown}  (<commit>: the last line "
                "`git log --follow --first-parent -m --diff-filter=A --format=%H -- <the "
                "oldest rolled-back migration's migration.sql>` prints)"
            )
        return f"git show {self.git.commit[:12]}:{self.git.path} > {self.shown}"

    def describe(self) -> str:
        """One line for the plan: what happens to schema.prisma after COMMIT."""
        if self.mode == PULL and self.cli is None:
            return f"cannot run here ({self.cli_missing}): the steps will be printed to do by hand"
        if self.git_missing:
            return f"cannot run here ({self.git_missing}): the steps will be printed to do by hand"
        if self.git is not None:
            what = (
                f"{self.shown} restored from git commit {self.git.commit[:12]} (the parent of "
                f"{self.git.added_in[:12]}, which added {self.git.migration})"
            )
        else:
            what = f"{self.shown} rewritten from the database by `{self.prisma} db pull`"
        if self.uncommitted:
            when = " if db pull changes it" if self.git is None else ""
            what += (
                f" ({self.shown} has changes git does not hold: a copy will be kept in "
                f"{COPIES}/{when})"
            )
        if self.cli is None:
            return f"after COMMIT, {what}; `prisma generate` cannot run here ({self.cli_missing})"
        return f"after COMMIT, {what}, then `{self.generate_command()}`"


@dataclass
class SchemaUpdateResult:
    """What ``--update-schema`` did after the rollback committed."""

    mode: str
    schema: str
    #: updated, unchanged (the same content), failed, manual (nothing could run here), dry_run
    status: str
    #: ok, failed, not_run
    generate: str = "not_run"
    #: the unified diff of schema.prisma, before → after ("" when unchanged)
    diff: str = ""
    commit: str | None = None
    commands: list[CommandRun] = field(default_factory=list)
    #: why a step was left to do by hand (no Prisma CLI, no git), else None
    reason: str | None = None
    #: what failed, else None
    error: str | None = None
    #: what state schema.prisma is in now, in words
    state: str = ""
    #: what is left to run by hand
    manual: list[str] = field(default_factory=list)
    #: where the previous schema.prisma was copied (it had changes git does not hold), else None
    kept: str | None = None

    @property
    def failed(self) -> bool:
        """The update or ``prisma generate`` failed (the rollback stays committed)."""
        return self.status == "failed" or self.generate == "failed"


@dataclass(frozen=True)
class SchemaUpdateSetup:
    """The checks made before planning: the schema, the CLI, the repository."""

    mode: str
    schema: Path
    shown: str
    cli: PrismaCLI | None
    cli_missing: str
    env_vars: tuple[str, ...]
    repo: GitRepo | None
    git_missing: str
    committed: bytes | None = None


def prepare(ws: Workspace, mode: str, *, partial: bool) -> SchemaUpdateSetup | None:
    """Check that ``--update-schema=mode`` can work in this project (None for ``off``);
    UsageError or ProjectError, before anything happens, when it cannot."""
    if mode == "off":
        return None
    if mode not in (PULL, GIT):
        raise UsageError(f"--update-schema must be one of off, pull, git (got {mode!r})")
    if partial:
        raise UsageError(
            "--update-schema does not apply to a partial rollback: it changes data only, "
            "the schema stays"
        )
    schema = require_schema(ws.project)
    shown = ws.project.rel(schema)
    try:
        datasource = datasource_of(schema.read_text(encoding="utf-8", errors="replace"), shown)
    except OSError as exc:
        raise ProjectError(f"cannot read: {exc.strerror or exc}", path=shown) from exc
    if mode == PULL:
        _check_pull(ws, shown, datasource.literal)
    repo, git_missing = _repository(ws, mode)
    cli, cli_missing = find_prisma_cli(ws.config.root, ws.config.prisma_command)
    committed = _committed(repo if mode == GIT else _optional_repo(ws), schema)
    return SchemaUpdateSetup(
        mode=mode,
        schema=schema,
        shown=shown,
        cli=cli,
        cli_missing=cli_missing,
        env_vars=datasource.env_vars,
        repo=repo,
        git_missing=git_missing,
        committed=committed,
    )


def _optional_repo(ws: Workspace) -> GitRepo | None:
    """The git work tree of the project, if git and one are there (and git can read it)."""
    try:
        return open_repo(ws.config.root) if git_available() else None
    except ProjectError:  # pull does not need git: without it, a copy is kept
        return None


def _committed(repo: GitRepo | None, schema: Path) -> bytes | None:
    """schema.prisma as HEAD holds it, checked out (None: no git, or not committed)."""
    if repo is None:
        return None
    try:
        return repo.show("HEAD", repo.relative(schema))
    except ProjectError:  # outside the work tree: git holds nothing of it
        return None


def _check_pull(ws: Workspace, shown: str, literal: str | None) -> None:
    """Refuse ``pull`` where it would write a wrong schema."""
    if literal is not None:
        raise ProjectError(
            f"--update-schema=pull: the datasource's {literal} is a literal string, not "
            'env("…"): prisma db pull would read the database it names, which may not be '
            "the one rolled back",
            path=shown,
            hint='use env("DATABASE_URL") in the datasource, or --update-schema=git',
        )
    if not ws.dialect.has_schemas:
        raise ProjectError(
            f"--update-schema=pull: on {ws.dialect.display_name} backout's own tables "
            "(backout_events, ...) share the database, so prisma db pull would write them "
            f"into {shown} as models",
            hint="use --update-schema=git",
        )


def _repository(ws: Workspace, mode: str) -> tuple[GitRepo | None, str]:
    """The git work tree for ``git`` mode, or why git cannot be used; refuse outside one."""
    if mode != GIT:
        return None, ""
    root = ws.config.root
    if not git_available():
        if not inside_git_folder(root):
            raise ProjectError(f"--update-schema=git: {root} is not inside a git work tree")
        return None, "git is not on PATH"
    repo = open_repo(root)
    if repo is None:
        raise ProjectError(
            f"--update-schema=git: {root} is not inside a git work tree",
            hint="use --update-schema=pull, or leave --update-schema out",
        )
    return repo, ""


def plan_update(ws: Workspace, setup: SchemaUpdateSetup, plan: RollbackPlan) -> SchemaUpdatePlan:
    """What the update will do for ``plan``; ProjectError (nothing changed) when git has no
    schema.prisma to restore."""
    source = None
    if setup.repo is not None and plan.steps:
        source = _git_source(ws, setup.repo, setup.schema, plan)
    return SchemaUpdatePlan(
        mode=setup.mode,
        schema=setup.schema,
        shown=setup.shown,
        cli=setup.cli,
        cli_missing=setup.cli_missing,
        env_vars=setup.env_vars,
        git=source,
        git_missing=setup.git_missing,
        committed=setup.committed,
        # the file differs from HEAD's, and the update would change it
        uncommitted=_read(setup.schema) not in (setup.committed, source and source.content),
    )


def _git_source(ws: Workspace, repo: GitRepo, schema: Path, plan: RollbackPlan) -> GitSource:
    """schema.prisma at the parent of the first commit that added a rolled-back migration."""
    added, migration = _first_commit(repo, plan)
    parent = repo.parent(added)
    if parent is None:
        if repo.is_shallow():
            raise ProjectError(
                f"--update-schema=git: the repository is a shallow clone whose history stops "
                f"at {added[:12]}, so git has no schema.prisma from before {migration}",
                hint="fetch the history (git fetch --unshallow), or use --update-schema=pull",
            )
        raise ProjectError(
            f"--update-schema=git: {migration} was added by the first commit ({added[:12]}): "
            "there is no earlier schema.prisma",
            hint="use --update-schema=pull",
        )
    if plan.target is not None:
        _check_kept(ws, repo, plan.target, migration, added, parent)
    path = repo.relative(schema)
    content = repo.show(parent, path)
    if content is None:
        raise ProjectError(
            f"--update-schema=git: {path} does not exist in commit {parent[:12]} (the parent "
            f"of {added[:12]}, which added {migration})",
            hint="use --update-schema=pull",
        )
    return GitSource(migration, added, parent, path, content)


def _first_commit(repo: GitRepo, plan: RollbackPlan) -> tuple[str, str]:
    """The earliest commit that added one of the rolled-back migrations (their names' order
    need not be their commits'), and that migration."""
    found: list[tuple[int, str, str]] = []
    for step in plan.steps:
        path = repo.relative(step.migration.up.path)
        added = repo.first_added(path)
        if added is None:
            raise ProjectError(
                f"--update-schema=git: {path} was never committed (git log finds no commit "
                "adding it), so git has no schema.prisma from before it",
                hint="commit the migration, or use --update-schema=pull",
            )
        found.append((repo.depth(added), added, step.migration.id))
    _, added, migration = min(found)
    return added, migration


def _check_kept(
    ws: Workspace, repo: GitRepo, target: str, migration: str, added: str, parent: str
) -> None:
    """Refuse when the commit to restore from lacks ``target``, which stays applied."""
    kept = repo.relative({m.id: m for m in ws.project.migrations}[target].up.path)
    if repo.exists(parent, kept):
        return
    if repo.first_added(kept) == added:
        raise ProjectError(
            f"--update-schema=git: {target} (it stays applied) and {migration} (rolled "
            f"back) were added by the same commit {added[:12]}: no commit holds the schema "
            "between them",
            hint="use --update-schema=pull",
        )
    raise ProjectError(
        f"--update-schema=git: {target} (it stays applied) is not in commit {parent[:12]}, "
        f"the parent of {added[:12]} which added {migration} (rolled back): its "
        "schema.prisma would leave out what that migration made",
        hint="use --update-schema=pull",
    )


# --- after COMMIT ------------------------------------------------------------------------------


def dry_run(plan: SchemaUpdatePlan) -> SchemaUpdateResult:
    """What the update would do, changing nothing (git mode: the exact diff)."""
    result = SchemaUpdateResult(plan.mode, plan.shown, "dry_run", state=plan.describe())
    if plan.git is not None:
        result.commit = plan.git.commit
        result.diff = unified_diff(_read(plan.schema), plan.git.content, plan.shown)
    return result


def run_update(
    ws: Workspace, plan: SchemaUpdatePlan, progress: Callable[[str], None] | None
) -> SchemaUpdateResult:
    """Update schema.prisma, then run ``prisma generate``. Never raises for a failure: the
    rollback is committed, and the result says what state schema.prisma is in. Ctrl-C or
    SIGTERM meanwhile stops the command it runs and raises SchemaUpdateFailed, which says so."""
    before = _read(plan.schema)
    result = SchemaUpdateResult(plan.mode, plan.shown, "manual")
    try:
        _run_update(ws, plan, before, result, progress)
    except KeyboardInterrupt as exc:
        state = (
            _unchanged(plan.shown)
            if _read(plan.schema) == before
            else (f"{plan.shown} was changed before the interruption")
        )
        if result.kept:
            state += f"; your previous {plan.shown} is kept in {result.kept}"
        raise SchemaUpdateFailed(
            f"--update-schema={plan.mode}: {exc or 'interrupted (Ctrl-C)'} while updating "
            f"{plan.shown}; the rollback itself is committed",
            hint=f"{state}. To do by hand: {plan.update_command()}; then {plan.generate_command()}",
        ) from exc
    if result.kept and _read(plan.schema) == before:
        # nothing was replaced: the copy is not needed
        (ws.config.root / result.kept).unlink(missing_ok=True)
        result.kept = None
    if result.kept:
        result.state += f"; your previous {plan.shown} is kept in {result.kept}"
    return result


def _run_update(
    ws: Workspace,
    plan: SchemaUpdatePlan,
    before: bytes,
    result: SchemaUpdateResult,
    progress: Callable[[str], None] | None,
) -> None:
    if plan.git is not None:
        result.commit = plan.git.commit
    if (plan.mode == PULL and plan.cli is None) or plan.git_missing:
        result.reason = plan.cli_missing if plan.mode == PULL else plan.git_missing
        result.state = _unchanged(plan.shown)
        result.manual = [plan.update_command(), plan.generate_command()]
        return
    if before != plan.committed and not _keep_copy(ws, plan, before, result):
        return
    if progress:
        progress(f"updating {plan.shown} ({plan.mode})")
    if plan.mode == PULL:
        _pull(ws, plan, result)
    else:
        _restore(plan, result)
    result.diff = unified_diff(before, _read(plan.schema), plan.shown)
    if result.status == "failed":
        return
    result.status = "updated" if result.diff else "unchanged"
    _generate(ws, plan, result, progress)


def _keep_copy(
    ws: Workspace, plan: SchemaUpdatePlan, before: bytes, result: SchemaUpdateResult
) -> bool:
    """Copy schema.prisma, which has changes git does not hold, to :data:`COPIES` before it
    is replaced (False, and the result failed, when the copy cannot be written)."""
    folder = ws.config.root / COPIES
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            dir=folder, prefix=f"{stamp}-", suffix=f"-{plan.schema.name}"
        )
        with os.fdopen(handle, "wb") as file:
            file.write(before)
    except OSError as exc:
        result.status = "failed"
        result.error = (
            f"cannot keep a copy of {plan.shown} (it has changes git does not hold) in "
            f"{COPIES}: {exc.strerror or exc}"
        )
        result.state = _unchanged(plan.shown)
        result.manual = [plan.update_command(), plan.generate_command()]
        return False
    result.kept = Path(name).relative_to(ws.config.root).as_posix()
    return True


def _pull(ws: Workspace, plan: SchemaUpdatePlan, result: SchemaUpdateResult) -> None:
    """``prisma db pull``: the CLI rewrites schema.prisma (only when it succeeds)."""
    assert plan.cli is not None
    before = _read(plan.schema)
    run = _cli(ws, plan, ["db", "pull", "--schema", plan.shown])
    result.commands.append(run)
    if run.ok:
        return
    result.status = "failed"
    result.error = run.describe()
    changed = _read(plan.schema) != before
    result.state = (
        f"{plan.shown} was rewritten by the failed `prisma db pull` (the diff shows how)"
        if changed
        else _unchanged(plan.shown)
    )
    result.manual = [plan.update_command(), plan.generate_command()]


def _restore(plan: SchemaUpdatePlan, result: SchemaUpdateResult) -> None:
    """Write git's schema.prisma in place of the file (atomically: all or nothing)."""
    assert plan.git is not None
    try:
        write_atomically(plan.schema, plan.git.content)
    except OSError as exc:
        result.status = "failed"
        result.error = f"cannot write {plan.shown}: {exc.strerror or exc}"
        result.state = _unchanged(plan.shown)
        result.manual = [plan.update_command(), plan.generate_command()]


def _generate(
    ws: Workspace,
    plan: SchemaUpdatePlan,
    result: SchemaUpdateResult,
    progress: Callable[[str], None] | None,
) -> None:
    """``prisma generate`` after the update (or the reason it cannot run here)."""
    done = _done(plan, changed=result.status == "updated")
    if plan.cli is None:
        result.reason = plan.cli_missing
        result.state = f"{done}; the Prisma Client was not generated"
        result.manual = [plan.generate_command()]
        return
    if progress:
        progress("prisma generate")
    run = _cli(ws, plan, ["generate", "--schema", plan.shown])
    result.commands.append(run)
    if run.ok:
        result.generate = "ok"
        result.state = f"{done}; the Prisma Client was generated from it"
        return
    result.generate = "failed"
    result.error = run.describe()
    result.state = f"{done}; the Prisma Client was NOT generated (it still matches the old schema)"
    result.manual = [plan.generate_command()]


def _cli(ws: Workspace, plan: SchemaUpdatePlan, args: list[str]) -> CommandRun:
    assert plan.cli is not None
    return run_cli(
        plan.cli,
        args,
        cwd=ws.config.root,
        env=cli_environment(ws.url, plan.env_vars),
        timeout=ws.config.hook_timeout,
        secrets=ws.url.secrets,
    )


def write_atomically(path: Path, content: bytes) -> None:
    """Replace ``path``'s content with ``content`` (a reader sees the old or the new file,
    never part of one); its permission bits stay. A symlink stays: the file it names changes."""
    path = path.resolve()
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def unified_diff(before: bytes, after: bytes, name: str) -> str:
    """``git diff`` style unified diff of a file's two versions ("" when equal); ``git apply
    -R`` takes it back."""
    if before == after:
        return ""
    old = _lines(before.decode("utf-8", "replace"))
    new = _lines(after.decode("utf-8", "replace"))
    lines = []
    for line in difflib.unified_diff(old, new, f"a/{name}", f"b/{name}", lineterm="\n"):
        lines.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(lines)


def _lines(text: str) -> list[str]:
    """``text``'s lines with their ends, as git splits them: at "\\n" only (str.splitlines
    also splits at form feeds, U+2028...)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def failure(result: SchemaUpdateResult) -> SchemaUpdateFailed:
    """The error a failed update ends the command with: what failed, what state schema.prisma
    is in, and what to run by hand."""
    return SchemaUpdateFailed(
        f"--update-schema={result.mode}: {result.error}; the rollback itself is committed",
        hint=f"{result.state}. To do by hand: " + "; then ".join(result.manual),
    )


def _unchanged(shown: str) -> str:
    return f"{shown} is unchanged: it still describes the schema before the rollback"


def _done(plan: SchemaUpdatePlan, *, changed: bool) -> str:
    """What the update did to schema.prisma, in words."""
    if plan.git is not None:
        commit = plan.git.commit[:12]
        if changed:
            return f"{plan.shown} was restored from git commit {commit}"
        return f"{plan.shown} already matched git commit {commit} (unchanged)"
    if changed:
        return f"{plan.shown} was rewritten from the database by `prisma db pull`"
    return f"{plan.shown} already matched the database (`prisma db pull` changed nothing)"


def _read(path: Path) -> bytes:
    """The file's bytes; empty when it cannot be read (gone, unreadable)."""
    try:
        return path.read_bytes()
    except OSError:
        return b""
