"""Workday SOAP pull: floor vs zeep vs okrsync on the same ``Get_Workers`` pages (run on demand).

    python bench/workday_pull.py [--workers 100000] [--zeep-budget 300]

1. The emulator runs in its own process (``python -m okrsync.sandbox.workday``).
2. The response pages (999 workers each, the Response_Group of the ``workday-soap`` mapping, one
   ``As_Of_Entry_DateTime``) are fetched once and kept as raw bytes on disk; the fetch itself is
   reported (request count = ceil(N/999), emulator throughput).
3. Each parser then runs in its own process over the same bytes, so CPU seconds and peak RSS are
   its own: floor = lxml ``iterparse`` doing nothing (and ElementTree ``iterparse``); zeep =
   ``Get_Workers_Response`` element ``.parse`` with the real WSDL; okrsync = the connector's
   streaming parser + the mapping + ``Person`` validation (what the engine gets).

zeep needs ~4 ms per worker: when 100k workers would exceed ``--zeep-budget`` seconds it parses
the first pages only and its figures are extrapolated per worker (marked ``*``).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

WSDL = Path(__file__).resolve().parents[1] / "tests" / "specs" / "workday" / "Human_Resources.wsdl"
PER_WORKER_ZEEP_GUESS = 0.006  # seconds, from earlier runs; decides the subset up front


def usage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024.0  # CPU seconds, peak RSS MB (Linux: KB)


# ---- the parsers (each in its own process) ----
def floor_lxml(pages: list[Path]) -> int:
    from lxml import etree

    n = 0
    for page in pages:
        for _, el in etree.iterparse(str(page), events=("end",), resolve_entities=False, no_network=True):
            if el.tag == "{urn:com.workday/bsvc}Worker":
                n += 1
                el.clear()
    return n


def floor_et(pages: list[Path]) -> int:
    n = 0
    for page in pages:
        for _, el in ET.iterparse(str(page), events=("end",)):  # noqa: S314 - our own emulator's bytes
            if el.tag == "{urn:com.workday/bsvc}Worker":
                n += 1
                el.clear()
    return n


def zeep_parse(pages: list[Path]) -> int:
    import zeep
    from lxml import etree

    client = zeep.Client(str(WSDL))
    element = client.get_element("ns0:Get_Workers_Response")
    n = 0
    for page in pages:
        root = etree.fromstring(page.read_bytes())
        body = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]
        result = element.parse(body, client.wsdl.types)
        n += len(result.Response_Data.Worker)
    return n


def okrsync_parse(pages: list[Path]) -> int:
    from okrsync.connectors.workday.parse import PageInfo, iter_workers
    from okrsync.io import person_from_row
    from okrsync.mapping import load_mapping

    mapping = load_mapping("workday-soap")
    n = 0
    for page in pages:
        for rec in iter_workers(page.read_bytes(), PageInfo()):
            person_from_row(dict(mapping.apply(rec)), rec.get("WID"))
            n += 1
    return n


ROLES = {"floor-lxml": floor_lxml, "floor-ET": floor_et, "zeep": zeep_parse, "okrsync": okrsync_parse}


def child(role: str, pages: list[str]) -> None:
    cpu0, _ = usage()
    t0 = time.perf_counter()
    n = ROLES[role]([Path(p) for p in pages])
    wall = time.perf_counter() - t0
    cpu, rss = usage()
    print(json.dumps({"workers": n, "wall": wall, "cpu": cpu - cpu0, "rss": rss}))


def measure(role: str, pages: list[Path]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", role, *map(str, pages)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# ---- fetching the pages once ----
def fetch(workers: int, folder: Path) -> tuple[list[Path], dict[str, Any]]:
    import requests

    from okrsync.connectors.workday import soap
    from okrsync.connectors.workday.pull import response_group
    from okrsync.mapping import load_mapping

    proc = subprocess.Popen(
        [sys.executable, "-m", "okrsync.sandbox.workday", "--workers", str(workers), "--password", "bench"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        c = info["connection"]
        url = f"{c['base_url']}/ccx/service/{c['tenant']}/Human_Resources/v45.0"
        group = response_group(load_mapping("workday-soap").source_fields())
        entry = datetime.now(UTC)
        session = requests.Session()
        session.trust_env = False
        pages: list[Path] = []
        t0 = time.perf_counter()
        for page in range(1, math.ceil(workers / 999) + 1):
            body = soap.get_workers(version="v45.0", page=page, count=999, as_of_entry=entry, group=group)
            r = session.post(
                url, data=soap.envelope(body, c["username"], c["password"]), headers=soap.HEADERS
            )
            r.raise_for_status()
            path = folder / f"page{page:04d}.xml"
            path.write_bytes(r.content)
            pages.append(path)
        wall = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in pages)
        return pages, {
            "requests": len(pages),
            "wall": wall,
            "mb": size / 1e6,
            "startup": info["startup_seconds"],
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--zeep-budget", type=float, default=300.0, help="seconds zeep may take")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1:])
        return
    with tempfile.TemporaryDirectory(prefix="wd-bench-") as tmp:
        pages, got = fetch(args.workers, Path(tmp))
        print(
            f"fetched {args.workers:,} workers: {got['requests']} requests (ceil(N/999)), "
            f"{got['mb']:.0f} MB, "
            f"{got['wall']:.1f} s ({args.workers / got['wall']:,.0f} workers/s from the emulator; "
            f"its start-up {got['startup']:.1f} s)"
        )
        rows: dict[str, dict[str, Any]] = {}
        for role in ("floor-lxml", "floor-ET", "okrsync"):
            rows[role] = measure(role, pages)
        subset = pages
        if args.workers * PER_WORKER_ZEEP_GUESS > args.zeep_budget:
            keep = max(1, int(args.zeep_budget / PER_WORKER_ZEEP_GUESS / 999 / 2))
            subset = pages[:keep]
        z = measure("zeep", subset)
        if z["workers"] < args.workers:
            scale = args.workers / z["workers"]
            z = {**z, "wall": z["wall"] * scale, "cpu": z["cpu"] * scale, "extrapolated": z["workers"]}
        rows["zeep"] = z
    print(f"\n{'parser':<12}{'workers':>10}{'wall s':>10}{'CPU s':>10}{'peak RSS MB':>14}")
    for role, r in rows.items():
        mark = "*" if r.get("extrapolated") else " "
        print(f"{role:<12}{r['workers']:>10,}{r['wall']:>10.2f}{r['cpu']:>9.2f}{mark}{r['rss']:>14.0f}")
    if rows["zeep"].get("extrapolated"):
        print(
            f"* zeep parsed {rows['zeep']['extrapolated']:,} workers; "
            f"times scaled per worker to {args.workers:,}"
        )
    ok = rows["okrsync"]["cpu"]
    print(
        f"\nokrsync / zeep CPU: {ok / rows['zeep']['cpu']:.3f} (target ≤ 0.3)   "
        f"okrsync / floor-lxml CPU: {ok / rows['floor-lxml']['cpu']:.2f}   "
        f"okrsync / floor-ET CPU: {ok / rows['floor-ET']['cpu']:.2f}"
    )


if __name__ == "__main__":
    main()
