"""Directive parsing (docs/directives.md): every form, every error, and properties of the parser."""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backout.model.errors import ProjectError
from backout.model.script import (
    DIRECTIVE_NAMES,
    PARAM_TYPES,
    Directives,
    ParamSpec,
    Risk,
    ScriptKind,
    SqlCheck,
    load_script,
    parse_directives,
    scan_directives,
)

FORWARD, ROLLBACK, PARTIAL = ScriptKind.FORWARD, ScriptKind.ROLLBACK, ScriptKind.PARTIAL


def parse(text: str, kind: ScriptKind = PARTIAL, *, first_line: int = 1) -> Directives:
    return parse_directives(text, "f.sql", kind, first_line=first_line)


def error(text: str, kind: ScriptKind = PARTIAL, *, first_line: int = 1) -> str:
    with pytest.raises(ProjectError) as info:
        parse(text, kind, first_line=first_line)
    return str(info.value)


# --- every directive and value form ------------------------------------------------------------

SPEC_EXAMPLE = """\
-- backout:risk HIGH
-- backout:impact Reverts registry_purchases.registryItemId back to registryId
-- backout:data-loss Purchases linked to specific items are re-linked to their registry
-- backout:manual Revert schema.prisma, then run `npx prisma generate`
-- backout:require SELECT count(*) = 0 FROM "VoucherRedemption" WHERE "createdAt" > now() - interval '5 min'
-- backout:verify  SELECT NOT EXISTS (SELECT 1 FROM registry_purchases p \\
--                   LEFT JOIN registries r ON r.id = p."registryId" WHERE r.id IS NULL)
-- backout:param since timestamptz
-- backout:preview SELECT * FROM "TokenTransaction" WHERE source = 'voucher_redemption' AND "createdAt" > :since
-- backout:transaction off
DELETE FROM "TokenTransaction" WHERE "createdAt" > :since;
"""  # noqa: E501 - the example from docs/directives.md, verbatim


def test_the_documented_example_parses_into_every_field() -> None:
    got = parse(SPEC_EXAMPLE, first_line=10)
    assert got == Directives(
        risk=Risk.HIGH,
        impact=("Reverts registry_purchases.registryItemId back to registryId",),
        data_loss=("Purchases linked to specific items are re-linked to their registry",),
        manual=("Revert schema.prisma, then run `npx prisma generate`",),
        require=(
            SqlCheck(
                'SELECT count(*) = 0 FROM "VoucherRedemption" '
                "WHERE \"createdAt\" > now() - interval '5 min'",
                14,
            ),
        ),
        verify=(
            SqlCheck(
                "SELECT NOT EXISTS (SELECT 1 FROM registry_purchases p LEFT JOIN registries r "
                'ON r.id = p."registryId" WHERE r.id IS NULL)',
                15,
            ),
        ),
        params=(ParamSpec("since", "timestamptz", None, 17),),
        preview=SqlCheck(
            "SELECT * FROM \"TokenTransaction\" WHERE source = 'voucher_redemption' "
            'AND "createdAt" > :since',
            18,
        ),
        transaction=False,
    )


def test_no_directives_means_the_defaults() -> None:
    assert parse("SELECT 1;\n-- an ordinary comment\n") == Directives()
    assert Directives().transaction is True
    assert Directives().risk is None


@pytest.mark.parametrize(
    ("value", "risk"),
    [
        ("NONE", Risk.NONE),
        ("low", Risk.LOW),
        ("Medium", Risk.MEDIUM),
        ("hIgH", Risk.HIGH),
        ("  HIGH  ", Risk.HIGH),
    ],
)
def test_risk_accepts_each_level_in_any_case(value: str, risk: Risk) -> None:
    assert parse(f"-- backout:risk {value}", ROLLBACK).risk is risk


def test_risk_levels_are_ordered_and_print_their_names() -> None:
    assert Risk.NONE < Risk.LOW < Risk.MEDIUM < Risk.HIGH
    assert str(Risk.MEDIUM) == "MEDIUM"


@pytest.mark.parametrize(("value", "on"), [("on", True), ("OFF", False), ("Off", False)])
def test_transaction_on_or_off_in_any_case(value: str, on: bool) -> None:
    assert parse(f"-- backout:transaction {value}", FORWARD).transaction is on


