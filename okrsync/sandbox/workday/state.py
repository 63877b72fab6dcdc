"""Workday's view of a :class:`~okrsync.sandbox.orgs.SandboxOrg`: worker records, supervisory orgs, history.

Workday is effective-dated and entry-dated: ``Get_Workers`` answers "as of" an entry moment
(``As_Of_Entry_DateTime``) and an effective date. To make the entry moment real (so that pages
requested with the same ``As_Of_Entry_DateTime`` are consistent even while the org is edited),
this module keeps a copy of every worker after each edit (:class:`History`) and rebuilds the
whole tenant *as of* any moment from those copies. The current state is cached and rebuilt
incrementally: unchanged :class:`Record` objects are reused, so the XML fragments cached on them
survive edits elsewhere in the org.

One person can own several records: a conversion (contingent → employee) gives the person a new
WID and leaves the old WID as a terminated record with the same Worker_ID (``former`` records).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from okrsync.sandbox.orgs import SandboxOrg, Worker

EMPLOYEE_ID = "Employee_ID"
CONTINGENT_ID = "Contingent_Worker_ID"


@functools.lru_cache(maxsize=65536)
def digest(kind: str, seed: int, key: object) -> str:
    """A stable 32-hex WID for sandbox objects that the org generator does not name."""
    return hashlib.md5(f"wd-{kind}:{seed}:{key}".encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class WorkerRef:
    """A worker as other records reference it (manager, management chain, dotted line)."""

    wid: str
    id_type: str  # Employee_ID | Contingent_Worker_ID
    number: str
    descriptor: str


@dataclass(frozen=True, slots=True)
class OrgRef:
    wid: str
    ref_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Record:
    """One Workday worker record (one WID) as of one entry moment: everything the APIs render.

    Equality covers every rendered field, so an equal record from a rebuilt state can reuse the
    old object's ``cache`` of XML/JSON fragments.
    """

    index: int
    ref: WorkerRef
    former: bool
    worker_type: str  # employee | contingent
    given_name: str
    family_name: str
    email: str
    title: str
    department: str
    division: str
    location: str
    cost_center: str
    status: str  # active | terminated | pre_hire (as of "now"; see status_as_of)
    hire_date: date
    termination_date: date | None
    effective_date: date
    last_modified: datetime
    manager: WorkerRef | None
    dotted: tuple[WorkerRef, ...]
    sup_org: OrgRef  # primary supervisory organization: the one headed by the manager
    chain: tuple[tuple[OrgRef, WorkerRef], ...]  # supervisory management chain, nearest first
    is_manager: bool
    cache: dict[Any, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def status_as_of(self, effective: date | None) -> str:
        """The status as of an effective date; ``None`` means today's truth (the org's own status).

        A future-dated hire is a record that exists (it was entered) but is not active before its
        hire date; a termination takes effect on its termination date.
        """
        if self.former:
            return "terminated"
        if effective is None:
            return self.status
        if self.status == "terminated" and self.termination_date and self.termination_date <= effective:
            return "terminated"
        if self.hire_date > effective:
            return "pre_hire"
        return "active"


@dataclass
class SupOrg:
    """A supervisory organization: headed by one worker (possibly a dangling reference)."""

    ref: OrgRef
    head: WorkerRef
    head_index: int
    superior: OrgRef | None
    members: list[Record] = field(default_factory=list)
    subordinates: list[OrgRef] = field(default_factory=list)


@dataclass
class State:
    """The tenant as of one entry moment."""

    token: int
    records: list[Record]
    people: list[Record]  # current records only (one per person), in index order
    by_wid: dict[str, Record]
    by_number: dict[tuple[str, str], Record]
    orgs: dict[str, SupOrg]  # by org WID
    results: OrderedDict[Any, list[Record]] = field(default_factory=OrderedDict)
    results_lock: threading.Lock = field(default_factory=threading.Lock)


_tokens = itertools.count(1)


def _copy(w: Worker) -> Worker:
    return replace(w, former_wids=list(w.former_wids))


class History:
    """Every worker's successive states (copies), keyed by entry time, fed by ``org.on_change``."""

    def __init__(self, org: SandboxOrg) -> None:
        self.org = org
        self.lock = org.lock
        self.copies: dict[int, list[Worker]] = {}
        self.times: dict[int, list[datetime]] = {}
        self.former_events: dict[str, tuple[datetime, date]] = {}
        self.latest_entry: datetime | None = None
        with self.lock:
            for w in org:
                self._record(w)
            org.on_change(self._record)

    def _record(self, w: Worker) -> None:
        copy = _copy(w)
        copies = self.copies.setdefault(w.index, [])
        previous = set(copies[-1].former_wids) if copies else set()
        for wid in copy.former_wids:
            if wid not in previous:
                self.former_events.setdefault(wid, (copy.last_modified, copy.effective_date))
        copies.append(copy)
        self.times.setdefault(w.index, []).append(copy.last_modified)
        if self.latest_entry is None or copy.last_modified > self.latest_entry:
            self.latest_entry = copy.last_modified

    def as_of(self, moment: datetime | None) -> list[Worker | None]:
        """Each worker's copy as of an entry moment (``None``: the latest; absent: not entered yet)."""
        with self.lock:
            size = max(self.copies) + 1 if self.copies else 0
            out: list[Worker | None] = [None] * size
            for index, copies in self.copies.items():
                if moment is None:
                    out[index] = copies[-1]
                    continue
                k = bisect.bisect_right(self.times[index], moment)
                out[index] = copies[k - 1] if k else None
            return out

    def events(self, index: int) -> list[tuple[datetime, date]]:
        """The transaction log of one person: (entry moment, effective date) per change."""
        with self.lock:
            return [(c.last_modified, c.effective_date) for c in self.copies.get(index, ())]


