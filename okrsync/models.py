"""Canonical, frozen models every connector maps to and from.

One vocabulary for all vendors is what lets a Workday pull be diffed against an Entra
directory: connectors translate at the edge, the core only ever sees these types.
Models are frozen so snapshots can be shared between phases without defensive copies.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class WorkerType(StrEnum):
    EMPLOYEE = "employee"
    CONTINGENT = "contingent"


class PersonStatus(StrEnum):
    ACTIVE = "active"
    ON_LEAVE = "on_leave"
    TERMINATED = "terminated"
    PRE_HIRE = "pre_hire"


Id = Annotated[str, Field(min_length=1, max_length=256)]


class _SharedEmptyDict(dict[str, Any]):
    """The one empty ``external_ids`` / ``attributes`` value every ``Person`` without them shares.

    A million people carrying two fresh empty dicts each is ~128 MB for nothing. Sharing one is
    only safe if nobody can fill it, so every mutator refuses (frozen models are never meant to
    be changed in place anyway); copies, ``dict(...)``, ``|`` and pickling give a plain ``dict``.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("this empty mapping belongs to a frozen Person and is shared: copy it to change it")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return {}

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {}

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[()]]:
        return dict, ()

    def __repr__(self) -> str:
        return "{}"


_EMPTY: dict[str, Any] = _SharedEmptyDict()


def _shared_empty() -> dict[str, Any]:
    return _EMPTY


class _SharedFieldsSet(set[str]):
    """One ``__pydantic_fields_set__`` shared by every ``Person`` validated from the same keys.

    pydantic gives each instance its own set (~730 bytes for 8+ names: more than half of a typical
    person); a people file or connector yields the same few key sets for all rows. pydantic copies
    the set before ``model_copy`` updates it; :meth:`__copy__` returns a plain, mutable set for
    that, and every in-place mutator refuses, so a shared set can never be changed for everyone.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("model_fields_set of a frozen Person is shared: copy it to change it")

    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse
    add = clear = discard = pop = remove = update = _refuse
    difference_update = intersection_update = symmetric_difference_update = _refuse

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> set[str]:
        return set(self)

    def __reduce__(self) -> tuple[type[set[str]], tuple[list[str]]]:
        return set, (list(self),)


_FIELDS_SETS: dict[frozenset[str], _SharedFieldsSet] = {}
_MAX_FIELDS_SETS = 4096  # distinct key sets kept; beyond that a person keeps its own set
_LAST_FIELDS_SET: list[_SharedFieldsSet | None] = [None]  # the one most recently shared

# Low-cardinality text (a few hundred departments for a million people): one string object per
# distinct value instead of one per person. sys.intern'ed strings are freed when unused.
_INTERNED_FIELDS = ("title", "department", "division", "org_unit_id", "location", "cost_center")
_EMPTY_DEFAULTED_FIELDS = ("external_ids", "attributes")


class Person(_Frozen):
    """A worker as the core sees them; ``id`` is the source's stable key."""

    id: Id
    external_ids: dict[str, str] = Field(default_factory=_shared_empty)
    user_name: str | None = None
    email: str | None = None
    display_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    title: str | None = None
    department: str | None = None
    division: str | None = None
    org_unit_id: str | None = None
    location: str | None = None
    cost_center: str | None = None
    worker_type: WorkerType = WorkerType.EMPLOYEE
    status: PersonStatus = PersonStatus.ACTIVE
    hire_date: date | None = None
    termination_date: date | None = None
    manager_id: str | None = None
    additional_manager_ids: tuple[str, ...] = ()
    attributes: dict[str, Any] = Field(default_factory=_shared_empty)
    raw_ref: str | None = None

    @field_validator("manager_id", mode="before")
    @classmethod
    def _blank_manager_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    def model_post_init(self, context: Any, /) -> None:
        """Make the instance cheap to hold by the million, without changing any value.

        Runs once per validation (and per ``model_construct``), before anyone else sees the
        instance: equal values become shared objects (interned strings, the one empty mapping,
        one fields set per distinct key set) and ``__dict__`` becomes a key-sharing dict.
        """
        values = self.__dict__
        for name in _INTERNED_FIELDS:
            value = values[name]
            if type(value) is str:  # sys.intern refuses str subclasses
                values[name] = sys.intern(value)
        for name in _EMPTY_DEFAULTED_FIELDS:
            value = values[name]
            if not value and type(value) is dict:
                values[name] = _EMPTY
        if len(values) == len(_PERSON_DICT):  # not a partial model_construct
            compact = _PERSON_DICT.copy()
            compact.update(values)
            object.__setattr__(self, "__dict__", compact)
        given = self.__pydantic_fields_set__
        shared = _LAST_FIELDS_SET[0]
        if shared is None or given != shared:  # consecutive people mostly carry the same keys
            key = frozenset(given)
            shared = _FIELDS_SETS.get(key)
            if shared is None:
                if len(_FIELDS_SETS) >= _MAX_FIELDS_SETS:
                    return
                shared = _FIELDS_SETS[key] = _SharedFieldsSet(given)
            _LAST_FIELDS_SET[0] = shared
        object.__setattr__(self, "__pydantic_fields_set__", shared)

    @property
    def is_active(self) -> bool:
        return self.status in (PersonStatus.ACTIVE, PersonStatus.ON_LEAVE)


