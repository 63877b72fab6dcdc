"""SOAP plumbing (safe parsing, WS-Security) and ``Get_Workers``: criteria, as-of moments, paging.

Every request body is hostile until proven otherwise: DTDs and entity declarations are refused
before any parser sees them, and the parser itself never resolves entities, loads DTDs or touches
the network. Validation follows the WSDL's sequences (unknown or out-of-order elements are
``Client.validationError`` faults with the offending Xpath, as Workday answers).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from lxml import etree

from okrsync.sandbox.workday.render import (
    WD_NS,
    Renderer,
    Shape,
    authentication_fault,
    esc,
    processing_fault,
    validation_fault,
)
from okrsync.sandbox.workday.state import CONTINGENT_ID, EMPLOYEE_ID, History, Record, State

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
USERNAME_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
TEXT_TYPE = USERNAME_PROFILE + "#PasswordText"
W = "{" + WD_NS + "}"
MAX_COUNT = 999
DEFAULT_COUNT = 100
_HOSTILE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_VERSION = re.compile(r"v\d{1,3}(\.\d{1,2})?\Z")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2})?\Z")
_local = threading.local()


class SoapError(Exception):
    """A fault to answer with (HTTP 500 unless told otherwise)."""

    def __init__(self, body: bytes, status: int = 500) -> None:
        super().__init__(body[:200])
        self.body = body
        self.status = status


def invalid(message: str, xpath: str, detail: str | None = None) -> SoapError:
    return SoapError(validation_fault(message, detail or message, xpath))


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:  # lxml parsers are not shared between threads
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        _local.parser = parser
    return parser


def parse_envelope(body: bytes) -> tuple[Any, Any]:
    """(Header element or None, the Body's payload element) of a SOAP 1.1 envelope, parsed safely."""
    if not body.strip():
        raise invalid("The request has no body.", "/")
    if _HOSTILE.search(body):
        raise invalid(
            "DTDs and entity declarations are not allowed.",
            "/",
            "The request contains a DOCTYPE or ENTITY declaration; it was not parsed.",
        )
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise invalid("The request is not well-formed XML.", "/", str(exc)) from None
    if root.getroottree().docinfo.doctype:
        raise invalid("DTDs are not allowed.", "/")
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise invalid("The request is not a SOAP 1.1 envelope.", "/", f"root element {root.tag}")
    header = root.find(f"{{{SOAP_NS}}}Header")
    soap_body = root.find(f"{{{SOAP_NS}}}Body")
    payload = None if soap_body is None else next((c for c in soap_body if isinstance(c.tag, str)), None)
    if payload is None:
        raise invalid("The SOAP Body is empty.", "/env:Envelope/env:Body")
    return header, payload


def check_username_token(header: Any, check: Callable[[str, str], bool]) -> None:
    """WS-Security UsernameToken with a PasswordText password, or an authentication fault."""
    token = None if header is None else header.find(f"{{{WSSE_NS}}}Security/{{{WSSE_NS}}}UsernameToken")
    if token is None:
        raise SoapError(authentication_fault("missing WS-Security UsernameToken"))
    username = token.findtext(f"{{{WSSE_NS}}}Username") or ""
    password_el = token.find(f"{{{WSSE_NS}}}Password")
    if password_el is None:
        raise SoapError(authentication_fault("missing password"))
    kind = password_el.get("Type", TEXT_TYPE)
    if kind != TEXT_TYPE:
        raise SoapError(authentication_fault("only PasswordText passwords are accepted"))
    if not check(username.strip(), password_el.text or ""):
        raise SoapError(authentication_fault())


def attr(el: Any, name: str) -> str | None:
    value = el.get(W + name)
    if value is None:
        value = el.get(name)
    return None if value is None else str(value)


def local(el: Any) -> str:
    return str(etree.QName(el).localname)


def children(el: Any, allowed: tuple[str, ...], xpath: str) -> dict[str, list[Any]]:
    """Child elements by name, refusing unknown, foreign or out-of-order ones (schema sequence)."""
    out: dict[str, list[Any]] = {}
    position = 0
    counts: dict[str, int] = {}
    for child in el:
        if not isinstance(child.tag, str):
            continue
        name = local(child)
        counts[name] = counts.get(name, 0) + 1
        here = f"{xpath}/wd:{name}[{counts[name]}]"
        if etree.QName(child).namespace != WD_NS or name not in allowed:
            raise invalid(
                f"Element '{name}' is not valid here.", here, f"Expected one of: {', '.join(allowed)}"
            )
        k = allowed.index(name)
        if k < position:
            raise invalid(
                f"Element '{name}' is out of order.",
                here,
                f"Elements must follow the order: {', '.join(allowed)}",
            )
        position = k
        out.setdefault(name, []).append(child)
    return out


def boolean(el: Any, xpath: str) -> bool:
    text = (el.text or "").strip().lower()
    if text in {"1", "true"}:
        return True
    if text in {"0", "false"}:
        return False
    raise invalid(f"'{el.text}' is not a valid boolean.", xpath)


def integer(el: Any, xpath: str) -> int:
    text = (el.text or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise invalid(f"'{text}' is not a valid number.", xpath) from None
    if value != int(value):
        raise invalid(f"'{text}' is not a whole number.", xpath)
    return int(value)


def moment(el: Any, xpath: str) -> datetime:
    """An xsd:dateTime; one without an offset is taken as UTC (the sandbox tenant's zone)."""
    text = (el.text or "").strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        m = _DATE.match(text)
        if not m:
            raise invalid(f"'{text}' is not a valid dateTime.", xpath) from None
        value = datetime.fromisoformat(m.group(1))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def day(el: Any, xpath: str) -> date:
    """An xsd:date, with or without an offset (``1960-01-01-07:00``); the offset is ignored."""
    text = (el.text or "").strip()
    m = _DATE.match(text)
    if not m:
        raise invalid(f"'{text}' is not a valid date.", xpath)
    return date.fromisoformat(m.group(1))


def version_of(el: Any, path_version: str | None, default: str) -> str:
    version = attr(el, "version") or path_version or default
    if not _VERSION.match(version):
        raise invalid(f"'{version}' is not a valid version.", f"/wd:{local(el)}[1]/@wd:version")
    return version


# ---- Get_Workers ----
GROUP_FLAGS = (
    "Include_Reference",
    "Include_Personal_Information",
    "Include_Additional_Jobs",
    "Include_Employment_Information",
    "Include_Compensation",
    "Include_Organizations",
    "Exclude_Organization_Support_Role_Data",
    "Exclude_Location_Hierarchies",
    "Exclude_Cost_Centers",
    "Exclude_Cost_Center_Hierarchies",
    "Exclude_Companies",
    "Exclude_Company_Hierarchies",
    "Exclude_Matrix_Organizations",
    "Exclude_Pay_Groups",
    "Exclude_Regions",
    "Exclude_Region_Hierarchies",
    "Exclude_Supervisory_Organizations",
    "Exclude_Teams",
    "Exclude_Custom_Organizations",
    "Include_Roles",
    "Include_Management_Chain_Data",
    "Include_Multiple_Managers_in_Management_Chain_Data",
    "Include_Benefit_Enrollments",
    "Include_Benefit_Eligibility",
    "Include_Related_Persons",
    "Include_Qualifications",
    "Include_Employee_Review",
    "Include_Goals",
    "Include_Development_Items",
    "Include_Skills",
    "Include_Photo",
    "Include_Worker_Documents",
    "Include_Transaction_Log_Data",
    "Include_Subevents_for_Corrected_Transaction",
    "Include_Subevents_for_Rescinded_Transaction",
    "Include_Succession_Profile",
    "Include_Talent_Assessment",
    "Include_Employee_Contract_Data",
    "Include_Collective_Agreement_Data",
    "Include_Probation_Period_Data",
    "Include_Feedback_Received",
    "Include_User_Account",
    "Include_Career",
    "Include_Account_Provisioning",
    "Include_Background_Check_Data",
    "Include_Contingent_Worker_Tax_Authority_Form_Information",
    "Exclude_Funds",
    "Exclude_Fund_Hierarchies",
    "Exclude_Grants",
    "Exclude_Grant_Hierarchies",
    "Exclude_Business_Units",
    "Exclude_Business_Unit_Hierarchies",
    "Exclude_Programs",
    "Exclude_Program_Hierarchies",
    "Exclude_Gifts",
    "Exclude_Gift_Hierarchies",
)
CRITERIA = (
    "Transaction_Log_Criteria_Data",
    "Organization_Reference",
    "Country_Reference",
    "Include_Subordinate_Organizations",
    "Position_Reference",
    "Event_Reference",
    "Benefit_Plan_Reference",
    "Field_And_Parameter_Criteria_Data",
    "National_ID_Criteria_Data",
    "Exclude_Inactive_Workers",
    "Exclude_Employees",
    "Exclude_Contingent_Workers",
)
SUPPORTED_CRITERIA = {
    "Transaction_Log_Criteria_Data",
    "Exclude_Inactive_Workers",
    "Exclude_Employees",
    "Exclude_Contingent_Workers",
}
RANGE = ("Updated_From", "Updated_Through", "Effective_From", "Effective_Through")
DEFAULT_SHAPE = Shape()


@dataclass(frozen=True, slots=True)
class Window:
    """One ``Transaction_Date_Range_Data``: every bound given must hold for one logged change."""

    updated_from: datetime | None = None
    updated_through: datetime | None = None
    effective_from: date | None = None
    effective_through: date | None = None

    def matches(self, events: list[tuple[datetime, date]], entry: datetime) -> bool:
        for when, effective in events:
            if when > entry:
                continue
            if self.updated_from is not None and when < self.updated_from:
                continue
            if self.updated_through is not None and when > self.updated_through:
                continue
            if self.effective_from is not None and effective < self.effective_from:
                continue
            if self.effective_through is not None and effective > self.effective_through:
                continue
            return True
        return False


@dataclass(frozen=True)
class GetWorkers:
    version: str
    references: tuple[tuple[tuple[str, str], ...], ...] | None  # per Worker_Reference: its (type, id)s
    skip_missing: bool
    windows: tuple[Window, ...]
    exclude_inactive: bool
    exclude_employees: bool
    exclude_contingent: bool
    as_of_effective: date | None
    as_of_entry: datetime | None
    page: int
    count: int
    shape: Shape
    echo: str  # Request_References and Request_Criteria, as sent
    group_echo: str


def parse_get_workers(el: Any, path_version: str | None, default_version: str) -> GetWorkers:
    root = "/wd:Get_Workers_Request[1]"
    version = version_of(el, path_version, default_version)
    parts = children(
        el, ("Request_References", "Request_Criteria", "Response_Filter", "Response_Group"), root
    )
    echo: list[str] = []
    references = None
    skip_missing = False
    if "Request_References" in parts:
        refs_el = parts["Request_References"][0]
        xpath = f"{root}/wd:Request_References[1]"
        skip_missing = (attr(refs_el, "Skip_Non_Existing_Instances") or "").lower() in {"1", "true"}
        refs = children(refs_el, ("Worker_Reference",), xpath).get("Worker_Reference", [])
        if not refs:
            raise invalid("Request_References needs at least one Worker_Reference.", xpath)
        collected = []
        for k, ref in enumerate(refs, 1):
            ids = children(ref, ("ID",), f"{xpath}/wd:Worker_Reference[{k}]").get("ID", [])
            collected.append(tuple((attr(i, "type") or "", (i.text or "").strip()) for i in ids))
        references = tuple(collected)
        echo.append(etree.tostring(refs_el, with_tail=False).decode())
    windows: list[Window] = []
    flags = {
        "Exclude_Inactive_Workers": False,
        "Exclude_Employees": False,
        "Exclude_Contingent_Workers": False,
    }
    if "Request_Criteria" in parts:
        crit = parts["Request_Criteria"][0]
        xpath = f"{root}/wd:Request_Criteria[1]"
        found = children(crit, CRITERIA, xpath)
        for name in found:
            if name not in SUPPORTED_CRITERIA:
                raise SoapError(
                    processing_fault(f"Request_Criteria/{name} is not supported by the okrsync sandbox.")
                )
        for k, log in enumerate(found.get("Transaction_Log_Criteria_Data", []), 1):
            windows.append(_window(log, f"{xpath}/wd:Transaction_Log_Criteria_Data[{k}]"))
        for name in flags:
            if name in found:
                flags[name] = boolean(found[name][0], f"{xpath}/wd:{name}[1]")
        echo.append(etree.tostring(crit, with_tail=False).decode())
    as_of_effective = as_of_entry = None
    page, count = 1, DEFAULT_COUNT
    if "Response_Filter" in parts:
        xpath = f"{root}/wd:Response_Filter[1]"
        f = children(
            parts["Response_Filter"][0],
            ("As_Of_Effective_Date", "As_Of_Entry_DateTime", "Page", "Count"),
            xpath,
        )
        if "As_Of_Effective_Date" in f:
            as_of_effective = day(f["As_Of_Effective_Date"][0], f"{xpath}/wd:As_Of_Effective_Date[1]")
        if "As_Of_Entry_DateTime" in f:
            as_of_entry = moment(f["As_Of_Entry_DateTime"][0], f"{xpath}/wd:As_Of_Entry_DateTime[1]")
        if "Page" in f:
            page = max(1, integer(f["Page"][0], f"{xpath}/wd:Page[1]"))
        if "Count" in f:
            count = integer(f["Count"][0], f"{xpath}/wd:Count[1]")
            if not 1 <= count <= MAX_COUNT:
                raise invalid(
                    f"Count must be between 1 and {MAX_COUNT}.",
                    f"{xpath}/wd:Count[1]",
                    f"The value {count} is not valid for Count: the maximum page size is {MAX_COUNT}.",
                )
    shape, group_echo = DEFAULT_SHAPE, ""
    if "Response_Group" in parts:
        group_el = parts["Response_Group"][0]
        xpath = f"{root}/wd:Response_Group[1]"
        g = {
            name: boolean(v[0], f"{xpath}/wd:{name}[1]")
            for name, v in children(group_el, GROUP_FLAGS, xpath).items()
        }
        shape = Shape(
            reference=g.get("Include_Reference", False),
            personal=g.get("Include_Personal_Information", False),
            employment=g.get("Include_Employment_Information", False),
            organizations=g.get("Include_Organizations", False),
            supervisory=not g.get("Exclude_Supervisory_Organizations", False),
            cost_centers=not g.get("Exclude_Cost_Centers", False),
            custom=not g.get("Exclude_Custom_Organizations", False),
            matrix=not g.get("Exclude_Matrix_Organizations", False),
            chain=g.get("Include_Management_Chain_Data", False),
            multiple_managers=g.get("Include_Multiple_Managers_in_Management_Chain_Data", False),
            goals=g.get("Include_Goals", False),
        )
        group_echo = etree.tostring(group_el, with_tail=False).decode()
    return GetWorkers(
        version=version,
        references=references,
        skip_missing=skip_missing,
        windows=tuple(windows),
        exclude_inactive=flags["Exclude_Inactive_Workers"],
        exclude_employees=flags["Exclude_Employees"],
        exclude_contingent=flags["Exclude_Contingent_Workers"],
        as_of_effective=as_of_effective,
        as_of_entry=as_of_entry,
        page=page,
        count=count,
        shape=shape,
        echo="".join(echo),
        group_echo=group_echo,
    )


def _window(log: Any, xpath: str) -> Window:
    found = children(
        log, ("Transaction_Date_Range_Data", "Transaction_Type_References", "Subscriber_Reference"), xpath
    )
    if set(found) - {"Transaction_Date_Range_Data"}:
        raise SoapError(
            processing_fault("Only Transaction_Date_Range_Data is supported by the okrsync sandbox.")
        )
    if "Transaction_Date_Range_Data" not in found:
        return Window()
    xpath += "/wd:Transaction_Date_Range_Data[1]"
    r = children(found["Transaction_Date_Range_Data"][0], RANGE, xpath)
    values = {name: moment(v[0], f"{xpath}/wd:{name}[1]") for name, v in r.items()}
    window = Window(
        values.get("Updated_From"),
        values.get("Updated_Through"),
        # effective bounds compare as dates in the offset the client wrote them in
        values["Effective_From"].date() if "Effective_From" in values else None,
        values["Effective_Through"].date() if "Effective_Through" in values else None,
    )
    if (window.updated_from and window.updated_through and window.updated_from > window.updated_through) or (
        window.effective_from
        and window.effective_through
        and window.effective_from > window.effective_through
    ):
        raise invalid("The date range ends before it starts.", xpath)
    return window


def select(state: State, q: GetWorkers, history: History, entry: datetime) -> list[Record]:
    """The records a request matches, in a stable order.

    Cached per state, so the pages of one query are slices of one list.
    """
    key = (
        q.references,
        q.skip_missing,
        q.windows,
        q.exclude_inactive,
        q.exclude_employees,
        q.exclude_contingent,
        q.as_of_effective,
        entry if q.windows else None,
    )
    with state.results_lock:
        hit = state.results.get(key)
        if hit is not None:
            state.results.move_to_end(key)
            return hit
    candidates = _referenced(state, q) if q.references is not None else state.records
    out = []
    for r in candidates:
        if q.exclude_employees and r.worker_type == "employee":
            continue
        if q.exclude_contingent and r.worker_type == "contingent":
            continue
        if q.exclude_inactive and r.status_as_of(q.as_of_effective) == "terminated":
            continue
        if q.windows:
            events = (
                [history.former_events[r.ref.wid]]
                if r.former and r.ref.wid in history.former_events
                else history.events(r.index)
            )
            if not any(w.matches(events, entry) for w in q.windows):
                continue
        out.append(r)
    with state.results_lock:
        state.results[key] = out
        while len(state.results) > 16:
            state.results.popitem(last=False)
    return out


def _referenced(state: State, q: GetWorkers) -> list[Record]:
    assert q.references is not None
    out: list[Record] = []
    seen: set[str] = set()
    for k, ids in enumerate(q.references, 1):
        record = None
        for j, (kind, value) in enumerate(ids, 1):
            xpath = f"/wd:Get_Workers_Request[1]/wd:Request_References[1]/wd:Worker_Reference[{k}]/wd:ID[{j}]"
            if kind == "WID":
                record = state.by_wid.get(value)
            elif kind in {EMPLOYEE_ID, CONTINGENT_ID}:
                record = state.by_number.get((kind, value))
            else:
                raise invalid(f"Invalid ID type '{kind}' for Worker_Reference.", xpath + "/@wd:type")
            if record is None and not q.skip_missing:
                raise invalid(
                    f"Invalid ID value. '{value}' is not a valid ID value for type = '{kind}'", xpath
                )
            if record is not None:
                break
        if record is not None and record.ref.wid not in seen:
            seen.add(record.ref.wid)
            out.append(record)
    return out


def get_workers_response(
    q: GetWorkers,
    records: list[Record],
    renderer: Renderer,
    *,
    effective: date,
    entry: datetime,
    goals: Callable[[Record], str],
) -> str:
    """The ``Get_Workers_Response`` element for one page of the matched records."""
    total = len(records)
    pages = math.ceil(total / q.count)
    chunk = records[(q.page - 1) * q.count : q.page * q.count]
    shape, as_of = q.shape, q.as_of_effective
    if shape.goals:
        body = "".join(renderer.worker(r, shape, r.status_as_of(as_of), goals(r)) for r in chunk)
    else:
        body = "".join(renderer.worker(r, shape, r.status_as_of(as_of)) for r in chunk)
    response_filter = (
        f"<wd:Response_Filter><wd:As_Of_Effective_Date>{effective.isoformat()}</wd:As_Of_Effective_Date>"
        f"<wd:As_Of_Entry_DateTime>{esc(entry.isoformat())}</wd:As_Of_Entry_DateTime>"
        f"<wd:Page>{q.page}</wd:Page><wd:Count>{q.count}</wd:Count></wd:Response_Filter>"
    )
    results = (
        f"<wd:Response_Results><wd:Total_Results>{total}</wd:Total_Results><wd:Total_Pages>{pages}</wd:Total_Pages>"
        f"<wd:Page_Results>{len(chunk)}</wd:Page_Results><wd:Page>{q.page}</wd:Page></wd:Response_Results>"
    )
    return (
        f'<wd:Get_Workers_Response xmlns:wd="{WD_NS}" wd:version="{esc(q.version)}">'
        f"{q.echo}{response_filter}{q.group_echo}{results}<wd:Response_Data>{body}</wd:Response_Data>"
        "</wd:Get_Workers_Response>"
    )
