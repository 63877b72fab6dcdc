"""SCIM 2.0 over okrsync's HTTP client: auth, discovery, typed errors, users.

Errors a SCIM service sends (RFC 7644 §3.12) look like
``{"schemas": [...Error], "scimType": "uniqueness", "detail": "...", "status": "409"}``
(``status`` is a string). They become the classes below, grouped by what the caller does::

    ApiError
    └── ScimError                 any SCIM error; ``scim_type`` is the RFC's keyword
        ├── ScimConflict          409 (uniqueness, or a bulkId that was never created)
        ├── ScimPreconditionFailed 412 (If-Match lost a race: re-read and retry once)
        ├── ScimPayloadTooLarge   413 (a bulk request too big: split it)
        ├── ScimInvalidValue      400 (invalidValue, invalidSyntax, invalidPath, noTarget, ...)
        └── ScimNotFound          404

Discovery reads ``/ServiceProviderConfig``, ``/ResourceTypes`` and ``/Schemas`` once,
lazily (a run with nothing to write makes no request), and falls back to conservative
defaults for services that do not serve them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from okrsync.connectors.scim.config import ScimConfig
from okrsync.errors import ApiError
from okrsync.http import HttpClient, RateLimiter, start_index_pages

SCIM_JSON = "application/scim+json"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


class ScimError(ApiError):
    """A SCIM error response; ``scim_type`` is the RFC 7644 keyword when the service sent one."""

    @property
    def scim_type(self) -> str | None:
        return self.code


class ScimConflict(ScimError):
    """409: a uniqueness violation, or a bulk reference to a resource that was not created."""


class ScimPreconditionFailed(ScimError):
    """412: the resource changed since its ETag was read."""


class ScimPayloadTooLarge(ScimError):
    """413: the request (usually a bulk) exceeds the service's limits."""


class ScimInvalidValue(ScimError):
    """400: the service refused a value, a path or the syntax."""


class ScimNotFound(ScimError):
    """404: no such resource."""


_BY_STATUS: dict[int, type[ScimError]] = {
    409: ScimConflict,
    412: ScimPreconditionFailed,
    413: ScimPayloadTooLarge,
    400: ScimInvalidValue,
    404: ScimNotFound,
}


def scim_error_parser(response: requests.Response) -> tuple[str | None, str | None]:
    """``(scimType, detail)`` from a SCIM error body (or whatever the service sent)."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    return body.get("scimType"), body.get("detail") or body.get("message")


def typed(exc: ApiError) -> ApiError:
    """The SCIM class for an ApiError from the HTTP client (other errors pass through)."""
    cls = _BY_STATUS.get(exc.status or 0, ScimError if exc.status else None)
    if cls is None or isinstance(exc, ScimError):
        return exc
    return cls(
        exc.message,
        connector=exc.connector,
        operation=exc.operation,
        url=exc.url,
        status=exc.status,
        request_id=exc.request_id,
        code=exc.code,
        body=exc.body_excerpt,
    )


def error_from_body(status: int, body: Any, *, connector: str, operation: str) -> ScimError:
    """A bulk operation's failure (``{"status": "409", "response": {...}}``) as a typed error."""
    detail = scim_type = None
    if isinstance(body, Mapping):
        detail, scim_type = body.get("detail"), body.get("scimType")
    cls = _BY_STATUS.get(status, ScimError)
    return cls(
        str(detail or f"status {status}"),
        connector=connector,
        operation=operation,
        status=status,
        code=scim_type,
    )


def describe(exc: Exception) -> str:
    """One line for a per-record result: status, scimType and detail."""
    if isinstance(exc, ApiError):
        head = " ".join(str(x) for x in (exc.status, exc.code) if x)
        return f"{head}: {exc.message}" if head else exc.message
    return f"{type(exc).__name__}: {exc}"


class StaticAuth:
    """A fixed Authorization header (bearer token or basic credentials); nothing to refresh."""

    def __init__(self, header: str) -> None:
        self._header = header

    def header(self) -> str:
        return self._header

    def invalidate(self) -> None:
        """A static credential cannot be refreshed; the client's one retry then reports the 401."""


def auth_for(config: ScimConfig) -> StaticAuth | None:
    if config.token is not None:
        return StaticAuth(f"Bearer {config.token.get_secret_value()}")
    if config.username is not None and config.password is not None:
        raw = f"{config.username}:{config.password.get_secret_value()}".encode()
        return StaticAuth("Basic " + base64.b64encode(raw).decode("ascii"))
    return None


