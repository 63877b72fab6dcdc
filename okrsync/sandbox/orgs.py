"""Deterministic generated organisations that every emulator serves.

One ``SandboxOrg`` is the single truth behind all emulators: each one renders the same
workers in its vendor's id space (Workday WIDs, SuccessFactors userIds, Entra objectIds,
Salesforce 18-char Ids), so a test can pull from any of them and compare against
:meth:`SandboxOrg.expected_people`. Edits bump a version and timestamps so each emulator's
incremental query (Graph delta, SF ``lastModifiedDateTime``, Workday transaction log,
Salesforce ``LastModifiedDate``) sees them.
"""

from __future__ import annotations

import hashlib
import random
import threading
import unicodedata
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from okrsync.models import Person, PersonStatus, WorkerType

DEPARTMENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # department, division, individual-contributor titles
    (
        "Sales",
        "Commercial",
        ("Account Executive", "Sales Development Representative", "Solutions Consultant"),
    ),
    ("Marketing", "Commercial", ("Marketing Specialist", "Content Strategist", "Campaign Manager")),
    (
        "Customer Success",
        "Commercial",
        ("Customer Success Manager", "Support Engineer", "Onboarding Specialist"),
    ),
    ("Engineering", "Technology", ("Software Engineer", "Senior Software Engineer", "QA Engineer", "SRE")),
    ("Product", "Technology", ("Product Manager", "UX Designer", "Data Analyst")),
    ("IT", "Technology", ("Systems Administrator", "Service Desk Analyst", "Security Analyst")),
    ("Finance", "Corporate", ("Accountant", "Financial Analyst", "Payroll Specialist")),
    ("People", "Corporate", ("HR Business Partner", "Recruiter", "Learning Specialist")),
    ("Legal", "Corporate", ("Counsel", "Paralegal", "Compliance Analyst")),
    ("Operations", "Operations", ("Operations Analyst", "Facilities Coordinator", "Procurement Specialist")),
)
LOCATIONS = (
    "London",
    "New York",
    "Berlin",
    "Paris",
    "Singapore",
    "Toronto",
    "Sydney",
    "Madrid",
    "Chicago",
    "Dublin",
)
DEFECTS = frozenset({"cycle", "self_manager", "dangling_manager", "duplicate_email"})
EDIT_KINDS = ("move", "terminate", "rename", "hire")  # random_edits' default cycle
RANDOM_EDIT_KINDS = (*EDIT_KINDS, "rehire", "convert")
_SF_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _names() -> tuple[list[str], list[str]]:
    from faker.providers.person.en_US import Provider

    return sorted(set(Provider.first_names)), sorted(set(Provider.last_names))


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if c.isalnum() and ord(c) < 128).lower()


