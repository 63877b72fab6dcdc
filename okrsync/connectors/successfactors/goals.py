"""Goal Management: okrsync objectives ↔ ``Goal_<plan>``, key results ↔ ``GoalMilestone_<plan>``.

Goal entity sets are generated per goal-plan template, and their fields vary per template, so
both are discovered from scoped ``$metadata`` (``/Goal_<plan>,GoalMilestone_<plan>/$metadata``;
the full document only when no plan id is configured). Only properties the template declares
(and marks creatable/updatable) are written, following SAP's published schema for the Goal
Plan API (``PerformanceandGoalsPMGM`` on api.sap.com).

**Alignments are not written.** ``Goal_<plan>`` has no alignment property in the OData API
(no ``parentId``/``alignUpTo``: "Aligned Up"/"Aligned Down" is a goal-plan UI feature), so the
cascade's edges cannot be stored; a push that is given edges says so in its notices, and a
pull yields no edges.

Pushes are idempotent: the engine's id map (okrsync id → SF id) finds existing goals, an
unmapped goal with the same owner and name (a crash before the id map was saved) is adopted,
and fields are compared normalised (dates as days, numbers rounded, blanks as null) so a
second push writes nothing. A ``None`` in okrsync never clears a value in SF.

Objective → goal: ``name`` (title), ``desc`` (only if the template defines it), ``metric``
(the key results, one per line, each with its current value: ``"<kr> = 300"``), ``start``,
``due``, ``done`` (progress), ``state`` (``status_labels``), ``category``, ``weight``,
``userId`` (owner via ``person_key``), ``type`` = user. Key result → milestone: ``objId`` (the
goal) and ``description`` ("Milestone") = ``"<title> [<start> -> <target> <unit>]"``, parsed
back on pull; an unmapped milestone is adopted only when its goal and description both match.
The milestone's ``start`` ("Target Date") and ``due`` ("Actual Date") are left alone: a key
result has no dates of its own, and the objective's start/due mean something else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from okrsync.connectors.base import GoalResult
from okrsync.connectors.successfactors.config import SuccessFactorsConfig
from okrsync.connectors.successfactors.goal_values import (
    fit,
    kr_from,
    kr_text,
    metric_line,
    normalise,
    objectives_owner,
    parse_metric,
    to_json,
)
from okrsync.connectors.successfactors.odata import (
    ALL_STATUSES,
    EntityInfo,
    ODataReader,
    chunks,
    in_filter,
    parse_metadata,
)
from okrsync.errors import AmbiguousWriteError, ConfigError, ConnectorError
from okrsync.models import (
    AlignmentEdge,
    GoalStatus,
    KeyResult,
    Objective,
    OkrSet,
    Owner,
    OwnerKind,
)

LINK_FIELDS = ("objId",)
GOAL_FIELDS = ("name", "metric", "desc", "start", "due", "done", "state", "category", "weight", "userId")
MILESTONE_FIELDS = ("description",)
NO_ALIGNMENT = (
    "SuccessFactors goal plans have no alignment property in the OData API "
    "(aligning goals is a goal-plan UI feature), so the cascade's edges are not written there"
)
_GOAL_SET = re.compile(r"^Goal_(\d+)$")


@dataclass(frozen=True)
class GoalPlan:
    plan_id: int
    goal: EntityInfo
    milestone: EntityInfo | None
    link_field: str | None


class GoalSync:
    """Goal push and pull for one connection; owner lookups are cached per instance."""

    def __init__(self, reader: ODataReader, cfg: SuccessFactorsConfig) -> None:
        self.reader = reader
        self.cfg = cfg
        self._plan: GoalPlan | None = None
        self._to_sf: dict[str, str | None] = {}  # canonical owner id -> SF userId
        self._from_sf: dict[str, str] = {}  # SF userId -> canonical owner id
        self.notices: list[str] = []

    # ---- discovery ----
    def plan(self) -> GoalPlan:
        if self._plan is None:
            self._plan = self._discover()
        return self._plan

    def _metadata(self, scope: str | None) -> dict[str, EntityInfo]:
        path = f"{scope}/$metadata" if scope else "$metadata"
        response = self.reader.request(
            "GET", f"{self.reader.service_url}/{path}", operation="goal $metadata", ok=(200,)
        )
        return parse_metadata(response.content)

    def _discover(self) -> GoalPlan:
        plan_id = self.cfg.goal_plan_id
        if plan_id is None:
            found = sorted(int(m.group(1)) for n in self._metadata(None) if (m := _GOAL_SET.match(n)))
            if len(found) != 1:
                raise ConfigError(
                    "set goal_plan_id: the tenant has "
                    + (f"goal plans {', '.join(map(str, found))}" if found else "no Goal_<plan> entity set")
                )
            plan_id = found[0]
        goal_set, ms_set = f"Goal_{plan_id}", f"GoalMilestone_{plan_id}"
        try:
            sets = self._metadata(f"{goal_set},{ms_set}")
        except ConnectorError:  # a template without milestones: SF refuses the unknown set name
            sets = self._metadata(goal_set)
        goal = sets.get(goal_set)
        if goal is None:
            raise ConfigError(f"goal plan {plan_id}: the tenant has no {goal_set} entity set")
        milestone = sets.get(ms_set)
        link = next((f for f in LINK_FIELDS if milestone and f in milestone.props), None)
        if milestone is None or link is None or not milestone.writable("description"):
            self.notices.append(f"{goal_set} has no milestones: key results are not written")
            milestone = None
        return GoalPlan(plan_id, goal, milestone, link if milestone else None)

    # ---- owners ----
    def to_sf_users(self, ids: Iterable[str]) -> dict[str, str | None]:
        key = self.cfg.person_key
        wanted = sorted({i for i in ids if i not in self._to_sf})
        if key == "userId":
            self._to_sf.update((i, i) for i in wanted)
        else:
            for chunk in chunks(wanted, self.cfg.chunk_size):
                self._to_sf.update((i, None) for i in chunk)
                self._lookup(f"{in_filter(key, chunk)} and {ALL_STATUSES}")
        return self._to_sf

    def from_sf_users(self, user_ids: Iterable[str]) -> dict[str, str]:
        key = self.cfg.person_key
        wanted = sorted({u for u in user_ids if u not in self._from_sf})
        if key == "userId":
            self._from_sf.update((u, u) for u in wanted)
        else:
            for chunk in chunks(wanted, self.cfg.chunk_size):
                self._lookup(f"{in_filter('userId', chunk)} and {ALL_STATUSES}")
        return self._from_sf

    def _lookup(self, flt: str) -> None:
        key = self.cfg.person_key
        params = {"$select": f"userId,{key}", "$filter": flt}
        for page in self.reader.pages("User", params, "look up goal owners"):
            for u in page:
                value = u.get(key)
                if value:
                    self._to_sf[str(value)] = u["userId"]
                    self._from_sf[u["userId"]] = str(value)

    # ---- reading ----
    def _rows(self, info: EntityInfo, fields: Iterable[str]) -> dict[int, dict[str, Any]]:
        select = ",".join(["id", *(f for f in fields if f in info.props)])
        rows: dict[int, dict[str, Any]] = {}
        for page in self.reader.pages(info.name, {"$select": select}, f"list {info.name}"):
            for r in page:
                rows[int(str(r["id"]).rstrip("L"))] = r
        return rows

    def _goal_fields(self, plan: GoalPlan) -> list[str]:
        return list(GOAL_FIELDS)

    def _ms_fields(self, plan: GoalPlan) -> list[str]:
        return [*MILESTONE_FIELDS, plan.link_field or "objId"]

    # ---- push ----
    def push(
        self,
        objectives: Sequence[Objective],
        key_results: Sequence[KeyResult],
        id_map: Mapping[str, str],
        alignments: Sequence[AlignmentEdge] = (),
    ) -> list[GoalResult]:
        """Goals and milestones; ``alignments`` cannot be stored in SF and are only counted in a notice."""
        plan = self.plan()
        owners = self.to_sf_users(o.owner.id for o in objectives if o.owner.kind is OwnerKind.PERSON)
        goals = self._rows(plan.goal, self._goal_fields(plan))
        krs_of: dict[str, list[KeyResult]] = {}
        for kr in key_results:
            krs_of.setdefault(kr.objective_id, []).append(kr)
        if alignments:
            self.notices.append(f"{len(alignments)} alignment(s) not written: {NO_ALIGNMENT}")
        claimed = {int(v) for v in id_map.values() if v.isdigit()}
        adoptable = {
            (str(r.get("userId")), str(r.get("name"))): gid for gid, r in goals.items() if gid not in claimed
        }
        written: dict[str, str] = {}
        results: list[GoalResult] = []
        for obj in objectives:
            uid = owners.get(obj.owner.id) if obj.owner.kind is OwnerKind.PERSON else None
            if uid is None:
                why = "is an org unit" if obj.owner.kind is OwnerKind.ORG_UNIT else "has no SF user"
                results.append(
                    GoalResult(obj.id, False, error=f"owner {obj.owner.id} {why} ({self.cfg.person_key})")
                )
                continue
            desired = self._goal_values(plan, obj, uid, krs_of.get(obj.id, ()))
            result = self._upsert(
                plan.goal,
                goals,
                id_map.get(obj.id),
                adoptable.pop((uid, str(desired["name"])), None),
                obj.id,
                desired,
            )
            if result.ok and result.target_id:
                written[obj.id] = result.target_id
            results.append(result)
        if plan.milestone is not None and key_results:
            results += self._push_milestones(plan, plan.milestone, key_results, id_map, written, objectives)
        elif key_results:
            results += [
                GoalResult(kr.id, False, error="the goal template has no milestones") for kr in key_results
            ]
        return results

    def _goal_values(
        self, plan: GoalPlan, obj: Objective, uid: str, krs: Sequence[KeyResult]
    ) -> dict[str, Any]:
        info = plan.goal
        values: dict[str, Any] = {
            "name": obj.title,
            "desc": obj.description,
            "metric": "\n".join(metric_line(kr) for kr in krs) or None,
            "start": obj.start,
            "due": obj.due,
            "done": obj.progress,
            "state": self.cfg.status_labels.get(obj.status.value, obj.status.value),
            "category": self.cfg.goal_category,
            "weight": obj.weight,
            "userId": uid,
        }
        return {k: fit(info, k, v) for k, v in values.items() if info.writable(k)}

    def _push_milestones(
        self,
        plan: GoalPlan,
        info: EntityInfo,
        key_results: Sequence[KeyResult],
        id_map: Mapping[str, str],
        written: Mapping[str, str],
        objectives: Sequence[Objective],
    ) -> list[GoalResult]:
        link = plan.link_field or "objId"
        rows = self._rows(info, self._ms_fields(plan))
        claimed = {int(v) for v in id_map.values() if v.isdigit()}
        adoptable: dict[tuple[str, str], int] = {}
        for mid, r in sorted(rows.items()):
            key = (str(normalise(info, link, r.get(link))), str(r.get("description")))
            if mid not in claimed:
                adoptable.setdefault(key, mid)
        by_id = {o.id: o for o in objectives}
        results = []
        for kr in key_results:
            goal = written.get(kr.objective_id) or (
                id_map.get(kr.objective_id) if kr.objective_id not in by_id else None
            )
            if not goal:
                results.append(GoalResult(kr.id, False, error=f"objective {kr.objective_id} has no SF goal"))
                continue
            values = {link: int(goal), "description": kr_text(kr)}
            desired = {k: fit(info, k, v) for k, v in values.items() if k == link or info.writable(k)}
            adopt = adoptable.pop((goal, str(desired.get("description"))), None)
            results.append(self._upsert(info, rows, id_map.get(kr.id), adopt, kr.id, desired))
        return results

    def _upsert(
        self,
        info: EntityInfo,
        rows: Mapping[int, dict[str, Any]],
        mapped: str | None,
        adopt: int | None,
        item_id: str,
        desired: dict[str, Any],
    ) -> GoalResult:
        row = rows.get(int(mapped)) if mapped and mapped.isdigit() else None
        if row is None and adopt is not None:
            row = rows.get(adopt)
        try:
            if row is None:
                body = {k: to_json(info, k, v) for k, v in desired.items() if v is not None}
                if info.name.startswith("Goal_") and "type" in info.props:
                    body["type"] = "user"
                return GoalResult(item_id, True, target_id=self._create(info, body), written=True)
            gid = int(str(row["id"]).rstrip("L"))
            changes = {
                k: to_json(info, k, v)
                for k, v in desired.items()
                if v is not None and normalise(info, k, row.get(k)) != normalise(info, k, v)
            }
            if changes:
                self.reader.request(
                    "POST",
                    self.reader.url(f"{info.name}({gid}L)"),
                    json=changes,
                    headers={"X-HTTP-Method": "MERGE"},
                    operation=f"update {info.name}",
                )
            return GoalResult(item_id, True, target_id=str(gid), written=bool(changes))
        except ConnectorError as exc:
            return GoalResult(item_id, False, error=str(exc))

    def _create(self, info: EntityInfo, body: dict[str, Any], attempts: int = 3) -> str:
        """POST a goal or milestone; when the answer is lost, adopt what SF created instead of duplicating."""
        keys: dict[str, Any] = {k: body[k] for k in ("userId", "name", "objId", "description") if k in body}
        for attempt in range(attempts):
            try:
                d = self.reader.json(
                    "POST",
                    self.reader.url(info.name),
                    json=body,
                    operation=f"create {info.name}",
                    idempotent=False,
                )
                return str((d or {}).get("d", {}).get("id", "")).rstrip("L")
            except AmbiguousWriteError:
                found = self._find(info, keys)
                if found is not None:
                    return found
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _find(self, info: EntityInfo, keys: Mapping[str, Any]) -> str | None:
        """The newest row whose identifying fields equal ``keys`` (the goal a lost answer created).

        Only what ``$metadata`` marks ``sap:filterable`` goes into ``$filter`` (a milestone's
        ``objId`` is not filterable in SAP's schema); the rest is compared on the rows read back.
        """
        server = {k: v for k, v in keys.items() if info.filterable(k)}
        local = {k: v for k, v in keys.items() if k not in server}
        clauses = [f"{k} eq {_literal(info, k, v)}" for k, v in server.items()]
        params = {"$select": ",".join(["id", *local])}
        if clauses:
            params["$filter"] = " and ".join(clauses)
        ids = [
            int(str(r["id"]).rstrip("L"))
            for page in self.reader.pages(info.name, params, f"find {info.name}")
            for r in page
            if all(normalise(info, k, r.get(k)) == normalise(info, k, v) for k, v in local.items())
        ]
        return str(max(ids)) if ids else None

    # ---- pull ----
    def pull(self) -> OkrSet:
        plan = self.plan()
        goals = self._rows(plan.goal, self._goal_fields(plan))
        owners = self.from_sf_users(str(r.get("userId")) for r in goals.values() if r.get("userId"))
        labels = {v.lower(): k for k, v in self.cfg.status_labels.items()}
        info = plan.goal
        objectives = []
        for gid, r in sorted(goals.items()):
            state = labels.get(str(r.get("state") or "").lower(), "not_started")
            done = normalise(info, "done", r.get("done")) or 0.0
            weight = normalise(info, "weight", r.get("weight"))
            objectives.append(
                Objective(
                    id=str(gid),
                    title=str(r.get("name") or f"goal {gid}"),
                    description=normalise(info, "desc", r.get("desc")),
                    owner=Owner(
                        kind=OwnerKind.PERSON, id=owners.get(str(r.get("userId")), str(r.get("userId")))
                    ),
                    start=normalise(info, "start", r.get("start")),
                    due=normalise(info, "due", r.get("due")),
                    status=GoalStatus(state),
                    progress=max(0.0, min(100.0, done)),
                    weight=weight if weight is None or weight >= 0 else None,
                    tags=(f"sf_category:{r['category']}",) if r.get("category") else (),
                    external_refs={"successfactors": str(gid)},
                )
            )
        key_results = []
        if plan.milestone is not None:
            link = plan.link_field or "objId"
            for mid, r in sorted(self._rows(plan.milestone, self._ms_fields(plan)).items()):
                goal = normalise(plan.milestone, link, r.get(link))
                if goal not in goals:
                    continue
                current = parse_metric(goals[goal].get("metric"))
                owner = objectives_owner(objectives, str(goal))
                key_results.append(kr_from(str(mid), str(goal), r, owner, current))
        return OkrSet(objectives=tuple(objectives), key_results=tuple(key_results))  # no edges: see above


def _literal(info: EntityInfo, name: str, value: Any) -> str:
    prop = info.props.get(name)
    if prop is not None and prop.edm in ("Edm.Int64", "Edm.Int32", "Edm.Int16"):
        return f"{int(str(value).rstrip('Ll'))}{'L' if prop.edm == 'Edm.Int64' else ''}"
    return "'" + str(value).replace("'", "''") + "'"
