"""Viva Learning through the Entra connection: contents, assignments, status read back.

Reuses the connection's :class:`~okrsync.connectors.entra.graph.Graph` (msal token, HttpClient
retries, ``$batch``) and its user look-up by anchor (``employeeId`` by default), so a learner's
canonical person id becomes their Entra object id with one cached ``$filter … in (…)`` per 15.

``push_learning(items, links, id_map)``:

1. providers are found by the item's ``provider`` (registration id or display name);
2. contents are listed once per provider and upserted (``PATCH learningContents(externalId='…')``)
   only when a field differs;
3. each learner's course activities are read (``GET /users/{id}/employeeExperience/
   learningCourseActivities``, in ``$batch``); an assignment whose ``externalcourseActivityId``
   (``okrsync-<link id>``; both spellings read, the metadata's written) is missing is POSTed
   with ``@odata.type``, one that differs (type, due date, notes, content) is PATCHed, an equal
   one is left alone — a second run writes nothing;
4. links in the id map but no longer desired are DELETEd by ``externalCourseActivityId``.

Application permissions: ``LearningContent.ReadWrite.All``, ``LearningAssignedCourse.ReadWrite.All``
(and ``User.Read.All`` for the look-up).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from okrsync.connectors.base import GoalResult
from okrsync.connectors.entra.graph import BatchItem, ItemResult
from okrsync.errors import ApiError
from okrsync.learning import LinkStatus
from okrsync.models import AssignmentType, LearningItem, LearningLink, LearningStatus

if TYPE_CHECKING:
    from okrsync.connectors.entra import EntraConnector

EXT_ID = "externalcourseActivityId"  # the metadata's spelling: what msgraph-sdk sends on the wire
EXT_ID_DOCS = "externalCourseActivityId"  # the docs' spelling: read too
ASSIGNMENT = "#microsoft.graph.learningAssignment"
EXT_PREFIX = "okrsync-"
ROOT = "/employeeExperience/learningProviders"
_CACHE: weakref.WeakKeyDictionary[Any, VivaLearning] = weakref.WeakKeyDictionary()


def viva(conn: EntraConnector) -> VivaLearning:
    """The connection's Viva Learning client (one per connector, sharing its Graph and caches)."""
    found = _CACHE.get(conn)
    if found is None:
        found = _CACHE[conn] = VivaLearning(conn)
    return found


def external_id(link_id: str) -> str:
    return EXT_PREFIX + link_id


def _key(value: str) -> str:
    return quote(value.replace("'", "''"), safe="-._~")


def ext_of(activity: Mapping[str, Any]) -> str | None:
    value = activity.get(EXT_ID, activity.get(EXT_ID_DOCS))
    return str(value) if value else None