def test_repeatable_directives_keep_every_value_in_order_with_their_lines() -> None:
    text = (
        "-- backout:impact one\n"
        "-- backout:impact two\n"
        "-- backout:data-loss rows of a\n"
        "-- backout:data-loss rows of b\n"
        "-- backout:manual step 1\n"
        "-- backout:manual step 2\n"
        "-- backout:require SELECT 1\n"
        "-- backout:require SELECT 2\n"
        "-- backout:verify SELECT 3\n"
        "-- backout:verify SELECT 4\n"
        "-- backout:param a int\n"
        "-- backout:param b text = hello world\n"
    )
    got = parse(text)
    assert got.impact == ("one", "two")
    assert got.data_loss == ("rows of a", "rows of b")
    assert got.manual == ("step 1", "step 2")
    assert got.require == (SqlCheck("SELECT 1", 7), SqlCheck("SELECT 2", 8))
    assert got.verify == (SqlCheck("SELECT 3", 9), SqlCheck("SELECT 4", 10))
    assert got.params == (
        ParamSpec("a", "int", None, 11),
        ParamSpec("b", "text", "hello world", 12),
    )


@pytest.mark.parametrize(
    "line",
    [
        "-- backout:risk HIGH",
        "--backout:risk HIGH",
        "   --   backout:risk HIGH",
        "\t-- backout:risk HIGH",
        "-- BACKOUT:RISK HIGH",
        "-- Backout:Risk high",
        "-- backout: risk HIGH",
        "-- backout:risk\tHIGH",
        "-- backout:risk HIGH   ",
        "-- backout:risk HIGH\r",
    ],
)
def test_directive_line_forms(line: str) -> None:
    assert parse(line + "\nSELECT 1;", ROLLBACK).risk is Risk.HIGH


@pytest.mark.parametrize(
    "line",
    [
        "SELECT 1; -- backout:risk HIGH",
        "-- see backout:risk HIGH",
        "/* -- backout:risk HIGH */",
        "- - backout:risk HIGH",
        "# backout:risk HIGH",
        "-- backout-risk HIGH",
    ],
)
def test_lines_that_are_not_directives_are_ignored(line: str) -> None:
    assert parse(line, ROLLBACK) == Directives()


def test_the_value_is_the_rest_of_the_line_trimmed_with_inner_spacing_kept() -> None:
    got = parse("-- backout:manual   run  `make   docs`   \n", ROLLBACK)
    assert got.manual == ("run  `make   docs`",)


def test_directives_may_appear_anywhere_and_lines_count_from_first_line() -> None:
    text = "CREATE TABLE a (id int);\n\n  -- backout:verify SELECT 1\nDROP TABLE b;\n"
    assert parse(text, ROLLBACK, first_line=40).verify == (SqlCheck("SELECT 1", 42),)


def test_scan_directives_returns_lowercase_names_values_and_lines() -> None:
    raw = scan_directives("x\n-- BACKOUT:Data-Loss  all of it \n", "f.sql", first_line=3)
    assert [(r.name, r.value, r.line) for r in raw] == [("data-loss", "all of it", 4)]


def test_directive_names_are_the_documented_ones() -> None:
    assert set(DIRECTIVE_NAMES) == {
        "risk",
        "impact",
        "data-loss",
        "manual",
        "require",
        "verify",
        "param",
        "preview",
        "transaction",
        "data-only",
    }


def test_data_only_is_a_rollback_directive_given_once() -> None:
    text = "-- backout:data-only rows only \\\n--   (a backfill)\n"
    parsed = parse_directives(text, "r.sql", ScriptKind.ROLLBACK)
    assert parsed.data_only == "rows only (a backfill)"
    assert parse_directives("SELECT 1;\n", "r.sql", ScriptKind.ROLLBACK).data_only is None
    with pytest.raises(ProjectError, match=r"r\.sql:2: directive 'data-only' given twice"):
        parse_directives(
            text.replace("\\\n--   (a backfill)", "") * 2, "r.sql", ScriptKind.ROLLBACK
        )
    with pytest.raises(ProjectError, match="'data-only' is not allowed in a forward script"):
        parse_directives(text, "m.sql", ScriptKind.FORWARD)


# --- continuation lines -------------------------------------------------------------------------


