"""Streaming, safe parsing of ``Get_Workers`` response pages into flat worker records.

A page (up to 999 workers, a few MB) is parsed with lxml ``iterparse`` restricted to
``wd:Worker`` and ``wd:Response_Results`` elements: each worker is read with a hand-written
descent into the branches okrsync maps (no XPath, no tree of the whole page) and cleared
right after, so memory stays at one page of bytes plus one worker's elements.

Every body is hostile until proven otherwise: a ``DOCTYPE`` or ``ENTITY`` declaration anywhere
is refused before a parser sees it (billion laughs, external entities), and the parser never
resolves entities, loads a DTD or touches the network anyway.

The record keys (what mappings read; see ``okrsync/mappings/workday-soap.toml``):

- reference: ``WID``, ``Employee_ID`` / ``Contingent_Worker_ID``, ``Worker_Type``
  (``employee``/``contingent``, from the reference's id type), ``Descriptor``, ``External_IDs``;
- always: ``Worker_ID``, ``User_ID``;
- personal: ``First_Name``, ``Last_Name``, ``Formatted_Name``, ``Preferred_First_Name``,
  ``Preferred_Last_Name``, ``Email`` (work, primary first), ``Emails`` {usage type: address};
- employment (primary job): ``Business_Title``, ``Position_Title``, ``Position_ID``, ``Location``,
  ``Manager_ID``, ``Manager_WID`` (``Manager_as_of_last_detected_manager_change_Reference``),
  ``Active``, ``Hire_Date``, ``Terminated``, ``Termination_Date``, ``On_Leave``;
- organizations: ``Organizations`` {Organization_Type_ID: {``ID``, ``WID``, ``Code``, ``Name``}};
- management chain: ``Chain_Manager_ID``, ``Chain_Manager_WID`` (nearest level),
  ``Matrix_Manager_IDs`` (dotted lines);
- goals: ``Goals`` (a list of {``WID``, ``Goal_Reference_ID``, ``Name``, ``Description``,
  ``Organization_Goal_ID``, ``Due_Date``, ``Status`` (the Component_Completion_ID), ``Status_WID``,
  ``Completion_Date``}).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lxml import etree

from okrsync.errors import ApiError

W = "{urn:com.workday/bsvc}"
_HOSTILE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_ID, _TYPE, _DESC = W + "ID", W + "type", W + "Descriptor"
_WORKER, _RESULTS = W + "Worker", W + "Response_Results"
_REF, _DATA = W + "Worker_Reference", W + "Worker_Data"
_EMPLOYEE, _CONTINGENT = "Employee_ID", "Contingent_Worker_ID"


def is_hostile(body: bytes) -> bool:
    """True if the body declares a DTD or an entity (never legitimate in a Workday response)."""
    return b"<!" in body and _HOSTILE.search(body) is not None


def refuse_hostile(body: bytes, *, connector: str, operation: str, url: str | None = None) -> None:
    if is_hostile(body):
        raise ApiError(
            "the Workday response contains a DOCTYPE or ENTITY declaration and was refused unparsed "
            "(entity expansion / external entities are never processed)",
            connector=connector,
            operation=operation,
            url=url,
            code="hostile_xml",
        )


@dataclass
class PageInfo:
    """``Response_Results`` of one page (filled while the page is parsed)."""

    total_results: int = 0
    total_pages: int = 0
    page_results: int = 0
    page: int = 0


def _int(text: str | None) -> int:
    try:
        return int(float(text or 0))
    except ValueError:
        return 0


def iter_workers(
    body: bytes, info: PageInfo, *, connector: str = "workday", operation: str = "Get_Workers"
) -> Iterator[dict[str, Any]]:
    """Worker records of one ``Get_Workers`` page, in order; ``info`` is filled on the way."""
    refuse_hostile(body, connector=connector, operation=operation)
    events = etree.iterparse(
        io.BytesIO(body),
        events=("end",),
        tag=(_WORKER, _RESULTS),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for _, el in events:
            if el.tag == _WORKER:
                yield worker_record(el)
            else:
                for c in el:
                    name = c.tag[len(W) :]
                    if name == "Total_Results":
                        info.total_results = _int(c.text)
                    elif name == "Total_Pages":
                        info.total_pages = _int(c.text)
                    elif name == "Page_Results":
                        info.page_results = _int(c.text)
                    elif name == "Page":
                        info.page = _int(c.text)
            el.clear()
            parent = el.getparent()
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise ApiError(
            f"the Workday response is not well-formed XML: {exc}", connector=connector, operation=operation
        ) from None


def _ids(ref: Any) -> dict[str, str]:
    return {i.get(_TYPE): (i.text or "").strip() for i in ref if i.tag == _ID}


def _number(ids: dict[str, str]) -> str | None:
    return ids.get(_EMPLOYEE) or ids.get(_CONTINGENT)


def worker_record(worker: Any) -> dict[str, Any]:
    """One ``wd:Worker`` element → a flat record (see the module docstring for the keys)."""
    rec: dict[str, Any] = {}
    for part in worker:
        tag = part.tag
        if tag == _REF:
            ids = _ids(part)
            rec["WID"] = ids.get("WID")
            if _EMPLOYEE in ids:
                rec[_EMPLOYEE] = ids[_EMPLOYEE]
                rec["Worker_Type"] = "employee"
            elif _CONTINGENT in ids:
                rec[_CONTINGENT] = ids[_CONTINGENT]
                rec["Worker_Type"] = "contingent"
            descriptor = part.get(_DESC)
            if descriptor:
                rec["Descriptor"] = descriptor
        elif tag == _DATA:
            _worker_data(part, rec)
    number = rec.get("Worker_ID") or rec.get(_EMPLOYEE) or rec.get(_CONTINGENT)
    external = {}
    if rec.get("WID"):
        external["workday_wid"] = rec["WID"]
    if number:
        external["employee_id"] = number
    rec["External_IDs"] = external
    return rec


def _worker_data(data: Any, rec: dict[str, Any]) -> None:
    for c in data:
        name = c.tag[len(W) :]
        if name == "Worker_ID" or name == "User_ID":
            rec[name] = (c.text or "").strip()
        elif name == "Personal_Data":
            _personal(c, rec)
        elif name == "Employment_Data":
            _employment(c, rec)
        elif name == "Organization_Data":
            _organizations(c, rec)
        elif name == "Management_Chain_Data":
            _chains(c, rec)
        elif name == "Worker_Goal_Data":
            rec["Goals"] = [_goal(g) for g in c if g.tag == W + "Goal"]


def _personal(personal: Any, rec: dict[str, Any]) -> None:
    for c in personal:
        name = c.tag[len(W) :]
        if name == "Name_Data":
            for kind in c:
                detail = kind.find(W + "Name_Detail_Data")
                if detail is None:
                    continue
                prefix = "Preferred_" if kind.tag == W + "Preferred_Name_Data" else ""
                for n in detail:
                    field = n.tag[len(W) :]
                    if field in ("First_Name", "Last_Name", "Middle_Name"):
                        rec[prefix + field] = (n.text or "").strip()
                formatted = detail.get(W + "Formatted_Name")
                if formatted and (prefix or "Formatted_Name" not in rec):
                    rec["Formatted_Name"] = formatted
        elif name == "Contact_Data":
            emails: dict[str, str] = {}
            for e in c.iter(W + "Email_Address_Data"):
                address = (e.findtext(W + "Email_Address") or "").strip()
                usage = "OTHER"
                for i in e.iter(_ID):
                    if i.get(_TYPE) == "Communication_Usage_Type_ID":
                        usage = (i.text or "").strip() or usage
                        break
                if address and usage not in emails:
                    emails[usage] = address
            if emails:
                rec["Emails"] = emails
                rec["Email"] = emails.get("WORK") or next(iter(emails.values()))


def _employment(employment: Any, rec: dict[str, Any]) -> None:
    job = None
    for c in employment:
        name = c.tag[len(W) :]
        if name == "Worker_Job_Data":
            if job is None or c.get(W + "Primary_Job") in ("1", "true"):
                job = c
        elif name == "Worker_Status_Data":
            for s in c:
                field = s.tag[len(W) :]
                if field in ("Active", "Hire_Date", "Terminated", "Termination_Date", "On_Leave"):
                    rec[field] = (s.text or "").strip()
    position = job.find(W + "Position_Data") if job is not None else None
    if position is None:
        return
    for p in position:
        name = p.tag[len(W) :]
        if name in ("Business_Title", "Position_Title", "Position_ID"):
            rec[name] = (p.text or "").strip()
        elif name == "Business_Site_Summary_Data":
            location = p.findtext(W + "Name")
            if location:
                rec["Location"] = location.strip()
        elif name == "Manager_as_of_last_detected_manager_change_Reference":
            ids = _ids(p)
            rec["Manager_ID"] = _number(ids)
            rec["Manager_WID"] = ids.get("WID")


def _organizations(orgs: Any, rec: dict[str, Any]) -> None:
    out: dict[str, dict[str, str | None]] = {}
    for membership in orgs:
        ref = membership.find(W + "Organization_Reference")
        data = membership.find(W + "Organization_Data")
        if data is None:
            continue
        kind = None
        entry: dict[str, str | None] = {"WID": _ids(ref).get("WID") if ref is not None else None}
        for d in data:
            name = d.tag[len(W) :]
            if name == "Organization_Reference_ID":
                entry["ID"] = (d.text or "").strip()
            elif name == "Organization_Code":
                entry["Code"] = (d.text or "").strip()
            elif name == "Organization_Name":
                entry["Name"] = (d.text or "").strip()
            elif name == "Organization_Type_Reference":
                kind = _ids(d).get("Organization_Type_ID")
        if kind and kind not in out:
            out[kind] = entry
    rec["Organizations"] = out


def _chains(chains: Any, rec: dict[str, Any]) -> None:
    own = rec.get("Organizations", {}).get("SUPERVISORY", {}).get("WID")
    me = rec.get("WID")
    for c in chains:
        levels = [lvl for lvl in c if lvl.tag == W + "Management_Chain_Data"]
        if c.tag == W + "Worker_Supervisory_Management_Chain_Data":
            chosen = None
            for lvl in levels:  # nearest first (Workday's order); the worker's own org wins if known
                org = lvl.find(W + "Organization_Reference")
                manager = _level_manager(lvl, me)
                if manager is None:
                    continue
                if chosen is None:
                    chosen = manager
                if own and org is not None and _ids(org).get("WID") == own:
                    chosen = manager
                    break
            if chosen is not None:
                rec["Chain_Manager_ID"] = _number(chosen)
                rec["Chain_Manager_WID"] = chosen.get("WID")
        elif c.tag == W + "Worker_Matrix_Management_Chain_Data":
            matrix = []
            for lvl in levels:
                manager = _level_manager(lvl, me)
                number = _number(manager) if manager else None
                if number and number not in matrix:
                    matrix.append(number)
            rec["Matrix_Manager_IDs"] = matrix


def _level_manager(level: Any, me: str | None) -> dict[str, str] | None:
    for m in level:
        if m.tag == W + "Manager_Reference":
            ids = _ids(m)
            if ids.get("WID") != me:
                return ids
    return None


def _goal(goal: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ref = goal.find(W + "Goal_Reference")
    if ref is not None:
        ids = _ids(ref)
        out["WID"] = ids.get("WID")
        out["Goal_Reference_ID"] = ids.get("Goal_Reference_ID")
    data = goal.find(W + "Goal_Data")
    for d in data if data is not None else ():
        name = d.tag[len(W) :]
        if name == "Goal":
            out["Name"] = (d.text or "").strip()
        elif name in ("Goal_Reference_ID", "Description", "Due_Date", "Completion_Date"):
            out[name] = (d.text or "").strip()
        elif name == "Organization_Goal_Reference":
            ids = _ids(d)
            out["Organization_Goal_ID"] = ids.get("Organization_Goal_ID") or next(iter(ids.values()), None)
        elif (
            name == "Completion_Status_Reference"
        ):  # Component_Completion: WID and/or Component_Completion_ID
            ids = _ids(d)
            out["Status"] = ids.get("Component_Completion_ID") or next(iter(ids.values()), None)
            out["Status_WID"] = ids.get("WID")
    return out