def salesforce_id(prefix: str, number: int) -> str:
    """A valid 18-character Salesforce Id (15-char id + case-insensitivity checksum)."""
    body = ""
    n = number
    for _ in range(12):
        n, r = divmod(n, 62)
        body = _BASE62[r] + body
    short = prefix + body
    suffix = ""
    for chunk in (short[0:5], short[5:10], short[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isupper())
        suffix += _SF_ID_CHARS[bits]
    return short + suffix


@dataclass(slots=True)
class Worker:
    """One generated worker; ``manager`` is an index (``>= len(org)`` means dangling on purpose)."""

    index: int
    employee_id: str
    wid: str
    given_name: str
    family_name: str
    email: str
    title: str
    department: str
    division: str
    location: str
    cost_center: str
    worker_type: str  # "employee" | "contingent"
    status: str  # "active" | "terminated" | "pre_hire"
    hire_date: date
    termination_date: date | None
    manager: int | None
    dotted: tuple[int, ...]
    last_modified: datetime
    effective_date: date
    version: int = 0
    former_wids: list[str] = field(default_factory=list)
    deleted: bool = False  # removed from the directory altogether (Graph hard delete)

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def user_name(self) -> str:
        return self.email

    @property
    def active(self) -> bool:
        return self.status == "active"


class SandboxOrg:
    """A generated organisation plus the edit API the emulators and tests share."""

    def __init__(
        self,
        workers: int = 1000,
        *,
        seed: int = 1,
        as_of: date | None = None,
        defects: Iterable[str] = (),
        domain: str = "example.com",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("an organisation needs at least one worker")
        unknown = set(defects) - DEFECTS
        if unknown:
            raise ValueError(f"unknown defects {sorted(unknown)}; choose from {sorted(DEFECTS)}")
        self.seed = seed
        self.as_of = as_of or datetime.now(UTC).date()
        self.domain = domain
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.lock = threading.RLock()
        self.version = 0
        self.workers: list[Worker] = []
        self._by_employee_id: dict[str, int] = {}
        self._emails: set[str] = set()
        self._listeners: list[Callable[[Worker], None]] = []
        self._generate(workers)
        for defect in sorted(set(defects)):
            self._inject(defect)

    # ---- ids in each vendor's space (pure functions of seed and index) ----
    def _digest(self, kind: str, index: int) -> str:
        return hashlib.md5(f"{kind}:{self.seed}:{index}".encode(), usedforsecurity=False).hexdigest()

    def employee_id(self, index: int) -> str:
        return str(100001 + index)

    def make_wid(self, index: int, generation: int = 0) -> str:
        return self._digest(f"wid{generation}", index)

    def entra_id(self, index: int) -> str:
        return str(uuid.UUID(self._digest("entra", index)))

    def sf_user_id(self, index: int) -> str:
        return f"u{100001 + index}"

    def salesforce_user_id(self, index: int) -> str:
        return salesforce_id("005", index + 1 + (self.seed % 1000) * 10_000_000)

    # ---- generation ----
    def _generate(self, n: int) -> None:
        rng = random.Random(self.seed)
        firsts, lasts = _names()
        start = datetime.combine(self.as_of, datetime.min.time(), tzinfo=UTC)
        managers_queue: deque[int] = deque()

        def add(manager: int | None, dept: int, title: str) -> int:
            i = len(self.workers)
            given, family = rng.choice(firsts), rng.choice(lasts)
            hired = self.as_of - timedelta(days=rng.randint(30, 365 * 15))
            changed = start - timedelta(days=rng.randint(1, 700), seconds=rng.randint(0, 86399))
            name, division, _ = DEPARTMENTS[dept]
            w = Worker(
                index=i,
                employee_id=self.employee_id(i),
                wid=self.make_wid(i),
                given_name=given,
                family_name=family,
                email=self._unique_email(given, family),
                title=title,
                department=name,
                division=division,
                location=LOCATIONS[rng.randrange(len(LOCATIONS))],
                cost_center=f"CC-{dept + 1:02d}{rng.randint(0, 9)}",
                worker_type="employee",
                status="active",
                hire_date=max(hired, self.as_of - timedelta(days=365 * 15)),
                termination_date=None,
                manager=manager,
                dotted=(),
                last_modified=min(changed, start),
                effective_date=min(hired, changed.date()),
            )
            self.workers.append(w)
            self._by_employee_id[w.employee_id] = i
            return i

        root = add(None, 0, "Chief Executive Officer")
        self.workers[root].department = "Executive"
        self.workers[root].division = "Corporate"
        managers_queue.append(root)
        while len(self.workers) < n:
            if not managers_queue:  # everyone so far became a leaf: promote the latest hire
                managers_queue.append(len(self.workers) - 1)
            m = managers_queue.popleft()
            wide = rng.random() < 0.02
            span = rng.randint(20, 40) if wide else rng.randint(3, 12)
            level = self._level(m)
            for k in range(span):
                if len(self.workers) >= n:
                    break
                dept = k % len(DEPARTMENTS) if m == root else self._dept_index(m)
                if m == root:
                    title = f"VP, {DEPARTMENTS[dept][0]}"
                    is_manager = True
                else:
                    is_manager = rng.random() < 0.35
                    ic_titles = DEPARTMENTS[dept][2]
                    title = (
                        ("Director, " if level < 2 else "Manager, ") + DEPARTMENTS[dept][0]
                        if is_manager
                        else ic_titles[rng.randrange(len(ic_titles))]
                    )
                child = add(m, dept, title)
                if is_manager:
                    managers_queue.append(child)
        self._assign_statuses(rng)

    def _level(self, i: int) -> int:
        level = 0
        m = self.workers[i].manager
        while m is not None and m < len(self.workers) and level < 1000:
            level += 1
            m = self.workers[m].manager
        return level

    def _dept_index(self, i: int) -> int:
        name = self.workers[i].department
        for k, (dept, _, _) in enumerate(DEPARTMENTS):
            if dept == name:
                return k
        return 0

    def _assign_statuses(self, rng: random.Random) -> None:
        has_reports = {w.manager for w in self.workers if w.manager is not None}
        leaves = [w for w in self.workers if w.index not in has_reports and w.index != 0]
        managers = sorted(has_reports)
        rng.shuffle(leaves)
        n = len(self.workers)
        cuts = [round(n * 0.05), round(n * 0.02), round(n * 0.01)]
        contingent = leaves[: cuts[0]]
        terminated = leaves[cuts[0] : cuts[0] + cuts[1]]
        future = leaves[cuts[0] + cuts[1] : cuts[0] + cuts[1] + cuts[2]]
        for w in contingent:
            w.worker_type = "contingent"
            w.title = "Contractor, " + w.title
        for w in terminated:
            w.status = "terminated"
            w.termination_date = self.as_of - timedelta(days=rng.randint(1, 300))
            w.effective_date = w.termination_date
        for w in future:
            w.status = "pre_hire"
            w.hire_date = self.as_of + timedelta(days=rng.randint(1, 60))
            w.effective_date = w.hire_date
        if len(managers) > 2:
            for w in self.workers:
                if w.index and w.manager is not None and rng.random() < 0.03:
                    other = managers[rng.randrange(len(managers))]
                    if other not in (w.index, w.manager) and other < w.index:
                        w.dotted = (other,)

    def _unique_email(self, given: str, family: str) -> str:
        base = f"{_ascii(given)}.{_ascii(family)}"
        email, k = f"{base}@{self.domain}", 1
        while email in self._emails:
            k += 1
            email = f"{base}{k}@{self.domain}"
        self._emails.add(email)
        return email

    def _inject(self, defect: str) -> None:
        """Deterministic defects deep in the tree, so the rest of the org stays usable."""
        n = len(self.workers)
        leaves = [w for w in self.workers if w.manager is not None and w.status == "active"]
        if defect == "self_manager":
            leaves[-1].manager = leaves[-1].index
        elif defect == "dangling_manager":
            leaves[-2].manager = n + 1_000_000
        elif defect == "duplicate_email":
            leaves[-3].email = leaves[-4].email
        elif defect == "cycle":
            # a -> b -> c -> a among three managers of one chain
            chain = [w for w in self.workers if w.manager is not None and self._level(w.index) >= 2]
            for w in reversed(chain):
                m = w.manager
                if m is not None and m < n and self.workers[m].manager is not None:
                    top = self.workers[m].manager
                    assert top is not None
                    self.workers[top].manager = w.index
                    return
            raise ValueError("organisation too small for a cycle defect")

    # ---- reading ----
    def __len__(self) -> int:
        return len(self.workers)

    def __iter__(self) -> Iterator[Worker]:
        return iter(self.workers)

    def get(self, employee_id: str) -> Worker:
        try:
            return self.workers[self._by_employee_id[employee_id]]
        except KeyError:
            raise KeyError(f"no worker with employee id {employee_id!r}") from None

    def manager_of(self, w: Worker) -> Worker | None:
        """The manager worker, or None (no manager, or a deliberately dangling reference)."""
        if w.manager is None or w.manager >= len(self.workers):
            return None
        return self.workers[w.manager]

    def manager_ref(self, w: Worker, id_of: Callable[[int], str]) -> str | None:
        """The manager's id in some vendor's id space, dangling references included."""
        return None if w.manager is None else id_of(w.manager)

    def changed_since(self, version: int) -> list[Worker]:
        return [w for w in self.workers if w.version > version]

    def expected_people(self, *, include_deleted: bool = False) -> list[Person]:
        """The canonical people a faithful connector must produce from any emulator (ids = employee ids)."""
        out = []
        for w in self.workers:
            if w.deleted and not include_deleted:
                continue
            out.append(
                Person(
                    id=w.employee_id,
                    email=w.email,
                    user_name=w.user_name,
                    display_name=w.display_name,
                    given_name=w.given_name,
                    family_name=w.family_name,
                    title=w.title,
                    department=w.department,
                    division=w.division,
                    location=w.location,
                    cost_center=w.cost_center,
                    worker_type=WorkerType(w.worker_type),
                    status=PersonStatus(w.status),
                    hire_date=w.hire_date,
                    termination_date=w.termination_date,
                    manager_id=self.manager_ref(w, self.employee_id),
                    additional_manager_ids=tuple(self.employee_id(d) for d in w.dotted),
                )
            )
        return out

    # ---- edits: every one bumps the version and the entry timestamp ----
    def on_change(self, listener: Callable[[Worker], None]) -> None:
        """Emulators keep derived state (directories, caches) in step through this hook."""
        self._listeners.append(listener)

    def _touch(self, w: Worker, effective: date | None = None) -> Worker:
        self.version += 1
        w.version = self.version
        w.last_modified = self.clock()
        w.effective_date = effective or w.last_modified.date()
        for listener in self._listeners:
            listener(w)
        return w

    def hire(
        self,
        manager_id: str,
        *,
        given_name: str = "New",
        family_name: str | None = None,
        title: str = "Analyst",
        hire_date: date | None = None,
        worker_type: str = "employee",
    ) -> Worker:
        with self.lock:
            m = self.get(manager_id)
            i = len(self.workers)
            family = family_name or f"Hire{i}"
            hired = hire_date or self.clock().date()
            w = Worker(
                index=i,
                employee_id=self.employee_id(i),
                wid=self.make_wid(i),
                given_name=given_name,
                family_name=family,
                email=self._unique_email(given_name, family),
                title=title,
                department=m.department,
                division=m.division,
                location=m.location,
                cost_center=m.cost_center,
                worker_type=worker_type,
                status="pre_hire" if hired > self.clock().date() else "active",
                hire_date=hired,
                termination_date=None,
                manager=m.index,
                dotted=(),
                last_modified=self.clock(),
                effective_date=hired,
            )
            self.workers.append(w)
            self._by_employee_id[w.employee_id] = i
            return self._touch(w, hired)

    def terminate(self, employee_id: str, *, on: date | None = None) -> Worker:
        with self.lock:
            w = self.get(employee_id)
            w.status = "terminated"
            w.termination_date = on or self.clock().date()
            return self._touch(w, w.termination_date)

    def move(self, employee_id: str, new_manager_id: str | None) -> Worker:
        with self.lock:
            w = self.get(employee_id)
            w.manager = None if new_manager_id is None else self.get(new_manager_id).index
            return self._touch(w)

    def rename(self, employee_id: str, **changes: str) -> Worker:
        allowed = {"given_name", "family_name", "title", "department", "location", "cost_center", "email"}
        bad = set(changes) - allowed
        if bad:
            raise ValueError(f"cannot rename {sorted(bad)}; editable: {sorted(allowed)}")
        with self.lock:
            w = self.get(employee_id)
            for key, value in changes.items():
                setattr(w, key, value)
            return self._touch(w)

    def rehire(self, employee_id: str, *, on: date | None = None) -> Worker:
        with self.lock:
            w = self.get(employee_id)
            w.status = "active"
            w.termination_date = None
            w.hire_date = on or self.clock().date()
            return self._touch(w, w.hire_date)

    def convert(self, employee_id: str) -> Worker:
        """Contingent -> employee: a new WID owns the person; the old one stays as an inactive record."""
        with self.lock:
            w = self.get(employee_id)
            w.former_wids.append(w.wid)
            w.wid = self.make_wid(w.index, len(w.former_wids))
            w.worker_type = "employee" if w.worker_type == "contingent" else "contingent"
            w.title = w.title.removeprefix("Contractor, ")
            return self._touch(w)

    def delete(self, employee_id: str) -> Worker:
        """Remove from directories altogether (what a Graph hard delete reports)."""
        with self.lock:
            w = self.get(employee_id)
            w.deleted = True
            return self._touch(w)

    def apply_edit(self, edit: dict[str, object]) -> Worker:
        """One edit from the ``POST /_sandbox/edit`` JSON body: ``{"op": "move", "id": ..., ...}``."""
        op = str(edit.get("op", ""))
        args = {k: v for k, v in edit.items() if k not in {"op", "id"}}
        target = str(edit.get("id", ""))
        if op == "hire":
            hire_date = args.pop("hire_date", None)
            return self.hire(
                str(args.pop("manager")),
                hire_date=date.fromisoformat(str(hire_date)) if hire_date else None,
                **{k: str(v) for k, v in args.items()},
            )
        if op == "move":
            manager = args.get("manager")
            return self.move(target, None if manager is None else str(manager))
        if op in {"terminate", "rehire"}:
            on = args.get("on")
            fn = self.terminate if op == "terminate" else self.rehire
            return fn(target, on=date.fromisoformat(str(on)) if on else None)
        if op == "rename":
            return self.rename(target, **{k: str(v) for k, v in args.items()})
        if op == "convert":
            return self.convert(target)
        if op == "delete":
            return self.delete(target)
        raise ValueError(
            f"unknown edit op {op!r}; one of hire, move, terminate, rehire, rename, convert, delete"
        )

    def random_edits(
        self,
        count: int,
        *,
        seed: int = 7,
        kinds: Sequence[str] = EDIT_KINDS,
        future_hires: float = 0.0,
        future_days: tuple[int, int] = (1, 60),
    ) -> list[dict[str, object]]:
        """A deterministic mix of edits, applied; returns them (the ``POST /_sandbox/edit`` bodies).

        ``kinds`` cycle in order (default: move, terminate, rename, hire — what earlier tests rely
        on); ``rehire`` (a terminated worker comes back today) and ``convert`` (contingent ↔
        employee: a new WID) can be added. ``future_hires`` is the fraction of hires dated
        ``future_days`` ahead of the clock (pre-hires, as ~1% of a real org's records are); 0 keeps
        the original behaviour and random sequence exactly.
        """
        unknown = set(kinds) - set(RANDOM_EDIT_KINDS)
        if unknown or not kinds:
            raise ValueError(
                f"unknown edit kinds {sorted(unknown)}; choose from {', '.join(RANDOM_EDIT_KINDS)}"
            )
        if not 0 <= future_hires <= 1:
            raise ValueError(f"future_hires {future_hires} is not between 0 and 1")
        rng = random.Random(seed)
        active = [w for w in self.workers if w.status == "active" and w.index != 0 and not w.deleted]
        managers = sorted(
            {w.manager for w in self.workers if w.manager is not None and w.manager < len(self)}
        )
        edits: list[dict[str, object]] = []
        used: set[str] = set()
        while len(edits) < count:
            kind = kinds[len(edits) % len(kinds)]
            if kind in {"rehire", "convert"}:
                edit = self._random_status_edit(kind, rng, used)
                used.add(str(edit["id"]))
                self.apply_edit(edit)
                edits.append(edit)
                continue
            w = active[rng.randrange(len(active))]
            if w.employee_id in used:
                continue
            if kind == "hire":
                edit = {
                    "op": "hire",
                    "manager": self.employee_id(managers[rng.randrange(len(managers))]),
                    "given_name": "Nova",
                }
                if future_hires and rng.random() < future_hires:
                    ahead = timedelta(days=rng.randint(*future_days))
                    edit["hire_date"] = (self.clock().date() + ahead).isoformat()
            elif kind == "move":
                new = managers[rng.randrange(len(managers))]
                if new == w.index or new == w.manager or self._is_below(new, w.index):
                    continue
                edit = {"op": "move", "id": w.employee_id, "manager": self.employee_id(new)}
            elif kind == "terminate":
                if any(x.manager == w.index for x in self.workers):
                    continue
                edit = {"op": "terminate", "id": w.employee_id}
            else:
                edit = {"op": "rename", "id": w.employee_id, "title": f"Senior {w.title}"[:80]}
            used.add(w.employee_id)
            self.apply_edit(edit)
            edits.append(edit)
        return edits

    def _random_status_edit(self, kind: str, rng: random.Random, used: set[str]) -> dict[str, object]:
        """A rehire of a terminated worker or a conversion of a contingent one, not yet edited."""
        if kind == "rehire":
            pool = [w for w in self.workers if w.status == "terminated" and not w.deleted]
        else:
            pool = [w for w in self.workers if w.worker_type == "contingent" and not w.deleted]
        pool = [w for w in pool if w.employee_id not in used]
        if not pool:
            raise ValueError(f"no worker left to {kind} in this organisation")
        return {"op": kind, "id": pool[rng.randrange(len(pool))].employee_id}

    def _is_below(self, candidate: int, ancestor: int) -> bool:
        m: int | None = candidate
        steps = 0
        while m is not None and m < len(self.workers) and steps < 10_000:
            if m == ancestor:
                return True
            m = self.workers[m].manager
            steps += 1
        return False