def test_continuation_appends_the_comment_text_with_one_space() -> None:
    text = (
        "-- backout:require SELECT count(*) = 0 \\\n"
        "--     FROM t \\\n"
        "--WHERE x\n"
        "-- backout:impact after\n"
    )
    got = parse(text, ROLLBACK, first_line=5)
    assert got.require == (SqlCheck("SELECT count(*) = 0 FROM t WHERE x", 5),)
    assert got.impact == ("after",)
    # the continued directive keeps the line it starts on; the next one is numbered correctly
    assert scan_directives(text, "f.sql", first_line=5)[1].line == 8


def test_continuation_may_carry_the_whole_value() -> None:
    assert parse("-- backout:verify \\\n-- SELECT 1", ROLLBACK).verify == (SqlCheck("SELECT 1", 1),)


def test_continuation_with_crlf_line_endings() -> None:
    got = parse("-- backout:verify SELECT \\\r\n-- 1\r\n", ROLLBACK)
    assert got.verify == (SqlCheck("SELECT 1", 1),)


def test_a_backslash_inside_a_value_is_kept() -> None:
    assert parse("-- backout:manual use C:\\tmp please", ROLLBACK).manual == ("use C:\\tmp please",)


def test_continuation_past_the_end_is_an_error_on_the_directive_line() -> None:
    assert error("SELECT 1;\n-- backout:verify SELECT \\", ROLLBACK) == (
        "f.sql:2: directive continues (ends with \\) past the end of the script"
    )


def test_continuation_onto_a_non_comment_line_is_an_error_on_that_line() -> None:
    assert error("-- backout:verify SELECT \\\nFROM t;", ROLLBACK, first_line=7) == (
        "f.sql:8: a directive ending with \\ must continue on a '--' comment line"
    )


def test_continuation_onto_another_directive_is_an_error() -> None:
    assert error("-- backout:impact a \\\n-- backout:impact b", ROLLBACK) == (
        "f.sql:2: a directive ending with \\ must continue on a '--' comment line"
    )


def test_continuation_onto_a_blank_line_is_an_error() -> None:
    assert error("-- backout:impact a \\\n\n-- b", ROLLBACK) == (
        "f.sql:2: a directive ending with \\ must continue on a '--' comment line"
    )


# --- validation errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("rsik", "risk"),
        ("verfy", "verify"),
        ("data_loss", "data-loss"),
        ("transactions", "transaction"),
        ("params", "param"),
    ],
)
def test_unknown_directive_names_the_line_and_suggests_the_closest(
    name: str, suggestion: str
) -> None:
    message = error(f"SELECT 1;\n\n-- backout:{name} HIGH\n", ROLLBACK)
    assert message == (
        f"f.sql:3: unknown directive '{name}' (did you mean '{suggestion}'? known: risk, impact, "
        "data-loss, manual, require, verify, param, preview, transaction, data-only)"
    )


def test_unknown_directive_without_a_close_match_lists_the_known_ones() -> None:
    assert error("-- backout:zzzzzz 1", ROLLBACK) == (
        "f.sql:1: unknown directive 'zzzzzz' (known: risk, impact, data-loss, manual, require, "
        "verify, param, preview, transaction, data-only)"
    )


def test_an_unknown_directive_is_an_error_even_without_a_value() -> None:
    assert error("-- backout:rsik", ROLLBACK).startswith("f.sql:1: unknown directive 'rsik'")


@pytest.mark.parametrize(
    "line", ["-- backout:", "-- backout:   ", "-- backout:risk:HIGH", "-- backout:="]
)
def test_a_directive_line_without_a_name_is_malformed(line: str) -> None:
    rest = line.split(":", 1)[1].strip()
    assert error(line, ROLLBACK) == (
        f"f.sql:1: malformed directive {rest!r}: expected '-- backout:NAME VALUE'"
    )


@pytest.mark.parametrize("name", DIRECTIVE_NAMES)
def test_every_directive_needs_a_value(name: str) -> None:
    kind = PARTIAL if PARTIAL in ALLOWED[name] else ROLLBACK
    assert error(f"SELECT 1;\n-- backout:{name}   \n", kind) == (
        f"f.sql:2: directive '{name}' needs a value"
    )


@pytest.mark.parametrize("value", ["SEVERE", "0", "HIGHER", "high risk"])
def test_risk_outside_its_set(value: str) -> None:
    assert error(f"-- backout:risk {value}", ROLLBACK) == (
        f"f.sql:1: risk must be one of NONE, LOW, MEDIUM, HIGH (got {value!r})"
    )


