"""Learning links: tie objectives and key results to learning items, for people or their teams.

Pure (no I/O, no clock): an :class:`OkrSet`, a :class:`Hierarchy`, a catalogue of
:class:`LearningItem` and a list of :class:`LearningRule` in, :class:`LearningLink` out.

Links come from two places:

* **explicit** ``learning_links`` in the OKR file (an ``audience_unit_id`` link is expanded to the
  unit's people; a link without ``id`` gets the deterministic one);
* **rules** (``jobs.X.learning_rules`` or ``learning_rules`` in the OKR file). The default rule
  reads skill tags: a key result tagged ``skill:negotiation`` recommends every catalogue item
  with the skill ``negotiation`` to the key result's owner (``audience = "owner"``), their direct
  reports (``"reports"``) or everyone below them (``"subtree"``), due at the cycle end, with a
  rationale naming the objective and the key result. Key results the cascade generated inherit
  the skill tags of the key result they were cascaded from, so one tag on a company KR reaches
  every level the cascade reached.

Each (learner, item) pair gets **one** link, however many goals point at it: explicit links
win, then rules in order, then goals in file order; the other goals are named in the rationale.
Link ids are a hash of (item, learner, objective, key result), so re-running gives the same
ids and targets can upsert by them (Graph ``externalCourseActivityId``, xAPI registration).

:func:`summarise` folds per-link status/completion (read back from a target) into evidence per
objective and key result; :func:`apply_evidence` writes it into the OKR set (a
``learning:<done>/<total>`` tag on each KR, and ``current_value`` for KRs tagged
``measure:learning``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from okrsync.errors import ConfigError
from okrsync.hierarchy import Hierarchy
from okrsync.models import (
    AlignmentKind,
    AssignmentType,
    KeyResult,
    LearningItem,
    LearningLink,
    LearningStatus,
    NodeKind,
    Objective,
    OkrSet,
    OwnerKind,
)

__all__ = [
    "EVIDENCE_TAG_PREFIX",
    "LINK_ID_PREFIX",
    "MEASURE_TAG",
    "SKILL_TAG_PREFIX",
    "GoalEvidence",
    "LearningPlan",
    "LearningRule",
    "LinkStatus",
    "apply_evidence",
    "build_links",
    "catalogue_from_document",
    "link_id",
    "link_uuid",
    "parse_rules",
    "summarise",
    "with_status",
]

SKILL_TAG_PREFIX = "skill:"
EVIDENCE_TAG_PREFIX = "learning:"
MEASURE_TAG = "measure:learning"
LINK_ID_PREFIX = "LL-"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://okrsync.dev/learning-links")

Audience = Literal["owner", "reports", "subtree"]


class LearningRule(BaseModel):
    """Which goals recommend which items to whom.

    - ``key_results``: only these key results (and, with ``inherit``, those cascaded from them);
      empty = every key result.
    - ``items``: recommend these item ids; empty = items whose ``skills`` meet the KR's skill tags.
    - ``skills``: only these skills (empty = any skill tag the KR carries).
    - ``audience``: ``owner``, ``reports``, ``subtree`` (everyone below the owner), or a list.
    - ``due``: ``cycle_end`` (default), ``objective_due``, ``none`` or a date.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="skills", description="Shown in rationales and reports.")
    key_results: tuple[str, ...] = Field(default=(), description="Only these key result ids.")
    items: tuple[str, ...] = Field(default=(), description="Item ids to recommend (default: by skill).")
    skills: tuple[str, ...] = Field(default=(), description="Only these skills.")
    tag_prefix: str = Field(default=SKILL_TAG_PREFIX, min_length=1, description="KR tag naming a skill.")
    audience: tuple[Audience, ...] = Field(default=("owner",), description="owner, reports, subtree.")
    assignment_type: AssignmentType = Field(default=AssignmentType.RECOMMENDED)
    due: Literal["cycle_end", "objective_due", "none"] | date = Field(default="cycle_end")
    inherit: bool = Field(default=True, description="Cascaded KRs inherit their parent KR's skills.")
    include_inactive: bool = Field(default=False, description="Also assign to inactive people.")

    @field_validator("audience", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("skills")
    @classmethod
    def _normal_skills(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_skill(s) for s in value)


def parse_rules(raw: Any, *, where: str = "learning_rules") -> list[LearningRule]:
    """Validate a list of rule mappings; every bad field is reported with its position."""
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        raise ConfigError(f"{where}: must be a list of rules")
    rules: list[LearningRule] = []
    problems: list[str] = []
    for i, entry in enumerate(raw):
        try:
            rules.append(LearningRule.model_validate(entry))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"{where}[{i}].{loc}: {err['msg']}" if loc else f"{where}[{i}]: {err['msg']}")
    if problems:
        raise ConfigError(f"{where}: {len(problems)} problem(s)", problems=problems)
    return rules


