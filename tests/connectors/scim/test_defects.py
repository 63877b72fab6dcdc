"""Cycles and dangling managers: scim2-server stores them happily, so okrsync must never write them.

Also the source side: a directory that holds such defects (written behind okrsync's back) is
read by the scim connector and the engine reports them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner

from okrsync.cli import main
from okrsync.connectors.scim.client import ENTERPRISE, PATCH_OP
from okrsync.io import read_people
from okrsync.sandbox.orgs import SandboxOrg
from tests.connectors.scim.conftest import StartServer
from tests.connectors.scim.helpers import ScimJob

MANAGER_PATH = f"{ENTERPRISE}:manager"


def manager_graph(users: list[dict[str, Any]]) -> dict[str, str | None]:
    return {u["id"]: u.get(ENTERPRISE, {}).get("manager", {}).get("value") for u in users}


def loops_and_dangling(graph: dict[str, str | None]) -> tuple[set[str], set[str]]:
    dangling = {uid for uid, m in graph.items() if m is not None and m not in graph}
    in_loop: set[str] = set()
    for start in graph:
        seen: list[str] = []
        node: str | None = start
        while node is not None and node in graph and node not in seen:
            seen.append(node)
            node = graph[node]
        if node is not None and node in seen:
            in_loop.update(seen[seen.index(node) :])
    return in_loop, dangling


def patch_manager(base_url: str, user_id: str, manager_id: str) -> int:
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": MANAGER_PATH, "value": {"value": manager_id}}],
    }
    return requests.patch(
        f"{base_url}/Users/{user_id}",
        json=body,
        headers={"Content-Type": "application/scim+json"},
        timeout=30,
    ).status_code


def test_cycle_and_dangling_manager_are_reported_and_never_written(
    scim_servers: StartServer, tmp_path: Path
) -> None:
    server = scim_servers()
    org = SandboxOrg(300, seed=4, defects=["cycle", "dangling_manager"])
    people = org.expected_people()
    job = ScimJob(tmp_path, server.base_url)
    job.write_source(people)

    result = CliRunner().invoke(main, ["-c", str(job.config), "sync", "nightly", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 4 and report["status"] == "failed_records"  # records with problems
    problems = {p["code"]: p for p in report["problems"]}
    assert {"cycle", "dangling_manager"} <= set(problems)
    assert report["targets"]["scim"]["counts"] == {"create": 300} and not report["targets"]["scim"]["failed"]

    users = server.users()
    assert len(users) == 300
    graph = manager_graph(users)
    assert loops_and_dangling(graph) == (set(), set())
    by_pid = {u["externalId"]: u for u in users}
    dangling_pid, missing = problems["dangling_manager"]["person_ids"]
    assert missing not in by_pid
    assert MANAGER_PATH not in json.dumps(by_pid[dangling_pid]) and "manager" not in by_pid[dangling_pid].get(
        ENTERPRISE, {}
    ), 'dangling_manager = "none": written without a manager'
    assert len(problems["cycle"]["person_ids"]) == 3

    # the service itself accepts both defects, as api-notes §5 warns: the library must check
    a, b = problems["cycle"]["person_ids"][:2]
    assert patch_manager(server.base_url, by_pid[a]["id"], by_pid[b]["id"]) in (200, 204)
    assert patch_manager(server.base_url, by_pid[b]["id"], by_pid[a]["id"]) in (200, 204)
    assert patch_manager(server.base_url, by_pid[dangling_pid]["id"], "no-such-user") in (200, 204)
    in_loop, dangling = loops_and_dangling(manager_graph(server.users()))
    assert {by_pid[a]["id"], by_pid[b]["id"]} <= in_loop and dangling == {by_pid[dangling_pid]["id"]}

    # ... and okrsync reading that directory as a source reports them, in the canonical id space
    (tmp_path / "reverse.toml").write_text(
        '[state]\npath = "reverse.db"\n\n'
        f'[connections.scim]\ntype = "scim"\nbase_url = "{server.base_url}"\n\n'
        '[connections.out]\ntype = "files"\npath = "out.jsonl"\n\n'
        '[jobs.reverse]\nsource = "scim"\ntargets = ["out"]\n'
    )
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "reverse.toml"), "sync", "reverse", "--json"])
    report = json.loads(result.stdout)
    problems = {p["code"]: p for p in report["problems"]}
    assert set(problems["cycle"]["person_ids"]) == {a, b}
    assert problems["dangling_manager"]["person_ids"] == [dangling_pid, "no-such-user"]
    out = {p.id: p for p in read_people(tmp_path / "out.jsonl")}
    assert len(out) == 300
    expected = {p.id: p for p in people}
    untouched = [pid for pid in out if pid not in {a, b, dangling_pid} and expected[pid].manager_id in out]
    assert all(out[pid].manager_id == expected[pid].manager_id for pid in untouched)
    assert all(out[pid].title == expected[pid].title for pid in out)
