"""SuccessFactors org pull benchmark: floor vs pyodata vs okrsync on the same emulator pages.

    python bench/sf_pull.py [--users 100000] [--page-size 1000]

The emulator runs in a separate process (``python -m okrsync.sandbox.successfactors``), and
each client runs in its own child process, so client CPU and peak RSS are the client's alone:

* floor: ``requests`` + ``json.loads`` of the ``User`` pages (all statuses, manager expanded),
  following ``__next``, doing nothing with the records;
* floor-okrsync-pages: the same for exactly the pages the connector reads (its ``User`` query and
  its effective-dated ``EmpJob`` scan): the floor ``okrsync/floor`` should be read against;
* pyodata: the same entity, filter, ``$expand`` and page size, following ``__next``
  (``QueryRequest.next_url``), touching ``userId`` and ``manager.userId`` of every entity;
* okrsync: the connector's full pull (SAML-bearer token, EmpJob effective dating, User pages)
  and the default mapping to canonical ``Person`` models, as the engine does.

Each client's set-up (imports, session, login or ``$metadata``) happens before its clock starts;
the clock covers the pull. The emulator is warmed first (it renders each row once per query
shape) and its throughput is printed. Figures are for this run on this machine; compare the
ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

Run = Callable[[], dict[str, Any]]

EVERYONE = "status in 't','f','T','F','e','d'"
SELECT = (
    "userId,username,email,firstName,lastName,displayName,status,title,department,division,location,"
    "empId,hireDate,custom01,lastModifiedDateTime,manager/userId,hr/userId,matrixManager/userId"
)
EXPAND = "manager,hr,matrixManager"


def _session(info: dict[str, Any]) -> Any:
    import requests

    conn = info["connection"]
    s = requests.Session()
    s.trust_env = False
    s.auth = (f"{conn['user_id']}@{conn['company_id']}", info["basic_password"])
    return s


def _decode_pages(s: Any, url: str, params: dict[str, str]) -> tuple[int, int]:
    """``requests`` + ``json.loads`` of every page of one query, following ``__next``."""
    r = s.get(url, params=params, timeout=600)
    rows, requests_ = 0, 1
    while True:
        d = json.loads(r.content)["d"]
        rows += len(d["results"])
        if not d.get("__next"):
            return rows, requests_
        r = s.get(d["__next"], timeout=600)
        requests_ += 1


def _floor(info: dict[str, Any], page_size: int) -> Run:
    s = _session(info)
    params = {
        "$format": "json",
        "$filter": EVERYONE,
        "$select": SELECT,
        "$expand": EXPAND,
        "customPageSize": str(page_size),
        "paging": "snapshot",
    }

    def run() -> dict[str, Any]:
        rows, requests_ = _decode_pages(s, f"{info['url']}/odata/v2/User", params)
        return {"records": rows, "requests": requests_}

    return run


def _floor_okrsync_pages(info: dict[str, Any], page_size: int) -> Run:
    """The floor of exactly the pages the connector reads: its User query and its EmpJob scan."""
    from datetime import UTC, datetime, timedelta

    from okrsync.connectors.successfactors import SuccessFactorsConfig
    from okrsync.connectors.successfactors.odata import ALL_STATUSES
    from okrsync.connectors.successfactors.pull import JOB_FIELDS, OrgPuller

    cfg = SuccessFactorsConfig(**{**info["connection"], "page_size": page_size})
    user_params = {**OrgPuller(None, cfg, lambda: 0).user_params, "$filter": ALL_STATUSES}  # type: ignore[arg-type]
    today = datetime.now(UTC).date()
    job_params = {
        "$select": ",".join(("userId", "startDate", "seqNumber", *JOB_FIELDS)),
        "fromDate": today.isoformat(),
        "toDate": (today + timedelta(days=cfg.lookahead_days)).isoformat(),
    }
    common = {"$format": "json", "customPageSize": str(page_size), "paging": cfg.paging}
    s = _session(info)

    def run() -> dict[str, Any]:
        jobs, job_requests = _decode_pages(s, f"{info['url']}/odata/v2/EmpJob", {**job_params, **common})
        rows, requests_ = _decode_pages(s, f"{info['url']}/odata/v2/User", {**user_params, **common})
        return {"records": rows, "requests": requests_ + job_requests, "job_slices": jobs}

    return run


def _pyodata(info: dict[str, Any], page_size: int) -> Run:
    import pyodata

    s = _session(info)
    client = pyodata.Client(info["url"] + "/odata/v2", s)  # reads $metadata (one request, before the clock)
    users = client.entity_sets.User

    def query() -> Any:
        return (
            users.get_entities()
            .filter(EVERYONE)
            .expand(EXPAND)
            .custom("customPageSize", str(page_size))
            .custom("paging", "snapshot")
        )

    def run() -> dict[str, Any]:
        page = query().execute()
        rows, requests_ = 0, 1
        while True:
            for u in page:
                _ = u.userId, (u.manager.userId if u.manager else None)
                rows += 1
            if not page.next_url:
                break
            page = query().next_url(page.next_url).execute()
            requests_ += 1
        return {"records": rows, "requests": requests_}

    return run


def _okrsync(info: dict[str, Any], page_size: int) -> Run:
    from datetime import UTC, datetime

    from okrsync.connectors.base import ConnectorContext, PullRequest
    from okrsync.connectors.successfactors import SuccessFactorsConfig, SuccessFactorsConnector
    from okrsync.io import person_from_row
    from okrsync.mapping import load_mapping

    cfg = SuccessFactorsConfig(**{**info["connection"], "page_size": page_size, "timeout": 600})
    conn = SuccessFactorsConnector(cfg, ConnectorContext("sf"))
    conn.auth.header()  # SAML-bearer login before the clock, like pyodata's $metadata read
    mapping = load_mapping("successfactors")

    def run() -> dict[str, Any]:
        pull = conn.pull(PullRequest(cursor=None, watermark=datetime.now(UTC), full=True))
        people = [person_from_row(mapping.apply(raw.data), raw.ref) for raw in pull.records]
        conn.close()
        return {"records": len(people), "requests": pull.requests, "notices": pull.notices}

    return run


CLIENTS: dict[str, Callable[[dict[str, Any], int], Run]] = {
    "floor": _floor,
    "floor-okrsync-pages": _floor_okrsync_pages,
    "pyodata": _pyodata,
    "okrsync": _okrsync,
}


def _child(kind: str, info: dict[str, Any], page_size: int, queue: Any) -> None:
    run = CLIENTS[kind](info, page_size)  # imports, session, login: not timed
    t0, c0 = time.perf_counter(), time.process_time()
    extra = run()
    queue.put(
        {
            "kind": kind,
            "wall": time.perf_counter() - t0,
            "cpu": time.process_time() - c0,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            **extra,
        }
    )


def _run(kind: str, info: dict[str, Any], page_size: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(kind, info, page_size, queue))
    p.start()
    result: dict[str, Any] = queue.get()
    p.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--only", default=",".join(CLIENTS))
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "okrsync.sandbox.successfactors", "--workers", str(args.users)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        print(f"emulator: {args.users} users, start-up {info['startup_seconds']} s (pid {info['pid']})")
        # the emulator renders each row once per query shape, then serves it encoded: warm both shapes
        cold = [_run(kind, info, args.page_size) for kind in ("floor", "floor-okrsync-pages")]
        warm = _run("floor", info, args.page_size)
        print(
            f"emulator throughput (User pages): cold {cold[0]['records'] / cold[0]['wall']:,.0f} users/s, "
            f"warm {warm['records'] / warm['wall']:,.0f} users/s"
        )
        rows = []
        for kind in args.only.split(","):
            r = _run(kind, info, args.page_size)
            rows.append(r)
            print(
                f"{kind:20} wall {r['wall']:7.2f} s  client cpu {r['cpu']:7.2f} s  "
                f"requests {r['requests']:4}  "
                f"records {r['records']:7}  peak rss {r['rss_mb']:6.0f} MB"
                + (f"  notices {r['notices']}" if r.get("notices") else ""),
                flush=True,
            )
        by = {r["kind"]: r for r in rows}
        if "okrsync" in by:
            ok = by["okrsync"]
            for ref in ("floor", "floor-okrsync-pages", "pyodata"):
                if ref in by:
                    print(
                        f"okrsync/{ref}: wall {ok['wall'] / by[ref]['wall']:.2f}x  "
                        f"client cpu {ok['cpu'] / by[ref]['cpu']:.2f}x"
                    )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