@pytest.mark.parametrize("value", ["yes", "false", "0", "of"])
def test_transaction_outside_its_set(value: str) -> None:
    assert error(f"-- backout:transaction {value}", FORWARD) == (
        f"f.sql:1: transaction must be 'on' or 'off' (got {value!r})"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("risk", "LOW"), ("preview", "SELECT 1"), ("transaction", "off")],
)
def test_once_only_directives_given_twice(name: str, value: str) -> None:
    text = f"-- backout:{name} {value}\nSELECT 1;\n-- backout:{name} {value}\n"
    assert error(text, PARTIAL) == f"f.sql:3: directive '{name}' given twice"


# directive → kinds of script that allow it (the table in docs/directives.md)
ALLOWED = {
    "risk": {ROLLBACK, PARTIAL},
    "impact": {ROLLBACK, PARTIAL},
    "data-loss": {ROLLBACK, PARTIAL},
    "manual": {FORWARD, ROLLBACK, PARTIAL},
    "require": {FORWARD, ROLLBACK, PARTIAL},
    "verify": {FORWARD, ROLLBACK, PARTIAL},
    "param": {PARTIAL},
    "preview": {PARTIAL},
    "transaction": {FORWARD, ROLLBACK, PARTIAL},
    "data-only": {ROLLBACK},
}
VALID_VALUE = {
    "risk": "LOW",
    "impact": "x",
    "data-loss": "x",
    "manual": "x",
    "require": "SELECT 1",
    "verify": "SELECT 1",
    "param": "n int",
    "preview": "SELECT 1",
    "transaction": "off",
    "data-only": "rows only",
}


@pytest.mark.parametrize("kind", list(ScriptKind))
@pytest.mark.parametrize("name", DIRECTIVE_NAMES)
def test_directive_allowed_only_in_the_documented_kinds(name: str, kind: ScriptKind) -> None:
    text = f"SELECT 1;\n-- backout:{name} {VALID_VALUE[name]}\n"
    if kind in ALLOWED[name]:
        parse(text, kind)
        return
    allowed = ", ".join(sorted(k.value for k in ALLOWED[name]))
    assert error(text, kind) == (
        f"f.sql:2: directive '{name}' is not allowed in a {kind.value} script (only in: {allowed})"
    )


@pytest.mark.parametrize(
    "value",
    ["since", "1since date", "since-x date", "since date extra", "since date =", "= date"],
)
def test_malformed_param(value: str) -> None:
    assert error(f"-- backout:param {value}") == (
        f"f.sql:1: malformed param {value!r}: expected 'NAME TYPE' or 'NAME TYPE = DEFAULT'"
    )


def test_param_with_unknown_type() -> None:
    assert error("-- backout:param since money") == (
        "f.sql:1: param 'since' has unknown type 'money' "
        "(known: boolean, date, integer, numeric, text, timestamp, timestamptz, uuid)"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("n int = ten", "param 'n' default 'ten' is not a valid int: not an integer: 'ten'"),
        ("d date = 2024-02-30", "param 'd' default '2024-02-30' is not a valid date: "),
        ("b bool = maybe", "param 'b' default 'maybe' is not a valid bool: not a boolean: 'maybe'"),
        ("u uuid = 1234", "param 'u' default '1234' is not a valid uuid: "),
        (
            "t timestamp = 2024-01-01T00:00:00+02:00",
            "param 't' default '2024-01-01T00:00:00+02:00' is not a valid timestamp: "
            "timestamp must not carry a time zone (use timestamptz)",
        ),
    ],
)
def test_param_default_of_the_wrong_type(value: str, message: str) -> None:
    assert error(f"SELECT 1;\n-- backout:param {value}").startswith(f"f.sql:2: {message}")


def test_param_declared_twice() -> None:
    text = "-- backout:param since date\n-- backout:param since timestamptz\n"
    assert error(text) == "f.sql:2: parameter 'since' declared twice"


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        ("since date", ParamSpec("since", "date", None, 1)),
        ("Since DATE", ParamSpec("Since", "date", None, 1)),
        ("_x2 bigint=5", ParamSpec("_x2", "bigint", "5", 1)),
        ("n numeric =  1.50 ", ParamSpec("n", "numeric", "1.50", 1)),
        ("flag boolean = yes", ParamSpec("flag", "boolean", "yes", 1)),
        ("note text = a = b", ParamSpec("note", "text", "a = b", 1)),
        (
            "at timestamptz = 2024-01-01 10:00",
            ParamSpec("at", "timestamptz", "2024-01-01 10:00", 1),
        ),
    ],
)
def test_param_forms(value: str, spec: ParamSpec) -> None:
    assert parse(f"-- backout:param {value}").params == (spec,)


