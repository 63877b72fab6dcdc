"""One org, four wire formats: the emulators agree with each other and with the org, and misbehave alike.

Every emulator is read the way its vendor's clients read it, with plain ``requests`` and each
vendor's own ids (Entra object ids, SuccessFactors userIds, Workday WIDs, Salesforce 18-char Ids);
only then are those ids mapped back to employee ids through the field each vendor carries
(Graph ``employeeId``, SF ``empId``, Workday ``Employee_ID``/``Contingent_Worker_ID``, Salesforce
``EmployeeNumber``). All four {employee → manager} maps must be the org's
:meth:`~okrsync.sandbox.orgs.SandboxOrg.expected_people`, and each incremental query (Graph delta,
SF ``lastModifiedDateTime``, Workday transaction log, Salesforce ``LastModifiedDate``) must
return exactly the people an edit touched.

The second half injects every fault kind into every emulator and checks each arrives in its
vendor's shape. Clients disable ``trust_env`` (``REQUESTS_CA_BUNDLE`` is set on these machines
and would replace the sandbox CA; api-notes §7).
"""

# SOQL strings here are built from test-controlled timestamps, which is what S608 cannot know.
# ruff: noqa: S608
from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

import pytest
import requests
import urllib3
from lxml import etree

from okrsync.sandbox import RunningEmulator, SandboxOrg
from okrsync.sandbox.server import Emulator, Request, Response, serve
from tests.sandbox.test_successfactors import build_test_assertion

SYSTEMS = ("entra", "successfactors", "workday", "salesforce")
WORKERS, SEED = 300, 11
WD = "urn:com.workday/bsvc"
NS = {"wd": WD, "env": "http://schemas.xmlsoap.org/soap/envelope/"}
ALL_STATUSES = "status in 't','f','T','F','e','d'"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
Start = Callable[..., RunningEmulator]
ManagerMap = dict[str, str | None]


