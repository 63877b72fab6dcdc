"""Engine benchmark: files → files full sync and no-change resync.

    python bench/engine.py [--people 100000]

Each measurement runs in its own child process so peak RSS and CPU are per phase. The
floor is reading and ``json.loads``-ing the same source file and doing nothing with it.
Figures are for this run on this machine; compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIG = """\
[state]
path = "state.db"
[connections.hris]
type = "files"
path = "source.jsonl"
[connections.directory]
type = "files"
path = "target.jsonl"
batch_size = 20000
[jobs.nightly]
source = "hris"
targets = ["directory"]
"""


def _measure(kind: str, base: str, queue: Any) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    extra: dict[str, Any] = {}
    if kind == "floor":
        with open(Path(base) / "source.jsonl", "rb") as fh:
            extra["records"] = sum(1 for line in fh if json.loads(line))
    else:
        import tomllib

        from okrsync.config import parse_config
        from okrsync.engine import SyncEngine
        from okrsync.state import open_state

        cfg = parse_config(tomllib.loads((Path(base) / "okrsync.toml").read_text()), base_dir=Path(base))
        state = open_state(str(Path(base) / "state.db"))
        report = SyncEngine(cfg, state).sync("nightly")
        state.close()
        extra = {"writes": report.writes, "status": report.status, "phases": report.phases}
    queue.put(
        {
            "kind": kind,
            "wall": time.perf_counter() - t0,
            "cpu": time.process_time() - c0,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            **extra,
        }
    )


def run(kind: str, base: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")  # a fresh interpreter: RSS and imports are the phase's own
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(kind, base, queue))
    proc.start()
    result: dict[str, Any] = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=100_000)
    args = parser.parse_args()

    from okrsync.io import write_people
    from okrsync.sandbox.orgs import SandboxOrg

    with tempfile.TemporaryDirectory(prefix="okrsync-bench-") as base:
        write_people(Path(base) / "source.jsonl", SandboxOrg(args.people, seed=11).expected_people())
        (Path(base) / "okrsync.toml").write_text(CONFIG)
        size_mb = (Path(base) / "source.jsonl").stat().st_size / 1e6
        rows = [run("floor", base), run("full sync", base), run("no-change resync", base)]
    floor = rows[0]
    print(f"engine benchmark: {args.people:,} people, files → files, source {size_mb:.1f} MB")
    print(f"{'phase':<18}{'wall s':>9}{'cpu s':>9}{'peak RSS MB':>13}{'writes':>9}{'cpu/floor':>11}")
    for r in rows:
        print(
            f"{r['kind']:<18}{r['wall']:>9.2f}{r['cpu']:>9.2f}{r['rss_mb']:>13.0f}{r.get('writes', '-')!s:>9}"
            f"{r['cpu'] / floor['cpu']:>10.1f}×"
        )
    for r in rows[1:]:
        print(f"  {r['kind']} phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in r["phases"].items()))


if __name__ == "__main__":
    main()
