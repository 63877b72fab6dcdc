"""simple-salesforce, unpatched, on okrsync's transport: one retry policy, typed errors, API budget.

simple-salesforce does its own HTTP through the ``requests.Session`` it is given, so that is
where okrsync plugs in. :class:`SalesforceSession` sends every request through an
:class:`~okrsync.http.HttpClient` (``trust_env`` off and the connection's CA bundle on every
request, api-notes §7; timeouts; the shared tenacity policy). What the transport adds:

* Salesforce has no 429: concurrency throttling is ``403 REQUEST_LIMIT_EXCEEDED``
  "ConcurrentPerOrgLongTxn", retried with backoff like a 429 (``HttpClient(retry_on=...)``),
  also in the middle of a ``query_all_iter`` paging loop;
* a ``401 INVALID_SESSION_ID`` logs in again once and repeats the request (the token comes from
  :class:`~okrsync.connectors.salesforce.auth.SalesforceAuth`, so it is fresh even for requests
  simple-salesforce had already built with the old one);
* ``Sforce-Limit-Info`` of every answer is recorded (:class:`ApiUsage`) and the next request is
  refused with a clear message once fewer than ``api_reserve`` daily requests remain; the
  daily limit itself (``TotalRequests``) stops the run with the same kind of message.

Any other 403 (``INSUFFICIENT_ACCESS`` …) is raised by the transport as an ``ApiError`` with the
vendor's code. Every other answer goes back to simple-salesforce, which raises its own
exceptions; :meth:`SalesforceClient.call` turns those into okrsync's typed errors.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from okrsync.connectors.salesforce.config import SalesforceConfig
from okrsync.errors import ApiError, AuthenticationError, ConnectorError
from okrsync.http import HttpClient
from okrsync.http.client import RETRIABLE_STATUSES, HttpSettings, RateLimiter, TokenAuth

log = logging.getLogger("okrsync.connector.salesforce")


class TokenAuthWithInstance(TokenAuth, Protocol):
    """``TokenAuth`` that also logs in on demand and knows the instance its token belongs to."""

    @property
    def instance_url(self) -> str: ...

    def token(self) -> str: ...


T = TypeVar("T")
NAME = "salesforce"

_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
_LOGIN_PATH = re.compile(r"/services/(?:Soap/u/[\d.]+|oauth2/token)/?$")
# what the transport hands back to simple-salesforce (not retries, expired sessions or 403s)
_PASS = frozenset(range(100, 600)) - RETRIABLE_STATUSES - {401, 403}
_PASS_LOGIN = frozenset(range(100, 500)) - {403, 429}
_SOAP_FAULT = re.compile(rb"<(?:\w+:)?(exceptionCode|faultcode|exceptionMessage|faultstring)>([^<]*)<")


def is_concurrency_limit(response: requests.Response) -> bool:
    """403 REQUEST_LIMIT_EXCEEDED "ConcurrentPerOrgLongTxn": transient, unlike the daily TotalRequests."""
    return response.status_code == 403 and b"ConcurrentPerOrg" in response.content[:2000]


def login_fault(response: requests.Response) -> AuthenticationError | None:
    """A SOAP login fault (``INVALID_LOGIN`` …) arrives as HTTP 500: final, never retried."""
    found: dict[bytes, bytes] = {
        m.group(1): m.group(2) for m in _SOAP_FAULT.finditer(response.content[:20_000])
    }
    if not found:
        return None
    code = (found.get(b"exceptionCode") or found.get(b"faultcode") or b"").decode(errors="replace")
    message = (found.get(b"exceptionMessage") or found.get(b"faultstring") or b"").decode(errors="replace")
    return AuthenticationError(
        f"Salesforce login failed: {code.split(':')[-1]}: {message}",
        connector=NAME,
        operation="SOAP login",
        url=response.url,
        status=response.status_code,
        code=code.split(":")[-1] or None,
    )


class ApiUsage:
    """The org's daily API budget as the last ``Sforce-Limit-Info`` told it; guards the reserve."""

    def __init__(self, reserve_for: Callable[[int], int], reserve_label: str) -> None:
        self.used: int | None = None
        self.limit: int | None = None
        self.peak_share = 0.0
        self._reserve_for = reserve_for
        self._label = reserve_label
        self._warned = False
        self._lock = threading.Lock()

    def observe(self, header: str | None) -> None:
        m = _LIMIT_INFO.search(header or "")
        if not m:
            return
        with self._lock:
            self.used, self.limit = int(m.group(1)), int(m.group(2))
            share = self.used / self.limit if self.limit else 1.0
            self.peak_share = max(self.peak_share, share)
        if share >= 0.8 and not self._warned:
            self._warned = True
            log.warning("Salesforce daily API usage is at %s", self.describe())

    @property
    def remaining(self) -> int | None:
        return None if self.used is None or self.limit is None else self.limit - self.used

    def describe(self) -> str:
        if self.used is None or self.limit is None:
            return "unknown (no Sforce-Limit-Info seen yet)"
        share = self.used / self.limit if self.limit else 1.0
        return f"{self.used:,}/{self.limit:,} requests used today ({share:.1%})"

    def check(self) -> None:
        """Refuse the next request when it would eat into the reserve."""
        remaining = self.remaining
        if remaining is None or self.limit is None:
            return
        reserve = self._reserve_for(self.limit)
        if remaining <= reserve:
            raise ApiError(
                f"stopping before Salesforce's daily API limit: {self.describe()}, {remaining:,} left "
                f"and api_reserve = {self._label} keeps {reserve:,} for other integrations; "
                "rerun after the rolling 24-hour window frees requests, or lower api_reserve",
                connector=NAME,
                operation="api budget",
                code="API_RESERVE_REACHED",
            )


