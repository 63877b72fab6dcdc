"""Hostile vendor answers: each case ends in a precise typed error, or quarantines the bad record by name.

The people-file corpus (``test_people_corpus.py``) covers what HR exports can hold; this one covers
what the vendors' APIs can answer (the bodies are those of ``/work/shared/api-notes.md``): hostile
XML, SOAP faults, Graph/OAuth/OData/Salesforce/SCIM error shapes, and records whose values have the
wrong type. Edge answers the emulators cannot produce come from ``responses`` (the connectors'
``HttpClient`` uses requests); the rest run against the sandbox emulators. Records are mapped and
quarantined with the engine's own ``_map_record``, so a case names exactly what a run would report.
Every passing case is counted into the reliability summary (``corpus_cases``).
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec

import pytest
import responses

from okrsync.connectors.base import ConnectorContext, PullRequest, RawRecord
from okrsync.connectors.entra import EntraConfig, EntraConnector
from okrsync.connectors.salesforce import SalesforceConfig, SalesforceConnector
from okrsync.connectors.scim.client import ScimClient, ScimConflict
from okrsync.connectors.scim.config import ScimConfig
from okrsync.connectors.successfactors import SuccessFactorsConfig, SuccessFactorsConnector
from okrsync.connectors.workday import WorkdayConfig, WorkdayConnector
from okrsync.engine import _map_record
from okrsync.errors import ApiError, AuthenticationError, RetriableApiError
from okrsync.mapping import load_mapping
from okrsync.models import Person
from okrsync.report import Quarantined
from okrsync.sandbox import RunningEmulator, SandboxOrg
from tests.connectors.workday.test_soap_wire import soap_fault
from tests.reliability.summary import record
from tests.specs import SF_SAMPLE_ERROR

Start = Callable[..., RunningEmulator]
P = ParamSpec("P")
VENDOR = Path(__file__).parent / "vendor"
SOAP_URL = "https://wd.example.test/ccx/service/acme/Human_Resources/v45.0"
GRAPH = "https://graph.example.test"
SF_BASE = "https://api4.sf.example.test"
SCIM_BASE = "https://scim.example.test/scim/v2"


def case(test: Callable[P, None]) -> Callable[P, None]:
    """A corpus case: counted into the reliability summary once it has passed."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        test(*args, **kwargs)
        record("corpus_cases")

    return run


def no_sleep(_: float) -> None:
    return None


def pull_all(conn: Any) -> list[RawRecord]:
    return list(conn.pull(PullRequest(cursor=None, watermark=datetime.now(UTC), full=True)).records)


def map_all(raws: list[RawRecord], mapping: str) -> tuple[dict[str, Person], list[Quarantined]]:
    """Map like the engine: valid records become people, the others quarantine entries."""
    rules = load_mapping(mapping)
    people: dict[str, Person] = {}
    quarantined: list[Quarantined] = []
    for raw in raws:
        person, refused = _map_record(raw, rules)
        quarantined += refused
        if person is not None:
            people[person.id] = person
    return people, quarantined


# ================================================================ Workday SOAP
def workday() -> WorkdayConnector:
    cfg = WorkdayConfig(
        base_url="https://wd.example.test",
        tenant="acme",
        username="isu@acme",
        password="Corpus-Pw-9d1e",
        max_attempts=3,
    )
    conn = WorkdayConnector(cfg, ConnectorContext("workday"))
    conn.http.sleep = no_sleep
    assert conn.cfg.soap_url == SOAP_URL
    return conn


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
@responses.activate
@case
def test_workday_hostile_xml_is_refused_unparsed(name: str) -> None:
    body = (VENDOR / name).read_bytes()
    responses.post(SOAP_URL, body=body, status=200, content_type="text/xml")
    conn = workday()
    with pytest.raises(ApiError) as refused:
        pull_all(conn)
    assert type(refused.value) is ApiError and refused.value.code == "hostile_xml"
    assert "DOCTYPE or ENTITY" in str(refused.value) and refused.value.connector == "workday"
    assert "root:" not in str(refused.value) and "lol" not in str(refused.value)  # nothing was expanded
    assert len(responses.calls) == 1  # refused, not retried


