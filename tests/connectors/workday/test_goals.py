"""Goals: a generated cascade pushed with Manage_Goals, idempotently, and read back with Get_Workers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import requests

from okrsync.cascade import CascadeOptions, cascade
from okrsync.connectors.base import GoalSource, GoalTarget
from okrsync.connectors.workday.goals import goal_reference_id
from okrsync.hierarchy import build_hierarchy
from okrsync.models import KeyResult, MetricType, Objective, ObjectiveLevel, OkrSet, Owner, OwnerKind
from okrsync.sandbox import RunningEmulator, SandboxOrg
from tests.connectors.workday.helpers import connector

Start = Callable[..., RunningEmulator]


def test_cascade_pushed_idempotently_and_read_back(start_emulator: Start) -> None:
    org = SandboxOrg(300, seed=3)
    run = start_emulator("workday", org=org)
    ceo = org.workers[0].employee_id
    company = Objective(
        id="CO-1",
        title="Grow revenue",
        owner=Owner(kind=OwnerKind.PERSON, id=ceo),
        level=ObjectiveLevel.COMPANY,
        due=date(2026, 12, 31),
        weight=50,
    )
    krs = (
        KeyResult(
            id="KR-1", objective_id="CO-1", title="ARR 10M", metric_type=MetricType.CURRENCY, target_value=1e7
        ),
        KeyResult(id="KR-2", objective_id="CO-1", title="NPS 50", target_value=50),
    )
    okrs = cascade(
        OkrSet(objectives=(company,), key_results=krs),
        build_hierarchy(org.expected_people()),
        CascadeOptions(depth=3),
    ).okrs
    assert len(okrs.objectives) > 20
    conn = connector(run, organization_goals={"CO-1": "ORG-GOAL-2026"})
    assert isinstance(conn, GoalTarget) and isinstance(conn, GoalSource)
    results = conn.push_goals(okrs.objectives, okrs.key_results, {}, alignments=okrs.alignments)
    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    stored = requests.get(f"{run.url}/_sandbox/workday/goals", timeout=10).json()["goals"]
    assert len(stored) == len(okrs.objectives)
    by_ref = {g["goal_reference_id"]: g for g in stored}
    top = by_ref[goal_reference_id("CO-1")]
    assert top["worker_id"] == ceo and top["name"] == "Grow revenue" and top["weight"] == "50"
    assert len(top["milestones"]) == 2 and top["due_date"] == "2026-12-31"
    child = next(o for o in okrs.objectives if o.id != "CO-1")
    assert by_ref[goal_reference_id(child.id)]["organization_goal"]["id"] == "ORG-GOAL-2026"
    assert by_ref[goal_reference_id(child.id)]["worker_id"] == child.owner.id

    renamed = [o.model_copy(update={"title": o.title + " (v2)"}) for o in okrs.objectives]
    again = conn.push_goals(renamed, okrs.key_results, {})
    assert all(r.ok for r in again)
    stored = requests.get(f"{run.url}/_sandbox/workday/goals", timeout=10).json()["goals"]
    assert len(stored) == len(okrs.objectives)  # updated in place, never duplicated
    assert all(g["name"].endswith("(v2)") for g in stored)
    assert conn.http.stats.requests <= 2 * (len({o.owner.id for o in okrs.objectives}) // 50 + 1)

    pulled = conn.pull_goals()
    conn.close()
    assert {o.id for o in pulled.objectives} == {goal_reference_id(o.id) for o in okrs.objectives}
    assert {o.title for o in pulled.objectives} == {o.title for o in renamed}


def test_a_refused_owner_fails_alone(start_emulator: Start) -> None:
    org = SandboxOrg(50, seed=3)
    run = start_emulator("workday", org=org)
    good = Objective(id="G", title="Ship", owner=Owner(kind=OwnerKind.PERSON, id=org.workers[1].employee_id))
    ghost = Objective(id="X", title="Lost", owner=Owner(kind=OwnerKind.PERSON, id="999999"))
    unit = Objective(id="U", title="Team", owner=Owner(kind=OwnerKind.ORG_UNIT, id="SUP-1"))
    conn = connector(run)
    results = {r.item_id: r for r in conn.push_goals([good, ghost, unit], [], {})}
    conn.close()
    assert results["G"].ok and results["G"].target_id == "OKRSYNC-G"
    assert not results["X"].ok and "999999" in (results["X"].error or "")
    assert not results["U"].ok
