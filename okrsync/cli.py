"""Command-line interface: a thin click layer over the library.

Exit codes (stable; schedulers rely on them):
  0 ok · 1 unexpected error · 2 usage or configuration · 3 policy stop (e.g. deletion
  threshold) · 4 finished with failed records / problems found · 5 connection or auth.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from okrsync import __version__, connectors, logs
from okrsync.config import OkrSyncConfig, load_config
from okrsync.errors import ConfigError, OkrSyncError, redact_text
from okrsync.report import RunReport, write_run_report
from okrsync.state import StateStore, open_state


class Ctx:
    """Per-invocation context: the config is loaded lazily, so commands that need none work anywhere."""

    def __init__(self, config_path: str | None, log_level: str, log_format: str) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.log_format = log_format
        self._config: OkrSyncConfig | None = None

    def config(self) -> OkrSyncConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
            logs.configure(self.log_level, self.log_format, secrets=_secrets_of(self._config))
        return self._config

    def state(self) -> StateStore:
        cfg = self.config()
        location = cfg.state.location
        if "://" not in location and location != ":memory:":
            location = str(cfg.resolve_path(location))
        return open_state(location)


def _secrets_of(config: OkrSyncConfig) -> tuple[str, ...]:
    out = []
    for conn in config.connections.values():
        for name in type(conn).model_fields:
            value = getattr(conn, name)
            if isinstance(value, SecretStr):
                out.append(value.get_secret_value())
    return tuple(out)


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def progress_printer() -> Callable[[str, int, int | None], None]:
    """Progress on stderr when it is a terminal; silent in cron and CI logs."""
    if not sys.stderr.isatty():
        return lambda phase, done, total: None

    def show(phase: str, done: int, total: int | None) -> None:
        tail = f"{done}/{total}" if total else f"{done}"
        end = "\n" if total and done >= total else ""
        click.echo(f"\r  {phase}: {tail}   ", nl=False, err=True)
        if end:
            click.echo("", err=True)

    return show


class OkrSyncGroup(click.Group):
    """Turns library errors into one precise, redacted line on stderr and the class's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OkrSyncError as exc:
            click.echo(f"error: {redact_text(str(exc))}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=OkrSyncGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="okrsync")
@click.option(
    "-c",
    "--config",
    "config_path",
    envvar="OKRSYNC_CONFIG",
    type=click.Path(dir_okay=False),
    help="Configuration file (default ./okrsync.toml, or $OKRSYNC_CONFIG).",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="json emits one JSON object per log line for log shippers.",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None, log_level: str, log_format: str) -> None:
    """okrsync: sync org charts, reporting lines, OKRs and learning links between HR systems."""
    logs.configure(log_level, log_format)
    ctx.obj = Ctx(config_path, log_level, log_format)


# ---------------------------------------------------------------- connectors / config
@main.command("connectors")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def connectors_cmd(as_json: bool) -> None:
    """List installed connectors (built-ins and plug-ins) and what each can do."""
    rows = []
    for name in connectors.available():
        try:
            cls = connectors.load(name)
            rows.append(
                {
                    "name": name,
                    "module": cls.__module__,
                    "capabilities": cls.capabilities(),
                    "description": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
                }
            )
        except ConfigError as exc:
            rows.append({"name": name, "error": exc.message, "capabilities": []})
    if as_json:
        emit(rows)
        return
    for r in rows:
        caps = ", ".join(r["capabilities"]) or r.get("error", "")
        click.echo(f"{r['name']:<16} {caps}")


@main.group("config")
def config_group() -> None:
    """Check configuration files."""


@config_group.command("check")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def config_check(obj: Ctx, as_json: bool) -> None:
    """Validate the configuration; every problem is reported with its TOML path. No network."""
    try:
        cfg = obj.config()
    except ConfigError as exc:
        if as_json:
            emit({"ok": False, "problems": exc.problems or [exc.message]})
            raise SystemExit(exc.exit_code) from None
        raise
    result = {
        "ok": True,
        "connections": {k: v.type for k, v in cfg.connections.items()},
        "jobs": sorted(cfg.jobs),
        "state": cfg.state.location,
        "warnings": list(cfg.warnings),
    }
    if as_json:
        emit(result)
        return
    click.echo(
        f"configuration ok: {len(cfg.connections)} connection(s), {len(cfg.jobs)} job(s), "
        f"state {cfg.state.location}"
    )
    for w in cfg.warnings:
        click.echo(f"warning: {w}", err=True)


# ---------------------------------------------------------------- pull / plan / sync
def _engine(obj: Ctx) -> Any:
    from okrsync.engine import SyncEngine

    return SyncEngine(obj.config(), obj.state(), progress=progress_printer())


@main.command("pull")
@click.argument("source")
@click.option("--full", is_flag=True, help="Ignore the stored cursor (no effect without --job).")
@click.option("--job", help="Use this job's mapping and cursor (read-only: nothing is committed).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the people as .jsonl or .csv.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def pull_cmd(obj: Ctx, source: str, full: bool, job: str | None, out: str | None, as_json: bool) -> None:
    """Pull SOURCE and map it to canonical people, without writing anywhere else."""
    from okrsync.io import write_people

    engine = _engine(obj)
    try:
        job_cfg = obj.config().job(job) if job else None
        result = engine.pull(source, job=job_cfg, job_name=job, full=full)
    finally:
        engine.close()
    if out:
        write_people(out, result.snapshot.people)
    summary = {
        "source": source,
        "mode": result.mode.value,
        "pulled": result.pulled,
        "people": len(result.snapshot.people),
        "requests": result.requests,
        "quarantined": [str(q) for q in result.quarantined],
        "notices": result.notices,
        "out": out,
    }
    if as_json:
        emit(summary)
    else:
        click.echo(
            f"{source}: {summary['people']} people ({result.pulled} records, {result.requests} requests)"
            + (f" → {out}" if out else "")
        )
        for q in result.quarantined:
            click.echo(f"  quarantined {q}", err=True)
    if result.quarantined:
        raise SystemExit(4)


@main.command("plan")
@click.argument("job")
@click.option("--full", is_flag=True, help="Full pull and full comparison.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True, help="Operations listed per target.")
@click.pass_obj
def plan_cmd(obj: Ctx, job: str, full: bool, as_json: bool, limit: int) -> None:
    """Show what `sync JOB` would write, without writing or committing anything."""
    engine = _engine(obj)
    try:
        prepared = engine.prepare(job, full=full)
    finally:
        engine.close()
    data: dict[str, Any] = {
        "job": job,
        "people": len(prepared.desired),
        "quarantined": [str(q) for q in prepared.source.quarantined],
        "problems": [p.to_dict() for p in prepared.hierarchy.problems],
        "targets": {
            t: {
                **plan.summary(),
                "operations": [
                    {
                        "seq": op.seq,
                        "op": op.kind.value,
                        "person_id": op.person_id,
                        "changes": {k: [str(v[0]), str(v[1])] for k, v in op.changes.items()},
                    }
                    for op in plan.ops[:limit]
                ],
            }
            for t, plan in prepared.plans.items()
        },
    }
    if as_json:
        emit(data)
        return
    click.echo(
        f"job {job}: {data['people']} people, {len(data['quarantined'])} quarantined, "
        f"{len(data['problems'])} hierarchy problem(s)"
    )
    for t, info in data["targets"].items():
        counts = ", ".join(f"{k} {v}" for k, v in info["counts"].items()) or "nothing to do"
        click.echo(f"  {t}: {counts}" + (f"  [BLOCKED: {info['blocked']}]" if info["blocked"] else ""))
        for op in info["operations"]:
            fields = ", ".join(f"{k}: {v[0]} → {v[1]}" for k, v in op["changes"].items())
            click.echo(f"    {op['seq']:>5} {op['op']:<8} {op['person_id']}  {fields}")


@main.command("sync")
@click.argument("job")
@click.option("--dry-run", is_flag=True, help="Plan and report; write and commit nothing.")
@click.option("--full", is_flag=True, help="Full pull and full comparison with the targets.")
@click.option("--allow-deletes", is_flag=True, help="Proceed although removals exceed max_deletes.")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--report", "report_path", type=click.Path(dir_okay=False), help="Also write the run report (JSON)."
)
@click.pass_obj
def sync_cmd(
    obj: Ctx, job: str, dry_run: bool, full: bool, allow_deletes: bool, as_json: bool, report_path: str | None
) -> None:
    """Run JOB: pull, check, plan, apply, commit. Exit 3 if a policy stopped it, 4 if records failed."""
    engine = _engine(obj)
    report: RunReport | None = None
    error: OkrSyncError | None = None
    try:
        report = engine.sync(job, dry_run=dry_run, full=full, allow_deletes=allow_deletes)
    except OkrSyncError as exc:
        error = exc
        runs = engine.state.runs(job, limit=1)
        if runs and runs[0].summary:
            report = _report_from_summary(runs[0].summary, job, runs[0].status)
    finally:
        engine.close()
    if report is not None:
        if report_path:
            Path(report_path).write_text(
                json.dumps(report.to_dict(), indent=2, default=str), encoding="utf-8"
            )
        reports_dir = obj.config().reports.dir
        if reports_dir and report.run_id is not None:
            _, html_file = write_run_report(report, obj.config().resolve_path(reports_dir))
            if not as_json:
                click.echo(f"  report: {html_file}")
        if as_json:
            emit(report.to_dict())
        else:
            for line in report.lines():
                click.echo(line)
    if error is not None:
        raise error
    if report is not None and report.exit_code:
        raise SystemExit(report.exit_code)


def _report_from_summary(
    summary: dict[str, Any], job: str = "", status: str | None = None, run_id: int | None = None
) -> RunReport:
    from okrsync.report import Quarantined, TargetReport

    data = {k: v for k, v in summary.items() if k in RunReport.__dataclass_fields__}
    data.setdefault("job", job)
    data.setdefault("run_id", run_id)
    if status and "status" not in data:
        data["status"] = status
    data["quarantined"] = [Quarantined(**q) for q in data.get("quarantined", [])]
    data["targets"] = {k: TargetReport(**v) for k, v in data.get("targets", {}).items()}
    return RunReport(**data)


# ---------------------------------------------------------------- runs / why
@main.group("runs", invoke_without_command=True)
@click.option("--job", help="Only this job's runs.")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs_group(ctx: click.Context, job: str | None, limit: int, as_json: bool) -> None:
    """List recent runs (newest first)."""
    if ctx.invoked_subcommand:
        return
    state = ctx.obj.state()
    rows = state.runs(job, limit=limit)
    if as_json:
        emit(
            [
                {
                    "id": r.id,
                    "job": r.job,
                    "status": r.status,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
                    "dry_run": r.dry_run,
                    "writes": r.summary.get("writes"),
                    "exit_code": r.summary.get("exit_code"),
                }
                for r in rows
            ]
        )
        return
    for r in rows:
        click.echo(
            f"{r.id:>5}  {r.job:<16} {r.status:<15} {r.started_at:%Y-%m-%d %H:%M:%S}  "
            f"writes {r.summary.get('writes', '-')}"
        )


@runs_group.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--events", default=50, show_default=True, help="How many failed events to list.")
@click.pass_obj
def runs_show(obj: Ctx, run_id: int, as_json: bool, events: int) -> None:
    """Explain one run: counts per operation, failures with reasons, policy stops, phase durations."""
    state = obj.state()
    run = state.get_run(run_id)
    if run is None:
        raise ConfigError(f"no run with id {run_id}")
    failures = state.events(run_id, only_failures=True, limit=events)
    if as_json:
        emit(
            {
                "id": run.id,
                "job": run.job,
                "status": run.status,
                "summary": run.summary,
                "failures": [
                    vars(e) if not hasattr(e, "__dataclass_fields__") else e.__dict__ for e in failures
                ],
            }
        )
        return
    if run.summary:
        for line in _report_from_summary(run.summary, run.job, run.status, run.id).lines():
            click.echo(line)
    else:
        click.echo(f"run {run.id} of {run.job}: {run.status}")
    if failures:
        click.echo("  failed records:")
        for e in failures:
            click.echo(
                f"    - {e.person_id} {e.operation}"
                + (f" [{e.target}]" if e.target else "")
                + (f" field {e.field}" if e.field else "")
                + f": {e.error}"
            )


@main.command("why")
@click.argument("person_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def why_cmd(obj: Ctx, person_id: str, as_json: bool) -> None:
    """List the events that changed PERSON_ID across runs (newest first)."""
    history = obj.state().person_history(person_id)
    if as_json:
        emit(
            [
                {
                    "run": run.id,
                    "job": run.job,
                    "at": run.started_at,
                    "operation": e.operation,
                    "target": e.target,
                    "ok": e.ok,
                    "changes": e.changes,
                    "error": e.error,
                }
                for run, e in history
            ]
        )
        return
    if not history:
        click.echo(f"no recorded events for {person_id}")
    for run, e in history:
        changes = ", ".join(f"{k}: {v[0]} → {v[1]}" for k, v in (e.changes or {}).items())
        click.echo(
            f"run {run.id} {run.started_at:%Y-%m-%d %H:%M} {e.operation:<10} {e.target or 'source':<12} "
            f"{'ok' if e.ok else 'FAILED'} {changes}{(' ' + e.error) if e.error else ''}"
        )


# ---------------------------------------------------------------- demo
@main.command("demo")
@click.option(
    "--dir",
    "directory",
    default="okrsync-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the demo keeps its files and state; rerun in the same folder for a nightly run.",
)
@click.option("--workers", default=1000, show_default=True, help="Size of the generated organisation.")
@click.option("--seed", default=42, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def demo_cmd(directory: str, workers: int, seed: int, as_json: bool) -> None:
    """Run the whole job offline on the built-in sandbox with SQLite state, and report."""
    from okrsync.demo import run_demo

    result = run_demo(Path(directory), workers=workers, seed=seed, progress=progress_printer())
    if as_json:
        emit(result.to_dict())
    else:
        for line in result.lines():
            click.echo(line)
    if result.exit_code:
        raise SystemExit(result.exit_code)


# ---------------------------------------------------------------- sandbox
@main.group("sandbox")
def sandbox_group() -> None:
    """Local emulators of the vendor APIs (offline rehearsal, tests)."""


@sandbox_group.command("serve")
@click.argument("system", type=click.Choice(["entra", "successfactors", "workday", "salesforce"]))
@click.option("--workers", default=1000, show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--port", default=0, show_default=True, help="0 picks a free port.")
@click.option("--faults", default="", help="e.g. 429=0.1,503=0.05,reset=0.02,token_ttl=60")
@click.option(
    "--directory",
    type=click.Choice(["empty", "same", "stale"]),
    default=None,
    help="Entra only: how the emulated directory starts.",
)
@click.option(
    "--api",
    type=click.Choice(["soap", "rest", "raas"]),
    default=None,
    help="Workday only: which API the printed `connection` is for (default soap; the others are "
    "printed under `alternatives`).",
)
def sandbox_serve(
    system: str, workers: int, seed: int, port: int, faults: str, directory: str | None, api: str | None
) -> None:
    """Serve one emulator until SIGTERM/Ctrl-C.

    The first stdout line is one JSON object: ``system``, ``base_url``, ``pid`` and ``connection``
    (the settings a connector needs), plus ``alternatives`` where the emulator also speaks other
    ways in (Workday: the other APIs; SuccessFactors: legacy Basic auth).
    """
    import contextlib
    import os
    import signal
    import threading

    from okrsync.sandbox import FaultSpec, RunningEmulator, SandboxOrg, create_emulator

    try:
        spec = FaultSpec.parse(faults)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    options: dict[str, Any] = {}
    if directory:
        if system != "entra":
            raise click.BadParameter("--directory applies to entra only", param_hint="--directory")
        options["directory"] = directory
    if api and system != "workday":
        raise click.BadParameter("--api applies to workday only", param_hint="--api")
    org = SandboxOrg(workers, seed=seed)
    running = RunningEmulator(create_emulator(system, org, faults=spec, **options), port)
    emulator: Any = running.emulator
    connection = running.connection()
    alternatives: dict[str, Any] = {}
    if system == "workday":
        chosen = api or "soap"
        connection = emulator.connection(chosen)
        others = [name for name in ("soap", "rest", "raas") if name != chosen]
        alternatives = {name: emulator.connection(name) for name in others}
    elif system == "successfactors":
        alternatives["basic"] = {
            **{k: v for k, v in connection.items() if k not in {"private_key_path", "certificate_path"}},
            "auth": "basic",
            "username": emulator.api_user,
            "password": emulator.basic_password,
        }
    info: dict[str, Any] = {
        "system": system,
        "base_url": running.url,
        "pid": os.getpid(),
        "connection": connection,
    }
    if alternatives:
        info["alternatives"] = alternatives
    stop = threading.Event()
    # SIGTERM stops cleanly, so the generated keys and CA file are removed; signal() refuses
    # outside the main thread (embedded use), where Ctrl-C or the caller stops the server
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(json.dumps(info))
    sys.stdout.flush()
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


def _register_optional_commands() -> None:
    """Commands that live in their own modules (org charts, cascade, ...)."""
    try:
        from okrsync.commands import org as org_commands
    except ImportError:
        return
    for name in ("org", "cascade"):
        cmd = getattr(org_commands, name, None) or getattr(org_commands, f"{name}_cmd", None)
        if isinstance(cmd, click.Command):
            main.add_command(cmd, name)
    from okrsync.commands import fleet as fleet_commands  # needs no optional dependency at import

    main.add_command(fleet_commands.tenants)
    main.add_command(fleet_commands.fleet)
    from okrsync.commands import learning as learning_commands  # okrsync learning status

    main.add_command(learning_commands.learning)
    from okrsync.commands import goals as goals_commands  # okrsync goals pull

    main.add_command(goals_commands.goals)


_register_optional_commands()


if __name__ == "__main__":
    main()
