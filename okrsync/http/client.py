"""One HTTP client for every connector: timeouts, TLS trust, retries, error mapping.

Vendors fail in the same few ways (429 with Retry-After, 5xx, resets, truncated bodies,
tokens expiring mid-run), and a connector that handles them on its own gets one of them
wrong. This client does it once:

* a pooled ``requests.Session`` with ``trust_env`` off, so the connection's CA bundle is
  really used (``REQUESTS_CA_BUNDLE`` would otherwise silently win, api-notes §7) and
  proxies are explicit;
* every request has a timeout and goes through one tenacity policy that honours
  ``Retry-After``, backs off exponentially otherwise, logs every retry and gives up after a
  bounded number of attempts and seconds with a clear error;
* a 401 with token auth invalidates the token and retries once (tokens expire mid-run);
* a concurrency cap per connection and an optional shared rate limiter (scale-out);
* responses become typed errors carrying connector, operation, redacted URL, status,
  vendor code and request id.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from okrsync import __version__
from okrsync.errors import (
    AmbiguousWriteError,
    ApiError,
    AuthenticationError,
    ConnectorError,
    RetriableApiError,
    excerpt,
)

log = logging.getLogger("okrsync.http")

REQUEST_ID_HEADERS = (
    "request-id",
    "x-ms-request-id",
    "client-request-id",
    "x-request-id",
    "x-correlation-id",
    "sforce-request-id",
    "x-sfdc-request-id",
)
RETRIABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

ErrorParser = Callable[[requests.Response], tuple[str | None, str | None]]
"""``(vendor code, message)`` from an error response; connectors plug in their vendor's shape."""
Classifier = Callable[[requests.Response], ConnectorError | None]
"""A final (not retriable) error for a response outside ``ok``, or None for the default handling."""


class TokenAuth(Protocol):
    """Supplies an Authorization header and forgets the token when the vendor says it expired."""

    def header(self) -> str: ...

    def invalidate(self) -> None: ...


class RateLimiter(Protocol):
    """Blocks until one more request to ``host`` is allowed (shared across workers in a fleet)."""

    def acquire(self, host: str) -> None: ...


@dataclass(frozen=True)
class HttpSettings:
    timeout: float = 60.0
    connect_timeout: float = 10.0
    ca_bundle: str | None = None
    verify: bool = True
    max_attempts: int = 6
    max_retry_seconds: float = 300.0  # total time a request may spend waiting to retry
    max_retry_after: float = 600.0  # a longer Retry-After is an error, not a nap
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    concurrency: int = 4
    proxies: dict[str, str] | None = None
    user_agent: str = f"okrsync/{__version__}"


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    waited: float = 0.0
    by_status: dict[int, int] = field(default_factory=dict)
    retry_log: list[str] = field(default_factory=list)


