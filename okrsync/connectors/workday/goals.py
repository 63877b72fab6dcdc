"""Goals: ``Manage_Goals`` (Performance_Management) to write, ``Get_Workers`` ``Include_Goals`` to read.

Each okrsync objective owned by a person becomes one worker goal (``Worker_Goal_Detail_Data``):
name, description, goal category, organization-goal alignment, weight, due date, status, and
its key results as milestones. Identity is ``Goal_Reference_ID`` = :func:`goal_reference_id`
of the objective id (deterministic), so a re-run updates the same goals instead of adding new
ones; a goal WID in ``id_map[objective id]`` is sent as ``Goal_Reference`` as well.

Owners are canonical person ids (Employee_IDs): the ``Worker_Reference`` is the WID when
``id_map[person id]`` holds one, else ``Employee_ID``. Workers are sent in batches of
``BATCH`` per request; a batch Workday refuses is retried worker by worker so one bad owner
fails only its own goals. Alignment: an objective whose chain of alignments reaches an
objective listed in ``organization_goals`` (or carrying ``external_refs["workday_organization_goal"]``)
gets that ``Organization_Goal_Reference``.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from xml.sax.saxutils import escape, quoteattr

from okrsync.connectors.base import GoalResult
from okrsync.connectors.workday import soap
from okrsync.connectors.workday.config import WorkdayConfig
from okrsync.connectors.workday.pull import SoapPuller
from okrsync.errors import ApiError, RetriableApiError
from okrsync.http import HttpClient
from okrsync.models import (
    AlignmentEdge,
    GoalStatus,
    KeyResult,
    Objective,
    OkrSet,
    Owner,
    OwnerKind,
)

BATCH = 50
_SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}\Z")
STATUS_IDS = {
    GoalStatus.NOT_STARTED: "NOT_STARTED",
    GoalStatus.ON_TRACK: "IN_PROGRESS",
    GoalStatus.AT_RISK: "AT_RISK",
    GoalStatus.OFF_TRACK: "OFF_TRACK",
    GoalStatus.DONE: "COMPLETED",
    GoalStatus.CANCELLED: "CANCELLED",
}
STATUS_BACK = {v: k for k, v in STATUS_IDS.items()}
ORG_GOAL_REF = "workday_organization_goal"


def goal_reference_id(objective_id: str) -> str:
    """Deterministic ``Goal_Reference_ID`` of an okrsync objective (readable when the id is short)."""
    if _SAFE_ID.match(objective_id):
        return f"OKRSYNC-{objective_id}"
    return "OKRSYNC-H" + hashlib.sha256(objective_id.encode()).hexdigest()[:24].upper()


def _el(name: str, value: str) -> str:
    return f"<wd:{name}>{escape(value)}</wd:{name}>"


def _ref(name: str, kind: str, value: str) -> str:
    return f"<wd:{name}><wd:ID wd:type={quoteattr(kind)}>{escape(value)}</wd:ID></wd:{name}>"


def _number(value: float) -> str:
    return f"{value:g}"


class GoalWriter:
    def __init__(self, cfg: WorkdayConfig, http: HttpClient, name: str = "workday") -> None:
        self.cfg = cfg
        self.http = http
        self.name = name

    def push(
        self,
        objectives: Sequence[Objective],
        key_results: Sequence[KeyResult],
        id_map: Mapping[str, str],
        alignments: Sequence[AlignmentEdge] = (),
    ) -> list[GoalResult]:
        results: list[GoalResult] = []
        krs: dict[str, list[KeyResult]] = defaultdict(list)
        for kr in key_results:
            krs[kr.objective_id].append(kr)
        pushed = {o.id for o in objectives if o.owner.kind is OwnerKind.PERSON}
        for kr in key_results:
            if kr.objective_id not in pushed:
                results.append(
                    GoalResult(
                        kr.id, False, error=f"its objective {kr.objective_id!r} is not pushed as a goal"
                    )
                )
        org_goals = self._org_goals(objectives, key_results, alignments)
        by_owner: dict[str, list[Objective]] = defaultdict(list)
        for o in objectives:
            if o.owner.kind is not OwnerKind.PERSON:
                results.append(
                    GoalResult(
                        o.id,
                        False,
                        error="owned by an org unit: Workday organization goals are not written by okrsync",
                    )
                )
                continue
            by_owner[o.owner.id].append(o)
        owners = list(by_owner)
        for start in range(0, len(owners), BATCH):
            batch = owners[start : start + BATCH]
            blocks = {
                owner: self._worker_block(owner, by_owner[owner], krs, id_map, org_goals) for owner in batch
            }
            try:
                self._send(list(blocks.values()))
                results += self._ok(batch, by_owner, krs)
                continue
            except RetriableApiError:
                raise
            except ApiError as exc:
                if len(batch) == 1:
                    results += self._failed(batch[0], exc, by_owner, krs)
                    continue
            for owner in batch:  # Workday refused the batch: isolate the refused worker(s)
                try:
                    self._send([blocks[owner]])
                    results += self._ok([owner], by_owner, krs)
                except RetriableApiError:
                    raise
                except ApiError as exc:
                    results += self._failed(owner, exc, by_owner, krs)
        return results

    def _failed(
        self,
        owner: str,
        exc: ApiError,
        by_owner: Mapping[str, list[Objective]],
        krs: Mapping[str, list[KeyResult]],
    ) -> list[GoalResult]:
        out = []
        for o in by_owner[owner]:
            out.append(GoalResult(o.id, False, error=exc.message))
            out += [GoalResult(k.id, False, error=exc.message) for k in krs[o.id]]
        return out

    def _ok(
        self, owners: list[str], by_owner: Mapping[str, list[Objective]], krs: Mapping[str, list[KeyResult]]
    ) -> list[GoalResult]:
        out = []
        for owner in owners:
            for o in by_owner[owner]:
                ref = goal_reference_id(o.id)
                out.append(GoalResult(o.id, True, target_id=ref, written=True))
                out += [GoalResult(k.id, True, target_id=f"{ref}#milestone", written=True) for k in krs[o.id]]
        return out

    def _send(self, blocks: list[str]) -> None:
        body = (
            f'<wd:Manage_Goals_Request xmlns:wd="{soap.WD_NS}" wd:version={quoteattr(self.cfg.version)}>'
            + "".join(blocks)
            + "</wd:Manage_Goals_Request>"
        )
        password = self.cfg.password.get_secret_value() if self.cfg.password else ""
        self.http.request(
            "POST",
            self.cfg.goals_url,
            operation="Manage_Goals",
            data=soap.envelope(body, self.cfg.username or "", password),
            headers=soap.HEADERS,
            classify=soap.classify(self.name, "Manage_Goals"),
        )

    def _org_goals(
        self,
        objectives: Sequence[Objective],
        key_results: Sequence[KeyResult],
        edges: Sequence[AlignmentEdge],
    ) -> dict[str, str]:
        """Objective id -> Organization_Goal_ID, following alignments up (child -> parent)."""
        known = dict(self.cfg.organization_goals)
        for o in objectives:
            if ORG_GOAL_REF in o.external_refs:
                known.setdefault(o.id, o.external_refs[ORG_GOAL_REF])
        kr_objective = {k.id: k.objective_id for k in key_results}
        parent: dict[str, str] = {}
        for e in edges:
            parent.setdefault(e.child_id, kr_objective.get(e.parent_id, e.parent_id))
        out: dict[str, str] = {}
        for o in objectives:
            node: str | None = parent.get(o.id)
            for _ in range(50):
                if node is None:
                    break
                if node in known:
                    out[o.id] = known[node]
                    break
                node = parent.get(node)
        return out

    def _worker_block(
        self,
        owner: str,
        objectives: list[Objective],
        krs: Mapping[str, list[KeyResult]],
        id_map: Mapping[str, str],
        org_goals: Mapping[str, str],
    ) -> str:
        wid = id_map.get(owner)
        worker = (
            _ref("Worker_Reference", "WID", wid) if wid else _ref("Worker_Reference", "Employee_ID", owner)
        )
        return (
            f"<wd:Manage_Goals_Data>{worker}"
            + "".join(self._detail(o, krs.get(o.id, []), id_map, org_goals) for o in objectives)
            + "</wd:Manage_Goals_Data>"
        )

    def _detail(
        self, o: Objective, krs: list[KeyResult], id_map: Mapping[str, str], org_goals: Mapping[str, str]
    ) -> str:
        parts = ["<wd:Worker_Goal_Detail_Data>"]
        if id_map.get(o.id):
            parts.append(_ref("Goal_Reference", "WID", id_map[o.id]))
        parts.append(_el("Goal_Reference_ID", goal_reference_id(o.id)))
        parts.append(_el("Name", o.title))
        if o.description:
            parts.append(_el("Description", o.description))
        if self.cfg.goal_category:
            parts.append(_ref("Goal_Category_Reference", "Goal_Category_ID", self.cfg.goal_category))
        if o.id in org_goals:
            parts.append(_ref("Organization_Goal_Reference", "Organization_Goal_ID", org_goals[o.id]))
        if o.weight is not None:
            parts.append(_el("Goal_Weight", _number(o.weight)))
        if o.due:
            parts.append(_el("Due_Date", o.due.isoformat()))
        parts.append(_ref("Status_Reference", "Goal_Status_ID", STATUS_IDS[o.status]))
        for kr in krs:
            target = f"{_number(kr.start_value)} → {_number(kr.target_value)}" + (
                f" {kr.unit}" if kr.unit else ""
            )
            milestone = _el("Name", kr.title) + _el("Description", f"{kr.metric_type.value}: {target}")
            if o.due:
                milestone += _el("Due_Date", o.due.isoformat())
            parts.append(
                f"<wd:Worker_Goal_Milestone_Detail_Data>{milestone}</wd:Worker_Goal_Milestone_Detail_Data>"
            )
        parts.append("</wd:Worker_Goal_Detail_Data>")
        return "".join(parts)


def read_goals(cfg: WorkdayConfig, http: HttpClient, name: str, now: datetime) -> OkrSet:
    """Every worker goal, read with ``Get_Workers`` ``Include_Goals`` (milestones are not returned)."""
    puller = SoapPuller(cfg, http, {"Include_Reference", "Include_Goals"}, name)
    build = puller.request_builder(now)
    objectives = []
    for rec in puller.query("goals", build):
        owner = rec.get("Worker_ID") or rec.get("Employee_ID") or rec.get("Contingent_Worker_ID")
        for g in rec.get("Goals") or ():
            ref_id = g.get("Goal_Reference_ID") or g.get("WID")
            if not owner or not ref_id or not g.get("Name"):
                continue
            refs = {"workday": str(g.get("WID") or ref_id), "workday_goal_reference_id": str(ref_id)}
            if g.get("Organization_Goal_ID"):
                refs[ORG_GOAL_REF] = str(g["Organization_Goal_ID"])
            objectives.append(
                Objective(
                    id=str(ref_id),
                    title=str(g["Name"]),
                    description=g.get("Description") or None,
                    owner=Owner(kind=OwnerKind.PERSON, id=str(owner)),
                    due=date.fromisoformat(str(g["Due_Date"])[:10]) if g.get("Due_Date") else None,
                    status=STATUS_BACK.get(str(g.get("Status") or ""), GoalStatus.NOT_STARTED),
                    external_refs=refs,
                )
            )
    return OkrSet(objectives=tuple(objectives))
