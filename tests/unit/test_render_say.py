"""``status`` prints its prose without rich (issue 14: rich's import cost as much as the rest of
``status``): :func:`backout.cli.render.say` must print it as rich's console did: plain and
never wrapped without a terminal; on one, styled (unless NO_COLOR) and wrapped at words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backout.cli.render import _wrapped, say

LONG = "note: " + " ".join(f"word{i}" for i in range(30))


def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout is a terminal 24 columns wide (called in the test: capsys's stdout is patched)."""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "24")
    monkeypatch.delenv("NO_COLOR", raising=False)


def test_without_a_terminal_a_line_is_plain_and_whole(capsys: pytest.CaptureFixture[str]) -> None:
    say(("note: ", "bold"), LONG[6:])
    assert capsys.readouterr().out == LONG + "\n"


def test_on_a_terminal_it_wraps_at_words_and_keeps_styles(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal(monkeypatch)
    say(("note: ", "bold"), LONG[6:])
    lines = capsys.readouterr().out.splitlines()
    plain = [click_unstyle(line) for line in lines]
    assert all(len(line) <= 24 for line in plain)
    assert " ".join(plain) == LONG
    assert lines[0].startswith("\x1b[1m") and "note: " in lines[0]
    assert "\x1b" not in lines[1]


def test_a_value_that_must_stay_whole_is_not_wrapped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal(monkeypatch)
    say(("broken rollback: ", "bold red"), LONG, wrap=False)
    assert click_unstyle(capsys.readouterr().out) == "broken rollback: " + LONG + "\n"


def test_no_color_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal(monkeypatch)
    monkeypatch.setenv("NO_COLOR", "1")
    say(("edited:", "bold red"), " x")
    assert capsys.readouterr().out == "edited: x\n"


def test_wrapping_folds_a_long_word_and_keeps_line_breaks() -> None:
    text = "ab " + "x" * 10 + "\nend"
    assert [text[a:b] for a, b in _wrapped(text, 4)] == ["ab", "xxxx", "xxxx", "xx", "end"]
    assert [text[a:b] for a, b in _wrapped(text, 0)] == [text]
    indented = "  indented text"
    assert [indented[a:b] for a, b in _wrapped(indented, 10)] == ["  indented", "text"]


def click_unstyle(text: str) -> str:
    import click

    return click.unstyle(text)


def test_status_imports_no_rich(tmp_path: Path) -> None:
    """Nor python-dotenv, in a project with no .env file."""
    (tmp_path / "backout.toml").write_text('layout = "plain"\n')
    (tmp_path / "migrations").mkdir()
    code = (
        "import sys\n"
        "from backout.cli import main\n"
        "try:\n"
        f"    main(['status', '-C', {str(tmp_path)!r}, '--url', 'sqlite:///{tmp_path}/x.db'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'dotenv')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "everything is pending" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
