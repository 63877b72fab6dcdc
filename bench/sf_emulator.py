"""SuccessFactors emulator benchmark: how fast a connector-shaped full pull runs against it.

    python bench/sf_emulator.py [--workers 10000] [--page-size 1000]

Measures, in this process: start-up (org generation, EmpJob history, client key pair), a
full ``User`` pull with ``$expand=manager`` following ``__next``, a snapshot-paged pull, and
the full EmpJob history (``fromDate=1900-01-01&toDate=9999-12-31``). The emulator recomputes
each page from the org, so seconds grow with workers × pages: compare runs, not vendors.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import requests

from okrsync.sandbox import SandboxOrg, create_emulator, serve


def _pull(session: requests.Session, url: str, params: dict[str, str]) -> tuple[int, int]:
    r = session.get(url, params={"$format": "json", **params}, timeout=120)
    r.raise_for_status()
    body: dict[str, Any] = r.json()["d"]
    rows, pages = len(body["results"]), 1
    while body.get("__next"):
        r = session.get(body["__next"], timeout=120)
        r.raise_for_status()
        body = r.json()["d"]
        rows += len(body["results"])
        pages += 1
    return rows, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    emulator = create_emulator("successfactors", SandboxOrg(args.workers, seed=1))
    print(f"start-up          {time.perf_counter() - t0:7.2f} s  ({args.workers} workers)")
    with serve(emulator) as run:
        session = requests.Session()
        session.trust_env = False
        session.auth = (f"{emulator.api_user}@{emulator.company_id}", emulator.basic_password)  # type: ignore[attr-defined]
        url = f"{run.url}/odata/v2"
        everyone = "status in 't','f','T','F','e','d'"
        cases = [
            (
                "User cursor",
                "User",
                {
                    "$filter": everyone,
                    "$expand": "manager",
                    "customPageSize": str(args.page_size),
                    "$select": "userId,email,status,lastModifiedDateTime,manager/userId",
                },
            ),
            (
                "User snapshot",
                "User",
                {"$filter": everyone, "paging": "snapshot", "customPageSize": str(args.page_size)},
            ),
            (
                "EmpJob history",
                "EmpJob",
                {"fromDate": "1900-01-01", "toDate": "9999-12-31", "customPageSize": str(args.page_size)},
            ),
        ]
        for label, entity, params in cases:
            t = time.perf_counter()
            rows, pages = _pull(session, f"{url}/{entity}", params)
            took = time.perf_counter() - t
            print(f"{label:17} {took:7.2f} s  {rows} rows, {pages} pages, {rows / took:,.0f} rows/s")


if __name__ == "__main__":
    main()
