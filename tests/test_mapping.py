"""Tests for okrsync.mapping and its expression language (pure: plain data, no mocks)."""

from __future__ import annotations

import contextlib
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okrsync.errors import ConfigError, MappingError
from okrsync.mapping import (
    Mapping,
    MappingFileError,
    RecordMappingError,
    builtin_mappings,
    load_mapping,
    parse_mapping,
)
from okrsync.mapping_expr import (
    MAX_DEPTH,
    ExpressionError,
    compile_expression,
    function_names,
    normalize_diacritics,
    tokenize,
)
from okrsync.models import PERSON_FILE_FIELDS, Person

DOCS = Path(__file__).resolve().parent.parent / "docs" / "mapping.md"


def ev(expr: str, record: dict[str, Any] | None = None) -> Any:
    return compile_expression(expr)(record or {})


# ---------------------------------------------------------------------------------------------
# functions, one by one, including what they do with null


@pytest.mark.parametrize(
    ("expr", "record", "expected"),
    [
        # paths and literals
        ("a", {"a": 1}, 1),
        ("missing", {}, None),
        ("manager.id", {"manager": {"id": "M1"}}, "M1"),
        ("manager.id", {"manager": None}, None),
        ("manager.id", {"manager": "not a dict"}, None),
        ("emails[0].value", {"emails": [{"value": "a@x"}]}, "a@x"),
        ("emails[-1].value", {"emails": [{"value": "a@x"}, {"value": "b@x"}]}, "b@x"),
        ("emails[5].value", {"emails": [{"value": "a@x"}]}, None),
        ("`Cost Center`", {"Cost Center": "CC1"}, "CC1"),
        ("[Cost Center]", {"Cost Center": "CC1"}, "CC1"),
        ("`a.b`", {"a.b": 1, "a": {"b": 2}}, 1),
        ("x.`odd@key`", {"x": {"odd@key": 3}}, 3),
        ("'it\\'s'", {}, "it's"),
        ('"tab\\there"', {}, "tab\there"),
        ("-1.5", {}, -1.5),
        ("TRUE", {}, True),
        ("null", {}, None),
        ("`null`", {"null": 1}, 1),
        # coalesce skips None, "" and []
        ("coalesce(a, b, 'x')", {"a": None, "b": ""}, "x"),
        ("coalesce(a, b)", {"a": [], "b": "B"}, "B"),
        ("coalesce(a, b)", {}, None),
        ("Coalesce(a, 0)", {}, 0),
        # text functions: None in, None out
        ("lower(a)", {"a": "ÀB"}, "àb"),
        ("lower(a)", {}, None),
        ("ToLower(a)", {"a": "X"}, "x"),
        ("upper(a)", {"a": "straße"}, "STRASSE"),
        ("upper(a)", {}, None),
        ("trim(a)", {"a": "  x \n"}, "x"),
        ("trim(a)", {}, None),
        ("trim(a)", {"a": 12}, "12"),
        ("lower(a)", {"a": True}, "true"),
        ("strip_spaces(a)", {"a": " a b "}, "ab"),
        ("left(a, 2)", {"a": "abc"}, "ab"),
        ("left(a, 9)", {"a": "abc"}, "abc"),
        ("left(a, -1)", {"a": "abc"}, ""),
        ("left(a, 2)", {}, None),
        ("left(a, '2')", {"a": "abc"}, "ab"),
        ("right(a, 2)", {"a": "abc"}, "bc"),
        ("right(a, 0)", {"a": "abc"}, ""),
        ("right(a, 2)", {}, None),
        ("mid(a, 1, 2)", {"a": "abcdef"}, "ab"),
        ("Mid(a, 3, 10)", {"a": "abcdef"}, "cdef"),
        ("mid(a, 2, 2)", {}, None),
        ("replace(a, '-', '')", {"a": "1-2-3"}, "123"),
        ("replace(a, '-', '')", {}, None),
        ("strip_prefix(a, 'EMP')", {"a": "EMP001"}, "001"),
        ("strip_prefix(a, 'EMP')", {"a": "X001"}, "X001"),
        ("strip_prefix(a, 'EMP')", {}, None),
        ("strip_suffix(a, '@old.example')", {"a": "jo@old.example"}, "jo"),
        ("append(a, '@example.com')", {"a": "jo"}, "jo@example.com"),
        ("append(a, '@example.com')", {}, None),
        ("normalize_diacritics(a)", {"a": "Zoë Ørsted-Łukasz"}, "Zoe Orsted-Lukasz"),
        ("NormalizeDiacritics(a)", {}, None),
        # lists
        ("split(a, ';')", {"a": "a;b;"}, ["a", "b", ""]),
        ("split(a)", {"a": " a  b "}, ["a", "b"]),
        ("split(a, ';')", {}, None),
        ("split_list(a)", {"a": "E1; E2;;"}, ["E1", "E2"]),
        ("split_list(a, ',')", {"a": "E1,E2"}, ["E1", "E2"]),
        ("split_list(a)", {"a": ["E1", " E2 ", "", None]}, ["E1", "E2"]),
        ("split_list(a)", {"a": ""}, []),
        ("split_list(a)", {}, None),
        ("join(', ', a, b, c)", {"a": "x", "b": None, "c": "z"}, "x, z"),
        ("join('.', a, 'y')", {"a": ["p", "q"]}, "p.q.y"),
        ("Join(' ', a, b)", {"a": "", "b": None}, None),
        ("concat(a, b)", {"a": "x", "b": 1}, "x1"),
        ("concat(a, b)", {}, None),
        ("a & ' ' & b", {"a": "Ada", "b": "Lovelace"}, "Ada Lovelace"),
        ("a & '!'", {}, "!"),
        # conditionals and logic
        ("iif(a, 'y', 'n')", {"a": True}, "y"),
        ("IIF(a, 'y', 'n')", {"a": "False"}, "n"),
        ("iif(a, 'y', 'n')", {}, "n"),
        ("iif(eq(a, 'x'), 'y', lower(1))", {"a": "x"}, "y"),
        ("switch(a, 'other', '1', 'active', '0', 'terminated')", {"a": True}, "active"),
        ("switch(a, 'other', '1', 'active', '0', 'terminated')", {"a": 0}, "terminated"),
        ("switch(a, 'other', '1', 'active', '0', 'terminated')", {"a": "7"}, "other"),
        ("switch(a, 'other', null, 'none')", {}, "none"),
        ("switch(a, 'other', 't', 'active')", {}, "other"),
        ("switch(a, 'other')", {"a": "x"}, "other"),
        ("not(a)", {"a": False}, True),
        ("not(a)", {}, True),
        ("and(a, b)", {"a": True, "b": "t"}, True),
        ("and(a, b)", {"a": True}, False),
        ("or(a, b)", {"b": 1}, True),
        ("or(a, b)", {}, False),
        ("eq(a, b)", {"a": "1", "b": 1}, True),
        ("eq(a, b)", {"a": None, "b": None}, True),
        ("eq(a, 'x')", {}, False),
        ("eq(a, 'TRUE')", {"a": True}, True),
        ("isnull(a)", {}, True),
        ("IsNull(a)", {"a": ""}, False),
        ("is_present(a)", {"a": ""}, False),
        ("IsPresent(a)", {"a": "x"}, True),
        ("is_null_or_empty(a)", {"a": []}, True),
        # conversions
        ("to_bool(a)", {"a": "T"}, True),
        ("to_bool(a)", {"a": "f"}, False),
        ("to_bool(a)", {"a": "1"}, True),
        ("to_bool(a)", {"a": 0}, False),
        ("to_bool(a)", {"a": "False"}, False),
        ("CBool(a)", {"a": ""}, None),
        ("to_bool(a)", {}, None),
        ("to_int(a)", {"a": " 42 "}, 42),
        ("to_int(a)", {"a": 7.0}, 7),
        ("to_int(a)", {"a": ""}, None),
        ("to_int(a)", {}, None),
        ("to_string(a)", {"a": 1001}, "1001"),
        ("CStr(a)", {"a": date(2024, 1, 2)}, "2024-01-02"),
        ("to_string(a)", {}, None),
    ],
)
def test_function(expr: str, record: dict[str, Any], expected: Any) -> None:
    assert ev(expr, record) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-29", date(2024, 2, 29)),
        ("1960-01-01-07:00", date(1960, 1, 1)),  # Workday: a date with an offset
        ("1960-01-01+05:30", date(1960, 1, 1)),
        ("2024-01-31Z", date(2024, 1, 31)),
        ("2024-01-31T23:30:00-07:00", date(2024, 1, 31)),
        ("/Date(1587072082000)/", date(2020, 4, 16)),  # SuccessFactors Edm.DateTime
        ("/Date(1587072082000+0000)/", date(2020, 4, 16)),  # Edm.DateTimeOffset
        ("/Date(253402214400000)/", date(9999, 12, 31)),
        ("/Date(-86400000)/", date(1969, 12, 31)),
        ("  ", None),
        ("", None),
    ],
)
def test_parse_date_formats(text: str, expected: date | None) -> None:
    assert ev("parse_date(a)", {"a": text}) == expected


