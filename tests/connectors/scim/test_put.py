"""Users on a service without PATCH: read-modify-write PUTs with If-Match, against scim2-server.

scim2-server configured with ``"patch": {"supported": false}`` answers 501 to every PATCH (single
or in a bulk), so a run that still PATCHed would fail. Each test gets a fresh server and a small
org; what the service holds is read directly, what okrsync sent is every request it made.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from okrsync.connectors.base import ConnectorContext, Operation, OpKind
from okrsync.connectors.scim import ScimConfig, ScimConnector
from okrsync.connectors.scim import resource as res
from okrsync.connectors.scim.client import CORE_USER, ENTERPRISE
from okrsync.models import Person, PersonStatus
from tests.connectors.scim.conftest import DEFAULT_SPC, ScimServer, StartServer
from tests.connectors.scim.helpers import Run, ScimJob, Sent, recorder

NO_BULK = {"bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0}}
NO_PATCH = {**DEFAULT_SPC, "patch": {"supported": False}}
NO_PATCH_NO_BULK = {**NO_PATCH, **NO_BULK}
PATCH_NO_BULK = {**DEFAULT_SPC, **NO_BULK}
SINGLE = "use_bulk = false"  # belt and braces: the services above do not announce bulk either


def org() -> list[Person]:
    """P0 heads the org; P1 and P3 report to P0; P2 to P1; P4 to P3."""
    rows = [("P0", None), ("P1", "P0"), ("P2", "P1"), ("P3", "P0"), ("P4", "P3")]
    return [
        Person(
            id=pid,
            manager_id=manager,
            user_name=f"{pid.lower()}@example.com",
            email=f"{pid.lower()}@example.com",
            display_name=f"Person {pid}",
            given_name="Person",
            family_name=pid,
            title="Staff",
            department="Sales",
            cost_center="CC-1",
            location="Berlin",
        )
        for pid, manager in rows
    ]


def edit(people: list[Person], pid: str, **update: Any) -> list[Person]:
    return [p.model_copy(update=update) if p.id == pid else p for p in people]


def moved(people: list[Person]) -> list[Person]:
    """P2: new title and department, now reports to P3, no cost centre any more."""
    return edit(people, "P2", title="Lead", department="Engineering", manager_id="P3", cost_center=None)


def scim_ids(server: ScimServer) -> dict[str, str]:
    return {u["externalId"]: u["id"] for u in server.users()}


def user_of(server: ScimServer, pid: str) -> dict[str, Any]:
    (user,) = server.users(f'externalId eq "{pid}"')
    return user


def methods(run: Run) -> list[str]:
    return [s.method for s in run.writes]


def assert_quiet(run: Run) -> None:
    """A run with nothing to write sends no write and fails nothing."""
    assert run.report.status in {"ok", "no_change"}, run.report.targets["scim"].failed
    assert run.writes == [], [(s.method, s.url, s.body) for s in run.writes]
    assert run.report.writes == 0


def replaced(before: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What a read-modify-write PUT of ``before`` must carry: everything as read but ``meta``
    (and ``groups``), with ``changes`` applied (None clears; ``ext`` holds enterprise changes)."""
    body = {k: copy.deepcopy(v) for k, v in before.items() if k not in {"meta", "groups"}}
    for key, value in changes.pop("ext", {}).items():
        if value is None:
            body[ENTERPRISE].pop(key)
        else:
            body[ENTERPRISE][key] = value
    body.update(changes)
    return body


@pytest.fixture
def no_patch(scim_servers: StartServer) -> Iterator[ScimServer]:
    server = scim_servers(spc=NO_PATCH_NO_BULK)
    yield server
    server.stop()


def loaded(server: ScimServer, folder: Path, extra: str = SINGLE) -> ScimJob:
    job = ScimJob(folder, server.base_url, extra=extra)
    job.write_source(org())
    first = job.run()
    assert first.report.status == "ok", first.report.targets["scim"].failed
    assert set(methods(first)) == {"POST"}, "creates need no PATCH"
    return job


def test_without_patch_an_update_is_a_put_of_the_user_as_read_with_if_match(
    no_patch: ScimServer, tmp_path: Path
) -> None:
    job = loaded(no_patch, tmp_path)
    ids = scim_ids(no_patch)
    before = user_of(no_patch, "P2")
    assert before[ENTERPRISE]["costCenter"] == "CC-1" and before[ENTERPRISE]["manager"]["value"] == ids["P1"]

    job.write_source(moved(org()))
    run = job.run()
    assert run.report.status == "ok", run.report.targets["scim"].failed
    assert run.report.targets["scim"].counts == {"update": 1}
    (put,) = run.writes
    assert put.method == "PUT" and put.url.endswith(f"/Users/{ids['P2']}") and put.status == 200
    assert not [s for s in run.sent if s.method == "PATCH"]
    assert put.headers["If-Match"] == before["meta"]["version"], "a whole-resource write guards its base"
    expected = replaced(
        before,
        title="Lead",
        ext={"department": "Engineering", "manager": {"value": ids["P3"]}, "costCenter": None},
    )
    assert put.body == expected, "the user as read, the changes applied, meta dropped, nothing else"

    after = no_patch.user(ids["P2"])
    assert after is not None
    assert after["title"] == "Lead"
    assert after[ENTERPRISE]["department"] == "Engineering"
    assert after[ENTERPRISE]["manager"]["value"] == ids["P3"]
    assert "costCenter" not in after[ENTERPRISE], "a cleared attribute is left out of the PUT"
    for kept in ("userName", "displayName", "name", "emails", "addresses", "externalId", "active"):
        assert after[kept] == before[kept], kept
    assert after[ENTERPRISE]["employeeNumber"] == before[ENTERPRISE]["employeeNumber"]
    assert after["meta"]["version"] != before["meta"]["version"]

    rerun = job.run()
    assert_quiet(rerun)
    full = job.run(full=True)  # read back: what the PUT wrote equals what okrsync would write
    assert_quiet(full)


