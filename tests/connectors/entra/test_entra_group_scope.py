"""Entra pulls scoped to a group (``group_id``), over real HTTPS against the Graph emulator.

A pilot group with a nested group: the full pull returns exactly the transitive members (or
the direct ones), with their real managers; a delta round reports leavers as removed,
re-reads joiners and keeps ignoring changes to people outside the group.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from okrsync.connectors.entra import EntraConfig
from okrsync.errors import ApiError
from okrsync.sandbox import RunningEmulator, SandboxOrg

from .helpers import connector, control, count, emulator, expected_managers, pull

Start = Callable[..., RunningEmulator]


def pilot(run: RunningEmulator, org: SandboxOrg) -> tuple[str, set[str], set[str]]:
    """A group of workers 10..59 with a nested group of 50..89: (group id, direct, transitive) ids."""
    nested = control(
        run,
        "/_sandbox/groups",
        {"displayName": "Pilot wave 2", "members": [org.employee_id(i) for i in range(50, 90)]},
    )
    group = control(
        run,
        "/_sandbox/groups",
        {
            "displayName": "OKR pilot",
            "members": [org.entra_id(i) for i in range(10, 60)],
            "groups": [nested["id"]],
        },
    )
    direct = {org.entra_id(i) for i in range(10, 60)}
    return group["id"], direct, direct | {org.entra_id(i) for i in range(50, 90)}


def test_full_pull_returns_exactly_the_transitive_members_with_their_managers(start_emulator: Start) -> None:
    org = SandboxOrg(2500, seed=21)
    run = start_emulator("entra", org=org)
    gid, direct, transitive = pilot(run, org)
    conn = connector(run, group_id=gid.upper())  # object ids are case-insensitive
    result, people, removed = pull(conn)
    assert set(people) == transitive and not removed
    managers = expected_managers(org)  # employeeId → manager's employeeId, whatever the scope
    eid = {org.entra_id(w.index): w.employee_id for w in org}
    oid = {v: k for k, v in eid.items()}
    for person in people.values():
        expected = managers[eid[person.id]]
        assert person.manager_id == (oid[expected] if expected else None), person.id
    # one member page (ids only) + ceil(N/999) user pages + the delta token
    assert count(run, "GET /v1.0/groups/") == 1
    assert result.requests == 1 + math.ceil(2500 / 999) + 1
    assert any(f"{2500 - len(transitive)} directory user(s) outside group" in n for n in result.notices)

    direct_only = connector(run, group_id=gid, group_membership="direct")
    _, people, _ = pull(direct_only)
    assert set(people) == direct
    conn.close()
    direct_only.close()


def test_delta_round_reports_leavers_rereads_joiners_and_ignores_outsiders(start_emulator: Start) -> None:
    org = SandboxOrg(400, seed=22)
    run = start_emulator("entra", org=org)
    gid, _, transitive = pilot(run, org)
    conn = connector(run, group_id=gid)
    first, people, _ = pull(conn)
    assert set(people) == transitive

    groups = emulator(run).groups
    leavers = [org.entra_id(i) for i in (11, 12)]  # direct members only
    joiners = [org.entra_id(i) for i in (200, 201, 202)]
    groups.change(gid, remove=leavers, add=joiners)
    org.rename(org.workers[20].employee_id, title="Pilot Lead")  # a member changes
    org.rename(org.workers[300].employee_id, title="Not In Scope")  # an outsider changes
    org.move(org.workers[30].employee_id, org.employee_id(0))  # a member gets a new manager

    second, changed, removed = pull(conn, first.cursor)
    assert second.mode.value == "incremental"
    assert sorted(removed) == sorted(leavers)  # left the scope: removed (soft)
    assert set(joiners) <= set(changed)  # re-read in full: the delta said nothing about them
    assert changed[org.entra_id(20)].title == "Pilot Lead"
    assert changed[org.entra_id(30)].manager_id == org.entra_id(0)
    assert org.entra_id(300) not in changed
    assert set(changed) <= transitive - set(leavers) | set(joiners)
    for i in (200, 201, 202):  # joiners carry their real managers, though those are outside the group
        manager = org.workers[i].manager
        assert changed[org.entra_id(i)].manager_id == (None if manager is None else org.entra_id(manager))

    third, nothing, gone = pull(conn, second.cursor)
    assert not nothing and not gone
    assert third.requests == 2  # the delta page and the member ids page
    conn.close()


def test_unknown_group_and_malformed_group_id_are_clear_errors(start_emulator: Start) -> None:
    run = start_emulator("entra", org=SandboxOrg(30, seed=23))
    conn = connector(run, group_id="0e4c5a1b-2f3d-4e5f-8a9b-0c1d2e3f4a5b")
    with pytest.raises(ApiError) as exc:
        pull(conn)
    text = str(exc.value)
    assert "0e4c5a1b-2f3d-4e5f-8a9b-0c1d2e3f4a5b" in text and "Request_ResourceNotFound" in text
    conn.close()
    with pytest.raises(ValueError, match="group_id 'Sales team' is not a group object id"):
        EntraConfig(**{**run.connection(), "group_id": "Sales team"})
