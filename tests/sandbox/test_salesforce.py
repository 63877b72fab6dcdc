"""Fidelity of the Salesforce emulator, proven with an independent client: simple-salesforce, unpatched.

If simple-salesforce disagrees with the emulator, the emulator is wrong. Expected values come
from the sandbox org (or straight from the emulator's rows for generated Opportunities), never
from the emulator's own SOQL engine.
"""

# SOQL strings here are built from test-controlled Ids, which is what S608 cannot know.
# ruff: noqa: S608
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import certifi
import pytest
import requests
from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.login import SalesforceLogin

from okrsync.sandbox import RunningEmulator, SandboxOrg, create_emulator, serve
from okrsync.sandbox.salesforce import SalesforceEmulator
from okrsync.sandbox.salesforce.query import execute
from okrsync.sandbox.salesforce.soql import SoqlError

AS_OF = date(2024, 5, 15)


class Clock:
    """A settable clock for the org, so watermarks are exact."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 15, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def session_for(conn: dict[str, Any]) -> requests.Session:
    s = requests.Session()
    s.verify = conn["ca_bundle"]
    s.trust_env = False  # else REQUESTS_CA_BUNDLE silently replaces verify (api-notes §7)
    return s


def soap_client(conn: dict[str, Any]) -> Salesforce:
    return Salesforce(
        username=conn["username"],
        password=conn["password"],
        security_token=conn["security_token"],
        domain=conn["domain"],
        session=session_for(conn),
    )


def emulator_of(running: RunningEmulator) -> SalesforceEmulator:
    em = running.emulator
    assert isinstance(em, SalesforceEmulator)
    return em


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[SandboxOrg, RunningEmulator, Clock]]:
    clock = Clock()
    org = SandboxOrg(2500, seed=5, as_of=AS_OF, clock=clock)
    with serve(create_emulator("salesforce", org, opportunities_per_rep=2)) as running:
        yield org, running, clock


@pytest.fixture(scope="module")
def big_sf(big: tuple[SandboxOrg, RunningEmulator, Clock]) -> Salesforce:
    return soap_client(big[1].connection())


@pytest.fixture
def small(start_emulator: Callable[..., RunningEmulator]) -> tuple[SandboxOrg, RunningEmulator, Salesforce]:
    org = SandboxOrg(60, seed=2, as_of=AS_OF, clock=Clock())
    running = start_emulator("salesforce", org=org)
    return org, running, soap_client(running.connection())


def sobj(sf: Salesforce, name: str) -> SFType:
    """``sf.User`` with a type mypy can see (simple-salesforce builds it in ``__getattr__``)."""
    handler = getattr(sf, name)
    assert isinstance(handler, SFType)
    return handler


def rest(sf: Salesforce, path: str, **kwargs: Any) -> Any:
    return sf.restful(path, **kwargs)


def code_of(exc: SalesforceError) -> str:
    """The errorCode of the first entry of a Salesforce error array."""
    content: Any = exc.content
    return str(content[0]["errorCode"])


def quote(ids: list[str]) -> str:
    return ",".join(f"'{i}'" for i in ids)


# ---------------------------------------------------------------- logins
def test_soap_login_reaches_the_emulator_through_domain(
    big: tuple[SandboxOrg, RunningEmulator, Clock], big_sf: Salesforce
) -> None:
    _, running, _ = big
    assert big_sf.sf_instance == running.url.removeprefix("https://")
    assert emulator_of(running).requests[
        f"POST /{big_sf.domain.split('/', 1)[1]}.salesforce.com/services/Soap/u/59.0"
    ]


def test_soap_login_with_a_wrong_password_is_invalid_login(
    small: tuple[SandboxOrg, RunningEmulator, Salesforce],
) -> None:
    conn = small[1].connection()
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        Salesforce(
            username=conn["username"],
            password="nope",
            security_token=conn["security_token"],
            domain=conn["domain"],
            session=session_for(conn),
        )
    assert err.value.code == "INVALID_LOGIN"


def test_soap_login_with_xml_special_characters_in_the_password(
    start_emulator: Callable[..., RunningEmulator],
) -> None:
    running = start_emulator(
        "salesforce", org=SandboxOrg(10, seed=2, as_of=AS_OF), password="p&ss<w>rd'\"]]>"
    )
    sf = soap_client(running.connection())  # simple-salesforce escapes it into the envelope
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 10


def test_oauth_password_grant_wants_password_plus_token(
    small: tuple[SandboxOrg, RunningEmulator, Salesforce],
) -> None:
    conn = small[1].connection()
    sf = Salesforce(
        username=conn["username"],
        password=conn["password"] + conn["security_token"],
        consumer_key=conn["consumer_key"],
        consumer_secret=conn["consumer_secret"],
        domain=conn["domain"],
        session=session_for(conn),
    )
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 60
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        Salesforce(
            username=conn["username"],
            password=conn["password"],
            consumer_key=conn["consumer_key"],
            consumer_secret=conn["consumer_secret"],
            domain=conn["domain"],
            session=session_for(conn),
        )
    assert err.value.code == "invalid_grant"


def test_soap_login_refuses_entity_expansion(small: tuple[SandboxOrg, RunningEmulator, Salesforce]) -> None:
    conn = small[1].connection()
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>&b;</env:Body>'
        "</env:Envelope>"
    )
    resp = session_for(conn).post(
        f"{conn['login_url']}/services/Soap/u/59.0", data=bomb, headers={"content-type": "text/xml"}
    )
    assert resp.status_code == 500 and "soapenv:Client" in resp.text


def test_scratch_url_reaches_the_soap_login_directly(
    small: tuple[SandboxOrg, RunningEmulator, Salesforce],
) -> None:
    conn = small[1].connection()
    session_id, instance = SalesforceLogin(
        username=conn["username"],
        password=conn["password"],
        security_token=conn["security_token"],
        scratch_url=conn["login_url"],
        session=session_for(conn),
    )
    sf = Salesforce(session_id=session_id, instance=instance, session=session_for(conn))
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 60


def test_jwt_bearer_login_with_the_generated_key(
    small: tuple[SandboxOrg, RunningEmulator, Salesforce],
) -> None:
    conn = small[1].connection()
    sf = Salesforce(
        username=conn["username"],
        consumer_key=conn["consumer_key"],
        privatekey_file=conn["private_key_path"],
        domain=conn["domain"],
        session=session_for(conn),
    )
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 60
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        Salesforce(
            username=conn["username"],
            consumer_key="someone-else",
            privatekey_file=conn["private_key_path"],
            domain=conn["domain"],
            session=session_for(conn),
        )
    assert err.value.code == "invalid_client_id"
    with pytest.raises(SalesforceAuthenticationFailed) as err, pytest.warns(UserWarning, match="authorize"):
        Salesforce(
            username="stranger@example.com",
            consumer_key=conn["consumer_key"],
            privatekey_file=conn["private_key_path"],
            domain=conn["domain"],
            session=session_for(conn),
        )
    assert err.value.code == "invalid_grant"


def test_client_credentials_need_my_domain(small: tuple[SandboxOrg, RunningEmulator, Salesforce]) -> None:
    conn = small[1].connection()
    sf = Salesforce(
        consumer_key=conn["consumer_key"],
        consumer_secret=conn["consumer_secret"],
        domain=conn["domain"],
        session=session_for(conn),
    )
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 60
    s = session_for(conn)
    resp = s.post(
        f"{conn['login_url']}/login.salesforce.com/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(conn["consumer_key"], conn["consumer_secret"]),
    )
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_expired_sessions_are_invalid_session_id_and_soap_clients_log_in_again(
    start_emulator: Callable[..., RunningEmulator],
) -> None:
    running = start_emulator("salesforce", org=SandboxOrg(30, seed=4, as_of=AS_OF), faults="token_ttl=0.3")
    conn = running.connection()
    sf = soap_client(conn)
    direct = Salesforce(
        session_id=sf.session_id, instance_url=conn["instance_url"], session=session_for(conn)
    )
    time.sleep(0.5)
    with pytest.raises(SalesforceExpiredSession) as err:
        direct.query("SELECT Id FROM User")
    assert code_of(err.value) == "INVALID_SESSION_ID"
    assert (
        sf.query("SELECT COUNT() FROM User")["totalSize"] == 30
    )  # simple-salesforce re-logged in on the 401
    logins = [k for k in emulator_of(running).requests if "/services/Soap/u/" in k]
    assert sum(emulator_of(running).requests[k] for k in logins) == 2


def test_ca_bundle_env_var_wins_over_session_verify_unless_trust_env_is_off(
    small: tuple[SandboxOrg, RunningEmulator, Salesforce], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = small[1].connection()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    naive = requests.Session()
    naive.verify = conn["ca_bundle"]
    with pytest.raises(requests.exceptions.SSLError):
        naive.get(f"{conn['instance_url']}/services/data/")
    assert session_for(conn).get(f"{conn['instance_url']}/services/data/").status_code == 200


# ---------------------------------------------------------------- queries
def test_query_all_returns_every_user_across_pages_with_the_orgs_managers(
    big: tuple[SandboxOrg, RunningEmulator, Clock], big_sf: Salesforce
) -> None:
    org, running, _ = big
    em = emulator_of(running)
    before = em.requests.copy()
    result = big_sf.query_all(
        "SELECT Id, ManagerId, EmployeeNumber, IsActive, Email FROM User",
        headers={"Sforce-Query-Options": "batchSize=500"},
    )
    pages = sum((em.requests - before).values())
    assert pages == 5  # 2500 users / 500 a page: 1 query + 4 nextRecordsUrl
    records = {r["Id"]: r for r in result["records"]}
    assert len(result["records"]) == len(records) == len(org) == 2500
    for w in org:
        rec = records[org.salesforce_user_id(w.index)]
        assert rec["EmployeeNumber"] == w.employee_id
        assert rec["ManagerId"] == (None if w.manager is None else org.salesforce_user_id(w.manager))
        assert rec["IsActive"] is (w.status == "active")
        assert rec["Email"] == w.email
        assert list(rec) == ["attributes", "Id", "ManagerId", "EmployeeNumber", "IsActive", "Email"]


def test_first_page_and_next_records_url_shape(big_sf: Salesforce) -> None:
    page = big_sf.query("SELECT Id FROM User")
    assert page["totalSize"] == 2500 and page["done"] is False and len(page["records"]) == 2000
    assert re.fullmatch(r"/services/data/v59\.0/query/01g[A-Za-z0-9]{15}-2000", page["nextRecordsUrl"])
    rest = big_sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert rest["done"] is True and len(rest["records"]) == 500 and "nextRecordsUrl" not in rest
    assert big_sf.query("SELECT Id FROM User", include_deleted=True)["nextRecordsUrl"].startswith(
        "/services/data/v59.0/queryAll/"
    )


def test_query_all_iter_is_lazy_and_complete(
    big: tuple[SandboxOrg, RunningEmulator, Clock], big_sf: Salesforce
) -> None:
    org = big[0]
    it = big_sf.query_all_iter(
        "SELECT Id, Manager.Email FROM User WHERE IsActive = true ORDER BY EmployeeNumber"
    )
    first = next(it)
    assert first["Id"] == org.salesforce_user_id(0) and first["Manager"] is None
    rest = list(it)
    active = [w for w in org if w.status == "active"]
    assert len(rest) + 1 == len(active)
    by_id = {r["Id"]: r for r in rest}
    for w in active[1:50]:
        manager = org.manager_of(w)
        assert manager is not None
        assert by_id[org.salesforce_user_id(w.index)]["Manager"]["Email"] == manager.email


def test_last_modified_watermark_returns_exactly_the_edited_users(
    big: tuple[SandboxOrg, RunningEmulator, Clock], big_sf: Salesforce
) -> None:
    org, _, clock = big
    watermark = clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    soql = f"SELECT Id, Title, ManagerId, IsActive FROM User WHERE LastModifiedDate > {watermark}"
    assert big_sf.query_all(soql)["records"] == []
    version = org.version
    clock.now += timedelta(minutes=5)
    org.random_edits(12, seed=3)
    edited = {org.salesforce_user_id(w.index): w for w in org.changed_since(version)}
    got = {r["Id"]: r for r in big_sf.query_all(soql)["records"]}
    assert set(got) == set(edited) and len(got) == 12
    for uid, w in edited.items():
        assert w.manager is not None
        assert got[uid]["Title"] == w.title
        assert got[uid]["ManagerId"] == org.salesforce_user_id(w.manager)
        assert got[uid]["IsActive"] is (w.status == "active")
    later = (clock.now + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert big_sf.query_all(f"SELECT Id FROM User WHERE LastModifiedDate > {later}")["records"] == []


def test_closed_won_sum_this_quarter_for_owners_equals_a_direct_computation(
    big: tuple[SandboxOrg, RunningEmulator, Clock], big_sf: Salesforce
) -> None:
    em = emulator_of(big[1])
    owners = em.sales_rep_ids()[:150]
    soql = (
        "SELECT SUM(Amount) total, COUNT(Id) n FROM Opportunity "
        f"WHERE IsWon = true AND CloseDate = THIS_QUARTER AND OwnerId IN ({quote(owners)})"
    )
    [rec] = big_sf.query(soql)["records"]
    # independent arithmetic: Q2 2024 is April..June
    expected = [
        o
        for o in em.opportunities
        if o["StageName"] == "Closed Won"
        and date(2024, 4, 1) <= o["CloseDate"] <= date(2024, 6, 30)
        and o["OwnerId"] in set(owners)
    ]
    assert rec["attributes"] == {"type": "AggregateResult"}
    assert rec["total"] == sum(o["Amount"] for o in expected) == em.won_amount(owners) > 0
    assert rec["n"] == len(expected)
    last = big_sf.query(
        f"SELECT SUM(Amount) FROM Opportunity WHERE IsWon = true AND CloseDate = LAST_QUARTER "
        f"AND OwnerId IN ({quote(owners)})"
    )["records"][0]
    assert last["expr0"] == em.won_amount(owners, quarter=-1)


def test_group_by_owner_matches_per_owner_sums(
    big: tuple[SandboxOrg, RunningEmulator, Clock], big_sf: Salesforce
) -> None:
    em = emulator_of(big[1])
    owners = em.sales_rep_ids()[:40]
    got = big_sf.query_all(
        f"SELECT OwnerId, SUM(Amount) won FROM Opportunity WHERE StageName = 'Closed Won' AND "
        f"CloseDate >= LAST_QUARTER AND OwnerId IN ({quote(owners)}) GROUP BY OwnerId"
    )
    sums = {r["OwnerId"]: r["won"] for r in got["records"]}
    for owner in owners:
        expected = em.won_amount([owner]) + em.won_amount([owner], quarter=-1)
        assert sums.get(owner, 0.0) == expected
    empty = big_sf.query("SELECT SUM(Amount) total FROM Opportunity WHERE Amount < 0")["records"]
    assert empty == [{"attributes": {"type": "AggregateResult"}, "total": None}]


def test_soql_errors_become_simple_salesforce_exceptions(big_sf: Salesforce) -> None:
    cases = {
        "SELECT Id FROM User WHERE": "MALFORMED_QUERY",
        "SELECT Nope FROM User": "INVALID_FIELD",
        "SELECT Id FROM User WHERE LastModifiedDate > '2024-05-01T00:00:00Z'": "INVALID_FIELD",
        "SELECT Id FROM User WHERE LastModifiedDate > 2024-05-01": "INVALID_FIELD",
        "SELECT Id FROM User WHERE IsActive = true AND Title = 'x' OR Title = 'y'": "MALFORMED_QUERY",
        "SELECT Id FROM User WHERE Id = 'not-an-id'": "INVALID_QUERY_FILTER_OPERATOR",
        "SELECT Id FROM Nothing": "INVALID_TYPE",
        "SELECT Title, COUNT(Id) FROM User": "MALFORMED_QUERY",
        "SELECT Id FROM User WHERE Manager.Nope = 'x'": "INVALID_FIELD",
    }
    for soql, code in cases.items():
        with pytest.raises(SalesforceMalformedRequest) as err:
            big_sf.query(soql)
        assert code_of(err.value) == code, soql


def test_a_too_long_uri_is_414_and_chunked_in_lists_pass(
    big: tuple[SandboxOrg, RunningEmulator, Clock], big_sf: Salesforce
) -> None:
    org = big[0]
    ids = [org.salesforce_user_id(i) for i in range(900)]
    with pytest.raises(SalesforceGeneralError) as err:
        big_sf.query(f"SELECT Id FROM User WHERE Id IN ({quote(ids)})")
    assert err.value.status == 414
    got = [
        r
        for i in range(0, 900, 300)
        for r in big_sf.query_all(f"SELECT Id FROM User WHERE Id IN ({quote(ids[i : i + 300])})")["records"]
    ]
    assert [r["Id"] for r in got] == ids


# ---------------------------------------------------------------- SOQL evaluator, no HTTP
def test_soql_subset_semantics(big: tuple[SandboxOrg, RunningEmulator, Clock]) -> None:
    org, running, _ = big
    store = emulator_of(running).store

    def ids(soql: str) -> list[str]:
        return [r["Id"] for r in execute(soql, store, today=AS_OF, version="59.0").records]

    def count(soql: str) -> int:
        return execute(soql, store, today=AS_OF, version="59.0").total_size

    ceo = org.salesforce_user_id(0)
    assert ids(f"SELECT Id FROM User WHERE Id = '{ceo[:15]}'") == [ceo]  # 15-char Ids match
    reports = [w for w in org if w.manager == 0]
    assert count(f"SELECT COUNT() FROM User WHERE ManagerId = '{ceo}'") == len(reports)
    assert count("SELECT COUNT() FROM User WHERE ManagerId = null") == sum(w.manager is None for w in org)
    assert count("SELECT COUNT() FROM User WHERE NOT (ManagerId != null)") == 1
    first = org.workers[1]
    like = first.email[:4].upper() + "%"  # LIKE and = are case-insensitive
    assert count(f"SELECT COUNT() FROM User WHERE Email LIKE '{like}'") == sum(
        w.email.lower().startswith(first.email[:4].lower()) for w in org
    )
    depts = ("Sales", "IT")
    assert count("SELECT COUNT() FROM User WHERE Department NOT IN ('sales', 'it')") == sum(
        w.department not in depts for w in org
    )
    assert count(
        "SELECT COUNT() FROM User WHERE (Department = 'Sales' OR Department = 'IT') AND IsActive = false"
    ) == sum(w.department in depts and w.status != "active" for w in org)
    assert count("SELECT COUNT() FROM User WHERE Manager.Department = 'Executive'") == len(reports)
    assert count("SELECT COUNT() FROM User WHERE Title = 'O\\'Brien\\\\'") == 0  # escapes parse
    ordered = ids("SELECT Id FROM User ORDER BY EmployeeNumber DESC LIMIT 3 OFFSET 1")
    by_number = sorted(org, key=lambda w: w.employee_id, reverse=True)
    assert ordered == [org.salesforce_user_id(w.index) for w in by_number[1:4]]
    nulls = ids("SELECT Id FROM User ORDER BY ManagerId NULLS LAST, EmployeeNumber")
    assert nulls[-1] == ceo and len(nulls) == len(org)
    opps = emulator_of(running).opportunities
    n_90 = sum(AS_OF - timedelta(days=90) <= o["CloseDate"] <= AS_OF for o in opps)
    assert count("SELECT COUNT() FROM Opportunity WHERE CloseDate = LAST_90_DAYS") == n_90
    assert count("SELECT COUNT() FROM Opportunity WHERE CloseDate = LAST_N_DAYS:90") == n_90
    assert count("SELECT COUNT() FROM Opportunity WHERE CloseDate > THIS_QUARTER") == 0
    assert count("SELECT COUNT() FROM Opportunity WHERE CloseDate < LAST_QUARTER") == 0
    assert count("SELECT COUNT() FROM Opportunity WHERE CloseDate = THIS_YEAR") == len(opps)  # Jan..Jun 2024
    assert count("SELECT COUNT() FROM Opportunity WHERE Owner.Department = 'Sales'") == len(opps)
    with pytest.raises(SoqlError) as err:
        execute(
            "SELECT Id FROM User WHERE Title = '" + "x" * 100_000 + "'", store, today=AS_OF, version="59.0"
        )
    assert err.value.code == "MALFORMED_QUERY" and "100,000" in err.value.message


# ---------------------------------------------------------------- writes
def test_update_manager_and_refuse_hierarchy_loops(
    small: tuple[SandboxOrg, RunningEmulator, Salesforce],
) -> None:
    org, running, sf = small
    em = emulator_of(running)
    worker = next(w for w in org if w.manager not in (None, 0) and w.status == "active")
    uid = org.salesforce_user_id(worker.index)
    ceo = org.salesforce_user_id(0)
    org.clock.now += timedelta(hours=1)  # type: ignore[attr-defined]
    assert sobj(sf, "User").update(uid, {"ManagerId": ceo, "Division": "EMEA"}) == 204
    got = sobj(sf, "User").get(uid)
    assert got["ManagerId"] == ceo and got["Division"] == "EMEA"
    assert got["LastModifiedDate"] == "2024-05-15T13:00:00.000+0000"
    assert org.workers[worker.index].manager != 0  # API writes never leak into the shared org
    org.rename(worker.employee_id, title="Principal")  # an unrelated org edit keeps the API's manager
    assert sobj(sf, "User").get(uid)["ManagerId"] == ceo and sobj(sf, "User").get(uid)["Title"] == "Principal"

    with pytest.raises(SalesforceMalformedRequest) as err:
        sobj(sf, "User").update(ceo, {"ManagerId": uid})  # uid reports to the CEO now
    assert code_of(err.value) == "FIELD_INTEGRITY_EXCEPTION"
    with pytest.raises(SalesforceMalformedRequest) as err:
        sobj(sf, "User").update(uid, {"ManagerId": uid})
    assert code_of(err.value) == "FIELD_INTEGRITY_EXCEPTION"
    for body, code in (
        ({"Colour": "red"}, "INVALID_FIELD"),
        ({"Name": "x"}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ({"ManagerId": "005000000000000"}, "INVALID_CROSS_REFERENCE_KEY"),
        ({"ManagerId": "bogus"}, "MALFORMED_ID"),
        ({"Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS"),
        ({"Title": "x" * 81}, "STRING_TOO_LONG"),
        ({"IsActive": "yes"}, "JSON_PARSER_ERROR"),
    ):
        with pytest.raises(SalesforceMalformedRequest) as err:
            sobj(sf, "User").update(uid, body)
        assert code_of(err.value) == code, body
    with pytest.raises(SalesforceResourceNotFound):
        sobj(sf, "User").update(org.salesforce_user_id(999), {"Title": "x"})
    assert em.user(uid)["Title"] == "Principal"  # type: ignore[index]


def test_upsert_by_employee_number(small: tuple[SandboxOrg, RunningEmulator, Salesforce]) -> None:
    org, running, sf = small
    w = org.workers[5]
    assert sobj(sf, "User").upsert(f"EmployeeNumber/{w.employee_id}", {"Title": "Head of Things"}) == 200
    assert sobj(sf, "User").get_by_custom_id("EmployeeNumber", w.employee_id)["Title"] == "Head of Things"
    new = {
        "LastName": "Newton",
        "FirstName": "Ada",
        "Email": "ada.newton@example.com",
        "Username": "ada.newton@example.com.sandbox",
        "Alias": "anewton",
        "ProfileId": emulator_of(running).store.standard_profile_id,
        "TimeZoneSidKey": "GMT",
        "LocaleSidKey": "en_US",
        "EmailEncodingKey": "UTF-8",
        "LanguageLocaleKey": "en_US",
        "ManagerId": org.salesforce_user_id(0),
    }
    resp = sobj(sf, "User").upsert("EmployeeNumber/900001", new, raw_response=True)
    assert resp.status_code == 201 and resp.json()["created"] is True
    created = sobj(sf, "User").get(resp.json()["id"])
    assert (
        created["Name"] == "Ada Newton"
        and created["EmployeeNumber"] == "900001"
        and created["IsActive"] is True
    )
    with pytest.raises(SalesforceMalformedRequest) as err:
        sobj(sf, "User").upsert("EmployeeNumber/900002", {"LastName": "Solo"})
    assert code_of(err.value) == "REQUIRED_FIELD_MISSING"
    sobj(sf, "User").update(
        created["Id"], {"EmployeeNumber": w.employee_id}
    )  # EmployeeNumber is not unique in Salesforce
    with pytest.raises(SalesforceMoreThanOneRecord):
        sobj(sf, "User").upsert(f"EmployeeNumber/{w.employee_id}", {"Title": "Ambiguous"})
    with pytest.raises(SalesforceResourceNotFound):
        sobj(sf, "User").upsert("Title/Boss", {"Department": "x"})
    count = sf.query(f"SELECT COUNT() FROM User WHERE EmployeeNumber = '{w.employee_id}'")
    assert count["totalSize"] == 2


def test_collections_upsert_update_get_and_all_or_none(
    small: tuple[SandboxOrg, RunningEmulator, Salesforce],
) -> None:
    org, _, sf = small
    boss = org.salesforce_user_id(1)
    workers = [w for w in org if w.manager not in (None, 1) and w.index > 1][:3]
    records = [
        {"attributes": {"type": "User"}, "EmployeeNumber": w.employee_id, "ManagerId": boss} for w in workers
    ]
    results = rest(
        sf,
        "composite/sobjects/User/EmployeeNumber",
        method="PATCH",
        json={"allOrNone": False, "records": [*records, {**records[0], "ManagerId": "005bogus"}]},
    )
    assert [r["success"] for r in results] == [True, True, True, False]
    assert results[0] == {
        "id": org.salesforce_user_id(workers[0].index),
        "success": True,
        "errors": [],
        "created": False,
    }
    assert results[3]["errors"][0]["statusCode"] == "MALFORMED_ID"
    got = rest(
        sf,
        "composite/sobjects/User",
        params={"ids": ",".join(r["id"] for r in results[:3]) + ",005000000000000", "fields": "Id,ManagerId"},
    )
    assert [g["ManagerId"] for g in got[:3]] == [boss] * 3 and got[3] is None

    ceo = org.salesforce_user_id(0)
    update = [{"attributes": {"type": "User"}, "id": r["id"], "ManagerId": ceo} for r in results[:3]]
    loop = {"attributes": {"type": "User"}, "id": ceo, "ManagerId": results[0]["id"]}
    rolled = rest(
        sf, "composite/sobjects", method="PATCH", json={"allOrNone": True, "records": [*update, loop]}
    )
    assert [r["errors"][0]["statusCode"] for r in rolled] == ["ALL_OR_NONE_OPERATION_ROLLED_BACK"] * 3 + [
        "FIELD_INTEGRITY_EXCEPTION"
    ]
    assert all(sobj(sf, "User").get(r["id"])["ManagerId"] == boss for r in results[:3])  # nothing applied
    ok = rest(sf, "composite/sobjects", method="PATCH", json={"allOrNone": True, "records": update})
    assert all(r["success"] for r in ok)
    assert all(sobj(sf, "User").get(r["id"])["ManagerId"] == ceo for r in results[:3])

    with pytest.raises(SalesforceMalformedRequest) as err:
        rest(sf, "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": update * 67})
    assert code_of(err.value) == "EXCEEDED_ID_LIMIT"
    untyped = rest(sf, "composite/sobjects", method="PATCH", json={"records": [{"id": ceo, "Title": "CEO"}]})
    assert untyped[0]["errors"][0]["statusCode"] == "INVALID_TYPE"


def test_opportunity_update_moves_the_metric(small: tuple[SandboxOrg, RunningEmulator, Salesforce]) -> None:
    _, running, sf = small
    em = emulator_of(running)
    opp = next(o for o in em.opportunities if not o["IsClosed"] and o["CloseDate"] >= date(2024, 4, 1))
    before = em.won_amount([opp["OwnerId"]])
    sobj(sf, "Opportunity").update(opp["Id"], {"StageName": "Closed Won"})
    got = sobj(sf, "Opportunity").get(opp["Id"])
    assert got["IsWon"] is True and got["IsClosed"] is True and got["Probability"] == 100.0
    total = sf.query(
        f"SELECT SUM(Amount) t FROM Opportunity WHERE IsWon = true AND CloseDate = THIS_QUARTER "
        f"AND OwnerId = '{opp['OwnerId']}'"
    )["records"][0]["t"]
    assert total == before + opp["Amount"] == em.won_amount([opp["OwnerId"]])


# ---------------------------------------------------------------- limits and discovery
def test_limit_info_is_visible_and_the_daily_limit_refuses(
    start_emulator: Callable[..., RunningEmulator],
) -> None:
    org = SandboxOrg(20, seed=3, as_of=AS_OF)
    running = start_emulator("salesforce", org=org, daily_limit=4)
    sf = soap_client(running.connection())
    sf.query("SELECT Id FROM User")
    assert sf.api_usage["api-usage"].used == 1 and sf.api_usage["api-usage"].total == 4
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 4, "Remaining": 2}
    sobj(sf, "User").get(org.salesforce_user_id(0))
    sf.query("SELECT COUNT() FROM User")
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.query("SELECT Id FROM User")
    assert code_of(err.value) == "REQUEST_LIMIT_EXCEEDED"


def test_versions_describe_and_not_found(small: tuple[SandboxOrg, RunningEmulator, Salesforce]) -> None:
    org, running, sf = small
    conn = running.connection()
    versions = session_for(conn).get(f"{conn['instance_url']}/services/data/").json()
    assert versions[-1] == {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}
    fields = {f["name"]: f for f in sobj(sf, "User").describe()["fields"]}
    assert (
        fields["ManagerId"]["referenceTo"] == ["User"]
        and fields["ManagerId"]["relationshipName"] == "Manager"
    )
    assert fields["Name"]["updateable"] is False
    with pytest.raises(SalesforceResourceNotFound):
        sobj(sf, "Widget").describe()
    with pytest.raises(SalesforceResourceNotFound):
        sobj(sf, "User").get("not-an-id")
    assert sf.is_sandbox() is True
    assert sobj(sf, "User").get(org.salesforce_user_id(3))["FederationIdentifier"] == org.employee_id(3)


def test_injected_throttling_is_salesforce_shaped(start_emulator: Callable[..., RunningEmulator]) -> None:
    running = start_emulator("salesforce", org=SandboxOrg(20, seed=3, as_of=AS_OF))
    conn = running.connection()
    sf = soap_client(conn)
    session_for(conn).post(f"{running.url}/_sandbox/faults", json={"spec": "429=1"}).raise_for_status()
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.query("SELECT Id FROM User")
    content: Any = err.value.content
    assert content == [
        {"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