class Tenant:
    """Builds and caches :class:`State` objects (current and historical) for one emulator."""

    def __init__(self, org: SandboxOrg) -> None:
        self.org = org
        self.history = History(org)
        self._lock = threading.Lock()
        self._current: State | None = None
        self._current_version = -1
        self._past: OrderedDict[datetime, State] = OrderedDict()
        self._reuse: dict[tuple[int, str], Record] = {}
        self._refs: dict[WorkerRef, WorkerRef] = {}
        self._org_refs: dict[OrgRef, OrgRef] = {}

    def now(self) -> datetime:
        return self.org.clock()

    def current(self) -> State:
        with self._lock:
            version = self.org.version
            if self._current is None or self._current_version != version:
                self._current = self._build(self.history.as_of(None), reuse=True)
                self._current_version = version
            return self._current

    def as_of(self, moment: datetime | None) -> State:
        """The tenant as of an entry moment; moments after the latest edit share the current state."""
        latest = self.history.latest_entry
        if moment is None or latest is None or moment >= latest:
            return self.current()
        with self._lock:
            # a past moment's state never changes, except that a later edit cannot land before it
            state = self._past.get(moment)
            if state is None:
                state = self._build(self.history.as_of(moment), reuse=False)
                self._past[moment] = state
                while len(self._past) > 4:
                    self._past.popitem(last=False)
            return state

    # ---- building ----
    def _build(self, copies: list[Worker | None], *, reuse: bool) -> State:
        org = self.org
        seed = org.seed
        present: dict[int, Worker] = {i: c for i, c in enumerate(copies) if c is not None and not c.deleted}
        refs: dict[int, WorkerRef] = {}
        intern, org_intern = self._refs, self._org_refs

        def ref(i: int) -> WorkerRef:
            r = refs.get(i)
            if r is None:
                c = present.get(i)
                if c is None:  # dangling on purpose: a WID that matches no worker
                    r = WorkerRef(org.make_wid(i), EMPLOYEE_ID, org.employee_id(i), "")
                else:
                    kind = CONTINGENT_ID if c.worker_type == "contingent" else EMPLOYEE_ID
                    r = WorkerRef(c.wid, kind, c.employee_id, f"{c.given_name} {c.family_name}")
                # interned across builds: equal records then compare their chains by identity
                r = refs[i] = intern.setdefault(r, r)
            return r

        reports: dict[int, int] = {}
        for i, c in present.items():
            if c.manager is not None and c.manager != i:
                reports[c.manager] = reports.get(c.manager, 0) + 1
        org_refs: dict[int, OrgRef] = {}

        def sup(head: int) -> OrgRef:
            o = org_refs.get(head)
            if o is None:
                c = present.get(head)
                code = f"SUP-{org.employee_id(head)}"
                name = f"{c.department} ({c.given_name} {c.family_name})" if c else f"Unassigned ({code})"
                o = OrgRef(digest("suporg", seed, head), code, name)
                o = org_refs[head] = org_intern.setdefault(o, o)
            return o

        def walk(c: Worker) -> tuple[tuple[OrgRef, WorkerRef], ...]:
            levels: list[tuple[OrgRef, WorkerRef]] = []
            seen = {c.index}
            m = c.manager
            while m is not None:
                levels.append((sup(m), ref(m)))
                nxt = present.get(m)
                if m in seen or nxt is None:
                    break
                seen.add(m)
                m = nxt.manager
            return tuple(levels)

        chains: dict[int, tuple[tuple[OrgRef, WorkerRef], ...]] = {}

        def chain(c: Worker) -> tuple[tuple[OrgRef, WorkerRef], ...]:
            """Memoised walk up the management chain; members of a cycle fall back to a plain walk."""
            if c.index in chains:
                return chains[c.index]
            path: list[Worker] = []
            on_path: set[int] = set()
            node: Worker | None = c
            while node is not None and node.index not in chains and node.index not in on_path:
                path.append(node)
                on_path.add(node.index)
                node = None if node.manager is None else present.get(node.manager)
            if node is not None and node.index in on_path:  # a cycle: no sharing along it
                for x in path:
                    chains[x.index] = walk(x)
                return chains[c.index]
            for x in reversed(path):
                m = x.manager
                if m is None:
                    chains[x.index] = ()
                elif m not in present:
                    chains[x.index] = ((sup(m), ref(m)),)
                else:
                    chains[x.index] = ((sup(m), ref(m)), *chains[m])
            return chains[c.index]

        records: list[Record] = []
        people: list[Record] = []
        for i in sorted(present):
            c = present[i]
            manager = None if c.manager is None else ref(c.manager)
            base = Record(
                index=i,
                ref=ref(i),
                former=False,
                worker_type=c.worker_type,
                given_name=c.given_name,
                family_name=c.family_name,
                email=c.email,
                title=c.title,
                department=c.department,
                division=c.division,
                location=c.location,
                cost_center=c.cost_center,
                status=c.status,
                hire_date=c.hire_date,
                termination_date=c.termination_date,
                effective_date=c.effective_date,
                last_modified=c.last_modified,
                manager=manager,
                dotted=tuple(ref(d) for d in c.dotted),
                sup_org=sup(c.manager if c.manager is not None else i),
                chain=chain(c),
                is_manager=reports.get(i, 0) > 0,
            )
            generations = len(c.former_wids)
            for g, wid in enumerate(c.former_wids):
                kind = c.worker_type if (generations - g) % 2 == 0 else _other(c.worker_type)
                when, effective = self.history.former_events.get(wid, (c.last_modified, c.effective_date))
                title = c.title
                if kind == "contingent" and not title.startswith("Contractor, "):
                    title = "Contractor, " + title
                records.append(
                    self._reused(
                        reuse,
                        replace(
                            base,
                            ref=WorkerRef(
                                wid,
                                CONTINGENT_ID if kind == "contingent" else EMPLOYEE_ID,
                                c.employee_id,
                                base.ref.descriptor,
                            ),
                            former=True,
                            worker_type=kind,
                            title=title,
                            status="terminated",
                            termination_date=effective,
                            effective_date=effective,
                            last_modified=when,
                            is_manager=False,
                            cache={},
                        ),
                    )
                )
            current = self._reused(reuse, base)
            records.append(current)
            people.append(current)

        by_wid = {r.ref.wid: r for r in records}
        by_number: dict[tuple[str, str], Record] = {}
        for r in records:  # in index order, former before current: the current record wins
            by_number[(r.ref.id_type, r.ref.number)] = r
        orgs: dict[str, SupOrg] = {}
        for head, o in list(org_refs.items()):
            head_copy = present.get(head)
            superior = None
            if head_copy is not None and head_copy.manager is not None and head_copy.manager != head:
                superior = sup(head_copy.manager)
            orgs[o.wid] = SupOrg(o, ref(head), head, superior)
        for r in people:
            orgs[r.sup_org.wid].members.append(r)
        for unit in list(orgs.values()):
            if unit.superior is not None and unit.superior.wid in orgs:
                orgs[unit.superior.wid].subordinates.append(unit.ref)
        return State(next(_tokens), records, people, by_wid, by_number, orgs)

    def _reused(self, reuse: bool, record: Record) -> Record:
        if not reuse:
            return record
        key = (record.index, record.ref.wid)
        old = self._reuse.get(key)
        if old is not None and old == record:
            return old
        self._reuse[key] = record
        return record


def _other(kind: str) -> str:
    return "employee" if kind == "contingent" else "contingent"
