"""Canonical models: frozen, validated, JSON round-trip, people files both ways."""

from __future__ import annotations

import copy
import pickle
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from okrsync.io import read_people, write_people
from okrsync.models import (
    AlignmentEdge,
    AlignmentKind,
    Cycle,
    KeyResult,
    LearningItem,
    LearningLink,
    Objective,
    OkrSet,
    OrgSnapshot,
    OrgUnit,
    Owner,
    Person,
)

PERSON = Person(
    id="1001",
    external_ids={"workday": "abc"},
    email="Ann.Lee@x.com",
    display_name="Ann Lée",
    given_name="Ann",
    family_name="Lée",
    title="VP",
    department="Sales",
    manager_id="1000",
    additional_manager_ids=("900", "901"),
    hire_date=date(2020, 1, 2),
    attributes={"badge": 7, "tags": ["a", "b"]},
)

SAMPLES = [
    PERSON,
    OrgUnit(id="D1", name="Sales", parent_id="D0", head_person_id="1001"),
    OrgSnapshot(source="hr", taken_at=datetime(2026, 1, 1, tzinfo=UTC), people=(PERSON,)),
    Cycle(id="H1", name="H1", start=date(2026, 1, 1), end=date(2026, 6, 30)),
    Objective(id="O1", title="Win", owner=Owner(id="1001"), cycle_id="H1", tags=("x",)),
    KeyResult(id="K1", objective_id="O1", title="Close $2M", target_value=2e6, current_value=5e5),
    AlignmentEdge(child_id="O2", parent_id="K1", kind=AlignmentKind.CASCADE, generated_by="cascade:kr"),
    LearningItem(id="L1", provider="viva", external_id="LP1", title="Negotiation", skills=("negotiation",)),
    LearningLink(id="LL1", item_id="L1", key_result_id="K1", learner_id="1001", due=date(2026, 6, 30)),
]


@pytest.mark.parametrize("model", SAMPLES, ids=lambda m: type(m).__name__)
def test_json_round_trip(model: object) -> None:
    cls = type(model)
    assert cls.model_validate_json(model.model_dump_json()) == model  # type: ignore[attr-defined]


def test_okrset_round_trip() -> None:
    okrs = OkrSet(objectives=(SAMPLES[4],), key_results=(SAMPLES[5],), alignments=(SAMPLES[6],))
    assert OkrSet.model_validate_json(okrs.model_dump_json()) == okrs


def test_models_are_frozen_and_strict() -> None:
    with pytest.raises(ValidationError):
        PERSON.title = "CEO"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        Person(id="1", nickname="x")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Person(id="")
    with pytest.raises(ValidationError):
        Objective(id="O", title="t", owner=Owner(id="1"), progress=120)


def test_key_result_progress() -> None:
    assert (
        KeyResult(
            id="k", objective_id="o", title="t", start_value=0, target_value=200, current_value=50
        ).progress
        == 25
    )
    assert (
        KeyResult(
            id="k", objective_id="o", title="t", start_value=10, target_value=0, current_value=5
        ).progress
        == 50
    )
    assert KeyResult(id="k", objective_id="o", title="t").progress == 0


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_people_file_round_trip(tmp_path: Path, suffix: str) -> None:
    other = Person(id="1000", email="boss@x.com", status="terminated", worker_type="contingent")
    path = tmp_path / f"people{suffix}"
    write_people(path, [PERSON, other])
    back = read_people(path)
    if suffix == ".csv":  # CSV carries attributes as text columns
        assert back[0].attributes == {"badge": "7", "tags": "a;b"}
        back[0] = back[0].model_copy(update={"attributes": PERSON.attributes})
    assert back == [PERSON, other]


# -- Person internals: cheap by the million, without changing any value or behaviour --------


def test_person_equality_does_not_depend_on_how_it_was_built() -> None:
    built = Person(id="7", department="Sales", attributes={}, external_ids={})
    defaulted = Person(id="7", department="Sales")
    constructed = Person.model_construct(id="7", department="Sales")
    from_json = Person.model_validate_json(defaulted.model_dump_json())
    assert built == defaulted == constructed == from_json
    assert built != Person(id="7", department="Legal")
    assert defaulted != Person(id="7", department="Sales", attributes={"x": 1})
    assert list(defaulted.__dict__) == list(Person.model_fields)


def test_person_is_still_frozen_and_unhashable() -> None:
    p = Person(id="7")
    with pytest.raises(ValidationError):
        p.department = "Sales"  # type: ignore[misc]
    with pytest.raises(TypeError):  # dict-valued fields make a Person unhashable, as before
        hash(p)


