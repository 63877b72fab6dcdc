"""Key results measured in Salesforce: evaluate, record, and hand the new values to goal targets.

:func:`update_key_results` is the library entry point the engine's goals step (and any
integrator) calls: every key result whose ``data_source`` starts with ``salesforce:`` is
evaluated over its owner's team, read from the hierarchy according to the query's
``{team:...}`` scope, for the cycle's window. The returned :class:`~okrsync.models.OkrSet` carries
the new ``current_value`` s; the query actually asked and the value are recorded in the state
store (``put_value("metrics", kr_id, {...})``) so "why is this KR at 62%?" has an answer.
:func:`push_progress` then writes them to goal targets (any ``GoalTarget``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from okrsync.connectors.base import GoalResult, GoalTarget, MetricSource
from okrsync.connectors.salesforce.metrics import PREFIX, Evaluation, MetricQuery, TeamScope
from okrsync.errors import ApiError, OkrSyncError
from okrsync.hierarchy import Hierarchy
from okrsync.models import Cycle, KeyResult, OkrSet, OwnerKind, Person
from okrsync.state import StateStore

_STOP_CODES = frozenset({"API_RESERVE_REACHED", "REQUEST_LIMIT_EXCEEDED"})


@dataclass
class MetricResult:
    key_result_id: str
    ok: bool
    value: float | None = None
    previous: float | None = None
    query: str | None = None
    scope: str | None = None
    owner_id: str | None = None
    team_size: int = 0
    matched: int = 0
    queries: int = 0
    error: str | None = None
    unmatched: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.ok and self.value != self.previous


def team_of(hierarchy: Hierarchy, owner_id: str, scope: TeamScope | None) -> list[Person]:
    """The people a ``{team:scope}`` placeholder stands for, owner included."""
    if scope is None:
        return []
    if scope is TeamScope.SELF:
        ids = [owner_id]
    elif scope is TeamScope.REPORTS:
        ids = [owner_id, *hierarchy.direct_reports(owner_id)]
    else:
        ids = hierarchy.subtree(owner_id)
    return [hierarchy.people[i] for i in ids]


def _owner(kr: KeyResult, objectives: Mapping[str, Any]) -> str | None:
    owner = kr.owner
    if owner is None:
        objective = objectives.get(kr.objective_id)
        owner = objective.owner if objective is not None else None
    return owner.id if owner is not None and owner.kind is OwnerKind.PERSON else None


def update_key_results(
    okr_set: OkrSet,
    hierarchy: Hierarchy,
    source: MetricSource,
    cycle: Cycle | None = None,
    state: StateStore | None = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[OkrSet, list[MetricResult]]:
    """Evaluate every ``salesforce:`` key result; returns the updated set and one result per KR.

    A key result that cannot be evaluated (bad query, owner not in the hierarchy, no rows for
    MIN/MAX/AVG) keeps its value and gets a failed result; running out of the daily API budget
    stops the whole update (raised), since every further query would fail the same way.
    """
    cycle = cycle or okr_set.cycle
    window = {"cycle_start": cycle.start, "cycle_end": cycle.end} if cycle else {}
    objectives = {o.id: o for o in okr_set.objectives}
    detailed: Callable[..., Evaluation] | None = getattr(source, "evaluate_detailed", None)
    results: list[MetricResult] = []
    updated: list[KeyResult] = []
    for kr in okr_set.key_results:
        if not (kr.data_source or "").startswith(PREFIX):
            updated.append(kr)
            continue
        assert kr.data_source is not None
        res = MetricResult(kr.id, ok=False, previous=kr.current_value, owner_id=_owner(kr, objectives))
        results.append(res)
        try:
            q = MetricQuery.parse(kr.data_source)
            res.scope = q.scope.value if q.scope else None
            if res.owner_id is None:
                raise OkrSyncError("the key result (or its objective) needs a person owner")
            if res.owner_id not in hierarchy.people:
                raise OkrSyncError(f"owner {res.owner_id} is not in the hierarchy")
            team = team_of(hierarchy, res.owner_id, q.scope)
            if detailed is not None:
                ev = detailed(kr, team, **window)
            else:
                ev = Evaluation(source.evaluate(kr, team, **window), query=q.text, team_size=len(team))
            res.query, res.team_size, res.matched = ev.query, ev.team_size, ev.matched
            res.queries, res.unmatched = ev.queries, ev.unmatched
            if ev.value is None:
                raise OkrSyncError("the query returned no value (no matching rows)")
            res.value, res.ok = ev.value, True
        except ApiError as exc:
            if exc.code in _STOP_CODES:
                raise
            res.error = str(exc)
        except OkrSyncError as exc:
            res.error = str(exc)
        if res.ok:
            kr = kr.model_copy(update={"current_value": res.value})
        updated.append(kr)
        if state is not None:
            state.put_value("metrics", kr.id, _record(res, cycle, clock()))
    return okr_set.model_copy(update={"key_results": tuple(updated)}), results


def _record(res: MetricResult, cycle: Cycle | None, when: datetime) -> dict[str, Any]:
    return {
        "ok": res.ok,
        "value": res.value,
        "previous": res.previous,
        "query": res.query,
        "scope": res.scope,
        "owner": res.owner_id,
        "team_size": res.team_size,
        "matched": res.matched,
        "unmatched": res.unmatched[:20],
        "queries": res.queries,
        "cycle": cycle.id if cycle else None,
        "error": res.error,
        "evaluated_at": when.isoformat(),
    }


def push_progress(
    okr_set: OkrSet,
    targets: Mapping[str, GoalTarget],
    id_maps: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, list[GoalResult]]:
    """Write the objectives and key results (with their new values) to each goal target."""
    out: dict[str, list[GoalResult]] = {}
    for name, target in targets.items():
        id_map = (id_maps or {}).get(name, {})
        out[name] = target.push_goals(okr_set.objectives, okr_set.key_results, id_map)
    return out