# --- files: encoding, BOM, line endings, checksums ----------------------------------------------


def test_load_script_reads_directives_and_checksums_the_bytes(tmp_path: Path) -> None:
    data = b"-- backout:risk LOW\nDROP TABLE t;\n"
    path = tmp_path / "down.sql"
    path.write_bytes(data)
    script = load_script(path, "migrations/down.sql", ROLLBACK)
    assert script.directives.risk is Risk.LOW
    assert script.checksum == hashlib.sha256(data).hexdigest()
    assert script.text == data.decode()
    assert (script.display, script.first_line, script.kind) == ("migrations/down.sql", 1, ROLLBACK)


def test_directive_errors_name_the_display_path(tmp_path: Path) -> None:
    path = tmp_path / "down.sql"
    path.write_text("SELECT 1;\n-- backout:risk BAD\n")
    with pytest.raises(ProjectError) as info:
        load_script(path, "prisma/rollback/x_rollback.sql", ROLLBACK)
    assert str(info.value) == (
        "prisma/rollback/x_rollback.sql:2: risk must be one of NONE, LOW, MEDIUM, HIGH (got 'BAD')"
    )
    assert info.value.line == 2
    assert info.value.path == Path("prisma/rollback/x_rollback.sql")


def test_non_utf8_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "up.sql"
    path.write_bytes(b"SELECT 1;\n\n-- caf\xe9\nSELECT 2;\n")
    with pytest.raises(ProjectError) as info:
        load_script(path, "migrations/1_a.up.sql", FORWARD)
    assert str(info.value) == ("migrations/1_a.up.sql:3: not valid UTF-8 (byte 0xe9 at offset 17)")
    assert info.value.hint == "save the file as UTF-8"


def test_utf8_bom_is_dropped_but_counted_in_the_checksum(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf-- backout:risk HIGH\nDROP TABLE t;\n"
    path = tmp_path / "down.sql"
    path.write_bytes(data)
    script = load_script(path, "down.sql", ROLLBACK)
    assert script.directives.risk is Risk.HIGH
    assert script.text.startswith("-- backout:risk")
    assert script.checksum == hashlib.sha256(data).hexdigest()


def test_crlf_and_lf_checksums_are_equivalent(tmp_path: Path) -> None:
    lf = b"-- backout:verify SELECT 1\nDROP TABLE t;\nDROP TABLE u;\n"
    crlf = lf.replace(b"\n", b"\r\n")
    (tmp_path / "lf.sql").write_bytes(lf)
    (tmp_path / "crlf.sql").write_bytes(crlf)
    from_lf = load_script(tmp_path / "lf.sql", "lf.sql", ROLLBACK)
    from_crlf = load_script(tmp_path / "crlf.sql", "crlf.sql", ROLLBACK)
    sha_lf, sha_crlf = hashlib.sha256(lf).hexdigest(), hashlib.sha256(crlf).hexdigest()
    assert from_lf.checksum == sha_lf
    assert from_crlf.checksum == sha_crlf
    assert from_lf.matches_checksum(sha_crlf)
    assert from_crlf.matches_checksum(sha_lf)
    assert from_lf.matches_checksum(sha_lf)
    assert not from_lf.matches_checksum(hashlib.sha256(lf + b"-- edited\n").hexdigest())
    assert from_crlf.directives.verify == (SqlCheck("SELECT 1", 1),)


def test_mixed_line_endings_match_both_normalised_forms(tmp_path: Path) -> None:
    mixed = b"SELECT 1;\r\nSELECT 2;\nSELECT 3;\r\n"
    (tmp_path / "m.sql").write_bytes(mixed)
    script = load_script(tmp_path / "m.sql", "m.sql", FORWARD)
    lf = mixed.replace(b"\r\n", b"\n")
    assert script.matches_checksum(hashlib.sha256(lf).hexdigest())
    assert script.matches_checksum(hashlib.sha256(lf.replace(b"\n", b"\r\n")).hexdigest())


def test_a_file_without_newline_has_only_its_own_checksum(tmp_path: Path) -> None:
    (tmp_path / "one.sql").write_bytes(b"SELECT 1;")
    script = load_script(tmp_path / "one.sql", "one.sql", FORWARD)
    assert script.equivalent_checksums == frozenset()
    assert script.matches_checksum(hashlib.sha256(b"SELECT 1;").hexdigest())


@pytest.mark.parametrize("separator", ["\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\x0b"])
def test_only_newline_ends_a_line(separator: str) -> None:
    # Line numbers must agree with the statement splitters (and editors), which count "\n".
    text = f"SELECT 'a{separator}b';\n-- backout:rsik HIGH\n"
    assert error(text, ROLLBACK).startswith("f.sql:2: unknown directive 'rsik'")
    # ...and text after such a character inside a string literal is not a directive line
    assert parse(f"SELECT 'x{separator}-- backout:risk NOPE';\n", ROLLBACK) == Directives()


def test_unreadable_script_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as info:
        load_script(tmp_path / "missing.sql", "migrations/missing.sql", FORWARD)
    assert str(info.value) == "migrations/missing.sql: cannot read file: No such file or directory"


# --- properties ---------------------------------------------------------------------------------

# Words of a value: no whitespace, no control characters, no backslash (a trailing one would
# continue the line; backslashes inside a value have their own test above).
WORD = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=["Cc", "Zs", "Zl", "Zp"], exclude_characters="\\"
    ),
    min_size=1,
    max_size=8,
).filter(lambda w: not w.isspace() and w.strip() == w)
WORDS = st.lists(WORD, min_size=1, max_size=6)