def _key_sharing_dict(cls: type[BaseModel]) -> dict[str, Any]:
    """A ``__dict__`` template whose copies share one key table (CPython "split" dicts).

    pydantic builds each instance's ``__dict__`` as an ordinary dict that carries its own table
    of all field names (~460 bytes for Person's 21 fields). The ``__dict__`` CPython materialises
    for a bare instance shares the class's key table instead, and ``dict.copy()`` keeps sharing
    it, so a copy updated with the validated values costs ~270 bytes. Semantics are those of any
    dict: on another interpreter, or if the table cannot be shared, it is just an ordinary copy.
    """
    bare = cls.__new__(cls)
    for name in cls.model_fields:
        object.__setattr__(bare, name, None)
    return bare.__dict__


_PERSON_DICT = _key_sharing_dict(Person)


# The fields a people file (CSV/JSONL) carries, in the order a CSV header lists them.
PERSON_FILE_FIELDS: tuple[str, ...] = (
    "id",
    "manager_id",
    "email",
    "user_name",
    "display_name",
    "given_name",
    "family_name",
    "title",
    "department",
    "division",
    "org_unit_id",
    "location",
    "cost_center",
    "status",
    "worker_type",
    "hire_date",
    "termination_date",
    "additional_manager_ids",
)


class OrgUnit(_Frozen):
    id: Id
    name: str
    parent_id: str | None = None
    kind: str = "department"
    head_person_id: str | None = None
    active: bool = True


class OrgSnapshot(_Frozen):
    """People and units of one source as of one moment: the unit of diffing and history."""

    source: str
    taken_at: datetime
    people: tuple[Person, ...] = ()
    units: tuple[OrgUnit, ...] = ()

    def people_by_id(self) -> dict[str, Person]:
        return {p.id: p for p in self.people}


class CycleState(StrEnum):
    OPEN = "open"
    LOCKED = "locked"
    CLOSED = "closed"


class Cycle(_Frozen):
    id: Id
    name: str
    start: date
    end: date
    state: CycleState = CycleState.OPEN


class OwnerKind(StrEnum):
    PERSON = "person"
    ORG_UNIT = "org_unit"


class Owner(_Frozen):
    kind: OwnerKind = OwnerKind.PERSON
    id: Id


class ObjectiveLevel(StrEnum):
    COMPANY = "company"
    DEPARTMENT = "department"
    TEAM = "team"
    INDIVIDUAL = "individual"


class GoalStatus(StrEnum):
    NOT_STARTED = "not_started"
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"
    DONE = "done"
    CANCELLED = "cancelled"


