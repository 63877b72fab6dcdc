"""The emulated Entra directory: users keyed by object id, their managers, versions and a change log.

The directory is deliberately *not* the org: it is what a tenant holds, which a sync reads
from (``same``), fills (``empty``) or repairs (``stale``). When it mirrors the org, HR edits
reach it field by field through ``org.on_change``: a field the org changed is copied, a field
the directory holds differently for another reason (staleness, a push) is left alone. Every
change bumps the directory version and appends to a log, which is what ``/users/delta`` reads.

Pre-hires exist in the directory with ``accountEnabled: false`` (as Workday/SuccessFactors
inbound provisioning creates them ahead of day one); terminated workers are disabled;
deleted workers are absent (hard-deleted, reported by delta as ``"deleted"``).
"""

from __future__ import annotations

import random
import threading
import uuid
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from operator import itemgetter
from typing import Any

from okrsync.sandbox.graph.common import GraphError, bad_request, not_found
from okrsync.sandbox.orgs import DEPARTMENTS, SandboxOrg, Worker

MODES = ("same", "empty", "stale")
STALE_KINDS = ("jobTitle", "department", "manager_wrong", "manager_missing")
MAX_CACHED_SHAPES = 8
DERIVED_FIELDS = (
    "displayName",
    "givenName",
    "surname",
    "mail",
    "userPrincipalName",
    "mailNickname",
    "jobTitle",
    "department",
    "employeeId",
    "employeeType",
    "companyName",
    "officeLocation",
    "accountEnabled",
    "employeeHireDate",
    "createdDateTime",
    "userType",
)


@dataclass(slots=True)
class DirUser:
    """One directory object. ``removed`` is None for live users, else the delta reason."""

    id: str
    props: dict[str, Any]
    manager: str | None
    order: int
    version: int = 0
    removed: str | None = None
    former_manager: str | None = None  # reported as a removed manager@delta entry

    def view(self) -> dict[str, Any]:
        """Properties as filters see them (``id`` included)."""
        return {"id": self.id, **self.props}


def company_name(org: SandboxOrg) -> str:
    return org.domain.split(".")[0].title() + " Inc."


def worker_properties(org: SandboxOrg, w: Worker, company: str) -> dict[str, Any]:
    """How inbound HR provisioning would render a worker as an Entra user."""
    created = w.hire_date - timedelta(days=14)
    return {
        "displayName": w.display_name,
        "givenName": w.given_name,
        "surname": w.family_name,
        "mail": w.email,
        "userPrincipalName": w.email,
        "mailNickname": w.email.split("@")[0],
        "jobTitle": w.title,
        "department": w.department,
        "employeeId": w.employee_id,
        "employeeType": "Employee" if w.worker_type == "employee" else "Contractor",
        "companyName": company,
        "officeLocation": w.location,
        "accountEnabled": w.status == "active",
        "employeeHireDate": f"{w.hire_date.isoformat()}T00:00:00Z",
        "createdDateTime": f"{created.isoformat()}T08:00:00Z",
        "userType": "Member",
    }


