"""Diff and plan: minimal, normalised, ordered, and guarded by the removal threshold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from okrsync.connectors.base import OpKind
from okrsync.diff import diff_people, normalise
from okrsync.models import Person, PersonStatus
from okrsync.plan import PlanPolicy, build_plan


def p(pid: str, **kw: object) -> Person:
    return Person(id=pid, **kw)  # type: ignore[arg-type]


def test_normalisation_prevents_nightly_rewrites() -> None:
    before = {"1": p("1", email="Ann@X.com", title="VP  Sales", department="")}
    after = {"1": p("1", email="ann@x.com", title="VP Sales", department=None)}
    assert diff_people(before, after).empty
    assert normalise("additional_manager_ids", ("b", "a")) == normalise("additional_manager_ids", ("a", "b"))


def test_plan_orders_managers_first_and_removals_last_reports_first() -> None:
    before = {"9": p("9", manager_id="8"), "8": p("8")}
    after = {"2": p("2", manager_id="1"), "1": p("1")}
    plan = build_plan(diff_people(before, after), ["1", "2", "8", "9"], PlanPolicy(), population=2)
    assert [(o.kind, o.person_id) for o in plan.ops] == [
        (OpKind.CREATE, "1"),
        (OpKind.CREATE, "2"),
        (OpKind.DISABLE, "9"),
        (OpKind.DISABLE, "8"),
    ]
    assert [o.seq for o in plan.ops] == [0, 1, 2, 3]


def test_threshold_counts_disabling_updates_and_blocks() -> None:
    before = {str(i): p(str(i)) for i in range(10)}
    after = dict(before)
    after["0"] = p("0", status=PersonStatus.TERMINATED)
    del after["1"]
    plan = build_plan(
        diff_people(before, after), [], PlanPolicy(max_removals=1, threshold_label="1"), population=10
    )
    assert len(plan.removals) == 2 and plan.blocked and "2 removals/disables (20% of 10)" in plan.blocked
    ok = build_plan(
        diff_people(before, after), [], PlanPolicy(max_removals=1, allow_deletes=True), population=10
    )
    assert ok.blocked is None


def test_already_terminated_people_are_not_disabled_again() -> None:
    before = {"1": p("1", status=PersonStatus.TERMINATED)}
    plan = build_plan(diff_people(before, {}), [], PlanPolicy(), population=1)
    assert plan.ops == []


ids = st.sampled_from([str(i) for i in range(12)])
people = st.dictionaries(
    ids,
    st.builds(
        lambda t, d: (t, d), st.sampled_from(["A", "a ", None, "B"]), st.sampled_from(["x", "y", None])
    ),
)


@settings(max_examples=200, deadline=None)
@given(people, people)
def test_applying_the_diff_reaches_the_target(a: dict, b: dict) -> None:
    before = {k: p(k, title=t, department=d) for k, (t, d) in a.items()}
    after = {k: p(k, title=t, department=d) for k, (t, d) in b.items()}
    diff = diff_people(before, after)
    state = dict(before)
    for person in diff.created:
        state[person.id] = person
    for _, new, _ in diff.updated:
        state[new.id] = new
    for gone in diff.removed:
        del state[gone.id]
    assert diff_people(state, after).empty
    assert diff.unchanged + len(diff.updated) + len(diff.created) == len(after)
