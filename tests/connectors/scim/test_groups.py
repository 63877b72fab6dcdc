"""Org units as SCIM Groups (``groups = "department" | "org_unit"``) against scim2-server.

Each test gets a fresh server and a small org it can reason about by hand: who is in which
department, who moves, who leaves. What the service holds is read directly (bypassing
okrsync); what okrsync sent is every request the connector made.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
import requests
import responses
from responses import matchers

from okrsync.connectors.base import ConnectorContext
from okrsync.connectors.scim import ScimConfig, ScimConnector
from okrsync.connectors.scim.client import Capabilities
from okrsync.connectors.scim.groups import Group, Want, plan_group_writes
from okrsync.models import Person, PersonStatus
from okrsync.state import open_state
from tests.connectors.scim.conftest import DEFAULT_SPC, ScimServer, StartServer
from tests.connectors.scim.helpers import Run, ScimJob, Sent

GROUPS = 'groups = "department"'
OWNED = "okrsync:department:"


def org() -> list[Person]:
    """Executive: P0; Sales: P1, P2; Engineering: P3, P4, P5 (on leave: still a member)."""
    rows = [
        ("P0", None, "Executive", PersonStatus.ACTIVE),
        ("P1", "P0", "Sales", PersonStatus.ACTIVE),
        ("P2", "P1", "Sales", PersonStatus.ACTIVE),
        ("P3", "P0", "Engineering", PersonStatus.ACTIVE),
        ("P4", "P3", "Engineering", PersonStatus.ACTIVE),
        ("P5", "P3", "Engineering", PersonStatus.ON_LEAVE),
    ]
    return [
        Person(
            id=pid,
            manager_id=manager,
            user_name=f"{pid.lower()}@example.com",
            display_name=f"Person {pid}",
            title="Staff",
            department=dept,
            org_unit_id=f"U-{dept[:3].upper()}",
            status=status,
        )
        for pid, manager, dept, status in rows
    ]


def edit(people: list[Person], pid: str, **update: Any) -> list[Person]:
    return [p.model_copy(update=update) if p.id == pid else p for p in people]


def all_groups(server: ScimServer) -> list[dict[str, Any]]:
    """Every group the service holds, read directly (one page is plenty here)."""
    page = requests.get(f"{server.base_url}/Groups", params={"count": 1000}, timeout=60).json()
    return list(page.get("Resources") or [])


def owned(server: ScimServer, prefix: str = OWNED) -> dict[str, dict[str, Any]]:
    return {g["displayName"]: g for g in all_groups(server) if g.get("externalId", "").startswith(prefix)}


def members(group: dict[str, Any]) -> set[str]:
    return {m["value"] for m in group.get("members") or []}


def scim_ids(server: ScimServer) -> dict[str, str]:
    return {u["externalId"]: u["id"] for u in server.users()}


def group_requests(run: Run) -> list[Sent]:
    return [s for s in run.sent if "/Groups" in s.url]


def group_writes(run: Run) -> list[Sent]:
    return [s for s in run.writes if "/Groups" in s.url]


def create_group(server: ScimServer, body: dict[str, Any]) -> dict[str, Any]:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], **body}
    response = requests.post(
        f"{server.base_url}/Groups", json=body, headers={"Content-Type": "application/scim+json"}, timeout=60
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def server(scim_servers: StartServer) -> Iterator[ScimServer]:
    started = scim_servers()
    yield started
    started.stop()


def job_for(server: ScimServer, folder: Path, extra: str = GROUPS) -> ScimJob:
    job = ScimJob(folder, server.base_url, extra=extra)
    job.write_source(org())
    return job


def test_first_sync_creates_one_group_per_department_with_its_active_members(
    server: ScimServer, tmp_path: Path
) -> None:
    run = job_for(server, tmp_path).run()
    target = run.report.targets["scim"]
    assert run.report.status == "ok", target.failed
    ids = scim_ids(server)
    groups = owned(server)
    assert {name: members(g) for name, g in groups.items()} == {
        "Executive": {ids["P0"]},
        "Sales": {ids["P1"], ids["P2"]},
        "Engineering": {ids["P3"], ids["P4"], ids["P5"]},
    }
    assert {g["externalId"] for g in groups.values()} == {f"{OWNED}{n}" for n in groups}
    # one POST per department, after every user write (members need SCIM ids); no PATCH/PUT
    writes = group_writes(run)
    assert [(s.method, s.status) for s in writes] == [("POST", 201)] * 3
    last_user_write = max(i for i, s in enumerate(run.sent) if s in run.writes and "/Groups" not in s.url)
    assert all(run.sent.index(s) > last_user_write for s in writes)
    assert run.connector.group_counts() == {"create": 3, "update": 0}
    assert target.counts == {"create": 6} and target.written == 6 + 3  # group writes count as written


def test_a_rerun_writes_nothing_to_groups(server: ScimServer, tmp_path: Path) -> None:
    job = job_for(server, tmp_path)
    job.run()
    before = {name: (g["id"], g["meta"]["version"]) for name, g in owned(server).items()}

    assert job.run().sent == [], "nothing changed: not even a group read"

    full = job.run(full=True)  # reads users and groups back, compares membership by SCIM id
    assert full.writes == []
    # only P5 differs canonically (on leave, read back as active: no request); were membership
    # misread, every active person would be an update here
    assert full.report.targets["scim"].counts == {"update": 1}
    assert {s.method for s in group_requests(full)} == {"GET"}

    job.write_source(edit(org(), "P4", title="Principal"))  # a change that does not move anyone
    edited = job.run()
    assert edited.report.status == "ok"
    assert [s.method for s in group_requests(edited)] == ["GET"], "groups read, none written"
    assert len(edited.writes) == 1 and edited.writes[0].url.endswith("/Bulk")
    assert edited.connector.group_counts() == {"create": 0, "update": 0}
    after = {name: (g["id"], g["meta"]["version"]) for name, g in owned(server).items()}
    assert after == before


def test_moves_and_leavers_are_minimal_member_patches(server: ScimServer, tmp_path: Path) -> None:
    job = job_for(server, tmp_path)
    job.run()
    ids = scim_ids(server)
    groups = owned(server)
    people = edit(org(), "P2", department="Engineering")  # Sales -> Engineering
    people = edit(people, "P1", department="Legal")  # Sales -> a new department: Sales is left empty
    people = [p for p in people if p.id != "P4"]  # P4 leaves: deactivated, out of Engineering
    job.write_source(people)

    run = job.run(allow_deletes=True)
    assert run.report.status == "ok", run.report.targets["scim"].failed
    writes = {(s.method, s.url.rsplit("/", 1)[-1]): s for s in group_writes(run)}
    eng, sales = groups["Engineering"]["id"], groups["Sales"]["id"]
    assert set(writes) == {("PATCH", eng), ("PATCH", sales), ("POST", "Groups")}
    assert writes[("PATCH", eng)].body["Operations"] == [
        {"op": "add", "path": "members", "value": [{"value": ids["P2"]}]},
        {"op": "remove", "path": f'members[value eq "{ids["P4"]}"]'},
    ]
    assert sorted(op["path"] for op in writes[("PATCH", sales)].body["Operations"]) == sorted(
        f'members[value eq "{ids[p]}"]' for p in ("P1", "P2")
    )
    assert writes[("POST", "Groups")].body["externalId"] == f"{OWNED}Legal"
    assert "If-Match" not in writes[("PATCH", eng)].headers, "member add/remove needs no version"
    assert run.connector.group_counts() == {"create": 1, "update": 2}

    now = owned(server)
    assert members(now["Engineering"]) == {ids["P2"], ids["P3"], ids["P5"]}
    assert members(now["Legal"]) == {ids["P1"]}
    assert now["Sales"]["id"] == sales and members(now["Sales"]) == set(), "emptied, not deleted"
    assert members(now["Executive"]) == {ids["P0"]}


def test_groups_okrsync_does_not_own_are_left_untouched(server: ScimServer, tmp_path: Path) -> None:
    job = job_for(server, tmp_path, extra=f"{GROUPS}\nuse_bulk = false")
    job.run()
    ids = scim_ids(server)
    # someone else's groups: same displayName, a look-alike externalId, none at all; one lists P2
    p2 = [{"value": ids["P2"]}]
    theirs = [
        create_group(server, {"displayName": "Sales", "externalId": "hr:sales", "members": p2}),
        create_group(server, {"displayName": "Sales", "externalId": "okrsync:departments:Sales"}),
        create_group(server, {"displayName": "Engineering", "members": [{"value": ids["P3"]}]}),
    ]
    job.write_source(edit(org(), "P2", department="Engineering"))
    run = job.run()
    assert run.report.status == "ok"
    assert len(group_writes(run)) == 2  # okrsync's Sales and Engineering
    for group in theirs:
        assert not [s for s in run.sent if group["id"] in s.url], "never addressed"
        now = next(g for g in all_groups(server) if g["id"] == group["id"])
        assert now["meta"]["version"] == group["meta"]["version"] and members(now) == members(group)
    assert members(owned(server)["Sales"]) == {ids["P1"]}
    assert ids["P2"] in members(next(g for g in all_groups(server) if g["id"] == theirs[0]["id"]))


def test_groups_none_makes_no_group_requests(server: ScimServer, tmp_path: Path) -> None:
    job = job_for(server, tmp_path, extra="")
    first = job.run()
    job.write_source(edit(org(), "P2", department="Engineering"))
    moved = job.run()
    full = job.run(full=True)
    assert first.report.status == moved.report.status == "ok"
    assert [s.url for r in (first, moved, full) for s in r.sent if "/Groups" in s.url] == []
    assert all_groups(server) == []
    assert "org_unit_id" not in moved.connector.managed_fields


def test_without_patch_support_a_group_is_replaced_with_if_match(
    scim_servers: StartServer, tmp_path: Path
) -> None:
    """org_unit groups, so the move needs no user PATCH (which this service would refuse: 501)."""
    server = scim_servers(spc={**DEFAULT_SPC, "patch": {"supported": False}})
    try:
        job = job_for(server, tmp_path, extra='groups = "org_unit"')
        job.run()
        ids = scim_ids(server)
        sales = owned(server, "okrsync:org_unit:")["U-SAL"]
        job.write_source(edit(org(), "P2", org_unit_id="U-ENG"))
        run = job.run()
        assert run.report.status == "ok", run.report.targets["scim"].failed
        writes = group_writes(run)
        assert [s.method for s in writes] == ["PUT", "PUT"] and writes == run.writes
        put = next(s for s in writes if s.url.endswith(sales["id"]))
        assert put.body["members"] == [{"value": ids["P1"]}]
        assert put.headers["If-Match"] == sales["meta"]["version"], "a whole-list write guards its base"
        assert put.body["externalId"] == "okrsync:org_unit:U-SAL" and put.body["displayName"] == "U-SAL"
        now = owned(server, "okrsync:org_unit:")
        assert members(now["U-ENG"]) == {ids[p] for p in ("P2", "P3", "P4", "P5")}
        assert members(now["U-SAL"]) == {ids["P1"]}
    finally:
        server.stop()


def test_a_failing_group_write_is_reported_and_user_writes_are_kept(
    server: ScimServer, tmp_path: Path
) -> None:
    job = job_for(server, tmp_path)
    refused = {"scimType": "invalidValue", "detail": "displayName is reserved", "status": "400"}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.add_passthru(re.compile(re.escape(server.base_url)))
        rsps.post(
            f"{server.base_url}/Groups",
            status=400,
            json=refused,
            match=[matchers.json_params_matcher({"displayName": "Sales"}, strict_match=False)],
        )
        run = job.run()
    target = run.report.targets["scim"]
    assert run.report.status == "failed_records"
    assert target.failed == [
        {
            "person_id": f"{OWNED}Sales",
            "operation": "create",
            "error": f"group 'Sales' ({OWNED}Sales): create failed: "
            "400 invalidValue: displayName is reserved",
        }
    ]
    # every user write stands: on the server, in the id map, counted; the other groups exist
    ids = scim_ids(server)
    assert sorted(ids) == ["P0", "P1", "P2", "P3", "P4", "P5"]
    state = open_state(str(tmp_path / "state.db"))
    try:
        assert state.get_id_map("scim") == ids
    finally:
        state.close()
    assert target.written == 6 + 2 and set(owned(server)) == {"Executive", "Engineering"}

    # a --full run sees the membership that is missing and writes only that
    full = job.run(full=True)
    assert full.report.status == "ok", full.report.targets["scim"].failed
    assert [(s.method, s.body["displayName"]) for s in full.writes] == [("POST", "Sales")]
    assert members(owned(server)["Sales"]) == {ids["P1"], ids["P2"]}


def test_org_units_as_groups_follow_org_unit_id_alone(server: ScimServer, tmp_path: Path) -> None:
    job = job_for(server, tmp_path, extra='groups = "org_unit"')
    job.run()
    ids = scim_ids(server)
    assert {n: members(g) for n, g in owned(server, "okrsync:org_unit:").items()} == {
        "U-EXE": {ids["P0"]},
        "U-SAL": {ids["P1"], ids["P2"]},
        "U-ENG": {ids["P3"], ids["P4"], ids["P5"]},
    }
    # no SCIM user attribute holds org_unit_id: a change to it alone still moves the membership
    job.write_source(edit(org(), "P5", org_unit_id="U-SAL"))
    run = job.run()
    assert run.report.targets["scim"].counts == {"update": 1}
    assert [s.method for s in run.writes] == ["PATCH", "PATCH"]
    assert all("/Groups/" in s.url for s in run.writes), "no user write: no SCIM attribute changed"
    assert members(owned(server, "okrsync:org_unit:")["U-SAL"]) == {ids["P1"], ids["P2"], ids["P5"]}


def test_group_endpoint_comes_from_resource_types() -> None:
    user = {"name": "User", "endpoint": "/Users"}
    assert Capabilities.from_documents(None, [], []).groups_endpoint == "/Groups"  # not served: assume
    assert Capabilities.from_documents(None, [user], []).groups_endpoint is None  # listed, no Group
    group = {"name": "Group", "endpoint": "Teams/"}
    assert Capabilities.from_documents(None, [user, group], []).groups_endpoint == "/Teams"


def test_a_duplicate_owned_group_loses_its_members_to_the_oldest_id() -> None:
    """A crash between a group POST and the state commit can leave two groups of one value."""
    keep = Group("a1", "Sales", {"u1"}, {})
    dup = Group("b2", "Sales", {"u1", "u2"}, {})
    wanted = {"u1": Want("P1", "Sales"), "u2": Want("P2", "Sales")}
    writes = plan_group_writes([dup, keep], wanted)
    assert [(w.group.scim_id if w.group else None, w.add, w.remove) for w in writes] == [
        ("a1", {"u2": "P2"}, {}),
        ("b2", {}, {"u1": "P1", "u2": "P2"}),
    ]


def test_a_service_that_ignores_the_filter_still_cannot_make_okrsync_touch_its_groups() -> None:
    base = "https://idp.example.com/scim/v2"
    theirs = "hr:sales-team-of-the-north"  # longer than the prefix: slicing alone would not reject it
    listed = [
        {"id": "g1", "displayName": "Sales", "externalId": theirs, "members": [{"value": "u1"}]},
        {"id": "g2", "displayName": "Sales", "members": [{"value": "u1"}]},
        {"id": "g3", "displayName": "Sales", "externalId": f"{OWNED}Sales", "members": [{"value": "u2"}]},
    ]
    with responses.RequestsMock() as rsps:
        rsps.get(f"{base}/ServiceProviderConfig", json={"filter": {"supported": True}})
        rsps.get(f"{base}/ResourceTypes", status=404)
        rsps.get(f"{base}/Schemas", status=404)
        rsps.get(f"{base}/Groups", json={"totalResults": 3, "startIndex": 1, "Resources": listed})
        conn = ScimConnector(ScimConfig(base_url=base, groups="department"), ConnectorContext("scim"))
        assert conn.groups is not None
        found = conn.groups.read_owned()
        assert 'externalId sw "okrsync:department:"' in unquote_plus(rsps.calls[-1].request.url or "")
    assert [(g.scim_id, g.value, g.members) for g in found] == [("g3", "Sales", {"u2"})]
