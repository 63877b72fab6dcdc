"""Per-vendor-host request rate limits shared by every worker of a fleet.

500 tenants on one Workday data centre must not trip its throttling because each worker only
counts its own requests. The count lives in Redis, kept by the ``limits`` library's
moving-window strategy (an atomic Lua script per hit): at most N requests to a host in any
window of the configured length, across all processes that share the Redis.

How it reaches the wire: :class:`okrsync.http.HttpClient` (the connectors' HTTP layer) calls
``rate_limiter.acquire(host)`` before every request, and the engine hands each connector a
:class:`~okrsync.connectors.base.ConnectorContext` whose ``rate_limiter`` is ours (see
:func:`okrsync.distributed.runner.connector_factory`). Anything speaking ``requests``
directly can mount :class:`RateLimitedAdapter` instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

__all__ = [
    "NoRateLimit",
    "RateLimitedAdapter",
    "RateLimiter",
    "RedisRateLimiter",
    "parse_limits",
]


@runtime_checkable
class RateLimiter(Protocol):
    """Blocks until one more request to ``host`` (``netloc``: host[:port]) is allowed.

    The same shape as :class:`okrsync.http.RateLimiter`, so either side can be passed to the other.
    """

    def acquire(self, host: str) -> None: ...


class NoRateLimit:
    """The limiter of a fleet with no limits configured."""

    def acquire(self, host: str) -> None:
        return None


def parse_limits(text: str | None) -> dict[str, str]:
    """``"wd2.workday.com=10/second, graph.microsoft.com=600/minute, *=50/second"`` → mapping.

    Values use the ``limits`` notation (``10/second``, ``100 per minute``); ``*`` applies to any
    host without its own entry.
    """
    out: dict[str, str] = {}
    for part in (text or "").replace(";", ",").split(","):
        if not part.strip():
            continue
        host, sep, rate = part.partition("=")
        if not sep or not host.strip() or not rate.strip():
            raise ValueError(f"rate limit {part.strip()!r} must look like host=10/second")
        out[host.strip().lower()] = rate.strip()
    return out


class RedisRateLimiter:
    """Moving-window limits per host in Redis (``limits`` library), blocking until a slot is free.

    ``limits``: host → rate (see :func:`parse_limits`); hosts without an entry (and no ``*``)
    are not limited. ``namespace`` separates fleets sharing one Redis. ``max_wait`` bounds one
    acquire; past it :class:`TimeoutError` (a transient error: the task is retried later).
    """

    def __init__(
        self,
        redis_url: str,
        limits: Mapping[str, str],
        *,
        namespace: str = "okrsync",
        max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from limits import parse
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        self._items = {host.lower(): parse(rate) for host, rate in limits.items()}
        self._storage = RedisStorage(redis_url, key_prefix=f"{namespace}:ratelimit")
        self._limiter = MovingWindowRateLimiter(self._storage)
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self.waited = 0.0  # seconds this process spent waiting, for reports
        self._lock = threading.Lock()

    def limit_for(self, host: str) -> Any:
        host = host.lower()
        return self._items.get(host) or self._items.get(host.partition(":")[0]) or self._items.get("*")

    def acquire(self, host: str) -> None:
        item = self.limit_for(host)
        if item is None:
            return
        deadline = self._clock() + self.max_wait
        key = host.lower()
        while not self._limiter.hit(item, key):
            reset_at = self._limiter.get_window_stats(item, key).reset_time
            now = self._clock()
            if now >= deadline:
                raise TimeoutError(f"rate limit for {host} ({item}) still exhausted after {self.max_wait:g}s")
            # wake when the oldest hit leaves the window; a little jitter-free floor avoids a hot loop
            pause = min(max(reset_at - now, 0.005), deadline - now)
            with self._lock:
                self.waited += pause
            self._sleep(pause)

    def clear(self, host: str) -> None:
        """Forget the window of ``host`` (tests, or after changing a limit)."""
        item = self.limit_for(host)
        if item is not None:
            self._limiter.clear(item, host.lower())


class RateLimitedAdapter(HTTPAdapter):
    """A ``requests`` adapter that asks the limiter before each request it sends.

    ``session.mount("https://", RateLimitedAdapter(limiter))`` limits a plain session the same way.
    """

    def __init__(self, limiter: RateLimiter, **kwargs: Any) -> None:
        self.limiter = limiter
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.limiter.acquire(urlsplit(request.url or "").netloc)
        return super().send(request, *args, **kwargs)
