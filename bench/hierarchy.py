"""Benchmark: okrsync's hierarchy build against a competent networkx implementation.

    python bench/hierarchy.py [--people 1000000] [--seed 7]

One deterministic random org (spans 3-12, ~1% terminated, a handful of loops, self-managers
and dangling references) is written once as a people CSV and loaded with ``okrsync.io.read_people``
in this process, so the ``Person`` models are exactly what the product holds (validated from rows,
fresh strings per row, as a file or connector pull gives them). Each implementation then runs in
its own forked child, so CPU seconds and peak RSS are its own;
the people are shared copy-on-write, and their RSS is reported separately as "input". Before
forking, ``gc.freeze()`` moves the input out of the collector's reach so that neither side pays
for re-scanning a million people (this favours networkx, which allocates far more containers).

Both sides start from the same list of people and produce the same things: a repaired acyclic
graph, the loops found, a topological order, every person's depth and every subtree size.
"""

from __future__ import annotations

import argparse
import csv
import gc
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import psutil

from okrsync.hierarchy import build_hierarchy
from okrsync.io import read_people
from okrsync.models import Person, PersonStatus, WorkerType

Result = dict[str, Any]

DEPARTMENTS = ("Sales", "Engineering", "Finance", "People", "Operations", "Legal", "Marketing")


