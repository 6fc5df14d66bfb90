"""Finding ``:name`` parameter placeholders in SQL without touching strings, comments, quoted
identifiers, dollar-quoted bodies or PostgreSQL ``::`` casts.

Only declared names are placeholders, so ``'10:30'`` or ``x::text`` are never mistaken for one.
Values are always sent to the database as bound parameters; nothing here pastes a value into SQL
(except :func:`render` and :func:`render_literal`, which write dry-run transcripts that are
shown, never executed).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Callable, Collection, Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")

Span = tuple[int, int, str]


def param_spans(
    sql: str, names: Collection[str], *, dollar_quotes: bool, brackets: bool = False
) -> list[Span]:
    """(start, end, name) of every ``:name`` placeholder whose name is declared.

    ``brackets``: ``[...]`` quotes an identifier (SQLite); elsewhere it is an array subscript
    or constructor (PostgreSQL's ``ARRAY[:ids]``, ``tags[:i]``), where placeholders count.
    """
    if not names or ":" not in sql:
        return []
    spans: list[Span] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end + 1
        elif ch == "/" and sql.startswith("/*", i):
            i = _block_comment_end(sql, i)
        elif ch in "'\"`":
            i = _quoted_end(sql, i, ch)
        elif ch == "[" and brackets:
            end = sql.find("]", i)
            i = n if end == -1 else end + 1
        elif ch == "$" and dollar_quotes and (tag := _DOLLAR_TAG.match(sql, i)) is not None:
            end = sql.find(tag.group(0), tag.end())
            i = n if end == -1 else end + len(tag.group(0))
        elif ch == ":":
            if sql.startswith("::", i):
                i += 2
                continue
            match = _NAME.match(sql, i + 1)
            previous = sql[i - 1] if i else ""
            if match and match.group(0) in names and not (previous.isalnum() or previous == "_"):
                spans.append((i, match.end(), match.group(0)))
                i = match.end()
            else:
                i += 1
        else:
            i += 1
    return spans


def _quoted_end(sql: str, start: int, quote: str) -> int:
    i = start + 1
    while i < len(sql):
        if sql[i] == quote:
            if sql.startswith(quote * 2, i):
                i += 2
                continue
            return i + 1
        if sql[i] == "\\" and quote == "'" and start > 0 and sql[start - 1] in "eE":
            i += 2
            continue
        i += 1
    return len(sql)


def _block_comment_end(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def substitute(sql: str, spans: list[Span], replacement: Callable[[str], str]) -> str:
    """``sql`` with each placeholder span replaced by ``replacement(name)``."""
    out: list[str] = []
    last = 0
    for start, end, name in spans:
        out.append(sql[last:start])
        out.append(replacement(name))
        last = end
    out.append(sql[last:])
    return "".join(out)


def mask_as_dollar_params(sql: str, spans: list[Span], *, numbered: bool) -> str:
    """Placeholders as PostgreSQL ``$n`` parameters of the same length, for pglast to parse:
    ``:since`` becomes ``$00001`` (zero-padded), so every offset still matches ``sql``.

    ``numbered``: each distinct name gets its own number, from 1 (to map ``$n`` back to names);
    otherwise every one is ``$…1``, which always fits. ValueError when a number does not fit in
    its placeholder (``$10`` for ``:a``).
    """
    order = {name: i for i, name in enumerate(dict.fromkeys(s[2] for s in spans), start=1)}

    def fill(name: str) -> str:
        digits = str(order[name] if numbered else 1)
        width = len(name)  # the placeholder's length, less the "$"
        if len(digits) > width:
            raise ValueError(f"${digits} does not fit in the place of :{name}")
        return "$" + digits.zfill(width)

    return substitute(sql, spans, fill)


def render_literal(value: object) -> str:
    """A parameter value as a SQL literal, for dry-run transcripts only (never executed)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return "'" + value.isoformat() + "'"
    if isinstance(value, uuid.UUID):
        return f"'{value}'"
    return "'" + str(value).replace("'", "''") + "'"


def render(sql: str, spans: list[Span], values: Mapping[str, object]) -> str:
    """Placeholders replaced by literals: for dry-run transcripts only (never executed)."""
    return substitute(sql, spans, lambda name: render_literal(values[name]))


def bind_pyformat(
    sql: str, spans: list[Span], values: Mapping[str, object], adapt: Callable[[object], object]
) -> tuple[str, dict[str, object]]:
    """``:name`` placeholders at ``spans`` → ``%(name)s`` (psycopg's and PyMySQL's named
    style), with every other ``%`` doubled; the adapted values of the names used. No span: the
    SQL verbatim and no parameters (the drivers then do no %-processing)."""
    if not spans:
        return sql, {}
    pieces: list[str] = []
    last = 0
    used: dict[str, object] = {}
    for start, end, name in spans:
        pieces.append(sql[last:start].replace("%", "%%"))
        pieces.append(f"%({name})s")
        used[name] = adapt(values[name])
        last = end
    pieces.append(sql[last:].replace("%", "%%"))
    return "".join(pieces), used
