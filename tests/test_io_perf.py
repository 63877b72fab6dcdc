"""Behaviour of the fast paths of mapping → person_from_row → Person (no timings here).

Each fast path must give exactly what the general path gives: the same values, the same
fields set, the same error naming the same field, and never a change to the caller's dict.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from okrsync.io import MAX_FIELD_CHARS, FieldValueError, _split_attributes, check_text, person_from_row
from okrsync.mapping import RecordMappingError, load_mapping, parse_mapping
from okrsync.mapping_expr import (
    MEMO_LIMIT,
    Call,
    EvalError,
    _lazy_switch,
    compile_expression,
    compile_node,
    parse_expression,
)
from okrsync.models import Person

GRAPH_USER: dict[str, Any] = {
    "id": "oid-1",
    "employeeId": "100001",
    "accountEnabled": True,
    "department": "Executive",
    "displayName": "Claudia Mccarthy",
    "employeeHireDate": "2025-05-25T00:00:00Z",
    "employeeType": "Employee",
    "givenName": "Claudia",
    "jobTitle": "Chief Executive Officer",
    "mail": "claudia@example.com",
    "officeLocation": "  ",
    "surname": "Mccarthy",
    "userPrincipalName": "claudia@example.com",
    "_okrsync": {"id": "oid-1", "managerId": None, "externalIds": {"entra": "oid-1"}},
}


def _reference_person(data: dict[str, Any], ref: str | None = None) -> Person:
    """person_from_row as it was written before its fast path: copy, check, split, validate."""
    data = dict(data)
    for key in ("id", "manager_id"):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            data[key] = str(value)
        elif isinstance(value, str):
            data[key] = value.strip() or None
    for key, value in data.items():
        if isinstance(value, str):
            check_text(key, value)
    fields = _split_attributes(data)
    extra = fields.get("additional_manager_ids")
    if isinstance(extra, str):
        fields["additional_manager_ids"] = tuple(x.strip() for x in extra.split(";") if x.strip())
    if ref is not None and fields.get("raw_ref") is None:
        fields["raw_ref"] = ref
    return Person.model_validate(fields)


ROWS: list[dict[str, Any]] = [
    {"id": "1", "email": "a@example.com", "status": "active", "hire_date": "2020-01-02"},
    {"id": 7, "manager_id": " 3 ", "title": "Engineer"},  # ids normalised
    {"id": "1", "manager_id": "", "worker_type": None, "status": None, "title": None},  # blanks
    {"id": "1", "attributes": {"team": "red"}, "additional_manager_ids": "2; 3;;"},
    {"id": "1", "attributes": {}, "external_ids": None},
    {"id": "1", "attributes": None, "cost_center": "CC1"},
    {"id": "1", "team": "red", "attributes": {"team": "blue", "floor": 3}, "badge": None},  # extras
    {"id": "1", "raw_ref": "kept", "email": None},
]


@pytest.mark.parametrize("row", ROWS)
def test_person_from_row_matches_the_general_path(row: dict[str, Any]) -> None:
    before = {k: (dict(v) if isinstance(v, dict) else v) for k, v in row.items()}
    person = person_from_row(row, "file:1")
    expected = _reference_person(before, "file:1")
    assert person == expected
    assert person.model_fields_set == expected.model_fields_set
    assert row == before  # the caller's dict is never changed


def test_person_from_row_copies_given_attributes() -> None:
    attributes = {"team": "red"}
    person = person_from_row({"id": "1", "attributes": attributes})
    assert person.attributes == attributes
    assert person.attributes is not attributes


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ({"id": "1", "email": "a\x00b", "title": "x\u202ey"}, "email", "control character U+0000"),
        ({"id": "1", "title": "ok", "department": "x\u202ey"}, "department", "U+202E at position 1"),
        ({"id": "1", "title": "t" * (MAX_FIELD_CHARS + 1)}, "title", "characters; at most"),
        ({"id": "1", "title": "t" * 3000, "department": "d" * 3000, "email": "\x07"}, "email", "U+0007"),
        ({"id": "1", "team": "\ud800"}, "team", "lone surrogate"),
    ],
)
def test_refused_text_names_the_first_offending_field(row: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(FieldValueError) as caught:
        person_from_row(row)
    assert caught.value.field == field
    assert reason in caught.value.reason
    with pytest.raises(FieldValueError) as reference:
        _reference_person(row)
    assert str(caught.value) == str(reference.value)


def test_long_values_that_are_each_within_the_limit_pass() -> None:
    person = person_from_row({"id": "1", "title": "t" * MAX_FIELD_CHARS, "department": "d" * MAX_FIELD_CHARS})
    assert len(person.title or "") == MAX_FIELD_CHARS


def test_validation_errors_are_pydantics() -> None:
    with pytest.raises(ValidationError) as caught:
        person_from_row({"id": "1", "status": "retired", "hire_date": "not a date"})
    assert [e["loc"] for e in caught.value.errors()] == [("status",), ("hire_date",)]


def test_entra_mapping_output_validates_like_before() -> None:
    mapping = load_mapping("entra")
    record = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GRAPH_USER.items()}
    out = mapping.apply(record)
    assert list(out) == [
        "id",
        "external_ids",
        "email",
        "user_name",
        "display_name",
        "given_name",
        "family_name",
        "title",
        "department",
        "worker_type",
        "status",
        "hire_date",
    ]  # rule order; blank officeLocation and null managerId left out
    assert out["hire_date"] == date(2025, 5, 25)
    assert record == GRAPH_USER
    person = person_from_row(out, "entra:users/oid-1")
    assert person == _reference_person(out, "entra:users/oid-1")
    assert person.location is None and person.worker_type == "employee"


def test_plain_key_runs_keep_rule_order_and_policies() -> None:
    mapping = parse_mapping(
        """
