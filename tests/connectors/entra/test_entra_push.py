"""Entra as a target, over real HTTPS against the Graph emulator: stale directories, creates, faults."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from okrsync.models import Person, PersonStatus
from okrsync.sandbox import RunningEmulator, SandboxOrg

from .helpers import Job, count, directory_by_employee_id, emulator, people_file, set_faults

Start = Callable[..., RunningEmulator]


def mismatches(run: RunningEmulator, people: list[Person], *, skip_terminated: bool = False) -> list[str]:
    """Every way the directory differs from the people (as the push mapping writes them)."""
    directory = directory_by_employee_id(run)
    out = []
    for p in people:
        if skip_terminated and p.status is PersonStatus.TERMINATED:
            continue
        d = directory.get(p.id)
        if d is None:
            out.append(f"{p.id}: missing")
            continue
        want = {
            "displayName": p.display_name,
            "jobTitle": p.title,
            "department": p.department,
            "officeLocation": p.location,
            "manager": p.manager_id,
            "accountEnabled": p.status is PersonStatus.ACTIVE,
            "employeeType": "Contractor" if p.worker_type.value == "contingent" else "Employee",
        }
        out += [f"{p.id}.{k}: {d.get(k)!r} != {v!r}" for k, v in want.items() if d.get(k) != v]
    return out


def hris_to_entra(tmp_path: Path, run: RunningEmulator, people: list[Person], **entra: Any) -> Job:
    """The Workday → Entra job, with a files source holding what the Workday emulator serves."""
    return Job(
        tmp_path,
        {"hris": people_file(tmp_path, people), "entra": {**run.connection(), **entra}},
        source="hris",
        targets=["entra"],
    )


def test_stale_directory_is_fixed_then_left_alone(start_emulator: Start, tmp_path: Path) -> None:
    org = SandboxOrg(3000, seed=21)
    run = start_emulator("entra", org=org, directory="stale")
    stale = emulator(run).directory.stale
    assert len(stale) == 600
    people = org.expected_people()
    assert len(mismatches(run, people)) >= 600
    job = hris_to_entra(tmp_path, run, people)

    report, stats = job.sync()
    target = report["targets"]["entra"]
    assert report["status"] == "ok", report
    assert target["reconciled_from_target"] and not target["failed"]
    assert mismatches(run, people) == []
    # operations for the stale users, plus pre-hires (held as disabled = "terminated"): for those the
    # mapped value (accountEnabled false) is the same, so they cost no request
    stale_eids = {u["employeeId"] for u in directory_by_employee_id(run).values() if u["id"] in stale}
    pre_hires = {p.id for p in people if p.status is PersonStatus.PRE_HIRE}
    assert target["counts"] == {"update": len(stale_eids | pre_hires)}
    assert count(run, "POST /v1.0/users") == 0
    assert emulator(run).requests["GET /v1.0/users"] == math.ceil(3000 / 999)  # one read of the directory
    calls, items = stats["entra"]["batch_calls"], stats["entra"]["batch_items"]
    # one PATCH per user with a stale title and/or department, one manager PUT per stale manager
    assert items == sum(
        bool({"jobTitle", "department"} & set(v)) + bool({"manager_wrong", "manager_missing"} & set(v))
        for v in stale.values()
    )
    assert calls == math.ceil(items / 20), (calls, items)  # every $batch call full but the last
    assert calls / items <= 1 / 20 + 1 / items

    report, stats = job.sync()  # nothing differs any more: no write, not even a request
    assert report["writes"] == 0 and report["status"] == "no_change"
    assert stats["entra"]["requests"] == 0


def test_hr_edits_flow_to_the_directory(start_emulator: Start, tmp_path: Path) -> None:
    org = SandboxOrg(800, seed=22)
    run = start_emulator("entra", org=org, directory="stale", stale_fraction=0.1)
    job = hris_to_entra(tmp_path, run, org.expected_people())
    job.sync()
    # HR changes arrive in the source only: edit a twin of the org the directory was built from
    hris = SandboxOrg(800, seed=22)
    edits = hris.random_edits(40)
    people = hris.expected_people()
    people_file(tmp_path, people)
    report, stats = job.sync()
    counts = report["targets"]["entra"]["counts"]
    assert counts.get("create") == sum(1 for e in edits if e["op"] == "hire"), report
    assert not report["targets"]["entra"]["failed"], report["targets"]["entra"]["failed"]
    assert mismatches(run, people) == []
    assert count(run, "POST /v1.0/users") == 0  # creates went through $batch too
    # no listing on later runs: the id map, plus bulk look-ups for people never written before
    assert stats["entra"]["requests"] == stats["entra"]["batch_calls"]


def test_empty_directory_gets_everyone_with_managers(start_emulator: Start, tmp_path: Path) -> None:
    org = SandboxOrg(300, seed=23)
    run = start_emulator("entra", org=org, directory="empty")
    people = org.expected_people()
    job = hris_to_entra(tmp_path, run, people)
    report, _ = job.sync()
    assert not report["targets"]["entra"]["failed"], report["targets"]["entra"]["failed"][:3]
    assert mismatches(run, people, skip_terminated=True) == []
    terminated = {p.id for p in people if p.status is PersonStatus.TERMINATED}
    assert terminated and not terminated & set(directory_by_employee_id(run))  # no accounts for leavers
    report, stats = job.sync()
    assert report["writes"] == 0 and stats["entra"]["requests"] == 0


def test_faults_end_in_the_same_state(start_emulator: Start, tmp_path: Path) -> None:
    org = SandboxOrg(1500, seed=24)
    run = start_emulator("entra", org=org, directory="stale")
    people = org.expected_people()
    job = hris_to_entra(tmp_path, run, people)
    set_faults(run, "429=0.1,503=0.05,reset=0.02,retry_after=0.05,seed=5")
    report, stats = job.sync()
    assert report["status"] == "ok", report
    assert report["targets"]["entra"]["retries"] > 0
    assert stats["entra"]["retries"] > 0
    assert mismatches(run, people) == []
    report, _ = job.sync()
    assert report["writes"] == 0


def test_workday_to_entra_fixes_a_stale_directory(start_emulator: Start, tmp_path: Path) -> None:
    org = SandboxOrg(600, seed=25)
    workday = start_emulator("workday", org=org)
    run = start_emulator("entra", org=org, directory="stale")
    job = Job(
        tmp_path,
        {"workday": workday.connection(), "entra": run.connection()},
        source="workday",
        targets=["entra"],
    )
    report, stats = job.sync()
    assert report["status"] == "ok", report
    assert mismatches(run, org.expected_people()) == []
    assert stats["entra"]["batch_calls"] <= math.ceil(stats["entra"]["batch_items"] / 20) + 1
    report, stats = job.sync()
    assert report["writes"] == 0 and stats["entra"]["requests"] == 0