class SalesforceSession(requests.Session):
    """The ``requests.Session`` simple-salesforce is given; every request goes through ``HttpClient``."""

    def __init__(self, http: HttpClient, usage: ApiUsage) -> None:
        super().__init__()
        self.trust_env = False  # never REQUESTS_CA_BUNDLE / env proxies instead of the configuration
        self.http = http
        self.usage = usage

    def request(  # type: ignore[override]  # simple-salesforce passes everything by keyword
        self, method: str | bytes, url: str | bytes, **kwargs: Any
    ) -> requests.Response:
        method, url = _text(method), _text(url)
        path = urlsplit(url).path
        login = bool(_LOGIN_PATH.search(path))
        if not login:
            self.usage.check()
        operation = f"{method} {_operation_name(path)}"
        try:
            response = self.http.request(
                method,
                url,
                operation=operation,
                ok=_PASS_LOGIN if login else _PASS,
                authenticate=not login,
                classify=login_fault if login else None,
                **kwargs,
            )
        except ApiError as exc:
            if exc.code == "REQUEST_LIMIT_EXCEEDED" and "TotalRequests" in exc.message:
                raise ApiError(
                    f"Salesforce's daily API request limit is exhausted ({self.usage.describe()} before "
                    "this request); nothing more can be read or written until the rolling 24-hour "
                    "window frees requests. Lower api usage or raise the org's limit",
                    connector=NAME,
                    operation=operation,
                    status=exc.status,
                    code="REQUEST_LIMIT_EXCEEDED",
                    request_id=exc.request_id,
                ) from None
            raise
        self.usage.observe(response.headers.get("Sforce-Limit-Info"))
        return response


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _operation_name(path: str) -> str:
    """``/services/data/v59.0/query/01g…-2000`` → ``query``; ``composite/sobjects`` stays whole."""
    tail = re.sub(r"^.*?/services/(?:data/v[\d.]+/)?", "", path).strip("/")
    parts = tail.split("/")
    if parts and parts[0] in ("query", "queryAll"):
        return parts[0] if len(parts) == 1 else f"{parts[0]} (next page)"
    return "/".join(parts[:2]) or "/"


class SalesforceClient:
    """One logged-in simple-salesforce ``Salesforce`` per connector, with typed errors."""

    def __init__(
        self,
        config: SalesforceConfig,
        auth_factory: Callable[[SalesforceSession], TokenAuthWithInstance],
        *,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config
        settings: HttpSettings = config.http_settings()
        self.usage = ApiUsage(config.reserve_for, config.api_reserve)
        # the fleet's per-host limiter: Salesforce's org-wide API limits are shared by every worker
        self.http = HttpClient(NAME, settings, retry_on=is_concurrency_limit, rate_limiter=rate_limiter)
        self.session = SalesforceSession(self.http, self.usage)
        self.auth = auth_factory(self.session)
        self.http.auth = self.auth
        self._sf: Salesforce | None = None

    @property
    def sf(self) -> Salesforce:
        """The simple-salesforce client, logged in on first use."""
        if self._sf is None:
            token = self.call("login", self.auth.token)
            instance = self.config.instance_url or self.auth.instance_url
            self._sf = Salesforce(
                instance_url=instance,
                session_id=token,
                session=self.session,
                version=self.config.api_version,
            )
        return self._sf

    @property
    def requests(self) -> int:
        return self.http.stats.requests

    def close(self) -> None:
        self.http.close()
        self.session.close()

    # ---- calls ----
    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run one simple-salesforce call; its exceptions become okrsync's typed errors."""
        try:
            return fn()
        except SalesforceExpiredSession:
            # the transport already logged in again once; a second refusal is a real auth problem
            raise AuthenticationError(
                "Salesforce refused the session after a fresh login (INVALID_SESSION_ID); check the "
                "integration user's profile, IP restrictions and session settings",
                connector=NAME,
                operation=operation,
                status=401,
                code="INVALID_SESSION_ID",
            ) from None
        except SalesforceAuthenticationFailed as exc:
            raise AuthenticationError(
                f"Salesforce login failed: {exc.code}: {exc.message}",
                connector=NAME,
                operation=operation,
                code=str(exc.code),
            ) from None
        except SalesforceError as exc:
            raise _typed(exc, operation) from None

    def query(self, soql: str, operation: str = "query") -> dict[str, Any]:
        result = self.call(operation, lambda: self.sf.query(soql))
        assert isinstance(result, dict)
        return result

    def query_iter(self, soql: str, operation: str = "query") -> Iterator[dict[str, Any]]:
        """``query_all_iter`` with typed errors; pages are retried by the transport."""
        headers = {"Sforce-Query-Options": f"batchSize={self.config.page_size}"}
        records = self.call(operation, lambda: self.sf.query_all_iter(soql, headers=headers))
        while True:
            try:
                record = self.call(operation, lambda: next(records))
            except StopIteration:
                return
            yield record

    def restful(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        return self.call(f"{method} {path}", lambda: self.sf.restful(path, method=method, **kwargs))


def _typed(exc: SalesforceError, operation: str) -> ConnectorError:
    code, message = _first_error(exc.content)
    status = getattr(exc, "status", None)
    common: dict[str, Any] = dict(connector=NAME, operation=operation, url=exc.url, status=status, code=code)
    if isinstance(exc, SalesforceMalformedRequest):
        return ApiError(f"Salesforce refused the request: {message}", **common)
    if isinstance(exc, SalesforceRefusedRequest):
        return ApiError(f"Salesforce refused access: {message}", **common)
    return ApiError(f"Salesforce error: {message}", **common)


def _first_error(content: Any) -> tuple[str | None, str]:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return first.get("errorCode"), str(first.get("message", ""))
    return None, str(content)[:500]
