"""Issue 5 benchmarks: `backout test --all` over 100 migrations, and `generate` per migration.

    python bench/bench_rehearse.py            # 100 migrations
    python bench/bench_rehearse.py --count 40 # fewer

Targets (PostgreSQL): `backout test --all` over 100 migrations < 30 s; `generate` < 1 s per
migration. Baseline, same run: plain `backout up` of the same 100 migrations on an empty
database (what a rehearsal does at least twice per migration, besides its rollback and the
comparisons).

The project cycles through five realistic kinds of migration, each with a hand-written
rollback: a new table related to the previous one (foreign key, index, serial, default now());
two added columns; an enum type and a column using it; an index plus a column rename; a type
change plus a table comment. Twenty tables, twenty enum types by the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_facts, pg_database, report, run

#: the CLI with test/generate registered, also before backout.cli imports them itself
CLI = [sys.executable, "-c", "import backout.cli.rehearse; from backout.cli import main; main()"]


def _migration(i: int) -> tuple[str, str, str]:
    """(name, forward SQL, rollback SQL) of migration ``i`` (1-based)."""
    kind = (i - 1) % 5
    table = f"t{i - kind}"  # the table the cycle created
    if kind == 0:
        parent = f"t{i - 5}" if i > 5 else None
        ref = (
            f",\n    parent_id bigint REFERENCES {parent} (id) ON DELETE CASCADE" if parent else ""
        )
        up = (
            f"CREATE TABLE {table} (\n    id bigserial PRIMARY KEY,\n    name text NOT NULL,\n"
            f"    created_at timestamptz NOT NULL DEFAULT now(){ref}\n);\n"
        )
        if parent:
            up += f"CREATE INDEX {table}_parent_idx ON {table} (parent_id);\n"
        return f"create_{table}", up, f"-- backout:risk HIGH\nDROP TABLE {table};\n"
    if kind == 1:
        return (
            f"{table}_note_flag",
            f"ALTER TABLE {table} ADD COLUMN note text,\n"
            "    ADD COLUMN flag boolean NOT NULL DEFAULT false;\n",
            f"-- backout:risk MEDIUM\nALTER TABLE {table} DROP COLUMN flag, DROP COLUMN note;\n",
        )
    if kind == 2:
        return (
            f"{table}_state",
            f"CREATE TYPE e{i} AS ENUM ('draft', 'live');\n"
            f"ALTER TABLE {table} ADD COLUMN state e{i} NOT NULL DEFAULT 'draft';\n",
            f"-- backout:risk MEDIUM\nALTER TABLE {table} DROP COLUMN state;\nDROP TYPE e{i};\n",
        )
    if kind == 3:
        return (
            f"{table}_name_index_remark",
            f"CREATE INDEX {table}_name_idx ON {table} (name);\n"
            f"ALTER TABLE {table} RENAME COLUMN note TO remark;\n",
            f"-- backout:risk LOW\nALTER TABLE {table} RENAME COLUMN remark TO note;\n"
            f"DROP INDEX {table}_name_idx;\n",
        )
    return (
        f"{table}_name_varchar",
        f"ALTER TABLE {table} ALTER COLUMN name TYPE varchar(200);\n"
        f"COMMENT ON TABLE {table} IS 'cycle {i // 5}';\n",
        f"-- backout:risk LOW\nALTER TABLE {table} ALTER COLUMN name TYPE text;\n"
        f"COMMENT ON TABLE {table} IS NULL;\n",
    )


def project(root: Path, count: int) -> list[str]:
    """Write the plain-layout project; its migration ids."""
    folder = root / "migrations"
    folder.mkdir(parents=True)
    ids = []
    for i in range(1, count + 1):
        name, up, down = _migration(i)
        stem = f"{i:04d}_{name}"
        (folder / f"{stem}.up.sql").write_text(up)
        (folder / f"{stem}.down.sql").write_text(down)
        ids.append(stem)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    print(machine_facts())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "app"
        ids = project(root, args.count)
        with pg_database() as url:
            up = run([*CLI, "up", "-C", str(root), "--url", url])
        with pg_database() as url:
            rehearsal = run([*CLI, "test", "--all", "--json", "-C", str(root), "--url", url])
            doc = json.loads(rehearsal.stdout)
            if not doc["ok"]:
                raise SystemExit(f"the rehearsal failed: {json.dumps(doc, indent=2)[:3000]}")
            per = [m["duration_s"] for m in doc["migrations"]]
            samples = sorted({ids[0], ids[len(ids) // 2], ids[-1]})
            singles = [
                (m, run([*CLI, "generate", m, "--stdout", "-C", str(root), "--url", url]))
                for m in samples
            ]
            batch = run([*CLI, "generate", *ids, "--stdout", "-C", str(root), "--url", url])
    count = args.count
    report(
        f"backout test --all over {count} migrations (PostgreSQL)",
        [
            (f"backout up, {count} migrations (baseline)", up.seconds, ""),
            (
                "backout test --all",
                rehearsal.seconds,
                f"target < 30 s; {rehearsal.seconds / up.seconds:.1f}x up; "
                f"{rehearsal.seconds / count * 1000:.0f} ms per migration "
                f"(slowest {max(per) * 1000:.0f} ms)",
            ),
        ],
    )
    report(
        "backout generate (replays the migrations before ID on a scratch database)",
        [
            *(
                (f"generate {m[:24]} (#{ids.index(m) + 1})", r.seconds, "target < 1 s")
                for m, r in singles
            ),
            (
                f"generate all {count} in one call, per migration",
                batch.seconds / count,
                f"{batch.seconds:.1f} s in total",
            ),
        ],
    )


if __name__ == "__main__":
    main()
