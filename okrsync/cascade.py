"""The manager cascade: company/department key results become objectives down the org chart.

Pure (no I/O, no clock): an :class:`OkrSet` and a :class:`Hierarchy` in, a new ``OkrSet`` out.

Rule: each key result of an objective owned by person P becomes a child objective, aligned to
that key result with ``kind=cascade``, for each of P's direct reports (``mode="individual"``)
or for each direct report who manages people (``mode="team"``). The child gets a copy of the
key result (optionally an equal share of its target), and that copy cascades again one level
further down, up to ``depth`` levels below the seed objective's owner.

Re-running must not duplicate: generated ids are a hash of (parent key result, owner, rule),
so the same inputs give the same ids, and a child that already exists in the input — because
the input is a previous run's output — is reused (with any edits people made to it) instead of
created again. Manual ``align``/``related``/``assigned`` edges pass through untouched.

Objectives have no ``generated_by`` field, so the rule is recorded as an objective/KR tag
``generated_by:<rule>`` (see :func:`generated_by`) and on the alignment edge itself.
"""

from __future__ import annotations

import hashlib
import string
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from okrsync.hierarchy import Hierarchy
from okrsync.models import (
    AlignmentEdge,
    AlignmentKind,
    KeyResult,
    MetricType,
    NodeKind,
    Objective,
    ObjectiveLevel,
    OkrSet,
    Owner,
    OwnerKind,
    Person,
    WorkerType,
)

__all__ = [
    "GENERATED_TAG_PREFIX",
    "CascadeOptions",
    "CascadeResult",
    "cascade",
    "generated_by",
]

GENERATED_TAG_PREFIX = "generated_by:"
TEMPLATE_FIELDS = frozenset({"kr_title", "kr_id", "owner_name", "owner_id", "parent_title", "depth"})
# metrics whose targets add up across people; shares of a percentage or a milestone make no sense
_ADDITIVE = frozenset({MetricType.NUMBER, MetricType.CURRENCY})


@dataclass(frozen=True)
class CascadeOptions:
    """How far and to whom the cascade goes, and what the generated goals look like.

    - ``depth``: levels below the seed objective's owner (1 = their direct reports only).
    - ``mode``: ``individual`` (every eligible report) or ``team`` (one team objective per
      report who is a manager, owned by that manager).
    - ``levels``: which generated levels get goals: ``team`` for people with reports,
      ``individual`` for people without. A person whose level is excluded is skipped, and so is
      the cascade below them.
    - ``source_levels``: which existing objectives seed the cascade.
    - ``skip_contingent`` / ``skip_inactive``: leave out contractors / terminated and pre-hires.
    - ``title_template``: ``str.format`` fields ``{kr_title}``, ``{kr_id}``, ``{owner_name}``,
      ``{owner_id}``, ``{parent_title}``, ``{depth}``; e.g. ``"Contribute to: {kr_title}"``.
    - ``key_results``: ``copy`` gives each child a copy of the parent KR (needed to cascade
      deeper); ``none`` creates bare objectives, so the cascade stops after one level.
    - ``share``: ``equal`` splits additive targets (number, currency) evenly between the
      recipients; ``none`` copies the target unchanged.
    - ``unit_heads``: org unit id -> person id, so unit-owned objectives can seed the cascade.
    - ``id_prefix``: prefix of generated ids.
    """

    depth: int = 2
    mode: Literal["individual", "team"] = "individual"
    levels: frozenset[ObjectiveLevel] = frozenset({ObjectiveLevel.TEAM, ObjectiveLevel.INDIVIDUAL})
    source_levels: frozenset[ObjectiveLevel] = frozenset({ObjectiveLevel.COMPANY, ObjectiveLevel.DEPARTMENT})
    skip_contingent: bool = True
    skip_inactive: bool = True
    title_template: str = "{kr_title}"
    key_results: Literal["copy", "none"] = "copy"
    share: Literal["equal", "none"] = "equal"
    unit_heads: Mapping[str, str] = field(default_factory=dict)
    id_prefix: str = "CAS-"

    def __post_init__(self) -> None:
        if self.depth < 0:
            raise ValueError(f"depth must be >= 0, got {self.depth}")
        if self.mode not in ("individual", "team"):
            raise ValueError(f"mode must be 'individual' or 'team', got {self.mode!r}")
        if self.key_results not in ("copy", "none"):
            raise ValueError(f"key_results must be 'copy' or 'none', got {self.key_results!r}")
        if self.share not in ("equal", "none"):
            raise ValueError(f"share must be 'equal' or 'none', got {self.share!r}")
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(self.title_template) if f is not None}
        except ValueError as exc:
            raise ValueError(f"title_template {self.title_template!r}: {exc}") from exc
        unknown = names - TEMPLATE_FIELDS
        if unknown or "" in names:
            raise ValueError(
                f"title_template {self.title_template!r} uses unknown field(s) "
                f"{', '.join(sorted(repr(n) for n in unknown)) or '(positional {})'}; "
                f"allowed: {', '.join(sorted(TEMPLATE_FIELDS))}"
            )

    @property
    def rule(self) -> str:
        """The rule name without depth; part of every generated id."""
        return "kr-to-team" if self.mode == "team" else "kr-to-reports"


