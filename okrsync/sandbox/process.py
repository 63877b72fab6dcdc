"""Serve one emulator in its own process (``python -m okrsync.sandbox.<system>``).

Benchmarks run the emulator in a separate process so client and server do not share a GIL
and the client's CPU can be measured alone. Each system's ``__main__`` only declares its extra
options; this module prints the one JSON line (``url``, ``pid``, ``startup_seconds``,
``connection`` and any extras) once listening, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from okrsync.sandbox.orgs import SandboxOrg
from okrsync.sandbox.server import Emulator, FaultSpec, serve

Build = Callable[[SandboxOrg, FaultSpec, argparse.Namespace], Emulator]
Extras = Callable[[Emulator], dict[str, Any]]


def serve_main(
    system: str,
    build: Build,
    argv: list[str] | None = None,
    *,
    add_options: Callable[[argparse.ArgumentParser], None] = lambda parser: None,
    extras: Extras = lambda emulator: {},
    doc: str | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m okrsync.sandbox.{system}", description=doc or __doc__)
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", default=None, help="e.g. 429=0.1,retry_after=1,token_ttl=60")
    parser.add_argument("--port", type=int, default=0)
    add_options(parser)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    emulator = build(SandboxOrg(args.workers, seed=args.seed), FaultSpec.parse(args.faults), args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve(emulator, args.port) as running:
        line = {
            "url": running.url,
            "pid": os.getpid(),
            "startup_seconds": round(time.perf_counter() - started, 2),
            "connection": running.connection(),
            **extras(emulator),
        }
        print(json.dumps(line), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0
