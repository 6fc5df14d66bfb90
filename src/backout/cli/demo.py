"""``backout demo``: a guided tour on SQLite in a temporary folder, no server needed.

Each step is printed as the command a user would type, then run through the real CLI.
"""

from __future__ import annotations

import shutil
import tempfile
from importlib import resources
from pathlib import Path

import click

from backout.cli import main
from backout.cli.common import handle_errors
from backout.demo.sampledata import fill
from backout.model.errors import ConfigError, UsageError

EXAMPLE = "vouchers-sqlite"
ROLLED_BACK = "20240315000000_add_voucher_system"


def example_folder(name: str) -> Path:
    """An example project: shipped inside the package, or in the source tree (editable)."""
    packaged = Path(str(resources.files("backout") / "examples" / name))
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[3] / "examples" / name
    if source.is_dir():
        return source

    raise ConfigError(f"the {name} example is not installed with this copy of backout")


def _step(title: str, args: list[str], *, expect: int = 0) -> None:
    click.echo()
    click.secho(f"# {title}", fg="cyan", bold=True)
    click.secho("$ backout " + " ".join(args), bold=True)
    try:
        main.main(args, prog_name="backout", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if code != expect:
            raise


@main.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to build the demo project (default: a new temporary folder).",
)
@click.option("--keep", is_flag=True, help="Keep the temporary folder afterwards.")
@click.option("--scale", default=300, show_default=True, help="Users to generate.")
@handle_errors
def demo(folder: Path | None, keep: bool, scale: int) -> None:
    """A guided tour on SQLite: up, status, plan, rollback with backup, history, restore."""
    base = folder or Path(tempfile.mkdtemp(prefix="backout-demo-"))
    project = base / EXAMPLE
    if project.exists():
        raise UsageError(f"{project} already exists: choose another --dir")
    shutil.copytree(example_folder(EXAMPLE), project)
    db = project / "prisma" / "dev.db"
    (project / ".env").write_text('DATABASE_URL="file:./dev.db"\n', encoding="utf-8")
    c = ["-C", str(project)]
    click.secho("backout demo: the seeds' voucher system on SQLite", bold=True)
    click.echo(f"Project: {project} (a copy of examples/{EXAMPLE}); database {db}, from .env")
    try:
        _step("Every migration, its rollback scripts and their declared risk", ["status", *c])
        _step("Apply the migrations (each in one transaction, under a lock)", ["up", *c])
        counts = fill(EXAMPLE, f"sqlite:///{db}", scale=scale)
        click.echo()
        click.secho("# Fill the database with sample data", fg="cyan", bold=True)
        click.secho(
            f"$ python -m backout.demo.sampledata {EXAMPLE} sqlite:///{db} --scale {scale}",
            bold=True,
        )
        click.echo(", ".join(f"{table}: {rows}" for table, rows in counts.items()))
        _step("What would rolling back the voucher system do? (changes nothing)", ["plan", *c])
        _step(
            "Roll it back: scoped backup, lock, one transaction, verify, history",
            ["rollback", "--yes", *c],
        )
        _step("Where things stand now", ["status", *c])
        _step("The audit log", ["history", *c])
        _step("The backup catalog", ["backups", *c])
        _step(
            "Changed our mind: restore the backup taken before the rollback",
            ["restore", "latest", "--yes", *c],
        )
        _step("Back where we started, data included", ["status", *c])
    finally:
        if folder is None and not keep:
            shutil.rmtree(base, ignore_errors=True)
            click.echo(f"\n(removed {base}; pass --keep to keep it)")
        else:
            click.echo(f"\nThe demo project is in {project}")