def generate(n: int, seed: int, path: Path) -> None:
    """Write a people CSV: a tree grown breadth-first with 3-12 reports per manager, ids assigned
    at random (as hire order would), listed in id order (as an HRIS export would), then damaged a
    little."""
    rnd = random.Random(seed)
    parent = [-1] * n
    children: list[list[int]] = [[] for _ in range(n)]
    nxt, boss = 1, 0
    while nxt < n:
        for _ in range(rnd.randint(3, 12)):
            if nxt >= n:
                break
            parent[nxt] = boss
            children[boss].append(nxt)
            nxt += 1
        boss += 1
    slot_to_number = list(range(n))
    rnd.shuffle(slot_to_number)
    ids = [f"E{slot_to_number[s]:07d}" for s in range(n)]
    manager: list[str | None] = [ids[p] if p >= 0 else None for p in parent]
    dotted: dict[int, tuple[str, ...]] = {}
    email = [f"e{slot_to_number[s]:07d}@acme.example" for s in range(n)]

    scale = max(1, n // 200_000)  # a handful of each defect, a few more on big orgs
    managers = [s for s in range(1, n) if children[s]]
    for _ in range(min(len(managers), 5 * scale)):  # loops of length 2..6
        top = rnd.choice(managers)
        below = top
        for _ in range(rnd.randint(1, 5)):
            if not children[below]:
                break
            below = rnd.choice(children[below])
        manager[top] = ids[below]
    for _ in range(3 * scale):
        s = rnd.randrange(n)
        manager[s] = ids[s]
    for k in range(10 * scale):
        manager[rnd.randrange(1, n)] = f"X{k:07d}"
    for _ in range(n // 100):
        dotted[rnd.randrange(n)] = (ids[rnd.randrange(n)],)
    for k in range(5 * scale):
        dotted[rnd.randrange(n)] = (f"Y{k:07d}",)
    for _ in range(3 * scale):
        a, b = rnd.randrange(n), rnd.randrange(n)
        email[b] = email[a].upper()

    statuses = rnd.choices(
        [PersonStatus.ACTIVE, PersonStatus.ON_LEAVE, PersonStatus.TERMINATED, PersonStatus.PRE_HIRE],
        weights=[97.7, 1.0, 1.0, 0.3],
        k=n,
    )
    header = (
        "id",
        "manager_id",
        "email",
        "display_name",
        "department",
        "status",
        "worker_type",
        "additional_manager_ids",
    )
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for s in sorted(range(n), key=ids.__getitem__):
            out.writerow(
                (
                    ids[s],
                    manager[s] or "",
                    email[s],
                    f"Person {ids[s]}",
                    DEPARTMENTS[s % len(DEPARTMENTS)],
                    statuses[s].value,
                    (WorkerType.CONTINGENT if s % 20 == 0 else WorkerType.EMPLOYEE).value,
                    ";".join(dotted.get(s, ())),
                )
            )


def load(path: Path) -> list[Person]:
    """The people as the product holds them: parsed and validated by ``okrsync.io.read_people``
    (what ``okrsync org check`` and the files connector do), in file order, as a pull creates them."""
    return read_people(path)


def run_okrsync(people: list[Person]) -> Result:
    h = build_hierarchy(people)
    order = h.order()
    sizes = [h.subtree_size(r) for r in h.roots()]  # forces every subtree size
    return {
        "people": len(order),
        "problems": len(h.problems),
        "cycles": sum(1 for p in h.problems if p.code == "cycle"),
        "roots": len(h.roots()),
        "max_depth": h.max_depth(),
        "size_sum_of_roots": sum(sizes),
    }


def run_networkx(people: list[Person]) -> Result:
    """What a competent networkx user would write for the same job."""
    g = nx.DiGraph()
    g.add_nodes_from(p.id for p in people)
    g.add_edges_from((p.manager_id, p.id) for p in people if p.manager_id is not None and p.manager_id in g)
    cycles = 0
    if not nx.is_directed_acyclic_graph(g):
        # every node has at most one manager, so each non-trivial strongly connected component is
        # exactly one loop; cut the edge into its smallest id (the same edge okrsync cuts)
        g.remove_edges_from(list(nx.selfloop_edges(g)))
        for comp in nx.strongly_connected_components(g):
            if len(comp) > 1:
                first = min(comp)
                (boss,) = g.pred[first]
                g.remove_edge(boss, first)
                cycles += 1
    order = list(nx.topological_sort(g))
    roots = [v for v, d in g.in_degree() if d == 0]
    depth: dict[str, int] = {}
    for d, layer in enumerate(nx.bfs_layers(g, roots)):
        for v in layer:
            depth[v] = d
    size = dict.fromkeys(order, 1)
    pred = g.pred
    for v in reversed(order):
        for u in pred[v]:
            size[u] += size[v]
    return {
        "people": len(order),
        "cycles": cycles,
        "roots": len(roots),
        "max_depth": max(depth.values(), default=0),
        "size_sum_of_roots": sum(size[r] for r in roots),
    }


def _child(fn: Callable[[list[Person]], Result], people: list[Person], conn: Any) -> None:
    rss_start = psutil.Process().memory_info().rss
    # Touch every person once, untimed: the first write to a refcount after fork copies the page
    # (copy-on-write), a cost of this harness rather than of either implementation.
    touched = sum(1 for p in people if (p.id, p.manager_id, p.email, p.status, p.additional_manager_ids))
    assert touched == len(people)
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(people)
    result["cpu_s"] = time.process_time() - cpu
    result["wall_s"] = time.perf_counter() - wall
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["rss_start_mb"] = rss_start / 2**20
    conn.send(result)
    conn.close()


def measure(fn: Callable[[list[Person]], Result], people: list[Person]) -> Result:
    ctx = mp.get_context("fork")
    here, there = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, people, there))
    proc.start()
    there.close()
    result: Result = here.recv()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    me = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="okrsync-bench-") as tmp:
        path = Path(tmp) / "people.csv"
        t = time.perf_counter()
        generate(args.people, args.seed, path)
        gen_s = time.perf_counter() - t
        gc.collect()
        before = me.memory_info().rss
        t, cpu = time.perf_counter(), time.process_time()
        people = load(path)
        load_s, load_cpu = time.perf_counter() - t, time.process_time() - cpu
    gc.collect()
    gc.freeze()
    input_mb = (me.memory_info().rss - before) / 2**20
    print(
        f"{args.people:,} people: CSV written in {gen_s:.1f}s, read and validated by okrsync.io.read_people "
        f"in {load_s:.1f}s ({load_cpu:.1f} CPU s; not timed below); input RSS {input_mb:,.0f} MB "
        f"({input_mb * 2**20 / max(1, args.people):,.0f} B/person); "
        f"python {sys.version.split()[0]}, networkx {nx.__version__}, pid {os.getpid()}"
    )

    ok = measure(run_okrsync, people)
    nxr = measure(run_networkx, people)
    for key in ("people", "cycles", "size_sum_of_roots"):  # policies may move roots/depths
        if ok[key] != nxr[key]:
            print(f"WARNING: {key} differs: okrsync {ok[key]} vs networkx {nxr[key]}")

    def row(name: str, wall: str, cpu: str, peak: str, extra: str) -> str:
        return f"| {name:<16} | {wall:>7} | {cpu:>7} | {peak:>11} | {extra:>17} |"

    def over_input(r: Result) -> float:
        return float(r["peak_rss_mb"] - r["rss_start_mb"])

    print()
    print(row("implementation", "wall s", "CPU s", "peak RSS MB", "RSS over input MB"))
    print(f"|{'-' * 18}|{'-' * 9}|{'-' * 9}|{'-' * 13}|{'-' * 19}|")
    for name, r in (("okrsync", ok), ("networkx", nxr)):
        print(
            row(
                name,
                f"{r['wall_s']:.2f}",
                f"{r['cpu_s']:.2f}",
                f"{r['peak_rss_mb']:,.0f}",
                f"{over_input(r):,.0f}",
            )
        )
    print(
        row(
            "okrsync/networkx",
            f"{ok['wall_s'] / nxr['wall_s']:.2f}",
            f"{ok['cpu_s'] / nxr['cpu_s']:.2f}",
            f"{ok['peak_rss_mb'] / nxr['peak_rss_mb']:.2f}",
            f"{over_input(ok) / max(1.0, over_input(nxr)):.2f}",
        )
    )
    print()
    print(
        f"okrsync: {ok['people']:,} people, {ok['problems']:,} problems ({ok['cycles']} loops), "
        f"{ok['roots']} roots, max depth {ok['max_depth']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
