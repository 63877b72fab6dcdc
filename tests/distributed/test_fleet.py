"""Scale-out on real services: Celery workers (subprocesses), PostgreSQL state, Redis, RabbitMQ.

Each test uses its own queue, PostgreSQL schemas (one per tenant) and Redis keys, removed at
the end. The convergence test runs a vendor mix (files, Workday SOAP and SuccessFactors sources,
Entra targets, against in-process sandbox emulators; see fleet_kit.KINDS) at the issue's 200
tenants (``OKRSYNC_FLEET_TEST_TENANTS`` lowers it); throughput is ``bench/fleet.py``'s job.
Skips on a bare machine; fails under ``OKRSYNC_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from okrsync.cli import main
from okrsync.distributed import SYNC_TASK, create_app, fleet_status, run_tenant_job
from okrsync.distributed.app import PROBE_TASK
from okrsync.errors import ConnectorError, HierarchyError, PolicyViolation, RetriableApiError
from okrsync.state import open_state
from okrsync.tenants import FolderRegistry, state_location
from tests.conftest import require_or_skip
from tests.distributed.fleet_kit import (
    AMQP_URL,
    REDIS_URL,
    Emulators,
    FleetRun,
    make_tenants,
    overlaps,
    services_available,
    target_state,
    tenant_kind,
    workers,
)

pytestmark = pytest.mark.services

# the size: 200 tenants on 2 workers (about 4 minutes here); lower it for a quick local run
TENANTS = int(os.environ.get("OKRSYNC_FLEET_TEST_TENANTS", "200"))


@pytest.fixture(scope="module")
def services() -> None:
    available, reason = services_available()
    require_or_skip(available, reason, "OKRSYNC_REQUIRE_SERVICES")


@pytest.fixture
def fleet_run(services: None, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[FleetRun]:
    broker = getattr(request, "param", REDIS_URL)
    run = FleetRun(folder=tmp_path / "tenants", broker=broker)
    run.folder.mkdir()
    try:
        yield run
    finally:
        run.cleanup()


def _solo_targets(
    run: FleetRun, names: list[str], tmp_path: Path, emulators: Emulators | None = None
) -> dict[str, object]:
    """Each tenant run alone, in-process, on a copy of its folder with its own SQLite state.

    Vendor sources are shared (read-only); each Entra target gets a fresh empty emulator, so
    the solo run starts from the same directory the fleet run will.
    """
    solo = tmp_path / "solo"
    shutil.copytree(run.folder, solo)
    if emulators is not None:
        emulators.retarget_entra(solo)
    registry = FolderRegistry(solo, state_template=str(solo / "{tenant}.db"))
    out = {}
    for name in names:
        result = run_tenant_job(name, "nightly", registry=registry)
        assert result.status == "ok", result
        out[name] = target_state(solo, name)
    return out


def _targets(run: FleetRun, names: list[str], *, version: bool = False) -> dict[str, object]:
    return {n: target_state(run.folder, n, version=version) for n in names}


def _untouched(run: FleetRun, names: list[str]) -> dict[str, object]:
    """Per tenant: the files target's mtime, or the Entra directory with its change counter."""
    out: dict[str, object] = {}
    for n in names:
        path = run.folder / "data" / n / "directory.jsonl"
        out[n] = path.stat().st_mtime_ns if path.exists() else target_state(run.folder, n, version=True)
    return out


def _all_runs(run: FleetRun, name: str) -> list:  # type: ignore[type-arg]
    registry = FolderRegistry(run.folder, state_template=run.settings().state_template)
    store = open_state(state_location(name, registry.load(name), registry.state_template))
    try:
        return store.runs("nightly", limit=1000)
    finally:
        store.close()


def test_transient_and_policy_errors_are_told_apart() -> None:
    from okrsync.distributed import is_transient

    assert is_transient(RetriableApiError("429", status=429))
    assert is_transient(ConnectorError("bad gateway", status=502))
    assert not is_transient(ConnectorError("forbidden", status=403))
    assert not is_transient(PolicyViolation("too many deletes"))
    assert not is_transient(HierarchyError("cycle"))
    assert is_transient(TimeoutError("rate limit wait"))


@pytest.fixture
def emulators(tmp_path: Path) -> Iterator[Emulators]:
    with Emulators(tmp_path / "secrets") as running:
        yield running


