"""The Celery app factory and the fleet's tasks.

``create_app(FleetSettings(...))`` returns a configured :class:`celery.Celery` with:

- ``okrsync.sync_tenant(tenant, job)``: one tenant's job, as ``okrsync sync JOB`` would run it
  (:func:`okrsync.distributed.runner.run_tenant_job`), acknowledged late and rejected back to
  the queue when its worker dies, so a SIGKILLed worker's tasks are redelivered; the engine's
  idempotence makes the rerun converge. A tenant running elsewhere → retried later, never run
  concurrently. Transient vendor errors → retried with exponential backoff (or the vendor's
  Retry-After). Policy stops and config errors → failed at once, no retry.
- ``okrsync.http_probe(url, count)``: sends ``count`` GETs through the fleet's rate limiter, to
  check from the workers that a host's limit holds (``okrsync fleet`` operators' smoke test).

Workers are plain Celery workers: ``celery -A okrsync.distributed.worker worker -Q QUEUE``.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from celery import Celery, Task  # type: ignore[import-untyped]

from okrsync.distributed.locks import NoTenantLock, PgAdvisoryTenantLock, TenantLock
from okrsync.distributed.ratelimit import NoRateLimit, RateLimiter, RedisRateLimiter
from okrsync.distributed.runner import TenantBusy, is_transient, retry_after_of, run_tenant_job
from okrsync.distributed.settings import FleetSettings
from okrsync.errors import redact_text
from okrsync.tenants import TenantRegistry, open_registry

__all__ = ["SYNC_TASK", "Fleet", "TenantSyncFailed", "create_app"]

log = logging.getLogger("okrsync.fleet")
SYNC_TASK = "okrsync.sync_tenant"
PROBE_TASK = "okrsync.http_probe"


class TenantSyncFailed(Exception):
    """A tenant's run stopped for a reason a person must fix (policy, config, hierarchy, data).

    Plain message only, so it serialises through any result backend.
    """


class Fleet:
    """The per-process resources of a worker: registry, tenant lock, rate limiter (built lazily)."""

    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        self._registry: TenantRegistry | None = None
        self._lock: TenantLock | None = None
        self._limiter: RateLimiter | None = None

    @property
    def registry(self) -> TenantRegistry:
        if self._registry is None:
            self._registry = open_registry(
                self.settings.registry, state_template=self.settings.state_template
            )
        return self._registry

    @property
    def lock(self) -> TenantLock:
        if self._lock is None:
            url = self.settings.lock_url
            self._lock = PgAdvisoryTenantLock(url) if url else NoTenantLock()
        return self._lock

    @property
    def rate_limiter(self) -> RateLimiter:
        if self._limiter is None:
            s = self.settings
            if s.ratelimit_url and s.rate_limits:
                self._limiter = RedisRateLimiter(s.ratelimit_url, s.rate_limits, namespace=s.namespace)
            else:
                self._limiter = NoRateLimit()
        return self._limiter

    def backoff(self, attempt: int, exc: BaseException) -> float:
        """Seconds before retry ``attempt`` (1-based): the vendor's hint, else capped exponential + jitter."""
        hint = retry_after_of(exc)
        if hint is not None:
            return min(hint, self.settings.retry_backoff_max)
        base = self.settings.retry_backoff * (2 ** (attempt - 1))
        return float(min(self.settings.retry_backoff_max, base) * random.uniform(0.5, 1.0))


def create_app(settings: FleetSettings, *, name: str = "okrsync") -> Celery:
    """A Celery app for ``settings``; works with Redis (``redis://``) and RabbitMQ (``amqp://``)."""
    app = Celery(name, broker=settings.broker_url, backend=settings.result_backend)
    app.conf.update(
        task_default_queue=settings.queue,
        task_acks_late=True,  # acknowledge after the run: a dead worker's task goes back to the queue
        task_reject_on_worker_lost=True,  # ... also when a prefork child is killed mid-task
        worker_prefetch_multiplier=1,  # a busy worker holds no tenant another worker could run
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_track_started=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        result_expires=7 * 24 * 3600,
        worker_hijack_root_logger=False,
    )
    fleet = Fleet(settings)
    app.okrsync_fleet = fleet

    @app.task(  # type: ignore[untyped-decorator]
        bind=True,
        name=SYNC_TASK,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,  # counted per cause below: busy retries are unlimited, transient ones are not
    )
    def sync_tenant(
        self: Task,
        tenant: str,
        job: str,
        full: bool = False,
        transient_retries: int = 0,
    ) -> dict[str, Any]:
        kwargs = {"full": full, "transient_retries": transient_retries}
        try:
            result = run_tenant_job(
                tenant,
                job,
                registry=fleet.registry,
                lock=fleet.lock,
                rate_limiter=fleet.rate_limiter,
                full=full,
            )
        except TenantBusy as exc:
            countdown = settings.busy_retry_after * random.uniform(1.0, 1.5)
            log.info("tenant %s job %s busy; retrying in %.1fs", tenant, job, countdown)
            raise self.retry(
                args=(tenant, job), kwargs=kwargs, countdown=countdown, exc=exc, max_retries=None
            ) from None
        except Exception as exc:
            message = redact_text(f"{type(exc).__name__}: {exc}")
            if is_transient(exc) and transient_retries < settings.max_retries:
                countdown = fleet.backoff(transient_retries + 1, exc)
                log.warning(
                    "tenant %s job %s: %s; retry %d in %.1fs",
                    tenant,
                    job,
                    message,
                    transient_retries + 1,
                    countdown,
                )
                kwargs["transient_retries"] = transient_retries + 1
                raise self.retry(
                    args=(tenant, job),
                    kwargs=kwargs,
                    countdown=countdown,
                    exc=TenantSyncFailed(message),
                    max_retries=None,
                ) from None
            raise TenantSyncFailed(f"tenant {tenant} job {job}: {message}") from None
        return result.to_dict()

    @app.task(name=PROBE_TASK)  # type: ignore[untyped-decorator]
    def http_probe(url: str, count: int = 10) -> dict[str, Any]:
        from okrsync.http import HttpClient

        client = HttpClient("probe", rate_limiter=fleet.rate_limiter)
        started = time.time()
        try:
            for _ in range(count):
                # any answer below 500 proves the host was reached; the limiter is what is checked
                client.request("GET", url, operation="probe", ok=range(200, 500), authenticate=False)
        finally:
            client.close()
        return {"url": url, "count": count, "seconds": round(time.time() - started, 3)}

    return app