@st.composite
def spelled(draw: st.DrawFn, word: str) -> str:
    """``word`` in random letter case."""
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips, strict=True))


@st.composite
def directive_lines(draw: st.DrawFn, name: str, words: list[str]) -> list[str]:
    """A directive written on one or more lines, with random spacing, case and continuations."""
    indent = draw(st.sampled_from(["", " ", "  ", "\t"]))
    gap = draw(st.sampled_from(["", " ", "   "]))
    head = f"{indent}--{gap}{draw(spelled('backout'))}:{draw(spelled(name))}"
    cuts = draw(st.sets(st.integers(min_value=0, max_value=len(words) - 1), max_size=3))
    lines = [head]
    for i, word in enumerate(words):
        lines[-1] += " " + word
        if i in cuts and i < len(words) - 1:
            lines[-1] += draw(st.sampled_from([" \\", "\\", "  \\  "]))
            lines.append(draw(st.sampled_from(["--", "-- ", "   --    "])))
    lines[-1] += draw(st.sampled_from(["", " ", "\t"]))
    return lines


FILLER = st.sampled_from(
    [
        "SELECT 1;",
        "-- just a comment",
        "",
        "DROP TABLE t;",
        "  /* block */",
        "INSERT INTO t VALUES (';');",
    ]
)

VALID_DEFAULTS = {
    "text": "hello  world",
    "integer": "-5",
    "numeric": "1.50",
    "boolean": "Yes",
    "date": "2024-02-29",
    "timestamp": "2024-01-01T10:00:00",
    "timestamptz": "2024-01-01 10:00+02:00",
    "uuid": "12345678-1234-5678-1234-567812345678",
}


