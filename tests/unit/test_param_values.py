"""``convert_param``: every documented parameter type, with valid and invalid values."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backout.model.script import PARAM_TYPES, convert_param

UTC = dt.UTC


@pytest.mark.parametrize(
    ("type_name", "raw", "value"),
    [
        ("text", "anything at all", "anything at all"),
        ("text", "  kept as typed  ", "  kept as typed  "),
        ("text", "", ""),
        ("integer", "42", 42),
        ("int", "-7", -7),
        ("bigint", " 9223372036854775807 ", 9223372036854775807),
        ("smallint", "+3", 3),
        ("integer", "007", 7),
        ("numeric", "1.50", decimal.Decimal("1.50")),
        ("decimal", "-0.001", decimal.Decimal("-0.001")),
        ("numeric", "10", decimal.Decimal("10")),
        ("numeric", ".5", decimal.Decimal("0.5")),
        ("numeric", "1e3", decimal.Decimal("1E+3")),
        ("boolean", "true", True),
        ("boolean", "FALSE", False),
        ("bool", "yes", True),
        ("bool", "No", False),
        ("boolean", "on", True),
        ("boolean", "off", False),
        ("boolean", "1", True),
        ("boolean", "0", False),
        ("date", "2024-02-29", dt.date(2024, 2, 29)),
        ("date", " 2024-01-01 ", dt.date(2024, 1, 1)),
        ("timestamp", "2024-01-01T10:30:00", dt.datetime(2024, 1, 1, 10, 30)),
        ("timestamp", "2024-01-01 10:30:00.250", dt.datetime(2024, 1, 1, 10, 30, 0, 250000)),
        ("timestamptz", "2024-01-01T10:30:00", dt.datetime(2024, 1, 1, 10, 30, tzinfo=UTC)),
        (
            "timestamptz",
            "2024-01-01T10:30:00+02:00",
            dt.datetime(2024, 1, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ),
        ("timestamptz", "2024-01-01T10:30:00Z", dt.datetime(2024, 1, 1, 10, 30, tzinfo=UTC)),
        (
            "uuid",
            "12345678-1234-5678-1234-567812345678",
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
        ),
        (
            "uuid",
            "12345678123456781234567812345678",
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
        ),
        ("INTEGER", "5", 5),
    ],
)
def test_valid_values(type_name: str, raw: str, value: object) -> None:
    got = convert_param(type_name, raw)
    assert got == value
    assert type(got) is type(value)


def test_timestamptz_without_zone_means_utc() -> None:
    got = convert_param("timestamptz", "2024-06-01 12:00")
    assert isinstance(got, dt.datetime)
    assert got.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("type_name", "raw", "message"),
    [
        ("integer", "ten", "not an integer: 'ten'"),
        ("integer", "1.5", "not an integer: '1.5'"),
        ("integer", "", "not an integer: ''"),
        ("integer", "1_000", "not an integer: '1_000'"),
        ("integer", "١٢", "not an integer: '١٢'"),
        ("int", "0x10", "not an integer: '0x10'"),
        ("numeric", "abc", "not a number: 'abc'"),
        ("numeric", "NaN", "not a number: 'NaN'"),
        ("numeric", "Infinity", "not a number: 'Infinity'"),
        ("numeric", "1_0", "not a number: '1_0'"),
        ("decimal", "1,5", "not a number: '1,5'"),
        ("boolean", "maybe", "not a boolean: 'maybe'"),
        ("bool", "", "not a boolean: ''"),
        ("date", "20240101", "not a date (YYYY-MM-DD): '20240101'"),
        ("date", "2024-W01-1", "not a date (YYYY-MM-DD): '2024-W01-1'"),
        ("date", "01/02/2024", "not a date (YYYY-MM-DD): '01/02/2024'"),
        ("date", "2024-02-30", "day is out of range for month"),
        ("timestamp", "yesterday", "Invalid isoformat string"),
        (
            "timestamp",
            "2024-01-01T00:00:00+00:00",
            "timestamp must not carry a time zone (use timestamptz): '2024-01-01T00:00:00+00:00'",
        ),
        ("timestamptz", "2024-13-01T00:00", "month must be in 1..12"),
        ("uuid", "not-a-uuid", "badly formed hexadecimal UUID string"),
        ("uuid", "1234", "badly formed hexadecimal UUID string"),
    ],
)
def test_invalid_values_raise_value_error(type_name: str, raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        convert_param(type_name, raw)


def test_unknown_type_is_a_value_error_not_a_key_error() -> None:
    with pytest.raises(ValueError, match=r"^unknown parameter type 'money'$"):
        convert_param("money", "1")


def test_every_type_name_is_documented() -> None:
    assert set(PARAM_TYPES) == {
        "text", "integer", "int", "bigint", "smallint", "numeric", "decimal",
        "boolean", "bool", "date", "timestamp", "timestamptz", "uuid",
    }  # fmt: skip


@given(st.integers())
def test_property_integers_round_trip(n: int) -> None:
    assert convert_param("integer", str(n)) == n


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_property_decimals_round_trip(d: decimal.Decimal) -> None:
    assert convert_param("numeric", str(d)) == d


@given(st.dates())
def test_property_dates_round_trip(d: dt.date) -> None:
    assert convert_param("date", d.isoformat()) == d


@given(st.datetimes(timezones=st.just(UTC)))
def test_property_timestamptz_round_trip(stamp: dt.datetime) -> None:
    assert convert_param("timestamptz", stamp.isoformat()) == stamp


@given(st.uuids())
def test_property_uuids_round_trip(u: uuid.UUID) -> None:
    assert convert_param("uuid", str(u)) == u


@given(st.text())
def test_property_any_input_gives_a_value_or_value_error(raw: str) -> None:
    for type_name in PARAM_TYPES:
        with contextlib.suppress(ValueError):
            convert_param(type_name, raw)
