"""Splitting MySQL/MariaDB scripts the way the ``mysql`` client does, and finding ``:name``
parameters in them.

What the lexer knows, because MySQL scripts use it:

- ``DELIMITER //`` (a *client* command, at the start of a line) changes the statement
  terminator until the next ``DELIMITER``; it is never sent to the server. Stored programs
  (``CREATE PROCEDURE ... BEGIN ...; ...; END //``) are written this way.
- Quoted text: ``'...'`` and ``"..."`` are strings (with backslash escapes and doubled quotes;
  backout never turns on ``ANSI_QUOTES``), ``` `...` ``` is an identifier (doubled backticks).
- Comments: ``#`` to the end of the line, ``-- `` (two dashes *followed by a space or control
  character*: ``a--1`` is arithmetic), ``/* ... */`` (not nested).
- Executable comments ``/*! ... */``, ``/*!50001 ... */`` and MariaDB's ``/*M! ... */`` are code
  the server runs: they stay in the statement, a terminator inside one does not split it, a
  ``*/`` inside a string in one does not end it, and a statement made of one is kept
  (mysqldump's ``/*!40101 SET NAMES utf8mb4 */;``).

A statement made only of whitespace and ordinary comments is dropped. Unterminated quotes or
comments are syntax errors with the line where they start. Anything else is checked by the
server when the statement runs: no parser validates MySQL (sqlglot accepts invalid SQL).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from backout.model.errors import ProjectError
from backout.model.script import Statement

_DELIMITER_LINE = re.compile(r"[ \t]*DELIMITER[ \t]+(\S+)[^\n]*(?:\n|$)", re.I)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOISE = re.compile(
    r"(?:\s+|#[^\n]*(?:\n|$)|--(?:[ \t\r\f\v][^\n]*)?(?:\n|$)|/\*(?![!M]!?)(?:.|\n)*?\*/)*"
)
_HEAD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class _Span:
    """A piece of the script: ``code`` (may hold a terminator), or text that never splits."""

    kind: str  # "code", "string", "ident", "comment", "exec"
    start: int
    end: int


def _is_dash_comment(text: str, i: int) -> bool:
    """``--`` starts a comment only when followed by whitespace/control or the end of text."""
    if not text.startswith("--", i):
        return False
    nxt = text[i + 2] if i + 2 < len(text) else ""
    return nxt == "" or nxt.isspace() or ord(nxt) < 32


class _Lines:
    """Line numbers of offsets that only move forward (linear in the text's length)."""

    def __init__(self, text: str, first_line: int) -> None:
        self.text = text
        self.pos = 0
        self.line = first_line

    def at(self, offset: int) -> int:
        if offset < self.pos:
            return self.line - self.text.count("\n", offset, self.pos)
        self.line += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.line


def _skip(text: str, i: int, lines: _Lines, display: str) -> tuple[str, int] | None:
    """(kind, end) of the quoted text or comment starting at ``i``, or None for code."""
    ch = text[i]
    n = len(text)
    if ch in "'\"`":
        j = i + 1
        while j < n:
            c = text[j]
            if c == "\\" and ch != "`":
                j += 2
                continue
            if c == ch:
                if j + 1 < n and text[j + 1] == ch:
                    j += 2
                    continue
                return ("ident" if ch == "`" else "string"), j + 1
            j += 1
        what = "identifier" if ch == "`" else "string"
        raise ProjectError(
            f"unterminated {what} (starts with {ch})", path=display, line=lines.at(i)
        )
    if ch == "#" or (ch == "-" and _is_dash_comment(text, i)):
        newline = text.find("\n", i)
        return "comment", (n if newline == -1 else newline + 1)
    if text.startswith(("/*!", "/*M!"), i):
        return "exec", _executable_end(text, i, lines, display)
    if ch == "/" and text.startswith("/*", i):
        close = text.find("*/", i + 2)
        if close == -1:
            raise ProjectError("unterminated /* comment", path=display, line=lines.at(i))
        return "comment", close + 2
    return None


def _executable_end(text: str, i: int, lines: _Lines, display: str) -> int:
    """End of the executable comment starting at ``i``: its body is code, so a ``*/`` inside
    a string or quoted identifier there does not close it (as the server and the client read
    it: ``/*!SELECT '*/' */`` is one comment)."""
    j = text.index("!", i) + 1
    n = len(text)
    while j < n:
        if text.startswith("*/", j):
            return j + 2
        if text[j] in "'\"`":
            found = _skip(text, j, lines, display)
            assert found is not None
            j = found[1]
            continue
        j += 1
    raise ProjectError("unterminated /*! comment", path=display, line=lines.at(i))


def lex(text: str, display: str = "<sql>", first_line: int = 1) -> Iterator[_Span]:
    """The text as spans; ``code`` spans are the only places a terminator can be."""
    lines = _Lines(text, first_line)
    i = 0
    n = len(text)
    code_start = 0
    while i < n:
        found = _skip(text, i, lines, display)
        if found is None:
            i += 1
            continue
        kind, end = found
        if code_start < i:
            yield _Span("code", code_start, i)
        yield _Span(kind, i, end)
        i = code_start = end
    if code_start < n:
        yield _Span("code", code_start, n)


def split(text: str, display: str, *, first_line: int = 1) -> list[Statement]:
    """Split a MySQL script into statements (see the module docstring); linear time."""
    statements: list[Statement] = []
    lines = _Lines(text, first_line)
    delimiter = ";"
    start = 0  # where the current statement's text starts
    seen_code = False  # anything but whitespace and comments since ``start``
    i = 0
    n = len(text)

    def add(end: int) -> None:
        chunk = text[start:end]
        lead = _NOISE.match(chunk)
        offset = lead.end() if lead else 0
        body = chunk[offset:].rstrip()
        if not body or not _NOISE.sub("", body).strip():
            return
        line = lines.at(start + offset)
        statements.append(Statement(sql=body, line=line, index=len(statements) + 1))

    while i < n:
        if not seen_code and (i == 0 or text[i - 1] == "\n"):
            # The client reads DELIMITER only at the start of a line, between statements.
            match = _DELIMITER_LINE.match(text, i)
            if match is not None:
                add(i)
                delimiter = match.group(1)
                i = start = match.end()
                continue
        if text.startswith(delimiter, i):
            add(i)
            i = start = i + len(delimiter)
            seen_code = False
            continue
        found = _skip(text, i, lines, display)
        if found is not None:
            kind, end = found
            if kind != "comment":
                seen_code = True
            i = end
            continue
        if not text[i].isspace():
            seen_code = True
        i += 1
    add(n)
    return statements


def head_words(sql: str, count: int = 3) -> list[str]:
    """The first keywords of a statement, upper-cased (comments skipped)."""
    lead = _NOISE.match(sql)
    body = sql[lead.end() if lead else 0 :]
    words: list[str] = []
    for match in _HEAD.finditer(body):
        words.append(match.group(0).upper())
        if len(words) >= count:
            break
        # only consecutive words at the start (stop at punctuation that is not whitespace)
        rest = body[match.end() :]
        if rest[:1] and not rest[:1].isspace():
            break
    return words


def param_spans(sql: str, names: Collection[str]) -> list[tuple[int, int, str]]:
    """(start, end, name) of every ``:name`` placeholder of a declared parameter in code."""
    if not names or ":" not in sql:
        return []
    spans: list[tuple[int, int, str]] = []
    for span in lex(sql):
        if span.kind != "code":
            continue
        i = span.start
        while i < span.end:
            if sql[i] == ":":
                match = _NAME.match(sql, i + 1)
                previous = sql[i - 1] if i else ""
                if (
                    match is not None
                    and match.end() <= span.end
                    and match.group(0) in names
                    and not (previous.isalnum() or previous in "_:")
                ):
                    spans.append((i, match.end(), match.group(0)))
                    i = match.end()
                    continue
            i += 1
    return spans
