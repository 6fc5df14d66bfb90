"""Issue 13, item 9: every example README declares the risk its rollback script declares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backout.model.script import Risk
from tests.helpers import EXAMPLES

RISKS = {r.name for r in Risk}
DIRECTIVE = re.compile(r"^--\s*backout:risk\s+(\w+)", re.MULTILINE)


def readme_rows(readme: Path) -> list[tuple[list[str], str]]:
    """(backticked names, risk) of each table row whose last cell is a risk level."""
    rows = []
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[-1] in RISKS:
            rows.append((re.findall(r"`([^`]+)`", line), cells[-1]))
    return rows


def script_for(example: Path, names: list[str]) -> Path:
    """The one rollback script a row names (a path, ``..._suffix``, or a migration id + one)."""
    scripts = [p for p in example.rglob("*.sql") if "rollback" in p.name or p.name == "down.sql"]
    ids = [n for n in names if re.fullmatch(r"\d{6,}_\w+", n)]
    files = [n for n in names if n.endswith(".sql")]
    assert files, f"{example.name}: a row with a risk names no script: {names}"
    suffix = files[0].split("...", 1)[-1]
    found = [
        p
        for p in scripts
        if str(p.relative_to(example)).endswith(suffix)
        and (not ids or any(p.name.startswith(i) for i in ids))
    ]
    assert len(found) == 1, f"{example.name}: {names} matches {found}"
    return found[0]


EXAMPLE_READMES = sorted(EXAMPLES.glob("*/README.md"))


@pytest.mark.parametrize("readme", EXAMPLE_READMES, ids=[p.parent.name for p in EXAMPLE_READMES])
def test_readme_risk_matches_the_script(readme: Path) -> None:
    for names, risk in readme_rows(readme):
        script = script_for(readme.parent, names)
        match = DIRECTIVE.search(script.read_text(encoding="utf-8"))
        declared = match.group(1) if match else "undeclared"
        assert declared == risk, f"{readme}: {script.name} declares {declared}, README {risk}"


def test_the_readmes_list_risks_at_all() -> None:
    assert sum(len(readme_rows(r)) for r in EXAMPLE_READMES) >= 5
