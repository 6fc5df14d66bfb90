"""``backout.api`` is a facade over backout.api.verbs (issue 14): a verb's module is imported
when the verb is first used. Its table, ``__all__``, its type-checking imports and the verb
modules must say the same, so the facade cannot drift from the verbs."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from backout import api
from backout.api import verbs


def _verb_modules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(verbs.__path__)]


def test_the_table_names_every_public_function_and_class_of_the_verb_modules() -> None:
    found: dict[str, str] = {}
    for name in _verb_modules():
        module = importlib.import_module(f"backout.api.verbs.{name}")
        for attr, value in vars(module).items():
            if attr.startswith("_") or not (inspect.isfunction(value) or inspect.isclass(value)):
                continue
            # its own functions and classes, and the result types it re-exports by name
            if value.__module__ == module.__name__ or attr.endswith(("Result", "View")):
                found[attr] = name
    for alias in ("Progress", "PartialRequest"):  # re-exported types that say no "Result"
        found[alias] = api.VERBS[alias]
    assert found == api.VERBS


def test_all_and_the_type_checking_imports_equal_the_table() -> None:
    assert sorted(api.__all__) == sorted(api.VERBS)
    tree = ast.parse(Path(api.__file__).read_text(encoding="utf-8"))
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backout.api."):
            for alias in node.names:
                imported[alias.name] = (node.module or "").rsplit(".", 1)[1]
    assert imported == api.VERBS


@pytest.mark.parametrize("name", sorted(api.VERBS))
def test_each_name_is_its_modules_object(name: str) -> None:
    module = importlib.import_module(f"backout.api.verbs.{api.VERBS[name]}")
    assert getattr(api, name) is getattr(module, name)
    assert name in dir(api)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        api.nope  # noqa: B018


def test_status_imports_only_its_own_capability() -> None:
    code = (
        "import sys\n"
        "from backout import api\n"
        "api.status\n"
        "print(sorted(m for m in sys.modules if m.startswith('backout.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stdout.strip().splitlines()[-1]
    assert "backout.api.verbs.status" in loaded
    for other in (
        "backout.api.verbs.rollback",
        "backout.rollback",
        "backout.backup",
        "backout.lint",
        "backout.rehearsal",
        "backout.generate",
        "backout.emergency",
    ):
        assert f"'{other}" not in loaded, other
