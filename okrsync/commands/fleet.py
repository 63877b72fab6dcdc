"""``okrsync tenants list|check`` and ``okrsync fleet enqueue|status``: thin click wrappers.

The logic lives in :mod:`okrsync.tenants` and :mod:`okrsync.distributed`. Exit codes follow
:mod:`okrsync.errors`: 0 fine, 2 configuration problems (``tenants check`` found a bad tenant).
"""

from __future__ import annotations

import json
from typing import Any

import click

from okrsync.errors import ConfigError
from okrsync.tenants import TenantRegistry, check_tenants, open_registry

__all__ = ["fleet", "tenants"]

_registry_option = click.option(
    "--registry",
    envvar="OKRSYNC_TENANTS",
    default="tenants",
    show_default=True,
    help="Tenant folder (one TENANT.toml each) or postgresql://… registry; $OKRSYNC_TENANTS.",
)
_state_option = click.option(
    "--state-template",
    envvar="OKRSYNC_TENANT_STATE",
    help="State of tenants without [state]: e.g. postgresql://db/okrsync?schema=t_{tenant_id} "
    "or /var/lib/okrsync/{tenant}.db; $OKRSYNC_TENANT_STATE.",
)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def _registry(ctx: click.Context) -> TenantRegistry:
    """Opened on first use, so ``--help`` of a subcommand works without a registry."""
    if "tenant_registry" not in ctx.obj:
        opened = open_registry(ctx.obj["registry"], state_template=ctx.obj["state_template"])
        ctx.obj["tenant_registry"] = opened
    registry: TenantRegistry = ctx.obj["tenant_registry"]
    return registry


@click.group("tenants")
@_registry_option
@_state_option
@click.pass_context
def tenants(ctx: click.Context, registry: str, state_template: str | None) -> None:
    """The tenant registry: each tenant is a normal okrsync config (secrets by reference only)."""
    ctx.obj = {"registry": registry, "state_template": state_template}


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tenants_list(ctx: click.Context, as_json: bool) -> None:
    """Tenant names, one a line."""
    names = _registry(ctx).names()
    if as_json:
        _emit({"registry": _registry(ctx).describe(), "tenants": names})
        return
    for name in names:
        click.echo(name)


@tenants.command("check")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tenants_check(ctx: click.Context, as_json: bool) -> None:
    """Validate every tenant's config (no network calls); exit 2 if any tenant has problems."""
    results = check_tenants(_registry(ctx))
    bad = [r for r in results if not r.ok]
    if as_json:
        _emit({"tenants": [r.to_dict() for r in results], "ok": len(results) - len(bad), "failed": len(bad)})
    else:
        for r in results:
            mark = "ok " if r.ok else "BAD"
            click.echo(f"{mark} {r.tenant}: jobs {', '.join(r.jobs) or '-'}; state {r.state or '-'}")
            for p in r.problems:
                click.echo(f"      problem: {p}")
            for w in r.warnings:
                click.echo(f"      warning: {w}")
        click.echo(f"{len(results)} tenant(s), {len(bad)} with problems")
    if bad:
        raise click.exceptions.Exit(ConfigError.exit_code)


@click.group("fleet")
@_registry_option
@_state_option
@click.option("--broker", envvar="OKRSYNC_BROKER_URL", help="Celery broker (redis://… or amqp://…).")
@click.option("--queue", envvar="OKRSYNC_QUEUE", help="Queue the workers consume (default okrsync).")
@click.pass_context
def fleet(
    ctx: click.Context, registry: str, state_template: str | None, broker: str | None, queue: str | None
) -> None:
    """Run tenants' syncs on Celery workers (okrsync.distributed) and see how they went."""
    from okrsync.distributed.settings import FleetSettings

    settings = FleetSettings.from_env(
        registry=registry, state_template=state_template, broker_url=broker, queue=queue
    )
    ctx.obj = {
        "settings": settings,
        "registry": registry,
        "state_template": state_template,
    }


@fleet.command("enqueue")
@click.option("--tenants", "only", help="Comma-separated tenant names (default: all).")
@click.option("--job", "jobs", multiple=True, help="Only these jobs (default: every job of each tenant).")
@click.option("--full", is_flag=True, help="Full pull and comparison.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def fleet_enqueue(
    ctx: click.Context, only: str | None, jobs: tuple[str, ...], full: bool, as_json: bool
) -> None:
    """Queue one sync task per tenant and job."""
    from okrsync.distributed.app import SYNC_TASK, create_app

    settings = ctx.obj["settings"]
    registry = _registry(ctx)
    names = [n.strip() for n in only.split(",") if n.strip()] if only else registry.names()
    unknown = sorted(set(names) - set(registry.names()))
    if unknown:
        raise ConfigError(f"unknown tenant(s): {', '.join(unknown)}")
    app = create_app(settings)
    queued = []
    try:
        for name in names:
            config = registry.load(name)
            for job in jobs or tuple(sorted(config.jobs)):
                config.job(job)
                result = app.send_task(
                    SYNC_TASK, args=(name, job), kwargs={"full": full}, queue=settings.queue
                )
                queued.append({"tenant": name, "job": job, "task_id": result.id})
    finally:
        app.close()
    if as_json:
        _emit({"queue": settings.queue, "queued": queued})
    else:
        for q in queued:
            click.echo(f"queued {q['tenant']}/{q['job']} as {q['task_id']}")
        click.echo(f"{len(queued)} task(s) on queue {settings.queue}")


@fleet.command("status")
@click.option("--tenants", "only", help="Comma-separated tenant names (default: all).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def fleet_status_cmd(ctx: click.Context, only: str | None, as_json: bool) -> None:
    """Last run per tenant and job: outcome, duration, writes (from each tenant's state store)."""
    from okrsync.distributed.status import fleet_status

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    rows = fleet_status(_registry(ctx), names)
    if as_json:
        _emit({"tenants": [r.to_dict() for r in rows]})
        return
    for r in rows:
        if r.error:
            click.echo(f"{r.tenant:<24} {r.job:<12} unreadable: {r.error}")
        elif r.status is None:
            click.echo(f"{r.tenant:<24} {r.job:<12} never ran")
        else:
            took = f"{r.duration:.1f}s" if r.duration is not None else "running"
            click.echo(
                f"{r.tenant:<24} {r.job:<12} {r.status:<14} {took:>8}  writes {r.writes}  at {r.started_at}"
            )