def catalogue_from_document(doc: Any, *, source: str = "<catalogue>") -> list[LearningItem]:
    """Items from a parsed catalogue: a list, or a mapping with ``learning_items`` (or ``items``).

    ``id`` defaults to ``external_id``; ``skills`` are compared case-insensitively.
    """
    if isinstance(doc, Mapping):
        unknown = set(doc) - {"learning_items", "items"}
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        doc = doc.get("learning_items", doc.get("items"))
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise ConfigError(f"{source}: expected a list of learning items")
    items: list[LearningItem] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(doc):
        if not isinstance(raw, Mapping):
            problems.append(f"{source}: items[{i}]: must be a mapping")
            continue
        data = {
            k: (str(v) if k in ("id", "external_id") and isinstance(v, int) else v) for k, v in raw.items()
        }
        data.setdefault("id", data.get("external_id"))
        try:
            item = LearningItem.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"{source}: items[{i}] (id {data.get('id')}): field '{loc}': {err['msg']}")
            continue
        if item.id in seen:
            problems.append(f"{source}: items[{i}]: id {item.id!r} repeats")
        seen.add(item.id)
        items.append(item)
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s) in the catalogue", problems=problems)
    return items


# --------------------------------------------------------------------------------------------
# ids


def link_id(item_id: str, learner_id: str, objective_id: str | None, key_result_id: str | None) -> str:
    """The deterministic id of a link: same item, learner and goal → same id, run after run."""
    text = "\x1f".join((item_id, learner_id, objective_id or "", key_result_id or ""))
    return LINK_ID_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16].upper()