class _Retry(Exception):
    """Internal: a failure worth another attempt; carries the typed error to raise if we stop."""

    def __init__(self, error: ConnectorError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _never_sent(exc: Exception) -> bool:
    """True when the request cannot have reached the server (refused, connect timeout)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


def request_id_of(response: requests.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value
    return None


def default_error_parser(response: requests.Response) -> tuple[str | None, str | None]:
    """Understands the common JSON error shapes (Graph/OData, OAuth, SCIM, Salesforce arrays)."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("errorCode"), body[0].get("message")
    if not isinstance(body, dict):
        return None, None
    err = body.get("error")
    if isinstance(err, dict):
        msg = err.get("message")
        if isinstance(msg, dict):
            msg = msg.get("value")
        return err.get("code"), msg
    if isinstance(err, str):
        return err, body.get("error_description")
    if "detail" in body:
        return body.get("scimType"), body.get("detail")
    return None, None


class HttpClient:
    """A connection's HTTP client; one per connector instance, closed with it."""

    def __init__(
        self,
        connector: str,
        settings: HttpSettings | None = None,
        *,
        auth: TokenAuth | None = None,
        error_parser: ErrorParser = default_error_parser,
        session: requests.Session | None = None,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry_on: Callable[[requests.Response], bool] | None = None,
    ) -> None:
        self.connector = connector
        # extra vendor-specific transient answers (Salesforce throttles with 403 REQUEST_LIMIT_EXCEEDED)
        self.retry_on = retry_on
        self.settings = settings or HttpSettings()
        self.auth = auth
        self.error_parser = error_parser
        self.rate_limiter = rate_limiter
        self.sleep = sleep
        self.stats = HttpStats()
        self._gate = threading.BoundedSemaphore(max(1, self.settings.concurrency))
        self._lock = threading.Lock()
        self.session = session or self._new_session()

    def _new_session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # the configured CA bundle and proxies, not the environment's
        s.verify = self.settings.ca_bundle or self.settings.verify
        if self.settings.proxies:
            s.proxies.update(self.settings.proxies)
        s.headers["User-Agent"] = self.settings.user_agent
        adapter = HTTPAdapter(
            pool_connections=4, pool_maxsize=max(4, self.settings.concurrency), max_retries=0
        )
        s.mount("https://", adapter)
        s.mount("http://", adapter)
        return s

    @property
    def verify(self) -> str | bool:
        return self.settings.ca_bundle or self.settings.verify

    def close(self) -> None:
        self.session.close()

    # ---- the one entry point ----
    def request(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        ok: Iterable[int] = (200, 201, 202, 204),
        authenticate: bool = True,
        classify: Classifier | None = None,
        idempotent: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        """Send with retries; return the response for an ``ok`` status, else raise a typed error.

        ``idempotent=False`` marks a create: if its answer is lost after it may have reached the
        server (reset, truncated body, read timeout), :class:`AmbiguousWriteError` is raised
        instead of a blind retry that could duplicate the record; the caller looks, then writes.

        ``classify`` sees every response outside ``ok`` first: an error it returns is raised at
        once, never retried (a SOAP validation fault arrives as HTTP 500, which would otherwise
        be retried); ``None`` keeps the default handling.
        """
        ok_statuses = frozenset(ok)
        started = time.monotonic()
        refreshed = False
        retrying = Retrying(
            retry=retry_if_exception_type(_Retry),
            stop=stop_after_attempt(self.settings.max_attempts)
            | stop_after_delay(self.settings.max_retry_seconds),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=lambda rs: self._log_retry(rs, method, url, operation),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        return self._once(
                            method, url, operation, ok_statuses, authenticate, classify, idempotent, **kwargs
                        )
                    except AuthenticationError:
                        if self.auth is None or refreshed or not authenticate:
                            raise
                        refreshed = True  # an expired token: fetch a new one, once
                        self.auth.invalidate()
                        raise _Retry(
                            AuthenticationError(
                                "token rejected; refreshing", connector=self.connector, operation=operation
                            ),
                            0.0,
                        ) from None
        except _Retry as exc:
            err = exc.error
            attempts = self.settings.max_attempts
            raise type(err)(
                f"{err.message}; retry budget exhausted after {attempts} attempts / "
                f"{time.monotonic() - started:.0f}s",
                connector=err.connector,
                operation=err.operation,
                url=err.url,
                status=err.status,
                request_id=err.request_id,
                code=err.code,
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def json(self, method: str, url: str, *, operation: str, **kwargs: Any) -> Any:
        """``request`` + JSON decoding; a body that does not decode (truncated) is retried."""
        for _ in range(self.settings.max_attempts):
            response = self.request(method, url, operation=operation, **kwargs)
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                self.stats.retries += 1
                self.stats.retry_log.append(f"{operation}: body did not decode as JSON; retrying")
                log.warning(
                    "%s %s: response body is not valid JSON (truncated?); retrying", self.connector, operation
                )
        raise ApiError(
            "response body was not valid JSON after retries",
            connector=self.connector,
            operation=operation,
            url=url,
        )

    # ---- internals ----
    def _once(
        self,
        method: str,
        url: str,
        operation: str,
        ok: frozenset[int],
        authenticate: bool,
        classify: Classifier | None = None,
        idempotent: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if authenticate and self.auth is not None:
            headers["Authorization"] = self.auth.header()
        kwargs.setdefault("timeout", (self.settings.connect_timeout, self.settings.timeout))
        kwargs.setdefault("verify", self.verify)  # per request: the env can never override it
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(urlsplit(url).netloc)
        with self._gate:
            try:
                response = self.session.request(method, url, headers=headers, **kwargs)
                if not kwargs.get("stream"):
                    _ = response.content  # read now, so a truncated body fails here and is retried
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                with self._lock:
                    self.stats.requests += 1
                if not idempotent and not _never_sent(exc):
                    line = (
                        f"{self.connector} {operation}: {type(exc).__name__} after sending; "
                        "looking before retrying"
                    )
                    with self._lock:
                        self.stats.retries += 1
                        self.stats.retry_log.append(line)
                    log.warning(line)
                    raise AmbiguousWriteError(
                        f"{type(exc).__name__} after sending; the write may have been applied",
                        connector=self.connector,
                        operation=operation,
                        url=url,
                    ) from None
                raise _Retry(
                    RetriableApiError(
                        f"{type(exc).__name__}: {exc}", connector=self.connector, operation=operation, url=url
                    ),
                    None,
                ) from None
        with self._lock:
            self.stats.requests += 1
            self.stats.by_status[response.status_code] = self.stats.by_status.get(response.status_code, 0) + 1
        if response.status_code in ok:
            return response
        if classify is not None:
            final = classify(response)
            if final is not None:
                raise final
        raise self._error(response, operation)

    def _error(self, response: requests.Response, operation: str) -> Exception:
        code, message = self.error_parser(response)
        status = response.status_code
        text = message or response.reason or "error"
        common: dict[str, Any] = dict(
            connector=self.connector,
            operation=operation,
            url=response.url,
            status=status,
            request_id=request_id_of(response),
            code=code,
            body=response.content[:2000],
        )
        if status in RETRIABLE_STATUSES or (self.retry_on is not None and self.retry_on(response)):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.settings.max_retry_after:
                return RetriableApiError(
                    f"{text} (Retry-After {retry_after:.0f}s exceeds the "
                    f"{self.settings.max_retry_after:.0f}s allowed)",
                    retry_after=retry_after,
                    **common,
                )
            return _Retry(RetriableApiError(text, retry_after=retry_after, **common), retry_after)
        if status == 401:
            return AuthenticationError(text, **common)
        return ApiError(text, **common)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff: float = min(
            self.settings.backoff_max, self.settings.backoff_base * (2.0 ** (state.attempt_number - 1))
        )
        if isinstance(exc, _Retry) and exc.retry_after is not None:
            return float(exc.retry_after)
        return backoff

    def _sleep(self, seconds: float) -> None:
        with self._lock:
            self.stats.waited += seconds
        self.sleep(seconds)

    def _log_retry(self, state: RetryCallState, method: str, url: str, operation: str) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        reason = exc.error.message if isinstance(exc, _Retry) else str(exc)
        status = exc.error.status if isinstance(exc, _Retry) else None
        line = (
            f"{self.connector} {operation}: attempt {state.attempt_number} failed "
            f"({status or 'no response'}: {excerpt(reason, 200)}); retrying in {wait:.1f}s"
        )
        with self._lock:
            self.stats.retries += 1
            self.stats.retry_log.append(line)
        log.warning(line)


def utc_now() -> datetime:
    return datetime.now(UTC)


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