def test_empty_defaults_are_shared_but_cannot_leak_between_people() -> None:
    a, b = Person(id="a"), Person(id="b")
    for field in ("attributes", "external_ids"):
        value = getattr(a, field)
        assert value == {} and isinstance(value, dict)
        with pytest.raises(TypeError):
            value["k"] = "v"
        with pytest.raises(TypeError):
            value.update(k="v")
        with pytest.raises(TypeError):
            value.setdefault("k", "v")
        assert getattr(b, field) == {} and getattr(a, field) == {}
        # every way of getting a copy gives an ordinary, independent, mutable dict
        for mutable in (dict(value), value.copy(), copy.copy(value), copy.deepcopy(value), value | {}):
            assert type(mutable) is dict
            mutable["k"] = "v"
        assert getattr(b, field) == {}
    changed = a.model_copy(update={"attributes": {"badge": 1}})
    assert changed.attributes == {"badge": 1} and a.attributes == {} and b.attributes == {}
    assert a.model_dump()["attributes"] == {} and type(a.model_dump()["attributes"]) is dict


def test_given_empty_mappings_and_given_values_stay_independent() -> None:
    given: dict[str, str] = {}
    p = Person(id="p", external_ids=given)
    given["x"] = "y"
    assert p.external_ids == {}
    q = Person(id="q", attributes={"a": 1})
    r = Person(id="r", attributes={"a": 1})
    q.attributes["b"] = 2  # a non-empty mapping is the instance's own, as before
    assert r.attributes == {"a": 1}


def test_fields_set_is_shared_read_only_and_copied_for_updates() -> None:
    a = Person(id="a", title="VP")
    b = Person(id="b", title="CTO")
    assert a.model_fields_set == {"id", "title"} == b.model_fields_set
    with pytest.raises(TypeError):
        a.model_fields_set.add("email")
    assert b.model_fields_set == {"id", "title"}
    c = a.model_copy(update={"email": "a@x.com"})
    assert c.model_fields_set == {"id", "title", "email"}
    assert a.model_fields_set == {"id", "title"} == b.model_fields_set
    assert a.model_dump(exclude_unset=True) == {"id": "a", "title": "VP"}
    assert c.model_dump(exclude_unset=True) == {"id": "a", "title": "VP", "email": "a@x.com"}
    assert Person(id="d").model_fields_set == {"id"}


def _pickled(p: Person) -> Person:
    back: Person = pickle.loads(pickle.dumps(p))  # noqa: S301 -- our own object, in memory
    return back


def test_person_pickles_and_deep_copies_to_ordinary_values() -> None:
    p = Person(id="7", title="VP", manager_id="6", attributes={"a": [1]})
    for back in (_pickled(p), copy.deepcopy(p), Person(id="8").model_copy(deep=True)):
        assert type(back.model_fields_set) is set
        back.model_fields_set.add("x")  # the copy's own set
    assert _pickled(p) == p and copy.deepcopy(p) == p
    assert _pickled(Person(id="9")).attributes == {}
    assert p.model_fields_set == {"id", "title", "manager_id", "attributes"}


def test_low_cardinality_text_is_one_object_per_value() -> None:
    a = Person(id="a", department="".join(["Sa", "les"]), location="".join(["Pa", "ris"]))
    b = Person.model_validate_json('{"id": "b", "department": "Sales", "location": "Paris"}')
    assert a.department == b.department == "Sales"
    assert a.department is b.department and a.location is b.location


def test_snapshot_json_round_trip_keeps_people_equal() -> None:
    people = (PERSON, Person(id="1000", status="terminated"), Person(id="1002", attributes={}))
    snap = OrgSnapshot(source="hr", taken_at=datetime(2026, 1, 1, tzinfo=UTC), people=people)
    back = OrgSnapshot.model_validate_json(snap.model_dump_json())
    assert back == snap and back.people[2].attributes == {}
    assert back.model_dump_json() == snap.model_dump_json()


def test_person_memory_stays_small() -> None:
    """Regression guard: ~1.7 KB per person before sharing, ~0.6 KB after (CPython 3.11)."""
    rows = [
        {
            "id": f"E{i:07d}",
            "manager_id": f"E{i // 8:07d}",
            "email": f"e{i:07d}@x.example",
            "department": "Sales",
        }
        for i in range(2000)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        people = [Person.model_validate(r) for r in rows]
        per_person = (tracemalloc.get_traced_memory()[0] - before) / len(people)
    finally:
        tracemalloc.stop()
    assert per_person < 900, per_person
