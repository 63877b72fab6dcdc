"""The reliability suites' pipeline: Workday → (Entra people + managers, SCIM users, SuccessFactors goals).

Emulators run in the test process on free ports; SCIM is scim2-server's WSGI app served in
process (``okrsync.demo.ScimSandbox``, the same server ``tests/connectors/scim`` runs as a
subprocess). :meth:`Pipeline.target_state` reads what each target really holds, straight from
the emulator or the server (not through okrsync), so runs can be compared for convergence
and duplicates.
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests

from okrsync.config import parse_config
from okrsync.demo import ScimSandbox
from okrsync.engine import SyncEngine
from okrsync.http import HttpClient
from okrsync.models import KeyResult, Objective, ObjectiveLevel, OkrSet, Owner
from okrsync.okrs import dump_okrs
from okrsync.report import RunReport
from okrsync.sandbox import FaultSpec, RunningEmulator, SandboxOrg, create_emulator, serve
from okrsync.state import open_state

SYSTEMS = ("workday", "entra", "successfactors")
RETRIED_FAULTS = ("429", "500", "503", "reset", "truncate")


def control(run: RunningEmulator, path: str, body: Any = None) -> Any:
    """GET/POST a ``/_sandbox/...`` route (never faulted, never authenticated)."""
    with requests.Session() as session:
        session.trust_env = False
        method = "POST" if body is not None else "GET"
        resp = session.request(method, f"{run.url}{path}", json=body, verify=run.ca_path or True, timeout=60)
        resp.raise_for_status()
        return resp.json()


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def to_toml(data: dict[str, Any]) -> str:
    out: list[str] = []
    for section, body in data.items():
        if section in {"connections", "jobs"}:
            for name, table in body.items():
                out.append(f"[{section}.{name}]")
                out += [f"{k} = {toml_value(v)}" for k, v in table.items()]
                out.append("")
        else:
            out.append(f"[{section}]")
            out += [f"{k} = {toml_value(v)}" for k, v in body.items()]
            out.append("")
    return "\n".join(out)


def http_clients(obj: Any, depth: int = 3) -> list[HttpClient]:
    """The HttpClients a connector holds (directly or in its helpers), each once."""
    found: dict[int, HttpClient] = {}

    def walk(o: Any, d: int) -> None:
        if isinstance(o, HttpClient):
            found[id(o)] = o
            return
        if d == 0 or not hasattr(o, "__dict__"):
            return
        for v in vars(o).values():
            if isinstance(v, HttpClient) or (
                hasattr(v, "__dict__") and type(v).__module__.startswith("okrsync")
            ):
                walk(v, d - 1)

    walk(obj, depth)
    return list(found.values())


class Pipeline:
    """One nightly job over fresh emulators: ``sync()`` in process, ``config_path`` for the CLI."""

    def __init__(
        self,
        folder: Path,
        workers: int = 120,
        *,
        seed: int = 5,
        faults: str | None = None,
        scim: bool = True,
        goals: bool = True,
        max_deletes: str = "50%",
        scim_token: str | None = None,
        emulator_options: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.org = SandboxOrg(workers, seed=seed)
        self._stack = ExitStack()
        options = emulator_options or {}
        spec = FaultSpec.parse(faults)
        self.runs: dict[str, RunningEmulator] = {}
        self.http_retries: dict[str, int] = {}
        for system in SYSTEMS:
            extra = {"directory": "empty"} if system == "entra" else {}
            emulator = create_emulator(system, self.org, faults=spec, **{**extra, **options.get(system, {})})
            self.runs[system] = self._stack.enter_context(serve(emulator))
        self.scim: ScimSandbox | None = ScimSandbox([scim_token] if scim_token else None) if scim else None
        if self.scim is not None:
            self._stack.callback(self.scim.stop)
        targets = ["entra"] + (["scim"] if scim else [])
        connections: dict[str, Any] = {
            "workday": {**self.runs["workday"].connection(), "max_attempts": 8},
            "entra": {**self.runs["entra"].connection(), "max_attempts": 8},
            "successfactors": {
                **self.runs["successfactors"].connection(),
                "person_key": "empId",
                "max_attempts": 8,
            },
        }
        if self.scim is not None:
            connections["scim"] = {"type": "scim", "base_url": self.scim.base_url}
            if scim_token:
                connections["scim"]["token"] = scim_token
        self.scim_token = scim_token
        job: dict[str, Any] = {
            "source": "workday",
            "targets": targets,
            "max_deletes": max_deletes,
            "inactive_manager": "nearest_active",
        }
        if goals:
            ceo = next(p.id for p in self.org.expected_people() if p.manager_id is None)
            okrs = OkrSet(
                objectives=(
                    Objective(id="O-1", title="Grow", owner=Owner(id=ceo), level=ObjectiveLevel.COMPANY),
                ),
                key_results=(KeyResult(id="KR-1", objective_id="O-1", title="ARR"),),
            )
            dump_okrs(okrs, folder / "okrs.yaml")
            job.update(okrs="okrs.yaml", cascade_depth=2, goal_targets=["successfactors"])
        self.data: dict[str, Any] = {
            "state": {"path": "state.db"},
            "reports": {"dir": "reports"},
            "connections": connections,
            "jobs": {"nightly": job},
        }
        self.config_path = folder / "okrsync.toml"
        self.config_path.write_text(to_toml(self.data), encoding="utf-8")

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- running ----
    def sync(self, **kwargs: Any) -> RunReport:
        config = parse_config(self.data, base_dir=self.folder)
        state = open_state(str(self.folder / "state.db"))
        engine = SyncEngine(config, state)
        try:
            return engine.sync("nightly", **kwargs)
        finally:
            self.http_retries = {
                name: sum(c.stats.retries for c in http_clients(conn))
                for name, conn in engine._connectors.items()
            }
            engine.close()
            state.close()

    def set_faults(self, spec: str) -> None:
        for run in self.runs.values():
            control(run, "/_sandbox/faults", {"spec": spec})

    def injected(self) -> Counter[str]:
        """Faults the emulators injected so far (``/_sandbox/stats``), summed over systems."""
        total: Counter[str] = Counter()
        for run in self.runs.values():
            total.update(control(run, "/_sandbox/stats")["faults"])
        return total

    # ---- what the targets hold, read around okrsync ----
    def entra_users(self) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = control(self.runs["entra"], "/_sandbox/directory")["users"]
        return users

    def goal_rows(self) -> list[dict[str, Any]]:
        goals: Any = self.runs["successfactors"].emulator.goals  # type: ignore[attr-defined]
        return [r for rows in goals.rows.values() for r in rows.values()]

    def scim_users(self) -> list[dict[str, Any]]:
        if self.scim is None:
            return []
        out: list[dict[str, Any]] = []
        start = 1
        while True:
            headers = {"Authorization": f"Bearer {self.scim_token}"} if self.scim_token else {}
            page = requests.get(
                f"{self.scim.base_url}/Users",
                params={"startIndex": start, "count": 500},
                headers=headers,
                timeout=60,
            ).json()
            resources = page.get("Resources") or []
            out += resources
            start += len(resources)
            if not resources or start > int(page.get("totalResults") or 0):
                return out

    def target_state(self) -> dict[str, Any]:
        """Every target's records in okrsync-independent terms, plus the duplicates found."""
        users = self.entra_users()
        eid = {u["id"]: u.get("employeeId") for u in users}
        entra = {
            u.get("employeeId"): (
                u.get("displayName"),
                u.get("jobTitle"),
                u.get("department"),
                u.get("accountEnabled"),
                eid.get(u["manager"]) if u.get("manager") else None,
            )
            for u in users
        }
        goal_rows = self.goal_rows()
        goal_of = {r["id"]: r for r in goal_rows if "userId" in r}

        def goal_key(row: dict[str, Any] | None) -> Any:
            # SF goals have no alignment field: a goal is its owner and name, a milestone its text
            return None if row is None else (row.get("userId"), row.get("name"))

        goals = Counter(
            goal_key(r)
            if "userId" in r
            else ("milestone", goal_key(goal_of.get(r.get("objId"))), r.get("description"))
            for r in goal_rows
        )
        scim_users = self.scim_users()
        ext = {u["id"]: u.get("externalId") for u in scim_users}
        ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        scim = {
            u.get("externalId"): (
                u.get("userName"),
                u.get("active"),
                ext.get(((u.get(ent) or {}).get("manager") or {}).get("value")),
            )
            for u in scim_users
        }
        duplicates = [f"entra {k}" for k, n in Counter(u.get("employeeId") for u in users).items() if n > 1]
        duplicates += [f"goal {k}" for k, n in goals.items() if n > 1]
        duplicates += [
            f"scim {k}" for k, n in Counter(u.get("externalId") for u in scim_users).items() if n > 1
        ]
        return {"entra": entra, "goals": set(goals), "scim": scim, "duplicates": duplicates}
