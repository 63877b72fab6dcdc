"""The Graph emulator at the issue's size: 100,000 workers served from its own process.

Issue 3 asks for a full ``$top=999`` listing of 100,000 users at ≥ 20,000 users/s with the
server under 1 GB. Timing is a benchmark's job here (``bench/graph_emulator.py``, shared
noisy cores), so this test asserts what cannot be noise — every user, every manager, the
minimum number of pages, the server's memory — and reports the throughput it saw in the CI
log's summary.
"""

from __future__ import annotations

import math

import psutil

from bench.graph_emulator import list_all, session_for, start_server
from tests.reliability.summary import record

WORKERS = 100_000


def test_a_100000_user_listing_is_complete_minimal_and_under_1_gb() -> None:
    proc, info = start_server(WORKERS)
    try:
        server = psutil.Process(info["pid"])
        session = session_for(info["connection"])
        users, managed, pages, seconds = list_all(session, info["url"])
        rss = server.memory_info().rss
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert users == WORKERS and managed == WORKERS - 1  # one top of the org
    assert pages == math.ceil(WORKERS / 999)
    assert rss < 2**30, f"emulator RSS {rss / 2**20:.0f} MiB"
    record("graph_100k_users_per_s", round(users / seconds))
    record("graph_100k_rss_mib", round(rss / 2**20))
