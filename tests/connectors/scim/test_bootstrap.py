"""A 2,000-person org provisioned into scim2-server through the engine, then kept in step.

One module, one server, one job: the tests run in order (bootstrap → quiet rerun → 50 edits
→ full reconcile), each checking what the service really holds by reading it directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

from okrsync.connectors.scim.client import ENTERPRISE
from okrsync.models import Person
from okrsync.sandbox.orgs import SandboxOrg
from okrsync.state import open_state
from tests.connectors.scim.conftest import DEFAULT_SPC, ScimServer
from tests.connectors.scim.helpers import Run, ScimJob

N = 2000
MAX_OPS = DEFAULT_SPC["bulk"]["maxOperations"]  # type: ignore[index]
MANAGER_PATH = f"{ENTERPRISE}:manager"


@dataclass
class Bootstrap:
    org: SandboxOrg
    people: list[Person]
    job: ScimJob
    first: Run
    folder: Path
    users: dict[str, dict]  # what the service held right after the bootstrap, by externalId


@pytest.fixture(scope="module")
def boot(scim_server: ScimServer, tmp_path_factory: pytest.TempPathFactory) -> Bootstrap:
    folder = tmp_path_factory.mktemp("scim-bootstrap")
    org = SandboxOrg(N, seed=11)
    people = org.expected_people()
    job = ScimJob(folder, scim_server.base_url)
    job.write_source(people)
    first = job.run()
    users = {u["externalId"]: u for u in scim_server.users()}
    return Bootstrap(org, people, job, first, folder, users)


def test_bootstrap_creates_everyone_with_the_right_manager(boot: Bootstrap, scim_server: ScimServer) -> None:
    report = boot.first.report
    assert report.status == "ok", report.targets["scim"].failed[:5]
    assert report.targets["scim"].counts == {"create": N} and report.targets["scim"].written == N

    # request budget: every request after discovery (the read of the empty directory + the bulks)
    after = boot.first.after_discovery
    budget = math.ceil(N / MAX_OPS) + math.ceil(N / 1000)
    assert len(after) <= budget, [(s.method, s.url) for s in after]
    bulks = [s for s in after if s.url.endswith("/Bulk")]
    assert len(bulks) == math.ceil(N / MAX_OPS)
    assert all(len(s.body["Operations"]) <= MAX_OPS for s in bulks)
    assert sum(len(s.body["Operations"]) for s in bulks) == N
    # a manager and their reports share a request: references by bulkId, resolved by the server
    assert any(
        str(op["data"].get(ENTERPRISE, {}).get("manager", {}).get("value", "")).startswith("bulkId:")
        for s in bulks
        for op in s.body["Operations"]
    )
    assert boot.first.connector.request_counts()["discovery"] == 3

    users = boot.users
    assert sorted(users) == sorted(p.id for p in boot.people)
    scim_to_pid = {u["id"]: pid for pid, u in users.items()}
    for p in boot.people:
        u = users[p.id]
        ext = u.get(ENTERPRISE, {})
        manager = ext.get("manager", {}).get("value")
        assert (scim_to_pid[manager] if manager else None) == p.manager_id, p.id
        assert u["userName"] == p.user_name and u["title"] == p.title
        assert ext["employeeNumber"] == p.id and ext["department"] == p.department
        assert ext["costCenter"] == p.cost_center and ext["division"] == p.division
        assert u["active"] is p.is_active
        assert u["emails"][0]["value"] == p.email

    # the id map holds every SCIM id
    state = open_state(str(boot.folder / "state.db"))
    try:
        assert state.get_id_map("scim") == {pid: u["id"] for pid, u in users.items()}
    finally:
        state.close()


def test_filter_on_manager_value_returns_exactly_the_direct_reports(
    boot: Bootstrap, scim_server: ScimServer
) -> None:
    users = boot.users
    reports: dict[str, set[str]] = {}
    for p in boot.people:
        if p.manager_id:
            reports.setdefault(p.manager_id, set()).add(p.id)
    ceo = boot.people[0].id
    middle = sorted(reports, key=lambda m: (len(reports[m]), m))[len(reports) // 2]
    for manager in (ceo, middle):
        found = scim_server.users(f'{MANAGER_PATH}.value eq "{users[manager]["id"]}"')
        assert {u["externalId"] for u in found} == reports[manager]


def test_second_run_sends_nothing(boot: Bootstrap) -> None:
    run = boot.job.run()
    assert run.report.status == "no_change" and run.report.writes == 0
    assert run.sent == [], "a quiet night sends no request at all (discovery is lazy)"


def test_fifty_edits_become_fifty_minimal_writes(boot: Bootstrap, scim_server: ScimServer) -> None:
    before_ids = {p.id for p in boot.org.expected_people()}
    edits = boot.org.random_edits(50)
    people = boot.org.expected_people()
    boot.job.write_source(people)
    run = boot.job.run()
    assert run.report.status == "ok", run.report.targets["scim"].failed[:5]

    hired = {p.id for p in people} - before_ids
    kinds = {str(e["id"]): str(e["op"]) for e in edits if "id" in e}
    assert len(hired) == sum(e["op"] == "hire" for e in edits)
    scim_to_pid = {u["id"]: pid for pid, u in boot.users.items()}
    state = open_state(str(boot.folder / "state.db"))
    try:
        id_map = state.get_id_map("scim")
    finally:
        state.close()
    assert set(id_map) == {p.id for p in people}
    scim_to_pid.update({scim: pid for pid, scim in id_map.items()})

    # every write this run, flattened out of the bulk requests
    posts, patches = {}, {}
    for sent in run.writes:
        assert sent.url.endswith("/Bulk"), f"{sent.method} {sent.url}: writes go through /Bulk"
        for op in sent.body["Operations"]:
            if op["method"] == "POST":
                posts[op["data"]["externalId"]] = op
            else:
                assert op["method"] == "PATCH" and "version" in op, "patches carry the ETag (If-Match)"
                patches[scim_to_pid[unquote(op["path"]).rsplit("/", 1)[-1]]] = op["data"]["Operations"]
    assert set(posts) == hired
    assert set(posts) | set(patches) == hired | set(kinds)
    assert len(posts) + len(patches) == 50
    expected = {p.id: p for p in people}
    for pid, ops in patches.items():
        kind = kinds[pid]
        paths = [o["path"] for o in ops]
        if kind == "move":
            assert paths == [MANAGER_PATH]
            assert scim_to_pid[ops[0]["value"]["value"]] == expected[pid].manager_id
        elif kind == "terminate":
            assert ops == [{"op": "replace", "path": "active", "value": False}]
        else:
            assert kind == "rename" and ops == [
                {"op": "replace", "path": "title", "value": expected[pid].title}
            ]

    # what the service holds now: leavers deactivated (not deleted), hires under their managers
    for pid in hired | set(kinds):
        user = scim_server.user(id_map[pid])
        assert user is not None and user["externalId"] == pid, "deactivated, never deleted"
        assert user["active"] is expected[pid].is_active
        assert user["title"] == expected[pid].title
        manager = user[ENTERPRISE]["manager"]["value"]
        assert scim_to_pid[manager] == expected[pid].manager_id
    assert sum(kind == "terminate" for kind in kinds.values()) >= 10