def link_uuid(*parts: str) -> str:
    """A UUID5 from okrsync's namespace (xAPI registrations and statement ids)."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def _skill(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", " ").replace("-", " ").split())


# --------------------------------------------------------------------------------------------
# building links


@dataclass
class LearningPlan:
    """Links to push (one per learner and item), plus who got nothing and why."""

    links: list[LearningLink]
    items: list[LearningItem]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "links": len(self.links),
            "learners": len({lk.learner_id for lk in self.links}),
            "items": len({lk.item_id for lk in self.links}),
            "skipped": [{"id": i, "reason": r} for i, r in self.skipped],
        }


def build_links(
    okrs: OkrSet,
    hierarchy: Hierarchy | None,
    rules: Sequence[LearningRule] = (),
    catalogue: Iterable[LearningItem] = (),
) -> LearningPlan:
    """Every link the OKR file and the rules ask for, de-duplicated per (learner, item).

    Items come from ``catalogue`` plus the OKR file's ``learning_items`` (the file wins on an
    id clash). Without a hierarchy, rules can only reach owners (``audience = "owner"``) and
    people are not checked for being active.
    """
    items: dict[str, LearningItem] = {i.id: i for i in catalogue}
    items.update((i.id, i) for i in okrs.learning_items)
    objectives = {o.id: o for o in okrs.objectives}
    krs = {k.id: k for k in okrs.key_results}
    chosen: dict[tuple[str, str], LearningLink] = {}
    also: dict[tuple[str, str], list[str]] = defaultdict(list)
    skipped: dict[tuple[str, str], None] = {}

    def offer(link: LearningLink, goal: str) -> None:
        assert link.learner_id is not None
        key = (link.learner_id, link.item_id)
        if key in chosen:
            if goal not in also[key] and goal != _goal_name(chosen[key]):
                also[key].append(goal)
            return
        chosen[key] = link

    for link in okrs.learning_links:
        if link.item_id not in items:
            skipped.setdefault((link.id, f"learning item {link.item_id!r} is not in the catalogue"), None)
            continue
        for learner in _explicit_learners(link, hierarchy, skipped):
            lid = (
                link.id
                if link.learner_id
                else link_id(link.item_id, learner, link.objective_id, link.key_result_id)
            )
            due = link.due or (okrs.cycle.end if okrs.cycle else None)  # due at the cycle end by default
            offer(link.model_copy(update={"id": lid, "learner_id": learner, "due": due}), _goal_name(link))

    by_skill: dict[str, list[LearningItem]] = defaultdict(list)
    for item in items.values():
        for s in item.skills:
            by_skill[_skill(s)].append(item)
    parents = _cascade_parents(okrs)
    for rule in rules:
        for kr in okrs.key_results:
            lineage = _lineage(kr.id, parents) if rule.inherit else [kr.id]
            if rule.key_results and not set(rule.key_results) & set(lineage):
                continue
            obj = objectives.get(kr.objective_id)
            if obj is None:
                continue
            wanted = _rule_items(rule, [krs[k] for k in lineage if k in krs], items, by_skill)
            if not wanted:
                continue
            owner = _owner_of(kr, obj)
            if owner is None:
                skipped.setdefault((kr.id, f"key result {kr.id} is owned by an org unit"), None)
                continue
            due = _due(rule, okrs, obj)
            for learner in _audience(owner, rule, hierarchy, skipped):
                for item, skill in wanted:
                    link = LearningLink(
                        id=link_id(item.id, learner, obj.id, kr.id),
                        item_id=item.id,
                        objective_id=obj.id,
                        key_result_id=kr.id,
                        learner_id=learner,
                        assignment_type=rule.assignment_type,
                        due=due,
                        rationale=_rationale(obj, kr, skill, rule, owner, learner),
                    )
                    offer(link, _goal_name(link))

    links = []
    for key, link in chosen.items():
        extra = also.get(key)
        if extra:
            note = f" Also supports: {', '.join(extra)}."
            link = link.model_copy(update={"rationale": (link.rationale or "").rstrip() + note})
        links.append(link)
    used = {lk.item_id for lk in links}
    return LearningPlan(
        links=links,
        items=[i for i in items.values() if i.id in used],
        skipped=list(skipped),
    )


def _goal_name(link: LearningLink) -> str:
    if link.key_result_id:
        return f"key result {link.key_result_id}"
    return f"objective {link.objective_id}" if link.objective_id else "no goal"


def _explicit_learners(
    link: LearningLink, hierarchy: Hierarchy | None, skipped: dict[tuple[str, str], None]
) -> list[str]:
    if link.learner_id:
        return [link.learner_id]
    if link.audience_unit_id and hierarchy is not None:
        members = sorted(
            pid
            for pid, p in hierarchy.people.items()
            if p.org_unit_id == link.audience_unit_id and p.is_active
        )
        if not members:
            skipped.setdefault((link.id, f"org unit {link.audience_unit_id!r} has no active people"), None)
        return members
    skipped.setdefault((link.id, "link has neither learner_id nor a resolvable audience_unit_id"), None)
    return []


def _cascade_parents(okrs: OkrSet) -> dict[str, str]:
    """KR id → the KR it was cascaded from (through its objective's cascade edge)."""
    parent_of_objective = {
        e.child_id: e.parent_id
        for e in okrs.alignments
        if e.kind is AlignmentKind.CASCADE
        and e.child_kind is NodeKind.OBJECTIVE
        and e.parent_kind is NodeKind.KEY_RESULT
    }
    out: dict[str, str] = {}
    for kr in okrs.key_results:
        parent = parent_of_objective.get(kr.objective_id)
        if parent is not None and parent != kr.id:
            out[kr.id] = parent
    return out


def _lineage(kr_id: str, parents: Mapping[str, str]) -> list[str]:
    out = [kr_id]
    while (nxt := parents.get(out[-1])) is not None and nxt not in out:
        out.append(nxt)
    return out


def _rule_items(
    rule: LearningRule,
    lineage: Sequence[KeyResult],
    items: Mapping[str, LearningItem],
    by_skill: Mapping[str, list[LearningItem]],
) -> list[tuple[LearningItem, str | None]]:
    if rule.items:
        return [(items[i], None) for i in rule.items if i in items]
    skills: list[str] = []
    for kr in lineage:
        for tag in kr.tags:
            if tag.lower().startswith(rule.tag_prefix.lower()):
                s = _skill(tag[len(rule.tag_prefix) :])
                if s and s not in skills and (not rule.skills or s in rule.skills):
                    skills.append(s)
    out: list[tuple[LearningItem, str | None]] = []
    seen: set[str] = set()
    for s in skills:
        for item in by_skill.get(s, ()):
            if item.id not in seen:
                seen.add(item.id)
                out.append((item, s))
    return out


def _owner_of(kr: KeyResult, obj: Objective) -> str | None:
    owner = kr.owner or obj.owner
    return owner.id if owner.kind is OwnerKind.PERSON else None


def _due(rule: LearningRule, okrs: OkrSet, obj: Objective) -> date | None:
    if isinstance(rule.due, date):
        return rule.due
    cycle_end = okrs.cycle.end if okrs.cycle else None
    if rule.due == "cycle_end":
        return cycle_end or obj.due
    if rule.due == "objective_due":
        return obj.due or cycle_end
    return None


def _audience(
    owner: str, rule: LearningRule, hierarchy: Hierarchy | None, skipped: dict[tuple[str, str], None]
) -> list[str]:
    out: list[str] = []
    for kind in rule.audience:
        if kind == "owner":
            out.append(owner)
        elif hierarchy is None or owner not in hierarchy.people:
            skipped.setdefault((owner, f"audience {kind!r} needs {owner} in the hierarchy"), None)
        elif kind == "reports":
            out.extend(hierarchy.direct_reports(owner))
        else:
            out.extend(pid for pid in hierarchy.subtree(owner) if pid != owner)
    learners: list[str] = []
    seen: set[str] = set()
    for pid in out:
        if pid in seen:
            continue
        seen.add(pid)
        if hierarchy is not None:
            person = hierarchy.people.get(pid)
            if person is None:
                skipped.setdefault((pid, "not in the hierarchy"), None)
                continue
            if not rule.include_inactive and not person.is_active:
                skipped.setdefault((pid, f"inactive ({person.status.value})"), None)
                continue
        learners.append(pid)
    return learners


def _rationale(
    obj: Objective, kr: KeyResult, skill: str | None, rule: LearningRule, owner: str, learner: str
) -> str:
    why = f"builds the skill '{skill}'" if skill else f"is recommended by rule '{rule.name}'"
    whose = "" if learner == owner else f" (owned by {owner}, your manager's or team's goal)"
    return (
        f"Objective {obj.id} \u201c{obj.title}\u201d, key result {kr.id} \u201c{kr.title}\u201d{whose}: "
        f"this item {why}."
    )


# --------------------------------------------------------------------------------------------
# evidence back on goals


@dataclass(frozen=True)
class LinkStatus:
    """What a target says about one link now."""

    link_id: str
    status: LearningStatus
    completion: float = 0.0
    completed_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "link_id": self.link_id,
            "status": self.status.value,
            "completion": self.completion,
            "completed_at": self.completed_at,
        }


