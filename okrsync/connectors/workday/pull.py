"""SOAP ``Get_Workers`` pulls: full (paged, one entry moment) and incremental (three windows).

Full pull: pages of ``page_size`` (≤ 999) workers, every page requested with the same
``As_Of_Entry_DateTime`` — the run's watermark, taken at its start — so the pages are slices of
one result set even while HR keeps editing.

Incremental pull (Microsoft's recipe), all three with ``As_Of_Entry_DateTime`` = this watermark:

1. entry-time window: ``Updated_From`` = the last watermark, ``Updated_Through`` = this one;
2. effective-dated window: ``Effective_From``/``Effective_Through`` over the same span (changes
   entered earlier that take effect now: future-dated moves, terminations);
3. future-dated hires: every pre-hire seen is remembered in the cursor (WID → hire date); once
   its hire date has arrived it is re-queried by WID ``As_Of_Effective_Date`` = its hire date.

Changes outside the transaction log are missed, so every ``full_reconcile_days`` the pull is full.

One person, several records: a conversion or rehire leaves the former WID as a terminated record
with the same Worker_ID. Records are deduplicated by Worker_ID: an active record wins, then a
pre-hire, then the latest (hire date, then the order seen). A full pull streams active workers
as they come and holds only inactive ones until the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from okrsync.connectors.base import Pull, PullMode, PullRequest, RawRecord
from okrsync.connectors.workday import soap
from okrsync.connectors.workday.config import WorkdayConfig
from okrsync.connectors.workday.parse import PageInfo, iter_workers
from okrsync.errors import PaginationError
from okrsync.http import HttpClient

CURSOR_VERSION = 1
MAX_PAGES = 100_000
REQUIRED_GROUPS = frozenset({"Include_Reference", "Include_Employment_Information"})
# top-level record keys (see parse.py) -> the Response_Group flag that brings them
FIELD_GROUPS: dict[str, str] = {
    **dict.fromkeys(
        ("WID", "Employee_ID", "Contingent_Worker_ID", "Worker_Type", "Descriptor", "External_IDs"),
        "Include_Reference",
    ),
    **dict.fromkeys(
        (
            "First_Name",
            "Last_Name",
            "Middle_Name",
            "Formatted_Name",
            "Preferred_First_Name",
            "Preferred_Last_Name",
            "Preferred_Middle_Name",
            "Email",
            "Emails",
        ),
        "Include_Personal_Information",
    ),
    **dict.fromkeys(
        (
            "Business_Title",
            "Position_Title",
            "Position_ID",
            "Location",
            "Manager_ID",
            "Manager_WID",
            "Active",
            "Hire_Date",
            "Terminated",
            "Termination_Date",
            "On_Leave",
        ),
        "Include_Employment_Information",
    ),
    "Organizations": "Include_Organizations",
    **dict.fromkeys(
        ("Chain_Manager_ID", "Chain_Manager_WID", "Matrix_Manager_IDs"), "Include_Management_Chain_Data"
    ),
    "Goals": "Include_Goals",
}


def response_group(source_fields: set[str]) -> set[str]:
    """The ``Response_Group`` flags a mapping needs (plus what the connector itself reads)."""
    groups = set(REQUIRED_GROUPS)
    for path in source_fields:
        flag = FIELD_GROUPS.get(path.split(".", 1)[0])
        if flag:
            groups.add(flag)
    if "Include_Management_Chain_Data" in groups:
        groups.add("Include_Organizations")  # the worker's own org picks the nearest chain level
    return groups


@dataclass
class Cursor:
    watermark: datetime
    full_at: datetime
    future: dict[str, str] = field(default_factory=dict)  # WID -> hire date (ISO)

    def dumps(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "watermark": self.watermark.isoformat(),
                "full_at": self.full_at.isoformat(),
                "future": dict(sorted(self.future.items())),
            },
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str) -> Cursor:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
            raise ValueError("not a Workday SOAP cursor of this version")
        return cls(
            datetime.fromisoformat(data["watermark"]),
            datetime.fromisoformat(data["full_at"]),
            {str(k): str(v) for k, v in dict(data.get("future") or {}).items()},
        )


def _rank(rec: dict[str, Any]) -> int:
    if rec.get("Active") in ("1", "true"):
        return 2
    if rec.get("Terminated") not in ("1", "true"):
        return 1  # not active, not terminated: a pre-hire (or on leave)
    return 0


def _key(rec: dict[str, Any], seq: int) -> tuple[int, str, int]:
    return (_rank(rec), str(rec.get("Hire_Date") or "")[:10], seq)


def _number(rec: dict[str, Any]) -> str | None:
    value = rec.get("Worker_ID") or rec.get("Employee_ID") or rec.get("Contingent_Worker_ID")
    return str(value) if value else None


class SoapPuller:
    """Runs the ``Get_Workers`` queries of one pull; the connector owns the HTTP client."""

    def __init__(self, cfg: WorkdayConfig, http: HttpClient, groups: set[str], name: str = "workday") -> None:
        self.cfg = cfg
        self.http = http
        self.groups = groups
        self.name = name

    # ---- one query, every page ----
    def query(self, what: str, build: Callable[[int, int], str]) -> Iterator[dict[str, Any]]:
        """Records of one query; ``build(page, count)`` returns the Get_Workers_Request element."""
        count = self.cfg.page_size
        password = self.cfg.password.get_secret_value() if self.cfg.password else ""
        operation = f"Get_Workers ({what})"
        for page in range(1, MAX_PAGES + 1):
            body = soap.envelope(build(page, count), self.cfg.username or "", password)
            response = self.http.request(
                "POST",
                self.cfg.soap_url,
                operation=operation,
                data=body,
                headers=soap.HEADERS,
                classify=soap.classify(self.name, operation),
            )
            info = PageInfo()
            seen = 0
            for rec in iter_workers(response.content, info, connector=self.name, operation=operation):
                seen += 1
                yield rec
            if seen == 0 or seen < count or page >= info.total_pages:
                return
        raise PaginationError(f"{operation}: more than {MAX_PAGES} pages", connector=self.name)

    def request_builder(self, watermark: datetime, **kw: Any) -> Callable[[int, int], str]:
        def build(page: int, count: int) -> str:
            return soap.get_workers(
                version=self.cfg.version,
                page=page,
                count=count,
                as_of_entry=watermark,
                group=self.groups,
                exclude_contingent=not self.cfg.include_contingent,
                **kw,
            )

        return build

    # ---- the pull ----
    def pull(self, request: PullRequest) -> Pull:
        watermark = request.watermark
        if watermark.tzinfo is None:
            watermark = watermark.replace(tzinfo=UTC)
        notices: list[str] = []
        cursor = None
        if request.cursor and not request.full:
            try:
                cursor = Cursor.loads(request.cursor)
            except (ValueError, KeyError, TypeError) as exc:
                notices.append(f"unreadable Workday cursor ({exc}); pulling everything")
        due = cursor is not None and (
            self.cfg.full_reconcile_days == 0
            or watermark - cursor.full_at >= timedelta(days=self.cfg.full_reconcile_days)
        )
        if cursor is not None and due:
            notices.append(
                f"periodic full reconcile (last full pull {cursor.full_at.isoformat()}, "
                f"full_reconcile_days = {self.cfg.full_reconcile_days})"
            )
        full = cursor is None or due
        last_full = cursor.full_at if cursor is not None and not full else watermark
        state = Cursor(watermark, last_full, dict(cursor.future) if cursor else {})
        pull = Pull(records=iter(()), mode=PullMode.FULL if full else PullMode.INCREMENTAL, notices=notices)
        before = self.http.stats.requests

        def run() -> Iterator[RawRecord]:
            if full:
                yield from self._full(watermark, state)
            else:
                assert cursor is not None
                yield from self._incremental(watermark, cursor, state)
            pull.cursor = state.dumps()
            pull.requests = self.http.stats.requests - before

        pull.records = run()
        return pull

    def _track(self, rec: dict[str, Any], state: Cursor, today: date) -> None:
        """Remember pre-hires (WID -> hire date) for window 3; forget anyone no longer one."""
        wid = rec.get("WID")
        if not wid:
            return
        hired = str(rec.get("Hire_Date") or "")[:10]
        if _rank(rec) == 1 and hired and hired > today.isoformat():
            state.future[wid] = hired
        else:
            state.future.pop(wid, None)

    def _full(self, watermark: datetime, state: Cursor) -> Iterator[RawRecord]:
        state.future.clear()
        today = watermark.date()
        emitted: set[str] = set()
        held: dict[str, tuple[tuple[int, str, int], dict[str, Any]]] = {}
        build = self.request_builder(watermark, exclude_inactive=self.cfg.exclude_inactive)
        for seq, rec in enumerate(self.query("full", build)):
            self._track(rec, state, today)
            number = _number(rec)
            if number is None:
                yield RawRecord(key=f"WID {rec.get('WID')}", data=rec, ref=f"WID {rec.get('WID')}")
                continue
            if number in emitted:
                continue  # an active record of this person was already passed on
            if _rank(rec) == 2:
                emitted.add(number)
                held.pop(number, None)
                yield RawRecord(key=number, data=rec, ref=f"WID {rec.get('WID')}")
                continue
            key = _key(rec, seq)
            if number not in held or key > held[number][0]:
                held[number] = (key, rec)
        for number, (_, rec) in held.items():
            yield RawRecord(key=number, data=rec, ref=f"WID {rec.get('WID')}")

    def _incremental(self, watermark: datetime, cursor: Cursor, state: Cursor) -> Iterator[RawRecord]:
        today = watermark.date()
        since = cursor.watermark
        best: dict[str, tuple[tuple[int, str, int], dict[str, Any]]] = {}
        seq = 0
        windows = (
            ("entry-time window", soap.Window(updated_from=since, updated_through=watermark)),
            ("effective-dated window", soap.Window(effective_from=since, effective_through=watermark)),
        )
        for what, window in windows:
            for rec in self.query(what, self.request_builder(watermark, windows=[window])):
                seq += 1
                self._track(rec, state, today)
                number = _number(rec) or f"WID {rec.get('WID')}"
                key = _key(rec, seq)
                if number not in best or key > best[number][0]:
                    best[number] = (key, rec)
        arrived: dict[str, list[str]] = {}
        for wid, hired in cursor.future.items():
            if hired <= today.isoformat():
                arrived.setdefault(hired, []).append(wid)
        for hired, wids in sorted(arrived.items()):
            for start in range(0, len(wids), self.cfg.page_size):
                chunk = [("WID", w) for w in wids[start : start + self.cfg.page_size]]
                build = self.request_builder(
                    watermark, references=chunk, as_of_effective=date.fromisoformat(hired)
                )
                for rec in self.query(f"future-dated hires of {hired}", build):
                    seq += 1
                    state.future.pop(str(rec.get("WID")), None)
                    number = _number(rec) or f"WID {rec.get('WID')}"
                    held = best.get(number)
                    # as of the hire date it replaces only a pre-hire view of the same person
                    if held is None or _rank(held[1]) == 1:
                        best[number] = (_key(rec, seq), rec)
            for wid in wids:
                state.future.pop(wid, None)
        for number, (_, rec) in best.items():
            yield RawRecord(key=number, data=rec, ref=f"WID {rec.get('WID')}")