@responses.activate
@case
def test_workday_validation_fault_names_the_xpath_and_is_final() -> None:
    xpath = "/wd:Get_Workers_Request[1]/wd:Response_Filter[1]/wd:Count[1]"
    body = soap_fault("Client.validationError", "Validation error occurred. Count must be 1..999", xpath)
    responses.post(SOAP_URL, body=body, status=500, content_type="text/xml")
    with pytest.raises(ApiError) as bad:
        pull_all(workday())
    err = bad.value
    assert type(err) is ApiError and err.code == "Client.validationError" and err.status == 500
    assert err.context["xpath"] == xpath and f"at {xpath}" in str(err)
    assert "Count must be 1..999" in str(err)
    assert len(responses.calls) == 1  # a validation fault is never retried


@responses.activate
@case
def test_workday_authentication_fault_is_an_authentication_error_without_the_password() -> None:
    body = soap_fault("Client.authenticationError", "invalid username or password")
    responses.post(SOAP_URL, body=body, status=500, content_type="text/xml")
    with pytest.raises(AuthenticationError) as denied:
        pull_all(workday())
    err = denied.value
    assert err.code == "Client.authenticationError" and err.status == 500
    assert "Workday refused the credentials: invalid username or password" in str(err)
    assert "Corpus-Pw-9d1e" not in str(err)
    assert len(responses.calls) == 1


@responses.activate
@case
def test_workday_processing_fault_is_retried_then_named() -> None:
    body = soap_fault("Client.processingFault", "Processing error occurred. Try again later")
    responses.post(SOAP_URL, body=body, status=500, content_type="text/xml")
    conn = workday()
    with pytest.raises(RetriableApiError) as busy:
        pull_all(conn)
    err = busy.value
    assert err.code == "Client.processingFault" and err.status == 500
    assert "Processing error occurred" in str(err)
    assert len(responses.calls) == 3 and conn.http.stats.retries == 2  # max_attempts = 3


# ================================================================ Microsoft Graph / Entra ID
class StaticAuth:
    def header(self) -> str:
        return "Bearer corpus"

    def invalidate(self) -> None:
        pass


def graph_user(oid: str, eid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": oid,
        "employeeId": eid,
        "displayName": f"User {eid}",
        "jobTitle": "Engineer",
        "accountEnabled": True,
        **extra,
    }


def entra() -> EntraConnector:
    cfg = EntraConfig(
        type="entra",
        tenant_id="t",
        client_id="c",
        client_secret="s",
        graph_url=GRAPH,
        id_attribute="employeeId",
        max_attempts=2,
    )
    conn = EntraConnector(cfg, ConnectorContext("entra"))
    conn.graph.http.auth = StaticAuth()
    conn.graph.http.sleep = no_sleep
    return conn


def graph_listing(users: list[dict[str, Any]]) -> None:
    delta = {"@odata.deltaLink": f"{GRAPH}/v1.0/users/delta?$deltatoken=abc", "value": []}
    responses.get(re.compile(re.escape(f"{GRAPH}/v1.0/users/delta") + r".*"), json=delta)
    page = {"@odata.context": f"{GRAPH}/v1.0/$metadata#users", "value": users}
    responses.get(re.compile(re.escape(f"{GRAPH}/v1.0/users?") + r".*"), json=page)


@responses.activate
@case
def test_graph_page_with_an_unexpected_property_still_syncs_everyone() -> None:
    users = [
        graph_user("o1", "1"),
        graph_user("o2", "2", manager={"id": "o1", "employeeId": "1"}, **{"extensionAttribute99": {"x": 1}}),
        graph_user("o3", "3", **{"@odata.etag": 'W/"1"', "futureProperty": ["a", "b"]}),
    ]
    graph_listing(users)
    people, quarantined = map_all(pull_all(entra()), "entra")
    assert quarantined == []
    assert sorted(people) == ["1", "2", "3"] and people["2"].manager_id == "1"


