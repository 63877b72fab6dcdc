"""Goals: a generated cascade pushed with Manage_Goals, idempotently, and read back with Get_Workers.

The emulator checks the request as Workday's Performance_Management schema does (one
Manage_Goals_Data per request, milestone element names, Component_Completion status IDs), so a
push that succeeds here has the right shape."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
import requests
from pydantic import ValidationError

from okrsync.cascade import CascadeOptions, cascade
from okrsync.connectors.base import GoalSource, GoalTarget
from okrsync.connectors.workday.goals import goal_reference_id, milestone_reference_id
from okrsync.hierarchy import build_hierarchy
from okrsync.models import (
    GoalStatus,
    KeyResult,
    MetricType,
    Objective,
    ObjectiveLevel,
    OkrSet,
    Owner,
    OwnerKind,
)
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
    owners = len({o.owner.id for o in okrs.objectives})
    results = conn.push_goals(okrs.objectives, okrs.key_results, {}, alignments=okrs.alignments)
    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    assert goal_posts(run) == owners  # one Manage_Goals_Data, so one request, per worker
    stored = requests.get(f"{run.url}/_sandbox/workday/goals", timeout=10).json()["goals"]
    assert len(stored) == len(okrs.objectives)
    by_ref = {g["goal_reference_id"]: g for g in stored}
    top = by_ref[goal_reference_id("CO-1")]
    assert top["worker_id"] == ceo and top["name"] == "Grow revenue" and top["weight"] == "50"
    assert top["due_date"] == "2026-12-31"
    assert top["status"] == {"type": "Component_Completion_ID", "id": "NOT_STARTED", "descriptor": ""}
    # key results are milestones, by Goal_Milestone_Reference_ID, Goal_Milestone_Name and _Due_Date
    assert top["milestones"] == [
        {"reference_id": "OKRSYNC-KR-KR-1", "name": "ARR 10M (0 → 10000000)", "due_date": "2026-12-31"},
        {"reference_id": "OKRSYNC-KR-KR-2", "name": "NPS 50 (0 → 50)", "due_date": "2026-12-31"},
    ]
    assert {r.item_id: r.target_id for r in results}["KR-1"] == milestone_reference_id("KR-1")
    # the objective's target id starts with the goal WID Worker_Goal_Detail_Reference answered
    assert {r.item_id: r.target_id for r in results}["CO-1"].split("#")[0] == top["wid"]
    child = next(o for o in okrs.objectives if o.id != "CO-1")
    assert by_ref[goal_reference_id(child.id)]["organization_goal"]["id"] == "ORG-GOAL-2026"
    assert by_ref[goal_reference_id(child.id)]["worker_id"] == child.owner.id

    renamed = [o.model_copy(update={"title": o.title + " (v2)"}) for o in okrs.objectives]
    again = conn.push_goals(renamed, okrs.key_results, {})  # no id map: everything is rewritten
    assert all(r.ok and r.written for r in again)
    stored = requests.get(f"{run.url}/_sandbox/workday/goals", timeout=10).json()["goals"]
    assert len(stored) == len(okrs.objectives)  # updated in place, never duplicated
    assert all(g["name"].endswith("(v2)") for g in stored)
    assert conn.http.stats.requests == 2 * owners

    pulled = conn.pull_goals()
    conn.close()
    assert {o.id for o in pulled.objectives} == {goal_reference_id(o.id) for o in okrs.objectives}
    assert {o.title for o in pulled.objectives} == {o.title for o in renamed}


def goal_posts(run: RunningEmulator) -> int:
    log = run.emulator.request_log  # type: ignore[attr-defined]
    return sum(1 for _, method, path, _ in log if method == "POST" and "/Performance_Management" in path)


def test_one_request_per_changed_worker_and_a_second_push_writes_nothing(start_emulator: Start) -> None:
    org = SandboxOrg(40, seed=4)
    run = start_emulator("workday", org=org)
    employees = [w.employee_id for w in org if w.worker_type == "employee"]
    a, b, c = employees[2], employees[5], employees[9]

    def goal(oid: str, owner: str, **kw: object) -> Objective:
        return Objective(id=oid, title=f"Goal {oid}", owner=Owner(kind=OwnerKind.PERSON, id=owner), **kw)

    objectives = [goal("A1", a, due=date(2027, 3, 31)), goal("A2", a), goal("B1", b), goal("C1", c)]
    krs = [
        KeyResult(id="KA1", objective_id="A1", title="Ship it", target_value=3, unit="releases"),
        KeyResult(id="KA2", objective_id="A1", title="Keep it up", target_value=99.9, unit="%"),
        KeyResult(id="KB1", objective_id="B1", title="Hire", target_value=4),
    ]
    conn = connector(run)
    first = conn.push_goals(objectives, krs, {})
    assert all(r.ok and r.written for r in first) and len(first) == 7, [r for r in first if not r.ok]
    assert goal_posts(run) == 3  # three workers, three requests (A's two goals share one)
    stored = {
        g["goal_reference_id"]: g
        for g in requests.get(f"{run.url}/_sandbox/workday/goals", timeout=10).json()["goals"]
    }
    events = {ref: g["event_wid"] for ref, g in stored.items()}
    assert events["OKRSYNC-A1"] == events["OKRSYNC-A2"]  # one Manage_Goals event per worker
    assert len({events["OKRSYNC-A1"], events["OKRSYNC-B1"], events["OKRSYNC-C1"]}) == 3
    assert [m["name"] for m in stored["OKRSYNC-A1"]["milestones"]] == [
        "Ship it (0 → 3 releases)",
        "Keep it up (0 → 99.9 %)",
    ]
    assert [m["due_date"] for m in stored["OKRSYNC-A1"]["milestones"]] == ["2027-03-31", "2027-03-31"]

    id_map = {r.item_id: r.target_id for r in first if r.ok and r.target_id}  # what the engine keeps
    second = conn.push_goals(objectives, krs, id_map)
    assert all(r.ok and not r.written for r in second) and len(second) == 7
    assert {r.item_id: r.target_id for r in second} == id_map
    assert goal_posts(run) == 3  # nothing differed: nothing sent

    changed = [*krs[:2], krs[2].model_copy(update={"title": "Hire well"})]
    third = {r.item_id: r for r in conn.push_goals(objectives, changed, id_map)}
    conn.close()
    assert goal_posts(run) == 4  # only B's goals differed
    assert {i for i, r in third.items() if r.written} == {"B1", "KB1"}
    assert all(r.ok for r in third.values())
    b1 = next(
        g
        for g in requests.get(f"{run.url}/_sandbox/workday/goals", timeout=10).json()["goals"]
        if g["worker_id"] == b
    )
    assert [m["name"] for m in b1["milestones"]] == ["Hire well (0 → 4)"]
    assert third["B1"].target_id != id_map["B1"] and third["B1"].target_id.startswith(b1["wid"] + "#")


def test_status_ids_are_configurable_and_read_back(start_emulator: Start) -> None:
    org = SandboxOrg(20, seed=6)
    run = start_emulator("workday", org=org)
    owner = Owner(kind=OwnerKind.PERSON, id=org.workers[3].employee_id)
    done = Objective(id="D", title="Done one", owner=owner, status=GoalStatus.DONE)
    risky = Objective(id="R", title="Risky one", owner=owner, status=GoalStatus.AT_RISK)
    conn = connector(run, goal_status_ids={"done": "Goal_Completed"})
    assert conn.cfg.goal_status_ids[GoalStatus.AT_RISK] == "AT_RISK"  # the others keep their default
    assert all(r.ok for r in conn.push_goals([done, risky], [], {}))
    stored = {
        g["goal_reference_id"]: g
        for g in requests.get(f"{run.url}/_sandbox/workday/goals", timeout=10).json()["goals"]
    }
    assert stored["OKRSYNC-D"]["status"]["type"] == "Component_Completion_ID"
    assert stored["OKRSYNC-D"]["status"]["id"] == "Goal_Completed"
    pulled = {o.id: o.status for o in conn.pull_goals().objectives}
    conn.close()
    assert pulled == {"OKRSYNC-D": GoalStatus.DONE, "OKRSYNC-R": GoalStatus.AT_RISK}
    with pytest.raises(ValidationError, match="share one reference ID"):
        connector(run, goal_status_ids={"done": "AT_RISK"})


def test_a_goal_deleted_in_workday_is_rewritten_by_its_reference_id(start_emulator: Start) -> None:
    org = SandboxOrg(20, seed=6)
    run = start_emulator("workday", org=org)
    owner = Owner(kind=OwnerKind.PERSON, id=org.workers[2].employee_id)
    conn = connector(run)
    results = conn.push_goals([Objective(id="G", title="Ship", owner=owner)], [], {"G": "0" * 32 + "#stale"})
    conn.close()
    assert results[0].ok and results[0].written
    stored = requests.get(f"{run.url}/_sandbox/workday/goals", timeout=10).json()["goals"]
    assert [(g["goal_reference_id"], g["name"]) for g in stored] == [("OKRSYNC-G", "Ship")]
    assert goal_posts(run) == 2  # refused for its Goal_Reference, then sent by Goal_Reference_ID


def test_a_refused_owner_fails_alone(start_emulator: Start) -> None:
    org = SandboxOrg(50, seed=3)
    run = start_emulator("workday", org=org)
    good = Objective(id="G", title="Ship", owner=Owner(kind=OwnerKind.PERSON, id=org.workers[1].employee_id))
    ghost = Objective(id="X", title="Lost", owner=Owner(kind=OwnerKind.PERSON, id="999999"))
    unit = Objective(id="U", title="Team", owner=Owner(kind=OwnerKind.ORG_UNIT, id="SUP-1"))
    conn = connector(run)
    results = {r.item_id: r for r in conn.push_goals([good, ghost, unit], [], {})}
    conn.close()
    assert (
        results["G"].ok
        and results["G"].target_id
        and results["G"].target_id.startswith(
            next(
                g["wid"]
                for g in requests.get(f"{run.url}/_sandbox/workday/goals", timeout=10).json()["goals"]
            )
            + "#"
        )
    )
    assert not results["X"].ok and "999999" in (results["X"].error or "")
    assert not results["U"].ok
