"""Worker XML in the ``Get_Workers`` shape of ``Human_Resources.wsdl``, and SOAP envelopes/faults.

Built from string templates (every value escaped) rather than a tree: a page of 999 workers is a
join of cached per-record fragments, keyed by the response-group :class:`Shape` and the record's
status as of the requested effective date. Element order follows the WSDL's sequences exactly
(zeep, built from the real WSDL, parses every page strictly); the module docstring of
:mod:`okrsync.sandbox.workday` lists where each person field lives.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from html import escape

from okrsync.sandbox.workday.state import OrgRef, Record, WorkerRef, digest

WD_NS = "urn:com.workday/bsvc"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'
ENVELOPE_OPEN = f'{XML_DECL}<env:Envelope xmlns:env="{SOAP_NS}"><env:Body>'
ENVELOPE_CLOSE = "</env:Body></env:Envelope>"

COUNTRIES = {
    "London": ("GB", "GBR", "United Kingdom"),
    "New York": ("US", "USA", "United States of America"),
    "Berlin": ("DE", "DEU", "Germany"),
    "Paris": ("FR", "FRA", "France"),
    "Singapore": ("SG", "SGP", "Singapore"),
    "Toronto": ("CA", "CAN", "Canada"),
    "Sydney": ("AU", "AUS", "Australia"),
    "Madrid": ("ES", "ESP", "Spain"),
    "Chicago": ("US", "USA", "United States of America"),
    "Dublin": ("IE", "IRL", "Ireland"),
}


def esc(value: str) -> str:
    if "&" in value or "<" in value or ">" in value or '"' in value or "'" in value:
        return escape(value, quote=True)
    return value


def ref_xml(tag: str, descriptor: str, ids: tuple[tuple[str, str], ...]) -> str:
    """A Workday ``*_Reference`` element: optional ``wd:Descriptor`` and one ``wd:ID`` per id type."""
    attr = f' wd:Descriptor="{esc(descriptor)}"' if descriptor else ""
    body = "".join(f'<wd:ID wd:type="{kind}">{esc(value)}</wd:ID>' for kind, value in ids)
    return f"<wd:{tag}{attr}>{body}</wd:{tag}>"


_ref_cache: dict[tuple[str, object, str], str] = {}


def worker_ref_xml(tag: str, ref: WorkerRef) -> str:
    """Memoised: the same managers and orgs recur in thousands of chains."""
    key = (tag, ref, "")
    text = _ref_cache.get(key)
    if text is None:
        text = ref_xml(tag, ref.descriptor, (("WID", ref.wid), (ref.id_type, ref.number)))
        if len(_ref_cache) > 200_000:
            _ref_cache.clear()
        _ref_cache[key] = text
    return text


def org_ref_xml(tag: str, org: OrgRef, id_type: str = "Organization_Reference_ID") -> str:
    key = (tag, org, id_type)
    text = _ref_cache.get(key)
    if text is None:
        text = ref_xml(tag, org.name, (("WID", org.wid), (id_type, org.ref_id)))
        if len(_ref_cache) > 200_000:
            _ref_cache.clear()
        _ref_cache[key] = text
    return text


@dataclass(frozen=True, slots=True)
class Shape:
    """Which parts of a worker a request's ``Response_Group`` asked for."""

    reference: bool = True
    personal: bool = True
    employment: bool = True
    organizations: bool = True
    supervisory: bool = True
    cost_centers: bool = True
    custom: bool = True
    matrix: bool = True
    chain: bool = False
    multiple_managers: bool = False
    goals: bool = False


