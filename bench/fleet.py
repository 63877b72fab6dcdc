"""Fleet throughput: tenants per minute with 1 and 2 Celery workers, over a vendor mix.

    python bench/fleet.py [--tenants 200] [--low 200] [--high 2000] [--broker redis|amqp]
                          [--mix vendors|files] [--source-orgs 4]

``--mix vendors`` (default) is the CI fleet test's mix at full size: a quarter each of
files→files, Workday SOAP → files, SuccessFactors → files and files → Entra tenants, against
sandbox emulators served from this process (threads on 127.0.0.1; the workers connect over
HTTP/HTTPS). Each vendor's sources read one of ``--source-orgs`` orgs (one emulator per org,
shared by several tenants); every Entra tenant gets its own empty directory, fresh for each
worker count. ``--mix files`` is every tenant files→files.

Needs the machine's PostgreSQL (per-tenant state schemas + advisory locks), Redis (results,
rate-limit storage) and RabbitMQ or Redis (broker). Each worker is one process
(``--concurrency=1 -P prefork``). Every round syncs every tenant once from scratch (fresh
schemas and targets), so 1- and 2-worker figures are comparable; a second, no-change round
shows the cost of a quiet night. Prints a table; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from okrsync.distributed import SYNC_TASK, create_app
from tests.distributed.fleet_kit import (
    AMQP_URL,
    REDIS_URL,
    Emulators,
    FleetRun,
    make_tenants,
    services_available,
    workers,
)


def one_round(run: FleetRun, names: list[str]) -> tuple[float, dict[str, int]]:
    app = create_app(run.settings())
    t0 = time.perf_counter()
    pending = [app.send_task(SYNC_TASK, args=(n, "nightly")) for n in names]
    statuses: dict[str, int] = {}
    for p in pending:
        status = p.get(timeout=3600)["status"]
        statuses[status] = statuses.get(status, 0) + 1
    app.close()
    return time.perf_counter() - t0, statuses


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", type=int, default=200)
    ap.add_argument("--low", type=int, default=200)
    ap.add_argument("--high", type=int, default=2000)
    ap.add_argument("--broker", choices=["redis", "amqp"], default="amqp")
    ap.add_argument("--mix", choices=["vendors", "files"], default="vendors")
    ap.add_argument("--source-orgs", type=int, default=4)
    args = ap.parse_args()
    ok, why = services_available()
    if not ok:
        print(f"skipped: {why}")
        return 0
    base = Path(tempfile.mkdtemp(prefix="okrsync-fleet-bench-"))
    emulators = Emulators(base / "secrets") if args.mix == "vendors" else None
    try:
        template = base / "template"
        sizes = make_tenants(
            template, args.tenants, args.low, args.high, emulators=emulators, source_orgs=args.source_orgs
        )
        names = sorted(sizes)
        people = sum(sizes.values())
        print(
            f"{args.tenants} tenants ({args.mix}), {people} people ({args.low}-{args.high} each),"
            f" broker {args.broker}"
        )
        print(f"{'workers':>7} {'round':>10} {'seconds':>8} {'tenants/min':>12}  statuses")
        for count in (1, 2):
            folder = base / f"w{count}"
            shutil.copytree(template, folder)
            if emulators is not None:
                emulators.retarget_entra(folder)
            run = FleetRun(folder=folder, broker=AMQP_URL if args.broker == "amqp" else REDIS_URL)
            try:
                with workers(run, count):
                    for label in ("first", "no-change"):
                        seconds, statuses = one_round(run, names)
                        rate = len(names) / seconds * 60
                        print(f"{count:>7} {label:>10} {seconds:>8.1f} {rate:>12.0f}  {statuses}")
            finally:
                run.cleanup()
    finally:
        if emulators is not None:
            emulators.close()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
