"""``okrsync fleet status``: each tenant's last run per job, read from the tenants' state stores."""

from __future__ import annotations

import dataclasses
from typing import Any

from okrsync.errors import OkrSyncError
from okrsync.state import open_state
from okrsync.tenants import TenantRegistry, state_location

__all__ = ["TenantStatus", "fleet_status"]


@dataclasses.dataclass(frozen=True)
class TenantStatus:
    tenant: str
    job: str
    run_id: int | None = None
    status: str | None = None  # None: never ran
    started_at: str | None = None
    finished_at: str | None = None
    duration: float | None = None
    writes: int | None = None
    error: str | None = None  # the tenant's config or state could not be read

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def fleet_status(registry: TenantRegistry, tenants: list[str] | None = None) -> list[TenantStatus]:
    out: list[TenantStatus] = []
    for name in tenants or registry.names():
        try:
            config = registry.load(name)
            state = open_state(state_location(name, config, registry.state_template))
        except OkrSyncError as exc:
            out.append(TenantStatus(name, "*", error=str(exc).splitlines()[0]))
            continue
        try:
            for job in sorted(config.jobs):
                runs = state.runs(job, limit=1)
                if not runs:
                    out.append(TenantStatus(name, job))
                    continue
                run = runs[0]
                duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
                targets = run.summary.get("targets") or {}
                writes = sum(int(t.get("written", 0)) for t in targets.values() if isinstance(t, dict))
                out.append(
                    TenantStatus(
                        name,
                        job,
                        run.id,
                        run.summary.get("status") or run.status
                        if run.status != "interrupted"
                        else run.status,
                        run.started_at.isoformat(),
                        run.finished_at.isoformat() if run.finished_at else None,
                        round(duration, 3) if duration is not None else None,
                        writes,
                    )
                )
        except OkrSyncError as exc:
            out.append(TenantStatus(name, "*", error=str(exc).splitlines()[0]))
        finally:
            state.close()
    return out
