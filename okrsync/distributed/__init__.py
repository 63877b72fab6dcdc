"""Scale-out: many tenants' syncs on Celery workers, with per-tenant locks and shared rate limits.

Install with ``pip install 'okrsync[fleet]'``. See ``docs/scale-out.md``.

- :func:`create_app` / :class:`FleetSettings`: the Celery app factory and its configuration;
- :func:`run_tenant_job`: one tenant's job without Celery (Airflow, scripts);
- :mod:`~okrsync.distributed.ratelimit`: per-vendor-host limits shared through Redis;
- :mod:`~okrsync.distributed.locks`: the per-tenant PostgreSQL advisory lock;
- :func:`fleet_status`: last run per tenant and job, from the tenants' state stores.
"""

from __future__ import annotations

from okrsync.distributed.app import SYNC_TASK, Fleet, TenantSyncFailed, create_app
from okrsync.distributed.locks import NoTenantLock, PgAdvisoryTenantLock, TenantLock
from okrsync.distributed.ratelimit import NoRateLimit, RateLimitedAdapter, RateLimiter, RedisRateLimiter
from okrsync.distributed.runner import TenantBusy, TenantRunResult, is_transient, run_tenant_job
from okrsync.distributed.settings import FleetSettings
from okrsync.distributed.status import TenantStatus, fleet_status

__all__ = [
    "SYNC_TASK",
    "Fleet",
    "FleetSettings",
    "NoRateLimit",
    "NoTenantLock",
    "PgAdvisoryTenantLock",
    "RateLimitedAdapter",
    "RateLimiter",
    "RedisRateLimiter",
    "TenantBusy",
    "TenantLock",
    "TenantRunResult",
    "TenantStatus",
    "TenantSyncFailed",
    "create_app",
    "fleet_status",
    "is_transient",
    "run_tenant_job",
]
