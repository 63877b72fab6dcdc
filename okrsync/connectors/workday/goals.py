"""Goals: ``Manage_Goals`` (Performance_Management) to write, ``Get_Workers`` ``Include_Goals`` to read.

The request follows Workday's Performance_Management WSDL (as the proxy classes generated from it
show: GitHub ``matteofabbri/Grimoire``, ``Workday.WebServices/Workday.PerformanceManagement/``).
A ``Manage_Goals_Request`` holds a single ``Manage_Goals_Data``: one ``Worker_Reference`` and that
worker's ``Worker_Goal_Detail_Data``, so okrsync sends **one request per worker whose goals
changed**. ``Add_Only`` would be an attribute; okrsync never sets it (it updates in place).

Each okrsync objective owned by a person becomes one worker goal, elements in the schema's order:
``Goal_Reference`` (once the goal is known), ``Goal_Reference_ID``, ``Name``, ``Description``,
``Goal_Category_Reference``, ``Organization_Goal_Reference``, ``Goal_Weight``, ``Due_Date``,
``Status_Reference`` (a ``Component_Completion`` reference: ``goal_status_ids`` of the config, typed
``goal_status_id_type``), and its key results as ``Worker_Goal_Milestone_Detail_Data``
(``Goal_Milestone_Reference_ID`` = :func:`milestone_reference_id` of the key result id,
``Goal_Milestone_Name``, ``Goal_Milestone_Due_Date``).

Identity is ``Goal_Reference_ID`` = :func:`goal_reference_id` of the objective id (deterministic),
so a re-run updates the same goals instead of adding new ones. The answer's
``Worker_Goal_Detail_Reference`` (one per goal, in request order) gives the goal's WID; the
objective's ``target_id`` is ``<goal WID>#<fingerprint>`` (``Goal_Reference_ID`` if the WID is not
answered), the fingerprint being a hash of what was written. With that id back in ``id_map``
the goal is sent with ``Goal_Reference`` and, when its fingerprint still matches, not sent at
all: a worker is written only if one of its goals differs, and only the goals that differ. If
Workday refuses a ``Goal_Reference`` (the goal was deleted there), the worker's goals are sent
once more by ``Goal_Reference_ID`` alone. Changes made in Workday are not detected (its read-back
has no milestones, weight or category to compare); an empty ``id_map`` rewrites everything.

Owners are canonical person ids (Employee_IDs): the ``Worker_Reference`` is the WID when
``id_map[person id]`` holds one, else ``Employee_ID``; a worker Workday refuses fails only its
own goals. Alignment: an objective whose chain of alignments reaches an objective listed in
``organization_goals`` (or carrying ``external_refs["workday_organization_goal"]``) gets that
``Organization_Goal_Reference``.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

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

_SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}\Z")
ORG_GOAL_REF = "workday_organization_goal"
_W = f"{{{soap.WD_NS}}}"
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)


def goal_reference_id(objective_id: str) -> str:
    """Deterministic ``Goal_Reference_ID`` of an okrsync objective (readable when the id is short)."""
    if _SAFE_ID.match(objective_id):
        return f"OKRSYNC-{objective_id}"
    return "OKRSYNC-H" + hashlib.sha256(objective_id.encode()).hexdigest()[:24].upper()


def milestone_reference_id(key_result_id: str) -> str:
    """Deterministic ``Goal_Milestone_Reference_ID`` of an okrsync key result."""
    if _SAFE_ID.match(key_result_id):
        return f"OKRSYNC-KR-{key_result_id}"
    return "OKRSYNC-KRH" + hashlib.sha256(key_result_id.encode()).hexdigest()[:24].upper()


def _el(name: str, value: str) -> str:
    return f"<wd:{name}>{escape(value)}</wd:{name}>"


def _ref(name: str, kind: str, value: str) -> str:
    return f"<wd:{name}><wd:ID wd:type={quoteattr(kind)}>{escape(value)}</wd:ID></wd:{name}>"


def _number(value: float) -> str:
    return format(value, ".15g")


def _split(target_id: str | None) -> tuple[str | None, str | None]:
    """(goal WID or Goal_Reference_ID, fingerprint) of a ``target_id`` this writer returned."""
    if not target_id:
        return None, None
    ident, _, fingerprint = target_id.partition("#")
    return ident or None, fingerprint or None


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
        for owner, goals in by_owner.items():
            results += self._push_worker(owner, goals, krs, id_map, org_goals)
        return results

    def _push_worker(
        self,
        owner: str,
        goals: list[Objective],
        krs: Mapping[str, list[KeyResult]],
        id_map: Mapping[str, str],
        org_goals: Mapping[str, str],
    ) -> list[GoalResult]:
        """One ``Manage_Goals`` request holding this worker's changed goals (none if nothing changed)."""
        wid = id_map.get(owner)
        worker = (
            _ref("Worker_Reference", "WID", wid) if wid else _ref("Worker_Reference", "Employee_ID", owner)
        )
        out: list[GoalResult] = []
        changed: list[tuple[Objective, str, str | None, str]] = []  # objective, detail, known id, print
        for o in goals:
            body = self._detail_body(o, krs.get(o.id, []), org_goals)
            fingerprint = hashlib.sha256(f"{worker}\n{body}".encode()).hexdigest()[:16]
            known, held = _split(id_map.get(o.id))
            if held == fingerprint:
                out.append(GoalResult(o.id, True, target_id=id_map[o.id], written=False))
                out += [
                    GoalResult(k.id, True, target_id=milestone_reference_id(k.id), written=False)
                    for k in krs.get(o.id, [])
                ]
                continue
            changed.append((o, body, known, fingerprint))
        if not changed:
            return out
        try:
            try:
                wids = self._send(worker, [self._detail(o, body, known) for o, body, known, _ in changed])
            except ApiError as exc:
                xpath = str(exc.context.get("xpath") or "")
                if isinstance(exc, RetriableApiError) or "/wd:Goal_Reference[" not in xpath:
                    raise
                # a goal okrsync wrote was deleted in Workday: identify every goal by its Goal_Reference_ID
                wids = self._send(worker, [self._detail(o, body, None) for o, body, _, _ in changed])
        except RetriableApiError:
            raise
        except ApiError as exc:
            for o, *_ in changed:
                out.append(GoalResult(o.id, False, error=exc.message))
                out += [GoalResult(k.id, False, error=exc.message) for k in krs.get(o.id, [])]
            return out
        for k, (o, _, _, fingerprint) in enumerate(changed):
            ident = wids[k] if len(wids) == len(changed) and wids[k] else goal_reference_id(o.id)
            out.append(GoalResult(o.id, True, target_id=f"{ident}#{fingerprint}", written=True))
            out += [
                GoalResult(kr.id, True, target_id=milestone_reference_id(kr.id), written=True)
                for kr in krs.get(o.id, [])
            ]
        return out

    def _send(self, worker: str, details: list[str]) -> list[str | None]:
        """POST one worker's goals; the goal WIDs of the answer's ``Worker_Goal_Detail_Reference``s."""
        body = (
            f'<wd:Manage_Goals_Request xmlns:wd="{soap.WD_NS}" wd:version={quoteattr(self.cfg.version)}>'
            f"<wd:Manage_Goals_Data>{worker}{''.join(details)}</wd:Manage_Goals_Data>"
            "</wd:Manage_Goals_Request>"
        )
        password = self.cfg.password.get_secret_value() if self.cfg.password else ""
        response = self.http.request(
            "POST",
            self.cfg.goals_url,
            operation="Manage_Goals",
            data=soap.envelope(body, self.cfg.username or "", password),
            headers=soap.HEADERS,
            classify=soap.classify(self.name, "Manage_Goals"),
        )
        return _detail_wids(response.content)

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

    def _detail(self, o: Objective, body: str, known: str | None) -> str:
        """``Worker_Goal_Detail_Data``: ``Goal_Reference`` for a goal okrsync wrote before, then the body."""
        reference = ""
        if known:
            kind = "Goal_Reference_ID" if known == goal_reference_id(o.id) else "WID"
            reference = _ref("Goal_Reference", kind, known)
        return f"<wd:Worker_Goal_Detail_Data>{reference}{body}</wd:Worker_Goal_Detail_Data>"

    def _detail_body(self, o: Objective, krs: list[KeyResult], org_goals: Mapping[str, str]) -> str:
        """Everything after ``Goal_Reference``, in the schema's order (also what the fingerprint covers)."""
        parts = [_el("Goal_Reference_ID", goal_reference_id(o.id)), _el("Name", o.title)]
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
        parts.append(
            _ref("Status_Reference", self.cfg.goal_status_id_type, self.cfg.goal_status_ids[o.status])
        )
        for kr in krs:
            target = f"{_number(kr.start_value)} → {_number(kr.target_value)}" + (
                f" {kr.unit}" if kr.unit else ""
            )
            milestone = _el("Goal_Milestone_Reference_ID", milestone_reference_id(kr.id)) + _el(
                "Goal_Milestone_Name", f"{kr.title} ({target})"
            )
            if o.due:
                milestone += _el("Goal_Milestone_Due_Date", o.due.isoformat())
            parts.append(
                f"<wd:Worker_Goal_Milestone_Detail_Data>{milestone}</wd:Worker_Goal_Milestone_Detail_Data>"
            )
        return "".join(parts)