class VivaLearning:
    """``LearningTarget`` + ``pull_learning_items`` + ``pull_learning_status`` on one Entra connection."""

    def __init__(self, conn: EntraConnector) -> None:
        self.conn = conn
        self.graph = conn.graph
        self.target = conn._target  # its anchor look-up and person id → objectId cache
        self.log = conn.context.logger
        self._providers: dict[str, str] | None = None
        self.contents: dict[tuple[str, str], dict[str, Any]] = {}  # (provider, externalId) → content

    # ---- providers / learners ----
    def providers(self) -> dict[str, str]:
        """Registration id and display name (lower-cased) → registration id."""
        if self._providers is None:
            found: dict[str, str] = {}
            for page in self.graph.pages(ROOT, None, operation="list learning providers"):
                for p in page.get("value") or ():
                    found[str(p["id"]).lower()] = str(p["id"])
                    if p.get("displayName"):
                        found.setdefault(str(p["displayName"]).lower(), str(p["id"]))
            self._providers = found
        return self._providers

    def provider_id(self, name: str) -> str | None:
        return self.providers().get(name.lower())

    def object_ids(self, person_ids: Iterable[str]) -> dict[str, str]:
        """Person id → Entra object id through the anchor look-up, cached on the connection."""
        wanted = list(dict.fromkeys(person_ids))
        known = self.target.object_ids
        missing = [p for p in wanted if p not in known]
        if missing:
            self.target.lookup(missing)
        return {p: known[p] for p in wanted if p in known}

    # ---- contents ----
    def _load_contents(self, reg: str) -> None:
        if any(k[0] == reg for k in self.contents):
            return
        for page in self.graph.pages(f"{ROOT}/{reg}/learningContents", None, operation="list contents"):
            for c in page.get("value") or ():
                self.contents[(reg, str(c.get("externalId")))] = c

    @staticmethod
    def content_body(item: LearningItem) -> dict[str, Any]:
        body: dict[str, Any] = {
            "externalId": item.external_id,
            "title": item.title,
            "contentWebUrl": item.url,
            "languageTag": item.language,
            "skillTags": list(item.skills),
        }
        if item.duration:
            body["duration"] = item.duration
        if item.format:
            body["format"] = item.format
        return body

    def _upsert_contents(self, items: Sequence[LearningItem]) -> dict[str, GoalResult]:
        out: dict[str, GoalResult] = {}
        batch: list[BatchItem] = []
        for item in items:
            reg = self.provider_id(item.provider)
            if reg is None:
                out[item.id] = GoalResult(item.id, ok=False, error=f"no learning provider {item.provider!r}")
                continue
            if not item.url:
                out[item.id] = GoalResult(item.id, ok=False, error="contentWebUrl (url) is required")
                continue
            self._load_contents(reg)
            body = self.content_body(item)
            have = self.contents.get((reg, item.external_id))
            if have is not None and all(_same(have.get(k), v) for k, v in body.items()):
                out[item.id] = GoalResult(item.id, ok=True, target_id=str(have.get("id")))
                continue
            url = f"{ROOT}/{reg}/learningContents(externalId='{_key(item.external_id)}')"
            batch.append(BatchItem("PATCH", url, body, key=(item, reg)))
        for res in self.graph.batch(batch, operation="upsert learning contents"):
            item, reg = res.item.key
            if res.ok and isinstance(res.body, dict):
                self.contents[(reg, item.external_id)] = res.body
                out[item.id] = GoalResult(item.id, ok=True, target_id=str(res.body.get("id")), written=True)
            else:
                out[item.id] = GoalResult(item.id, ok=False, error=res.error)
        return out

    # ---- activities ----
    def activities(self, object_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """okrsync's course activities of these users: externalcourseActivityId → activity."""
        items = [
            BatchItem("GET", f"/users/{oid}/employeeExperience/learningCourseActivities", key=oid)
            for oid in dict.fromkeys(object_ids)
        ]
        found: dict[str, dict[str, Any]] = {}
        for res in self.graph.batch(items, operation="read course activities"):
            if not res.ok:
                raise ApiError(f"reading course activities failed: {res.error}", connector="entra")
            body = res.body if isinstance(res.body, dict) else {}
            pages = [body]
            if body.get("@odata.nextLink"):
                pages += list(
                    self.graph.pages(str(body["@odata.nextLink"]), None, operation="read activities")
                )
            for page in pages:
                for act in page.get("value") or ():
                    ext = ext_of(act)
                    if ext and ext.startswith(EXT_PREFIX):
                        found[ext] = act
        return found

    def assignment_body(self, link: LearningLink, content_id: str, learner: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "learningContentId": content_id,
            "learnerUserId": learner,
            "assignmentType": link.assignment_type.value,
            "notes": {"contentType": "text", "content": notes(link)},
        }
        if link.due is not None:
            body["dueDateTime"] = {"dateTime": f"{link.due.isoformat()}T00:00:00", "timeZone": "UTC"}
        return body

    def push_learning(
        self, items: Sequence[LearningItem], links: Sequence[LearningLink], id_map: Mapping[str, str]
    ) -> list[GoalResult]:
        by_item = {i.id: i for i in items}
        used = [by_item[i] for i in dict.fromkeys(lk.item_id for lk in links) if i in by_item]
        content = self._upsert_contents(used)
        results: list[GoalResult] = [
            GoalResult("item:" + r.item_id, r.ok, r.target_id, r.written, r.error) for r in content.values()
        ]
        oids = self.object_ids(lk.learner_id for lk in links if lk.learner_id)
        existing = self.activities(oids.values())
        writes: list[BatchItem] = []
        now = self.conn.context.clock()
        for link in links:
            item = by_item.get(link.item_id)
            c = content.get(link.item_id)
            oid = oids.get(link.learner_id or "")
            if item is None or c is None or not c.ok or not c.target_id:
                why = c.error if c is not None else f"learning item {link.item_id!r} not given"
                results.append(GoalResult(link.id, ok=False, error=f"content: {why}"))
                continue
            if oid is None:
                results.append(
                    GoalResult(link.id, ok=False, error=f"learner {link.learner_id!r} not in Entra")
                )
                continue
            reg = self.provider_id(item.provider)
            ext = external_id(link.id)
            ref = f"{reg}/{ext}"
            body = self.assignment_body(link, c.target_id, oid)
            have = existing.get(ext)
            if have is None:
                post = {"@odata.type": ASSIGNMENT, EXT_ID: ext, **body, "status": "notStarted"}
                post["assignedDateTime"] = _stamp(now)
                writes.append(
                    BatchItem("POST", f"{ROOT}/{reg}/learningCourseActivities", post, key=(link.id, ref))
                )
                continue
            diff = {k: v for k, v in body.items() if not _same(have.get(k), v)}
            if not diff:
                results.append(GoalResult(link.id, ok=True, target_id=ref))
                continue
            url = f"{ROOT}/{reg}/learningCourseActivities({EXT_ID_DOCS}='{_key(ext)}')"
            writes.append(BatchItem("PATCH", url, diff, key=(link.id, ref)))
        desired = {lk.id for lk in links}
        for link_id, ref in id_map.items():
            if link_id in desired or link_id.startswith("item:") or "/" not in ref:
                continue
            reg, _, ext = ref.partition("/")
            url = f"{ROOT}/{reg}/learningCourseActivities({EXT_ID_DOCS}='{_key(ext)}')"
            writes.append(BatchItem("DELETE", url, key=(link_id, None)))
        for res in self.graph.batch(writes, operation="write course activities"):
            link_id, ref = res.item.key
            results.append(self._result(res, link_id, ref))
        return results

    @staticmethod
    def _result(res: ItemResult, link_id: str, ref: str | None) -> GoalResult:
        if res.ok or (res.item.method == "DELETE" and res.status == 404):
            return GoalResult(link_id, ok=True, target_id=ref, written=True)
        if res.item.method == "POST" and res.status == 409:
            return GoalResult(link_id, ok=True, target_id=ref)  # created by an earlier, unrecorded run
        return GoalResult(link_id, ok=False, error=res.error)

    # ---- read back ----
    def pull_learning_status(
        self, links: Sequence[LearningLink], id_map: Mapping[str, str] | None = None
    ) -> dict[str, LinkStatus]:
        oids = self.object_ids(lk.learner_id for lk in links if lk.learner_id)
        existing = self.activities(oids.values())
        out: dict[str, LinkStatus] = {}
        for link in links:
            act = existing.get(external_id(link.id))
            if act is None:
                continue
            try:
                status = LearningStatus(str(act.get("status") or "notStarted"))
            except ValueError:
                status = LearningStatus.NOT_STARTED
            pct = float(act.get("completionPercentage") or 0)
            if status is LearningStatus.COMPLETED:
                pct = 100.0
            out[link.id] = LinkStatus(link.id, status, pct, act.get("completedDateTime"))
        return out

    def pull_learning_items(self, provider: str | None = None) -> list[LearningItem]:
        """The providers' contents as catalogue items (``id`` = ``externalId``)."""
        regs = {v for k, v in self.providers().items() if provider is None or k == provider.lower()}
        names = {v: k for k, v in self.providers().items() if k != v.lower()}
        items: list[LearningItem] = []
        for reg in sorted(regs):
            self._load_contents(reg)
            for (r, ext), c in self.contents.items():
                if r != reg:
                    continue
                items.append(
                    LearningItem(
                        id=ext,
                        provider=names.get(reg, reg),
                        external_id=ext,
                        title=str(c.get("title") or ext),
                        url=c.get("contentWebUrl"),
                        format=c.get("format"),
                        skills=tuple(c.get("skillTags") or ()),
                        duration=c.get("duration"),
                        language=str(c.get("languageTag") or "en-US"),
                    )
                )
        return items


def notes(link: LearningLink) -> str:
    """The assignment's notes: Graph has no goal field, so the notes cite the objective and KR."""
    goal = []
    if link.objective_id:
        goal.append(f"objective {link.objective_id}")
    if link.key_result_id:
        goal.append(f"key result {link.key_result_id}")
    head = "okrsync: supports " + (" / ".join(goal) or "your goals") + "."
    kind = " Required." if link.assignment_type is AssignmentType.REQUIRED else ""
    return f"{head}{kind} {link.rationale or ''}".strip()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _same(have: Any, want: Any) -> bool:
    if isinstance(want, dict) and isinstance(have, dict):
        if "dateTime" in want:
            return str(have.get("dateTime", ""))[:19] == str(want["dateTime"])[:19] and str(
                have.get("timeZone") or "UTC"
            ) == str(want.get("timeZone"))
        return all(_same(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and list(have) == want
    return bool(have == want)
