"""Goal Management entity sets: ``Goal_<plan>`` and ``GoalMilestone_<plan>`` per goal plan.

SF generates these sets per goal-plan template, so a connector must discover them from
``$metadata``; the emulator declares one pair per configured plan. Goals live only in the
emulator's memory (the SandboxOrg knows people, not OKRs).

Properties, types and ``sap:*`` flags follow SAP's published schema for the Goal Plan API
(``PerformanceandGoalsPMGM`` on api.sap.com; ``Goal_1``/``GoalMilestone_1`` as in SAP's
``SAP-samples/teched2023-AD266`` ``srv/external/Goal.edmx``): every property is
``sap:required="false"``; ``name``, ``userId`` and ``type`` are creatable *and* updatable.
There is **no alignment property** (no ``parentId``/``alignUpTo``: aligning goals is a UI
feature), and a milestone is ``objId`` (its goal), ``description`` ("Milestone"), ``start``
("Target Date"), ``due`` ("Actual Date"), ``index``, ``flag``, ``modifier`` — no
``target``/``actual``/``%``. ``desc`` exists only when the template defines it
(``goal_desc=False`` leaves it out, like SAP's published templates). The emulator still
refuses a goal without ``name``/``userId`` and a milestone without an existing ``objId``, as
the application does although ``$metadata`` marks nothing required.
"""

from __future__ import annotations

import threading
import uuid
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

S, DT, I64, I32, DBL = "Edm.String", "Edm.DateTime", "Edm.Int64", "Edm.Int32", "Edm.Double"
# values the server sets: a body may name them (they are in $metadata) but they are not taken
SERVER_SET = frozenset({"id", "lastModified", "guid", "currentOwner", "planId", "stateLabel"})


def _rw(
    name: str, edm: str, max_length: int | None = None, label: str = "", *, filterable: bool = True
) -> Prop:
    """A property the client may create, update and upsert (what SAP's schema says of most).

    ``max_length`` is enforced (a goal name is at most 500 characters) but, as in SAP's schema,
    not declared as ``MaxLength`` in ``$metadata``.
    """
    return Prop(
        name,
        edm,
        max_length,
        label=label or name,
        creatable=True,
        updatable=True,
        upsertable=True,
        filterable=filterable,
        declare_max_length=False,
    )


def _ro(name: str, edm: str, *, creatable: bool = False, filterable: bool = True) -> Prop:
    """A property the server maintains (``guid``, ``currentOwner``, ``planId``, ``stateLabel``)."""
    return Prop(name, edm, label=name, creatable=creatable, filterable=filterable)


def _key() -> Prop:
    """``id``: ``Nullable="false"`` yet ``sap:required="false"`` and creatable, as SF declares it."""
    return replace(_rw("id", I64), nullable=False)


def goal_type(plan: int, *, desc: bool = True) -> EntityType:
    return EntityType(
        name=f"Goal_{plan}",
        keys=("id",),
        label=f"Goal_{plan}",
        creatable=True,
        updatable=True,
        upsertable=True,
        deletable=True,
        props=(
            _rw("category", S, 255, "Category"),
            _ro("currentOwner", S),
            *((_rw("desc", S, 4000, "Description"),) if desc else ()),
            _rw("done", DBL, label="% Complete"),
            _rw("due", DT, label="Due Date"),
            _rw("flag", I32),
            _ro("guid", S),
            _key(),
            _rw("lastModified", DT),
            _rw("link", S, label="Link Data", filterable=False),
            _rw("metric", S, 4000, "Metric"),
            _rw("modifier", S),
            _rw("name", S, 500, "Goal Name"),
            _rw("numbering", S),
            _ro("planId", I64, filterable=False),
            _rw("start", DT, label="Start Date"),
            _rw("state", S, 255, "Status"),
            _ro("stateLabel", S, creatable=True, filterable=False),
            _rw("status", I64, filterable=False),
            _rw("type", S, 32),
            _rw("userId", S, 100),
            _rw("weight", DBL, label="Weight"),
        ),
        navs=(Nav("milestones", f"GoalMilestone_{plan}", many=True, label="Milestones"),),
    )


def milestone_type(plan: int) -> EntityType:
    return EntityType(
        name=f"GoalMilestone_{plan}",
        keys=("id",),
        label=f"GoalMilestone_{plan}",
        creatable=True,
        updatable=True,
        upsertable=True,
        deletable=True,
        props=(
            _rw("description", S, 4000, "Milestone"),
            _rw("due", DT, label="Actual Date"),
            _rw("flag", I64, filterable=False),
            _key(),
            _rw("index", I32),
            _rw("lastModified", DT),
            _rw("modifier", S),
            _rw("objId", I64, filterable=False),
            _rw("start", DT, label="Target Date"),
        ),
    )


class Goals:
    """In-memory goals and milestones for every configured plan, with SF's validation rules."""

    def __init__(
        self,
        plans: tuple[int, ...],
        user_exists: Callable[[str], bool],
        clock: Callable[[], datetime],
        *,
        desc: bool = True,
    ) -> None:
        self.types: dict[str, EntityType] = {}
        self.rows: dict[str, dict[int, Record]] = {}
        for plan in plans:
            for etype in (goal_type(plan, desc=desc), milestone_type(plan)):
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
            if prop is not None and k not in SERVER_SET:
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

    def _derive(self, set_name: str, row: Record) -> None:
        """What the server keeps: the owner, the state's label, a milestone's place in its goal."""
        if self.is_milestone(set_name):
            if row.get("index") is None:
                row["index"] = sum(1 for r in self.rows[set_name].values() if r.get("objId") == row["objId"])
            return
        row["currentOwner"] = row.get("userId")
        row["stateLabel"] = row.get("state")

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(tzinfo=None, microsecond=0)

    def create(self, set_name: str, body: Any) -> Record:
        etype = self.types[set_name]
        values = self._values(etype, body)
        row: Record = {p.name: None for p in etype.props}
        if not self.is_milestone(set_name):
            plan = int(set_name.removeprefix("Goal_"))
            row.update({"type": "user", "done": 0.0, "flag": 0, "planId": plan})
        row.update(values)
        with self._lock:
            self._check(set_name, row)
            self._derive(set_name, row)
            self._next += 1
            row["id"] = self._next
            if not self.is_milestone(set_name):
                row["guid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"okrsync-sandbox:{set_name}({row['id']})"))
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
                    if p.updatable and p.name not in SERVER_SET:
                        row[p.name] = None
            row.update(values)
            self._check(set_name, row)
            self._derive(set_name, row)
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