def test_without_patch_leavers_are_deactivated_by_put(no_patch: ScimServer, tmp_path: Path) -> None:
    job = loaded(no_patch, tmp_path)
    ids = scim_ids(no_patch)
    before = {pid: user_of(no_patch, pid) for pid in ("P2", "P4")}
    people = edit(org(), "P2", status=PersonStatus.TERMINATED)  # an update of active
    job.write_source([p for p in people if p.id != "P4"])  # a removal: deactivated, not deleted

    run = job.run(allow_deletes=True)
    assert run.report.status == "ok", run.report.targets["scim"].failed
    puts = {s.url.rsplit("/", 1)[-1]: s for s in run.writes}
    assert methods(run) == ["PUT", "PUT"] and set(puts) == {ids["P2"], ids["P4"]}
    for pid in ("P2", "P4"):
        put = puts[ids[pid]]
        assert put.status == 200
        assert put.headers["If-Match"] == before[pid]["meta"]["version"]
        assert put.body == replaced(before[pid], active=False)
        after = no_patch.user(ids[pid])
        assert after is not None and after["active"] is False
        assert after["title"] == "Staff" and after[ENTERPRISE] == before[pid][ENTERPRISE], "nothing else lost"

    rerun = job.run(allow_deletes=True)
    assert_quiet(rerun)
    full = job.run(full=True, allow_deletes=True)  # P4 reads back inactive: not written again
    assert_quiet(full)


def test_without_patch_bulk_carries_puts_with_version_and_bulk_id_managers(
    scim_servers: StartServer, tmp_path: Path
) -> None:
    server = scim_servers(spc=NO_PATCH)  # bulk announced
    try:
        job = loaded(server, tmp_path, extra="")
        ids = scim_ids(server)
        before = user_of(server, "P2")
        hire = org()[0].model_copy(
            update={"id": "P9", "user_name": "p9@example.com", "email": "p9@example.com", "manager_id": "P0"}
        )
        job.write_source([*edit(org(), "P2", title="Lead", manager_id="P9"), hire])

        run = job.run()
        assert run.report.status == "ok", run.report.targets["scim"].failed
        (bulk,) = run.writes
        assert bulk.url.endswith("/Bulk")
        post, put = bulk.body["Operations"]
        assert post["method"] == "POST" and post["data"]["externalId"] == "P9"
        assert put["method"] == "PUT" and put["path"] == f"/Users/{ids['P2']}"
        assert put["version"] == before["meta"]["version"], "If-Match of a bulk operation"
        assert put["data"] == replaced(
            before, title="Lead", ext={"manager": {"value": f"bulkId:{post['bulkId']}"}}
        ), "a manager created in the same request is referenced by its bulkId"
        assert [int(o["status"]) for o in bulk.response["Operations"]] == [201, 200]

        ids = scim_ids(server)
        after = server.user(ids["P2"])
        assert after is not None and after["title"] == "Lead"
        assert after[ENTERPRISE]["manager"]["value"] == ids["P9"]
        assert after["emails"] == before["emails"] and after["name"] == before["name"]

        rerun = job.run()
        assert_quiet(rerun)
    finally:
        server.stop()


def connector_after_load(
    server: ScimServer, tmp_path: Path
) -> tuple[ScimConnector, list[Sent], dict[str, str]]:
    """The org loaded by a job, then a recording connector (no bulk) that has read every user."""
    loaded(server, tmp_path)
    ids = scim_ids(server)
    conn = ScimConnector(ScimConfig(base_url=server.base_url, use_bulk=False), ConnectorContext("scim"))
    sent: list[Sent] = []
    conn.client.http.session.hooks["response"].append(recorder(sent))
    list(conn.read_current(ids))
    return conn, sent, ids


