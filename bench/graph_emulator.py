"""Throughput of the Graph emulator: a full ``/v1.0/users`` read of a large tenant.

Starts ``python -m okrsync.sandbox.graph`` in its own process (so client and server do not
share a GIL), lists every user with plain ``requests`` the way a connector does
(``$top=999``, a typical ``$select``, ``$expand=manager($select=id)``, following
``@odata.nextLink``), and prints users/s for a cold read (fragments encoded on the way) and
a warm one (fragments cached), plus the server's RSS.

    python bench/graph_emulator.py --workers 100000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import psutil
import requests

TARGET_USERS_PER_S = 20_000  # the requirement for a full $top=999 listing of 100,000 users
MAX_RSS = 2**30
SELECT = "id,displayName,mail,userPrincipalName,jobTitle,department,employeeId,accountEnabled"


def start_server(workers: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "okrsync.sandbox.graph", "--workers", str(workers)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("the emulator exited before it listened")
    return proc, json.loads(line)


def session_for(conn: dict[str, Any]) -> requests.Session:
    """A session that really uses the sandbox CA (REQUESTS_CA_BUNDLE would win with trust_env on)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = conn["ca_bundle"]
    token = session.post(
        f"{conn['login_url']}/{conn['tenant_id']}/oauth2/v2.0/token",
        data={
            "client_id": conn["client_id"],
            "client_secret": conn["client_secret"],
            "scope": "https://graph.microsoft.com/.default",
            "grant_type": "client_credentials",
        },
        timeout=30,
    ).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def list_all(session: requests.Session, base: str) -> tuple[int, int, int, float]:
    """(users, with a manager, pages, seconds) for one full listing."""
    url: str | None = f"{base}/v1.0/users?$select={SELECT}&$expand=manager($select=id)&$top=999"
    users = managed = pages = 0
    started = time.perf_counter()
    while url:
        resp = session.get(url, timeout=120)
        resp.raise_for_status()
        body = resp.json()
        users += len(body["value"])
        managed += sum(1 for u in body["value"] if "manager" in u)
        pages += 1
        url = body.get("@odata.nextLink")
    return users, managed, pages, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="listings; the first one is cold")
    args = parser.parse_args()

    proc, info = start_server(args.workers)
    try:
        server = psutil.Process(info["pid"])
        print(
            f"emulator: {args.workers:,} workers, started in {info['startup_seconds']} s, "
            f"RSS {server.memory_info().rss / 2**20:.0f} MiB"
        )
        session = session_for(info["connection"])
        rates: list[float] = []
        peak = 0
        for n in range(args.rounds):
            users, managed, pages, seconds = list_all(session, info["url"])
            label = "cold" if n == 0 else "warm"
            rss = server.memory_info().rss
            peak = max(peak, rss)
            rates.append(users / seconds)
            print(
                f"{label}: {users:,} users ({managed:,} with manager) in {pages} pages, {seconds:.2f} s "
                f"= {users / seconds:,.0f} users/s; server RSS {rss / 2**20:.0f} MiB"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    met = bool(rates) and rates[0] >= TARGET_USERS_PER_S and peak < MAX_RSS
    print(
        f"target (issue): cold >= {TARGET_USERS_PER_S:,} users/s and RSS < {MAX_RSS // 2**20} MiB: "
        + ("met" if met else "NOT met")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