class Objective(_Frozen):
    id: Id
    title: str = Field(min_length=1)
    description: str | None = None
    owner: Owner
    level: ObjectiveLevel = ObjectiveLevel.INDIVIDUAL
    cycle_id: str | None = None
    start: date | None = None
    due: date | None = None
    status: GoalStatus = GoalStatus.NOT_STARTED
    progress: float = Field(default=0.0, ge=0, le=100)
    visibility: str = "public"
    weight: float | None = Field(default=None, ge=0)
    tags: tuple[str, ...] = ()
    external_refs: dict[str, str] = Field(default_factory=dict)


class MetricType(StrEnum):
    PERCENT = "percent"
    NUMBER = "number"
    CURRENCY = "currency"
    BINARY = "binary"
    MILESTONE = "milestone"


class Direction(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"
    MAINTAIN = "maintain"


class KeyResult(_Frozen):
    id: Id
    objective_id: Id
    title: str = Field(min_length=1)
    owner: Owner | None = None
    metric_type: MetricType = MetricType.NUMBER
    start_value: float = 0.0
    target_value: float = 100.0
    current_value: float | None = None
    unit: str | None = None
    direction: Direction = Direction.INCREASE
    weight: float | None = Field(default=None, ge=0)
    data_source: str | None = None
    tags: tuple[str, ...] = ()
    external_refs: dict[str, str] = Field(default_factory=dict)

    @property
    def progress(self) -> float:
        """Percent of the way from start to target, clamped to 0..100."""
        if self.current_value is None or self.target_value == self.start_value:
            return 0.0
        pct = (self.current_value - self.start_value) / (self.target_value - self.start_value) * 100
        return max(0.0, min(100.0, pct))


class NodeKind(StrEnum):
    OBJECTIVE = "objective"
    KEY_RESULT = "key_result"


class AlignmentKind(StrEnum):
    CASCADE = "cascade"
    ALIGN = "align"
    RELATED = "related"
    ASSIGNED = "assigned"


class AlignmentStatus(StrEnum):
    ACTIVE = "active"
    ORPHANED = "orphaned"
    BROKEN = "broken"


class AlignmentEdge(_Frozen):
    """child → parent; ``generated_by`` names the rule that made it, or ``manual``."""

    child_id: Id
    child_kind: NodeKind = NodeKind.OBJECTIVE
    parent_id: Id
    parent_kind: NodeKind = NodeKind.OBJECTIVE
    kind: AlignmentKind = AlignmentKind.ALIGN
    weight: float | None = None
    generated_by: str = "manual"
    status: AlignmentStatus = AlignmentStatus.ACTIVE


class LearningItem(_Frozen):
    id: Id
    provider: str
    external_id: str
    title: str
    url: str | None = None
    format: str | None = None
    skills: tuple[str, ...] = ()
    duration: str | None = None  # ISO 8601 duration, e.g. PT20M
    language: str = "en-US"


class AssignmentType(StrEnum):
    REQUIRED = "required"
    RECOMMENDED = "recommended"


class LearningStatus(StrEnum):
    NOT_STARTED = "notStarted"
    IN_PROGRESS = "inProgress"
    COMPLETED = "completed"


class LearningLink(_Frozen):
    """Ties an objective or key result to a learning item for a learner or an audience."""

    id: Id
    item_id: Id
    objective_id: str | None = None
    key_result_id: str | None = None
    learner_id: str | None = None
    audience_unit_id: str | None = None
    assignment_type: AssignmentType = AssignmentType.RECOMMENDED
    due: date | None = None
    status: LearningStatus = LearningStatus.NOT_STARTED
    completion: float = Field(default=0.0, ge=0, le=100)
    rationale: str | None = None
    target_refs: dict[str, str] = Field(default_factory=dict)


class OkrSet(_Frozen):
    """Everything an OKR file holds: the unit the cascade reads and writes."""

    cycle: Cycle | None = None
    objectives: tuple[Objective, ...] = ()
    key_results: tuple[KeyResult, ...] = ()
    alignments: tuple[AlignmentEdge, ...] = ()
    learning_items: tuple[LearningItem, ...] = ()
    learning_links: tuple[LearningLink, ...] = ()
