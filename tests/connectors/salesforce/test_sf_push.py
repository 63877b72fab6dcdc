"""Workday → Salesforce manager push through the engine, counted from the emulator's request log.

The two systems start from the same generated org (same seed); then only the HRIS side is
edited (``random_edits`` moves on Workday's copy), so Salesforce holds stale ManagerIds. The
Workday connector pulls over SOAP from its emulator; Salesforce is read once (``read_current``)
and written with sObject Collections.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from okrsync.config import parse_config
from okrsync.connectors.base import Operation, OpKind
from okrsync.engine import SyncEngine
from okrsync.models import Person
from okrsync.sandbox import RunningEmulator, SandboxOrg
from okrsync.state import open_state
from tests.connectors.salesforce.helpers import AS_OF, Clock, connector, emulator_of, settings, writes

StartEmulator = Callable[..., RunningEmulator]


def collection_writes(running: RunningEmulator) -> list[tuple[str, str, int]]:
    return [w for w in writes(emulator_of(running)) if w[1].endswith("/composite/sobjects")]


def test_workday_to_salesforce_push_fixes_every_manager_in_few_calls(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    clock = Clock()
    sf_org = SandboxOrg(2000, seed=9, as_of=AS_OF, clock=clock)
    hris = SandboxOrg(2000, seed=9, as_of=AS_OF, clock=clock)  # the same org, then moved in the HRIS only
    moves = hris.random_edits(450, seed=21, kinds=("move",))
    sf_run = start_emulator("salesforce", org=sf_org, opportunities_per_rep=0)
    wd_run = start_emulator("workday", org=hris)
    config = parse_config(
        {
            "connections": {"workday": wd_run.connection(), "salesforce": settings(sf_run)},
            "jobs": {"nightly": {"source": "workday", "targets": ["salesforce"]}},
        },
        base_dir=tmp_path,
    )
    engine = SyncEngine(config, open_state(":memory:"), clock=clock)
    emulator_of(sf_run).reset_stats()

    report = engine.sync("nightly")
    calls = collection_writes(sf_run)
    written = report.targets["salesforce"].written
    assert report.targets["salesforce"].failed == []
    assert report.targets["salesforce"].reconciled_from_target  # read from Salesforce, not assumed
    assert written >= len(moves) == 450  # + reports of moved-away inactive managers, re-pointed
    assert len(calls) <= math.ceil(written / 200) == 3
    assert all(method == "PATCH" and status == 200 for method, _, status in calls)
    sf_user = {w.employee_id: sf_org.salesforce_user_id(w.index) for w in sf_org}
    em = emulator_of(sf_run)
    for edit in moves:
        assert em.user(sf_user[str(edit["id"])])["ManagerId"] == sf_user[str(edit["manager"])]  # type: ignore[index]

    # Salesforce now holds exactly what Workday says: a fresh read finds nothing to write ...
    fresh = engine.prepare("nightly", full=True)
    assert fresh.plans["salesforce"].ops == []
    # ... and the next nightly run writes nothing
    em.reset_stats()
    again = engine.sync("nightly")
    assert again.writes == 0 and again.status == "no_change"
    assert collection_writes(sf_run) == []
    engine.close()


@pytest.fixture
def small(start_emulator: StartEmulator) -> tuple[SandboxOrg, RunningEmulator]:
    org = SandboxOrg(120, seed=6, as_of=AS_OF)
    return org, start_emulator("salesforce", org=org, opportunities_per_rep=0)


def update(person: Person, **changes: Any) -> Operation:
    new = person.model_copy(update=changes)
    return Operation(OpKind.UPDATE, person.id, new, {k: (getattr(person, k), v) for k, v in changes.items()})


def test_per_record_failures_are_reported_and_the_rest_is_written(
    small: tuple[SandboxOrg, RunningEmulator],
) -> None:
    _, running = small
    conn = connector(running)
    current = {p.id: p for p in conn.read_current({})}
    boss = next(
        p
        for p in current.values()
        if p.manager_id is not None and any(q.manager_id == p.id for q in current.values())
    )
    report = next(q for q in current.values() if q.manager_id == boss.id)
    other = next(p for p in current.values() if p.id not in (boss.id, report.id) and p.manager_id)
    ops = [
        update(boss, manager_id=report.id),  # a loop: Salesforce refuses this record only
        update(other, title="Principal Engineer"),
        update(Person(id="999999", title="x"), title="y"),  # no such user
        update(other, manager_id="888888"),  # no such manager
        Operation(OpKind.DISABLE, other.id, other, {"status": (other.status, None)}),
        Operation(OpKind.DELETE, other.id, other, {}),
    ]
    results = conn.apply(ops, {})
    assert [r.ok for r in results] == [False, True, False, False, False, False]
    assert "FIELD_INTEGRITY_EXCEPTION" in str(results[0].error) and "ManagerId" in str(results[0].error)
    assert results[2].error == "no Salesforce user with EmployeeNumber 999999"
    assert results[3].error == "manager 888888: no Salesforce user with EmployeeNumber 888888"
    assert "push_fields" in str(results[4].error) and "cannot be deleted" in str(results[5].error)
    assert results[1].target_id == other.external_ids["salesforce"]
    em = emulator_of(running)
    assert em.user(other.external_ids["salesforce"])["Title"] == "Principal Engineer"  # type: ignore[index]
    assert em.user(boss.external_ids["salesforce"])["ManagerId"] != report.external_ids["salesforce"]  # type: ignore[index]
    assert conn.write_calls == 1  # one Collections call carried both records that were sent


def test_users_are_created_only_when_asked(small: tuple[SandboxOrg, RunningEmulator]) -> None:
    _, running = small
    conn = connector(running)
    boss = next(iter(conn.read_current({})))
    newcomer = Person(
        id="777777", email="nova.new@example.com", given_name="Nova", family_name="New", manager_id=boss.id
    )
    create = Operation(OpKind.CREATE, newcomer.id, newcomer, {})
    assert conn.apply([create], {})[0].error == "no Salesforce user with EmployeeNumber 777777"
    profile = emulator_of(running).store.standard_profile_id
    creator = connector(running, create_users=True, new_user_profile_id=profile)
    (result,) = creator.apply([create], {})
    assert result.ok and result.target_id
    row = emulator_of(running).user(result.target_id)
    assert row is not None
    assert (row["EmployeeNumber"], row["ManagerId"]) == ("777777", boss.external_ids["salesforce"])


def test_the_push_rides_out_throttling(start_emulator: StartEmulator) -> None:
    org = SandboxOrg(120, seed=6, as_of=AS_OF)
    running = start_emulator("salesforce", org=org, opportunities_per_rep=0, faults="429=0.3,seed=2")
    conn = connector(running)
    current = list(conn.read_current({}))
    ops = [update(p, title=f"T{i}") for i, p in enumerate(current[:50])]
    results = conn.apply(ops, {})
    assert all(r.ok for r in results)
    assert conn.client.http.stats.retries >= 1 and conn.write_calls == 1