@dataclass(frozen=True)
class Capabilities:
    """What the service announced (RFC 7643 §5), with defaults for what it did not."""

    patch: bool = True
    bulk: bool = False
    bulk_max_operations: int = 0
    bulk_max_payload: int = 0
    filter: bool = True
    filter_max_results: int | None = None
    etag: bool = False
    users_endpoint: str = "/Users"
    groups_endpoint: str | None = "/Groups"  # None: the service lists resource types, Group is not one
    enterprise: bool = True
    schemas: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_documents(
        cls, spc: Mapping[str, Any] | None, resource_types: list[Any], schemas: list[Any]
    ) -> Capabilities:
        spc = spc or {}

        def section(name: str) -> Mapping[str, Any]:
            value = spc.get(name)
            return value if isinstance(value, Mapping) else {}

        def flag(value: Any, default: bool) -> bool:
            if isinstance(value, str):
                return value.strip().lower() == "true"
            return default if value is None else bool(value)

        bulk = section("bulk")
        filt = section("filter")
        endpoint, enterprise = "/Users", True
        groups: str | None = None if resource_types else "/Groups"
        for rt in resource_types:
            if isinstance(rt, Mapping) and (rt.get("name") == "User" or rt.get("id") == "User"):
                endpoint = str(rt.get("endpoint") or endpoint)
                exts = {e.get("schema") for e in rt.get("schemaExtensions") or [] if isinstance(e, Mapping)}
                enterprise = ENTERPRISE in exts
            if isinstance(rt, Mapping) and (rt.get("name") == "Group" or rt.get("id") == "Group"):
                groups = "/" + str(rt.get("endpoint") or "/Groups").strip("/")
        ids = frozenset(str(s.get("id")) for s in schemas if isinstance(s, Mapping) and s.get("id"))
        if ids and ENTERPRISE not in ids:
            enterprise = False
        max_results = filt.get("maxResults")
        return cls(
            patch=flag(section("patch").get("supported"), True),
            bulk=flag(bulk.get("supported"), False),
            bulk_max_operations=int(bulk.get("maxOperations") or 0),
            bulk_max_payload=int(bulk.get("maxPayloadSize") or 0),
            filter=flag(filt.get("supported"), True),
            filter_max_results=int(max_results) if max_results else None,
            etag=flag(section("etag").get("supported"), False),
            users_endpoint="/" + endpoint.strip("/"),
            groups_endpoint=groups,
            enterprise=enterprise,
            schemas=ids,
        )


