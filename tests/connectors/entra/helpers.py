"""Shared helpers: the entra connector on a running Graph emulator, pulls mapped like the engine, jobs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from okrsync.config import parse_config
from okrsync.connectors.base import ConnectorContext, Pull, PullRequest
from okrsync.connectors.entra import EntraConfig, EntraConnector
from okrsync.engine import SyncEngine
from okrsync.io import person_from_row, write_people
from okrsync.mapping import load_mapping
from okrsync.models import Person
from okrsync.sandbox import RunningEmulator, SandboxOrg
from okrsync.sandbox.graph import GraphEmulator
from okrsync.state import open_state

MAPPING = load_mapping("entra")


def connector(run: RunningEmulator, **overrides: Any) -> EntraConnector:
    return EntraConnector(EntraConfig(**{**run.connection(), **overrides}), ConnectorContext("entra"))


def pull(conn: EntraConnector, cursor: str | None = None) -> tuple[Pull, dict[str, Person], list[str]]:
    """Pull and map; returns the pull, people by id, and the keys of records marked removed."""
    result = conn.pull(PullRequest(cursor=cursor, watermark=datetime.now(UTC), full=cursor is None))
    people: dict[str, Person] = {}
    removed: list[str] = []
    for raw in result.records:
        if raw.removed:
            removed.append(raw.key)
            continue
        person = person_from_row(MAPPING.apply(raw.data), raw.ref)
        assert person.id not in people, f"duplicate record {person.id}"
        people[person.id] = person
    return result, people, removed


def emulator(run: RunningEmulator) -> GraphEmulator:
    assert isinstance(run.emulator, GraphEmulator)
    return run.emulator


def control(run: RunningEmulator, path: str, body: Any = None) -> Any:
    """POST/GET a ``/_sandbox/...`` control route (no auth, no faults)."""
    session = requests.Session()
    session.trust_env = False
    method = "POST" if body is not None else "GET"
    resp = session.request(method, f"{run.url}{path}", json=body, verify=run.ca_path, timeout=60)
    resp.raise_for_status()
    return resp.json()


def set_faults(run: RunningEmulator, spec: str) -> None:
    control(run, "/_sandbox/faults", {"spec": spec})


def count(run: RunningEmulator, prefix: str) -> int:
    """Requests the emulator served whose ``METHOD /path`` starts with ``prefix``."""
    return sum(n for key, n in emulator(run).requests.items() if key.startswith(prefix))


def token_requests(run: RunningEmulator) -> int:
    return sum(n for key, n in emulator(run).requests.items() if key.endswith("/oauth2/v2.0/token"))


def expected_managers(org: SandboxOrg) -> dict[str, str | None]:
    return {p.id: p.manager_id for p in org.expected_people()}


def directory_by_employee_id(run: RunningEmulator) -> dict[str, dict[str, Any]]:
    """``/_sandbox/directory`` users keyed by employeeId, ``manager`` as the manager's employeeId."""
    users = control(run, "/_sandbox/directory")["users"]
    eid_of = {u["id"]: u.get("employeeId") for u in users}
    out = {}
    for u in users:
        if u.get("employeeId"):
            out[u["employeeId"]] = {**u, "manager": eid_of.get(u["manager"]) if u["manager"] else None}
    return out


class Job:
    """A real okrsync job on disk: state, a source and targets, run through SyncEngine."""

    def __init__(self, tmp: Path, connections: dict[str, dict[str, Any]], source: str, targets: list[str]):
        self.tmp = tmp
        self.data = {
            "state": {"path": str(tmp / "state.db")},
            "connections": connections,
            "jobs": {"job": {"source": source, "targets": targets, "max_deletes": "50%"}},
        }
        self.state = open_state(str(tmp / "state.db"))

    @contextmanager
    def engine(self) -> Iterator[SyncEngine]:
        engine = SyncEngine(parse_config(self.data, base_dir=self.tmp), self.state)
        try:
            yield engine
        finally:
            engine.close()

    def sync(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run the job once; returns the report and, per entra connection, its Graph client figures."""
        with self.engine() as engine:
            report = engine.sync("job", **kwargs)
            stats = {}
            for name, conn in engine._connectors.items():
                if isinstance(conn, EntraConnector):
                    g = conn.graph
                    stats[name] = {
                        "requests": g.http.stats.requests,
                        "retries": g.http.stats.retries,
                        "batch_calls": g.batch_calls,
                        "batch_items": g.batch_items,
                    }
            return report.to_dict(), stats

    def snapshot(self, key: str = "source") -> dict[str, Person]:
        snap = self.state.get_snapshot("job", key)
        assert snap is not None
        return snap.people_by_id()


def people_file(tmp: Path, people: list[Person], name: str = "people.jsonl") -> dict[str, Any]:
    write_people(tmp / name, people)
    return {"type": "files", "path": name}
