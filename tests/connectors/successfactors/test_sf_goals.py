"""Goal Management push and pull against the emulator's Goal_1/GoalMilestone_1, from a 3-level cascade."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from okrsync.cascade import CascadeOptions, cascade, generated_by
from okrsync.connectors.base import GoalSource, GoalTarget
from okrsync.connectors.successfactors.goal_values import kr_text
from okrsync.hierarchy import build_hierarchy
from okrsync.models import (
    GoalStatus,
    KeyResult,
    MetricType,
    Objective,
    ObjectiveLevel,
    OkrSet,
    Owner,
)
from okrsync.sandbox import RunningEmulator, SandboxOrg
from tests.connectors.successfactors.helpers import connector


def _okrs(org: SandboxOrg) -> OkrSet:
    ceo = org.employee_id(2)  # a division head: a small subtree four levels deep
    seed = Objective(
        id="O-1",
        title="Win the mid-market",
        description="Company objective for FY",
        owner=Owner(id=ceo),
        level=ObjectiveLevel.COMPANY,
        start=date(2026, 1, 1),
        due=date(2026, 12, 31),
        status=GoalStatus.ON_TRACK,
        progress=25.0,
        weight=50.0,
    )
    krs = (
        KeyResult(
            id="KR-1",
            objective_id="O-1",
            title="New ARR",
            target_value=1200.0,
            unit="kEUR",
            current_value=300,
        ),
        KeyResult(
            id="KR-2",
            objective_id="O-1",
            title="NPS",
            metric_type=MetricType.NUMBER,
            start_value=20,
            target_value=45,
        ),
    )
    people = org.expected_people()
    return cascade(
        OkrSet(objectives=(seed,), key_results=krs), build_hierarchy(people), CascadeOptions(depth=3)
    ).okrs


def test_cascade_goals_push_once_second_push_writes_nothing_and_pull_gives_them_back(
    start_emulator: Any,
) -> None:
    org = SandboxOrg(600, seed=8)
    run: RunningEmulator = start_emulator("successfactors", org=org)
    okrs = _okrs(org)
    rules = {generated_by(o) for o in okrs.objectives}
    assert {"cascade:kr-to-reports@depth3", None} <= rules and len(okrs.objectives) > 40
    conn = connector(run, person_key="empId")  # owners are canonical (employee) ids, as from Workday
    assert isinstance(conn, GoalTarget) and isinstance(conn, GoalSource)
    plan = conn.goal_plan()
    assert (plan.goal.name, plan.link_field) == ("Goal_1", "objId")
    assert plan.milestone is not None and plan.milestone.writable("description")

    results = conn.push_goals(okrs.objectives, okrs.key_results, {}, alignments=okrs.alignments)
    failed = [r for r in results if not r.ok]
    assert not failed, failed[:3]
    assert all(r.written and r.target_id for r in results)
    id_map = {r.item_id: r.target_id for r in results if r.target_id}
    goals: Any = run.emulator.goals  # type: ignore[attr-defined]
    assert len(goals.rows["Goal_1"]) == len(okrs.objectives)
    assert len(goals.rows["GoalMilestone_1"]) == len(okrs.key_results)
    rows = goals.rows["Goal_1"]
    for obj in okrs.objectives:
        assert rows[int(id_map[obj.id])]["userId"] == "u" + obj.owner.id
    # SAP's Goal_1 has no alignment property: the cascade's edges are reported, not written
    assert okrs.alignments and all("parentId" not in r for r in rows.values())
    notice = f"{len(okrs.alignments)} alignment(s) not written: SuccessFactors goal plans have no alignment"
    assert any(n.startswith(notice) and "OData API" in n for n in conn.notices), conn.notices
    # each key result is a milestone of its objective's goal, its text in "description"; the
    # milestone dates ("Target Date"/"Actual Date") are left alone: a key result has none
    milestones = goals.rows["GoalMilestone_1"]
    for kr in okrs.key_results:
        m = milestones[int(id_map[kr.id])]
        assert m["objId"] == int(id_map[kr.objective_id]) and m["description"] == kr_text(kr)
        assert m["start"] is None and m["due"] is None
    seed_goal = rows[int(id_map["O-1"])]
    assert seed_goal["metric"] == "New ARR [0 -> 1200 kEUR] = 300\nNPS [20 -> 45]"

    before = conn.client.stats.requests
    again = conn.push_goals(okrs.objectives, okrs.key_results, id_map, alignments=okrs.alignments)
    assert all(r.ok and not r.written for r in again)
    assert {r.item_id: r.target_id for r in again} == id_map
    assert conn.client.stats.requests - before == 2  # one read of each set; no writes

    # an edit is written, and only that field
    changed = okrs.objectives[0].model_copy(update={"progress": 40.0})
    third = conn.push_goals((changed,), (), id_map)
    assert third[0].written and rows[int(id_map["O-1"])]["done"] == 40.0

    pulled = conn.pull_goals()
    by_sf = {o.id: o for o in pulled.objectives}
    for obj in (changed, *okrs.objectives[1:]):
        got = by_sf[id_map[obj.id]]
        assert got.owner.id == obj.owner.id
        for name in ("title", "description", "start", "due", "status", "progress", "weight"):
            assert getattr(got, name) == getattr(obj, name), (obj.id, name)
        assert got.external_refs == {"successfactors": id_map[obj.id]}
    krs = {kr.id: kr for kr in pulled.key_results}
    for kr in okrs.key_results:
        got_kr = krs[id_map[kr.id]]
        assert got_kr.objective_id == id_map[kr.objective_id]
        for name in ("title", "start_value", "target_value", "unit", "current_value"):
            assert getattr(got_kr, name) == getattr(kr, name), (kr.id, name)
    assert pulled.alignments == ()  # SF cannot hold them, so a pull yields none


def test_unknown_owner_and_crash_before_id_map_saved(start_emulator: Any) -> None:
    org = SandboxOrg(30, seed=2)
    run: RunningEmulator = start_emulator("successfactors", org=org)
    conn = connector(run)  # person_key = userId
    good = Objective(id="A", title="Ship it", owner=Owner(id=org.sf_user_id(3)))
    stranger = Objective(id="B", title="Nobody's", owner=Owner(id="u999999"))
    kr = KeyResult(id="A-1", objective_id="A", title="Releases", target_value=4)
    orphan = KeyResult(id="B-1", objective_id="B", title="x")
    first = {r.item_id: r for r in conn.push_goals((good, stranger), (kr, orphan), {})}
    assert first["A"].ok and first["A-1"].ok
    assert not first["B"].ok and not first["B-1"].ok
    # the id map was lost: the same goal and milestone are adopted, not duplicated
    second = {r.item_id: r for r in conn.push_goals((good,), (kr,), {})}
    assert second["A"].target_id == first["A"].target_id and not second["A"].written
    assert second["A-1"].target_id == first["A-1"].target_id and not second["A-1"].written
    goals: Any = run.emulator.goals  # type: ignore[attr-defined]
    assert len(goals.rows["Goal_1"]) == 1
    # with the id map lost again, a milestone is adopted only if goal and description both match:
    # one a person added by hand in SF is left alone, and a new key result gets its own
    gid = int(first["A"].target_id or 0)
    hand = goals.create("GoalMilestone_1", {"objId": str(gid), "description": "Hand-made"})
    docs = KeyResult(id="A-2", objective_id="A", title="Docs", target_value=3)
    third = {r.item_id: r for r in conn.push_goals((good,), (docs, kr), {})}
    assert third["A-1"].target_id == first["A-1"].target_id and not third["A-1"].written
    assert third["A-2"].written and third["A-2"].target_id not in {str(hand["id"]), first["A-1"].target_id}
    assert goals.get("GoalMilestone_1", hand["id"])["description"] == "Hand-made"
    assert len(goals.rows["GoalMilestone_1"]) == 3


def test_lost_create_answer_finds_the_milestone_without_filtering_on_objid(start_emulator: Any) -> None:
    """SAP's schema marks a milestone's objId not filterable: the lookup filters on description only."""
    org = SandboxOrg(30, seed=2)
    run: RunningEmulator = start_emulator("successfactors", org=org)
    conn = connector(run)
    goals: Any = run.emulator.goals  # type: ignore[attr-defined]
    a, b = (goals.create("Goal_1", {"userId": org.sf_user_id(i), "name": "G"})["id"] for i in (3, 4))
    mine = goals.create("GoalMilestone_1", {"objId": str(b), "description": "Docs"})
    goals.create("GoalMilestone_1", {"objId": str(a), "description": "Docs"})
    info = conn.goal_plan().milestone
    assert info is not None and not info.filterable("objId") and info.filterable("description")
    seen: list[dict[str, Any]] = []
    pages = conn.reader.pages

    def spy(entity: str, params: dict[str, Any], operation: str) -> Any:
        seen.append(params)
        return pages(entity, params, operation)

    conn.reader.pages = spy  # type: ignore[method-assign]
    assert conn.goals._find(info, {"objId": str(b), "description": "Docs"}) == str(mine["id"])
    assert seen == [{"$select": "id,objId", "$filter": "description eq 'Docs'"}]


def test_template_without_desc_is_pushed_and_pulled_without_it(start_emulator: Any) -> None:
    org = SandboxOrg(30, seed=2)
    run: RunningEmulator = start_emulator("successfactors", org=org, goal_desc=False)
    conn = connector(run)
    assert not conn.goal_plan().goal.writable("desc")
    obj = Objective(id="A", title="Ship it", description="Why it matters", owner=Owner(id=org.sf_user_id(3)))
    first = conn.push_goals((obj,), (), {})
    assert first[0].ok and first[0].written, first
    goals: Any = run.emulator.goals  # type: ignore[attr-defined]
    assert "desc" not in goals.rows["Goal_1"][int(first[0].target_id or 0)]
    again = conn.push_goals((obj,), (), {"A": first[0].target_id or ""})
    assert again[0].ok and not again[0].written  # the description SF cannot hold is no change
    (pulled,) = conn.pull_goals().objectives
    assert (pulled.title, pulled.description) == ("Ship it", None)


@pytest.mark.parametrize("plans", [(1, 7)])
def test_plan_discovery_needs_a_plan_id_when_the_tenant_has_several(
    start_emulator: Any, plans: tuple[int, ...]
) -> None:
    from okrsync.errors import ConfigError

    run: RunningEmulator = start_emulator("successfactors", org=SandboxOrg(10, seed=2), goal_plans=plans)
    with pytest.raises(ConfigError, match="goal plans 1, 7"):
        connector(run).goal_plan()
    assert connector(run, goal_plan_id=7).goal_plan().goal.name == "Goal_7"


def test_metadata_parser_reads_saps_own_edmx() -> None:
    """The parser that discovers goal fields reads a real tenant's $metadata (SAP's sample)."""
    from okrsync.connectors.successfactors.odata import parse_metadata
    from tests.specs import SF_SAMPLE_METADATA

    sets = parse_metadata(SF_SAMPLE_METADATA.read_bytes())
    benefit = sets["Benefit"]
    assert benefit.keys == ("benefitId", "effectiveStartDate")
    assert len(benefit.props) == 95 and "eligibleBenefits" in benefit.navs
    name = benefit.props["benefitName"]
    assert (name.edm, name.max_length, name.required, name.creatable) == ("Edm.String", 128, True, False)
    assert not benefit.writable("ageOfRetirement") and benefit.filterable("ageOfRetirement")
