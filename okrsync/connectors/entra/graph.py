"""The connection's Graph client: HttpClient + msal auth, paging, and ``$batch`` with per-item retries.

Every request goes through :class:`~okrsync.http.HttpClient` (Retry-After, bounded budget,
401 → new token once, concurrency cap, the configured CA). ``$batch`` adds one thing the
client cannot see: items inside a 200 response fail on their own (429 with *their*
Retry-After, 5xx). :meth:`Graph.batch` re-submits only those items, waiting for the longest
Retry-After among them, under the same budget as a single request (``max_attempts`` rounds,
``max_retry_seconds``, ``max_retry_after``); what is still failing then is reported per item.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from okrsync.connectors.base import ConnectorContext
from okrsync.connectors.entra.auth import EntraAuth
from okrsync.connectors.entra.config import EntraConfig
from okrsync.errors import ApiError
from okrsync.http import HttpClient, next_link_pages, parse_retry_after
from okrsync.http.client import RETRIABLE_STATUSES

log = logging.getLogger("okrsync.http")  # retries log where HttpClient's do
_SAFE = "$,()='/:@"
MAX_BATCH = 20  # Graph's limit of requests per $batch call


@dataclass
class BatchItem:
    """One request inside ``$batch``; ``url`` is relative to the version root (``/users/{id}``)."""

    method: str
    url: str
    body: dict[str, Any] | None = None
    key: Any = None  # the caller's tag (an operation index), returned with the result


@dataclass
class ItemResult:
    item: BatchItem
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retries: int = 0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> str:
        """``code: message`` from a Graph error body, for per-record results."""
        err = self.body.get("error") if isinstance(self.body, dict) else None
        if isinstance(err, dict):
            return f"{self.status} {err.get('code') or 'error'}: {err.get('message') or ''}".strip()
        return f"{self.status} {self.body!r:.200}" if self.body else f"HTTP {self.status}"


class _ItemsRetry(Exception):
    def __init__(self, wait: float | None, count: int) -> None:
        super().__init__(f"{count} $batch item(s) throttled or failed transiently")
        self.wait = wait


class Graph:
    """Graph v1.0 for one connection: token auth, JSON GETs, nextLink paging and ``$batch``."""

    def __init__(self, config: EntraConfig, context: ConnectorContext) -> None:
        self.config = config
        settings = config.http_settings()
        self.login_http = HttpClient("entra", settings, rate_limiter=context.rate_limiter)
        self.auth = EntraAuth(config, self.login_http, context.base_dir)
        self.http = HttpClient("entra", settings, auth=self.auth, rate_limiter=context.rate_limiter)
        self.base = config.graph_base
        self.batch_calls = 0
        self.batch_items = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()
        self.login_http.close()

    @property
    def requests(self) -> int:
        return self.http.stats.requests

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else f"{self.base}{path}"

    def get(self, path: str, params: dict[str, Any] | None = None, *, operation: str) -> dict[str, Any]:
        body = self.http.json("GET", self.url(path), params=params, operation=operation)
        if not isinstance(body, dict):
            raise ApiError(
                "expected a JSON object", connector="entra", operation=operation, url=self.url(path)
            )
        return body

    def pages(
        self,
        path: str,
        params: dict[str, Any] | None,
        *,
        operation: str,
        headers: dict[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Follow ``@odata.nextLink`` (loop-guarded); one page in memory at a time."""

        def fetch(url: str, p: dict[str, Any] | None) -> Any:
            return self.http.json("GET", url, params=p, operation=operation, headers=headers)

        return next_link_pages(fetch, self.url(path), params, connector="entra")

    # ---- $batch ----
    def batch(self, items: Sequence[BatchItem], *, operation: str = "$batch") -> list[ItemResult]:
        """Run ``items`` in ``$batch`` calls of ≤ 20 (concurrently, within the connection's cap).

        Results come back in the order of ``items``. Items answered 429/5xx are re-submitted
        (alone, re-packed) after their Retry-After; the retry count lands in each result.
        """
        results: dict[int, ItemResult] = {}
        retries = [0] * len(items)
        pending = list(range(len(items)))
        settings = self.http.settings
        retrying = Retrying(
            retry=retry_if_exception_type(_ItemsRetry),
            stop=stop_after_attempt(settings.max_attempts) | stop_after_delay(settings.max_retry_seconds),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    round_results = self._round([items[i] for i in pending])
                    again: list[int] = []
                    waits: list[float] = []
                    for i, res in zip(pending, round_results, strict=True):
                        res.retries = retries[i]
                        results[i] = res
                        if res.status in RETRIABLE_STATUSES:
                            after = parse_retry_after(_header(res.headers, "Retry-After"))
                            if after is not None and after > settings.max_retry_after:
                                continue  # longer than allowed: report it, do not nap
                            again.append(i)
                            retries[i] += 1
                            if after is not None:
                                waits.append(after)
                    pending = again
                    if pending:
                        raise _ItemsRetry(max(waits) if waits else None, len(pending))
        except _ItemsRetry:
            for i in pending:
                res = results[i]
                res.retries = retries[i] - 1
                res.body = {
                    "error": {
                        "code": "retryBudgetExhausted",
                        "message": f"{res.error}; retry budget exhausted "
                        f"after {settings.max_attempts} attempts",
                    }
                }
        return [results[i] for i in range(len(items))]

    def _round(self, items: list[BatchItem]) -> list[ItemResult]:
        chunks = [items[k : k + MAX_BATCH] for k in range(0, len(items), MAX_BATCH)]
        workers = min(len(chunks), self.http.settings.concurrency)
        if workers <= 1:
            return [r for chunk in chunks for r in self._call(chunk)]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="entra-batch") as pool:
            return [r for part in pool.map(self._call, chunks) for r in part]

    def _call(self, chunk: list[BatchItem]) -> list[ItemResult]:
        requests = []
        for n, item in enumerate(chunk):
            req: dict[str, Any] = {"id": str(n + 1), "method": item.method, "url": item.url}
            if item.body is not None:
                req["body"] = item.body
                req["headers"] = {"Content-Type": "application/json"}
            requests.append(req)
        body = self.http.json(
            "POST", f"{self.base}/$batch", json={"requests": requests}, operation="$batch", ok=(200,)
        )
        with self._lock:
            self.batch_calls += 1
            self.batch_items += len(chunk)
        by_id = {str(r.get("id")): r for r in (body or {}).get("responses") or ()}
        out = []
        for n, item in enumerate(chunk):
            r = by_id.get(str(n + 1))
            if r is None:  # a response missing from the envelope: treat as transient
                out.append(
                    ItemResult(item, 503, {"error": {"code": "missingResponse", "message": "no answer"}})
                )
                continue
            out.append(
                ItemResult(item, int(r.get("status", 500)), r.get("body"), dict(r.get("headers") or {}))
            )
        return out

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _ItemsRetry) and exc.wait is not None:
            return exc.wait
        s = self.http.settings
        return float(min(s.backoff_max, s.backoff_base * (2.0 ** (state.attempt_number - 1))))

    def _sleep(self, seconds: float) -> None:
        self.http.stats.waited += seconds
        self.http.sleep(seconds)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        line = f"entra $batch: round {state.attempt_number}: {exc}; re-submitting them in {wait:.1f}s"
        self.http.stats.retries += 1
        self.http.stats.retry_log.append(line)
        log.warning(line)  # every retry is logged, like HttpClient's (reliability suite)


def relative_url(path: str, params: dict[str, Any]) -> str:
    """``path?$a=…&$b=…`` with spaces as %20 (never '+'), OData punctuation left readable."""
    query = "&".join(f"{k}={quote(str(v), safe=_SAFE)}" for k, v in params.items())
    return f"{path}?{query}" if query else path


def _header(headers: dict[str, str], name: str) -> str | None:
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return str(v)
    return None