@responses.activate
@case
def test_graph_user_with_a_string_account_enabled_is_quarantined_by_name() -> None:
    users = [
        graph_user("o1", "1"),
        graph_user("o2", "2", accountEnabled="yes"),
        graph_user("o3", "3", manager={"id": "o1", "employeeId": "1"}),
    ]
    graph_listing(users)
    people, quarantined = map_all(pull_all(entra()), "entra")
    assert sorted(people) == ["1", "3"], "the valid users still sync"
    assert len(quarantined) == 1
    q = quarantined[0]
    assert (q.key, q.ref, q.field) == ("2", "entra:users/o2", "accountEnabled")
    assert "'yes'" in q.reason and "Edm.Boolean" in q.reason


@responses.activate
@case
def test_graph_authorization_denied_keeps_code_and_request_id() -> None:
    body = {
        "error": {
            "code": "Authorization_RequestDenied",
            "message": "Insufficient privileges to complete the operation.",
            "innerError": {
                "date": "2024-05-15T12:00:00",
                "request-id": "5e3a1c9b-7d4f-4a2e-9b1c-0f6d8e2a4c71",
                "client-request-id": "5e3a1c9b-7d4f-4a2e-9b1c-0f6d8e2a4c71",
            },
        }
    }
    responses.get(
        re.compile(re.escape(f"{GRAPH}/v1.0/users/delta") + r".*"),
        json=body,
        status=403,
        headers={"request-id": "5e3a1c9b-7d4f-4a2e-9b1c-0f6d8e2a4c71"},
    )
    with pytest.raises(ApiError) as denied:
        pull_all(entra())
    err = denied.value
    assert type(err) is ApiError and err.status == 403 and err.code == "Authorization_RequestDenied"
    assert err.request_id == "5e3a1c9b-7d4f-4a2e-9b1c-0f6d8e2a4c71"
    assert "Insufficient privileges" in str(err) and "request_id=5e3a1c9b" in str(err)
    assert len(responses.calls) == 1  # a 403 is final


@case
def test_aadsts_invalid_client_is_an_authentication_error(start_emulator: Start) -> None:
    run = start_emulator("entra", org=SandboxOrg(10, seed=3))
    conn = EntraConnector(
        EntraConfig(**{**run.connection(), "client_secret": "Corpus-Wrong-Secret-77"}), ConnectorContext("e")
    )
    try:
        with pytest.raises(AuthenticationError) as denied:
            pull_all(conn)
    finally:
        conn.close()
    err = denied.value
    assert err.code == "AADSTS7000215" and "invalid_client" in str(err)
    assert "Corpus-Wrong-Secret-77" not in str(err)


