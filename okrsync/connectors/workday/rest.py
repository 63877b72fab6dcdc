"""Workday REST: OAuth refresh-token grant, ``/workers`` paging, managers via supervisory orgs.

The worker summary has no Worker_ID, no status and no manager. So each pull:

1. lists ``/workers`` (``limit`` ≤ 100, ``offset``; stops on a short page, never trusting
   ``total``), with terminated workers when ``include_terminated``;
2. reads ``/workers/{id}`` for the Worker_ID (``workerId``), worker type and ``active`` flag —
   concurrently, up to ``concurrency`` requests in flight;
3. resolves managers through ``primarySupervisoryOrganization`` → ``/supervisoryOrganizations/{id}``
   → ``manager``, **once per organization** (cached for the pull); a worker who manages their
   own primary organization reports to the manager of its ``superiorOrganization``.

REST has no change feed, so every pull is full and the engine diffs it against the last
snapshot. Pre-hires are not listed by ``/workers`` (use SOAP to see them).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from okrsync.connectors.base import Pull, PullMode, PullRequest, RawRecord
from okrsync.connectors.workday.config import WorkdayConfig
from okrsync.errors import ApiError, AuthenticationError, ConfigError
from okrsync.http import HttpClient, TokenAuth, offset_limit_pages


class RefreshTokenAuth:
    """OAuth refresh-token grant → bearer token; refetched when it expires or is rejected."""

    def __init__(self, cfg: WorkdayConfig, http: HttpClient) -> None:
        self.cfg = cfg
        self.http = http
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        secret = cfg.refresh_token.get_secret_value() if cfg.refresh_token else ""
        self._refresh = secret

    def header(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._fetch()
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh,
            "client_id": self.cfg.client_id or "",
            "client_secret": self.cfg.client_secret.get_secret_value() if self.cfg.client_secret else "",
        }
        try:
            body = self.http.json(
                "POST",
                self.cfg.oauth_url,
                operation="OAuth token (refresh_token)",
                data=form,
                authenticate=False,
            )
        except ApiError as exc:
            raise AuthenticationError(
                f"Workday refused the OAuth refresh token: {exc.message}",
                connector=exc.connector,
                operation=exc.operation,
                url=exc.url,
                status=exc.status,
                code=exc.code,
            ) from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthenticationError("the OAuth token response has no access_token", connector="workday")
        self._token = str(token)
        ttl = float(body.get("expires_in") or 3600)
        self._expires = time.monotonic() + max(1.0, ttl - 30.0)
        if body.get("refresh_token"):
            self._refresh = str(body["refresh_token"])  # rotated refresh tokens are kept in memory


class BasicAuth:
    """ISU Basic credentials (RaaS)."""

    def __init__(self, username: str, password: str) -> None:
        self._value = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def header(self) -> str:
        return self._value

    def invalidate(self) -> None:
        """Nothing to refresh."""


def api_auth(cfg: WorkdayConfig, http: HttpClient) -> TokenAuth:
    if cfg.api == "raas" and cfg.raas_auth == "basic":
        if not cfg.username or cfg.password is None:
            raise ConfigError("RaaS Basic auth needs username and password")
        return BasicAuth(cfg.username, cfg.password.get_secret_value())
    return RefreshTokenAuth(cfg, http)


@dataclass
class RestStats:
    pages: int = 0
    details: int = 0
    organizations: int = 0
    org_ids: set[str] = field(default_factory=set)


class RestPuller:
    def __init__(self, cfg: WorkdayConfig, http: HttpClient, name: str = "workday") -> None:
        self.cfg = cfg
        self.http = http
        self.name = name
        self.stats = RestStats()
        self._details: dict[str, dict[str, Any] | None] = {}
        self._orgs: dict[str, dict[str, Any] | None] = {}
        self._lock = threading.Lock()

    def pull(self, request: PullRequest) -> Pull:
        pull = Pull(
            records=iter(()),
            mode=PullMode.FULL,
            notices=["Workday REST has no change feed: a full pull (the engine diffs it)"],
        )
        before = self.http.stats.requests

        def run() -> Iterator[RawRecord]:
            yield from self._records()
            pull.requests = self.http.stats.requests - before

        pull.records = run()
        return pull

    def _get(self, url: str, params: dict[str, Any] | None, operation: str) -> Any:
        return self.http.json("GET", url, operation=operation, params=params)

    def _detail(self, wid: str) -> dict[str, Any] | None:
        with self._lock:
            if wid in self._details:
                return self._details[wid]
        try:
            detail: dict[str, Any] | None = self._get(
                f"{self.cfg.rest_url}/workers/{wid}", None, "GET worker"
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            detail = None
        with self._lock:
            self.stats.details += 1
            self._details[wid] = detail
        return detail

    def _org(self, org_id: str) -> dict[str, Any] | None:
        with self._lock:
            if org_id in self._orgs:
                return self._orgs[org_id]
        try:
            url = f"{self.cfg.rest_url}/supervisoryOrganizations/{org_id}"
            org: dict[str, Any] | None = self._get(url, None, "GET organization")
        except ApiError as exc:
            if exc.status != 404:
                raise
            org = None
        with self._lock:
            self.stats.organizations += 1
            self.stats.org_ids.add(org_id)
            self._orgs[org_id] = org
        return org

    def _manager_wid(self, worker_wid: str, org_id: str | None) -> str | None:
        seen: set[str] = set()
        while org_id and org_id not in seen:
            seen.add(org_id)
            org = self._org(org_id)
            if not org:
                return None
            manager = (org.get("manager") or next(iter(org.get("managers") or []), None)) or {}
            wid = manager.get("id")
            if wid and wid != worker_wid:
                return str(wid)
            superior = org.get("superiorOrganization") or {}
            org_id = superior.get("id")  # the worker heads this org: their manager heads the superior one
        return None

    def _records(self) -> Iterator[RawRecord]:
        params = {"includeTerminatedWorkers": "true"} if self.cfg.include_terminated else {}
        pages = offset_limit_pages(
            lambda u, p: self._get(u, p, "GET workers"),
            f"{self.cfg.rest_url}/workers",
            params,
            limit=self.cfg.rest_page_size,
            connector=self.name,
        )
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            for page in pages:
                self.stats.pages += 1
                workers = [w for w in page if isinstance(w, dict) and w.get("id")]
                orgs = {
                    str((w.get("primarySupervisoryOrganization") or {}).get("id"))
                    for w in workers
                    if (w.get("primarySupervisoryOrganization") or {}).get("id")
                }
                list(pool.map(self._org, sorted(orgs)))
                list(pool.map(self._detail, [str(w["id"]) for w in workers]))
                managers = {
                    str(w["id"]): self._manager_wid(
                        str(w["id"]), (w.get("primarySupervisoryOrganization") or {}).get("id")
                    )
                    for w in workers
                }
                list(pool.map(self._detail, sorted({m for m in managers.values() if m})))
                for w in workers:
                    yield self._record(w, managers[str(w["id"])])

    def _record(self, summary: dict[str, Any], manager_wid: str | None) -> RawRecord:
        wid = str(summary["id"])
        detail = self._details.get(wid) or {}
        data = {**summary, **detail}
        number = str(detail.get("workerId") or "") or None
        if manager_wid:
            manager = self._details.get(manager_wid) or {}
            # an unknown manager stays visible as its WID, so the hierarchy check reports it
            data["manager"] = {"id": manager_wid, "workerId": manager.get("workerId") or manager_wid}
        external = {"workday_wid": wid}
        if number:
            external["employee_id"] = number
        data["externalIds"] = external
        return RawRecord(key=number or f"WID {wid}", data=data, ref=f"WID {wid}")
