"""Reports-as-a-Service: one custom report of all workers (``customreport2``), no paging.

A report's JSON keys are its field aliases, so they are configurable (``raas_aliases``: field →
alias, or ``None`` to drop the field). As Workday writes them: blank fields are left out of an
entry, booleans are ``"1"``/``"0"``, multi-instance fields (``Additional_Managers``) are arrays.
Every record is an entry, including the inactive record a conversion leaves behind (same
``Employee_ID``, ``Active`` ``"0"``): the active one owns the identity.

Prompts (query parameters): ``Effective_as_of_Date`` (statuses as of that date),
``Updated_From``/``Updated_Through`` (only workers changed in that entry-time window). Any other
parameter besides ``format`` is refused, like a report without that prompt.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from html import escape
from typing import TYPE_CHECKING, Any

from okrsync.sandbox.server import Request, Response
from okrsync.sandbox.workday.rest import basic_credentials, rest_error
from okrsync.sandbox.workday.state import Record

if TYPE_CHECKING:
    from okrsync.sandbox.workday import WorkdayEmulator

FIELDS = (
    "Employee_ID",
    "Worker_WID",
    "Manager_ID",
    "Manager_WID",
    "Email",
    "First_Name",
    "Last_Name",
    "Business_Title",
    "Department",
    "Division",
    "Location",
    "Cost_Center",
    "Supervisory_Organization",
    "Active",
    "Hire_Date",
    "Termination_Date",
    "Worker_Type",
    "Additional_Managers",
)
PROMPTS = {"Effective_as_of_Date", "Updated_From", "Updated_Through"}


def aliases(overrides: dict[str, str | None] | None) -> dict[str, str]:
    """Field → alias after overrides; unknown fields are an error at construction, not at request time."""
    out: dict[str, str] = {f: f for f in FIELDS}
    for name, alias in (overrides or {}).items():
        if name not in out:
            raise ValueError(f"unknown RaaS field {name!r}; fields: {', '.join(FIELDS)}")
        if alias is None:
            del out[name]
        else:
            out[name] = alias
    return out


def _moment(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Raas:
    """The ``customreport2`` route of one emulator."""

    def __init__(self, emulator: WorkdayEmulator) -> None:
        self.emu = emulator
        emulator.route(
            "GET",
            r"/ccx/service/customreport2/(?P<tenant>[^/]+)/(?P<owner>[^/]+)/(?P<report>[^/]+)",
            self.report,
        )

    def _authorised(self, req: Request) -> bool:
        header = req.headers.get("authorization")
        basic = basic_credentials(header)
        if basic is not None:
            return self.emu.check_password(*basic)
        return self.emu.tokens.check(header) is None

    def report(self, req: Request) -> Response:
        emu = self.emu
        assert req.match is not None
        if not self._authorised(req):
            denied = rest_error(401, "invalid username or password")
            denied.headers["WWW-Authenticate"] = 'Basic realm="Workday"'
            return denied
        tenant, owner, name = req.match.group("tenant", "owner", "report")
        if tenant != emu.tenant or owner != emu.report_owner or name != emu.report_name:
            return rest_error(404, f"report {owner}/{name} not found")
        unknown = set(req.query) - PROMPTS - {"format"}
        if unknown:
            return rest_error(400, f"invalid prompt(s): {', '.join(sorted(unknown))}", location="query")
        fmt = (req.arg("format") or "simplexml").lower()
        if fmt not in {"json", "csv", "simplexml"}:
            return rest_error(400, f"unsupported format {fmt!r}; use json, csv or simplexml", field="format")
        try:
            as_of = (
                date.fromisoformat(req.arg("Effective_as_of_Date") or "")
                if req.arg("Effective_as_of_Date")
                else None
            )
            start = _moment(req.arg("Updated_From") or "") if req.arg("Updated_From") else None
            end = _moment(req.arg("Updated_Through") or "") if req.arg("Updated_Through") else None
        except ValueError as exc:
            return rest_error(400, f"invalid prompt value: {exc}", location="query")
        state = emu.tenant_state.current()
        rows = []
        for r in state.records:
            if start or end:
                events = (
                    [
                        emu.tenant_state.history.former_events.get(
                            r.ref.wid, (r.last_modified, r.effective_date)
                        )
                    ]
                    if r.former
                    else emu.tenant_state.history.events(r.index)
                )
                if not any((start is None or t >= start) and (end is None or t <= end) for t, _ in events):
                    continue
            rows.append(self.entry(r, as_of))
        if fmt == "json":
            return Response(200, json.dumps({"Report_Entry": rows}, separators=(",", ":")).encode())
        if fmt == "csv":
            return Response(200, self._csv(rows).encode(), content_type="text/csv; charset=utf-8")
        return Response(200, self._xml(rows, name).encode(), content_type="text/xml; charset=utf-8")

    def entry(self, r: Record, as_of: date | None) -> dict[str, Any]:
        status = r.status_as_of(as_of)
        values: dict[str, Any] = {
            "Employee_ID": r.ref.number,
            "Worker_WID": r.ref.wid,
            "Manager_ID": r.manager.number if r.manager else "",
            "Manager_WID": r.manager.wid if r.manager else "",
            "Email": r.email,
            "First_Name": r.given_name,
            "Last_Name": r.family_name,
            "Business_Title": r.title,
            "Department": r.department,
            "Division": r.division,
            "Location": r.location,
            "Cost_Center": r.cost_center,
            "Supervisory_Organization": r.sup_org.name,
            "Active": "1" if status == "active" else "0",
            "Hire_Date": r.hire_date.isoformat(),
            "Termination_Date": r.termination_date.isoformat()
            if status == "terminated" and r.termination_date
            else "",
            "Worker_Type": "Employee" if r.worker_type == "employee" else "Contingent Worker",
            "Additional_Managers": [d.number for d in r.dotted],
        }
        out = {}
        for name, alias in self.emu.raas_fields.items():
            value = values[name]
            if value in ("", []):
                continue  # Workday leaves blank fields out of the entry
            out[alias] = value
        return out

    def _csv(self, rows: list[dict[str, Any]]) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(self.emu.raas_fields.values()), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()})
        return buf.getvalue()

    def _xml(self, rows: list[dict[str, Any]], name: str) -> str:
        namespace = f"urn:com.workday.report/{escape(name)}"
        out = [f'<?xml version="1.0" encoding="UTF-8"?><wd:Report_Data xmlns:wd="{namespace}">']
        for row in rows:
            out.append("<wd:Report_Entry>")
            for key, value in row.items():
                for v in value if isinstance(value, list) else [value]:
                    out.append(f"<wd:{key}>{escape(str(v))}</wd:{key}>")
            out.append("</wd:Report_Entry>")
        out.append("</wd:Report_Data>")
        return "".join(out)