def test_parse_date_with_format_and_passthrough() -> None:
    assert ev("parse_date(a, '%d/%m/%Y')", {"a": "31/01/2024"}) == date(2024, 1, 31)
    assert ev("parse_date(a)", {}) is None
    assert ev("parse_date(a)", {"a": date(2020, 1, 1)}) == date(2020, 1, 1)
    assert ev("parse_date(a)", {"a": datetime(2020, 1, 1, 23, tzinfo=UTC)}) == date(2020, 1, 1)


def test_parse_datetime_is_utc() -> None:
    assert ev("parse_datetime(a)", {"a": "/Date(1587072082000+0200)/"}) == datetime(
        2020, 4, 16, 21, 21, 22, tzinfo=UTC
    )
    assert ev("parse_datetime(a)", {"a": "2024-01-01T10:00:00+02:00"}) == datetime(2024, 1, 1, 8, tzinfo=UTC)
    assert ev("parse_datetime(a)", {"a": "2024-01-01T10:00:00"}) == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert ev("parse_datetime(a)", {"a": "1960-01-01-07:00"}) == datetime(1960, 1, 1, 7, tzinfo=UTC)
    assert ev("parse_datetime(a, '%d.%m.%Y %H:%M')", {"a": "02.01.2024 03:04"}) == datetime(
        2024, 1, 2, 3, 4, tzinfo=UTC
    )
    assert ev("parse_datetime(a)", {"a": date(2024, 1, 2)}) == datetime(2024, 1, 2, tzinfo=UTC)
    assert ev("CDate(a)", {}) is None
    result = ev("parse_datetime(a)", {"a": "2024-06-01T12:00:00Z"})
    assert result.tzinfo is not None and result.utcoffset() == timedelta(0)


