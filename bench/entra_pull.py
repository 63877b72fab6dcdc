"""Entra pull benchmark: /users with managers from the Graph emulator, three clients on the same pages.

    python bench/entra_pull.py [--workers 100000] [--peer-users 3000]

The emulator runs in its own process (``python -m okrsync.sandbox.graph``), so its CPU is not
counted; every client runs in its own child process, so CPU and peak RSS are per client. All
three ask for the same query — ``$select`` of the fields okrsync's default mapping reads,
``$expand=manager($select=id)``, ``$top=999`` — and follow ``@odata.nextLink``:

1. floor   — ``requests`` + ``json.loads`` of every page, nothing done with the users;
2. peer    — msgraph-sdk (kiota) ``users.get`` + ``PageIterator``; it spends ~10 ms per user,
             so by default it reads the first ``--peer-users`` users and its figures are
             extrapolated per user to the full directory (said so in the output);
3. okrsync — ``EntraConnector.pull`` (full) + the ``entra`` mapping + ``Person`` for every user.

A token is obtained with msal by every client before its clock starts. Figures are for this
run on this machine: compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import time
from typing import Any

SCOPE = ["https://graph.microsoft.com/.default"]


def _shape() -> Any:
    from okrsync.connectors.entra.pull import UserShape
    from okrsync.mapping import load_mapping

    return UserShape.build([load_mapping("entra")], "id")


def _session(conn: dict[str, Any]) -> Any:
    import requests

    s = requests.Session()
    s.trust_env = False
    s.verify = conn["ca_bundle"]
    return s


def _token(conn: dict[str, Any]) -> str:
    import msal

    app = msal.ConfidentialClientApplication(
        conn["client_id"],
        client_credential=conn["client_secret"],
        authority=f"{conn['login_url']}/{conn['tenant_id']}",
        instance_discovery=False,
        http_client=_session(conn),
    )
    return str(app.acquire_token_for_client(scopes=SCOPE)["access_token"])


def _floor(conn: dict[str, Any], limit: int | None) -> dict[str, Any]:
    from okrsync.connectors.entra.graph import relative_url

    shape = _shape()
    session = _session(conn)
    session.headers["Authorization"] = f"Bearer {_token(conn)}"
    url: str | None = conn["graph_url"] + "/v1.0" + relative_url("/users", shape.list_params(999, None))
    t0, c0 = time.perf_counter(), time.process_time()
    users = requests_made = 0
    while url:
        resp = session.get(url, timeout=120)
        requests_made += 1
        page = json.loads(resp.content)
        users += len(page["value"])
        url = page.get("@odata.nextLink")
    return {
        "wall": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,
        "requests": requests_made,
        "users": users,
    }


def _peer(conn: dict[str, Any], limit: int | None) -> dict[str, Any]:
    import asyncio
    import ssl
    import warnings

    import httpx
    from azure.core.credentials import AccessToken
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory
    from msgraph_core.tasks.page_iterator import PageIterator

    warnings.simplefilter("ignore", DeprecationWarning)
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    token = _token(conn)
    shape = _shape()

    class Credential:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(token, int(time.time()) + 3000)

    counted = {"requests": 0}

    async def count(request: httpx.Request) -> None:
        counted["requests"] += 1

    async def run() -> int:
        auth = AzureIdentityAuthenticationProvider(Credential(), allowed_hosts=["127.0.0.1"])
        verify = ssl.create_default_context(cafile=conn["ca_bundle"])
        client = httpx.AsyncClient(
            verify=verify, trust_env=False, timeout=120, event_hooks={"request": [count]}
        )
        adapter = GraphRequestAdapter(
            auth, client=GraphClientFactory.create_with_default_middleware(client=client)
        )
        adapter.base_url = conn["graph_url"] + "/v1.0"
        graph = GraphServiceClient(request_adapter=adapter)
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=list(shape.select), expand=[shape.expand], top=999
        )
        first = await graph.users.get(request_configuration=RequestConfiguration(query_parameters=query))
        seen = 0

        def keep(user: Any) -> bool:
            nonlocal seen
            seen += 1
            _ = (user.id, user.manager.id if user.manager else None)
            return limit is None or seen < limit

        await PageIterator(first, graph.request_adapter).iterate(keep)
        return seen

    t0, c0 = time.perf_counter(), time.process_time()
    users = asyncio.run(run())
    return {
        "wall": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,
        "requests": counted["requests"],
        "users": users,
    }


def _okrsync(conn: dict[str, Any], limit: int | None) -> dict[str, Any]:
    from datetime import UTC, datetime

    from okrsync.connectors.base import ConnectorContext, PullRequest
    from okrsync.connectors.entra import EntraConfig, EntraConnector
    from okrsync.io import person_from_row
    from okrsync.mapping import load_mapping

    connector = EntraConnector(EntraConfig(**conn), ConnectorContext("bench"))
    connector.graph.auth.token()  # login before the clock starts, like the other clients
    mapping = load_mapping("entra")
    t0, c0 = time.perf_counter(), time.process_time()
    pull = connector.pull(PullRequest(cursor=None, watermark=datetime.now(UTC), full=True))
    people = [person_from_row(mapping.apply(raw.data), raw.ref) for raw in pull.records]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    with_manager = sum(1 for p in people if p.manager_id)
    return {
        "wall": wall,
        "cpu": cpu,
        "requests": pull.requests,
        "users": len(people),
        "with_manager": with_manager,
    }


CLIENTS = {"floor": _floor, "peer": _peer, "okrsync": _okrsync}


def _child(kind: str, conn: dict[str, Any], limit: int | None, queue: Any) -> None:
    out = CLIENTS[kind](conn, limit)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(out)


def measure(kind: str, conn: dict[str, Any], limit: int | None = None) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kind, conn, limit, queue))
    proc.start()
    result: dict[str, Any] = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--peer-users", type=int, default=3_000, help="0 = the whole directory")
    args = parser.parse_args()

    server = subprocess.Popen(
        [sys.executable, "-m", "okrsync.sandbox.graph", "--workers", str(args.workers)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        conn = info["connection"]
        print(f"emulator: {args.workers:,} users, pid {info['pid']}, started in {info['startup_seconds']}s")
        warm = measure("floor", conn)  # fills the emulator's per-shape JSON cache
        print(f"emulator throughput (cold pass): {warm['users'] / warm['wall']:,.0f} users/s")
        rows = {"floor": measure("floor", conn)}
        peer_limit = args.peer_users or None
        rows["peer"] = measure("peer", conn, peer_limit)
        rows["okrsync"] = measure("okrsync", conn)
    finally:
        server.terminate()
        server.wait(timeout=30)

    n = rows["floor"]["users"]
    peer = rows["peer"]
    if peer["users"] < n:
        scale = n / peer["users"]
        print(
            f"peer read {peer['users']:,} users ({peer['requests']} requests); wall and CPU extrapolated "
            f"per user ×{scale:.1f} to {n:,} (requests shown as measured)"
        )
        peer["wall"] *= scale
        peer["cpu"] *= scale
    print(f"\n{'client':<10}{'users':>10}{'requests':>10}{'wall s':>10}{'CPU s':>10}{'peak RSS MB':>13}")
    for name, r in rows.items():
        print(
            f"{name:<10}{r['users']:>10,}{r['requests']:>10}{r['wall']:>10.2f}{r['cpu']:>10.2f}{r['peak_rss_mb']:>13.0f}"
        )
    ok, fl = rows["okrsync"], rows["floor"]
    print(
        f"\nokrsync/floor: CPU {ok['cpu'] / fl['cpu']:.2f}x, wall {ok['wall'] / fl['wall']:.2f}x"
        f"\nokrsync/peer:  CPU {ok['cpu'] / peer['cpu']:.3f}x, wall {ok['wall'] / peer['wall']:.3f}x"
        f"\nokrsync requests: {ok['requests']} (= ceil(N/999) = {-(-n // 999)} list pages + 1 delta token);"
        f" users with a manager: {ok['with_manager']:,}"
    )


if __name__ == "__main__":
    main()
