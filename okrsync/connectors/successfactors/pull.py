"""Org pull: ``User`` (all statuses, manager/hr/matrixManager) joined with effective-dated ``EmpJob``.

**Full pull**: one scan of the EmpJob slices overlapping ``[today, today + lookahead_days]``
(``fromDate``/``toDate``), kept compactly per user, then the User pages streamed and joined.
For each user the slice valid today is the job; a user with no slice today but one inside
the window is a *pre-hire* (a future-dated hire appears only inside the look-ahead window; one
further out is left out and counted in the notices); a termination slice (today or ahead)
gives ``terminationDate`` = its start − 1 day (SF: the slice starts the day *after* the
termination date, ``EmpEmploymentTermination.endDate``; SAP KBA 2080000). A user SF already
shows inactive with a termination inside the window counts as terminated.

**Incremental pull** (cursor = the previous run's watermark): users whose
``lastModifiedDateTime`` is after the cursor, plus users with an EmpJob slice modified since
(back-dated manager changes do not touch the User), plus users whose slices *became
effective* since the last run or *entered the look-ahead window* — both are effective-dated
changes no timestamp reveals. Those users are re-read and joined like above. A full reconcile
runs when asked, without a cursor, or when the run crosses a ``full_reconcile_days`` boundary.

Each user becomes one :class:`RawRecord` (key = ``userId``): the User properties plus
``manager``/``hr`` as ``{"userId": …}``, ``matrixManager`` as a list of userIds, ``job`` (the
slice, ``NO_MANAGER`` as null), and the derived ``jobPhase`` (current/future/null),
``employmentStatus``, ``terminationDate`` (ISO) and ``externalIds``. The mapping
(``okrsync/mappings/successfactors.toml``) turns it into a Person.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from okrsync.connectors.base import Pull, PullMode, PullRequest, RawRecord
from okrsync.connectors.successfactors.config import SuccessFactorsConfig
from okrsync.connectors.successfactors.odata import (
    ACTIVE_USER_STATUSES,
    ALL_STATUSES,
    ODataReader,
    chunks,
    datetime_literal,
    datetimeoffset,
    in_filter,
    parse_sf_date,
)

USER_FIELDS = (
    "userId",
    "username",
    "email",
    "firstName",
    "lastName",
    "displayName",
    "status",
    "title",
    "department",
    "division",
    "location",
    "empId",
    "hireDate",
    "custom01",
    "lastModifiedDateTime",
)
JOB_FIELDS = (
    "managerId",
    "jobTitle",
    "department",
    "division",
    "location",
    "costCenter",
    "emplStatus",
    "employeeClass",
)
_INTERNED = frozenset({"department", "division", "location", "costCenter", "emplStatus", "employeeClass"})
NO_MANAGER = "NO_MANAGER"
# one slice: (start, seqNumber, values in JOB_FIELDS order)
Slice = tuple[date, int, tuple[Any, ...]]


def parse_cursor(cursor: str | None) -> datetime | None:
    if not cursor:
        return None
    try:
        moment = datetime.fromisoformat(cursor.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def reconcile_due(cursor: datetime, watermark: datetime, days: int | None) -> bool:
    """Full reconcile when ``days`` have passed or the run crosses an every-``days`` boundary."""
    if days is None:
        return False
    if watermark - cursor >= timedelta(days=days):
        return True
    epoch = date(1970, 1, 1)
    return (watermark.date() - epoch).days // days > (cursor.date() - epoch).days // days


class OrgPuller:
    """One pull's reads; the connector makes one per ``pull()``."""

    def __init__(self, reader: ODataReader, cfg: SuccessFactorsConfig, requests: Callable[[], int]) -> None:
        self.reader = reader
        self.cfg = cfg
        self.requests = requests
        select = list(USER_FIELDS) + [f for f in cfg.user_fields if f not in USER_FIELDS]
        select += ["manager/userId", "hr/userId"]
        expand = ["manager", "hr"]
        if cfg.dotted_lines:
            select.append("matrixManager/userId")
            expand.append("matrixManager")
        self.user_params = {"$select": ",".join(select), "$expand": ",".join(expand)}
        self.skipped_future = 0

    # ---- entry ----
    def pull(self, request: PullRequest) -> Pull:
        watermark = request.watermark.astimezone(UTC)
        today = watermark.date()
        horizon = today + timedelta(days=self.cfg.lookahead_days)
        cursor = parse_cursor(request.cursor)
        full = (
            request.full or cursor is None or reconcile_due(cursor, watermark, self.cfg.full_reconcile_days)
        )
        pull = Pull(records=iter(()), mode=PullMode.FULL if full else PullMode.INCREMENTAL)
        pull.cursor = watermark.isoformat()
        start = self.requests()
        if request.cursor and cursor is None:
            pull.notices.append(f"unreadable cursor {request.cursor!r}; reading everything")
        elif not request.full and cursor is not None and full:
            pull.notices.append(f"periodic full reconcile (every {self.cfg.full_reconcile_days} days)")

        def records() -> Iterator[RawRecord]:
            if full:
                yield from self._full(today, horizon)
            else:
                assert cursor is not None
                yield from self._incremental(cursor, today, horizon)
            pull.requests = self.requests() - start
            if self.skipped_future:
                pull.notices.append(
                    f"{self.skipped_future} future-dated hire(s) beyond the {self.cfg.lookahead_days}-day "
                    "look-ahead left out"
                )

        pull.records = records()
        return pull

    # ---- full ----
    def _full(self, today: date, horizon: date) -> Iterator[RawRecord]:
        jobs = self._jobs(today, horizon, None) if self.cfg.effective_dating else None
        params = {**self.user_params, "$filter": ALL_STATUSES}
        for page in self.reader.pages("User", params, "list users"):
            for user in page:
                raw = self._record(user, jobs, today, horizon, incremental=False)
                if raw is not None:
                    yield raw

    # ---- incremental ----
    def _incremental(self, cursor: datetime, today: date, horizon: date) -> Iterator[RawRecord]:
        since = datetimeoffset(cursor)
        params = {**self.user_params, "$filter": f"lastModifiedDateTime gt {since} and {ALL_STATUSES}"}
        users = {u["userId"]: u for page in self.reader.pages("User", params, "changed users") for u in page}
        ids: set[str] = set()
        if self.cfg.effective_dating:
            ids |= self._job_user_ids(f"lastModifiedDateTime gt {since}", "1900-01-01", "9999-12-31")
            last = cursor.date()
            ranges = [(last, today), (last + timedelta(days=self.cfg.lookahead_days), horizon)]
            parts = [
                f"(startDate gt {datetime_literal(lo)} and startDate le {datetime_literal(hi)})"
                for lo, hi in ranges
                if hi > lo
            ]
            if parts:  # slices that became effective, or entered the window, since the last run
                ids |= self._job_user_ids(" or ".join(parts), last.isoformat(), horizon.isoformat())
        missing = sorted(ids - users.keys())
        for chunk in chunks(missing, self.cfg.chunk_size):
            flt = f"{in_filter('userId', chunk)} and {ALL_STATUSES}"
            for page in self.reader.pages("User", {**self.user_params, "$filter": flt}, "re-read users"):
                users.update((u["userId"], u) for u in page)
        jobs = self._jobs(today, horizon, sorted(users)) if self.cfg.effective_dating else None
        for user in users.values():
            raw = self._record(user, jobs, today, horizon, incremental=True)
            if raw is not None:
                yield raw

    def _job_user_ids(self, flt: str, lo: str, hi: str) -> set[str]:
        params = {"$select": "userId", "$filter": flt, "fromDate": lo, "toDate": hi}
        return {r["userId"] for page in self.reader.pages("EmpJob", params, "changed jobs") for r in page}

    # ---- EmpJob ----
    def _jobs(self, today: date, horizon: date, user_ids: list[str] | None) -> dict[str, list[Slice]]:
        """Slices overlapping [today, horizon] per user, sorted by (start, seq)."""
        select = ",".join(("userId", "startDate", "seqNumber", *JOB_FIELDS))
        base = {"$select": select, "fromDate": today.isoformat(), "toDate": horizon.isoformat()}
        queries = (
            [base]
            if user_ids is None
            else [{**base, "$filter": in_filter("userId", c)} for c in chunks(user_ids, self.cfg.chunk_size)]
        )
        out: dict[str, list[Slice]] = {}
        intern = sys.intern
        for params in queries:
            for page in self.reader.pages("EmpJob", params, "list job slices"):
                for r in page:
                    start = parse_sf_date(r.get("startDate"))
                    if start is None:
                        continue
                    values = []
                    for name in JOB_FIELDS:
                        v = r.get(name)
                        if type(v) is str and name in _INTERNED:
                            v = intern(v)
                        values.append(v)
                    out.setdefault(r["userId"], []).append(
                        (start, int(r.get("seqNumber") or 0), tuple(values))
                    )
        for slices in out.values():
            if len(slices) > 1:
                slices.sort(key=lambda s: (s[0], s[1]))
        return out

    # ---- one user ----
    def _record(
        self,
        user: dict[str, Any],
        jobs: dict[str, list[Slice]] | None,
        today: date,
        horizon: date,
        *,
        incremental: bool,
    ) -> RawRecord | None:
        uid = str(user.get("userId") or "")
        ref = (user.pop("__metadata", None) or {}).get("uri") or f"User('{uid}')"
        active_user = user.get("status") in ACTIVE_USER_STATUSES
        slices = jobs.get(uid) if jobs is not None else None
        job: dict[str, Any] | None = None
        phase: str | None = None
        status: str | None = None
        termination: date | None = None
        if slices:
            current = [s for s in slices if s[0] <= today]
            ahead = [s for s in slices if s[0] > today]
            chosen = current[-1] if current else ahead[0]
            phase = "current" if current else "future"
            job = dict(zip(JOB_FIELDS, chosen[2], strict=True))
            job["startDate"] = chosen[0].isoformat()
            if job.get("managerId") == NO_MANAGER:
                job["managerId"] = None
            status = self._status(job.get("emplStatus"), active_user) if current else "pre_hire"
            for s in (chosen, *ahead) if current else ():
                code = s[2][JOB_FIELDS.index("emplStatus")]
                if self.cfg.empl_status.get(code) == "terminated":
                    termination = s[0] - timedelta(days=1)
                    if status == "active" and not active_user:
                        status = "terminated"  # SF already shows the leaver inactive
                    break
        else:
            try:
                hired = parse_sf_date(user.get("hireDate"))
            except ValueError:
                hired = None  # the mapping reports the bad date
            if hired is not None and hired > (horizon if jobs is None else today):
                self.skipped_future += 1
                return RawRecord(key=uid, data={}, ref=ref, removed=True) if incremental else None
            status = "active" if active_user else ("pre_hire" if hired and hired > today else "terminated")
        manager = user.get("manager")
        user["manager"] = {"userId": manager.get("userId")} if isinstance(manager, dict) else None
        hr = user.get("hr")
        user["hr"] = {"userId": hr.get("userId")} if isinstance(hr, dict) else None
        matrix = user.get("matrixManager")
        if isinstance(matrix, dict):
            user["matrixManager"] = [m.get("userId") for m in matrix.get("results") or () if m.get("userId")]
        user["job"] = job
        user["jobPhase"] = phase
        user["employmentStatus"] = status
        user["terminationDate"] = termination.isoformat() if termination else None
        emp = user.get("empId")
        user["externalIds"] = {"employee_id": str(emp)} if emp else {}
        return RawRecord(key=uid or "(no userId)", data=user, ref=ref)

    def _status(self, code: Any, active_user: bool) -> str:
        if code is None or code == "":
            return "active" if active_user else "terminated"
        mapped = self.cfg.empl_status.get(str(code))
        return mapped if mapped is not None else f"unknown emplStatus {code!r}"
