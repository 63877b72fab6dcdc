"""Learning links as xAPI statements (okrsync's profile) and completion read back from them.

Profile (also in ``docs/learning.md``), ``P`` = the ``profile`` IRI (default
``{activity_base}/xapi/profile``: xAPI wants IRIs the deployment controls):

* one **assignment** statement per link: actor = the learner as an account agent
  (``homePage`` = the HR system, ``name`` = the HR person id), verb AcrossX ``was-assigned``, object =
  the learning item (its URL, or ``{base}/items/{id}``; type ADL ``course``);
  ``context.registration`` = UUID5 of the link id (one registration per assignment),
  ``contextActivities.parent`` = the key result (``{base}/key-results/{id}``, type
  ``P/activities/key-result``), ``grouping`` = the objective (``{base}/objectives/{id}``, type
  ``P/activities/objective``), ``category`` = ``P``; extensions ``P/extensions/{link-id,
  assignment-type, due, rationale}``;
* the statement ``id`` is UUID5 of (link id, the statement's content): a rerun sends nothing
  (the id map already holds that id), a lost id map re-sends the same id, which an LRS answers
  with 204/409 instead of storing a duplicate; a changed link gets a new id and the old
  statement is voided;
* a removed link: ADL ``voided`` statement (object = ``StatementRef``) carrying the link's
  registration, so readers by registration see it;
* completion read back by agent + registration (``GET statements?agent=…&registration=…``,
  paged by ``more``): ADL ``completed``/``passed`` (or ``result.completion: true``) → completed;
  ``progressed``/``attempted``/``launched``/``initialized``/``experienced``/``failed`` → in
  progress; progress from ``result.extensions`` cmi5 ``progress`` or ``result.score.scaled``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from okrsync.connectors.xapi.config import XapiConfig
from okrsync.learning import LinkStatus, link_uuid
from okrsync.models import LearningItem, LearningLink, LearningStatus

ADL = "http://adlnet.gov/expapi/verbs/"
# ADL's vocabulary has no "assigned"; the AcrossX profile's verb has the learner as actor, as here
# ("Indicates the actor was given or required to access an object"), and xAPI says to reuse an
# existing verb rather than mint one (xAPI 1.0.3 Data §3.1).
ASSIGNED = "https://w3id.org/xapi/acrossx/verbs/was-assigned"
VOIDED = ADL + "voided"
COURSE = "http://adlnet.gov/expapi/activities/course"
CMI5_PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"
COMPLETED_VERBS = frozenset({ADL + "completed", ADL + "passed", ADL + "mastered"})
STARTED_VERBS = frozenset(
    {
        ADL + v
        for v in ("progressed", "attempted", "launched", "initialized", "experienced", "failed", "resumed")
    }
)


class Profile:
    """The IRIs of okrsync's profile for one connection."""

    def __init__(self, config: XapiConfig) -> None:
        self.config = config
        self.iri = config.profile_iri
        self.assigned = ASSIGNED
        self.objective_type = f"{self.iri}/activities/objective"
        self.key_result_type = f"{self.iri}/activities/key-result"

    def extension(self, name: str) -> str:
        return f"{self.iri}/extensions/{name}"

    def agent(self, person_id: str) -> dict[str, Any]:
        return {"objectType": "Agent", "account": {"homePage": self.config.homepage, "name": person_id}}

    def item_iri(self, item: LearningItem) -> str:
        if self.config.item_iri == "url" and item.url and item.url.startswith(("http://", "https://")):
            return item.url
        return f"{self.config.base}/items/{_segment(item.id)}"

    def objective_iri(self, objective_id: str) -> str:
        return f"{self.config.base}/objectives/{_segment(objective_id)}"

    def key_result_iri(self, key_result_id: str) -> str:
        return f"{self.config.base}/key-results/{_segment(key_result_id)}"


def _segment(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="-._~")


def registration(link_id: str) -> str:
    return link_uuid("registration", link_id)