@dataclass
class GoalEvidence:
    """Learning progress behind one objective or key result."""

    goal_id: str
    kind: Literal["objective", "key_result"]
    title: str = ""
    assigned: int = 0
    completed: int = 0
    in_progress: int = 0
    completion: float = 0.0  # mean completion percentage over the links

    @property
    def percent_completed(self) -> float:
        return round(100.0 * self.completed / self.assigned, 1) if self.assigned else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.goal_id,
            "kind": self.kind,
            "title": self.title,
            "assigned": self.assigned,
            "completed": self.completed,
            "in_progress": self.in_progress,
            "not_started": self.assigned - self.completed - self.in_progress,
            "completion": round(self.completion, 1),
            "percent_completed": self.percent_completed,
        }


def with_status(links: Iterable[LearningLink], statuses: Mapping[str, LinkStatus]) -> list[LearningLink]:
    """Links with ``status``/``completion`` from a target (links it does not know keep theirs)."""
    out = []
    for link in links:
        st = statuses.get(link.id)
        if st is not None:
            link = link.model_copy(update={"status": st.status, "completion": st.completion})
        out.append(link)
    return out


def summarise(okrs: OkrSet, links: Iterable[LearningLink]) -> list[GoalEvidence]:
    """Per objective and per key result: links assigned, completed, in progress, mean completion.

    A link counts towards its key result and its objective (an objective-only link only there).
    Goals come out in OKR-file order; goals without links are left out.
    """
    titles = {("objective", o.id): o.title for o in okrs.objectives}
    titles.update({("key_result", k.id): k.title for k in okrs.key_results})
    kr_objective = {k.id: k.objective_id for k in okrs.key_results}
    acc: dict[tuple[str, str], GoalEvidence] = {}
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for link in links:
        goals: list[tuple[Literal["objective", "key_result"], str]] = []
        if link.key_result_id:
            goals.append(("key_result", link.key_result_id))
        obj_id = link.objective_id or (kr_objective.get(link.key_result_id) if link.key_result_id else None)
        if obj_id:
            goals.append(("objective", obj_id))
        for kind, gid in goals:
            ev = acc.setdefault((kind, gid), GoalEvidence(gid, kind, titles.get((kind, gid), "")))
            ev.assigned += 1
            completion = 100.0 if link.status is LearningStatus.COMPLETED else link.completion
            ev.completed += link.status is LearningStatus.COMPLETED
            ev.in_progress += link.status is LearningStatus.IN_PROGRESS
            totals[(kind, gid)] += completion
    for key, ev in acc.items():
        ev.completion = totals[key] / ev.assigned
    order = {("objective", o.id): i for i, o in enumerate(okrs.objectives)}
    order.update({("key_result", k.id): len(order) + i for i, k in enumerate(okrs.key_results)})
    return sorted(acc.values(), key=lambda e: order.get((e.kind, e.goal_id), len(order)))


def apply_evidence(okrs: OkrSet, evidence: Iterable[GoalEvidence]) -> OkrSet:
    """Write the evidence into the OKR set, replacing what an earlier run wrote.

    Each key result with links gets the tag ``learning:<completed>/<assigned>``; a key result
    also tagged ``measure:learning`` gets ``current_value`` = the percentage of its links
    completed, scaled onto its start..target range.
    """
    by_kr = {e.goal_id: e for e in evidence if e.kind == "key_result"}
    krs = []
    for kr in okrs.key_results:
        ev = by_kr.get(kr.id)
        if ev is None:
            krs.append(kr)
            continue
        tags = tuple(t for t in kr.tags if not t.startswith(EVIDENCE_TAG_PREFIX))
        update: dict[str, Any] = {"tags": (*tags, f"{EVIDENCE_TAG_PREFIX}{ev.completed}/{ev.assigned}")}
        if MEASURE_TAG in kr.tags:
            share = ev.percent_completed / 100.0
            update["current_value"] = round(kr.start_value + share * (kr.target_value - kr.start_value), 6)
        krs.append(kr.model_copy(update=update))
    return okrs.model_copy(update={"key_results": tuple(krs)})
