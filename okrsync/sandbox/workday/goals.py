"""``Performance_Management`` / ``Manage_Goals``: worker goals (OKRs land here), stored per worker.

No Performance_Management WSDL ships with okrsync. The request shape is the one of the proxy
classes generated from Workday's Performance_Management WSDL (GitHub ``matteofabbri/Grimoire``,
``Workday.WebServices/Workday.PerformanceManagement/``: ``Manage_Goals_RequestType``,
``Manage_Goals_DataType``, ``Worker_Goal_Detail_DataType``, ``Worker_Goal_Milestone_Detail_DataType``,
``Manage_Goals_ResponseType``; their ``XmlElement(Order=…)`` is the ``xsd:sequence``), and it is
checked as strictly as Workday would, each refusal a ``Client.validationError`` naming the Xpath:

- ``Manage_Goals_Request``: ``Business_Process_Parameters``?, then exactly **one**
  ``Manage_Goals_Data`` (one worker per request); ``Add_Only`` and ``version`` are attributes
  (an ``Add_Only`` element is refused);
- ``Manage_Goals_Data``: one ``Worker_Reference``, then 1..n ``Worker_Goal_Detail_Data``;
- ``Worker_Goal_Detail_Data``: Goal_Reference, Goal_Reference_ID, Name, Description,
  Relates_To_Reference*, Goal_Category_Reference*, Organization_Goal_Reference, Goal_Weight,
  Due_Date, Status_Reference, Completion_Date, Goal_Comment_Data*, Worker_Goal_Milestone_Detail_Data*,
  Goal_Amount_Data, Goal_Percent_Data, Goal_Unit_Data, Goal_Archived (* repeating);
- ``Worker_Goal_Milestone_Detail_Data``: Goal_Milestone_Reference, Goal_Milestone_Reference_ID,
  Goal_Milestone_Name, Goal_Milestone_Due_Date, Goal_Milestone_Status_Reference — any other
  child (``Name``, ``Description``, ``Due_Date``, …) is refused;
- ``Status_Reference`` and ``Goal_Milestone_Status_Reference`` are ``Component_Completion``
  references: ID types ``WID`` or ``Component_Completion_ID`` (the enumeration of the shared
  ``Human_Resources.wsdl``); their values are tenant-configured, so any value is accepted.

The answer is ``Manage_Goals_Response`` with one ``Worker_Goal_Event_Reference`` and one
``Worker_Goal_Detail_Reference`` (the goal's WID) per ``Worker_Goal_Detail_Data``, in request
order. Identity, so that a sync can be re-run safely:

- ``Goal_Reference`` (WID or Goal_Reference_ID) names an existing goal: it is updated;
- else ``Goal_Reference_ID``: the goal with that id is updated, or created with it (idempotent);
- else a goal of that worker with the same ``Name`` is updated, unless ``wd:Add_Only="true"``,
  which always adds.

Fields present in the request replace the stored ones (a goal's milestones are replaced as a
list when it carries any); absent ones are kept. Goals are read back through ``Get_Workers``
with ``Response_Group/Include_Goals`` (``Worker_Data/Worker_Goal_Data``: the real
Human_Resources WSDL's ``Goal_Detail_Data`` has no milestones, weight or category) or, with every
stored field including milestones, ``GET /_sandbox/workday/goals``.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from okrsync.sandbox.workday.render import esc, ref_xml
from okrsync.sandbox.workday.soap import (
    SoapError,
    W,
    attr,
    children,
    day,
    invalid,
    local,
)
from okrsync.sandbox.workday.state import CONTINGENT_ID, EMPLOYEE_ID, Record, State

GOAL_FIELDS = (
    "Goal_Reference",
    "Goal_Reference_ID",
    "Name",
    "Description",
    "Relates_To_Reference",
    "Goal_Category_Reference",
    "Organization_Goal_Reference",
    "Goal_Weight",
    "Due_Date",
    "Status_Reference",
    "Completion_Date",
    "Goal_Comment_Data",
    "Worker_Goal_Milestone_Detail_Data",
    "Goal_Amount_Data",
    "Goal_Percent_Data",
    "Goal_Unit_Data",
    "Goal_Archived",
)
MILESTONE_FIELDS = (
    "Goal_Milestone_Reference",
    "Goal_Milestone_Reference_ID",
    "Goal_Milestone_Name",
    "Goal_Milestone_Due_Date",
    "Goal_Milestone_Status_Reference",
)
# Component_CompletionReferenceEnumeration (Human_Resources.wsdl): Status_Reference's ID types
COMPLETION_ID_TYPES = ("WID", "Component_Completion_ID")
_SIMPLE = {"Name": "name", "Description": "description", "Goal_Weight": "weight", "Goal_Archived": "archived"}
_DATES = {"Due_Date": "due_date", "Completion_Date": "completion_date"}
_REFS = {"Organization_Goal_Reference": "organization_goal", "Status_Reference": "status"}
_LISTS = {
    "Relates_To_Reference": "relates_to",
    "Goal_Category_Reference": "categories",
    "Goal_Comment_Data": "comments",
    "Worker_Goal_Milestone_Detail_Data": "milestones",
}
_GROUPS = {"Goal_Amount_Data": "amount", "Goal_Percent_Data": "percent", "Goal_Unit_Data": "unit"}
_BOOLEAN = {"true": True, "1": True, "false": False, "0": False}


@dataclass
class Goal:
    wid: str
    reference_id: str
    worker_wid: str
    worker_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    updated: str = ""
    event_wid: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "wid": self.wid,
            "goal_reference_id": self.reference_id,
            "worker_wid": self.worker_wid,
            "worker_id": self.worker_id,
            "created": self.created,
            "updated": self.updated,
            "event_wid": self.event_wid,
            **self.fields,
        }


def _value(el: Any) -> Any:
    """A generic, JSON-friendly reading of an element: text, first ID of a reference, or a dict."""
    ids = [c for c in el if isinstance(c.tag, str) and local(c) == "ID"]
    if ids:
        return {
            "type": attr(ids[0], "type") or "",
            "id": (ids[0].text or "").strip(),
            "descriptor": attr(el, "Descriptor") or "",
        }
    kids = [c for c in el if isinstance(c.tag, str)]
    if not kids:
        return (el.text or "").strip()
    out: dict[str, Any] = {}
    for c in kids:
        out[local(c)] = _value(c)
    return out


def _completion(el: Any, xpath: str) -> dict[str, Any]:
    """A ``Component_CompletionObjectType`` reference: every ID typed WID or Component_Completion_ID."""
    ids = [c for c in el if isinstance(c.tag, str)]
    for j, i in enumerate(ids, 1):
        if local(i) != "ID":
            raise invalid(f"Element '{local(i)}' is not valid here.", f"{xpath}/wd:{local(i)}[1]")
        kind = attr(i, "type") or ""
        if kind not in COMPLETION_ID_TYPES:
            raise invalid(
                f"Invalid ID type '{kind}' for Component_Completion.",
                f"{xpath}/wd:ID[{j}]/@wd:type",
                f"Component_Completion IDs are typed {' or '.join(COMPLETION_ID_TYPES)}.",
            )
    if not ids:
        raise invalid("The reference has no ID.", xpath)
    return dict(_value(el))


def _milestone(el: Any, xpath: str) -> dict[str, Any]:
    """One ``Worker_Goal_Milestone_Detail_Data``, refusing any child its schema type does not have."""
    found = children(el, MILESTONE_FIELDS, xpath)
    for name, els in found.items():
        if len(els) > 1:
            raise invalid(f"Element '{name}' may appear once.", f"{xpath}/wd:{name}[2]")
    out: dict[str, Any] = {}
    if "Goal_Milestone_Reference" in found:
        out["reference"] = _value(found["Goal_Milestone_Reference"][0])
    if "Goal_Milestone_Reference_ID" in found:
        out["reference_id"] = (found["Goal_Milestone_Reference_ID"][0].text or "").strip()
    if "Goal_Milestone_Name" in found:
        out["name"] = (found["Goal_Milestone_Name"][0].text or "").strip()
    if "Goal_Milestone_Due_Date" in found:
        at = f"{xpath}/wd:Goal_Milestone_Due_Date[1]"
        out["due_date"] = day(found["Goal_Milestone_Due_Date"][0], at).isoformat()
    if "Goal_Milestone_Status_Reference" in found:
        at = f"{xpath}/wd:Goal_Milestone_Status_Reference[1]"
        out["status"] = _completion(found["Goal_Milestone_Status_Reference"][0], at)
    return out


class GoalStore:
    """Goals by WID, with a Goal_Reference_ID index; one lock keeps a Manage_Goals call atomic."""

    def __init__(self) -> None:
        self.goals: dict[str, Goal] = {}
        self.by_reference_id: dict[str, str] = {}
        self.lock = threading.Lock()

    def for_worker(self, worker_wid: str) -> list[Goal]:
        with self.lock:
            return [g for g in self.goals.values() if g.worker_wid == worker_wid]

    def manage(self, request: Any, state: State, version: str) -> str:
        """Apply one ``Manage_Goals_Request``; returns the ``Manage_Goals_Response`` element."""
        root = "/wd:Manage_Goals_Request[1]"
        flag = attr(request, "Add_Only")
        if flag is not None and flag.strip().lower() not in _BOOLEAN:
            raise invalid(f"'{flag}' is not a valid boolean.", f"{root}/@wd:Add_Only")
        add_only = _BOOLEAN.get((flag or "").strip().lower(), False)
        for child in request:
            if isinstance(child.tag, str) and local(child) == "Add_Only":
                raise invalid(
                    "Element 'Add_Only' is not valid here.",
                    f"{root}/wd:Add_Only[1]",
                    'Add_Only is an attribute of Manage_Goals_Request (wd:Add_Only="true"), not an element.',
                )
        parts = children(request, ("Business_Process_Parameters", "Manage_Goals_Data"), root)
        for name, els in parts.items():
            if len(els) > 1:
                raise invalid(
                    f"Element '{name}' may appear once.",
                    f"{root}/wd:{name}[2]",
                    "Manage_Goals_Request holds one Manage_Goals_Data: one worker per request."
                    if name == "Manage_Goals_Data"
                    else None,
                )
        if "Manage_Goals_Data" not in parts:
            raise invalid("Manage_Goals_Data is required.", root)
        worker, goals = self._plan(parts["Manage_Goals_Data"][0], f"{root}/wd:Manage_Goals_Data[1]", state)
        now = datetime.now(UTC).isoformat()
        event = uuid.uuid4().hex
        details = []
        with self.lock:
            for existing_ref, reference_id, values in goals:
                goal = self._apply(worker, existing_ref, reference_id, values, add_only, event, now)
                details.append(
                    ref_xml(
                        "Worker_Goal_Detail_Reference", str(goal.fields.get("name", "")), (("WID", goal.wid),)
                    )
                )
        events = ref_xml(
            "Worker_Goal_Event_Reference", f"Manage Goals: {worker.display_name}", (("WID", event),)
        )
        return (
            f'<wd:Manage_Goals_Response xmlns:wd="urn:com.workday/bsvc" wd:version="{esc(version)}">'
            f"{events}{''.join(details)}</wd:Manage_Goals_Response>"
        )

    def _plan(
        self, data: Any, xpath: str, state: State
    ) -> tuple[Record, list[tuple[str | None, str | None, dict[str, Any]]]]:
        parts = children(data, ("Worker_Reference", "Worker_Goal_Detail_Data"), xpath)
        if "Worker_Reference" not in parts:
            raise invalid("Worker_Reference is required.", xpath)
        if len(parts["Worker_Reference"]) > 1:
            raise invalid(
                "Element 'Worker_Reference' may appear once.",
                f"{xpath}/wd:Worker_Reference[2]",
                "Manage_Goals_Data holds the goals of one worker.",
            )
        if "Worker_Goal_Detail_Data" not in parts:
            raise invalid("Worker_Goal_Detail_Data is required.", xpath)
        worker = None
        for j, i in enumerate(parts["Worker_Reference"][0].iter(W + "ID"), 1):
            kind, value = attr(i, "type") or "", (i.text or "").strip()
            if kind == "WID":
                worker = state.by_wid.get(value)
            elif kind in {EMPLOYEE_ID, CONTINGENT_ID}:
                worker = state.by_number.get((kind, value))
            if worker is None:
                raise invalid(
                    f"Invalid ID value. '{value}' is not a valid ID value for type = '{kind}'",
                    f"{xpath}/wd:Worker_Reference[1]/wd:ID[{j}]",
                )
            break
        if worker is None:
            raise invalid("Worker_Reference has no ID.", f"{xpath}/wd:Worker_Reference[1]")
        goals = []
        for k, detail in enumerate(parts["Worker_Goal_Detail_Data"], 1):
            here = f"{xpath}/wd:Worker_Goal_Detail_Data[{k}]"
            found = children(detail, GOAL_FIELDS, here)
            for name, els in found.items():
                if len(els) > 1 and name not in _LISTS:
                    raise invalid(f"Element '{name}' may appear once.", f"{here}/wd:{name}[2]")
            values: dict[str, Any] = {}
            for name, els in found.items():
                el, at = els[0], f"{here}/wd:{name}[1]"
                if name in _SIMPLE:
                    text = (el.text or "").strip()
                    values[_SIMPLE[name]] = text.lower() in {"1", "true"} if name == "Goal_Archived" else text
                elif name in _DATES:
                    values[_DATES[name]] = day(el, at).isoformat()
                elif name == "Status_Reference":
                    values["status"] = _completion(el, at)
                elif name in _REFS:
                    values[_REFS[name]] = _value(el)
                elif name == "Worker_Goal_Milestone_Detail_Data":
                    values["milestones"] = [
                        _milestone(e, f"{here}/wd:{name}[{m}]") for m, e in enumerate(els, 1)
                    ]
                elif name in _LISTS:
                    values[_LISTS[name]] = [_value(e) for e in els]
                elif name in _GROUPS:
                    values[_GROUPS[name]] = _value(el)
            existing_ref = None
            if "Goal_Reference" in found:
                existing_ref = self._resolve(found["Goal_Reference"][0], f"{here}/wd:Goal_Reference[1]")
            reference_id = (
                (found["Goal_Reference_ID"][0].text or "").strip() if "Goal_Reference_ID" in found else None
            )
            with self.lock:
                known = existing_ref or (self.by_reference_id.get(reference_id) if reference_id else None)
                if known and self.goals[known].worker_wid != worker.ref.wid:
                    raise invalid(
                        "The goal belongs to another worker.",
                        here,
                        f"Goal '{self.goals[known].reference_id}' is assigned to worker "
                        f"{self.goals[known].worker_id}; goals cannot move between workers.",
                    )
            if not known and not values.get("name"):
                raise invalid("Name is required for a new goal.", f"{here}/wd:Name")
            goals.append((existing_ref, reference_id, values))
        return worker, goals

    def _resolve(self, ref: Any, xpath: str) -> str:
        with self.lock:
            for i in ref.iter(W + "ID"):
                kind, value = attr(i, "type") or "", (i.text or "").strip()
                if kind == "WID" and value in self.goals:
                    return value
                if kind == "Goal_Reference_ID" and value in self.by_reference_id:
                    return self.by_reference_id[value]
        raise invalid("Invalid Goal_Reference: no such goal.", xpath)

    def _apply(
        self,
        worker: Record,
        existing_ref: str | None,
        reference_id: str | None,
        values: dict[str, Any],
        add_only: bool,
        event: str,
        now: str,
    ) -> Goal:
        wid = existing_ref or (self.by_reference_id.get(reference_id) if reference_id else None)
        if wid is None and not add_only and not reference_id and values.get("name"):
            wid = next(
                (
                    g.wid
                    for g in self.goals.values()
                    if g.worker_wid == worker.ref.wid and g.fields.get("name") == values["name"]
                ),
                None,
            )
        if wid is None:
            wid = uuid.uuid4().hex
            ref_id = reference_id or f"GOAL-{wid[:12]}"
            self.goals[wid] = Goal(wid, ref_id, worker.ref.wid, worker.ref.number, created=now)
            self.by_reference_id[ref_id] = wid
        goal = self.goals[wid]
        goal.fields.update(values)
        goal.updated = now
        goal.event_wid = event
        return goal

    # ---- reading back ----
    def worker_goal_xml(self, worker_wid: str) -> str:
        """``Worker_Goal_Data`` for Get_Workers (Human_Resources WSDL: Goal_Reference, Goal_Data)."""
        goals = self.for_worker(worker_wid)
        if not goals:
            return ""
        parts = ["<wd:Worker_Goal_Data>"]
        for g in goals:
            f = g.fields
            data = [f"<wd:Goal_Reference_ID>{esc(g.reference_id)}</wd:Goal_Reference_ID>"]
            if f.get("name"):
                data.append(f"<wd:Goal>{esc(str(f['name']))}</wd:Goal>")
            if f.get("description"):
                data.append(f"<wd:Description>{esc(str(f['description']))}</wd:Description>")
            org_goal = f.get("organization_goal")
            if isinstance(org_goal, dict) and org_goal.get("id"):
                data.append(
                    ref_xml(
                        "Organization_Goal_Reference",
                        str(org_goal.get("descriptor", "")),
                        ((str(org_goal.get("type") or "Organization_Goal_ID"), str(org_goal["id"])),),
                    )
                )
            if f.get("due_date"):
                data.append(
                    f"<wd:Due_Date>{date.fromisoformat(str(f['due_date'])).isoformat()}</wd:Due_Date>"
                )
            status = f.get("status")
            if isinstance(status, dict) and status.get("id"):
                data.append(
                    ref_xml(
                        "Completion_Status_Reference",
                        str(status.get("descriptor", "")),
                        ((str(status.get("type") or "Component_Completion_ID"), str(status["id"])),),
                    )
                )
            if f.get("completion_date"):
                data.append(f"<wd:Completion_Date>{esc(str(f['completion_date']))}</wd:Completion_Date>")
            parts.append(
                "<wd:Goal>"
                + ref_xml(
                    "Goal_Reference",
                    str(f.get("name", "")),
                    (("WID", g.wid), ("Goal_Reference_ID", g.reference_id)),
                )
                + f"<wd:Goal_Data>{''.join(data)}</wd:Goal_Data></wd:Goal>"
            )
        parts.append("</wd:Worker_Goal_Data>")
        return "".join(parts)

    def as_json(self, worker_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [g.as_json() for g in self.goals.values() if worker_id is None or g.worker_id == worker_id]


__all__ = ["COMPLETION_ID_TYPES", "GOAL_FIELDS", "MILESTONE_FIELDS", "Goal", "GoalStore", "SoapError"]