# ================================================================ SAP SuccessFactors
def successfactors() -> SuccessFactorsConnector:
    cfg = SuccessFactorsConfig(
        base_url=SF_BASE,
        company_id="ACME",
        auth="basic",
        username="api",
        password="Corpus-Sf-Pw",
        max_attempts=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # basic auth: fine against a mock
        conn = SuccessFactorsConnector(cfg, ConnectorContext("successfactors"))
    conn.client.sleep = no_sleep
    return conn


def sf_error(method: str, entity: str, code: str, message: str, status: int) -> None:
    """SuccessFactors' OData error body (api-notes §2) for requests to ``entity``."""
    body = {"error": {"code": code, "message": {"lang": "en-US", "value": message}}}
    url = re.compile(re.escape(f"{SF_BASE}/odata/v2/{entity}") + r".*")
    responses.add(method, url, json=body, status=status)


@responses.activate
@case
def test_successfactors_gateway_error_body_from_the_spec() -> None:
    body = json.loads(SF_SAMPLE_ERROR.read_text())
    responses.get(re.compile(re.escape(f"{SF_BASE}/odata/v2/Address2") + r".*"), json=body, status=404)
    conn = successfactors()
    with pytest.raises(ApiError) as missing:
        conn.reader.json("GET", conn.reader.url("Address2"), operation="read Address2")
    err = missing.value
    assert type(err) is ApiError and err.status == 404
    assert err.code == "005056A509B11EE1B9A8FEC11C21D78E"
    assert "Resource not found for the segment 'Address2'." in str(err)


@responses.activate
@case
def test_successfactors_property_not_found_names_the_kba_code() -> None:
    sf_error("GET", "User", "COE_PROPERTY_NOT_FOUND", "[COE0021]Invalid property names: User/nickName.", 400)
    conn = successfactors()
    with pytest.raises(ApiError) as bad:
        conn.reader.json("GET", conn.reader.url("User", {"$select": "nickName"}), operation="list users")
    err = bad.value
    assert err.status == 400 and err.code == "COE0021"
    assert "Invalid property names: User/nickName. (COE_PROPERTY_NOT_FOUND)" in str(err)
    assert len(responses.calls) == 1


@responses.activate
@case
def test_successfactors_entity_not_found_is_final_and_keeps_the_code() -> None:
    sf_error(
        "GET", "User('nobody')", "COE_ENTITY_NOT_FOUND", "[COE0018]Entity User('nobody') is not found.", 400
    )
    conn = successfactors()
    with pytest.raises(ApiError) as missing:
        conn.reader.get("User('nobody')", {"$select": "userId"}, "read user nobody")
    err = missing.value
    assert type(err) is ApiError and err.status == 400 and err.code == "COE0018"
    assert "Entity User('nobody') is not found. (COE_ENTITY_NOT_FOUND)" in str(err)
    assert len(responses.calls) == 1  # a 400 is final


@responses.activate
@case
def test_successfactors_general_server_failure_is_retried_then_named() -> None:
    sf_error(
        "GET",
        "User",
        "COE_GENERAL_SERVER_FAILURE",
        "[COE0001]Internal server error, please contact SAP.",
        500,
    )
    conn = successfactors()
    with pytest.raises(RetriableApiError) as failed:
        list(conn.reader.pages("User", {"$select": "userId"}, "list users"))
    err = failed.value
    assert err.status == 500 and err.code == "COE0001" and err.operation == "list users"
    assert "Internal server error" in str(err)
    assert len(responses.calls) == 2  # max_attempts = 2: retried once, then reported


@responses.activate
@case
def test_successfactors_maintenance_503_html_page_is_retried_then_a_clear_error() -> None:
    page = "<html><head><title>SAP SuccessFactors</title></head><body>Scheduled maintenance</body></html>"
    responses.get(
        re.compile(re.escape(f"{SF_BASE}/odata/v2/User") + r".*"),
        body=page,
        status=503,
        content_type="text/html",
        headers={"Retry-After": "1"},
    )
    conn = successfactors()
    waits: list[float] = []
    conn.client.sleep = waits.append
    with pytest.raises(RetriableApiError) as down:
        list(conn.reader.pages("User", {"$select": "userId"}, "list users"))
    err = down.value
    assert err.status == 503 and err.operation == "list users"
    assert "Service Unavailable; retry budget exhausted after 2 attempts" in str(err)
    assert "<html" not in str(err).lower()  # no markup dumped into logs and reports
    assert waits == [1.0] and len(responses.calls) == 2  # the Retry-After was honoured


@responses.activate
@case
def test_successfactors_goal_create_400_is_final_and_names_the_field() -> None:
    sf_error(
        "POST", "Goal_1", "COE_GENERAL_BAD_REQUEST", "[COE0019]Goal_1.name: value exceeds 500 characters", 400
    )
    conn = successfactors()
    with pytest.raises(ApiError) as refused:
        conn.reader.json(
            "POST",
            conn.reader.url("Goal_1"),
            json={"userId": "u1", "type": "user", "name": "x" * 501},
            operation="create Goal_1",
            idempotent=False,
        )
    err = refused.value
    assert type(err) is ApiError and err.status == 400 and err.code == "COE0019"
    assert err.operation == "create Goal_1" and "Goal_1.name: value exceeds 500 characters" in str(err)
    assert len(responses.calls) == 1  # a create is never re-sent on a 400


@case
def test_successfactors_bad_date_value_quarantines_that_user_by_field() -> None:
    def user(uid: str, hired: str) -> RawRecord:
        data = {
            "userId": uid,
            "firstName": "A",
            "lastName": uid,
            "hireDate": hired,
            "manager": None,
            "hr": None,
            "job": None,
            "employmentStatus": "active",
            "terminationDate": None,
            "externalIds": {},
        }
        return RawRecord(key=uid, data=data, ref=f"User('{uid}')")

    raws = [user("u1", "/Date(1587072082000)/"), user("u2", "/Date(15870720x2000+0000)/"), user("u3", "")]
    people, quarantined = map_all(raws, "successfactors")
    assert sorted(people) == ["u1", "u3"] and str(people["u1"].hire_date) == "2020-04-16"
    assert [(q.key, q.ref, q.field) for q in quarantined] == [("u2", "User('u2')", "hire_date")]
    assert "/Date(15870720x2000+0000)/" in quarantined[0].reason


# ================================================================ Salesforce (emulator)
def salesforce(run: RunningEmulator, **overrides: Any) -> SalesforceConnector:
    conn = run.connection()
    keys = ("username", "password", "security_token", "ca_bundle", "login_url")
    cfg = SalesforceConfig(
        **{k: conn[k] for k in keys}, type="salesforce", auth="password", max_retry_seconds=30.0, **overrides
    )
    return SalesforceConnector(cfg, ConnectorContext("salesforce"))


@case
def test_salesforce_invalid_field_is_an_api_error_with_the_vendor_code(start_emulator: Start) -> None:
    run = start_emulator("salesforce", org=SandboxOrg(10, seed=4))
    conn = salesforce(run)
    with pytest.raises(ApiError) as bad:
        conn.client.query("SELECT NoSuchField__c FROM User")
    conn.close()
    err = bad.value
    assert type(err) is ApiError and err.code == "INVALID_FIELD" and err.status == 400
    assert "NoSuchField__c" in str(err)


@case
def test_salesforce_invalid_session_after_a_fresh_login_is_an_authentication_error(
    start_emulator: Start,
) -> None:
    run = start_emulator("salesforce", org=SandboxOrg(10, seed=4), faults="token_ttl=0.000001")
    conn = salesforce(run)
    with pytest.raises(AuthenticationError) as expired:
        conn.client.query("SELECT Id FROM User")
    conn.close()
    err = expired.value
    assert err.code == "INVALID_SESSION_ID" and err.status == 401
    assert "Session expired or invalid" in str(err)
    assert conn.client.auth.logins == 2  # one new login, then a clear stop (no loop)


@case
def test_salesforce_total_requests_limit_is_a_clear_stop(start_emulator: Start) -> None:
    run = start_emulator("salesforce", org=SandboxOrg(10, seed=4), daily_limit=2)
    spent = salesforce(run, api_reserve="0")
    with pytest.raises(ApiError):
        for _ in range(5):
            spent.client.query("SELECT COUNT() FROM User")
    spent.close()
    fresh = salesforce(run, api_reserve="0")  # has not seen Sforce-Limit-Info: meets the 403 itself
    with pytest.raises(ApiError) as stop:
        fresh.client.query("SELECT COUNT() FROM User")
    fresh.close()
    err = stop.value
    assert type(err) is ApiError and err.code == "REQUEST_LIMIT_EXCEEDED" and err.status == 403
    assert "daily API request limit is exhausted" in str(err)
    assert fresh.client.http.stats.retries == 0  # TotalRequests is not throttling: never retried


# ================================================================ SCIM
@responses.activate
@case
def test_scim_conflict_with_a_string_status_is_a_typed_uniqueness_error() -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "scimType": "uniqueness",
        "detail": "userName 'ada@example.com' is already taken",
        "status": "409",
    }
    for doc in ("ServiceProviderConfig", "ResourceTypes", "Schemas"):  # a bare service: no discovery
        responses.get(f"{SCIM_BASE}/{doc}", status=404)
    responses.post(f"{SCIM_BASE}/Users", json=body, status=409, content_type="application/scim+json")
    client = ScimClient(ScimConfig(type="scim", base_url=SCIM_BASE, max_attempts=2))
    with pytest.raises(ScimConflict) as conflict:
        client.create_user({"userName": "ada@example.com", "externalId": "1001"})
    client.close()
    err = conflict.value
    assert err.status == 409 and err.scim_type == "uniqueness" and err.code == "uniqueness"
    assert "userName 'ada@example.com' is already taken" in str(err)
    assert [c.request.method for c in responses.calls].count("POST") == 1  # a conflict is final