def test_without_patch_a_lost_race_is_re_read_and_put_again_once(
    no_patch: ScimServer, tmp_path: Path
) -> None:
    conn, sent, ids = connector_after_load(no_patch, tmp_path)  # versions as of now
    # someone else replaces the user in between (PUT: this service has no PATCH)
    other = {k: v for k, v in user_of(no_patch, "P3").items() if k != "meta"}
    response = requests.put(
        f"{no_patch.base_url}/Users/{ids['P3']}",
        json={**other, "nickName": "Racer"},
        headers={"Content-Type": "application/scim+json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    person = next(p for p in org() if p.id == "P3")
    changed = person.model_copy(update={"title": "Chief Race Officer"})
    op = Operation(OpKind.UPDATE, "P3", changed, {"title": (person.title, changed.title)}, 0)
    (result,) = conn.apply([op], ids)
    conn.close()

    assert result.ok and result.retries == 1 and result.target_id == ids["P3"], result.error
    puts = [s for s in sent if s.method == "PUT"]
    assert [s.status for s in puts] == [412, 200]
    assert "nickName" not in puts[0].body and puts[1].body["nickName"] == "Racer", "re-read before re-put"
    assert puts[1].headers["If-Match"] == response.json()["meta"]["version"]
    assert not [s for s in sent if s.method == "PATCH"]
    now = user_of(no_patch, "P3")
    assert now["title"] == "Chief Race Officer" and now["nickName"] == "Racer", "the other write survives"


def test_with_patch_support_updates_and_leavers_stay_minimal_patches(
    scim_servers: StartServer, tmp_path: Path
) -> None:
    server = scim_servers(spc=PATCH_NO_BULK)
    try:
        job = loaded(server, tmp_path)
        ids = scim_ids(server)
        before = user_of(server, "P2")
        job.write_source([p for p in moved(org()) if p.id != "P4"])

        run = job.run(allow_deletes=True)
        assert run.report.status == "ok", run.report.targets["scim"].failed
        writes = {s.url.rsplit("/", 1)[-1]: s for s in run.writes}
        assert methods(run) == ["PATCH", "PATCH"] and set(writes) == {ids["P2"], ids["P4"]}
        assert not [s for s in run.sent if s.method == "PUT"]
        assert writes[ids["P2"]].headers["If-Match"] == before["meta"]["version"]
        assert sorted(writes[ids["P2"]].body["Operations"], key=lambda o: o["path"]) == [
            {"op": "replace", "path": "title", "value": "Lead"},
            {"op": "remove", "path": f"{ENTERPRISE}:costCenter"},
            {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Engineering"},
            {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": ids["P3"]}},
        ]
        assert writes[ids["P4"]].body["Operations"] == [{"op": "replace", "path": "active", "value": False}]
        after = server.user(ids["P2"])
        assert after is not None and after[ENTERPRISE]["manager"]["value"] == ids["P3"]
        assert user_of(server, "P4")["active"] is False
    finally:
        server.stop()


def test_a_put_body_applies_removals_and_keeps_the_extension_schema_in_step() -> None:
    held = {
        "schemas": [CORE_USER, ENTERPRISE],
        "id": "u1",
        "meta": {"version": 'W/"1"'},
        "groups": [{"value": "g1"}],
        "__etag__": 'W/"1"',
        "name": {"givenName": "Ada", "familyName": "L"},
        ENTERPRISE: {"department": "Ops"},
    }
    body = res.apply_operations(
        held,
        [
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": f"{ENTERPRISE}:department"},
            {"op": "replace", "path": "title", "value": "Lead"},
        ],
    )
    assert body == {"schemas": [CORE_USER], "id": "u1", "name": {"familyName": "L"}, "title": "Lead"}
    assert held[ENTERPRISE] == {"department": "Ops"}, "the resource as read is not modified"
    again = res.apply_operations(
        body, [{"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": "m"}}]
    )
    assert again["schemas"] == [CORE_USER, ENTERPRISE] and again[ENTERPRISE] == {"manager": {"value": "m"}}


def test_without_patch_a_user_written_earlier_in_the_run_is_read_again_before_its_put(
    no_patch: ScimServer, tmp_path: Path
) -> None:
    """After a PUT the connector forgets the body it held; a second write in the same run reads it."""
    conn, sent, ids = connector_after_load(no_patch, tmp_path)
    person = next(p for p in org() if p.id == "P1")
    first = person.model_copy(update={"title": "Lead"})
    second = first.model_copy(update={"department": "Legal"})
    results = conn.apply([Operation(OpKind.UPDATE, "P1", first, {"title": ("Staff", "Lead")}, 0)], ids)
    results += conn.apply(
        [Operation(OpKind.UPDATE, "P1", second, {"department": ("Sales", "Legal")}, 1)], ids
    )
    conn.close()

    assert all(r.ok for r in results), [r.error for r in results]
    tail = [(s.method, s.url.rsplit("/", 1)[-1].split("?")[0]) for s in sent[-3:]]
    assert tail == [("PUT", ids["P1"]), ("GET", ids["P1"]), ("PUT", ids["P1"])]
    put1, read, put2 = sent[-3:]
    assert put2.headers["If-Match"] == read.response["meta"]["version"] != put1.headers["If-Match"]
    assert put2.body["title"] == "Lead" and put2.body[ENTERPRISE]["department"] == "Legal"
    now = user_of(no_patch, "P1")
    assert now["title"] == "Lead" and now[ENTERPRISE]["department"] == "Legal"
