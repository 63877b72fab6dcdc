"""Workday emulator throughput and the Get_Workers floor (run on demand, never in CI).

    python bench/workday_emulator.py [--workers 20000] [--count 999] [--zeep-pages 1]

The emulator runs in a child process (its CPU is not the client's). Rows: the emulator's own
cold and warm page times (from the client's wall clock, one client), then the floor — requests +
lxml iterparse / ElementTree iterparse of every page — and zeep on the first ``--zeep-pages`` pages,
scaled per page so the ratio is comparable. The okrsync connector row belongs to the connector's
benchmark once it exists.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import resource
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from lxml import etree

WSDL = Path(__file__).resolve().parents[1] / "tests" / "specs" / "workday" / "Human_Resources.wsdl"
BODY = (
    '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wd="urn:com.workday/bsvc">'
    '<env:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/'
    'oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsse:UsernameToken><wsse:Username>{user}</wsse:Username>'
    "<wsse:Password>{password}</wsse:Password></wsse:UsernameToken></wsse:Security></env:Header><env:Body>"
    '<wd:Get_Workers_Request wd:version="v45.0"><wd:Response_Filter><wd:As_Of_Entry_DateTime>{entry}'
    "</wd:As_Of_Entry_DateTime><wd:Page>{page}</wd:Page><wd:Count>{count}</wd:Count></wd:Response_Filter>"
    "<wd:Response_Group><wd:Include_Reference>1</wd:Include_Reference>"
    "<wd:Include_Personal_Information>1</wd:Include_Personal_Information>"
    "<wd:Include_Employment_Information>1</wd:Include_Employment_Information>"
    "<wd:Include_Management_Chain_Data>1</wd:Include_Management_Chain_Data></wd:Response_Group>"
    "</wd:Get_Workers_Request></env:Body></env:Envelope>"
)


def serve(workers: int, queue: Any) -> None:
    from okrsync.sandbox import SandboxOrg, create_emulator, serve

    with serve(create_emulator("workday", SandboxOrg(workers, seed=1), password="bench")) as run:
        queue.put(run.connection())
        time.sleep(3600)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=20_000)
    parser.add_argument("--count", type=int, default=999)
    parser.add_argument("--zeep-pages", type=int, default=1)
    args = parser.parse_args()
    queue: Any = mp.Queue()
    child = mp.Process(target=serve, args=(args.workers, queue), daemon=True)
    child.start()
    conn = queue.get(timeout=120)
    url = f"{conn['base_url']}/ccx/service/{conn['tenant']}/Human_Resources"
    session = requests.Session()
    pages = -(-args.workers // args.count)
    entry = datetime.now(UTC).isoformat()  # fixed across pages, as a connector must

    def fetch(page: int) -> bytes:
        body = BODY.format(
            user=conn["username"], password=conn["password"], entry=entry, page=page, count=args.count
        )
        r = session.post(url, data=body.encode(), timeout=300)
        r.raise_for_status()
        return r.content

    rows = []
    for label in ("emulator cold", "emulator warm"):
        t = time.perf_counter()
        data = [fetch(p) for p in range(1, pages + 1)]
        rows.append((label, time.perf_counter() - t, None, pages))
    for label, parse in (
        ("floor: lxml iterparse", lambda b: sum(1 for _ in etree.iterparse(io.BytesIO(b), events=("end",)))),
        (
            "floor: ElementTree iterparse",
            lambda b: sum(1 for _ in ET.iterparse(io.BytesIO(b), events=("end",))),  # noqa: S314 - own pages
        ),
    ):
        t, c = time.perf_counter(), cpu()
        for p in range(1, pages + 1):
            parse(fetch(p))
        rows.append((label, time.perf_counter() - t, cpu() - c, pages))
    if args.zeep_pages and WSDL.exists():
        import zeep
        from zeep.wsse.username import UsernameToken

        client = zeep.Client(str(WSDL), wsse=UsernameToken(conn["username"], conn["password"]))
        service = client.create_service("{urn:com.workday/bsvc/Human_Resources}Human_ResourcesBinding", url)
        n = min(args.zeep_pages, pages)
        t, c = time.perf_counter(), cpu()
        for p in range(1, n + 1):
            service.Get_Workers(
                Response_Filter={"As_Of_Entry_DateTime": entry, "Page": p, "Count": args.count},
                Response_Group={
                    "Include_Reference": True,
                    "Include_Personal_Information": True,
                    "Include_Employment_Information": True,
                    "Include_Management_Chain_Data": True,
                },
            )
        scale = pages / n
        rows.append(
            (f"peer: zeep ({n} pages, scaled)", (time.perf_counter() - t) * scale, (cpu() - c) * scale, pages)
        )
    print(f"{args.workers} workers, Count={args.count}, {pages} pages, {sum(map(len, data)) / 1e6:.1f} MB")
    print(f"{'row':34} {'wall s':>8} {'client cpu s':>13} {'requests':>9}")
    for label, wall, used, n in rows:
        print(f"{label:34} {wall:8.2f} {'' if used is None else f'{used:13.2f}':>13} {n:9d}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"client peak RSS {rss:.0f} MB")
    child.terminate()


if __name__ == "__main__":
    main()
