"""Fidelity of the Workday emulator, proven by independent clients.

zeep, built from the real ``Human_Resources.wsdl``, must parse every page and every fault the
emulator writes (if zeep disagrees, the emulator is wrong); plain ``requests`` + lxml check the
semantics a connector relies on: transaction-log windows, as-of moments, references, flags,
hostile XML, REST paging and manager resolution, RaaS aliases and prompts, goal idempotence.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

import pytest
import requests
from lxml import etree

from okrsync.sandbox import RunningEmulator, SandboxOrg
from tests.specs import WORKDAY_WSDL

zeep = pytest.importorskip("zeep")
from zeep.wsse.username import UsernameToken  # noqa: E402

WSDL = WORKDAY_WSDL
BINDING = "{urn:com.workday/bsvc/Human_Resources}Human_ResourcesBinding"
WD = "urn:com.workday/bsvc"
NS = {"wd": WD, "env": "http://schemas.xmlsoap.org/soap/envelope/"}
FULL_GROUP = (
    "<wd:Response_Group><wd:Include_Reference>true</wd:Include_Reference>"
    "<wd:Include_Personal_Information>true</wd:Include_Personal_Information>"
    "<wd:Include_Employment_Information>true</wd:Include_Employment_Information>"
    "<wd:Include_Organizations>true</wd:Include_Organizations>"
    "<wd:Include_Management_Chain_Data>true</wd:Include_Management_Chain_Data></wd:Response_Group>"
)
Start = Callable[..., RunningEmulator]


@pytest.fixture(scope="module")
def shared_client() -> Iterator[Callable[[RunningEmulator, str | None], Any]]:
    """One parsed WSDL for the module (zeep loads it in about a second); a service per emulator."""
    clients: dict[tuple[str, str], Any] = {}

    def service(run: RunningEmulator, password: str | None = None) -> Any:
        c = run.connection()
        key = (c["username"], password or c["password"])
        if key not in clients:
            clients[key] = zeep.Client(str(WSDL), wsse=UsernameToken(*key))
        return clients[key].create_service(
            BINDING, f"{c['base_url']}/ccx/service/{c['tenant']}/Human_Resources"
        )

    yield service


# ---- plain-HTTP helpers ----
def envelope(run: RunningEmulator, body: str, *, password: str | None = None) -> bytes:
    c = run.connection()
    return (
        '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wd="urn:com.workday/bsvc">'
        '<env:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/'
        'oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsse:UsernameToken>'
        f"<wsse:Username>{escape(c['username'])}</wsse:Username>"
        '<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0'
        f'#PasswordText">{escape(password or c["password"])}</wsse:Password>'
        f"</wsse:UsernameToken></wsse:Security></env:Header><env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def post(
    run: RunningEmulator, body: str, *, service: str = "Human_Resources", **kw: Any
) -> requests.Response:
    return requests.post(
        f"{run.url}/ccx/service/sandbox/{service}/v45.0",
        data=envelope(run, body, **kw),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=30,
    )


def get_workers(
    run: RunningEmulator,
    *,
    criteria: str = "",
    references: str = "",
    page: int = 1,
    count: int = 999,
    effective: str | None = None,
    entry: str | None = None,
    group: str = FULL_GROUP,
) -> Any:
    filt = ""
    if effective:
        filt += f"<wd:As_Of_Effective_Date>{effective}</wd:As_Of_Effective_Date>"
    if entry:
        filt += f"<wd:As_Of_Entry_DateTime>{entry}</wd:As_Of_Entry_DateTime>"
    body = (
        f'<wd:Get_Workers_Request wd:version="v45.0">{references}'
        + (f"<wd:Request_Criteria>{criteria}</wd:Request_Criteria>" if criteria else "")
        + f"<wd:Response_Filter>{filt}<wd:Page>{page}</wd:Page><wd:Count>{count}</wd:Count>"
        + "</wd:Response_Filter>"
        + f"{group}</wd:Get_Workers_Request>"
    )
    r = post(run, body)
    assert r.status_code == 200, r.text[:2000]
    return etree.fromstring(r.content)


def wids(doc: Any) -> list[str]:
    return doc.xpath(
        "//wd:Response_Data/wd:Worker/wd:Worker_Reference/wd:ID[@wd:type='WID']/text()", namespaces=NS
    )


def worker_by_id(doc: Any) -> dict[str, Any]:
    return {
        w.findtext("wd:Worker_Reference/wd:ID[@wd:type='WID']", namespaces=NS): w
        for w in doc.iterfind(".//wd:Response_Data/wd:Worker", NS)
    }


def text(el: Any, path: str) -> str | None:
    found = el.xpath(path, namespaces=NS)
    return str(found[0]) if found else None


def fault_of(r: requests.Response) -> tuple[str, str, str | None]:
    doc = etree.fromstring(r.content)
    return (
        doc.findtext(".//faultcode"),
        doc.findtext(".//faultstring"),
        doc.findtext(".//wd:Validation_Error/wd:Xpath", namespaces=NS),
    )


def window(**bounds: datetime | date) -> str:
    inner = "".join(f"<wd:{k}>{v.isoformat()}</wd:{k}>" for k, v in bounds.items())
    return (
        "<wd:Transaction_Log_Criteria_Data><wd:Transaction_Date_Range_Data>"
        f"{inner}</wd:Transaction_Date_Range_Data></wd:Transaction_Log_Criteria_Data>"
    )


def ref(kind: str, value: str) -> str:
    return f'<wd:Worker_Reference><wd:ID wd:type="{kind}">{value}</wd:ID></wd:Worker_Reference>'


# ---- zeep: the independent client ----
def test_zeep_reads_every_page_and_it_equals_the_org(start_emulator: Start, shared_client: Any) -> None:
    org = SandboxOrg(1000, seed=11, defects={"dangling_manager", "self_manager"})
    run = start_emulator("workday", org=org)
    service = shared_client(run)
    seen: dict[str, Any] = {}
    page, pages = 1, 1
    entry = None
    while page <= pages:
        flt: dict[str, Any] = {"Page": page, "Count": 200}
        if entry is not None:
            flt["As_Of_Entry_DateTime"] = entry
        result = service.Get_Workers(
            version="v45.0",
            Response_Filter=flt,
            Response_Group={
                "Include_Reference": True,
                "Include_Personal_Information": True,
                "Include_Employment_Information": True,
                "Include_Management_Chain_Data": True,
            },
        )
        entry = result.Response_Filter.As_Of_Entry_DateTime  # fixed across pages, as the notes advise
        pages = int(result.Response_Results.Total_Pages)
        assert int(result.Response_Results.Page_Results) == len(result.Response_Data.Worker)
        for w in result.Response_Data.Worker:
            seen[w.Worker_Data.Worker_ID] = w
        page += 1
    assert pages == 5
    today = org.clock().date()
    expected = {p.id: p for p in org.expected_people()}
    assert set(seen) == set(expected)
    all_wids = {w.wid for w in org}
    for worker_id, w in seen.items():
        p = expected[worker_id]
        ids = {i.type: i._value_1 for i in w.Worker_Reference.ID}
        kind = "Contingent_Worker_ID" if p.worker_type.value == "contingent" else "Employee_ID"
        assert ids[kind] == worker_id and ids["WID"] == org.get(worker_id).wid
        name = w.Worker_Data.Personal_Data.Name_Data.Legal_Name_Data.Name_Detail_Data
        assert (name.First_Name, name.Last_Name) == (p.given_name, p.family_name)
        assert w.Worker_Data.Personal_Data.Contact_Data.Email_Address_Data[0].Email_Address == p.email
        job = w.Worker_Data.Employment_Data.Worker_Job_Data[0]
        assert job.Primary_Job is True and job.Position_Data.Business_Title == p.title
        status = w.Worker_Data.Employment_Data.Worker_Status_Data
        got_status = (
            "terminated"
            if status.Terminated
            else "active"
            if status.Active
            else "pre_hire"
            if status.Hire_Date > today
            else "?"
        )
        assert got_status == p.status.value, worker_id
        managers = job.Position_Data.Manager_as_of_last_detected_manager_change_Reference
        if p.manager_id is None:  # the top of the org: no manager, no chain
            assert managers == [] and w.Worker_Data.Management_Chain_Data is None
            continue
        chain = (
            w.Worker_Data.Management_Chain_Data.Worker_Supervisory_Management_Chain_Data.Management_Chain_Data
        )
        manager_ids = {i.type: i._value_1 for i in managers[0].ID}
        assert manager_ids.get("Employee_ID", manager_ids.get("Contingent_Worker_ID")) == p.manager_id
        nearest = {i.type: i._value_1 for i in chain[0].Manager_Reference[0].ID}
        assert nearest["WID"] == manager_ids["WID"]
        if int(p.manager_id) - 100001 >= len(org):  # the dangling defect: a WID that matches no worker
            assert manager_ids["WID"] not in all_wids
    # the management chain walks up to the top, nearest first
    deep = max(
        (w for w in seen.values() if w.Worker_Data.Management_Chain_Data),
        key=lambda w: len(
            w.Worker_Data.Management_Chain_Data.Worker_Supervisory_Management_Chain_Data.Management_Chain_Data
        ),
    )
    levels = (
        deep.Worker_Data.Management_Chain_Data.Worker_Supervisory_Management_Chain_Data.Management_Chain_Data
    )
    walk, m = [], org.manager_of(org.get(deep.Worker_Data.Worker_ID))
    while m is not None and len(walk) < len(levels):
        walk.append(m.wid)
        m = org.manager_of(m)
    assert [next(i._value_1 for i in lv.Manager_Reference[0].ID if i.type == "WID") for lv in levels] == walk


def test_zeep_parses_organizations_dotted_lines_conversions_and_goals(
    start_emulator: Start, shared_client: Any
) -> None:
    org = SandboxOrg(120, seed=5)
    dotted = next(w for w in org if w.dotted)
    contractor = next(w for w in org if w.worker_type == "contingent" and w is not dotted)
    org.convert(contractor.employee_id)
    run = start_emulator("workday", org=org)
    goal = (
        '<wd:Manage_Goals_Request wd:version="v45.0"><wd:Manage_Goals_Data>'
        f'<wd:Worker_Reference><wd:ID wd:type="WID">{dotted.wid}</wd:ID></wd:Worker_Reference>'
        "<wd:Worker_Goal_Detail_Data><wd:Goal_Reference_ID>OKR-1</wd:Goal_Reference_ID>"
        "<wd:Name>Grow &amp; retain</wd:Name><wd:Due_Date>2030-03-31</wd:Due_Date>"
        "</wd:Worker_Goal_Detail_Data></wd:Manage_Goals_Data></wd:Manage_Goals_Request>"
    )
    assert post(run, goal, service="Performance_Management").status_code == 200
    service = shared_client(run)
    result = service.Get_Workers(
        Request_References={
            "Worker_Reference": [
                {"ID": [{"_value_1": dotted.wid, "type": "WID"}]},
                {"ID": [{"_value_1": contractor.employee_id, "type": "Employee_ID"}]},
                {"ID": [{"_value_1": contractor.former_wids[0], "type": "WID"}]},
            ]
        },
        Response_Group={
            "Include_Reference": True,
            "Include_Organizations": True,
            "Include_Goals": True,
            "Include_Management_Chain_Data": True,
            "Include_Employment_Information": True,
        },
    )
    first, converted, former = result.Response_Data.Worker
    kinds = {
        o.Organization_Data.Organization_Type_Reference.ID[1]._value_1: o.Organization_Data
        for o in first.Worker_Data.Organization_Data.Worker_Organization_Data
    }
    assert kinds["COST_CENTER"].Organization_Reference_ID == dotted.cost_center
    assert kinds["DEPARTMENT"].Organization_Name == dotted.department
    assert kinds["DIVISION"].Organization_Name == dotted.division
    assert kinds["SUPERVISORY"].Organization_Reference_ID == f"SUP-{org.employee_id(dotted.manager or 0)}"
    matrix = first.Worker_Data.Management_Chain_Data.Worker_Matrix_Management_Chain_Data.Management_Chain_Data
    assert [lv.Manager_Reference[0].ID[0]._value_1 for lv in matrix] == [
        org.workers[d].wid for d in dotted.dotted
    ]
    goals = first.Worker_Data.Worker_Goal_Data.Goal
    assert [(g.Goal_Data[0].Goal_Reference_ID, g.Goal_Data[0].Goal) for g in goals] == [
        ("OKR-1", "Grow & retain")
    ]
    # a conversion: the same Worker_ID under two WIDs, the former one terminated
    assert converted.Worker_Data.Worker_ID == former.Worker_Data.Worker_ID == contractor.employee_id
    assert converted.Worker_Reference.ID[0]._value_1 == contractor.wid
    assert former.Worker_Reference.ID[1].type == "Contingent_Worker_ID"
    assert converted.Worker_Data.Employment_Data.Worker_Status_Data.Active is True
    assert former.Worker_Data.Employment_Data.Worker_Status_Data.Terminated is True


def test_zeep_accepts_every_fault(start_emulator: Start, shared_client: Any) -> None:
    run = start_emulator("workday", org=SandboxOrg(30, seed=2))
    with pytest.raises(zeep.exceptions.Fault) as bad_count:
        shared_client(run).Get_Workers(Response_Filter={"Count": 1000})
    assert bad_count.value.code == "SOAP-ENV:Client.validationError"
    xpath = bad_count.value.detail.findtext(f".//{{{WD}}}Xpath")
    assert xpath == "/wd:Get_Workers_Request[1]/wd:Response_Filter[1]/wd:Count[1]"
    with pytest.raises(zeep.exceptions.Fault) as bad_auth:
        shared_client(run, "wrong password").Get_Workers()
    assert bad_auth.value.code == "SOAP-ENV:Client.authenticationError"
    failing = start_emulator("workday", org=SandboxOrg(30, seed=2), faults="500=1")
    with pytest.raises(zeep.exceptions.Fault) as injected:
        shared_client(failing).Get_Workers()
    assert injected.value.code == "SOAP-ENV:Client.processingFault"
    throttled = start_emulator("workday", org=SandboxOrg(30, seed=2), faults="429=1,retry_after=3")
    with pytest.raises(zeep.exceptions.Fault):
        shared_client(throttled).Get_Workers()
    r = post(throttled, "<wd:Get_Workers_Request/>")
    assert (r.status_code, r.headers["Retry-After"]) == (429, "3")
    assert fault_of(r)[0] == "SOAP-ENV:Client.processingFault"
    rest = requests.get(f"{throttled.url}/ccx/api/v1/sandbox/workers", timeout=10)
    assert rest.status_code == 429 and "error" in rest.json()


# ---- SOAP semantics over plain HTTP ----
def test_hostile_xml_is_refused_not_expanded(start_emulator: Start) -> None:
    run = start_emulator("workday", org=SandboxOrg(20, seed=2))
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>&lol3;</env:Body>'
        "</env:Envelope>"
    )
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>'
        '<wd:Get_Workers_Request xmlns:wd="urn:com.workday/bsvc">&xxe;</wd:Get_Workers_Request></env:Body>'
        "</env:Envelope>"
    )
    for body in (laughs, xxe):
        r = requests.post(f"{run.url}/ccx/service/sandbox/Human_Resources", data=body.encode(), timeout=10)
        assert r.status_code == 500
        code, message, _ = fault_of(r)
        assert code == "SOAP-ENV:Client.validationError" and "not allowed" in message
        assert "lollol" not in r.text and "root:" not in r.text


def test_authentication(start_emulator: Start) -> None:
    run = start_emulator("workday", org=SandboxOrg(20, seed=2))
    r = post(run, "<wd:Get_Workers_Request/>", password="nope")
    assert r.status_code == 500 and fault_of(r)[0] == "SOAP-ENV:Client.authenticationError"
    digest = envelope(run, "<wd:Get_Workers_Request/>").replace(b"#PasswordText", b"#PasswordDigest")
    r = requests.post(f"{run.url}/ccx/service/sandbox/Human_Resources", data=digest, timeout=10)
    assert fault_of(r)[0] == "SOAP-ENV:Client.authenticationError"
    bare = (
        b'<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>'
        b'<wd:Get_Workers_Request xmlns:wd="urn:com.workday/bsvc"/></env:Body></env:Envelope>'
    )
    r = requests.post(f"{run.url}/ccx/service/sandbox/Human_Resources", data=bare, timeout=10)
    assert fault_of(r)[0] == "SOAP-ENV:Client.authenticationError"


def test_transaction_log_windows_return_exactly_the_changed_workers(start_emulator: Start) -> None:
    org = SandboxOrg(300, seed=4)
    run = start_emulator("workday", org=org)
    today = org.clock().date()
    before = org.clock()
    leaves = [
        w
        for w in org
        if w.status == "active" and w.worker_type == "employee" and not any(x.manager == w.index for x in org)
    ]
    hired = org.hire(org.workers[1].employee_id, given_name="Ada")
    future = org.hire(org.workers[1].employee_id, given_name="Future", hire_date=today + timedelta(days=10))
    gone = org.terminate(leaves[0].employee_id)
    moved = org.move(leaves[1].employee_id, org.workers[2].employee_id)
    converted = org.convert(next(w for w in org if w.worker_type == "contingent").employee_id)
    after = org.clock()
    changed = {hired.wid, future.wid, gone.wid, moved.wid, converted.wid, converted.former_wids[-1]}

    doc = get_workers(run, criteria=window(Updated_From=before, Updated_Through=after))
    assert set(wids(doc)) == changed
    assert doc.findtext(".//wd:Response_Results/wd:Total_Results", namespaces=NS) == str(len(changed))
    # nothing is logged after the window
    assert wids(get_workers(run, criteria=window(Updated_From=after + timedelta(seconds=1)))) == []
    # effective-dated window: today's changes, not the hire effective in ten days...
    doc = get_workers(
        run,
        criteria=window(
            Effective_From=datetime.combine(today, datetime.min.time(), UTC), Effective_Through=after
        ),
    )
    assert set(wids(doc)) == changed - {future.wid}
    # ...which shows up once its effective date is in the window
    on_hire = datetime.combine(future.hire_date, datetime.min.time(), UTC)
    assert wids(get_workers(run, criteria=window(Effective_From=on_hire, Effective_Through=on_hire))) == [
        future.wid
    ]
    # the future-dated hire is not yet active today; re-queried by WID as of its hire date, it is
    pre = worker_by_id(
        get_workers(
            run, references=f"<wd:Request_References>{ref('WID', future.wid)}</wd:Request_References>"
        )
    )[future.wid]
    assert text(pre, ".//wd:Worker_Status_Data/wd:Active/text()") == "0"
    assert text(pre, ".//wd:Worker_Status_Data/wd:Hire_Date/text()")[:10] == future.hire_date.isoformat()
    hired_doc = get_workers(
        run,
        references=f"<wd:Request_References>{ref('WID', future.wid)}</wd:Request_References>",
        effective=future.hire_date.isoformat(),
    )
    assert text(worker_by_id(hired_doc)[future.wid], ".//wd:Worker_Status_Data/wd:Active/text()") == "1"
    # a termination is effective on its date: as of yesterday the worker was still active
    yesterday = get_workers(
        run,
        references=f"<wd:Request_References>{ref('WID', gone.wid)}</wd:Request_References>",
        effective=(today - timedelta(days=1)).isoformat(),
    )
    assert text(worker_by_id(yesterday)[gone.wid], ".//wd:Worker_Status_Data/wd:Active/text()") == "1"


def test_as_of_entry_datetime_keeps_pages_consistent(start_emulator: Start) -> None:
    org = SandboxOrg(250, seed=6)
    run = start_emulator("workday", org=org)
    first = get_workers(run, count=100)
    entry = first.findtext(".//wd:Response_Filter/wd:As_Of_Entry_DateTime", namespaces=NS)
    assert entry and first.findtext(".//wd:Total_Results", namespaces=NS) == "250"
    victim = org.workers[180]
    old_title = victim.title
    org.rename(victim.employee_id, title="Renamed mid-run")
    org.hire(org.workers[0].employee_id, given_name="Late")
    pages = [first] + [get_workers(run, count=100, page=p, entry=entry) for p in (2, 3)]
    ids = [w for doc in pages for w in wids(doc)]
    assert len(ids) == len(set(ids)) == 250
    assert all(doc.findtext(".//wd:Total_Results", namespaces=NS) == "250" for doc in pages)
    snap = {k: v for doc in pages for k, v in worker_by_id(doc).items()}[victim.wid]
    assert text(snap, ".//wd:Position_Data/wd:Business_Title/text()") == old_title
    live = get_workers(run, count=100, page=2)
    assert live.findtext(".//wd:Total_Results", namespaces=NS) == "251"
    assert (
        text(worker_by_id(live)[victim.wid], ".//wd:Position_Data/wd:Business_Title/text()")
        == "Renamed mid-run"
    )
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = post(
        run,
        f"<wd:Get_Workers_Request><wd:Response_Filter><wd:As_Of_Entry_DateTime>{future}"
        "</wd:As_Of_Entry_DateTime></wd:Response_Filter></wd:Get_Workers_Request>",
    )
    assert fault_of(r)[0] == "SOAP-ENV:Client.validationError"


def test_request_references_and_exclude_flags(start_emulator: Start) -> None:
    org = SandboxOrg(200, seed=8)
    run = start_emulator("workday", org=org)
    employee = next(w for w in org if w.worker_type == "employee" and w.index > 0)
    contractor = next(w for w in org if w.worker_type == "contingent")
    refs = ref("WID", employee.wid) + ref("Contingent_Worker_ID", contractor.employee_id)
    doc = get_workers(run, references=f"<wd:Request_References>{refs}</wd:Request_References>")
    assert wids(doc) == [employee.wid, contractor.wid]
    doc = get_workers(
        run,
        references=f"<wd:Request_References>{ref('Employee_ID', employee.employee_id)}"
        "</wd:Request_References>",
    )
    assert wids(doc) == [employee.wid]
    # a contractor's number is not an Employee_ID: a validation fault, or skipped when asked
    r = post(
        run,
        f"<wd:Get_Workers_Request><wd:Request_References>{ref('Employee_ID', contractor.employee_id)}"
        "</wd:Request_References></wd:Get_Workers_Request>",
    )
    code, message, xpath = fault_of(r)
    assert code == "SOAP-ENV:Client.validationError" and contractor.employee_id in message
    assert xpath == "/wd:Get_Workers_Request[1]/wd:Request_References[1]/wd:Worker_Reference[1]/wd:ID[1]"
    skip = get_workers(
        run,
        references='<wd:Request_References wd:Skip_Non_Existing_Instances="true">'
        f"{ref('Employee_ID', contractor.employee_id)}{refs}</wd:Request_References>",
    )
    assert wids(skip) == [employee.wid, contractor.wid]

    counts = {kind: sum(1 for w in org if w.worker_type == kind) for kind in ("employee", "contingent")}
    terminated = sum(1 for w in org if w.status == "terminated")
    total = int(get_workers(run, count=1).findtext(".//wd:Total_Results", namespaces=NS))
    assert total == len(org)

    def total_with(flag: str) -> int:
        doc = get_workers(run, count=1, criteria=f"<wd:{flag}>true</wd:{flag}>")
        return int(doc.findtext(".//wd:Total_Results", namespaces=NS))

    assert total_with("Exclude_Inactive_Workers") == len(org) - terminated
    assert total_with("Exclude_Employees") == counts["contingent"]
    assert total_with("Exclude_Contingent_Workers") == counts["employee"]


def test_response_group_count_and_paging_rules(start_emulator: Start) -> None:
    org = SandboxOrg(50, seed=9)
    run = start_emulator("workday", org=org)
    only_refs = get_workers(
        run, group="<wd:Response_Group><wd:Include_Reference>1</wd:Include_Reference></wd:Response_Group>"
    )
    assert len(wids(only_refs)) == 50
    assert not only_refs.xpath(
        "//wd:Personal_Data|//wd:Employment_Data|//wd:Organization_Data", namespaces=NS
    )
    default = get_workers(run, group="")
    assert default.xpath("//wd:Personal_Data", namespaces=NS) and default.xpath(
        "//wd:Organization_Data", namespaces=NS
    )
    assert not default.xpath("//wd:Management_Chain_Data", namespaces=NS)
    no_cc = get_workers(
        run,
        group="<wd:Response_Group><wd:Include_Organizations>1</wd:Include_Organizations>"
        "<wd:Exclude_Cost_Centers>1</wd:Exclude_Cost_Centers></wd:Response_Group>",
    )
    types = set(
        no_cc.xpath(
            "//wd:Organization_Type_Reference/wd:ID[@wd:type='Organization_Type_ID']/text()", namespaces=NS
        )
    )
    assert "COST_CENTER" not in types and "SUPERVISORY" in types
    past = get_workers(run, page=3, count=25)
    assert wids(past) == [] and past.findtext(".//wd:Page_Results", namespaces=NS) == "0"
    r = post(
        run,
        "<wd:Get_Workers_Request><wd:Response_Group><wd:Include_Nothing>1</wd:Include_Nothing>"
        "</wd:Response_Group></wd:Get_Workers_Request>",
    )
    assert fault_of(r)[2] == "/wd:Get_Workers_Request[1]/wd:Response_Group[1]/wd:Include_Nothing[1]"
    r = post(
        run,
        "<wd:Get_Workers_Request><wd:Response_Filter><wd:Count>5</wd:Count><wd:Page>1</wd:Page>"
        "</wd:Response_Filter></wd:Get_Workers_Request>",
    )
    assert "out of order" in fault_of(r)[1]


# ---- REST ----
def rest_session(run: RunningEmulator) -> requests.Session:
    c = run.emulator.connection("rest")  # type: ignore[call-arg]
    token = requests.post(
        f"{run.url}/ccx/oauth2/sandbox/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "refresh_token": c["refresh_token"],
            "client_id": c["client_id"],
            "client_secret": c["client_secret"],
        },
    )
    assert token.status_code == 200 and token.json()["token_type"] == "Bearer"
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return s


def test_rest_paging_limits_and_oauth(start_emulator: Start) -> None:
    org = SandboxOrg(130, seed=3)
    run = start_emulator("workday", org=org)
    c = run.emulator.connection("rest")  # type: ignore[call-arg]
    assert set(c) >= {"client_id", "client_secret", "refresh_token", "base_url", "tenant"}
    bad = requests.post(
        f"{run.url}/ccx/oauth2/sandbox/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "refresh_token": c["refresh_token"],
            "client_id": c["client_id"],
            "client_secret": "wrong",
        },
    )
    assert (bad.status_code, bad.json()) == (401, {"error": "invalid_client"})
    base = f"{run.url}/ccx/api/v1/sandbox"
    assert requests.get(f"{base}/workers", timeout=10).status_code == 401
    s = rest_session(run)
    first = s.get(f"{base}/workers", timeout=10).json()
    active = [w for w in org if w.status == "active"]
    assert first["total"] == len(active) and len(first["data"]) == 20
    assert set(first["data"][0]) == {
        "id",
        "descriptor",
        "href",
        "businessTitle",
        "primaryWorkEmail",
        "isManager",
        "primarySupervisoryOrganization",
    }
    too_big = s.get(f"{base}/workers", params={"limit": 101}, timeout=10)
    assert too_big.status_code == 400 and "limit" in too_big.json()["error"]
    seen, offset = [], 0
    while True:
        page = s.get(f"{base}/workers", params={"limit": 100, "offset": offset}, timeout=10).json()["data"]
        seen += page
        offset += len(page)
        if len(page) < 100:
            break
    assert {w["id"] for w in seen} == {w.wid for w in active}
    # manager resolution: worker -> primarySupervisoryOrganization -> its manager
    by_wid = {w.wid: w for w in org}
    orgs: dict[str, Any] = {}
    for item in seen:
        org_id = item["primarySupervisoryOrganization"]["id"]
        if org_id not in orgs:
            orgs[org_id] = s.get(f"{base}/supervisoryOrganizations/{org_id}", timeout=10).json()
        manager = orgs[org_id]["manager"]["id"]
        w = by_wid[item["id"]]
        expected = org.manager_of(w)
        assert (None if manager == w.wid else manager) == (expected.wid if expected else None)
        assert item["isManager"] == any(x.manager == w.index for x in org if x.index != w.index)
    top = orgs[next(w for w in seen if w["id"] == org.workers[0].wid)["primarySupervisoryOrganization"]["id"]]
    chart = s.get(f"{base}/supervisoryOrganizations/{top['id']}/orgChart", timeout=10).json()["data"][0]
    assert chart["superiorOrganization"] is None and chart["subordinates"]
    members = s.get(f"{base}/supervisoryOrganizations/{top['id']}/workers", params={"limit": 100}, timeout=10)
    assert org.workers[0].wid in {w["id"] for w in members.json()["data"]}
    listed = s.get(f"{base}/supervisoryOrganizations", params={"limit": 100}, timeout=10).json()
    assert listed["total"] == len({m.manager for m in org if m.manager is not None} | {0})


def test_rest_token_expiry(start_emulator: Start) -> None:
    import time

    run = start_emulator("workday", org=SandboxOrg(10, seed=3), faults="token_ttl=0.2")
    s = rest_session(run)
    assert s.get(f"{run.url}/ccx/api/v1/sandbox/workers", timeout=10).status_code == 200
    time.sleep(0.3)
    expired = s.get(f"{run.url}/ccx/api/v1/sandbox/workers", timeout=10)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]


# ---- RaaS ----
def test_raas_aliases_prompts_and_auth(start_emulator: Start) -> None:
    org = SandboxOrg(300, seed=12)
    future = next(w for w in org if w.status == "pre_hire")
    dotted = next(w for w in org if w.dotted)
    run = start_emulator(
        "workday", org=org, raas_aliases={"Manager_ID": "Manager_Employee_ID", "Email": None}
    )
    c = run.emulator.connection("raas")  # type: ignore[call-arg]
    url = f"{run.url}/ccx/service/customreport2/sandbox/{c['report_owner']}/{c['report_name']}"
    auth = (c["username"], c["password"])
    rows = requests.get(url, params={"format": "json"}, auth=auth, timeout=10).json()["Report_Entry"]
    assert len(rows) == len(org)
    by_id = {r["Employee_ID"]: r for r in rows}
    ceo, someone = by_id[org.workers[0].employee_id], by_id[org.workers[5].employee_id]
    assert "Manager_Employee_ID" not in ceo and "Email" not in someone and "Manager_ID" not in someone
    assert someone["Manager_Employee_ID"] == org.employee_id(org.workers[5].manager or 0)
    assert by_id[dotted.employee_id]["Additional_Managers"] == [org.employee_id(d) for d in dotted.dotted]
    assert by_id[future.employee_id]["Active"] == "0"
    on_hire = requests.get(
        url,
        params={"format": "json", "Effective_as_of_Date": future.hire_date.isoformat()},
        auth=auth,
        timeout=10,
    ).json()["Report_Entry"]
    assert next(r for r in on_hire if r["Employee_ID"] == future.employee_id)["Active"] == "1"
    assert requests.get(url, params={"format": "json", "Nope": "1"}, auth=auth, timeout=10).status_code == 400
    assert (
        requests.get(url, params={"format": "json"}, auth=(c["username"], "x"), timeout=10).status_code == 401
    )
    bearer = rest_session(run).get(url, params={"format": "json"}, timeout=10)
    assert bearer.status_code == 200
    basic = base64.b64encode(f"isu_okrsync:{c['password']}".encode()).decode()
    plain_user = requests.get(
        url, params={"format": "json"}, headers={"Authorization": f"Basic {basic}"}, timeout=10
    )
    assert plain_user.status_code == 200


# ---- Manage_Goals ----
# The shape is Workday's Performance_Management schema (proxy classes generated from its WSDL,
# GitHub matteofabbri/Grimoire Workday.WebServices/Workday.PerformanceManagement/).
def goal_data(worker_wid: str, details: str) -> str:
    return (
        f'<wd:Manage_Goals_Data><wd:Worker_Reference><wd:ID wd:type="WID">{worker_wid}</wd:ID>'
        f"</wd:Worker_Reference>{details}</wd:Manage_Goals_Data>"
    )


def goal_request(worker_wid: str, details: str, add_only: bool = False, extra: str = "") -> str:
    flag = ' wd:Add_Only="true"' if add_only else ""  # an attribute, never an element
    return (
        f'<wd:Manage_Goals_Request wd:version="v45.0"{flag}>{goal_data(worker_wid, details)}{extra}'
        "</wd:Manage_Goals_Request>"
    )


MILESTONE = (
    "<wd:Worker_Goal_Milestone_Detail_Data><wd:Goal_Milestone_Reference_ID>KR-1</wd:Goal_Milestone_Reference_ID>"
    "<wd:Goal_Milestone_Name>KR 1</wd:Goal_Milestone_Name>"
    "<wd:Goal_Milestone_Due_Date>2030-05-31</wd:Goal_Milestone_Due_Date>"
    '<wd:Goal_Milestone_Status_Reference><wd:ID wd:type="Component_Completion_ID">IN_PROGRESS</wd:ID>'
    "</wd:Goal_Milestone_Status_Reference></wd:Worker_Goal_Milestone_Detail_Data>"
)


def test_manage_goals_is_idempotent(start_emulator: Start) -> None:
    org = SandboxOrg(20, seed=2)
    run = start_emulator("workday", org=org)
    w = org.workers[3]

    def detail(name: str, ref_id: str | None = None) -> str:
        rid = f"<wd:Goal_Reference_ID>{ref_id}</wd:Goal_Reference_ID>" if ref_id else ""
        return (
            f"<wd:Worker_Goal_Detail_Data>{rid}<wd:Name>{name}</wd:Name><wd:Due_Date>2030-06-30</wd:Due_Date>"
            f"{MILESTONE}</wd:Worker_Goal_Detail_Data>"
        )

    def goals() -> list[dict[str, Any]]:
        return list(
            requests.get(
                f"{run.url}/_sandbox/workday/goals", params={"worker": w.employee_id}, timeout=10
            ).json()["goals"]
        )

    r = post(
        run,
        goal_request(w.wid, detail("Ship v1", "OKR-7") + detail("Ship v2", "OKR-8")),
        service="Performance_Management",
    )
    assert r.status_code == 200, r.text
    answer = etree.fromstring(r.content).find(".//wd:Manage_Goals_Response", NS)
    assert answer is not None
    # one event for the request, then one Worker_Goal_Detail_Reference (the goal WID) per goal, in order
    assert [etree.QName(c).localname for c in answer] == [
        "Worker_Goal_Event_Reference",
        "Worker_Goal_Detail_Reference",
        "Worker_Goal_Detail_Reference",
    ]
    assert answer[0].findtext("wd:ID", namespaces=NS)
    wids = {g["goal_reference_id"]: g["wid"] for g in goals()}
    assert [c.findtext("wd:ID[@wd:type='WID']", namespaces=NS) for c in answer[1:]] == [
        wids["OKR-7"],
        wids["OKR-8"],
    ]
    post(run, goal_request(w.wid, detail("Ship v1.1", "OKR-7")), service="Performance_Management")
    assert sorted((g["goal_reference_id"], g["name"]) for g in goals()) == [
        ("OKR-7", "Ship v1.1"),
        ("OKR-8", "Ship v2"),
    ]
    assert goals()[0]["milestones"] == [
        {
            "reference_id": "KR-1",
            "name": "KR 1",
            "due_date": "2030-05-31",
            "status": {"type": "Component_Completion_ID", "id": "IN_PROGRESS", "descriptor": ""},
        }
    ]
    # without ids a same-named goal is updated; Add_Only always adds
    post(run, goal_request(w.wid, detail("Hire")), service="Performance_Management")
    post(run, goal_request(w.wid, detail("Hire")), service="Performance_Management")
    assert sorted(g["name"] for g in goals()) == ["Hire", "Ship v1.1", "Ship v2"]
    post(run, goal_request(w.wid, detail("Hire"), add_only=True), service="Performance_Management")
    assert sorted(g["name"] for g in goals()) == ["Hire", "Hire", "Ship v1.1", "Ship v2"]
    # field order is the schema's; the same Goal_Reference_ID cannot move to another worker
    swapped = (
        "<wd:Worker_Goal_Detail_Data><wd:Name>x</wd:Name><wd:Goal_Reference_ID>y</wd:Goal_Reference_ID>"
        "</wd:Worker_Goal_Detail_Data>"
    )
    assert (
        "out of order"
        in fault_of(post(run, goal_request(w.wid, swapped), service="Performance_Management"))[1]
    )
    other = post(
        run, goal_request(org.workers[4].wid, detail("Steal", "OKR-7")), service="Performance_Management"
    )
    assert fault_of(other)[0] == "SOAP-ENV:Client.validationError"


def test_manage_goals_refuses_what_workday_refuses(start_emulator: Start) -> None:
    org = SandboxOrg(20, seed=2)
    run = start_emulator("workday", org=org)
    a, b = org.workers[3].wid, org.workers[4].wid
    ok = "<wd:Worker_Goal_Detail_Data><wd:Goal_Reference_ID>G-1</wd:Goal_Reference_ID><wd:Name>Ship</wd:Name>"

    def refused(body: str) -> tuple[str, str, str | None]:
        r = post(run, body, service="Performance_Management")
        assert r.status_code == 500, r.text
        code, message, xpath = fault_of(r)
        assert code == "SOAP-ENV:Client.validationError"
        return code, message, xpath

    # a second Manage_Goals_Data (a second worker) in one request
    _, message, xpath = refused(
        goal_request(
            a, ok + "</wd:Worker_Goal_Detail_Data>", extra=goal_data(b, ok + "</wd:Worker_Goal_Detail_Data>")
        )
    )
    assert "Manage_Goals_Data" in message and xpath == "/wd:Manage_Goals_Request[1]/wd:Manage_Goals_Data[2]"
    # milestone children other than Goal_Milestone_*: the fault names the element
    for wrong in ("Name", "Description", "Due_Date"):
        tag = "wd:Worker_Goal_Milestone_Detail_Data"
        milestone = f"<{tag}><wd:{wrong}>x</wd:{wrong}></{tag}>"
        _, message, xpath = refused(goal_request(a, f"{ok}{milestone}</wd:Worker_Goal_Detail_Data>"))
        assert f"'{wrong}'" in message
        assert xpath and xpath.endswith(f"/wd:Worker_Goal_Milestone_Detail_Data[1]/wd:{wrong}[1]")
    # Add_Only is an attribute only
    _, message, xpath = refused(
        goal_request(a, ok + "</wd:Worker_Goal_Detail_Data>").replace(
            "<wd:Manage_Goals_Data>", "<wd:Add_Only>true</wd:Add_Only><wd:Manage_Goals_Data>", 1
        )
    )
    assert "'Add_Only'" in message and xpath == "/wd:Manage_Goals_Request[1]/wd:Add_Only[1]"
    # Status_Reference is a Component_Completion reference: WID or Component_Completion_ID
    status = '<wd:Status_Reference><wd:ID wd:type="Goal_Status_ID">DONE</wd:ID></wd:Status_Reference>'
    _, message, xpath = refused(goal_request(a, f"{ok}{status}</wd:Worker_Goal_Detail_Data>"))
    assert (
        "Goal_Status_ID" in message and xpath and xpath.endswith("/wd:Status_Reference[1]/wd:ID[1]/@wd:type")
    )
    # nothing of the refused requests was stored; the right shape is accepted
    assert requests.get(f"{run.url}/_sandbox/workday/goals", timeout=10).json()["goals"] == []
    good = status.replace("Goal_Status_ID", "Component_Completion_ID")
    r = post(
        run,
        goal_request(a, f"{ok}{good}{MILESTONE}</wd:Worker_Goal_Detail_Data>"),
        service="Performance_Management",
    )
    assert r.status_code == 200, r.text


def test_connection_settings(start_emulator: Start) -> None:
    run = start_emulator("workday", org=SandboxOrg(5, seed=1), tenant="acme", username="isu@acme")
    soap = run.connection()
    assert soap == {
        "type": "workday",
        "api": "soap",
        "base_url": run.url,
        "tenant": "acme",
        "username": "isu@acme",
        "password": soap["password"],
    }
    raas = run.emulator.connection("raas")  # type: ignore[call-arg]
    assert {"report_owner", "report_name"} <= set(raas)
    r = post(run, "<wd:Get_Workers_Request/>")  # the helper posts to the default tenant
    assert fault_of(r)[0] == "SOAP-ENV:Client.authenticationError"