def _detail_wids(body: bytes) -> list[str | None]:
    """The WID of each ``Worker_Goal_Detail_Reference`` in a ``Manage_Goals_Response`` (in order)."""
    from okrsync.connectors.workday.parse import is_hostile

    if not body or is_hostile(body):
        return []
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError:
        return []
    out: list[str | None] = []
    for ref in root.iter(f"{_W}Worker_Goal_Detail_Reference"):
        wid = next(((i.text or "").strip() for i in ref.iter(f"{_W}ID") if i.get(f"{_W}type") == "WID"), None)
        out.append(wid or None)
    return out


def read_goals(cfg: WorkdayConfig, http: HttpClient, name: str, now: datetime) -> OkrSet:
    """Every worker goal, read with ``Get_Workers`` ``Include_Goals`` (milestones are not returned)."""
    puller = SoapPuller(cfg, http, {"Include_Reference", "Include_Goals"}, name)
    build = puller.request_builder(now)
    back = {v: k for k, v in cfg.goal_status_ids.items()}
    status_key = "Status_WID" if cfg.goal_status_id_type == "WID" else "Status"
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
                    status=back.get(str(g.get(status_key) or ""), GoalStatus.NOT_STARTED),
                    external_refs=refs,
                )
            )
    return OkrSet(objectives=tuple(objectives))