def _resources(doc: Any) -> list[Any]:
    """``/Schemas`` and ``/ResourceTypes`` answer a ListResponse or (older services) a bare list."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, Mapping):
        return list(doc.get("Resources") or [])
    return []


class ScimClient:
    """Users and bulk requests against one SCIM service; every request goes through ``HttpClient``."""

    def __init__(self, config: ScimConfig, *, rate_limiter: RateLimiter | None = None) -> None:
        self.config = config
        self.base = config.base_url.rstrip("/")
        self.http = HttpClient(
            "scim",
            config.http_settings(),
            auth=auth_for(config),
            error_parser=scim_error_parser,
            rate_limiter=rate_limiter,
        )
        self._caps: Capabilities | None = None
        self.discovery_requests = 0

    @property
    def stats(self) -> Any:
        return self.http.stats

    def close(self) -> None:
        self.http.close()

    # ---- discovery ----
    def capabilities(self) -> Capabilities:
        if self._caps is None:
            before = self.http.stats.requests
            spc = self._optional("/ServiceProviderConfig")
            types = _resources(self._optional("/ResourceTypes"))
            schemas = _resources(self._optional("/Schemas"))
            self._caps = Capabilities.from_documents(
                spc if isinstance(spc, Mapping) else None, types, schemas
            )
            self.discovery_requests = self.http.stats.requests - before
        return self._caps

    def _optional(self, path: str) -> Any:
        try:
            return self.http.json(
                "GET", self.base + path, operation=f"discover {path}", headers=self._accept()
            )
        except ApiError as exc:
            if exc.status in (404, 405, 501):
                return None
            raise typed(exc) from None

    # ---- plumbing ----
    @staticmethod
    def _accept() -> dict[str, str]:
        return {"Accept": f"{SCIM_JSON}, application/json"}

    def _headers(self, version: str | None = None) -> dict[str, str]:
        headers = {**self._accept(), "Content-Type": SCIM_JSON}
        if version and self.config.use_etags and self.capabilities().etag:
            headers["If-Match"] = version
        return headers

    def call(self, method: str, path: str, *, operation: str, body: Any = None, **kwargs: Any) -> Any:
        """One request; SCIM errors come back as the typed classes above."""
        headers = kwargs.pop("headers", None) or self._headers()
        data = None if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        try:
            response = self.http.request(
                method,
                self.base + path,
                operation=operation,
                headers=headers,
                data=data.encode("utf-8") if data is not None else None,
                **kwargs,
            )
        except ApiError as exc:
            raise typed(exc) from None
        if response.status_code == 204 or not response.content:
            return {"__etag__": response.headers.get("ETag")}
        try:
            doc = response.json()
        except ValueError:
            raise ScimError(
                "response is not JSON", connector="scim", operation=operation, status=response.status_code
            ) from None
        if isinstance(doc, dict) and response.headers.get("ETag"):
            doc.setdefault("__etag__", response.headers["ETag"])
        return doc

    # ---- users ----
    @property
    def users(self) -> str:
        return self.capabilities().users_endpoint

    def page_size(self) -> int:
        cap = self.capabilities().filter_max_results
        return min(self.config.page_size, cap) if cap else self.config.page_size

    def iter_users(self, filter_: str | None = None, *, count: int | None = None) -> Iterator[dict[str, Any]]:
        """Every user (or every match of ``filter_``), ListResponse page by page (1-based startIndex)."""
        return self._iter(self.users, filter_, count or self.page_size(), "list users")

    def _iter(
        self, endpoint: str, filter_: str | None, count: int, operation: str
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"filter": filter_} if filter_ else {}

        def fetch(url: str, p: dict[str, Any] | None) -> Any:
            return self.call("GET", url, operation=operation, params=p, headers=self._accept())

        for page in start_index_pages(fetch, endpoint, params, count=count, connector="scim"):
            for resource in page:
                if isinstance(resource, dict):
                    yield resource

    def get_user(self, scim_id: str) -> dict[str, Any] | None:
        try:
            doc = self.call("GET", f"{self.users}/{scim_id}", operation="get user", headers=self._accept())
        except ScimNotFound:
            return None
        return doc if isinstance(doc, dict) else None

    def create_user(self, body: Mapping[str, Any]) -> dict[str, Any]:
        doc = self.call("POST", self.users, operation="create user", body=body)
        return doc if isinstance(doc, dict) else {}

    def patch_user(self, scim_id: str, operations: list[dict[str, Any]], version: str | None) -> str | None:
        """PATCH with If-Match when a version is known; returns the new version (ETag) if announced."""
        doc = self.call(
            "PATCH",
            f"{self.users}/{scim_id}",
            operation="patch user",
            body={"schemas": [PATCH_OP], "Operations": operations},
            headers=self._headers(version),
        )
        return _version(doc)

    def put_user(self, scim_id: str, body: Mapping[str, Any], version: str | None) -> str | None:
        """PUT the whole user (the service has no PATCH), with If-Match; returns the new version."""
        return _version(self._put(f"{self.users}/{scim_id}", body, version, "replace user"))

    def _put(self, path: str, body: Mapping[str, Any], version: str | None, operation: str) -> Any:
        """A PUT replaces the whole resource, so it carries If-Match (when the service versions
        resources): a lost race is a 412, not a silent clobber of the other writer's change."""
        return self.call("PUT", path, operation=operation, body=body, headers=self._headers(version))

    def delete_user(self, scim_id: str, version: str | None) -> None:
        try:
            self.call(
                "DELETE", f"{self.users}/{scim_id}", operation="delete user", headers=self._headers(version)
            )
        except ScimNotFound:
            return

    # ---- groups (okrsync's own: see groups.py) ----
    def groups_endpoint(self) -> str:
        """``/Groups`` (or what /ResourceTypes names); a ScimError when the service has no Groups."""
        endpoint = self.capabilities().groups_endpoint
        if endpoint is None:
            raise ScimError(
                "the service does not announce a Group resource type (/ResourceTypes)",
                connector="scim",
                operation="groups",
            )
        return endpoint

    def iter_groups(self, filter_: str | None = None) -> Iterator[dict[str, Any]]:
        """Every group (or every match of ``filter_``), paged like users, members included."""
        return self._iter(self.groups_endpoint(), filter_, self.page_size(), "list groups")

    def create_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        doc = self.call("POST", self.groups_endpoint(), operation="create group", body=body)
        return doc if isinstance(doc, dict) else {}

    def patch_group(self, scim_id: str, operations: list[dict[str, Any]]) -> None:
        """PATCH without If-Match: member add/remove by value commutes with other writers' changes."""
        self.call(
            "PATCH",
            f"{self.groups_endpoint()}/{scim_id}",
            operation="patch group",
            body={"schemas": [PATCH_OP], "Operations": operations},
        )

    def put_group(self, scim_id: str, body: Mapping[str, Any], version: str | None) -> None:
        """PUT replaces the whole member list, so it carries If-Match: a lost race is a 412, not a clobber."""
        self._put(f"{self.groups_endpoint()}/{scim_id}", body, version, "replace group")

    def bulk(self, operations: list[dict[str, Any]], payload: bytes | None = None) -> list[dict[str, Any]]:
        """POST /Bulk; returns the per-operation outcomes (a 413 raises ScimPayloadTooLarge)."""
        body = payload or json.dumps(
            {"schemas": [BULK_REQUEST], "Operations": operations}, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        try:
            response = self.http.request(
                "POST", self.base + "/Bulk", operation="bulk", headers=self._headers(), data=body
            )
        except ApiError as exc:
            raise typed(exc) from None
        doc = response.json()
        return [o for o in (doc.get("Operations") or []) if isinstance(o, dict)]


def _version(doc: Any) -> str | None:
    """The version a write answered with: ``meta.version``, else the ETag header."""
    if not isinstance(doc, dict):
        return None
    meta = doc.get("meta")
    return (meta.get("version") if isinstance(meta, dict) else None) or doc.get("__etag__")


def filter_in(attribute: str, values: list[str]) -> str:
    """``attr eq "a" or attr eq "b"``; values are quoted as JSON strings (RFC 7644 §3.4.2.2)."""
    return " or ".join(f"{attribute} eq {json.dumps(v)}" for v in values)
