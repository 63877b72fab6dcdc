"""The manager cascade: who gets which generated objective, options, idempotency, scale."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okrsync.cascade import CascadeOptions, cascade, generated_by
from okrsync.hierarchy import Hierarchy, build_hierarchy
from okrsync.models import (
    AlignmentKind,
    MetricType,
    NodeKind,
    ObjectiveLevel,
    OkrSet,
    OwnerKind,
    Person,
    PersonStatus,
    WorkerType,
)
from okrsync.okrs import OkrProblemCode, okrs_from_document, okrs_to_document, validate_okrs


def person(pid: str, manager: str | None = None, **extra: Any) -> Person:
    return Person(id=pid, manager_id=manager, display_name=f"Name {pid}", **extra)


def small_org() -> Hierarchy:
    """ceo -> m1 (-> a, b), m2 (-> c), ic (no reports)."""
    return build_hierarchy(
        [
            person("ceo"),
            person("m1", "ceo"),
            person("m2", "ceo"),
            person("ic", "ceo"),
            person("a", "m1"),
            person("b", "m1"),
            person("c", "m2"),
        ]
    )


def company_okrs(**objective: Any) -> OkrSet:
    obj = {
        "id": "O1",
        "title": "Grow",
        "owner": "ceo",
        "level": "company",
        "cycle_id": "C1",
        "due": "2025-06-30",
        "key_results": [
            {
                "id": "K1",
                "title": "ARR 12M",
                "metric_type": "currency",
                "start_value": 3,
                "target_value": 12,
                "unit": "EUR",
            },
            {"id": "K2", "title": "NRR", "metric_type": "percent", "start_value": 100, "target_value": 115},
        ],
    }
    obj.update(objective)
    return okrs_from_document(
        {"cycle": {"id": "C1", "name": "H1", "start": "2025-01-01", "end": "2025-06-30"}, "objectives": [obj]}
    )


def generated(okrs: OkrSet) -> list[Any]:
    return [o for o in okrs.objectives if generated_by(o)]


def owners_of_children(okrs: OkrSet, kr_id: str) -> set[str]:
    by_id = {o.id: o for o in okrs.objectives}
    return {by_id[e.child_id].owner.id for e in okrs.alignments if e.parent_id == kr_id}


# ----------------------------------------------------------------------------------------- basics


def test_each_key_result_becomes_an_objective_for_each_direct_report() -> None:
    result = cascade(company_okrs(), small_org(), CascadeOptions(depth=1))
    assert result.generated == 6
    assert owners_of_children(result.okrs, "K1") == {"m1", "m2", "ic"}
    assert owners_of_children(result.okrs, "K2") == {"m1", "m2", "ic"}
    by_owner = {o.owner.id: o for o in generated(result.okrs) if "K1" in (o.description or "")}
    assert by_owner["m1"].level is ObjectiveLevel.TEAM
    assert by_owner["ic"].level is ObjectiveLevel.INDIVIDUAL
    assert by_owner["m1"].title == "ARR 12M"
    assert by_owner["m1"].cycle_id == "C1" and str(by_owner["m1"].due) == "2025-06-30"
    for edge in result.okrs.alignments:
        assert edge.kind is AlignmentKind.CASCADE
        assert edge.parent_kind is NodeKind.KEY_RESULT and edge.child_kind is NodeKind.OBJECTIVE
        assert edge.generated_by == "cascade:kr-to-reports@depth1"
    assert all(generated_by(o) == "cascade:kr-to-reports@depth1" for o in generated(result.okrs))


def test_depth_follows_the_copied_key_results_down() -> None:
    result = cascade(company_okrs(), small_org(), CascadeOptions(depth=2))
    rules = sorted({e.generated_by for e in result.okrs.alignments})
    assert rules == ["cascade:kr-to-reports@depth1", "cascade:kr-to-reports@depth2"]
    deep = [o for o in generated(result.okrs) if generated_by(o) == "cascade:kr-to-reports@depth2"]
    assert {o.owner.id for o in deep} == {"a", "b", "c"}
    assert len(deep) == 6  # two KRs reach each of a, b, c
    assert validate_okrs(result.okrs, known_people={"ceo", "m1", "m2", "ic", "a", "b", "c"}) == []


def test_depth_zero_generates_nothing() -> None:
    okrs = company_okrs()
    result = cascade(okrs, small_org(), CascadeOptions(depth=0))
    assert result.generated == 0 and result.okrs == okrs


def test_team_mode_gives_one_objective_per_managing_report() -> None:
    result = cascade(company_okrs(), small_org(), CascadeOptions(depth=2, mode="team"))
    assert {o.owner.id for o in generated(result.okrs)} == {"m1", "m2"}
    assert all(o.level is ObjectiveLevel.TEAM for o in generated(result.okrs))
    assert all(e.generated_by.startswith("cascade:kr-to-team@") for e in result.okrs.alignments)
    reasons = dict(result.skipped)
    assert "team mode" in reasons["ic"] and "a" in reasons


def test_levels_option_leaves_individuals_out() -> None:
    opts = CascadeOptions(depth=2, levels=frozenset({ObjectiveLevel.TEAM}))
    result = cascade(company_okrs(), small_org(), opts)
    assert {o.owner.id for o in generated(result.okrs)} == {"m1", "m2"}
    assert ("ic", "individual goals not selected") in result.skipped


def test_contingent_and_inactive_people_are_skipped_unless_asked() -> None:
    people = [
        person("ceo"),
        person("emp", "ceo"),
        person("con", "ceo", worker_type=WorkerType.CONTINGENT),
        person("gone", "ceo", status=PersonStatus.TERMINATED),
        person("leave", "ceo", status=PersonStatus.ON_LEAVE),
    ]
    h = build_hierarchy(people)
    result = cascade(company_okrs(), h, CascadeOptions(depth=1))
    assert {o.owner.id for o in generated(result.okrs)} == {"emp", "leave"}
    assert ("con", "contingent worker") in result.skipped
    assert ("gone", "inactive (terminated)") in result.skipped
    everyone = cascade(company_okrs(), h, CascadeOptions(depth=1, skip_contingent=False, skip_inactive=False))
    assert {o.owner.id for o in generated(everyone.okrs)} == {"emp", "con", "gone", "leave"}


def test_reports_of_a_terminated_manager_are_reached_through_the_policy() -> None:
    people = [person("ceo"), person("gone", "ceo", status=PersonStatus.TERMINATED), person("x", "gone")]
    result = cascade(company_okrs(), build_hierarchy(people), CascadeOptions(depth=1))
    assert {o.owner.id for o in generated(result.okrs)} == {"x"}  # re-pointed to the ceo


def test_title_templates() -> None:
    opts = CascadeOptions(depth=1, title_template="Contribute to: {kr_title} ({owner_name}, {parent_title})")
    result = cascade(company_okrs(), small_org(), opts)
    titles = {o.title for o in generated(result.okrs)}
    assert "Contribute to: ARR 12M (Name m1, Grow)" in titles


@pytest.mark.parametrize("template", ["{nope}", "{}", "{kr_title", "{0}"])
def test_bad_title_template_is_refused_early(template: str) -> None:
    with pytest.raises(ValueError, match="title_template"):
        CascadeOptions(title_template=template)


@pytest.mark.parametrize(
    "kwargs",
    [{"depth": -1}, {"mode": "tribe"}, {"key_results": "all"}, {"share": "half"}],
)
def test_bad_options_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CascadeOptions(**kwargs)


def test_key_result_copies_share_additive_targets_equally() -> None:
    result = cascade(company_okrs(), small_org(), CascadeOptions(depth=1))
    children = {e.child_id: e.parent_id for e in result.okrs.alignments}
    copies = [k for k in result.okrs.key_results if k.objective_id in children]
    arr = [k for k in copies if children[k.objective_id] == "K1"]
    nrr = [k for k in copies if children[k.objective_id] == "K2"]
    assert {(k.start_value, k.target_value, k.unit) for k in arr} == {(1.0, 4.0, "EUR")}
    assert all(k.metric_type is MetricType.CURRENCY for k in arr)
    assert {(k.start_value, k.target_value) for k in nrr} == {(100.0, 115.0)}  # a percentage is not split
    assert all(
        k.owner is not None and k.owner.id == by.owner.id
        for k in copies
        for by in result.okrs.objectives
        if by.id == k.objective_id
    )


def test_share_none_copies_targets() -> None:
    result = cascade(company_okrs(), small_org(), CascadeOptions(depth=1, share="none"))
    targets = {k.target_value for k in result.okrs.key_results if generated_by(k)}
    assert targets == {12.0, 115.0}


def test_without_key_result_copies_the_cascade_stops_after_one_level() -> None:
    result = cascade(company_okrs(), small_org(), CascadeOptions(depth=3, key_results="none"))
    assert result.generated == 6
    assert not [k for k in result.okrs.key_results if generated_by(k)]


def test_unit_owned_objectives_need_a_unit_head() -> None:
    okrs = company_okrs(owner={"unit": "D-1"}, level="department")
    skipped = cascade(okrs, small_org(), CascadeOptions(depth=1))
    assert skipped.generated == 0
    assert skipped.skipped == [("D-1", "objective O1 is owned by org unit D-1; no unit head given")]
    headed = cascade(okrs, small_org(), CascadeOptions(depth=1, unit_heads={"D-1": "m1"}))
    assert {o.owner.id for o in generated(headed.okrs)} == {"a", "b"}


def test_owner_outside_the_hierarchy_is_reported() -> None:
    result = cascade(company_okrs(owner="nobody"), small_org())
    assert result.generated == 0
    assert result.skipped == [("nobody", "owner of objective O1 is not in the hierarchy")]


def test_only_source_levels_seed_the_cascade() -> None:
    result = cascade(company_okrs(level="team"), small_org())
    assert result.generated == 0
    opts = CascadeOptions(depth=1, source_levels=frozenset({ObjectiveLevel.TEAM}))
    assert cascade(company_okrs(level="team"), small_org(), opts).generated == 6


def test_manual_alignments_are_kept_untouched() -> None:
    base = company_okrs()
    extra = okrs_from_document(
        {
            "objectives": [
                {"id": "X", "title": "x", "owner": "m1", "level": "team", "aligns_to": ["K1"]},
                {"id": "Y", "title": "y", "owner": "c", "aligns_to": [{"to": "O1", "kind": "related"}]},
            ],
            "alignments": [{"child_id": "Y", "parent_id": "X", "kind": "assigned"}],
        }
    )
    okrs = base.model_copy(
        update={"objectives": base.objectives + extra.objectives, "alignments": extra.alignments}
    )
    result = cascade(okrs, small_org(), CascadeOptions(depth=2))
    assert result.okrs.alignments[: len(okrs.alignments)] == okrs.alignments
    assert result.okrs.objectives[: len(okrs.objectives)] == okrs.objectives


# ----------------------------------------------------------------------------------- idempotency


def test_ids_are_deterministic_and_reruns_do_not_duplicate() -> None:
    okrs, h = company_okrs(), small_org()
    first = cascade(okrs, h, CascadeOptions(depth=2))
    second = cascade(okrs, h, CascadeOptions(depth=2))
    assert first == second
    again = cascade(first.okrs, h, CascadeOptions(depth=2))
    assert again.generated == 0 and again.okrs == first.okrs
    reloaded = okrs_from_document(okrs_to_document(first.okrs))
    assert cascade(reloaded, h, CascadeOptions(depth=2)).okrs == reloaded


def test_rerun_keeps_edits_people_made_to_generated_objectives() -> None:
    h = small_org()
    first = cascade(company_okrs(), h, CascadeOptions(depth=2)).okrs
    target = next(o for o in generated(first) if o.owner.id == "m1")
    edited = first.model_copy(
        update={
            "objectives": tuple(
                o.model_copy(update={"title": "Our take"}) if o is target else o for o in first.objectives
            )
        }
    )
    again = cascade(edited, h, CascadeOptions(depth=2))
    assert again.generated == 0
    assert next(o for o in again.okrs.objectives if o.id == target.id).title == "Our take"


def test_deeper_rerun_extends_without_touching_what_exists() -> None:
    h = small_org()
    shallow = cascade(company_okrs(), h, CascadeOptions(depth=1)).okrs
    deeper = cascade(shallow, h, CascadeOptions(depth=2))
    assert deeper.generated == 6
    assert deeper.okrs.objectives[: len(shallow.objectives)] == shallow.objectives
    assert deeper.okrs == cascade(company_okrs(), h, CascadeOptions(depth=2)).okrs


def test_result_summary_is_json_able() -> None:
    result = cascade(company_okrs(), small_org(), CascadeOptions(depth=1, mode="team"))
    data = json.loads(json.dumps(result.to_dict()))
    assert (
        data["generated"] == 4
        and {"person_id": "ic", "reason": dict(result.skipped)["ic"]} in data["skipped"]
    )


# --------------------------------------------------------------------------------------- at scale


def generated_org(n: int, fan: int = 8) -> list[Person]:
    """A complete ``fan``-ary tree of ``n`` people, with some contingent and terminated workers."""
    people = []
    for i in range(n):
        people.append(
            Person(
                id=f"E{i:05d}",
                manager_id=None if i == 0 else f"E{(i - 1) // fan:05d}",
                display_name=f"Employee {i}",
                worker_type=WorkerType.CONTINGENT if i % 17 == 5 else WorkerType.EMPLOYEE,
                status=PersonStatus.TERMINATED if i % 97 == 3 else PersonStatus.ACTIVE,
            )
        )
    return people


def test_three_level_cascade_over_ten_thousand_people_validates() -> None:
    h = build_hierarchy(generated_org(10_000))
    vps = h.direct_reports("E00000")
    okrs = okrs_from_document(
        {
            "cycle": {"id": "C", "name": "FY", "start": "2025-01-01", "end": "2025-12-31"},
            "objectives": [
                {
                    "id": "CO",
                    "title": "Company",
                    "owner": "E00000",
                    "level": "company",
                    "key_results": [
                        {
                            "id": f"CO-K{k}",
                            "title": f"Company KR {k}",
                            "metric_type": "number",
                            "target_value": 800,
                        }
                        for k in range(3)
                    ],
                },
                *[
                    {
                        "id": f"D{v}",
                        "title": f"Dept {v}",
                        "owner": vp,
                        "level": "department",
                        "aligns_to": ["CO-K0"],
                        "key_results": [{"id": f"D{v}-K", "title": "Dept KR"}],
                    }
                    for v, vp in enumerate(vps)
                ],
            ],
        }
    )
    options = CascadeOptions(depth=3, title_template="Contribute to: {kr_title}")
    first = cascade(okrs, h, options)
    second = cascade(okrs, h, options)
    assert first.generated > 3_000
    assert [o.id for o in first.okrs.objectives] == [o.id for o in second.okrs.objectives]
    assert first == second

    problems = validate_okrs(first.okrs, known_people=set(h.people))
    assert not [p for p in problems if p.code is OkrProblemCode.ALIGNMENT_CYCLE]
    assert problems == []
    for obj in generated(first.okrs):
        assert obj.owner.kind is OwnerKind.PERSON
        owner = h.people[obj.owner.id]
        assert owner.is_active and owner.worker_type is WorkerType.EMPLOYEE
    assert cascade(first.okrs, h, options).generated == 0


@st.composite
def random_org(draw: st.DrawFn) -> list[Person]:
    """Any shape, including loops, self-managers, dangling managers, leavers and contractors."""
    n = draw(st.integers(min_value=1, max_value=40))
    people = []
    for i in range(n):
        manager = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=n)))
        people.append(
            Person(
                id=f"p{i}",
                manager_id=None if manager is None else f"p{manager}",  # p{n} does not exist
                status=draw(st.sampled_from(list(PersonStatus))),
                worker_type=draw(st.sampled_from(list(WorkerType))),
            )
        )
    return people


@settings(max_examples=60, deadline=None)
@given(people=random_org(), depth=st.integers(min_value=0, max_value=4), team=st.booleans())
def test_cascade_properties_on_arbitrary_orgs(people: list[Person], depth: int, team: bool) -> None:
    h = build_hierarchy(people)
    okrs = company_okrs(owner=people[0].id)
    options = CascadeOptions(depth=depth, mode="team" if team else "individual")
    first = cascade(okrs, h, options)
    assert cascade(okrs, h, options) == first
    assert cascade(first.okrs, h, options).okrs == first.okrs
    assert validate_okrs(first.okrs, known_people=set(h.people)) == []
    for obj in generated(first.okrs):
        owner = h.people[obj.owner.id]
        assert owner.is_active and owner.worker_type is WorkerType.EMPLOYEE