[mapping]
blank_is_null = true
[fields]
id = "a"
email = "b"
title = { source = "c", default = "none" }
department = "d"
location = { source = "e", null = "clear" }
cost_center = "f"
[attributes]
g = "g"
""",
        name="t",
    )
    record = {"a": "1", "b": " ", "c": "", "d": "D", "e": None, "f": "F", "g": "G"}
    assert mapping.apply(record) == {
        "id": "1",
        "title": "none",
        "department": "D",
        "location": None,
        "cost_center": "F",
        "attributes": {"g": "G"},
    }
    assert list(mapping.apply(record)) == [
        "id",
        "title",
        "department",
        "location",
        "cost_center",
        "attributes",
    ]


def test_literal_switch_matches_like_equal() -> None:
    expr = compile_expression("switch(x, 'other', 'a', 'first', 'a', 'second', '1', 'one', 'true', 'yes')")
    assert expr({"x": "a"}) == "first"  # the first equal key wins
    assert expr({"x": "b"}) == "other"
    assert expr({"x": 1}) == "one"  # by meaning across types, as before
    assert expr({"x": True}) == "one"  # bool_of('1') is True: the first equal key
    node = parse_expression("switch(x, 'other', 'a', 'first', 'a', 'second', '1', 'one', 'true', 'yes')")
    assert isinstance(node, Call)
    generic = _lazy_switch([compile_node(a) for a in node.args])  # the loop over equal()
    for value in ("a", "b", "A", "1", "true", "True", 1, 0, True, False, None, 1.0, ["a"]):
        assert expr({"x": value}) == generic({"x": value}), value
    assert expr({"x": None}) == "other"
    mixed = compile_expression("switch(x, 'other', 1, 'one', 'a', 'letter')")
    assert mixed({"x": "1"}) == "one"
    assert mixed({"x": "a"}) == "letter"


def test_memoized_expressions_give_fresh_mutable_results_and_raise_each_time() -> None:
    split = compile_expression("split_list(x, ';')")
    first = split({"x": "a;b"})
    first.append("changed")
    assert split({"x": "a;b"}) == ["a", "b"]
    dates = compile_expression("parse_date(x)")
    assert dates({"x": "2020-01-02"}) == dates({"x": "2020-01-02"}) == date(2020, 1, 2)
    for _ in range(3):
        with pytest.raises(EvalError) as caught:
            dates({"x": "soon"})
        assert "cannot parse 'soon' as a date" in str(caught.value)
    flag = compile_expression("iif(x, 'on', 'off')")
    assert [flag({"x": v}) for v in (True, False, 1, 0, "yes", None)] == [
        "on",
        "off",
        "on",
        "off",
        "on",
        "off",
    ]


def test_memo_stops_for_inputs_that_do_not_repeat() -> None:
    lower = compile_expression("lower(x)")
    values = [f"Name{i}" for i in range(MEMO_LIMIT + 10)]
    assert [lower({"x": v}) for v in values] == [v.lower() for v in values]
    assert lower({"x": "ABC"}) == "abc"


def test_record_errors_name_the_failing_rule() -> None:
    mapping = parse_mapping(
        """
[fields]
id = "a"
email = "b"
hire_date = { expr = "parse_date(c)" }
title = "d"
""",
        name="t",
    )
    with pytest.raises(RecordMappingError) as caught:
        mapping.apply({"a": "1", "b": "x", "c": "never", "d": "T"})
    assert caught.value.field == "hire_date"
    assert caught.value.line == 5
    assert caught.value.source_field == "c"
