"""Run one tenant's job exactly as ``okrsync sync`` does, under the fleet's lock and rate limits.

No Celery here: the Celery task (:mod:`okrsync.distributed.app`), an Airflow task or a plain
script all call :func:`run_tenant_job`. It loads the tenant's config from the registry, opens
that tenant's state store, takes the per-tenant lock, and runs the ordinary
:class:`~okrsync.engine.SyncEngine`; the engine's idempotence (upserts by id, commit after
apply) is what makes a redelivered run converge.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from okrsync.connectors.base import Connector, ConnectorConfig, ConnectorContext
from okrsync.distributed.locks import NoTenantLock, TenantLock
from okrsync.distributed.ratelimit import RateLimiter
from okrsync.engine import ConnectorFactory, SyncEngine
from okrsync.errors import ConnectorError, LockError, OkrSyncError, RetriableApiError
from okrsync.state import open_state
from okrsync.tenants import TenantRegistry, state_location

__all__ = ["TenantBusy", "TenantRunResult", "connector_factory", "is_transient", "run_tenant_job"]


class TenantBusy(Exception):
    """The tenant's job is running elsewhere; try again later (never run concurrently)."""


@dataclasses.dataclass(frozen=True)
class TenantRunResult:
    tenant: str
    job: str
    status: str
    run_id: int | None
    writes: int
    duration: float
    exit_code: int
    notices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying later: throttling, 5xx, timeouts, dropped connections. Policy stops are not."""
    if isinstance(exc, RetriableApiError):
        return True
    if isinstance(exc, ConnectorError):
        return exc.status is not None and exc.status >= 500
    if isinstance(exc, OkrSyncError):
        return False  # ConfigError, PolicyViolation, HierarchyError, StateError: a person must act
    return isinstance(exc, (TimeoutError, ConnectionError))


def retry_after_of(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) and value > 0 else None


def connector_factory(rate_limiter: RateLimiter | None) -> ConnectorFactory | None:
    """The engine's default factory, with the fleet's limiter in every connector's context."""
    if rate_limiter is None:
        return None
    from okrsync import connectors

    def build(config: ConnectorConfig, context: ConnectorContext) -> Connector:
        return connectors.load(config.type)(config, dataclasses.replace(context, rate_limiter=rate_limiter))

    return build


def run_tenant_job(
    tenant: str,
    job: str,
    *,
    registry: TenantRegistry,
    lock: TenantLock | None = None,
    rate_limiter: RateLimiter | None = None,
    full: bool = False,
    dry_run: bool = False,
    allow_deletes: bool = False,
) -> TenantRunResult:
    """One sync of ``tenant``'s ``job``. Raises :class:`TenantBusy` if it runs elsewhere.

    Other errors propagate as the engine raised them (after the run was recorded in the
    tenant's state store); :func:`is_transient` says which are worth a retry.
    """
    config = registry.load(tenant)
    config.job(job)  # an unknown job is a config error before any lock or run
    lock = lock or NoTenantLock()
    if not lock.acquire(tenant, job):
        raise TenantBusy(f"tenant {tenant} job {job} is running on another worker")
    t0 = time.perf_counter()
    try:
        state = open_state(state_location(tenant, config, registry.state_template))
        engine = SyncEngine(config, state, connector_factory=connector_factory(rate_limiter))
        try:
            report = engine.sync(job, dry_run=dry_run, full=full, allow_deletes=allow_deletes)
        except LockError as exc:  # the state store's own job lock: a run elsewhere holds it
            raise TenantBusy(f"tenant {tenant}: {exc}") from exc
        finally:
            engine.close()
            state.close()
    finally:
        lock.release(tenant, job)
    return TenantRunResult(
        tenant=tenant,
        job=job,
        status=report.status,
        run_id=report.run_id,
        writes=report.writes,
        duration=round(time.perf_counter() - t0, 3),
        exit_code=report.exit_code,
        notices=tuple(report.notices),
    )