@st.composite
def headers(draw: st.DrawFn) -> tuple[str, Directives]:
    """A valid partial-rollback header and the Directives it must parse into."""
    out: list[str] = []
    expected = Directives()
    once = draw(st.sets(st.sampled_from(["risk", "preview", "transaction"])))
    repeated = draw(
        st.lists(
            st.sampled_from(["impact", "data-loss", "manual", "require", "verify", "param"]),
            max_size=8,
        )
    )
    for name in draw(st.permutations([*once, *repeated])):
        out.extend(draw(st.lists(FILLER, max_size=2)))
        line = len(out) + 1
        if name == "risk":
            level = draw(st.sampled_from(list(Risk)))
            out.extend(draw(directive_lines("risk", [draw(spelled(level.name))])))
            expected = replace(expected, risk=level)
        elif name == "transaction":
            on = draw(st.booleans())
            out.extend(draw(directive_lines("transaction", [draw(spelled("on" if on else "off"))])))
            expected = replace(expected, transaction=on)
        elif name == "param":
            base = draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True))
            pname = f"{base}_{len(expected.params)}"  # unique
            ptype = draw(st.sampled_from(sorted(PARAM_TYPES)))
            words = [pname, draw(spelled(ptype))]
            default = None
            if draw(st.booleans()):
                default = VALID_DEFAULTS[PARAM_TYPES[ptype]]
                words += [draw(st.sampled_from(["=", "= ", " ="])).strip(), *default.split()]
                default = " ".join(default.split())
            out.extend(draw(directive_lines("param", words)))
            spec = ParamSpec(pname, ptype, default, line)
            expected = replace(expected, params=(*expected.params, spec))
        else:
            words = draw(WORDS)
            out.extend(draw(directive_lines(name, words)))
            value = " ".join(words)
            if name == "require":
                expected = replace(expected, require=(*expected.require, SqlCheck(value, line)))
            elif name == "verify":
                expected = replace(expected, verify=(*expected.verify, SqlCheck(value, line)))
            elif name == "preview":
                expected = replace(expected, preview=SqlCheck(value, line))
            elif name == "impact":
                expected = replace(expected, impact=(*expected.impact, value))
            elif name == "data-loss":
                expected = replace(expected, data_loss=(*expected.data_loss, value))
            else:
                expected = replace(expected, manual=(*expected.manual, value))
    out.extend(draw(st.lists(FILLER, max_size=2)))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return ending.join(out) + ending, expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(headers(), st.integers(min_value=1, max_value=10_000))
def test_property_valid_headers_round_trip(case: tuple[str, Directives], first_line: int) -> None:
    text, expected = case
    got = parse(text, PARTIAL, first_line=first_line)
    shift = first_line - 1
    assert got == replace(
        expected,
        require=tuple(replace(c, line=c.line + shift) for c in expected.require),
        verify=tuple(replace(c, line=c.line + shift) for c in expected.verify),
        params=tuple(replace(p, line=p.line + shift) for p in expected.params),
        preview=replace(expected.preview, line=expected.preview.line + shift)
        if expected.preview
        else None,
    )


# A line the parser must treat as a directive (spec: first non-blanks are "--", spaces,
# "backout:"; the parser also tolerates blanks before the colon).
DIRECTIVE_SHAPED = re.compile(r"^\s*--\s*backout\s*:", re.IGNORECASE)
NOT_A_DIRECTIVE = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "-- backout is great",
            "-- the backout: tool",
            "SELECT 'backout:risk HIGH';",
            "x -- backout:risk HIGH",
            "--- backout:risk HIGH",
            "-- backout",
            "/* backout:risk */",
            "-- backout-risk HIGH \\",
            "-- ends with a backslash \\",
        ]
    ),
)


@settings(max_examples=300)
@given(st.lists(NOT_A_DIRECTIVE, max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_property_text_without_directive_lines_has_no_directives(
    lines: list[str], ending: str
) -> None:
    text = ending.join(lines)
    assume(not any(DIRECTIVE_SHAPED.match(line) for line in text.split("\n")))
    for kind in ScriptKind:
        assert parse(text, kind) == Directives()


GARBAGE = st.text(
    alphabet=st.one_of(
        st.characters(exclude_characters="\n", codec="utf-8"),
        st.sampled_from(list("\\=:-_ \t") + list(string.ascii_letters[:6])),
    ),
    max_size=40,
)


@settings(max_examples=500)
@given(
    st.lists(GARBAGE, min_size=1, max_size=4),
    st.lists(st.one_of(GARBAGE, st.just("--"), st.just("-- more \\")), max_size=3),
    st.sampled_from(list(ScriptKind)),
    st.integers(min_value=1, max_value=1000),
)
def test_property_garbage_after_backout_only_ever_raises_project_error(
    garbage: list[str], after: list[str], kind: ScriptKind, first_line: int
) -> None:
    text = "\n".join([f"-- backout:{g}" for g in garbage] + after)
    try:
        parse(text, kind, first_line=first_line)
    except ProjectError as exc:
        match = re.match(r"^f\.sql:(\d+): \S", str(exc))
        assert match is not None, str(exc)
        assert exc.line is not None
        assert first_line <= exc.line < first_line + len(text.split("\n"))
        assert int(match[1]) == exc.line
