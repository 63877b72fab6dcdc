"""Edge cases scim2-server does not produce: other services' quirks, limits and error bodies (responses)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
import responses
from pydantic import ValidationError

from okrsync.connectors.base import ConnectorContext, Operation, OpKind, PullRequest, utcnow
from okrsync.connectors.scim import ScimConfig, ScimConflict, ScimConnector
from okrsync.connectors.scim.client import ENTERPRISE
from okrsync.engine import _map_record
from okrsync.mapping import load_mapping
from okrsync.models import Person, PersonStatus

BASE = "https://idp.example.com/scim/v2"


def spc(bulk: dict[str, Any] | None = None, etag: bool = False) -> dict[str, Any]:
    return {
        "patch": {"supported": True},
        "bulk": bulk or {"supported": False},
        "filter": {"supported": True, "maxResults": 200},
        "etag": {"supported": etag},
    }


def discovery(rsps: responses.RequestsMock, config: dict[str, Any]) -> None:
    rsps.get(f"{BASE}/ServiceProviderConfig", json=config)
    rsps.get(f"{BASE}/ResourceTypes", status=404, json={"detail": "no", "status": "404"})
    rsps.get(f"{BASE}/Schemas", status=501)


def make(**options: Any) -> ScimConnector:
    return ScimConnector(ScimConfig(base_url=BASE, **options), ConnectorContext("scim"))


def user(uid: str, ext_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": uid, "externalId": ext_id, "userName": f"{ext_id}@example.com", **fields}


def list_response(users: list[dict[str, Any]]) -> dict[str, Any]:
    return {"totalResults": len(users), "startIndex": 1, "itemsPerPage": len(users), "Resources": users}


QUIRKY = [
    user("s1", "E1", active="True", displayName="Boss"),  # no enterprise extension at all
    user("s2", "E2", active="False", **{ENTERPRISE: {"manager": "s1", "department": "Ops"}}),  # bare string
    user("s3", "E3", active=True, **{ENTERPRISE: {"manager": {"value": "s2"}, "employeeNumber": 3}}),
    {"id": "s4", "userName": "nobody"},  # no externalId: cannot be identified
]


def test_source_accepts_real_services_quirks() -> None:
    with responses.RequestsMock() as rsps:
        discovery(rsps, spc())
        rsps.get(f"{BASE}/Users", json=list_response(QUIRKY))
        conn = make()
        pull = conn.pull(PullRequest(cursor=None, watermark=utcnow()))
        records = list(pull.records)
    mapping = load_mapping("scim")
    people: dict[str, Person] = {}
    quarantined = []
    for raw in records:
        person, problems = _map_record(raw, mapping)
        if person is None:
            quarantined += problems
        else:
            people[person.id] = person
    assert set(people) == {"E1", "E2", "E3"}
    assert (
        people["E2"].manager_id == "E1"
        and people["E3"].manager_id == "E2"
        and people["E1"].manager_id is None
    )
    assert people["E1"].status is PersonStatus.ACTIVE and people["E2"].status is PersonStatus.TERMINATED
    assert people["E2"].department == "Ops" and people["E3"].attributes["employee_number"] == "3"
    assert len(quarantined) == 1 and "has no externalId" in quarantined[0].reason
    assert pull.requests == 4  # three discovery documents + one page


def test_manager_as_string_and_false_strings_cause_no_write() -> None:
    with responses.RequestsMock() as rsps:
        discovery(rsps, spc())
        rsps.get(f"{BASE}/Users", json=list_response(QUIRKY[:3]))
        conn = make()
        current = {p.id: p for p in conn.read_current({})}
        assert current["E2"].manager_id == "E1" and current["E2"].status is PersonStatus.TERMINATED
        # the engine thinks the manager changed (e.g. its snapshot was lost); the service agrees already
        desired = current["E2"].model_copy(update={"manager_id": "E1"})
        ops = [
            Operation(OpKind.UPDATE, "E2", desired, {"manager_id": (None, "E1")}, 0),
            Operation(OpKind.DISABLE, "E2", current["E2"], {"status": ("active", None)}, 1),
        ]
        results = conn.apply(ops, {})
    assert [r.ok for r in results] == [True, True] and [r.target_id for r in results] == ["s2", "s2"]
    assert all(c.request.method == "GET" for c in rsps.calls), "nothing to write: no PATCH"


def test_scim_errors_become_typed_errors() -> None:
    with responses.RequestsMock() as rsps:
        discovery(rsps, spc())
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "scimType": "uniqueness",
            "detail": "userName taken",
            "status": "409",
        }
        rsps.post(f"{BASE}/Users", status=409, json=body)
        conn = make()
        with pytest.raises(ScimConflict) as info:
            conn.client.create_user({"userName": "x"})
    assert info.value.status == 409 and info.value.scim_type == "uniqueness"
    assert "userName taken" in str(info.value)


def test_a_duplicate_that_matches_no_user_is_reported_not_retried_forever() -> None:
    person = Person(id="E9", user_name="taken@example.com")
    with responses.RequestsMock() as rsps:
        discovery(rsps, spc())
        rsps.get(f"{BASE}/Users", json=list_response([]))  # lookup by externalId: nobody
        rsps.post(
            f"{BASE}/Users", status=409, json={"scimType": "uniqueness", "detail": "dup", "status": "409"}
        )
        (result,) = make().apply([Operation(OpKind.CREATE, "E9", person, {}, 0)], {})
    assert not result.ok and "409 uniqueness" in (result.error or "") and "userName?" in (result.error or "")


class TinyBulkService:
    """Answers /Bulk like a service with a smaller real limit than it announced: 413 beyond 3 operations."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []
        self.next_id = 0
        self.ids: dict[str, str] = {}

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        ops = json.loads(request.body)["Operations"]
        self.requests.append(ops)
        if len(ops) > 3:
            return 413, {}, json.dumps({"detail": "too many", "status": "413", "scimType": "tooMany"})
        out = []
        for op in ops:
            manager = op["data"].get(ENTERPRISE, {}).get("manager", {}).get("value", "")
            if manager.startswith("bulkId:"):
                assert manager[7:] in self.ids, "a bulkId reference stays within its request"
            self.next_id += 1
            self.ids[op["bulkId"]] = f"id{self.next_id}"
            out.append(
                {
                    "method": "POST",
                    "bulkId": op["bulkId"],
                    "status": "201",
                    "location": f"{BASE}/Users/id{self.next_id}",
                    "version": 'W/"1"',
                }
            )
        for op in ops:  # ids live only for the request (bulkIds are per request)
            self.ids.pop(op["bulkId"], None)
        return 200, {}, json.dumps({"Operations": out})


