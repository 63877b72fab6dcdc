"""Entra as a source, over real HTTPS against the Graph emulator: full pulls, delta rounds, resyncs."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from okrsync.models import Person
from okrsync.sandbox import RunningEmulator, SandboxOrg

from .helpers import (
    Job,
    connector,
    control,
    count,
    emulator,
    expected_managers,
    pull,
    set_faults,
    token_requests,
)

Start = Callable[..., RunningEmulator]


def by_employee_id(people: dict[str, Person]) -> dict[str, Person]:
    return {p.external_ids["employee_id"]: p for p in people.values()}


def managers_as_employee_ids(people: dict[str, Person]) -> dict[str, str | None]:
    """objectId-keyed people → employeeId → manager's employeeId."""
    eid = {p.id: p.external_ids["employee_id"] for p in people.values()}
    return {eid[p.id]: (eid[p.manager_id] if p.manager_id else None) for p in people.values()}


def entra_job(tmp_path: Path, run: RunningEmulator, **overrides: object) -> Job:
    return Job(
        tmp_path,
        {
            "entra": {**run.connection(), **overrides},
            "out": {"type": "files", "path": "out.jsonl"},
        },
        source="entra",
        targets=["out"],
    )


def test_full_pull_of_10000_users_is_ceil_n_over_999_pages(start_emulator: Start) -> None:
    org = SandboxOrg(10_000, seed=11)
    run = start_emulator("entra", org=org)
    conn = connector(run)
    result, people, removed = pull(conn)
    assert len(people) == 10_000 and not removed
    assert result.requests == math.ceil(10_000 / 999) + 1  # + the $deltatoken=latest that seeds the cursor
    assert emulator(run).requests["GET /v1.0/users"] == math.ceil(10_000 / 999)
    assert count(run, "GET /v1.0/users/delta") == 1
    assert token_requests(run) == 1
    assert conn.graph.auth.acquired == 1
    assert managers_as_employee_ids(people) == expected_managers(org)
    sample = by_employee_id(people)[org.workers[42].employee_id]
    assert sample.external_ids == {"entra": org.entra_id(42), "employee_id": org.workers[42].employee_id}
    assert sample.display_name == org.workers[42].display_name
    conn.close()


def test_delta_round_after_50_edits_reproduces_the_directory(start_emulator: Start, tmp_path: Path) -> None:
    org = SandboxOrg(3000, seed=12)
    run = start_emulator("entra", org=org)
    job = entra_job(tmp_path, run)
    report, _ = job.sync()
    assert report["mode"] == "full" and report["people"] == 3000
    edits = org.random_edits(50)
    assert {e["op"] for e in edits} == {"move", "terminate", "rename", "hire"}
    before = count(run, "GET /v1.0/users")
    report, _ = job.sync()
    assert report["mode"] == "incremental", report
    assert report["pulled"] >= 50
    # the round: the delta page(s) only; every entry was complete, so nothing was re-read
    assert count(run, "GET /v1.0/users") - before == report["source_requests"] == 1
    merged = job.snapshot()
    with job.engine() as engine:  # the truth: a fresh full pull of the directory as it is now
        fresh = engine.pull("entra", full=True).snapshot.people_by_id()
    assert merged == fresh
    assert managers_as_employee_ids(merged) == expected_managers(org)
    moved = next(e for e in edits if e["op"] == "move")
    new_manager = org.get(str(moved["manager"])).index
    assert by_employee_id(merged)[str(moved["id"])].manager_id == org.entra_id(new_manager)
    terminated = next(e for e in edits if e["op"] == "terminate")
    assert by_employee_id(merged)[str(terminated["id"])].status.value == "terminated"

    # a quiet night: exactly one request to the source (the deltaLink), nothing written
    before, tokens = count(run, "GET /v1.0/"), token_requests(run)
    report, _ = job.sync()
    assert report["source_requests"] == 1 and report["status"] == "no_change"
    assert count(run, "GET /v1.0/") - before == 1
    assert token_requests(run) - tokens == 1  # a new process (engine) gets one token, aside