class Clock:
    """A settable clock shared by the org and so by every emulator (timestamps are whole seconds)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def make_org(clock: Clock) -> SandboxOrg:
    return SandboxOrg(WORKERS, seed=SEED, as_of=clock().date(), clock=clock)


def session(ca_bundle: str | None = None) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    if ca_bundle:
        s.verify = ca_bundle
    return s


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- Graph
def graph_session(run: RunningEmulator) -> requests.Session:
    conn = run.connection()
    s = session(conn["ca_bundle"])
    token = s.post(
        f"{conn['login_url']}/{conn['tenant_id']}/oauth2/v2.0/token",
        data={
            "client_id": conn["client_id"],
            "client_secret": conn["client_secret"],
            "scope": GRAPH_SCOPE,
            "grant_type": "client_credentials",
        },
        timeout=30,
    )
    assert token.status_code == 200, token.text
    s.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return s


def graph_people(run: RunningEmulator) -> ManagerMap:
    s = graph_session(run)
    url: str | None = f"{run.url}/v1.0/users?$select=id,employeeId&$expand=manager($select=id)&$top=999"
    users: list[dict[str, Any]] = []
    while url:
        r = s.get(url, timeout=30)
        assert r.status_code == 200, r.text
        users += r.json()["value"]
        url = r.json().get("@odata.nextLink")
    emp = {u["id"]: u["employeeId"] for u in users}
    return {u["employeeId"]: emp[u["manager"]["id"]] if "manager" in u else None for u in users}


def graph_delta_round(s: requests.Session, url: str) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while True:
        assert next_url is not None
        r = s.get(next_url, timeout=30)
        assert r.status_code == 200, r.text
        items += r.json()["value"]
        next_url = r.json().get("@odata.nextLink")
        if next_url is None:
            return items, r.json()["@odata.deltaLink"]


# ---------------------------------------------------------------- SuccessFactors
def sf_session(run: RunningEmulator) -> requests.Session:
    em: Any = run.emulator
    s = session()
    s.auth = (f"{em.api_user}@{em.company_id}", em.basic_password)
    return s


def sf_users(run: RunningEmulator, flt: str = ALL_STATUSES) -> list[dict[str, Any]]:
    s = sf_session(run)
    params = {
        "$format": "json",
        "$select": "userId,empId,manager/userId",
        "$expand": "manager",
        "$filter": flt,
    }
    r = s.get(f"{run.url}/odata/v2/User", params=params, timeout=30)
    rows: list[dict[str, Any]] = []
    while True:
        assert r.status_code == 200, r.text
        body = r.json()["d"]
        rows += body["results"]
        if not body.get("__next"):
            return rows
        r = s.get(body["__next"], timeout=30)


def sf_people(run: RunningEmulator) -> ManagerMap:
    rows = sf_users(run)
    emp = {u["userId"]: u["empId"] for u in rows}
    return {u["empId"]: emp[u["manager"]["userId"]] if u["manager"] else None for u in rows}


# ---------------------------------------------------------------- Workday
def wd_post(run: RunningEmulator, body: str) -> requests.Response:
    c = run.connection()
    envelope = (
        f'<env:Envelope xmlns:env="{NS["env"]}" xmlns:wd="{WD}"><env:Header>'
        '<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
        f"<wsse:UsernameToken><wsse:Username>{escape(c['username'])}</wsse:Username>"
        '<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0'
        f'#PasswordText">{escape(c["password"])}</wsse:Password></wsse:UsernameToken></wsse:Security>'
        f"</env:Header><env:Body>{body}</env:Body></env:Envelope>"
    )
    return session().post(
        f"{c['base_url']}/ccx/service/{c['tenant']}/Human_Resources/v45.0",
        data=envelope.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=30,
        stream=True,
    )


def wd_request(criteria: str = "", page: int = 1, entry: str | None = None) -> str:
    moment = f"<wd:As_Of_Entry_DateTime>{entry}</wd:As_Of_Entry_DateTime>" if entry else ""
    return (
        '<wd:Get_Workers_Request wd:version="v45.0">'
        + (f"<wd:Request_Criteria>{criteria}</wd:Request_Criteria>" if criteria else "")
        + f"<wd:Response_Filter>{moment}<wd:Page>{page}</wd:Page><wd:Count>999</wd:Count>"
        "</wd:Response_Filter>"
        "<wd:Response_Group><wd:Include_Reference>true</wd:Include_Reference>"
        "<wd:Include_Employment_Information>true</wd:Include_Employment_Information></wd:Response_Group>"
        "</wd:Get_Workers_Request>"
    )


@dataclass
class WdRecord:
    wid: str
    number: str  # Employee_ID or Contingent_Worker_ID
    manager_wid: str | None
    terminated: bool


def wd_records(run: RunningEmulator, criteria: str = "") -> list[WdRecord]:
    """Every page of one Get_Workers answer, with As_Of_Entry_DateTime fixed after page 1."""
    out: list[WdRecord] = []
    page, pages, entry = 1, 1, None
    while page <= pages:
        r = wd_post(run, wd_request(criteria, page, entry))
        assert r.status_code == 200, r.text[:2000]
        doc = etree.fromstring(r.content)
        pages = int(doc.findtext(".//wd:Response_Results/wd:Total_Pages", namespaces=NS) or 0)
        entry = doc.findtext(".//wd:Response_Filter/wd:As_Of_Entry_DateTime", namespaces=NS)
        for w in doc.iterfind(".//wd:Response_Data/wd:Worker", NS):
            ids = {i.get(f"{{{WD}}}type"): i.text for i in w.iterfind("wd:Worker_Reference/wd:ID", NS)}
            manager = w.findtext(
                "wd:Worker_Data/wd:Employment_Data/wd:Worker_Job_Data[@wd:Primary_Job='1']/wd:Position_Data/"
                "wd:Manager_as_of_last_detected_manager_change_Reference/wd:ID[@wd:type='WID']",
                namespaces=NS,
            )
            terminated = w.findtext(".//wd:Worker_Status_Data/wd:Terminated", namespaces=NS) == "1"
            number = ids.get("Employee_ID") or ids.get("Contingent_Worker_ID")
            assert ids.get("WID") and number, etree.tostring(w)[:500]
            out.append(WdRecord(str(ids["WID"]), str(number), manager, terminated))
        page += 1
    return out


def wd_people(run: RunningEmulator) -> ManagerMap:
    records = wd_records(run)
    number = {r.wid: r.number for r in records}
    owners: dict[str, WdRecord] = {}
    for r in records:  # a converted person has a terminated record per former WID: the other one owns it
        if r.number not in owners or owners[r.number].terminated:
            owners[r.number] = r
    return {n: number[r.manager_wid] if r.manager_wid else None for n, r in owners.items()}


def wd_window(start: datetime, end: datetime) -> str:
    return (
        "<wd:Transaction_Log_Criteria_Data><wd:Transaction_Date_Range_Data>"
        f"<wd:Updated_From>{start.isoformat()}</wd:Updated_From>"
        f"<wd:Updated_Through>{end.isoformat()}</wd:Updated_Through>"
        "</wd:Transaction_Date_Range_Data></wd:Transaction_Log_Criteria_Data>"
    )


# ---------------------------------------------------------------- Salesforce
def salesforce_session(run: RunningEmulator) -> tuple[requests.Session, str]:
    conn = run.connection()
    s = session(conn["ca_bundle"])
    token = s.post(
        f"{conn['login_url']}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": conn["consumer_key"],
            "client_secret": conn["consumer_secret"],
            "username": conn["username"],
            "password": conn["password"] + conn["security_token"],
        },
        timeout=30,
    )
    assert token.status_code == 200, token.text
    s.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return s, f"{token.json()['instance_url']}/services/data/v{conn['api_version']}"


def soql(run: RunningEmulator, query: str) -> list[dict[str, Any]]:
    s, base = salesforce_session(run)
    r = s.get(f"{base}/query/", params={"q": query}, timeout=30)
    records: list[dict[str, Any]] = []
    while True:
        assert r.status_code == 200, r.text
        records += r.json()["records"]
        if r.json()["done"]:
            return records
        r = s.get(base.split("/services/")[0] + r.json()["nextRecordsUrl"], timeout=30)


def salesforce_people(run: RunningEmulator) -> ManagerMap:
    rows = soql(run, "SELECT Id, EmployeeNumber, ManagerId FROM User")
    emp = {r["Id"]: r["EmployeeNumber"] for r in rows}
    return {r["EmployeeNumber"]: emp[r["ManagerId"]] if r["ManagerId"] else None for r in rows}


READERS: dict[str, Callable[[RunningEmulator], ManagerMap]] = {
    "entra": graph_people,
    "successfactors": sf_people,
    "workday": wd_people,
    "salesforce": salesforce_people,
}


def expected(org: SandboxOrg) -> ManagerMap:
    return {p.id: p.manager_id for p in org.expected_people()}


# ---------------------------------------------------------------- consistency
def test_same_seed_same_org_in_every_emulator(start_emulator: Start) -> None:
    first, second = make_org(Clock()), make_org(Clock())
    assert first.expected_people() == second.expected_people()
    truth = expected(first)
    assert len(truth) == WORKERS and sum(m is None for m in truth.values()) == 1
    for org in (first, second):
        for system, read in READERS.items():
            got = read(start_emulator(system, org=org))
            assert got == truth, system


def test_an_edit_shows_up_in_each_incremental_query(start_emulator: Start) -> None:
    clock = Clock()
    org = make_org(clock)
    runs = {system: start_emulator(system, org=org) for system in SYSTEMS}
    graph = graph_session(runs["entra"])
    initial, delta_link = graph_delta_round(
        graph, f"{runs['entra'].url}/v1.0/users/delta?$select=employeeId,manager"
    )
    assert len(initial) == WORKERS
    entra_emp = {u["id"]: u["employeeId"] for u in initial}
    watermark = clock()
    version = org.version

    clock.advance(minutes=5)
    org.random_edits(20)
    today = clock().date()
    contingent = next(w for w in org if w.worker_type == "contingent" and w.version <= version)
    boss = org.workers[1].employee_id
    edit_api = session(runs["salesforce"].ca_path).post(
        f"{runs['salesforce'].url}/_sandbox/edit",
        json=[
            {"op": "hire", "manager": boss, "given_name": "Future", "hire_date": str(today + timedelta(10))},
            {"op": "convert", "id": contingent.employee_id},
        ],
        timeout=30,
    )
    assert edit_api.status_code == 200, edit_api.text
    applied = edit_api.json()["applied"]
    future = org.get(applied[0]["id"])
    assert future.status == "pre_hire" and future.hire_date > today
    converted = org.get(contingent.employee_id)
    assert converted.worker_type == "employee" and converted.former_wids
    edited = {w.employee_id for w in org.changed_since(version)}
    assert len(edited) == 22
    clock.advance(minutes=1)

    # Graph: the next delta round holds exactly the edited users
    items, _ = graph_delta_round(graph, delta_link)
    assert {i.get("employeeId") or entra_emp[i["id"]] for i in items} == edited
    # SuccessFactors: lastModifiedDateTime watermark (every status, or terminations would hide)
    flt = f"lastModifiedDateTime gt datetimeoffset'{stamp(watermark)}' and {ALL_STATUSES}"
    assert {u["empId"] for u in sf_users(runs["successfactors"], flt)} == edited
    # Workday: the transaction log's entry-time window (the conversion adds its former WID's record)
    records = wd_records(runs["workday"], wd_window(watermark, clock()))
    assert {r.number for r in records} == edited
    assert {r.wid for r in records} >= {future.wid, converted.wid, *converted.former_wids}
    # Salesforce: LastModifiedDate watermark
    rows = soql(
        runs["salesforce"], f"SELECT EmployeeNumber FROM User WHERE LastModifiedDate > {stamp(watermark)}"
    )
    assert {r["EmployeeNumber"] for r in rows} == edited

    # and the full reads still agree with the edited org
    truth = expected(org)
    for system, read in READERS.items():
        assert read(runs[system]) == truth, system


# ---------------------------------------------------------------- faults
FAULTS = "429=0.12,500=0.12,503=0.12,reset=0.12,truncate=0.12,slow=0.12,slow_seconds=0.1,retry_after=4"


@dataclass
class Vendor:
    """How to call one emulator and what its errors look like."""

    call: Callable[[], requests.Response]  # one authenticated listing, streamed
    decode: Callable[[bytes], Any]
    error_code: Callable[[requests.Response, Any], str]
    codes: dict[int, str]  # injected status -> the vendor's error code
    throttle_status: int = 429
    retry_after: bool = True


def _graph_code(resp: requests.Response, body: Any) -> str:
    assert resp.headers["request-id"] == body["error"]["innerError"]["request-id"]
    return str(body["error"]["code"])


def _sf_code(resp: requests.Response, body: Any) -> str:
    assert body["error"]["message"]["lang"] == "en-US"
    return str(body["error"]["code"])


def _wd_code(resp: requests.Response, body: Any) -> str:
    assert resp.headers["Content-Type"].startswith("text/xml")
    return str(body.findtext(".//faultcode"))


def _salesforce_code(resp: requests.Response, body: Any) -> str:
    assert resp.headers["Sforce-Limit-Info"].startswith("api-usage=")
    return str(body[0]["errorCode"])


def vendor(system: str, run: RunningEmulator) -> Vendor:
    if system == "entra":
        g = graph_session(run)
        return Vendor(
            lambda: g.get(f"{run.url}/v1.0/users?$top=999", timeout=30, stream=True),
            json.loads,
            _graph_code,
            {429: "TooManyRequests", 500: "generalException", 503: "serviceNotAvailable"},
        )
    if system == "successfactors":
        s = sf_session(run)
        return Vendor(
            lambda: s.get(f"{run.url}/odata/v2/User?$format=json", timeout=30, stream=True),
            json.loads,
            _sf_code,
            {
                429: "COE_TOO_MANY_REQUESTS",
                500: "COE_GENERAL_SERVER_FAILURE",
                503: "COE_GENERAL_SERVER_FAILURE",
            },
        )
    if system == "workday":
        return Vendor(
            lambda: wd_post(run, wd_request()),
            etree.fromstring,
            _wd_code,
            dict.fromkeys((429, 500, 503), "SOAP-ENV:Client.processingFault"),
        )
    sf, base = salesforce_session(run)
    return Vendor(
        lambda: sf.get(f"{base}/query/", params={"q": "SELECT Id FROM User"}, timeout=30, stream=True),
        json.loads,
        _salesforce_code,
        {403: "REQUEST_LIMIT_EXCEEDED", 500: "UNKNOWN_EXCEPTION", 503: "SERVER_UNAVAILABLE"},
        throttle_status=403,  # Salesforce's REST API has no 429: concurrency limits are 403s
        retry_after=False,
    )


def read_all(resp: requests.Response) -> tuple[bytes, bool]:
    """(the bytes that arrived, whether they are the whole announced body)."""
    got = bytearray()
    try:
        for chunk in resp.raw.stream(4096, decode_content=True):
            got += chunk
    except (urllib3.exceptions.ProtocolError, OSError):
        return bytes(got), False
    return bytes(got), len(got) == int(resp.headers.get("Content-Length", len(got)))


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_fault_kind_is_vendor_shaped(start_emulator: Start, system: str) -> None:
    run = start_emulator(system, org=SandboxOrg(30, seed=2))
    v = vendor(system, run)  # authenticates before faults are on: token calls would be faulted too
    control = session(run.ca_path)
    assert control.post(f"{run.url}/_sandbox/faults", json={"spec": FAULTS}, timeout=10).ok
    seen: dict[str, int] = dict.fromkeys(("reset", "truncate", "slow", "ok"), 0)
    for _ in range(200):
        started = time.perf_counter()
        try:
            resp = v.call()
        except requests.ConnectionError:
            seen["reset"] += 1
            continue
        body, complete = read_all(resp)
        if not complete:
            assert resp.status_code == 200 and len(body) < int(resp.headers["Content-Length"])
            with pytest.raises((ValueError, etree.XMLSyntaxError)):
                v.decode(body)
            seen["truncate"] += 1
            continue
        decoded = v.decode(body)
        key = str(resp.status_code)
        seen[key] = seen.get(key, 0) + 1
        if resp.status_code == 200:
            seen["ok" if time.perf_counter() - started < 0.1 else "slow"] += 1
            continue
        assert resp.status_code in v.codes, (resp.status_code, body[:300])
        assert v.error_code(resp, decoded) == v.codes[resp.status_code]
        if resp.status_code in {429, 503} and v.retry_after:
            assert resp.headers["Retry-After"] == "4"
        if resp.status_code == v.throttle_status and not v.retry_after:
            assert "Retry-After" not in resp.headers
        if min(seen.get(k, 0) for k in ("reset", "truncate", "slow", "ok", "500", "503")) and seen.get(
            str(v.throttle_status)
        ):
            break
    stats = control.get(f"{run.url}/_sandbox/stats", timeout=10).json()["faults"]
    assert set(stats) == {"429", "500", "503", "reset", "truncate", "slow"}, stats
    # a truncation whose reset overtakes the headers looks like a reset to the client
    assert seen["reset"] + seen["truncate"] == stats["reset"] + stats["truncate"]
    assert seen["reset"] >= stats["reset"] and seen["truncate"]
    assert seen.get(str(v.throttle_status), 0) == stats["429"]
    assert (seen.get("500", 0), seen.get("503", 0)) == (stats["500"], stats["503"])
    assert seen["slow"] >= stats["slow"] and seen["ok"]


def test_expired_tokens_get_each_vendors_answer(start_emulator: Start) -> None:
    runs = {s: start_emulator(s, org=SandboxOrg(20, seed=2), faults="token_ttl=0.3") for s in SYSTEMS}
    graph = graph_session(runs["entra"])
    sf = runs["successfactors"]
    conn = sf.connection()
    with open(conn["private_key_path"], "rb") as k, open(conn["certificate_path"], "rb") as c:
        assertion = build_test_assertion(
            k.read(),
            c.read(),
            client_id=conn["client_id"],
            user_id=conn["user_id"],
            token_url=f"{sf.url}/oauth/token",
        )
    form = {
        "company_id": conn["company_id"],
        "client_id": conn["client_id"],
        "grant_type": "urn:ietf:params:oauth:grant-type:saml2-bearer",
        "assertion": assertion,
    }
    sf_token = session().post(f"{sf.url}/oauth/token", data=form, timeout=30).json()["access_token"]
    wd = runs["workday"].emulator.connection("rest")  # type: ignore[call-arg]
    wd_token = session().post(
        f"{runs['workday'].url}/ccx/oauth2/{wd['tenant']}/token",
        data={k: wd[k] for k in ("refresh_token", "client_id", "client_secret")}
        | {"grant_type": "refresh_token"},
        timeout=30,
    )
    salesforce, base = salesforce_session(runs["salesforce"])
    calls: dict[str, Callable[[], requests.Response]] = {
        "entra": lambda: graph.get(f"{runs['entra'].url}/v1.0/users", timeout=30),
        "successfactors": lambda: session().get(
            f"{sf.url}/odata/v2/User?$format=json",
            headers={"Authorization": f"Bearer {sf_token}"},
            timeout=30,
        ),
        "workday": lambda: session().get(
            f"{runs['workday'].url}/ccx/api/v1/sandbox/workers",
            headers={"Authorization": f"Bearer {wd_token.json()['access_token']}"},
            timeout=30,
        ),
        "salesforce": lambda: salesforce.get(
            f"{base}/query/", params={"q": "SELECT Id FROM User"}, timeout=30
        ),
    }
    assert {s: call().status_code for s, call in calls.items()} == dict.fromkeys(SYSTEMS, 200)
    time.sleep(0.4)
    got = {s: call() for s, call in calls.items()}
    entra = got["entra"]
    assert entra.status_code == 401 and entra.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "expired" in entra.json()["error"]["message"] and "WWW-Authenticate" in entra.headers
    sfe = got["successfactors"]
    assert sfe.status_code == 403 and sfe.json()["error"]["code"] == "INTERNAL_TOKEN_EXPIRED"
    assert sfe.json()["error"]["message"]["value"].startswith("[LGN0006]")
    wde = got["workday"]
    assert wde.status_code == 401 and "expired" in wde.json()["error"]
    sfc = got["salesforce"]
    assert sfc.status_code == 401 and sfc.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_graph_delta_token_expiry_means_resync(start_emulator: Start) -> None:
    run = start_emulator("entra", org=SandboxOrg(30, seed=2), faults="delta_ttl=0.3")
    g = graph_session(run)
    first, delta_link = graph_delta_round(g, f"{run.url}/v1.0/users/delta?$select=employeeId,manager")
    assert len(first) == 30
    again, delta_link = graph_delta_round(g, delta_link)  # within the TTL: a normal, empty round
    assert again == []
    time.sleep(0.4)
    gone = g.get(delta_link, timeout=30, allow_redirects=False)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "resyncRequired"
    fresh, _ = graph_delta_round(g, gone.headers["Location"])  # the Location restarts a full round
    assert {u["employeeId"] for u in fresh} == {w.employee_id for w in run.emulator.org}


def test_edit_api_validates_and_reports(start_emulator: Start) -> None:
    org = SandboxOrg(40, seed=2)
    run = start_emulator("workday", org=org)
    leaf = next(w for w in org if w.manager is not None and not any(x.manager == w.index for x in org))
    ops = [
        {"op": "rename", "id": leaf.employee_id, "title": "Principal Analyst"},
        {"op": "move", "id": leaf.employee_id, "manager": org.workers[1].employee_id},
        {"op": "terminate", "id": leaf.employee_id, "on": str(date.today())},
        {"op": "rehire", "id": leaf.employee_id},
        {"op": "hire", "manager": org.workers[0].employee_id, "given_name": "Ada", "title": "Analyst"},
    ]
    r = session().post(f"{run.url}/_sandbox/edit", json=ops, timeout=10)
    assert r.status_code == 200 and [a["id"] for a in r.json()["applied"]][:4] == [leaf.employee_id] * 4
    assert org.get(leaf.employee_id).status == "active" and len(org) == 41
    bad = session().post(f"{run.url}/_sandbox/edit", json=[ops[0], {"op": "explode", "id": "1"}], timeout=10)
    assert bad.status_code == 400 and "unknown edit op" in bad.json()["error"]
    assert len(bad.json()["applied"]) == 1  # edits before the bad one stay applied
    stats = session().get(f"{run.url}/_sandbox/stats", timeout=10).json()
    assert stats["workers"] == 41 and stats["version"] == org.version


# ---------------------------------------------------------------- the shared server
def test_request_path_is_decoded_once_and_the_raw_path_kept(start_emulator: Start) -> None:
    class Echo(Emulator):
        system = "echo"

    echo = Echo(SandboxOrg(3, seed=1))
    echo.route(
        "GET",
        r"/echo/(?P<rest>.+)",
        lambda r: Response.json([r.path, r.raw_path, r.match and r.match["rest"]]),
    )
    with serve(echo) as run:
        got = session().get(f"{run.url}/echo/a%20b%2Fc%2541?x=%2F", timeout=10).json()
    assert got == ["/echo/a b/c%41", "/echo/a%20b%2Fc%2541", "a b/c%41"]
    assert Request("GET", "/x", "", {}, {}, b"").raw_path == ""  # synthetic requests (Graph $batch items)

    org = SandboxOrg(20, seed=2)
    graph = start_emulator("entra", org=org)
    upn = org.workers[3].email.replace("@", "%40")
    r = graph_session(graph).get(f"{graph.url}/v1.0/users/{upn}?$select=employeeId", timeout=10)
    assert r.status_code == 200 and r.json()["employeeId"] == org.workers[3].employee_id
    sf = start_emulator("successfactors", org=org)
    key = f"User(%27{org.sf_user_id(3)}%27)"
    r = sf_session(sf).get(f"{sf.url}/odata/v2/{key}?$format=json&$select=empId", timeout=10)
    assert r.status_code == 200 and r.json()["d"]["empId"] == org.workers[3].employee_id
    salesforce = start_emulator("salesforce", org=org)
    s, base = salesforce_session(salesforce)
    number = "".join(f"%{ord(c):02X}" for c in org.workers[3].employee_id)
    r = s.get(f"{base}/sobjects/User/EmployeeNumber/{number}", timeout=10)
    assert r.status_code == 200 and r.json()["Id"] == org.salesforce_user_id(3)


def test_a_vanished_client_is_routine_but_a_handler_bug_is_printed(capfd: pytest.CaptureFixture[str]) -> None:
    """Crash rehearsals kill clients mid-answer; that must not bury real emulator bugs in noise."""

    class Flaky(Emulator):
        system = "flaky"

    flaky = Flaky(SandboxOrg(3, seed=1))
    flaky.route("GET", r"/big", lambda _: Response(200, b"x" * 32_000_000, content_type="text/plain"))
    # a str body reaches the socket write and fails there: a server-level bug, not a client's exit
    flaky.route("GET", r"/bug", lambda _: Response(200, "handler-bug-marker", content_type="text/plain"))  # type: ignore[arg-type]
    with serve(flaky) as run:
        port = int(run.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            client.recv(1024)  # the answer has started
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        time.sleep(0.5)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):  # headers sent, then the bug
            session().get(f"{run.url}/bug", timeout=10)
        time.sleep(0.2)
    err = capfd.readouterr().err
    assert "TypeError" in err and "Exception occurred during processing of request" in err
    assert err.count("Exception occurred") == 1, err  # the vanished client printed nothing