def chain(n: int) -> list[Operation]:
    people = [
        Person(id=f"P{i}", manager_id=f"P{i - 1}" if i else None, user_name=f"p{i}@x") for i in range(n)
    ]
    return [Operation(OpKind.CREATE, p.id, p, {}, i) for i, p in enumerate(people)]


def test_a_413_splits_the_bulk_and_references_cross_requests_by_scim_id() -> None:
    service = TinyBulkService()
    with responses.RequestsMock() as rsps:
        discovery(rsps, spc({"supported": True, "maxOperations": 100, "maxPayloadSize": 1_000_000}))
        rsps.get(f"{BASE}/Users", json=list_response([]))
        rsps.add_callback(responses.POST, f"{BASE}/Bulk", callback=service)
        conn = make()
        list(conn.read_current({}))
        results = conn.apply(chain(7), {})
    assert all(r.ok for r in results), [r.error for r in results]
    assert [len(ops) for ops in service.requests] == [7, 3, 3, 1]
    # the second request's first create references the first request's last one by its SCIM id
    second = service.requests[2][0]["data"][ENTERPRISE]["manager"]["value"]
    assert second == results[2].target_id
    assert service.requests[1][1]["data"][ENTERPRISE]["manager"]["value"] == "bulkId:p0"


def test_bulk_requests_stay_under_max_payload_size() -> None:
    service = TinyBulkService()
    with responses.RequestsMock() as rsps:
        discovery(rsps, spc({"supported": True, "maxOperations": 3, "maxPayloadSize": 900}))
        rsps.get(f"{BASE}/Users", json=list_response([]))
        rsps.add_callback(responses.POST, f"{BASE}/Bulk", callback=service)
        conn = make()
        list(conn.read_current({}))
        results = conn.apply(chain(6), {})
        sizes = [len(c.request.body) for c in rsps.calls if c.request.url.endswith("/Bulk")]
    assert all(r.ok for r in results)
    assert all(size <= 900 for size in sizes) and sum(len(ops) for ops in service.requests) == 6
    assert max(len(ops) for ops in service.requests) <= 3


def test_auth_headers_and_config_validation() -> None:
    with responses.RequestsMock() as rsps:
        discovery(rsps, spc())
        rsps.get(f"{BASE}/Users", json=list_response([]))
        conn = make(username="svc", password="pw")
        list(conn.read_current({}))
        expected = "Basic " + base64.b64encode(b"svc:pw").decode()
        assert all(c.request.headers["Authorization"] == expected for c in rsps.calls)
    assert "pw" not in repr(conn.cfg)
    with pytest.raises(ValidationError, match="either token"):
        ScimConfig(base_url=BASE, token="t", username="u", password="p")
    with pytest.raises(ValidationError, match="needs both"):
        ScimConfig(base_url=BASE, username="u")
    with pytest.raises(ValidationError, match="extra"):
        ScimConfig.model_validate({"type": "scim", "base_url": BASE, "bulk": True})


def test_managed_fields_follow_the_push_mapping() -> None:
    conn = make()
    assert conn.managed_fields[-1] == "manager_id"
    assert {"title", "department", "status", "email", "user_name"} <= set(conn.managed_fields)
    assert not {"id", "hire_date", "termination_date", "attributes"} & set(conn.managed_fields)
    assert re.fullmatch(r"[a-z_]+", "".join(conn.managed_fields))


def test_matching_by_user_name_finds_listed_users_whatever_their_id() -> None:
    listed = [user("s7", "legacy-7", displayName="Old Name", active=True)]  # externalId from another tool
    person = Person(id="HR-7", user_name="LEGACY-7@example.com", display_name="New Name")
    with responses.RequestsMock() as rsps:
        discovery(rsps, spc())
        rsps.get(f"{BASE}/Users", json=list_response(listed))
        rsps.patch(f"{BASE}/Users/s7", status=204)
        conn = make(match_attribute="userName")
        assert [p.id for p in conn.read_current({})] == ["legacy-7@example.com"]
        (result,) = conn.apply([Operation(OpKind.CREATE, "HR-7", person, {}, 0)], {})
        patch = json.loads(rsps.calls[-1].request.body)["Operations"]
    assert result.ok and result.target_id == "s7"
    paths = {o["path"] for o in patch}
    assert {"displayName", "externalId"} <= paths and "userName" not in paths  # same user name, any case
