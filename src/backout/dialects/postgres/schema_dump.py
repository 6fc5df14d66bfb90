"""``pg_dump --schema-only``, normalised: the second oracle of "the schema is exactly as before".

backout's catalog snapshot is the first oracle; pg_dump is independent of it and sees what the
snapshot does not model (grants, storage parameters of columns, statistics targets, rules...).
Normalisation drops what differs between two dumps of the same schema: comments (they name
the dump's time and tools), the ``\\restrict`` lines pg_dump 15.18+ writes with a random key,
``SET`` lines and blank lines. backout's history schema and ``_prisma_migrations`` are left out:
a rollback writes to them by design. With ``ignore_column_order`` the column lines of each
``CREATE TABLE`` are sorted, so only column order is relaxed.
"""

from __future__ import annotations

from backout.dialects import client_programs
from backout.dialects.postgres import tools as pg_tools
from backout.dialects.postgres.catalog import dump_scope_args
from backout.model.errors import DatabaseError
from backout.model.urls import DatabaseURL, scrub


def normalise_dump(text: str, *, ignore_column_order: bool = False) -> str:
    """The dump without comments, settings, blank and ``\\restrict`` lines."""
    kept: list[str] = []
    table: list[str] | None = None
    for line in pg_tools.strip_restrict(text).splitlines():
        stripped = line.rstrip()
        if not stripped or stripped.startswith("--"):
            continue
        if stripped.startswith(("SET ", "SELECT pg_catalog.set_config(")):
            continue
        if table is not None:
            if stripped.startswith(")"):
                kept.extend(sorted(c.rstrip(",") for c in table))
                table = None
                kept.append(stripped)
            else:
                table.append(stripped)
            continue
        kept.append(stripped)
        if ignore_column_order and stripped.startswith("CREATE TABLE ") and stripped.endswith("("):
            table = []
    return "\n".join(kept) + "\n"


def schema_dump(
    url: DatabaseURL,
    server: pg_tools.Version,
    *,
    history_schema: str,
    ignore_column_order: bool = False,
    host_table: str | None = None,
) -> str:
    """The normalised schema-only dump of the database at ``url`` (backout's schema, Prisma's
    ledger and the host tool's history table ``host_table`` left out)."""
    tools = pg_tools.find_tools(server)
    conninfo, env = pg_tools.libpq_target(url)
    args = [
        str(tools.dump),
        "--schema-only",
        *dump_scope_args(url, None),
        f"--exclude-schema={history_schema}",
        "--exclude-table=*._prisma_migrations",
    ]
    if host_table:
        schema, _, name = host_table.rpartition(".")
        where = f'"{schema}"' if schema else "*"
        args.append(f'--exclude-table={where}."{name}"')
    args.append(conninfo)
    done = client_programs.run(args, secrets=url.secrets, capture_output=True, env=env)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DatabaseError(
            f"pg_dump --schema-only of {url.masked()} failed: "
            + scrub(detail[-1] if detail else "unknown error", url.secrets)
        )
    return normalise_dump(
        done.stdout.decode("utf-8", "replace"), ignore_column_order=ignore_column_order
    )
