"""The generated organisation every emulator serves: deterministic, realistic mix, complete edit API."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from okrsync.sandbox import SandboxOrg
from okrsync.sandbox.orgs import EDIT_KINDS, RANDOM_EDIT_KINDS

AS_OF = date(2025, 3, 14)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def snapshot(org: SandboxOrg) -> list[tuple[object, ...]]:
    return [
        (w.employee_id, w.wid, w.email, w.title, w.manager, w.status, w.hire_date, w.dotted, w.last_modified)
        for w in org
    ]


def test_same_seed_same_org_at_5000_and_a_realistic_mix() -> None:
    a = SandboxOrg(5000, seed=9, as_of=AS_OF)
    b = SandboxOrg(5000, seed=9, as_of=AS_OF)
    assert snapshot(a) == snapshot(b) and a.expected_people() == b.expected_people()
    assert snapshot(SandboxOrg(5000, seed=10, as_of=AS_OF)) != snapshot(a)
    statuses = Counter(w.status for w in a)
    assert statuses["pre_hire"] == 50 and statuses["terminated"] == 100  # ~1% future hires, ~2% leavers
    assert all(w.hire_date > AS_OF for w in a if w.status == "pre_hire")
    assert sum(w.worker_type == "contingent" for w in a) == 250
    assert len({w.email for w in a}) == 5000 and sum(w.manager is None for w in a) == 1


def test_default_random_edits_are_unchanged_by_the_new_options() -> None:
    a, b = (SandboxOrg(400, seed=3, as_of=AS_OF, clock=Clock()) for _ in range(2))
    plain = a.random_edits(20)
    explicit = b.random_edits(20, seed=7, kinds=EDIT_KINDS, future_hires=0.0)
    assert plain == explicit and snapshot(a) == snapshot(b)
    assert [e["op"] for e in plain[:4]] == list(EDIT_KINDS)
    assert all("hire_date" not in e for e in plain)


def test_random_edits_cover_every_kind_and_future_hires() -> None:
    clock = Clock()
    org = SandboxOrg(600, seed=4, as_of=AS_OF, clock=clock)
    before = {w.employee_id: (w.status, w.worker_type, w.wid) for w in org}
    version = org.version
    edits = org.random_edits(24, seed=5, kinds=RANDOM_EDIT_KINDS, future_hires=1.0)
    assert Counter(str(e["op"]) for e in edits) == dict.fromkeys(RANDOM_EDIT_KINDS, 4)
    hires = [w for w in org.changed_since(version) if w.employee_id not in before]
    assert len(hires) == 4 and all(w.status == "pre_hire" and w.hire_date > AS_OF for w in hires)
    for e in edits:
        if e["op"] == "rehire":
            assert before[str(e["id"])][0] == "terminated" and org.get(str(e["id"])).status == "active"
        elif e["op"] == "convert":
            w = org.get(str(e["id"]))
            assert before[w.employee_id][1:] == ("contingent", w.former_wids[-1])
            assert w.worker_type == "employee" and w.wid != w.former_wids[-1]
    edited = {w.employee_id for w in org.changed_since(version)}
    assert len(edited) == 24  # each edit touched a different person
    with pytest.raises(ValueError, match="unknown edit kinds"):
        org.random_edits(1, kinds=("explode",))


def test_some_future_hires_and_deterministic_choices() -> None:
    a, b = (SandboxOrg(300, seed=6, as_of=AS_OF, clock=Clock()) for _ in range(2))
    ea = a.random_edits(40, kinds=("hire",), future_hires=0.5)
    assert ea == b.random_edits(40, kinds=("hire",), future_hires=0.5)
    future = [e for e in ea if "hire_date" in e]
    assert 0 < len(future) < 40
    assert all(
        AS_OF + timedelta(days=1) <= date.fromisoformat(str(e["hire_date"])) <= AS_OF + timedelta(days=60)
        for e in future
    )


def test_edit_api_covers_every_operation() -> None:
    clock = Clock()
    org = SandboxOrg(80, seed=2, as_of=AS_OF, clock=clock)
    leaf = next(w for w in org if w.manager is not None and not any(x.manager == w.index for x in org))
    contractor = next(w for w in org if w.worker_type == "contingent")
    boss = org.workers[1].employee_id
    hired = org.apply_edit({"op": "hire", "manager": boss, "hire_date": "2025-04-01", "given_name": "Zoe"})
    assert hired.status == "pre_hire" and hired.manager == 1 and len(org) == 81
    assert org.apply_edit({"op": "move", "id": leaf.employee_id, "manager": boss}).manager == 1
    assert org.apply_edit({"op": "rename", "id": leaf.employee_id, "title": "Lead"}).title == "Lead"
    assert org.apply_edit({"op": "terminate", "id": leaf.employee_id}).status == "terminated"
    rehired = org.apply_edit({"op": "rehire", "id": leaf.employee_id, "on": "2025-03-20"})
    assert rehired.status == "active" and rehired.hire_date == date(2025, 3, 20)
    converted = org.apply_edit({"op": "convert", "id": contractor.employee_id})
    assert converted.worker_type == "employee" and len(converted.former_wids) == 1
    assert org.apply_edit({"op": "delete", "id": contractor.employee_id}).deleted
    assert contractor.employee_id not in {p.id for p in org.expected_people()}
    with pytest.raises(ValueError, match="unknown edit op"):
        org.apply_edit({"op": "explode"})