@dataclass(frozen=True)
class CascadeResult:
    """The input plus what the cascade added; ``skipped`` says who got nothing and why."""

    okrs: OkrSet
    generated: int
    skipped: list[tuple[str, str]]

    def to_dict(self) -> dict[str, object]:
        return {
            "generated": self.generated,
            "objectives": len(self.okrs.objectives),
            "key_results": len(self.okrs.key_results),
            "alignments": len(self.okrs.alignments),
            "skipped": [{"person_id": pid, "reason": reason} for pid, reason in self.skipped],
        }


def generated_by(item: Objective | KeyResult) -> str | None:
    """The rule that generated an objective or key result, or None if a person wrote it."""
    for tag in item.tags:
        if tag.startswith(GENERATED_TAG_PREFIX):
            return tag[len(GENERATED_TAG_PREFIX) :]
    return None


def cascade(okrs: OkrSet, hierarchy: Hierarchy, options: CascadeOptions | None = None) -> CascadeResult:
    """Generate the cascade for every seed objective in ``okrs`` (see the module docstring)."""
    return _Cascade(okrs, hierarchy, options or CascadeOptions()).run()


class _Cascade:
    """One run's working state; kept private so the public API stays a single function."""

    def __init__(self, okrs: OkrSet, h: Hierarchy, options: CascadeOptions) -> None:
        self.okrs = okrs
        self.h = h
        self.o = options
        self.objectives: dict[str, Objective] = {o.id: o for o in okrs.objectives}
        self.krs_of: dict[str, list[KeyResult]] = defaultdict(list)
        for kr in okrs.key_results:
            self.krs_of[kr.objective_id].append(kr)
        self.kr_ids = {kr.id for kr in okrs.key_results}
        self.edges = {(e.child_id, e.parent_id, e.kind) for e in okrs.alignments}
        self.new_objectives: list[Objective] = []
        self.new_krs: list[KeyResult] = []
        self.new_edges: list[AlignmentEdge] = []
        self.skipped: dict[tuple[str, str], None] = {}
        self.eligible_cache: dict[str, list[tuple[Person, ObjectiveLevel]]] = {}

    def run(self) -> CascadeResult:
        frontier: list[tuple[Objective, str]] = []
        for obj in self.okrs.objectives:
            if obj.level not in self.o.source_levels or generated_by(obj) is not None:
                continue
            owner = self._seed_owner(obj)
            if owner is not None:
                frontier.append((obj, owner))
        done: set[str] = set()
        for depth in range(1, self.o.depth + 1):
            next_frontier: list[tuple[Objective, str]] = []
            for obj, owner_id in frontier:
                if obj.id in done:
                    continue
                done.add(obj.id)
                next_frontier.extend(self._children(obj, owner_id, depth))
            frontier = next_frontier
        okrs = self.okrs.model_copy(
            update={
                "objectives": self.okrs.objectives + tuple(self.new_objectives),
                "key_results": self.okrs.key_results + tuple(self.new_krs),
                "alignments": self.okrs.alignments + tuple(self.new_edges),
            }
        )
        return CascadeResult(okrs=okrs, generated=len(self.new_objectives), skipped=list(self.skipped))

    def _skip(self, person_id: str, reason: str) -> None:
        self.skipped.setdefault((person_id, reason), None)

    def _seed_owner(self, obj: Objective) -> str | None:
        owner_id = obj.owner.id
        if obj.owner.kind is OwnerKind.ORG_UNIT:
            head = self.o.unit_heads.get(owner_id)
            if head is None:
                self._skip(
                    owner_id, f"objective {obj.id} is owned by org unit {owner_id}; no unit head given"
                )
                return None
            owner_id = head
        if owner_id not in self.h.people:
            self._skip(owner_id, f"owner of objective {obj.id} is not in the hierarchy")
            return None
        return owner_id

    def _eligible(self, manager_id: str) -> list[tuple[Person, ObjectiveLevel]]:
        cached = self.eligible_cache.get(manager_id)
        if cached is not None:
            return cached
        out = []
        for pid in self.h.direct_reports(manager_id):
            person = self.h.people.get(pid)
            if person is None:
                continue
            reason = self._why_not(person)
            if reason:
                self._skip(pid, reason)
                continue
            level = ObjectiveLevel.TEAM if self.h.direct_reports(pid) else ObjectiveLevel.INDIVIDUAL
            out.append((person, level))
        self.eligible_cache[manager_id] = out
        return out

    def _why_not(self, person: Person) -> str | None:
        if self.o.skip_inactive and not person.is_active:
            return f"inactive ({person.status.value})"
        if self.o.skip_contingent and person.worker_type is WorkerType.CONTINGENT:
            return "contingent worker"
        has_reports = bool(self.h.direct_reports(person.id))
        if self.o.mode == "team" and not has_reports:
            return "individual contributor (team mode gives goals to managers only)"
        level = ObjectiveLevel.TEAM if has_reports else ObjectiveLevel.INDIVIDUAL
        if level not in self.o.levels:
            return f"{level.value} goals not selected"
        return None

    def _children(self, parent: Objective, owner_id: str, depth: int) -> Iterable[tuple[Objective, str]]:
        recipients = self._eligible(owner_id)
        if not recipients:
            return
        rule = f"cascade:{self.o.rule}@depth{depth}"
        for kr in self.krs_of.get(parent.id, ()):
            for person, level in recipients:
                child = self._child(parent, kr, person, level, rule, depth, len(recipients))
                yield child, person.id

    def _child(
        self,
        parent: Objective,
        kr: KeyResult,
        person: Person,
        level: ObjectiveLevel,
        rule: str,
        depth: int,
        n_recipients: int,
    ) -> Objective:
        child_id = _stable_id(self.o.id_prefix, kr.id, person.id, self.o.rule)
        child = self.objectives.get(child_id)
        if child is None:
            child = Objective(
                id=child_id,
                title=self.o.title_template.format_map(
                    {
                        "kr_title": kr.title,
                        "kr_id": kr.id,
                        "owner_name": _name(person),
                        "owner_id": person.id,
                        "parent_title": parent.title,
                        "depth": depth,
                    }
                ),
                description=f"Cascaded from key result {kr.id}: {kr.title}",
                owner=Owner(kind=OwnerKind.PERSON, id=person.id),
                level=level,
                cycle_id=parent.cycle_id,
                start=parent.start,
                due=parent.due,
                visibility=parent.visibility,
                tags=(GENERATED_TAG_PREFIX + rule,),
            )
            self.objectives[child_id] = child
            self.new_objectives.append(child)
            if self.o.key_results == "copy":
                copy = self._kr_copy(kr, child, person, rule, n_recipients)
                if copy.id not in self.kr_ids:
                    self.kr_ids.add(copy.id)
                    self.krs_of[child_id].append(copy)
                    self.new_krs.append(copy)
        if (child_id, kr.id, AlignmentKind.CASCADE) not in self.edges:
            self.edges.add((child_id, kr.id, AlignmentKind.CASCADE))
            self.new_edges.append(
                AlignmentEdge(
                    child_id=child_id,
                    child_kind=NodeKind.OBJECTIVE,
                    parent_id=kr.id,
                    parent_kind=NodeKind.KEY_RESULT,
                    kind=AlignmentKind.CASCADE,
                    generated_by=rule,
                )
            )
        return child

    def _kr_copy(self, kr: KeyResult, child: Objective, person: Person, rule: str, n: int) -> KeyResult:
        start, target = kr.start_value, kr.target_value
        if self.o.share == "equal" and kr.metric_type in _ADDITIVE and n > 1:
            start, target = round(start / n, 6), round(target / n, 6)
        return KeyResult(
            id=f"{child.id}-KR1",
            objective_id=child.id,
            title=kr.title,
            owner=Owner(kind=OwnerKind.PERSON, id=person.id),
            metric_type=kr.metric_type,
            start_value=start,
            target_value=target,
            unit=kr.unit,
            direction=kr.direction,
            tags=(GENERATED_TAG_PREFIX + rule,),
        )


def _stable_id(prefix: str, parent_id: str, owner_id: str, rule: str) -> str:
    digest = hashlib.sha256(f"{parent_id}\x1f{owner_id}\x1f{rule}".encode()).hexdigest()
    return f"{prefix}{digest[:12].upper()}"


def _name(person: Person) -> str:
    if person.display_name:
        return person.display_name
    full = " ".join(p for p in (person.given_name, person.family_name) if p)
    return full or person.id
