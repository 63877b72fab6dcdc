"""Pure: a diff becomes an ordered list of operations, checked against safety policies.

Order matters to targets: Entra (and most directories) refuse a manager reference to a
user that does not exist yet, so creates and updates go managers-first; removals go last,
reports before their managers. The deletion threshold is evaluated here, before anything
is written, because a source that returned half its rows must never empty a directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from okrsync.connectors.base import Operation, OpKind
from okrsync.diff import PeopleDiff
from okrsync.models import Person, PersonStatus


@dataclass(frozen=True)
class PlanPolicy:
    max_removals: int | None = None  # None = unlimited
    threshold_label: str = ""
    allow_deletes: bool = False
    removal: str = "disable"  # "disable" | "delete"


@dataclass
class Plan:
    ops: list[Operation] = field(default_factory=list)
    removals: list[Operation] = field(default_factory=list)
    population: int = 0
    blocked: str | None = None  # why the plan may not be applied (threshold breached)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for op in self.ops:
            out[op.kind.value] = out.get(op.kind.value, 0) + 1
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "population": self.population,
            "removals": len(self.removals),
            "blocked": self.blocked,
        }


def _is_disabling(before: Person, after: Person) -> bool:
    return before.is_active and not after.is_active


def build_plan(
    diff: PeopleDiff,
    order: Sequence[str],
    policy: PlanPolicy,
    *,
    population: int,
) -> Plan:
    """Order ``diff`` into operations and apply the removal threshold.

    ``order`` is the hierarchy's topological order (managers first); ids not in it (people
    outside the hierarchy, e.g. out of scope) go last in id order so the plan is deterministic.
    """
    rank: Mapping[str, int] = {pid: i for i, pid in enumerate(order)}
    tail = len(rank)

    def key(pid: str) -> tuple[int, str]:
        return (rank.get(pid, tail), pid)

    writes: list[Operation] = []
    for person in diff.created:
        writes.append(Operation(OpKind.CREATE, person.id, person, {}))
    disabling: list[Operation] = []
    for before, after, changes in diff.updated:
        op = Operation(OpKind.UPDATE, after.id, after, changes)
        (disabling if _is_disabling(before, after) else writes).append(op)
    writes.sort(key=lambda op: key(op.person_id))

    removal_kind = OpKind.DELETE if policy.removal == "delete" else OpKind.DISABLE
    removed = [
        Operation(removal_kind, p.id, p, {"status": (p.status, None)})
        for p in diff.removed
        if p.status is not PersonStatus.TERMINATED or removal_kind is OpKind.DELETE
    ]
    tail_ops = disabling + removed
    # reports before their managers: reverse of the hierarchy order
    tail_ops.sort(key=lambda op: key(op.person_id), reverse=True)

    ops = [
        Operation(op.kind, op.person_id, op.person, op.changes, seq)
        for seq, op in enumerate(writes + tail_ops)
    ]
    plan = Plan(ops=ops, population=population)
    # an update that disables counts against the threshold like a removal does (as Entra counts disables)
    plan.removals = [op for op in ops if op.kind in (OpKind.DISABLE, OpKind.DELETE) or _disables(op)]
    if (
        policy.max_removals is not None
        and len(plan.removals) > policy.max_removals
        and not policy.allow_deletes
    ):
        pct = f" ({len(plan.removals) / population:.0%} of {population})" if population else ""
        plan.blocked = (
            f"{len(plan.removals)} removals/disables{pct} exceed max_deletes = {policy.threshold_label} "
            f"(limit {policy.max_removals}); nothing was written. Check the source, then rerun with "
            "--allow-deletes if this is intended"
        )
    return plan


def _disables(op: Operation) -> bool:
    status = op.changes.get("status")
    if op.kind is not OpKind.UPDATE or status is None or op.person is None:
        return False
    return not op.person.is_active and str(getattr(status[0], "value", status[0])) in {"active", "on_leave"}