def test_format_date() -> None:
    assert ev("format_date(a, '%d/%m/%Y')", {"a": date(2024, 1, 31)}) == "31/01/2024"
    assert ev("format_date(a)", {"a": date(2024, 1, 31)}) == "2024-01-31"
    assert ev("format_date(a, '%Y%m%d')", {"a": "1960-01-01-07:00"}) == "19600101"
    assert ev("format_date(parse_date(a), '%Y')", {"a": "/Date(1587072082000)/"}) == "2020"
    assert ev("format_date(a, '%Y')", {}) is None
    assert ev("format_date(a, '%H:%M')", {"a": "2024-01-01T10:00:00+02:00"}) == "08:00"


@pytest.mark.parametrize(
    ("expr", "record", "reason"),
    [
        ("parse_date(a)", {"a": "31/02/2024"}, "cannot parse '31/02/2024' as a date"),
        ("parse_date(a, '%d/%m/%Y')", {"a": "31/02/2024"}, "with format '%d/%m/%Y'"),
        ("parse_date(a)", {"a": "2024-02-30"}, "cannot parse"),
        ("parse_date(a)", {"a": 20240101}, "expects text"),
        ("parse_datetime(a)", {"a": "soon"}, "cannot parse 'soon' as a date and time"),
        ("format_date(a, '%Y')", {"a": "yesterday"}, "cannot parse"),
        ("format_date(a, '%Y')", {"a": 5}, "expects a date"),
        ("to_bool(a)", {"a": "maybe"}, "cannot convert 'maybe' to a boolean"),
        ("to_int(a)", {"a": "4x"}, "must be an integer"),
        ("to_int(a)", {"a": True}, "must be an integer"),
        ("iif(a, 1, 2)", {"a": "abc"}, "is not a boolean; use is_present"),
        ("lower(a)", {"a": ["x"]}, "expected text, got list"),
        ("mid(a, 0, 1)", {"a": "abc"}, "1-based"),
        ("mid(a, 1, -1)", {"a": "abc"}, "must not be negative"),
        ("left(a, b)", {"a": "abc"}, "must be an integer"),
        ("replace(a, '', 'x')", {"a": "abc"}, "non-empty"),
        ("split(a, '')", {"a": "abc"}, "non-empty separator"),
    ],
)
def test_function_errors(expr: str, record: dict[str, Any], reason: str) -> None:
    with pytest.raises(MappingError, match=re.escape(reason)):
        ev(expr, record)