class Directory:
    """Users, manager links, reports index, change log and per-shape JSON fragment caches."""

    def __init__(self, org: SandboxOrg, mode: str = "same", stale_fraction: float = 0.2) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown directory mode {mode!r}; choose from {', '.join(MODES)}")
        if not 0 <= stale_fraction <= 1:
            raise ValueError(f"stale_fraction {stale_fraction} is not between 0 and 1")
        self.org = org
        self.mode = mode
        self.company = company_name(org)
        self.lock = threading.RLock()
        self.users: dict[str, DirUser] = {}
        self.order: list[str] = []
        self.by_upn: dict[str, str] = {}
        self.reports: dict[str, dict[str, None]] = {}
        self.version = 0
        self.live_count = 0
        self.log: list[tuple[int, str]] = []
        self.stale: dict[str, tuple[str, ...]] = {}
        self._mirror: dict[str, tuple[Any, ...]] = {}
        self._fragments: OrderedDict[Hashable, dict[str, bytes]] = OrderedDict()
        if mode != "empty":
            with org.lock:
                for w in org:
                    if not w.deleted:
                        self._insert_worker(w)
            if mode == "stale":
                self._make_stale(stale_fraction)
            org.on_change(self.sync_worker)

    # ---- reading ----
    def live(self, key: str) -> DirUser | None:
        """A live user by object id or userPrincipalName (both case-insensitive)."""
        k = key.strip().lower()
        user = self.users.get(k)
        if user is None and "@" in k:
            uid = self.by_upn.get(k)
            user = self.users.get(uid) if uid else None
        return user if user is not None and user.removed is None else None

    def require(self, key: str) -> DirUser:
        user = self.live(key)
        if user is None:
            raise not_found(key)
        return user

    def iter_live(self, start: int = 0) -> Iterator[tuple[int, DirUser]]:
        """(position, user) over live users in creation order; positions are stable paging cursors."""
        users, order = self.users, self.order
        for pos in range(start, len(order)):
            user = users[order[pos]]
            if user.removed is None:
                yield pos, user

    def direct_reports(self, user: DirUser) -> list[DirUser]:
        found = (self.users.get(r) for r in self.reports.get(user.id, ()))
        return sorted((u for u in found if u is not None and u.removed is None), key=lambda u: u.order)

    def changed_between(self, since: int, upto: int) -> list[str]:
        """Ids changed in (since, upto], each once, in order of first change."""
        lo = bisect_right(self.log, since, key=itemgetter(0))
        hi = bisect_right(self.log, upto, key=itemgetter(0))
        return list(dict.fromkeys(uid for _, uid in self.log[lo:hi]))

    def shape_cache(self, shape: Hashable) -> dict[str, bytes]:
        """The fragment cache of one select/expand shape (LRU over shapes bounds memory)."""
        cache = self._fragments.get(shape)
        if cache is None:
            cache = self._fragments[shape] = {}
            while len(self._fragments) > MAX_CACHED_SHAPES:
                self._fragments.popitem(last=False)
        else:
            self._fragments.move_to_end(shape)
        return cache

    def snapshot(self) -> list[dict[str, Any]]:
        """Every live user with its manager id: what tests compare against the org after a push."""
        return [{"id": u.id, **u.props, "manager": u.manager} for _, u in self.iter_live()]

    # ---- writes (callers hold ``lock``) ----
    def create(self, props: dict[str, Any], manager: str | None = None, uid: str | None = None) -> DirUser:
        upn = str(props.get("userPrincipalName", "")).lower()
        if upn in self.by_upn:
            raise bad_request(
                "Another object with the same value for property userPrincipalName already exists."
            )
        uid = (uid or str(uuid.uuid4())).lower()
        user = DirUser(uid, dict(props), None, len(self.order))
        self.users[uid] = user
        self.order.append(uid)
        self.by_upn[upn] = uid
        self.live_count += 1
        self._link(user, manager)
        self._touch(user)
        return user

    def update(self, user: DirUser, changes: dict[str, Any]) -> None:
        changed = {k: v for k, v in changes.items() if user.props.get(k) != v}
        if not changed:
            return
        if "userPrincipalName" in changed:
            new_upn = str(changed["userPrincipalName"]).lower()
            if self.by_upn.get(new_upn, user.id) != user.id:
                raise bad_request(
                    "Another object with the same value for property userPrincipalName already exists."
                )
            self.by_upn.pop(str(user.props.get("userPrincipalName", "")).lower(), None)
            self.by_upn[new_upn] = user.id
        user.props.update(changed)
        self._touch(user)

    def set_manager(self, user: DirUser, manager: str | None) -> None:
        manager = manager.lower() if manager else None
        if manager == user.manager:
            return
        user.former_manager = user.manager if manager is None else None
        self._link(user, manager)
        self._touch(user)

    def remove(self, user: DirUser, reason: str) -> None:
        """Soft (``changed``) or hard (``deleted``) delete: the object leaves listings, delta reports it."""
        if user.removed is not None:
            if reason == "deleted" and user.removed != reason:
                user.removed = reason
                self._touch(user)
            return
        user.removed = reason
        self.by_upn.pop(str(user.props.get("userPrincipalName", "")).lower(), None)
        self.live_count -= 1
        self._touch(user)

    def _link(self, user: DirUser, manager: str | None) -> None:
        if user.manager is not None:
            self.reports.get(user.manager, {}).pop(user.id, None)
        user.manager = manager
        if manager is not None:
            self.reports.setdefault(manager, {})[user.id] = None

    def _touch(self, user: DirUser) -> None:
        self.version += 1
        user.version = self.version
        self.log.append((self.version, user.id))
        self._invalidate(user.id)

    def _invalidate(self, uid: str) -> None:
        """Drop a user's fragments and its reports' (their expanded ``manager`` may show this user)."""
        stale = [uid, *self.reports.get(uid, ())]
        for cache in self._fragments.values():
            for key in stale:
                cache.pop(key, None)

    # ---- the org as the source of truth ----
    def _derive(self, w: Worker) -> tuple[dict[str, Any], str | None]:
        props = worker_properties(self.org, w, self.company)
        manager = None if w.manager is None else self.org.entra_id(w.manager)
        return props, manager

    def _insert_worker(self, w: Worker) -> None:
        uid = self.org.entra_id(w.index)
        derived, manager = self._derive(w)
        props = dict(derived)
        if props["userPrincipalName"].lower() in self.by_upn:  # duplicate_email defect: UPNs stay unique
            props["userPrincipalName"] = f"{w.employee_id}.{props['userPrincipalName']}"
        user = DirUser(uid, props, None, len(self.order))
        self.users[uid] = user
        self.order.append(uid)
        self.by_upn[props["userPrincipalName"].lower()] = uid
        self.live_count += 1
        self._link(user, manager)
        self._mirror[uid] = (*derived.values(), manager)

    def sync_worker(self, w: Worker) -> None:
        """``org.on_change`` listener: copy the fields the org changed since the last sync."""
        uid = self.org.entra_id(w.index)
        with self.lock:
            user = self.users.get(uid)
            if w.deleted:
                if user is not None:
                    self.remove(user, "deleted")
                self._mirror.pop(uid, None)
                return
            if user is None:
                self._insert_worker(w)
                self._touch(self.users[uid])
                return
            if user.removed is not None:
                return  # deleted through Graph: an HR edit does not resurrect it
            props, manager = self._derive(w)
            old = self._mirror.get(uid)
            changes = {k: v for i, (k, v) in enumerate(props.items()) if old is None or old[i] != v}
            self._mirror[uid] = (*props.values(), manager)
            try:
                self.update(user, changes)
            except GraphError:  # the new UPN collides: keep the old one, still take the rest
                changes.pop("userPrincipalName", None)
                self.update(user, changes)
            if old is None or old[-1] != manager:
                self.set_manager(user, manager)

    def _make_stale(self, fraction: float) -> None:
        """Perturb a deterministic ``fraction`` of users so a push has something to fix."""
        rng = random.Random(f"okrsync-stale:{self.org.seed}")
        live = [u for _, u in self.iter_live()]
        chosen = sorted(rng.sample(range(len(live)), round(len(live) * fraction)))
        titles = sorted({str(u.props["jobTitle"]) for u in live})
        departments = [d for d, _, _ in DEPARTMENTS]
        for i in chosen:
            user = live[i]
            kinds = rng.sample(STALE_KINDS, rng.choice((1, 2)))
            applied = tuple(k for k in kinds if self._perturb(user, k, rng, live[:i], titles, departments))
            if not applied:
                self._perturb(user, "jobTitle", rng, live[:i], titles, departments)
                applied = ("jobTitle",)
            self.stale[user.id] = applied

    def _perturb(
        self,
        user: DirUser,
        kind: str,
        rng: random.Random,
        earlier: list[DirUser],
        titles: list[str],
        departments: list[str],
    ) -> bool:
        if kind == "jobTitle":
            user.props["jobTitle"] = _other(rng, titles, user.props["jobTitle"], "Former ")
        elif kind == "department":
            user.props["department"] = _other(rng, departments, user.props["department"], "Old ")
        elif kind == "manager_missing":
            if user.manager is None:
                return False
            self._link(user, None)
        else:  # manager_wrong: someone created earlier, so no cycle is introduced
            candidates = [u.id for u in earlier if u.id not in (user.manager, user.id)]
            if not candidates:
                return False
            self._link(user, candidates[rng.randrange(len(candidates))])
        return True


def _other(rng: random.Random, pool: list[str], current: Any, prefix: str) -> str:
    choices = [p for p in pool if p != current]
    return choices[rng.randrange(len(choices))] if choices else prefix + str(current)
