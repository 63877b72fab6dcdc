"""Reorg impact: what changed between two org snapshots, and which OKR alignments it broke.

Pure: two snapshots (people lists or built hierarchies) and optionally an :class:`OkrSet` in,
a JSON-able :class:`ReorgReport` out. Admins read it before a reorg goes live ("who moves,
which goals lose their parent") and after ("what do we re-align"), so every broken or orphaned
alignment comes with a concrete suggestion naming the objective or manager to use instead.

- *broken*: the owner of the child or of the parent has left (absent, terminated, pre-hire).
- *orphaned*: both owners are still here, but the child's owner no longer reports into the
  parent owner's subtree. Cascade edges must always stay inside it; bottom-up ``align`` edges
  are only flagged when they were inside before and are not now; ``related`` / ``assigned``
  edges are cross-functional by design and are only checked for breakage.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from okrsync.hierarchy import Hierarchy, HierarchyPolicy, build_hierarchy
from okrsync.models import (
    AlignmentEdge,
    AlignmentKind,
    AlignmentStatus,
    GoalStatus,
    KeyResult,
    NodeKind,
    Objective,
    OkrSet,
    OwnerKind,
    Person,
)

__all__ = [
    "AlignmentImpact",
    "Move",
    "OwnerlessObjective",
    "ReorgReport",
    "SpanChange",
    "mark_alignments",
    "reorg_impact",
]


@dataclass(frozen=True)
class Move:
    person_id: str
    old_manager_id: str | None
    new_manager_id: str | None


@dataclass(frozen=True)
class SpanChange:
    manager_id: str
    before: int
    after: int


@dataclass(frozen=True)
class AlignmentImpact:
    """One alignment edge the reorg broke or orphaned, with what to do about it."""

    child_id: str
    parent_id: str
    kind: str
    status: str  # "broken" | "orphaned"
    reason: str
    suggestion: str
    suggested_parent_id: str | None = None
    suggested_owner_id: str | None = None


@dataclass(frozen=True)
class OwnerlessObjective:
    objective_id: str
    owner_id: str
    suggestion: str
    suggested_owner_id: str | None = None


@dataclass(frozen=True)
class ReorgReport:
    moved: list[Move] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    new_managers: list[str] = field(default_factory=list)
    removed_managers: list[str] = field(default_factory=list)
    span_changes: list[SpanChange] = field(default_factory=list)
    alignments: list[AlignmentImpact] = field(default_factory=list)
    ownerless_objectives: list[OwnerlessObjective] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return any(asdict(self).values())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["summary"] = {key: len(value) for key, value in asdict(self).items()}
        return out


def reorg_impact(
    before: Hierarchy | Iterable[Person],
    after: Hierarchy | Iterable[Person],
    okrs: OkrSet | None = None,
    *,
    policy: HierarchyPolicy | None = None,
) -> ReorgReport:
    """Compare two snapshots; ``policy`` is used to build hierarchies from people lists."""
    old = before if isinstance(before, Hierarchy) else build_hierarchy(before, policy or HierarchyPolicy())
    new = after if isinstance(after, Hierarchy) else build_hierarchy(after, policy or HierarchyPolicy())

    def here(h: Hierarchy, pid: str | None) -> bool:
        person = h.people.get(pid) if pid is not None else None
        return person is not None and person.is_active

    joined = [pid for pid in new.people if here(new, pid) and not here(old, pid)]
    left = [pid for pid in old.people if here(old, pid) and not here(new, pid)]
    moved = [
        Move(pid, old.manager_of(pid), new.manager_of(pid))
        for pid in old.people
        if here(old, pid) and here(new, pid) and old.manager_of(pid) != new.manager_of(pid)
    ]
    span_before = {pid: len(old.direct_reports(pid)) for pid in old.people}
    span_after = {pid: len(new.direct_reports(pid)) for pid in new.people}
    new_managers = [pid for pid, n in span_after.items() if n and not span_before.get(pid)]
    removed_managers = [pid for pid, n in span_before.items() if n and not span_after.get(pid)]
    span_changes = [
        SpanChange(pid, span_before[pid], n)
        for pid, n in span_after.items()
        if pid in span_before and span_before[pid] != n and span_before[pid] and n
    ]
    impacts: list[AlignmentImpact] = []
    ownerless: list[OwnerlessObjective] = []
    if okrs is not None:
        checker = _AlignmentChecker(okrs, old, new)
        impacts = [impact for edge in okrs.alignments if (impact := checker.check(edge))]
        ownerless = checker.ownerless()
    return ReorgReport(
        moved=moved,
        joined=sorted(joined),
        left=sorted(left),
        new_managers=sorted(new_managers),
        removed_managers=sorted(removed_managers),
        span_changes=span_changes,
        alignments=impacts,
        ownerless_objectives=ownerless,
    )


def mark_alignments(okrs: OkrSet, report: ReorgReport) -> OkrSet:
    """``okrs`` with the edges the report flagged set to ``broken``/``orphaned``."""
    flagged = {(i.child_id, i.parent_id, i.kind): AlignmentStatus(i.status) for i in report.alignments}
    edges = tuple(
        e.model_copy(update={"status": flagged[(e.child_id, e.parent_id, e.kind.value)]})
        if (e.child_id, e.parent_id, e.kind.value) in flagged
        else e
        for e in okrs.alignments
    )
    return okrs.model_copy(update={"alignments": edges})


class _AlignmentChecker:
    """Owner lookups and suggestions for one OKR set across two snapshots."""

    def __init__(self, okrs: OkrSet, old: Hierarchy, new: Hierarchy) -> None:
        self.okrs = okrs
        self.old = old
        self.new = new
        self.objectives = {o.id: o for o in okrs.objectives}
        self.krs = {k.id: k for k in okrs.key_results}
        self.by_owner: dict[str, list[Objective]] = defaultdict(list)
        for o in okrs.objectives:
            if o.owner.kind is OwnerKind.PERSON and o.status is not GoalStatus.CANCELLED:
                self.by_owner[o.owner.id].append(o)

    def _gone(self, pid: str) -> bool:
        person = self.new.people.get(pid)
        return person is None or not person.is_active

    def _owner(self, node_id: str, kind: NodeKind) -> str | None:
        """Person owning a node (a KR without an owner belongs to its objective's owner)."""
        if kind is NodeKind.KEY_RESULT:
            kr: KeyResult | None = self.krs.get(node_id)
            if kr is None:
                return None
            if kr.owner is not None:
                return kr.owner.id if kr.owner.kind is OwnerKind.PERSON else None
            node_id = kr.objective_id
        obj = self.objectives.get(node_id)
        if obj is None or obj.owner.kind is not OwnerKind.PERSON:
            return None
        return obj.owner.id

    def _successor(self, pid: str) -> str | None:
        """Nearest manager in the old chain of ``pid`` who is still active afterwards."""
        chain = self.old.chain(pid) if pid in self.old.people else []
        return next((m for m in chain if not self._gone(m)), None)

    def _objective_up_chain(self, pid: str, exclude: str) -> Objective | None:
        """The first objective owned by ``pid`` or the managers above them in the new org."""
        chain = [pid, *self.new.chain(pid)] if pid in self.new.people else [pid]
        for manager in chain:
            for obj in self.by_owner.get(manager, ()):
                if obj.id != exclude:
                    return obj
        return None

    def check(self, edge: AlignmentEdge) -> AlignmentImpact | None:
        child_owner = self._owner(edge.child_id, edge.child_kind)
        parent_owner = self._owner(edge.parent_id, edge.parent_kind)
        if child_owner is None or parent_owner is None:
            return None  # unit-owned or missing nodes: nothing a reporting line can break
        base = {"child_id": edge.child_id, "parent_id": edge.parent_id, "kind": edge.kind.value}
        if self._gone(child_owner):
            heir = self._successor(child_owner)
            return AlignmentImpact(
                **base,
                status=AlignmentStatus.BROKEN.value,
                reason=f"{edge.child_id} is owned by {child_owner}, who has left",
                suggestion=(
                    f"re-own {edge.child_id} under nearest active manager {heir}"
                    if heir
                    else f"retire {edge.child_id} or give it a new owner"
                ),
                suggested_owner_id=heir,
            )
        if self._gone(parent_owner):
            return self._realign(
                edge,
                base,
                AlignmentStatus.BROKEN,
                f"{edge.parent_id} is owned by {parent_owner}, who has left",
            )
        if (
            edge.kind not in (AlignmentKind.CASCADE, AlignmentKind.ALIGN)
            or child_owner not in self.new.people
        ):
            return None
        inside_now = child_owner == parent_owner or parent_owner in self.new.chain(child_owner)
        if inside_now:
            return None
        if edge.kind is AlignmentKind.ALIGN:
            was_inside = child_owner in self.old.people and (
                child_owner == parent_owner or parent_owner in self.old.chain(child_owner)
            )
            if not was_inside:
                return None
        return self._realign(
            edge,
            base,
            AlignmentStatus.ORPHANED,
            f"{child_owner} no longer reports into {parent_owner}'s organisation "
            f"(now reports to {self.new.manager_of(child_owner) or 'nobody'})",
        )

    def _realign(
        self, edge: AlignmentEdge, base: dict[str, str], status: AlignmentStatus, reason: str
    ) -> AlignmentImpact:
        child_owner = self._owner(edge.child_id, edge.child_kind) or ""
        manager = self.new.manager_of(child_owner) if child_owner in self.new.people else None
        target = self._objective_up_chain(manager, exclude=edge.child_id) if manager else None
        if target is not None:
            who = "the new manager's" if target.owner.id == manager else f"{target.owner.id}'s"
            suggestion = f"align to {who} objective {target.id} ({target.title!r})"
        elif manager:
            suggestion = f"ask {manager} to set an objective to align to, or remove the alignment"
        else:
            suggestion = "remove the alignment or pick a new parent objective"
        return AlignmentImpact(
            **base,
            status=status.value,
            reason=reason,
            suggestion=suggestion,
            suggested_parent_id=target.id if target else None,
            suggested_owner_id=manager,
        )

    def ownerless(self) -> list[OwnerlessObjective]:
        out = []
        for obj in self.okrs.objectives:
            if obj.owner.kind is not OwnerKind.PERSON or obj.status is GoalStatus.CANCELLED:
                continue
            if obj.owner.id in self.old.people and self._gone(obj.owner.id):
                heir = self._successor(obj.owner.id)
                out.append(
                    OwnerlessObjective(
                        objective_id=obj.id,
                        owner_id=obj.owner.id,
                        suggestion=f"re-own under nearest active manager {heir}"
                        if heir
                        else "retire or re-own",
                        suggested_owner_id=heir,
                    )
                )
        return out