class Renderer:
    """Renders records; holds the per-tenant constants (WIDs of countries, types, sites)."""

    def __init__(self, seed: int, *, date_offset: str = "-07:00", chain_order: str = "nearest_first") -> None:
        if chain_order not in {"nearest_first", "top_first"}:
            raise ValueError("chain_order must be 'nearest_first' or 'top_first'")
        self.seed = seed
        self.date_offset = date_offset
        self.chain_order = chain_order
        self._work = ref_xml(
            "Type_Reference",
            "Work",
            (("WID", digest("usage", seed, "WORK")), ("Communication_Usage_Type_ID", "WORK")),
        )
        self._types = {
            "employee": ref_xml(
                "Worker_Type_Reference",
                "Regular",
                (("WID", digest("type", seed, "Regular")), ("Employee_Type_ID", "Regular")),
            ),
            "contingent": ref_xml(
                "Worker_Type_Reference",
                "Contractor",
                (("WID", digest("type", seed, "Contractor")), ("Contingent_Worker_Type_ID", "Contractor")),
            ),
        }
        self._org_types = {
            name: ref_xml(
                "Organization_Type_Reference",
                label,
                (("WID", digest("orgtype", seed, name)), ("Organization_Type_ID", name)),
            )
            for name, label in (
                ("SUPERVISORY", "Supervisory"),
                ("COST_CENTER", "Cost Center"),
                ("DEPARTMENT", "Department"),
                ("DIVISION", "Division"),
                ("MATRIX", "Matrix"),
            )
        }

    # ---- small pieces ----
    def day(self, value: date, index: int) -> str:
        """Dates of every third worker carry the tenant's offset, as Workday sometimes writes them."""
        return value.isoformat() + (self.date_offset if index % 3 == 0 else "")

    @functools.lru_cache(maxsize=256)  # noqa: B019 - a handful of locations per renderer
    def _country(self, location: str) -> str:
        alpha2, alpha3, name = COUNTRIES.get(location, ("US", "USA", "United States of America"))
        return ref_xml(
            "Country_Reference",
            name,
            (
                ("WID", digest("country", self.seed, alpha2)),
                ("ISO_3166-1_Alpha-2_Code", alpha2),
                ("ISO_3166-1_Alpha-3_Code", alpha3),
            ),
        )

    def _membership(self, org_xml: str, ref_id: str, name: str, kind: str, code: str | None = None) -> str:
        code_xml = f"<wd:Organization_Code>{esc(code)}</wd:Organization_Code>" if code else ""
        return (
            f"<wd:Worker_Organization_Data>{org_xml}<wd:Organization_Data>"
            f"<wd:Organization_Reference_ID>{esc(ref_id)}</wd:Organization_Reference_ID>{code_xml}"
            f"<wd:Organization_Name>{esc(name)}</wd:Organization_Name>{self._org_types[kind]}"
            "</wd:Organization_Data></wd:Worker_Organization_Data>"
        )

    # ---- one worker ----
    def worker_open(self, r: Record, shape: Shape, status: str) -> str:
        """``<wd:Worker>`` … up to (not including) the goal data and the closing tags; cached per record."""
        key = (shape, status)
        cached = r.cache.get(key)
        if cached is not None:
            return str(cached)
        parts = ["<wd:Worker>"]
        if shape.reference:
            parts.append(worker_ref_xml("Worker_Reference", r.ref))
        parts.append(
            f"<wd:Worker_Data><wd:Worker_ID>{esc(r.ref.number)}</wd:Worker_ID>"
            f"<wd:User_ID>{esc(r.email)}</wd:User_ID>"
        )
        if shape.personal:
            parts.append(self._personal(r))
        if shape.employment:
            parts.append(self._employment(r, status))
        if shape.organizations:
            parts.append(self._organizations(r, shape))
        if shape.chain:
            parts.append(self._chains(r, shape))
        text = "".join(parts)
        r.cache[key] = text
        return text

    def worker(self, r: Record, shape: Shape, status: str, goals_xml: str = "") -> str:
        return f"{self.worker_open(r, shape, status)}{goals_xml}</wd:Worker_Data></wd:Worker>"

    def _personal(self, r: Record) -> str:
        first, last = esc(r.given_name), esc(r.family_name)
        names = (
            f'<wd:Name_Detail_Data wd:Formatted_Name="{first} {last}" wd:Reporting_Name="{last}, {first}">'
            f"{self._country(r.location)}<wd:First_Name>{first}</wd:First_Name>"
            f"<wd:Last_Name>{last}</wd:Last_Name></wd:Name_Detail_Data>"
        )
        return (
            f"<wd:Personal_Data><wd:Name_Data><wd:Legal_Name_Data>{names}</wd:Legal_Name_Data>"
            f"<wd:Preferred_Name_Data>{names}</wd:Preferred_Name_Data></wd:Name_Data>"
            f"<wd:Contact_Data><wd:Email_Address_Data><wd:Email_Address>{esc(r.email)}</wd:Email_Address>"
            f'<wd:Usage_Data wd:Public="1"><wd:Type_Data wd:Primary="1">{self._work}</wd:Type_Data>'
            "</wd:Usage_Data></wd:Email_Address_Data></wd:Contact_Data></wd:Personal_Data>"
        )

    def _employment(self, r: Record, status: str) -> str:
        i = r.index
        position_id = f"P-{r.ref.number}" + ("" if not r.former else f"-{r.ref.wid[:6]}")
        site = ref_xml(
            "Location_Reference",
            r.location,
            (
                ("WID", digest("location", self.seed, r.location)),
                ("Location_ID", r.location.upper().replace(" ", "_")),
            ),
        )
        manager = (
            worker_ref_xml("Manager_as_of_last_detected_manager_change_Reference", r.manager)
            if r.manager is not None
            else ""
        )
        position = (
            f'<wd:Position_Data wd:Effective_Date="{self.day(r.effective_date, i)}">'
            + ref_xml(
                "Position_Reference",
                f"{position_id} {r.title}",
                (("WID", digest("position", self.seed, position_id)), ("Position_ID", position_id)),
            )
            + f"<wd:Position_ID>{esc(position_id)}</wd:Position_ID>"
            f"<wd:Position_Title>{esc(r.title)}</wd:Position_Title>"
            f"<wd:Business_Title>{esc(r.title)}</wd:Business_Title>"
            f"<wd:Start_Date>{self.day(r.hire_date, i)}</wd:Start_Date>"
            + self._types[r.worker_type]
            + f"<wd:Business_Site_Summary_Data>{site}<wd:Name>{esc(r.location)}</wd:Name>"
            "</wd:Business_Site_Summary_Data>" + manager + "</wd:Position_Data>"
        )
        hired = self.day(r.hire_date, i)
        if status == "active":
            flags = (
                f"<wd:Active>1</wd:Active><wd:Active_Status_Date>{hired}</wd:Active_Status_Date>"
                f"<wd:Hire_Date>{hired}</wd:Hire_Date><wd:Original_Hire_Date>{hired}</wd:Original_Hire_Date>"
                f"<wd:First_Day_of_Work>{hired}</wd:First_Day_of_Work><wd:Terminated>0</wd:Terminated>"
            )
        elif status == "pre_hire":
            flags = (
                f"<wd:Active>0</wd:Active><wd:Hire_Date>{hired}</wd:Hire_Date>"
                f"<wd:Original_Hire_Date>{hired}</wd:Original_Hire_Date>"
                f"<wd:First_Day_of_Work>{hired}</wd:First_Day_of_Work><wd:Terminated>0</wd:Terminated>"
            )
        else:
            ended = self.day(r.termination_date or r.effective_date, i)
            end_contract = (
                f"<wd:End_Employment_Date>{ended}</wd:End_Employment_Date>"
                if r.worker_type == "contingent"
                else ""
            )
            flags = (
                f"<wd:Active>0</wd:Active><wd:Active_Status_Date>{ended}</wd:Active_Status_Date>"
                f"<wd:Hire_Date>{hired}</wd:Hire_Date><wd:Original_Hire_Date>{hired}</wd:Original_Hire_Date>"
                f"{end_contract}<wd:First_Day_of_Work>{hired}</wd:First_Day_of_Work>"
                f"<wd:Terminated>1</wd:Terminated><wd:Termination_Date>{ended}</wd:Termination_Date>"
            )
        return (
            f'<wd:Employment_Data><wd:Worker_Job_Data wd:Primary_Job="1">{position}</wd:Worker_Job_Data>'
            f"<wd:Worker_Status_Data>{flags}</wd:Worker_Status_Data></wd:Employment_Data>"
        )

    def _organizations(self, r: Record, shape: Shape) -> str:
        parts = ["<wd:Organization_Data>"]
        if shape.supervisory:
            parts.append(
                self._membership(
                    org_ref_xml("Organization_Reference", r.sup_org),
                    r.sup_org.ref_id,
                    r.sup_org.name,
                    "SUPERVISORY",
                )
            )
        if shape.cost_centers:
            cc = OrgRef(digest("costcenter", self.seed, r.cost_center), r.cost_center, r.cost_center)
            parts.append(
                self._membership(
                    org_ref_xml("Organization_Reference", cc, "Cost_Center_Reference_ID"),
                    cc.ref_id,
                    cc.name,
                    "COST_CENTER",
                    r.cost_center,
                )
            )
        if shape.custom:
            for kind, value in (("DEPARTMENT", r.department), ("DIVISION", r.division)):
                ref_id = f"{kind[:4]}-{value.upper().replace(' ', '_')}"
                custom = OrgRef(digest(kind.lower(), self.seed, value), ref_id, value)
                parts.append(
                    self._membership(
                        org_ref_xml("Organization_Reference", custom, "Custom_Organization_Reference_ID"),
                        ref_id,
                        value,
                        kind,
                    )
                )
        if shape.matrix:
            for d in r.dotted:
                matrix = self.matrix_org(d)
                parts.append(
                    self._membership(
                        org_ref_xml("Organization_Reference", matrix), matrix.ref_id, matrix.name, "MATRIX"
                    )
                )
        parts.append("</wd:Organization_Data>")
        return "".join(parts)

    def matrix_org(self, manager: WorkerRef) -> OrgRef:
        """Dotted-line managers head matrix organizations (one per matrix manager)."""
        name = f"Matrix ({manager.descriptor or manager.number})"
        return OrgRef(digest("matrix", self.seed, manager.wid), f"MTX-{manager.number}", name)

    def _chains(self, r: Record, shape: Shape) -> str:
        levels = r.chain if self.chain_order == "nearest_first" else tuple(reversed(r.chain))
        sup = "".join(
            f"<wd:Management_Chain_Data>{org_ref_xml('Organization_Reference', o)}"
            f"{worker_ref_xml('Manager_Reference', m)}</wd:Management_Chain_Data>"
            for o, m in levels
        )
        # a worker without managers (the top of the org) has no chain element at all
        parts = ["<wd:Management_Chain_Data>"]
        if sup:
            parts.append(
                f"<wd:Worker_Supervisory_Management_Chain_Data>{sup}</wd:Worker_Supervisory_Management_Chain_Data>"
            )
        if shape.matrix and r.dotted:
            matrix = "".join(
                f"<wd:Management_Chain_Data>{org_ref_xml('Organization_Reference', self.matrix_org(d))}"
                f"{worker_ref_xml('Manager_Reference', d)}</wd:Management_Chain_Data>"
                for d in r.dotted
            )
            parts.append(
                f"<wd:Worker_Matrix_Management_Chain_Data>{matrix}</wd:Worker_Matrix_Management_Chain_Data>"
            )
        if len(parts) == 1:
            return ""
        parts.append("</wd:Management_Chain_Data>")
        return "".join(parts)