@pytest.mark.parametrize("mode", ["gone", "sync_state_not_found"])
def test_expired_delta_token_triggers_a_reported_full_resync(
    start_emulator: Start, tmp_path: Path, mode: str
) -> None:
    org = SandboxOrg(400, seed=13)
    run = start_emulator("entra", org=org)
    job = entra_job(tmp_path, run)
    job.sync()
    org.random_edits(8)
    control(run, "/_sandbox/expire-delta", {"mode": mode})
    report, _ = job.sync()
    assert report["mode"] == "full"
    assert "delta token expired; full resync" in report["notices"]
    assert managers_as_employee_ids(job.snapshot()) == expected_managers(org)
    report, _ = job.sync()  # the resync stored a fresh deltaLink
    assert report["mode"] == "incremental" and report["source_requests"] == 1


def test_employee_id_mode_translates_managers_and_names_deletions(start_emulator: Start) -> None:
    org = SandboxOrg(600, seed=14)
    run = start_emulator("entra", org=org)
    conn = connector(run, id_attribute="employeeId")
    first, people, _ = pull(conn)
    assert {p.id: p.manager_id for p in people.values()} == expected_managers(org)
    assert len(first.cursor or "") < 600 * 80
    org.random_edits(20)
    hire = org.hire(org.workers[5].employee_id, given_name="Ada")  # a new manager ...
    report_to_hire = org.workers[300]
    org.move(report_to_hire.employee_id, hire.employee_id)  # ... and a report in the same round
    gone = org.workers[599]
    org.delete(gone.employee_id)
    second, changed, removed = pull(conn, first.cursor)
    assert second.mode.value == "incremental"
    assert removed == [gone.employee_id]
    assert changed[report_to_hire.employee_id].manager_id == hire.employee_id
    merged = {**people, **changed}
    merged.pop(gone.employee_id)
    assert {p.id: p.manager_id for p in merged.values()} == expected_managers(org)
    third, nothing, _ = pull(conn, second.cursor)
    assert not nothing and third.requests == 1
    conn.close()


def test_scope_filter_applies_to_full_and_delta_pulls(start_emulator: Start) -> None:
    org = SandboxOrg(300, seed=15)
    run = start_emulator("entra", org=org)
    conn = connector(run, filter="accountEnabled eq true")
    first, people, _ = pull(conn)
    active = {org.entra_id(w.index) for w in org if w.status == "active"}
    assert set(people) == active
    managers = {w.manager for w in org}
    leaver = next(w for w in org if w.status == "active" and w.index > 100 and w.index not in managers)
    org.terminate(leaver.employee_id)
    org.rename(org.workers[7].employee_id, title="Chief Tea Officer")
    _, changed, removed = pull(conn, first.cursor)
    assert removed == [org.entra_id(leaver.index)]  # out of scope now: removed (soft)
    assert changed[org.entra_id(7)].title == "Chief Tea Officer"
    conn.close()


def test_faults_are_absorbed_and_the_state_is_the_same(start_emulator: Start, tmp_path: Path) -> None:
    org = SandboxOrg(2500, seed=16)
    run = start_emulator("entra", org=org)
    job = entra_job(tmp_path, run)
    set_faults(run, "429=0.1,503=0.05,reset=0.02,retry_after=0.01,seed=3")
    report, stats = job.sync()
    assert report["status"] in {"ok", "no_change"}, report
    assert stats["entra"]["retries"] > 0
    org.random_edits(30)
    report, _ = job.sync()
    assert report["mode"] == "incremental"
    set_faults(run, "")
    with job.engine() as engine:
        fresh = engine.pull("entra", full=True).snapshot.people_by_id()
    assert job.snapshot() == fresh
    assert managers_as_employee_ids(fresh) == expected_managers(org)
