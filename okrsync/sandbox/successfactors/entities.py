"""User and EmpJob as SuccessFactors serves them, derived from the shared SandboxOrg.

The org holds only the *current* state of each worker, but EmpJob is effective-dated: this
module keeps the job history (one slice per hire, move, data change, termination, rehire) by
listening to ``org.on_change``, so ``asOfDate``/``fromDate``/``toDate`` answer like SF does.

Sandbox conventions (documented because a connector will rely on them):

* ``User.status`` is ``t`` for active workers and ``f`` for terminated *and* pre-hire ones (SF
  keeps a future hire's user inactive until the start date). Deleted workers disappear (purge).
* A worker whose manager index is dangling on purpose gets a stub ``manager`` holding only
  ``userId``/``empId`` (the id matches no user) and ``EmpJob.managerId`` of that id.
* A termination slice starts the day *after* ``termination_date`` (Employee Central keeps the
  employee active on the termination date, ``EmpEmploymentTermination.endDate``, and starts
  the job record with ``emplStatus`` ``T`` the next day: SAP KBA 2080000; the last date worked
  is a separate field and may differ). Event reasons are customer-configured in SF; the
  sandbox uses ``HIRNEW``, ``DATACHG``, ``TERRESIG`` and ``REHIRE``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from okrsync.sandbox.orgs import SandboxOrg, Worker
from okrsync.sandbox.successfactors.odata import (
    END_OF_TIME,
    EntityType,
    Nav,
    ODataError,
    Prop,
    Record,
    bad_request,
)

S = "Edm.String"
DT = "Edm.DateTime"
DTO = "Edm.DateTimeOffset"

USER = EntityType(
    name="User",
    keys=("userId",),
    label="User",
    upsertable=True,
    updatable=True,
    props=(
        Prop(
            "userId", S, 100, nullable=False, required=True, label="User ID", upsertable=True, creatable=True
        ),
        Prop("username", S, 100, label="Username", upsertable=True, updatable=True, creatable=True),
        Prop("email", S, 100, label="Email", upsertable=True, updatable=True, creatable=True),
        Prop("firstName", S, 128, label="First Name", upsertable=True, updatable=True, creatable=True),
        Prop("lastName", S, 128, label="Last Name", upsertable=True, updatable=True, creatable=True),
        Prop("displayName", S, 256, label="Display Name", upsertable=True, updatable=True),
        Prop("defaultFullName", S, 256, label="Full Name"),
        Prop("status", S, 2, required=True, label="Status", upsertable=True, updatable=True, creatable=True),
        Prop("title", S, 255, label="Title", upsertable=True, updatable=True, creatable=True),
        Prop("department", S, 128, label="Department", upsertable=True, updatable=True, creatable=True),
        Prop("division", S, 128, label="Division", upsertable=True, updatable=True, creatable=True),
        Prop("location", S, 128, label="Location", upsertable=True, updatable=True, creatable=True),
        Prop("empId", S, 255, label="Employee Id", upsertable=True, creatable=True),
        Prop("hireDate", DT, label="Hire Date", upsertable=True, creatable=True),
        Prop("custom01", S, 255, label="Cost Center", upsertable=True, updatable=True, creatable=True),
        Prop("lastModified", DT, label="Last Modified Date"),
        Prop("lastModifiedDateTime", DTO, label="Last Modified Date"),
    ),
    navs=(
        Nav("manager", "User", label="Manager"),
        Nav("hr", "User", label="HR Representative"),
        Nav("matrixManager", "User", many=True, label="Matrix Manager"),
        Nav("directReports", "User", many=True, label="Direct Reports"),
    ),
)

EMPJOB = EntityType(
    name="EmpJob",
    keys=("seqNumber", "startDate", "userId"),
    label="Job Information",
    upsertable=True,
    effective_dated=True,
    props=(
        Prop(
            "seqNumber", "Edm.Int64", nullable=False, required=True, label="Sequence Number", upsertable=True
        ),
        Prop("startDate", DT, nullable=False, required=True, label="Event Date", upsertable=True),
        Prop("userId", S, 100, nullable=False, required=True, label="User ID", upsertable=True),
        Prop("endDate", DT, label="End Date"),
        Prop("managerId", S, 128, label="Supervisor", upsertable=True),
        Prop("jobTitle", S, 256, label="Job Title", upsertable=True),
        Prop("department", S, 128, label="Department", upsertable=True),
        Prop("division", S, 128, label="Division", upsertable=True),
        Prop("location", S, 128, label="Location", upsertable=True),
        Prop("costCenter", S, 128, label="Cost Center", upsertable=True),
        Prop("company", S, 128, label="Company", upsertable=True),
        Prop("emplStatus", S, 32, label="Employee Status", picklist="employee-status"),
        Prop("employeeClass", S, 32, label="Employee Class", picklist="EMPLOYEECLASS"),
        Prop("eventReason", S, 32, label="Event Reason", upsertable=True),
        Prop("lastModifiedDateTime", DTO, label="Last Modified On"),
    ),
    navs=(
        Nav("userNav", "User", label="User"),
        Nav("managerUserNav", "User", label="Supervisor"),
    ),
)

NO_MANAGER = "NO_MANAGER"
_JOB_FIELDS = ("managerId", "jobTitle", "department", "division", "location", "costCenter", "employeeClass")


@dataclass(frozen=True)
class Slice:
    user_id: str
    start: date
    seq: int
    values: tuple[tuple[str, str], ...]  # the _JOB_FIELDS values
    empl_status: str  # "A" active, "T" terminated
    event_reason: str
    modified: datetime

    def get(self, name: str) -> str:
        return dict(self.values)[name]


class People:
    """Renders workers as User records and keeps EmpJob history in step with the org."""

    def __init__(self, org: SandboxOrg, company: str) -> None:
        self.org = org
        self.company = company
        self.slices: dict[str, list[Slice]] = {}
        self.pending_effective: date | None = None  # EmpJob upserts set the slice start date
        self._hr_cache: tuple[int, list[int]] = (-1, [])
        self._reports_cache: tuple[int, dict[int, list[int]]] = (-1, {})
        with org.lock:
            for w in org:
                self._seed(w)
            org.on_change(self._on_change)

    # ---- ids ----
    def index_of(self, user_id: str) -> int | None:
        if not user_id.startswith("u") or not user_id[1:].isdigit():
            return None
        i = int(user_id[1:]) - 100001
        if 0 <= i < len(self.org) and self.org.sf_user_id(i) == user_id and not self.org.workers[i].deleted:
            return i
        return None

    def worker(self, user_id: str) -> Worker | None:
        i = self.index_of(user_id)
        return None if i is None else self.org.workers[i]

    # ---- User ----
    def user(self, w: Worker) -> Record:
        hire = w.hire_date
        return {
            "userId": self.org.sf_user_id(w.index),
            "username": w.user_name,
            "email": w.email,
            "firstName": w.given_name,
            "lastName": w.family_name,
            "displayName": w.display_name,
            "defaultFullName": w.display_name,
            "status": "t" if w.status == "active" else "f",
            "title": w.title,
            "department": w.department,
            "division": w.division,
            "location": w.location,
            "empId": w.employee_id,
            "hireDate": datetime(hire.year, hire.month, hire.day),
            "custom01": w.cost_center,
            "lastModified": w.last_modified.astimezone(UTC).replace(tzinfo=None),
            "lastModifiedDateTime": w.last_modified,
            "_index": w.index,
        }

    def users(self) -> list[Record]:
        with self.org.lock:  # one consistent view even while edits arrive on other threads
            return [self.user(w) for w in self.org if not w.deleted]

    def _ref(self, index: int | None) -> Record | None:
        if index is None:
            return None
        if index >= len(self.org) or self.org.workers[index].deleted:
            # dangling on purpose: the id matches no user, as a stale SF reference would
            return {"userId": self.org.sf_user_id(index), "empId": self.org.employee_id(index), "_stub": True}
        return self.user(self.org.workers[index])

    def hr_of(self, w: Worker) -> int | None:
        """A deterministic HR representative: an HR Business Partner of the People department.

        Small orgs may have no People department at all; then anyone in People, and failing
        that the top of the org, plays HR (SF tenants always have *someone* in that role).
        """
        if self._hr_cache[0] != self.org.version:
            hrbp = [
                x.index for x in self.org if x.department == "People" and "HR Business Partner" in x.title
            ]
            pool = hrbp or [x.index for x in self.org if x.department == "People"] or [0]
            self._hr_cache = (self.org.version, [i for i in pool if not self.org.workers[i].deleted])
        pool = [i for i in self._hr_cache[1] if i != w.index]
        return pool[w.index % len(pool)] if pool else None

    def reports_of(self, index: int) -> list[int]:
        if self._reports_cache[0] != self.org.version:
            reports: dict[int, list[int]] = {}
            for x in self.org:
                if x.manager is not None and not x.deleted:
                    reports.setdefault(x.manager, []).append(x.index)
            self._reports_cache = (self.org.version, reports)
        return self._reports_cache[1].get(index, [])

    def user_nav(self, record: Record, nav: str) -> Record | list[Record] | None:
        if record.get("_stub"):
            return [] if nav in {"matrixManager", "directReports"} else None
        w = self.org.workers[int(record["_index"])]
        if nav == "manager":
            return self._ref(w.manager)
        if nav == "hr":
            return self._ref(self.hr_of(w))
        if nav == "matrixManager":
            return [r for r in (self._ref(d) for d in w.dotted) if r is not None]
        if nav == "directReports":
            return [self.user(self.org.workers[i]) for i in self.reports_of(w.index)]
        raise KeyError(nav)

    # ---- EmpJob history ----
    def _job_values(self, w: Worker) -> tuple[tuple[str, str], ...]:
        manager = NO_MANAGER if w.manager is None else self.org.sf_user_id(w.manager)
        values = {
            "managerId": manager,
            "jobTitle": w.title,
            "department": w.department,
            "division": w.division,
            "location": w.location,
            "costCenter": w.cost_center,
            "employeeClass": "CONTINGENT" if w.worker_type == "contingent" else "EMPLOYEE",
        }
        return tuple((k, values[k]) for k in _JOB_FIELDS)

    def _seed(self, w: Worker) -> None:
        uid = self.org.sf_user_id(w.index)
        hire = Slice(uid, w.hire_date, 1, self._job_values(w), "A", "HIRNEW", w.last_modified)
        self.slices[uid] = [hire]
        if w.status == "terminated" and w.termination_date is not None:
            self._add(
                uid,
                replace(
                    hire,
                    start=w.termination_date + timedelta(days=1),
                    empl_status="T",
                    event_reason="TERRESIG",
                ),
            )

    def _add(self, uid: str, new: Slice) -> None:
        history = self.slices.setdefault(uid, [])
        start = max(new.start, history[0].start) if history else new.start
        seq = 1 + max((s.seq for s in history if s.start == start), default=0)
        history.append(replace(new, start=start, seq=seq))
        history.sort(key=lambda s: (s.start, s.seq))

    def _on_change(self, w: Worker) -> None:
        uid = self.org.sf_user_id(w.index)
        effective = self.pending_effective or w.effective_date
        history = self.slices.get(uid)
        if not history:
            self._seed(w)
            return
        last = history[-1]
        values = self._job_values(w)
        base = Slice(uid, effective, 0, values, "A", "DATACHG", w.last_modified)
        if w.status == "terminated" and last.empl_status != "T":
            ended = w.termination_date or effective
            self._add(
                uid, replace(base, start=ended + timedelta(days=1), empl_status="T", event_reason="TERRESIG")
            )
        elif w.status != "terminated" and last.empl_status == "T":
            self._add(uid, replace(base, start=w.hire_date, event_reason="REHIRE"))
        elif values != last.values:
            self._add(uid, base)

    def job_record(self, s: Slice, end: date) -> Record:
        record: Record = {
            "seqNumber": s.seq,
            "startDate": datetime(s.start.year, s.start.month, s.start.day),
            "userId": s.user_id,
            "endDate": datetime(end.year, end.month, end.day),
            "company": self.company,
            "emplStatus": s.empl_status,
            "eventReason": s.event_reason,
            "lastModifiedDateTime": s.modified,
        }
        record.update(dict(s.values))
        return record

    def jobs(self, *, as_of: date | None, from_date: date | None, to_date: date | None) -> list[Record]:
        """Slices valid on ``as_of``, or all slices overlapping ``[from_date, to_date]``."""
        out: list[Record] = []
        with self.org.lock:
            for uid, history in self.slices.items():
                if self.index_of(uid) is None:
                    continue
                ranges = _ranges(history)
                if as_of is not None:
                    current = [(s, e) for s, e in ranges if s.start <= as_of <= e]
                    if current:
                        s, e = max(current, key=lambda p: (p[0].start, p[0].seq))
                        out.append(self.job_record(s, e))
                    continue
                lo = from_date or date(1900, 1, 1)
                hi = to_date or END_OF_TIME.date()
                out.extend(self.job_record(s, e) for s, e in ranges if s.start <= hi and e >= lo)
        return out

    def job(self, key: dict[str, Any]) -> Record | None:
        history = self.slices.get(str(key.get("userId")))
        start = key.get("startDate")
        if not history or not isinstance(start, datetime):
            return None
        for s, e in _ranges(history):
            if s.seq == key.get("seqNumber") and s.start == start.date():
                return self.job_record(s, e)
        return None

    def job_nav(self, record: Record, nav: str) -> Record | None:
        if nav == "userNav":
            i = self.index_of(str(record["userId"]))
            return None if i is None else self.user(self.org.workers[i])
        manager = str(record.get("managerId") or NO_MANAGER)
        if manager == NO_MANAGER:
            return None
        i = self.index_of(manager)
        if i is not None:
            return self.user(self.org.workers[i])
        return {"userId": manager, "_stub": True}

    # ---- upsert ----
    def upsert_user(self, values: dict[str, Any], manager: str | None) -> str:
        """Apply one User upsert to the org; returns the key text; raises ODataError on bad input."""
        uid = str(values.get("userId") or "")
        w = self.worker(uid)
        if w is None:
            raise bad_request(f"User {uid!r} does not exist; the sandbox cannot create users through upsert.")
        if manager is not None and manager != NO_MANAGER and self.worker(manager) is None:
            raise bad_request(f"Invalid manager {manager!r}: no such user.")
        renames = {
            "firstName": "given_name",
            "lastName": "family_name",
            "title": "title",
            "department": "department",
            "location": "location",
            "custom01": "cost_center",
            "email": "email",
        }
        changes = {renames[k]: str(v) for k, v in values.items() if k in renames and v is not None}
        status = values.get("status")
        if status is not None and status not in {"t", "f", "T", "F", "e", "d"}:
            raise bad_request(f"Invalid status {status!r}.")
        changes = {k: v for k, v in changes.items() if getattr(w, k) != v}
        if changes:
            self.org.rename(w.employee_id, **changes)
        if manager is not None:
            target = None if manager == NO_MANAGER else self._worker_or_fail(manager).employee_id
            current = None if w.manager is None else self.org.employee_id(w.manager)
            if target != current:
                self.org.move(w.employee_id, target)
        if status in {"f", "F", "d"} and w.status == "active":
            self.org.terminate(w.employee_id)
        elif status in {"t", "T", "e"} and w.status == "terminated":
            self.org.rehire(w.employee_id)
        return f"User/userId={uid}"

    def upsert_job(self, values: dict[str, Any]) -> str:
        uid = str(values.get("userId") or "")
        w = self.worker(uid)
        start = values.get("startDate")
        if w is None:
            raise bad_request(f"Invalid userId {uid!r}: no such user.")
        if not isinstance(start, datetime):
            raise ODataError(400, "COE_MISSING_REQUIRED_PROPERTIES", "Required property startDate is missing")
        manager = values.get("managerId")
        if manager is not None and manager != NO_MANAGER and self.worker(str(manager)) is None:
            raise bad_request(f"Invalid managerId {manager!r}: no such user.")
        self.pending_effective = start.date()
        try:
            renames = {
                "jobTitle": "title",
                "department": "department",
                "location": "location",
                "costCenter": "cost_center",
            }
            changes = {renames[k]: str(v) for k, v in values.items() if k in renames and v is not None}
            changes = {k: v for k, v in changes.items() if getattr(w, k) != v}
            if changes:
                self.org.rename(w.employee_id, **changes)
            if manager is not None:
                target = None if manager == NO_MANAGER else self._worker_or_fail(str(manager)).employee_id
                current = None if w.manager is None else self.org.employee_id(w.manager)
                if target != current:
                    self.org.move(w.employee_id, target)
        finally:
            self.pending_effective = None
        seq = values.get("seqNumber", 1)
        return f"EmpJob/seqNumber={seq},EmpJob/startDate={start:%Y-%m-%dT%H:%M:%S.000Z},EmpJob/userId={uid}"

    def _worker_or_fail(self, user_id: str) -> Worker:
        w = self.worker(user_id)
        if w is None:
            raise bad_request(f"Invalid manager {user_id!r}: no such user.")
        return w


def _ranges(history: list[Slice]) -> list[tuple[Slice, date]]:
    """Each slice with its end date: the day before the next start (same day for same-day records)."""
    out: list[tuple[Slice, date]] = []
    for k, s in enumerate(history):
        if k + 1 < len(history):
            nxt = history[k + 1].start
            end = nxt if nxt == s.start else nxt - timedelta(days=1)
        else:
            end = END_OF_TIME.date()
        out.append((s, end))
    return out