# ---- envelopes and faults ----
def envelope(body: str) -> bytes:
    return f"{ENVELOPE_OPEN}{body}{ENVELOPE_CLOSE}".encode()


def fault(code: str, message: str, detail: str = "") -> bytes:
    """A SOAP 1.1 fault the way Workday writes them (``SOAP-ENV:Client.validationError`` etc.)."""
    detail_xml = f"<detail>{detail}</detail>" if detail else ""
    return (
        f'{XML_DECL}<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_NS}" xmlns:wd="{WD_NS}"><SOAP-ENV:Body>'
        f"<SOAP-ENV:Fault><faultcode>SOAP-ENV:{code}</faultcode><faultstring>{esc(message)}</faultstring>"
        f"{detail_xml}</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()


def validation_fault(message: str, detail: str, xpath: str) -> bytes:
    error = (
        f"<wd:Validation_Error><wd:Message>{esc(message)}</wd:Message>"
        f"<wd:Detail_Message>{esc(detail)}</wd:Detail_Message><wd:Xpath>{esc(xpath)}</wd:Xpath>"
        "</wd:Validation_Error>"
    )
    return fault(
        "Client.validationError",
        f"Validation error occurred. {message}",
        f"<wd:Validation_Fault>{error}</wd:Validation_Fault>",
    )


def processing_fault(message: str) -> bytes:
    return fault(
        "Client.processingFault",
        message,
        f"<wd:Processing_Fault><wd:Detail_Message>{esc(message)}</wd:Detail_Message></wd:Processing_Fault>",
    )


def authentication_fault(message: str = "invalid username or password") -> bytes:
    return fault("Client.authenticationError", message)