def assignment(
    profile: Profile, link: LearningLink, item: LearningItem, timestamp: datetime
) -> dict[str, Any]:
    """The assignment statement of a link; its ``id`` depends on its content, not on the time."""
    assert link.learner_id is not None
    ctx: dict[str, list[dict[str, Any]]] = {"category": [{"objectType": "Activity", "id": profile.iri}]}
    if link.key_result_id:
        ctx["parent"] = [_activity(profile.key_result_iri(link.key_result_id), profile.key_result_type)]
        if link.objective_id:
            ctx["grouping"] = [_activity(profile.objective_iri(link.objective_id), profile.objective_type)]
    elif link.objective_id:
        ctx["parent"] = [_activity(profile.objective_iri(link.objective_id), profile.objective_type)]
    extensions: dict[str, Any] = {
        profile.extension("link-id"): link.id,
        profile.extension("assignment-type"): link.assignment_type.value,
    }
    if link.due is not None:
        extensions[profile.extension("due")] = link.due.isoformat()
    if link.rationale:
        extensions[profile.extension("rationale")] = link.rationale
    definition: dict[str, Any] = {"type": COURSE, "name": {item.language: item.title}}
    if item.duration:
        extensions[profile.extension("duration")] = item.duration
    body: dict[str, Any] = {
        "actor": profile.agent(link.learner_id),
        "verb": {"id": profile.assigned, "display": {"en-US": "was assigned"}},
        "object": {"objectType": "Activity", "id": profile.item_iri(item), "definition": definition},
        "context": {
            "registration": registration(link.id),
            "contextActivities": ctx,
            "extensions": extensions,
        },
    }
    body["id"] = link_uuid("statement", link.id, _fingerprint(body))
    body["timestamp"] = timestamp.isoformat().replace("+00:00", "Z")
    return body


def voiding(profile: Profile, statement_id: str, link_id: str, timestamp: datetime) -> dict[str, Any]:
    """ADL ``voided`` for a link's assignment statement; deterministic id, same registration."""
    return {
        "id": link_uuid("void", statement_id),
        "actor": profile.agent("okrsync"),
        "verb": {"id": VOIDED, "display": {"en-US": "voided"}},
        "object": {"objectType": "StatementRef", "id": statement_id},
        "context": {"registration": registration(link_id)},
        "timestamp": timestamp.isoformat().replace("+00:00", "Z"),
    }


def _activity(iri: str, kind: str) -> dict[str, Any]:
    return {"objectType": "Activity", "id": iri, "definition": {"type": kind}}


def _fingerprint(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def status_of(link_id: str, statements: Iterable[Mapping[str, Any]]) -> LinkStatus:
    """Fold the statements of one registration into the link's status (voided ones ignored)."""
    statements = list(statements)
    voided = {
        str((s.get("object") or {}).get("id"))
        for s in statements
        if (s.get("verb") or {}).get("id") == VOIDED
    }
    status = LearningStatus.NOT_STARTED
    completion = 0.0
    completed_at: str | None = None
    for s in statements:
        verb = (s.get("verb") or {}).get("id")
        if s.get("id") in voided or verb == VOIDED:
            continue
        result = s.get("result") or {}
        progress = _progress(result)
        if verb in COMPLETED_VERBS or result.get("completion") is True:
            status = LearningStatus.COMPLETED
            completion = 100.0
            stamp = s.get("timestamp") or s.get("stored")
            completed_at = max(filter(None, (completed_at, stamp)), default=None)
        elif (verb in STARTED_VERBS or progress is not None) and status is not LearningStatus.COMPLETED:
            status = LearningStatus.IN_PROGRESS
            completion = max(completion, progress or 0.0)
    return LinkStatus(link_id, status, completion, completed_at)


def _progress(result: Mapping[str, Any]) -> float | None:
    ext = result.get("extensions") or {}
    if CMI5_PROGRESS in ext:
        try:
            return max(0.0, min(100.0, float(ext[CMI5_PROGRESS])))
        except (TypeError, ValueError):
            return None
    scaled = (result.get("score") or {}).get("scaled")
    if isinstance(scaled, int | float) and not isinstance(scaled, bool):
        return max(0.0, min(100.0, float(scaled) * 100.0))
    return None