def test_tenants_on_two_workers_converge_like_solo_runs_and_rerun_writes_nothing(
    fleet_run: FleetRun, tmp_path: Path, emulators: Emulators
) -> None:
    """A vendor mix: files→files, Workday SOAP → files, SuccessFactors → files, files → Entra."""
    sizes = make_tenants(fleet_run.folder, TENANTS, 200, 2000, emulators=emulators)
    names = sorted(sizes)
    kinds = {n: tenant_kind(i, True) for i, n in enumerate(names)}
    assert {k: sum(v == k for v in kinds.values()) for k in set(kinds.values())} == {
        k: TENANTS // 4 for k in ("files", "workday", "successfactors", "entra")
    }
    expected = _solo_targets(fleet_run, names, tmp_path, emulators)
    assert all(expected.values())  # every solo run wrote a target (a file, or a filled directory)
    app = create_app(fleet_run.settings())
    with workers(fleet_run, 2):
        first = [app.send_task(SYNC_TASK, args=(n, "nightly")) for n in names]
        results = [r.get(timeout=240) for r in first]
        assert {r["status"] for r in results} == {"ok"}, results
        assert all(r["writes"] > 0 for r in results), results
        assert _targets(fleet_run, names) == expected
        before = _untouched(fleet_run, names)

        again = [app.send_task(SYNC_TASK, args=(n, "nightly")) for n in names]
        rerun = [r.get(timeout=240) for r in again]
        assert {(r["status"], r["writes"]) for r in rerun} == {("no_change", 0)}
        assert _untouched(fleet_run, names) == before

    status = fleet_status(
        FolderRegistry(fleet_run.folder, state_template=fleet_run.settings().state_template)
    )
    assert len(status) == len(names) and {s.status for s in status} == {"no_change"}
    for name in names:
        runs = _all_runs(fleet_run, name)
        assert [r.status for r in runs] == ["ok", "ok"] and overlaps(runs) == []
    cli = [
        "fleet",
        "--registry",
        str(fleet_run.folder),
        "--state-template",
        str(fleet_run.settings().state_template),
    ]
    out = CliRunner().invoke(main, [*cli, "status", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["tenants"]
    assert len(rows) == len(names) and {(r["status"], r["writes"]) for r in rows} == {("no_change", 0)}
    app.close()


@pytest.mark.parametrize("fleet_run", [AMQP_URL], indirect=True)
def test_sigkilled_worker_tasks_are_redelivered_and_converge(fleet_run: FleetRun, tmp_path: Path) -> None:
    import psycopg

    from tests.distributed.fleet_kit import PG_URL

    sizes = make_tenants(fleet_run.folder, 12, 1500, 2500)
    names = sorted(sizes)
    expected = _solo_targets(fleet_run, names, tmp_path)
    app = create_app(fleet_run.settings())
    prefix = fleet_run.schema_prefix
    with workers(fleet_run, 2) as (victim, _survivor):
        pending = [app.send_task(SYNC_TASK, args=(n, "nightly")) for n in names]
        # wait until the victim's pool process is inside a run (a 'running' row with its pid), then kill it
        killed_in: str | None = None
        deadline = time.monotonic() + 120
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            while killed_in is None and time.monotonic() < deadline:
                pids = victim.pids()
                for name in names:
                    schema = f"{prefix}_{name}"
                    try:
                        rows = conn.execute(
                            f"SELECT pid FROM \"{schema}\".runs WHERE status = 'running'"  # type: ignore[arg-type]  # noqa: S608
                        ).fetchall()
                    except psycopg.errors.UndefinedTable:
                        continue
                    if any(pid in pids for (pid,) in rows):
                        victim.kill()
                        killed_in = name
                        break
                time.sleep(0.02)
        assert killed_in is not None, "the victim never started a run"
        results = [r.get(timeout=300) for r in pending]
        assert {r["status"] for r in results} == {"ok"} or all(
            r["status"] in ("ok", "no_change") for r in results
        )

    assert _targets(fleet_run, names) == expected  # no tenant half-applied
    interrupted = 0
    for name in names:
        runs = _all_runs(fleet_run, name)
        assert overlaps(runs) == [], (name, runs)
        assert all(r.status != "running" for r in runs)
        interrupted += sum(r.status == "interrupted" for r in runs)
        if name == killed_in:
            [dead] = [r for r in runs if r.status == "interrupted"]
            assert "no longer running" in dead.summary["interrupted"]["reason"]
    assert interrupted == 1
    app.close()


def test_per_host_rate_limit_is_shared_by_all_workers(fleet_run: FleetRun, start_emulator) -> None:  # type: ignore[no-untyped-def]
    emulator = start_emulator("workday")  # plain HTTP
    host = emulator.url.split("://", 1)[1].split("/", 1)[0]
    limit, per = 5, 1.0
    fleet_run.rate_limits = {host: f"{limit}/second"}
    app = create_app(fleet_run.settings())
    url = f"{emulator.url}/okrsync-probe"  # not a control path, so the request log records it
    with workers(fleet_run, 2):
        probes = [app.send_task(PROBE_TASK, args=(url, 12)) for _ in range(3)]
        [p.get(timeout=120) for p in probes]
    times = sorted(
        t for t, _method, path, _status in emulator.emulator.request_log if path.startswith("/okrsync-probe")
    )
    assert len(times) == 36
    # the most requests that arrived within any one window (50 ms allowed for transit jitter)
    busiest = max(sum(1 for u in times[i:] if u - t < per - 0.05) for i, t in enumerate(times))
    span = times[-1] - times[0]
    print(f"rate limit {limit}/s on {host}: busiest window {busiest}, 36 requests over {span:.2f}s")
    assert busiest <= limit
    assert span >= (36 / limit - 1) * per * 0.95  # unthrottled, 36 local GETs take well under a second
    app.close()


def test_fleet_enqueue_queues_one_task_per_tenant_and_job_and_workers_run_them(fleet_run: FleetRun) -> None:
    """``okrsync fleet enqueue``: what an operator's cron runs; the tasks it queues are the ones run."""
    from celery.result import AsyncResult

    names = sorted(make_tenants(fleet_run.folder, 3, 50, 80))
    settings = fleet_run.settings()
    runner = CliRunner(env=settings.to_env())
    cli = ["fleet", "--registry", str(fleet_run.folder), "--state-template", str(settings.state_template)]
    unknown = runner.invoke(main, [*cli, "enqueue", "--tenants", "t000,nope"])
    assert unknown.exit_code == 2 and "unknown tenant(s): nope" in unknown.stderr
    app = create_app(settings)
    with workers(fleet_run, 1):
        out = runner.invoke(main, [*cli, "enqueue", "--json"])
        assert out.exit_code == 0, out.output
        queued = json.loads(out.output)
        assert queued["queue"] == settings.queue
        assert [(q["tenant"], q["job"]) for q in queued["queued"]] == [(n, "nightly") for n in names]
        results = [AsyncResult(q["task_id"], app=app).get(timeout=120) for q in queued["queued"]]
        assert [(r["tenant"], r["status"]) for r in results] == [(n, "ok") for n in names]
        assert all(r["writes"] > 0 for r in results)
    app.close()
