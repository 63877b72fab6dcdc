"""What an integrator configures for a fleet: broker, registry, state, locks, rate limits, retries.

Workers started with ``celery -A okrsync.distributed.worker worker`` read it from ``OKRSYNC_*``
environment variables (:meth:`FleetSettings.from_env`); code that builds its own Celery app
passes a :class:`FleetSettings` to :func:`okrsync.distributed.create_app`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from okrsync.distributed.ratelimit import parse_limits

#: environment variable → FleetSettings field
ENV = {
    "OKRSYNC_BROKER_URL": "broker_url",
    "OKRSYNC_RESULT_BACKEND": "result_backend",
    "OKRSYNC_TENANTS": "registry",
    "OKRSYNC_TENANT_STATE": "state_template",
    "OKRSYNC_LOCK_URL": "lock_url",
    "OKRSYNC_RATELIMIT_URL": "ratelimit_url",
    "OKRSYNC_RATE_LIMITS": "rate_limits",
    "OKRSYNC_FLEET_NAMESPACE": "namespace",
    "OKRSYNC_QUEUE": "queue",
    "OKRSYNC_MAX_RETRIES": "max_retries",
    "OKRSYNC_RETRY_BACKOFF": "retry_backoff",
    "OKRSYNC_RETRY_BACKOFF_MAX": "retry_backoff_max",
    "OKRSYNC_BUSY_RETRY_AFTER": "busy_retry_after",
    "OKRSYNC_VISIBILITY_TIMEOUT": "visibility_timeout",
}


@dataclasses.dataclass(frozen=True)
class FleetSettings:
    """Everything a fleet's workers and its ``okrsync fleet`` commands share.

    - ``broker_url``: ``redis://…`` or ``amqp://…`` (RabbitMQ); ``result_backend`` optional.
    - ``registry``: tenant folder or ``postgresql://…`` registry (:mod:`okrsync.tenants`);
      ``state_template`` for tenants without their own ``[state]`` (``{tenant}``/``{tenant_id}``).
    - ``lock_url``: PostgreSQL for the per-tenant advisory lock; ``None`` relies on the state
      store's job lock only (enough for SQLite files on one machine).
    - ``ratelimit_url`` (Redis) + ``rate_limits`` (host → ``"10/second"``): shared per-host limits.
    - retries: transient vendor errors retry up to ``max_retries`` times with exponential
      backoff from ``retry_backoff`` seconds capped at ``retry_backoff_max`` (or the vendor's
      Retry-After); a busy tenant is retried after ``busy_retry_after`` seconds, without limit.
    - ``visibility_timeout``: Redis broker only; how long an unacknowledged task waits before
      Redis redelivers it. Keep it above the longest sync (the locks make an early
      redelivery harmless, but it wastes a slot).
    """

    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str | None = None
    registry: str = "tenants"
    state_template: str | None = None
    lock_url: str | None = None
    ratelimit_url: str | None = None
    rate_limits: Mapping[str, str] = dataclasses.field(default_factory=dict)
    namespace: str = "okrsync"
    queue: str = "okrsync"
    max_retries: int = 8
    retry_backoff: float = 2.0
    retry_backoff_max: float = 600.0
    busy_retry_after: float = 5.0
    visibility_timeout: int = 3600

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> FleetSettings:
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for var, name in ENV.items():
            raw = source.get(var)
            if raw is None or raw == "":
                continue
            if name == "rate_limits":
                values[name] = parse_limits(raw)
            elif fields[name].type in ("int",):
                values[name] = int(raw)
            elif fields[name].type in ("float",):
                values[name] = float(raw)
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The ``OKRSYNC_*`` variables that reproduce these settings in a worker process."""
        out = {}
        for var, name in ENV.items():
            value = getattr(self, name)
            if value is None:
                continue
            if name == "rate_limits":
                value = ",".join(f"{host}={rate}" for host, rate in value.items())
            out[var] = str(value)
        return out
