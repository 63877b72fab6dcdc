"""Viva Learning under ``/v1.0/employeeExperience``: providers, contents, course activities.

The spelling trap is reproduced on purpose: the metadata (and msgraph-sdk on the wire) calls
the activity's key ``externalcourseActivityId`` (lower-case c). The emulator reads both that and
the documentation's ``externalCourseActivityId``, and always answers with the metadata spelling,
so a connector that only reads the camel-cased one fails here as it would in production.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from okrsync.sandbox.graph.common import GraphError, bad_request, json_object
from okrsync.sandbox.graph.directory import Directory
from okrsync.sandbox.server import Request, Response

Route = tuple[str, str, Callable[[Request], Response]]
EXT_ID = "externalcourseActivityId"
EXT_ID_DOCS = "externalCourseActivityId"
ASSIGNMENT = "#microsoft.graph.learningAssignment"
SELF_INITIATED = "#microsoft.graph.learningSelfInitiatedCourse"
CONTENT_REQUIRED = ("externalId", "title", "contentWebUrl", "languageTag")
CONTENT_FIELDS: dict[str, Any] = {
    "externalId": None,
    "title": None,
    "description": None,
    "contentWebUrl": None,
    "sourceName": None,
    "thumbnailWebUrl": None,
    "languageTag": None,
    "numberOfPages": None,
    "duration": None,
    "format": None,
    "createdDateTime": None,
    "lastModifiedDateTime": None,
    "contributors": [],
    "additionalTags": [],
    "skillTags": [],
    "isActive": True,
    "isPremium": False,
    "isSearchable": True,
    "level": None,
}
PROVIDER_FIELDS = {
    "displayName": None,
    "loginWebUrl": None,
    "longLogoWebUrlForDarkTheme": None,
    "longLogoWebUrlForLightTheme": None,
    "squareLogoWebUrlForDarkTheme": None,
    "squareLogoWebUrlForLightTheme": None,
    "isCourseActivitySyncEnabled": False,
}
ACTIVITY_COMMON = (
    "learningContentId",
    "learnerUserId",
    "status",
    "completionPercentage",
    "completedDateTime",
)
ACTIVITY_FIELDS = {
    ASSIGNMENT: (
        *ACTIVITY_COMMON,
        "assignedDateTime",
        "assignmentType",
        "assignerUserId",
        "dueDateTime",
        "notes",
    ),
    SELF_INITIATED: (*ACTIVITY_COMMON, "startedDateTime"),
}
STATUSES = ("notStarted", "inProgress", "completed")
ASSIGNMENT_TYPES = ("required", "recommended", "peerRecommended")
_DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
SANDBOX_PROVIDER = "okrsync-sandbox"
P = r"(?i)/v1\.0/employeeExperience/learningProviders"
REG = r"/(?P<reg>[^/()]+)"
KEY = r"\((?P<keyname>externalId|externalCourseActivityId)='(?P<key>(?:[^']|'')*)'\)"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _conflict(message: str) -> GraphError:
    return GraphError(409, "Conflict", message)


class LearningApi:
    """In-memory Viva Learning state for one tenant, seeded with the sandbox provider."""

    def __init__(self, directory: Directory) -> None:
        self.d = directory
        self.lock = threading.RLock()
        self.providers: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, dict[str, dict[str, Any]]] = {}
        self.activities: dict[str, dict[str, dict[str, Any]]] = {}
        seed = str(uuid.uuid5(uuid.NAMESPACE_URL, "okrsync:" + SANDBOX_PROVIDER))
        self._add_provider(
            {
                "displayName": SANDBOX_PROVIDER,
                "loginWebUrl": "https://learning.example.com/login",
                "isCourseActivitySyncEnabled": True,
            },
            seed,
        )

    @property
    def sandbox_provider_id(self) -> str:
        return next(iter(self.providers))

    def routes(self) -> list[Route]:
        c, a = P + REG + "/learningContents", P + REG + "/learningCourseActivities"
        return [
            ("GET", P + "/?", self.list_providers),
            ("POST", P + "/?", self.create_provider),
            ("GET", P + REG, self.get_provider),
            ("PATCH", P + REG, self.patch_provider),
            ("GET", c + "/?", self.list_contents),
            ("PATCH", c + KEY, self.upsert_content),
            ("GET", c + KEY, self.get_content),
            ("DELETE", c + KEY, self.delete_content),
            ("GET", c + r"/(?P<id>[^/()]+)", self.get_content),
            ("DELETE", c + r"/(?P<id>[^/()]+)", self.delete_content),
            ("GET", a + "/?", self.list_activities),
            ("POST", a + "/?", self.create_activity),
            ("GET", a + KEY, self.get_activity),
            ("PATCH", a + KEY, self.patch_activity),
            ("DELETE", a + KEY, self.delete_activity),
            ("GET", a + r"/(?P<id>[^/()]+)", self.get_activity),
            ("PATCH", a + r"/(?P<id>[^/()]+)", self.patch_activity),
            ("DELETE", a + r"/(?P<id>[^/()]+)", self.delete_activity),
            (
                "GET",
                r"(?i)/v1\.0/users/(?P<user>[^/]+)/employeeExperience/learningCourseActivities/?",
                self.user_activities,
            ),
        ]

    # ---- providers ----
    def _add_provider(self, body: dict[str, Any], pid: str | None = None) -> dict[str, Any]:
        unknown = set(body) - set(PROVIDER_FIELDS) - {"@odata.type", "id"}
        if unknown:
            raise bad_request(
                f"Property '{sorted(unknown)[0]}' does not exist on type 'microsoft.graph.learningProvider'.",
                "BadRequest",
            )
        if not body.get("displayName"):
            raise bad_request("displayName is required for a learning provider.", "BadRequest")
        pid = pid or str(uuid.uuid4())
        provider = {"id": pid, **PROVIDER_FIELDS, **{k: v for k, v in body.items() if k in PROVIDER_FIELDS}}
        self.providers[pid] = provider
        self.contents[pid] = {}
        self.activities[pid] = {}
        return provider

    def _provider(self, req: Request) -> dict[str, Any]:
        assert req.match is not None
        reg = req.match.group("reg")
        provider = self.providers.get(reg.lower()) or self.providers.get(reg)
        if provider is None:
            raise GraphError(404, "NotFound", f"Learning provider '{reg}' was not found.")
        return provider

    def list_providers(self, req: Request) -> Response:
        with self.lock:
            return self._list(req, "learningProviders", list(self.providers.values()))

    def create_provider(self, req: Request) -> Response:
        """Graph documents this as delegated-only; the sandbox allows it so tests can add providers."""
        with self.lock:
            provider = self._add_provider(json_object(req))
        return self._entity(req, "learningProviders", provider, 201)

    def get_provider(self, req: Request) -> Response:
        with self.lock:
            return self._entity(req, "learningProviders", self._provider(req))

    def patch_provider(self, req: Request) -> Response:
        body = json_object(req)
        with self.lock:
            provider = self._provider(req)
            unknown = set(body) - set(PROVIDER_FIELDS) - {"@odata.type"}
            if unknown:
                raise bad_request(
                    f"Property '{sorted(unknown)[0]}' does not exist on type "
                    "'microsoft.graph.learningProvider'.",
                    "BadRequest",
                )
            provider.update({k: v for k, v in body.items() if k in PROVIDER_FIELDS})
        return Response.empty(204)

    # ---- contents ----
    def _find_content(self, pid: str, req: Request) -> dict[str, Any]:
        assert req.match is not None
        groups = req.match.groupdict()
        if groups.get("key") is not None:
            found = self._content_by_external(pid, groups["key"].replace("''", "'"))
        else:
            found = self.contents[pid].get(groups.get("id") or "")
        if found is None:
            raise GraphError(404, "NotFound", "The learning content was not found.")
        return found

    def _content_by_external(self, pid: str, external_id: str) -> dict[str, Any] | None:
        return next((c for c in self.contents[pid].values() if c["externalId"] == external_id), None)

    def list_contents(self, req: Request) -> Response:
        with self.lock:
            return self._list(
                req, "learningContents", list(self.contents[self._provider(req)["id"]].values())
            )

    def get_content(self, req: Request) -> Response:
        with self.lock:
            return self._entity(req, "learningContents", self._find_content(self._provider(req)["id"], req))

    def delete_content(self, req: Request) -> Response:
        with self.lock:
            pid = self._provider(req)["id"]
            del self.contents[pid][self._find_content(pid, req)["id"]]
        return Response.empty(204)

    def upsert_content(self, req: Request) -> Response:
        """``PATCH ...learningContents(externalId='X')`` creates or updates; answers 202 with the entity."""
        assert req.match is not None
        external_id = req.match.group("key").replace("''", "'")
        if req.match.group("keyname").lower() != "externalid":
            raise bad_request("Learning contents are keyed by externalId.", "BadRequest")
        body = json_object(req)
        self._check_content(body, external_id)
        with self.lock:
            pid = self._provider(req)["id"]
            content = self._content_by_external(pid, external_id)
            if content is None:
                missing = [k for k in CONTENT_REQUIRED if k != "externalId" and not body.get(k)]
                if missing:
                    raise bad_request(
                        f"The property '{missing[0]}' is required when creating learning content.",
                        "BadRequest",
                    )
                now = _now()
                content = {
                    "id": str(uuid.uuid4()),
                    **{k: (list(v) if isinstance(v, list) else v) for k, v in CONTENT_FIELDS.items()},
                    "externalId": external_id,
                    "createdDateTime": now,
                }
                self.contents[pid][content["id"]] = content
            content.update({k: v for k, v in body.items() if k in CONTENT_FIELDS})
            content["lastModifiedDateTime"] = _now()
            return self._entity(req, "learningContents", content, 202)

    @staticmethod
    def _check_content(body: dict[str, Any], external_id: str) -> None:
        unknown = set(body) - set(CONTENT_FIELDS) - {"@odata.type", "id"}
        if unknown:
            raise bad_request(
                f"Property '{sorted(unknown)[0]}' does not exist on type 'microsoft.graph.learningContent'.",
                "BadRequest",
            )
        if body.get("externalId") not in (None, external_id):
            raise bad_request("The externalId in the body does not match the key in the URL.", "BadRequest")
        duration = body.get("duration")
        if duration is not None and not (isinstance(duration, str) and _DURATION.match(duration)):
            raise bad_request(
                f"Invalid duration '{duration}': an ISO 8601 duration such as 'PT20M' is required.",
                "BadRequest",
            )
        for key in ("skillTags", "additionalTags", "contributors"):
            if key in body and not isinstance(body[key], list):
                raise bad_request(f"Property '{key}' must be an array.", "BadRequest")

    # ---- course activities ----
    def _find_activity(self, pid: str, req: Request) -> dict[str, Any]:
        assert req.match is not None
        groups = req.match.groupdict()
        if groups.get("key") is not None:
            if groups["keyname"].lower() != EXT_ID.lower():
                raise bad_request("Course activities are keyed by externalcourseActivityId.", "BadRequest")
            key = groups["key"].replace("''", "'")
            found = next((a for a in self.activities[pid].values() if a[EXT_ID] == key), None)
        else:
            found = self.activities[pid].get(groups.get("id") or "")
        if found is None:
            raise GraphError(404, "NotFound", "The learning course activity was not found.")
        return found

    def list_activities(self, req: Request) -> Response:
        with self.lock:
            return self._list(
                req, "learningCourseActivities", list(self.activities[self._provider(req)["id"]].values())
            )

    def get_activity(self, req: Request) -> Response:
        with self.lock:
            return self._entity(
                req, "learningCourseActivities", self._find_activity(self._provider(req)["id"], req)
            )

    def delete_activity(self, req: Request) -> Response:
        with self.lock:
            pid = self._provider(req)["id"]
            del self.activities[pid][self._find_activity(pid, req)["id"]]
        return Response.empty(204)

    def create_activity(self, req: Request) -> Response:
        body = json_object(req)
        kind = body.get("@odata.type")
        if kind not in ACTIVITY_FIELDS:
            raise bad_request(
                "The '@odata.type' property is required and must be '#microsoft.graph.learningAssignment' "
                "or '#microsoft.graph.learningSelfInitiatedCourse'.",
                "BadRequest",
            )
        external_id = body.get(EXT_ID, body.get(EXT_ID_DOCS))
        if not external_id:
            raise bad_request(f"The property '{EXT_ID}' is required.", "BadRequest")
        fields = self._activity_fields(str(kind), body, creating=True)
        with self.lock:
            provider = self._provider(req)
            pid = provider["id"]
            if not provider.get("isCourseActivitySyncEnabled"):
                raise GraphError(
                    403,
                    "Forbidden",
                    "Course activity sync is not enabled for this learning provider "
                    "(isCourseActivitySyncEnabled is false).",
                )
            self._check_references(pid, fields)
            if any(a[EXT_ID] == external_id for a in self.activities[pid].values()):
                raise _conflict(f"A learning course activity with {EXT_ID} '{external_id}' already exists.")
            activity = {
                "@odata.type": kind,
                "id": str(uuid.uuid4()),
                EXT_ID: external_id,
                "learningProviderId": pid,
                **{k: None for k in ACTIVITY_FIELDS[str(kind)]},
                **fields,
            }
            activity.setdefault("completionPercentage", 0)
            if activity["completionPercentage"] is None:
                activity["completionPercentage"] = 0
            self.activities[pid][activity["id"]] = activity
            return self._entity(req, "learningCourseActivities", activity, 201)

    def patch_activity(self, req: Request) -> Response:
        body = json_object(req)
        with self.lock:
            pid = self._provider(req)["id"]
            activity = self._find_activity(pid, req)
            if body.get("@odata.type") not in (None, activity["@odata.type"]):
                raise bad_request("The '@odata.type' of an activity cannot change.", "BadRequest")
            key = body.get(EXT_ID, body.get(EXT_ID_DOCS))
            if key not in (None, activity[EXT_ID]):
                raise bad_request(f"'{EXT_ID}' cannot be changed.", "BadRequest")
            fields = self._activity_fields(activity["@odata.type"], body, creating=False)
            self._check_references(pid, fields)
            activity.update(fields)
        return Response.empty(204)

    @staticmethod
    def _activity_fields(kind: str, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        allowed = ACTIVITY_FIELDS[kind]
        fields = {k: v for k, v in body.items() if k not in {"@odata.type", EXT_ID, EXT_ID_DOCS, "id"}}
        unknown = [k for k in fields if k not in allowed]
        if unknown:
            raise bad_request(
                f"Property '{unknown[0]}' does not exist on type '{kind.lstrip('#')}'.", "BadRequest"
            )
        if creating:
            for key in ("learningContentId", "learnerUserId", "status"):
                if not fields.get(key):
                    raise bad_request(f"The property '{key}' is required.", "BadRequest")
        if "status" in fields and fields["status"] not in STATUSES:
            raise bad_request(
                f"Invalid status '{fields['status']}'; one of {', '.join(STATUSES)}.", "BadRequest"
            )
        if fields.get("assignmentType") not in (None, *ASSIGNMENT_TYPES):
            raise bad_request(f"Invalid assignmentType '{fields['assignmentType']}'.", "BadRequest")
        pct = fields.get("completionPercentage")
        if pct is not None and (not isinstance(pct, int) or isinstance(pct, bool) or not 0 <= pct <= 100):
            raise bad_request("completionPercentage must be an integer from 0 to 100.", "BadRequest")
        due = fields.get("dueDateTime")
        if due is not None and not (isinstance(due, dict) and due.get("dateTime")):
            raise bad_request(
                "dueDateTime must be a dateTimeTimeZone object with 'dateTime' and 'timeZone'.", "BadRequest"
            )
        return fields

    def _check_references(self, pid: str, fields: dict[str, Any]) -> None:
        content_id = fields.get("learningContentId")
        if (
            content_id is not None
            and content_id not in self.contents[pid]
            and self._content_by_external(pid, str(content_id)) is None
        ):
            raise GraphError(
                404, "NotFound", f"Learning content '{content_id}' was not found for this provider."
            )
        for key in ("learnerUserId", "assignerUserId"):
            if fields.get(key) is not None:
                with self.d.lock:
                    if self.d.live(str(fields[key])) is None:
                        raise GraphError(
                            404, "NotFound", f"User '{fields[key]}' ({key}) was not found in the tenant."
                        )

    def user_activities(self, req: Request) -> Response:
        assert req.match is not None
        with self.d.lock:
            user = self.d.require(req.match.group("user"))
        with self.lock:
            found = [
                a
                for acts in self.activities.values()
                for a in acts.values()
                if str(a.get("learnerUserId", "")).lower() == user.id
            ]
        return Response.json(
            {
                "@odata.context": f"{req.base_url}/v1.0/$metadata#users('{user.id}')/employeeExperience/"
                "learningCourseActivities",
                "value": found,
            }
        )

    # ---- envelopes ----
    @staticmethod
    def _entity(req: Request, entity_set: str, entity: dict[str, Any], status: int = 200) -> Response:
        context = f"{req.base_url}/v1.0/$metadata#employeeExperience/{entity_set}/$entity"
        return Response.json({"@odata.context": context, **entity}, status)

    @staticmethod
    def _list(req: Request, entity_set: str, values: list[dict[str, Any]]) -> Response:
        return Response.json(
            {
                "@odata.context": f"{req.base_url}/v1.0/$metadata#employeeExperience/{entity_set}",
                "value": values,
            }
        )