def test_lazy_functions_evaluate_only_what_they_need() -> None:
    # the unchosen branch would fail on this record; lazy evaluation never runs it
    assert ev("iif(is_present(a), a, parse_date('x'))", {"a": "A"}) == "A"
    assert ev("coalesce(a, parse_date('x'))", {"a": "A"}) == "A"
    assert ev("switch(a, parse_date('x'), 'k', 'v')", {"a": "k"}) == "v"
    assert ev("or(a, to_bool('x'))", {"a": True}) is True
    assert ev("and(a, to_bool('x'))", {"a": False}) is False


def test_function_names_are_case_and_underscore_insensitive() -> None:
    assert ev("NORMALIZE_DIACRITICS(a)", {"a": "é"}) == "e"
    assert ev("normalizeDiacritics(a)", {"a": "é"}) == "e"
    assert ev("ParseDate(a)", {"a": "2024-01-01"}) == date(2024, 1, 1)


# ---------------------------------------------------------------------------------------------
# parse errors


@pytest.mark.parametrize(
    ("text", "column", "reason"),
    [
        ("lower(x", 8, "expected ')'"),
        ("lower(x))", 9, "unexpected ')'"),
        ("'abc", 1, "unterminated string"),
        ("x & ", 5, "expected a value"),
        ("a.", 3, "expected a field name"),
        ("a[b]", 3, "expected a list index"),
        ("f(a,)", 1, "unknown function"),
        ("lower(a,)", 9, "expected a value"),
        ("lower(a, b)", 1, "lower() takes 1 argument, got 2"),
        ("mid(a)", 1, "mid() takes 3 arguments, got 1"),
        ("coalesce()", 1, "takes at least 1 argument"),
        ("parse_date(a, b, c)", 1, "takes at most 2 arguments"),
        ("trim(a) ; x", 9, "unexpected character ';'"),
        ("x == 1", 3, "unexpected character '='"),
        ("", 1, "empty expression"),
        ("   ", 4, "empty expression"),
        ("switch(a, 'd', 'k')", 1, "a result is missing"),
        ("lower(`x)", 7, "unterminated `name`"),
        ("lower(``)", 7, "empty field name"),
        ("'\\q'", 2, "unknown escape"),
        ("a  b", 4, "after a complete expression"),
        ("lower(a) x", 10, "after a complete expression"),
    ],
)
def test_parse_errors_have_columns(text: str, column: int, reason: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    assert info.value.column == column
    assert reason in info.value.reason
    assert f"at column {column}" in str(info.value)
    assert isinstance(info.value, MappingError) and isinstance(info.value, ConfigError)
    assert info.value.exit_code == 2


def test_unknown_function_lists_known_ones_and_suggests() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("lower(lowr(x))")
    message = str(info.value)
    assert info.value.column == 7
    assert "unknown function 'lowr' (did you mean lower?)" in message
    for name in function_names():
        assert name in message
    with pytest.raises(ExpressionError, match="format_date\\(parse_datetime"):
        compile_expression("FormatDateTime(x, 'yyyyMMdd', 'yyyy')")


# ---------------------------------------------------------------------------------------------
# hostile expressions


def test_hostile_expressions_are_clean_mapping_errors() -> None:
    for text in (
        "(" * 10_000 + "x" + ")" * 10_000,
        "lower(" * 10_000 + "x" + ")" * 10_000,
        "[" * 10_000,
        "a" + "[0]" * 10_000 + ")",
    ):
        with pytest.raises(ExpressionError):
            compile_expression(text)
    # the deepest allowed nesting still compiles and evaluates without recursion trouble
    deep = "lower(" * (MAX_DEPTH - 1) + "x" + ")" * (MAX_DEPTH - 1)
    assert compile_expression(deep)({"x": "Y"}) == "y"
    # __import__ and friends are just unknown functions; attribute access is a field path
    for text in ("__import__('os')", "eval('1')", "exec('x')", "open('/etc/passwd')"):
        with pytest.raises(ExpressionError, match="unknown function"):
            compile_expression(text)
    assert ev("__class__.__mro__", {}) is None
    assert ev("a.__class__", {"a": "x"}) is None


def test_long_chains_and_enormous_strings() -> None:
    chain = " & ".join(["'a'"] * 15_000)
    assert ev(chain) == "a" * 15_000  # flat: no recursion however long
    big = "x" * 90_000
    assert ev(f"lower('{big}')") == big
    with pytest.raises(ExpressionError, match="characters long"):
        compile_expression("'" + "x" * 200_000 + "'")
    huge = "a" * 600_000
    with pytest.raises(MappingError, match="exceed"):
        ev("replace(a, 'a', 'bbbb')", {"a": huge})
    assert len(ev("lower(a)", {"a": huge})) == 600_000
    with pytest.raises(ExpressionError, match="unterminated string"):
        compile_expression("'" + "x" * 90_000)


# ---------------------------------------------------------------------------------------------
# mapping files

WORKDAY = """\
[mapping]
name = "workday-soap"
description = "test"

[fields]
id = "Worker_ID"                                  # direct
email = { expr = "lower(trim(coalesce(Work_Email, Home_Email)))" }
worker_type = { const = "employee" }
"title" = { source = "Business_Title", null = "clear" }
manager_id = "Manager.ID"
status = { expr = "switch(Active, 'active', '1', 'active', '0', 'terminated')" }
hire_date = { expr = "parse_date(Hire_Date, '%Y-%m-%d')" }
department = { source = "Dept", default = "Unassigned" }

[attributes]
cost_center_code = "`Cost Center`"
badge.expr = "to_int(Badge)"
"""


def test_parse_mapping_and_apply() -> None:
    m = parse_mapping(WORKDAY, name="x")
    assert m.name == "workday-soap"
    assert [r.target for r in m.fields][:3] == ["id", "email", "worker_type"]
    assert {r.target: r.line for r in m.fields + m.attributes} == {
        "id": 6,
        "email": 7,
        "worker_type": 8,
        "title": 9,
        "manager_id": 10,
        "status": 11,
        "hire_date": 12,
        "department": 13,
        "cost_center_code": 16,
        "badge": 17,
    }
    assert m.fields[0].key == "Worker_ID"  # a direct field is a plain dict look-up
    assert m.fields[4].key is None  # a dotted path is not
    assert m.source_fields() == {
        "Worker_ID",
        "Work_Email",
        "Home_Email",
        "Business_Title",
        "Manager.ID",
        "Active",
        "Hire_Date",
        "Dept",
        "Cost Center",
        "Badge",
    }
    record = {
        "Worker_ID": "21001",
        "Work_Email": None,
        "Home_Email": " Ada@Example.COM ",
        "Manager": {"ID": "21000"},
        "Active": "1",
        "Hire_Date": "2020-03-01",
        "Cost Center": "CC-7",
        "Badge": "12",
        "Ignored": "x",
    }
    assert m.apply(record) == {
        "id": "21001",
        "email": "ada@example.com",
        "worker_type": "employee",
        "title": None,
        "manager_id": "21000",
        "status": "active",
        "hire_date": date(2020, 3, 1),
        "department": "Unassigned",
        "attributes": {"cost_center_code": "CC-7", "badge": 12},
    }
    # skip leaves keys out; clear keeps them as None
    minimal = m.apply({"Worker_ID": "1"})
    assert minimal == {
        "id": "1",
        "worker_type": "employee",
        "title": None,
        "status": "active",
        "department": "Unassigned",
        "attributes": {},
    }
    assert m.apply({"Worker_ID": "1"}, keep_unmapped=True)["attributes"] == {}
    assert m.apply({"Worker_ID": "1", "Extra": 5}, keep_unmapped=True)["attributes"] == {"Extra": 5}


def test_record_error_names_mapping_line_field_and_reason() -> None:
    m = parse_mapping(WORKDAY, name="x")
    with pytest.raises(RecordMappingError) as info:
        m.apply({"Worker_ID": "9", "Hire_Date": "31/02/2024"})
    err = info.value
    assert (err.mapping, err.line, err.field, err.source_field) == (
        "workday-soap",
        12,
        "hire_date",
        "Hire_Date",
    )
    assert str(err) == (
        "mapping 'workday-soap' line 12 (hire_date = parse_date(Hire_Date, '%Y-%m-%d')): "
        "cannot parse '31/02/2024' as a date with format '%Y-%m-%d'"
    )
    assert err.message == str(err) and err.reason.startswith("cannot parse '31/02/2024'")
    err.record_key = "9"
    assert str(err).startswith("record '9': mapping 'workday-soap' line 12 (hire_date")
    assert err.exit_code == 2
    with pytest.raises(RecordMappingError) as info:
        m.apply({"Worker_ID": "9", "Badge": "twelve"})
    assert info.value.field == "attributes.badge" and info.value.line == 17


def test_mapping_file_errors_collect_every_problem_with_lines() -> None:
    text = """\
[mapping]
name = "bad"
colour = "blue"

[fields]
id = "Worker ID"
email = { expr = "lower(trim(Work_Email)" }
title = { expr = "lowr(x)" }
status = { source = "a", const = "b" }
department = { source = "d", null = "keep" }
division = 42
location = { sauce = "x" }
attributes = "x"

[extra]
"""
    with pytest.raises(MappingFileError) as info:
        parse_mapping(text, name="bad.toml", source="/etc/okrsync/bad.toml")
    err = info.value
    found = {(i.line, i.field): i for i in err.issues}
    assert set(found) == {
        (15, None),
        (3, None),
        (6, "id"),
        (7, "email"),
        (8, "title"),
        (9, "status"),
        (10, "department"),
        (11, "division"),
        (12, "location"),
        (13, None),
    }
    assert found[(7, "email")].column == 23
    assert found[(8, "title")].column == 1
    message = str(err)
    assert message.startswith("invalid mapping 'bad' (/etc/okrsync/bad.toml): 10 problems")
    assert "line 6 (id): 'Worker ID' is not a field path" in message
    assert "`Cost Center`" in message
    assert "line 7 (email): expected ')', found end of expression at column 23" in message
    assert "unknown function 'lowr'" in message
    assert "line 9 (status): give exactly one of source, expr, const" in message
    assert "line 10 (department): null must be 'skip' or 'clear'" in message
    assert "unknown table [extra]" in message
    assert "unknown key 'colour' in [mapping]" in message
    assert err.line == err.issues[0].line


def test_invalid_toml_names_line() -> None:
    with pytest.raises(MappingFileError) as info:
        parse_mapping("[fields]\nid = \n", name="t")
    assert info.value.line == 2
    assert "not valid TOML" in str(info.value)


def test_line_numbers_for_every_key_style() -> None:
    text = """\
# comment id = "no"
[mapping]
name = "lines"
notes = '''
email = "not a key"
'''

[fields]
  id   =   "a"
"quoted key" = "b"
'literal key' = "c"
dotted.expr = "lower(d)"
inline = { const = 1 }   # comment

[fields.subtable]
expr = "upper(e)"
null = "clear"

[attributes]
"x.y" = "f"
"""
    text = text.replace("notes = ", "description = ")
    m = parse_mapping(text, name="lines")
    assert {r.target: r.line for r in m.fields} == {
        "id": 9,
        "quoted key": 10,
        "literal key": 11,
        "dotted": 12,
        "inline": 13,
        "subtable": 15,
    }
    assert m.attributes[0].target == "x.y" and m.attributes[0].line == 20
    assert m.fields[-1].null == "clear"


def test_extends_overrides_and_drops(tmp_path: Path) -> None:
    base = tmp_path / "base.toml"
    base.write_text('[mapping]\nname = "base"\n\n[fields]\nid = "ID"\nemail = "Mail"\ntitle = "T"\n')
    child = tmp_path / "child.toml"
    child.write_text(
        '[mapping]\nextends = "base.toml"\n\n[fields]\nemail = { expr = "lower(Mail2)" }\n'
        'title = { drop = true }\nlocation = "Loc"\n'
    )
    m = load_mapping(child)
    assert m.name == "child"
    assert [(r.target, r.origin, r.line) for r in m.fields] == [
        ("id", "base", 5),
        ("email", "child", 5),
        ("location", "child", 7),
    ]
    assert m.apply({"ID": "1", "Mail2": "A@B", "T": "x", "Loc": "L"}) == {
        "id": "1",
        "email": "a@b",
        "location": "L",
    }
    (tmp_path / "loop.toml").write_text('[mapping]\nextends = "loop.toml"\n')
    with pytest.raises(MappingError, match="extends itself"):
        load_mapping(tmp_path / "loop.toml")
    (tmp_path / "dropper.toml").write_text('[mapping]\nextends = "files"\n[fields]\nnope = { drop = true }\n')
    with pytest.raises(MappingFileError, match="base mapping has no such field"):
        load_mapping(tmp_path / "dropper.toml")
    with pytest.raises(MappingFileError, match="needs \\[mapping\\] extends"):
        parse_mapping('[fields]\nid = "a"\nx = { drop = true }\n', name="n")


def test_load_mapping_errors(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"not a built-in \(.*files.*\) and no such file"):
        load_mapping("no-such-mapping")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(MappingError, match="cannot read mapping file"):
        load_mapping(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(MappingFileError, match="no rules"):
        load_mapping(str(empty))


def test_validate_targets() -> None:
    m = parse_mapping('[fields]\nid = "a"\nemial = "b"\n', name="typo")
    with pytest.raises(MappingFileError) as info:
        m.validate_targets(Person.model_fields)
    assert info.value.issues[0].line == 3 and "unknown target field 'emial'" in str(info.value)


def test_reserved_attributes_target_and_direct_mapping_constructor() -> None:
    with pytest.raises(MappingFileError, match="reserved"):
        parse_mapping('[fields]\nattributes = "a"\n', name="r")
    m = parse_mapping('[fields]\nid = "a"\n', name="r")
    assert Mapping(name="copy", fields=m.fields).apply({"a": 1}) == {"id": 1}


# ---------------------------------------------------------------------------------------------
# the built-in files mapping


def test_files_mapping_is_the_identity_for_people_files() -> None:
    assert "files" in builtin_mappings()
    m = load_mapping("files")
    assert tuple(m.targets()) == PERSON_FILE_FIELDS
    m.validate_targets(Person.model_fields)
    csv_row = {
        "id": "E1",
        "manager_id": "",
        "email": "ada@example.com",
        "user_name": "",
        "display_name": "Ada Lovelace",
        "status": "Active",
        "worker_type": "",
        "hire_date": "2020-03-01",
        "termination_date": "",
        "additional_manager_ids": "E7;E8",
        "badge": "77",
        "blank_extra": "",
    }
    mapped = m.apply(csv_row, keep_unmapped=True)
    assert mapped == {
        "id": "E1",
        "email": "ada@example.com",
        "display_name": "Ada Lovelace",
        "status": "active",
        "hire_date": date(2020, 3, 1),
        "additional_manager_ids": ["E7", "E8"],
        "attributes": {"badge": "77"},
    }
    person = Person(**mapped)
    assert person.additional_manager_ids == ("E7", "E8") and person.manager_id is None
    jsonl = {
        "id": 1001,
        "manager_id": 1000,
        "additional_manager_ids": ["E7"],
        "hire_date": "2020-03-01",
        "attributes": {"badge": "77"},
    }
    mapped = m.apply(jsonl, keep_unmapped=True)
    assert mapped["id"] == "1001" and mapped["manager_id"] == "1000"
    assert mapped["additional_manager_ids"] == ["E7"] and mapped["attributes"] == {"badge": "77"}
    assert "attributes" not in m.apply({"id": "E1"})


# ---------------------------------------------------------------------------------------------
# docs stay in step with the code


def test_docs_list_every_function_with_a_working_example() -> None:
    text = DOCS.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+)\([^|]*\|[^|]*\| `([^`]+)` \|", text, flags=re.MULTILINE)
    documented = {name for name, _ in rows}
    assert documented == set(function_names())
    for _, example in rows:
        compile_expression(example.replace("\\|", "|"))


# ---------------------------------------------------------------------------------------------
# properties

texts = st.text(max_size=40)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_text_functions_match_python(s: str) -> None:
    record = {"s": s}
    assert ev("lower(s)", record) == s.lower()
    assert ev("upper(s)", record) == s.upper()
    assert ev("trim(s)", record) == s.strip()


@settings(max_examples=300, deadline=None)
@given(texts)
def test_normalize_diacritics_properties(s: str) -> None:
    out = normalize_diacritics(s)
    assert normalize_diacritics(out) == out  # idempotent
    assert not any(unicodedata.category(c) == "Mn" for c in unicodedata.normalize("NFD", out))
    if s.isascii():
        assert out == s
    reference = unicodedata.normalize(
        "NFC", "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn")
    )
    if all(c not in "øØłŁđĐðÐħĦıßæÆœŒþÞ" for c in s):
        assert out == reference


@given(st.dates())
def test_iso_dates_round_trip(d: date) -> None:
    assert ev("parse_date(format_date(d))", {"d": d}) == d


@given(
    st.dates(min_value=date(1000, 1, 1)),
    st.sampled_from(["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%Y%m%d", "%d.%m.%Y", "%Y-%j"]),
)
def test_formatted_dates_round_trip(d: date, fmt: str) -> None:
    record = {"d": d, "f": fmt}
    assert ev("parse_date(format_date(d, f), f)", record) == d


@given(
    st.datetimes(
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5))])
    )
)
def test_datetimes_round_trip(dt: datetime) -> None:
    try:
        expected = dt.astimezone(UTC)
    except OverflowError:
        return
    assert ev("parse_datetime(format_date(d))", {"d": dt}) == expected


def test_sf_dates_round_trip_through_milliseconds() -> None:
    for d in (date(1900, 1, 1), date(2024, 2, 29), date(9999, 12, 31)):
        ms = int(
            (datetime(d.year, d.month, d.day, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
        )
        assert ev("parse_date(a)", {"a": f"/Date({ms * 1000})/"}) == d


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([*"ab1 ._-'\"`[]()&,\\é\n\t", "lower", "coalesce", "__"])).map("".join))
def test_parser_only_raises_mapping_errors_on_structured_noise(text: str) -> None:
    with contextlib.suppress(MappingError):
        compile_expression(text)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_tokenizer_only_raises_mapping_errors(text: str) -> None:
    with contextlib.suppress(MappingError):
        tokenize(text)
    with contextlib.suppress(MappingError):
        compile_expression(text)
