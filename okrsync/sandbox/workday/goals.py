"""``Performance_Management`` / ``Manage_Goals``: worker goals (OKRs land here), stored per worker.

No Performance_Management WSDL ships with okrsync, so the request shape is checked against the
field order gathered in ``api-notes.md`` §3 (``Worker_Goal_Detail_Data``: Goal_Reference,
Goal_Reference_ID, Name, Description, Relates_To_Reference, Goal_Category_Reference,
Organization_Goal_Reference, Goal_Weight, Due_Date, Status_Reference, Completion_Date,
Goal_Comment_Data, Worker_Goal_Milestone_Detail_Data, Goal_Amount_Data, Goal_Percent_Data,
Goal_Unit_Data, Goal_Archived). Identity, so that a sync can be re-run safely:

- ``Goal_Reference`` (WID or Goal_Reference_ID) names an existing goal: it is updated;
- else ``Goal_Reference_ID``: the goal with that id is updated, or created with it (idempotent);
- else a goal of that worker with the same ``Name`` is updated, unless ``Add_Only`` is true
  (an ``Add_Only`` element or attribute on the request), which always adds.

Fields present in the request replace the stored ones; absent ones are kept. Goals are read back
through ``Get_Workers`` with ``Response_Group/Include_Goals`` (``Worker_Data/Worker_Goal_Data``, a
group the real Human_Resources WSDL has) or, with every stored field, ``GET /_sandbox/workday/goals``.
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
_SIMPLE = {"Name": "name", "Description": "description", "Goal_Weight": "weight", "Goal_Archived": "archived"}
_DATES = {"Due_Date": "due_date", "Completion_Date": "completion_date"}
_REFS = {
    "Goal_Category_Reference": "category",
    "Organization_Goal_Reference": "organization_goal",
    "Status_Reference": "status",
}
_LISTS = {
    "Relates_To_Reference": "relates_to",
    "Goal_Comment_Data": "comments",
    "Worker_Goal_Milestone_Detail_Data": "milestones",
}
_GROUPS = {"Goal_Amount_Data": "amount", "Goal_Percent_Data": "percent", "Goal_Unit_Data": "unit"}


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
        add_only = (attr(request, "Add_Only") or "").lower() in {"1", "true"}
        parts = children(request, ("Business_Process_Parameters", "Add_Only", "Manage_Goals_Data"), root)
        if "Add_Only" in parts:
            add_only = (parts["Add_Only"][0].text or "").strip().lower() in {"1", "true"}
        data = parts.get("Manage_Goals_Data", [])
        if not data:
            raise invalid("Manage_Goals_Data is required.", root)
        planned = [
            self._plan(d, f"{root}/wd:Manage_Goals_Data[{k}]", state, add_only) for k, d in enumerate(data, 1)
        ]
        now = datetime.now(UTC).isoformat()
        events = []
        with self.lock:
            for worker, goals in planned:
                event = uuid.uuid4().hex
                events.append(
                    ref_xml(
                        "Worker_Goal_Event_Reference",
                        f"Manage Goals: {worker.display_name}",
                        (("WID", event),),
                    )
                )
                for existing_ref, reference_id, values in goals:
                    self._apply(worker, existing_ref, reference_id, values, add_only, event, now)
        return (
            f'<wd:Manage_Goals_Response xmlns:wd="urn:com.workday/bsvc" wd:version="{esc(version)}">'
            f"{''.join(events)}</wd:Manage_Goals_Response>"
        )

    def _plan(
        self, data: Any, xpath: str, state: State, add_only: bool
    ) -> tuple[Record, list[tuple[str | None, str | None, dict[str, Any]]]]:
        parts = children(data, ("Worker_Reference", "Worker_Goal_Detail_Data"), xpath)
        if "Worker_Reference" not in parts:
            raise invalid("Worker_Reference is required.", xpath)
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
        for k, detail in enumerate(parts.get("Worker_Goal_Detail_Data", []), 1):
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
                elif name in _REFS:
                    values[_REFS[name]] = _value(el)
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
    ) -> None:
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
                        (("Component_Completion_ID", str(status["id"])),),
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


__all__ = ["GOAL_FIELDS", "Goal", "GoalStore", "SoapError"]
