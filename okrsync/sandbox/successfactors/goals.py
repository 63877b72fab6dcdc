"""Goal Management entity sets: ``Goal_<plan>`` and ``GoalMilestone_<plan>`` per goal plan.

SF generates these sets per goal-plan template, so a connector must discover them from
``$metadata``; the emulator declares one pair per configured plan. Goals live only in the
emulator's memory (the SandboxOrg knows people, not OKRs). Field names follow the notes:
``parentId`` and the milestone fields are *unverified* and vary per template in real tenants.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from okrsync.sandbox.successfactors.odata import (
    EntityType,
    Nav,
    ODataError,
    Prop,
    Record,
    bad_request,
    from_json_value,
    property_not_found,
)

S, DT, I64, DBL = "Edm.String", "Edm.DateTime", "Edm.Int64", "Edm.Double"


def _rw(name: str, edm: str, max_length: int | None = None, label: str = "") -> Prop:
    """A property the client may create, update and upsert."""
    return Prop(name, edm, max_length, label=label, creatable=True, updatable=True, upsertable=True)


def goal_type(plan: int) -> EntityType:
    return EntityType(
        name=f"Goal_{plan}",
        keys=("id",),
        label=f"Goal plan {plan}",
        creatable=True,
        updatable=True,
        upsertable=True,
        deletable=True,
        props=(
            Prop("id", I64, nullable=False, required=True, label="Goal ID"),
            replace(_rw("name", S, 500, "Goal Name"), nullable=False, required=True),
            _rw("metric", S, 4000, "Metric"),
            _rw("desc", S, 4000, "Description"),
            _rw("start", DT, label="Start Date"),
            _rw("due", DT, label="Due Date"),
            _rw("done", DBL, label="% Complete"),
            _rw("state", S, 255, "Status"),
            _rw("category", S, 255, "Category"),
            _rw("weight", DBL, label="Weight"),
            Prop("userId", S, 100, required=True, label="User ID", creatable=True, upsertable=True),
            Prop("type", S, 32, label="Goal Type", creatable=True, upsertable=True),
            _rw("parentId", I64, label="Aligned Up To"),
            Prop("lastModified", DT, label="Last Modified"),
        ),
        navs=(Nav("milestones", f"GoalMilestone_{plan}", many=True, label="Milestones"),),
    )


def milestone_type(plan: int) -> EntityType:
    return EntityType(
        name=f"GoalMilestone_{plan}",
        keys=("id",),
        label=f"Goal milestone plan {plan}",
        creatable=True,
        updatable=True,
        upsertable=True,
        deletable=True,
        props=(
            Prop("id", I64, nullable=False, required=True, label="Milestone ID"),
            Prop(
                "objId", I64, nullable=False, required=True, label="Goal ID", creatable=True, upsertable=True
            ),
            _rw("target", S, 4000, "Target"),
            _rw("start", DT, label="Start Date"),
            _rw("due", DT, label="Due Date"),
            _rw("actual", S, 4000, "Actual"),
            _rw("percentComplete", DBL, label="% Complete"),
            Prop("lastModified", DT, label="Last Modified"),
        ),
    )


class Goals:
    """In-memory goals and milestones for every configured plan, with SF's validation rules."""

    def __init__(
        self, plans: tuple[int, ...], user_exists: Callable[[str], bool], clock: Callable[[], datetime]
    ) -> None:
        self.types: dict[str, EntityType] = {}
        self.rows: dict[str, dict[int, Record]] = {}
        for plan in plans:
            for etype in (goal_type(plan), milestone_type(plan)):
                self.types[etype.name] = etype
                self.rows[etype.name] = {}
        self.user_exists = user_exists
        self.clock = clock
        self._lock = threading.Lock()
        self._next = 1000  # SF goal ids are server-generated Int64s

    @staticmethod
    def is_milestone(set_name: str) -> bool:
        return set_name.startswith("GoalMilestone_")

    def _goal_set(self, milestone_set: str) -> str:
        return "Goal_" + milestone_set.removeprefix("GoalMilestone_")

    def rows_of(self, set_name: str) -> list[Record]:
        with self._lock:
            return [dict(r) for r in self.rows[set_name].values()]

    def get(self, set_name: str, key: int) -> Record | None:
        with self._lock:
            row = self.rows[set_name].get(key)
            return None if row is None else dict(row)

    def milestones_of(self, plan_goal_set: str, goal_id: int) -> list[Record]:
        ms = "GoalMilestone_" + plan_goal_set.removeprefix("Goal_")
        with self._lock:
            return [dict(r) for r in self.rows.get(ms, {}).values() if r.get("objId") == goal_id]

    def _values(self, etype: EntityType, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("[COE0012]The request body must be a JSON object.")
        unknown = [
            k for k in body if not k.startswith("__") and etype.prop(k) is None and etype.nav(k) is None
        ]
        if unknown:
            raise property_not_found(etype.name, unknown)
        out: dict[str, Any] = {}
        for k, v in body.items():
            prop = etype.prop(k)
            if prop is not None and k not in {"id", "lastModified"}:
                out[k] = from_json_value(prop, v)
        return out

    def _check(self, set_name: str, row: Record) -> None:
        if self.is_milestone(set_name):
            goal_set = self._goal_set(set_name)
            if row.get("objId") is None:
                raise _missing("objId")
            if row["objId"] not in self.rows.get(goal_set, {}):
                raise bad_request(f"[COE0013]Goal {row['objId']} does not exist in {goal_set}.")
            return
        if not row.get("name"):
            raise _missing("name")
        user = row.get("userId")
        if not user:
            raise _missing("userId")
        if not self.user_exists(str(user)):
            raise bad_request(f"[COE0013]Invalid userId {user!r}: no such user.")
        parent = row.get("parentId")
        if parent is not None and parent not in self.rows[set_name]:
            raise bad_request(f"[COE0013]Invalid parentId {parent}: no such goal in {set_name}.")

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(tzinfo=None, microsecond=0)

    def create(self, set_name: str, body: Any) -> Record:
        etype = self.types[set_name]
        values = self._values(etype, body)
        row: Record = {p.name: None for p in etype.props}
        if not self.is_milestone(set_name):
            row.update({"type": "user", "done": 0.0})
        row.update(values)
        with self._lock:
            self._check(set_name, row)
            self._next += 1
            row["id"] = self._next
            row["_set"] = set_name  # not a property: lets navigation find the plan's milestones
            row["lastModified"] = self._now()
            self.rows[set_name][row["id"]] = row
            return dict(row)

    def update(self, set_name: str, key: int, body: Any, *, replace: bool) -> Record:
        """MERGE/PATCH change the given fields; PUT replaces every writable one."""
        etype = self.types[set_name]
        values = self._values(etype, body)
        with self._lock:
            current = self.rows[set_name].get(key)
            if current is None:
                raise not_found(set_name, f"({key}L)")
            row = dict(current)
            if replace:
                for p in etype.props:
                    if p.updatable:
                        row[p.name] = None
            row.update(values)
            self._check(set_name, row)
            row["lastModified"] = self._now()
            self.rows[set_name][key] = row
            return dict(row)

    def delete(self, set_name: str, key: int) -> None:
        with self._lock:
            if self.rows[set_name].pop(key, None) is None:
                raise not_found(set_name, f"({key}L)")
            if not self.is_milestone(set_name):
                ms = "GoalMilestone_" + set_name.removeprefix("Goal_")
                rows = self.rows.get(ms, {})
                for mid in [m for m, r in rows.items() if r.get("objId") == key]:
                    del rows[mid]


def _missing(name: str) -> ODataError:
    return ODataError(400, "COE_MISSING_REQUIRED_PROPERTIES", f"Required property {name} is missing")


def not_found(set_name: str, predicate: str) -> ODataError:
    """404 for a key that matches nothing; ``predicate`` is the key as the URL wrote it, e.g. ``(12L)``."""
    return ODataError(404, "COE_RESOURCE_NOT_FOUND", f"[COE0008]{set_name}{predicate} not found.")
