"""``okrsync demo``: the whole nightly story, offline, on the built-in sandbox with SQLite state.

The demo is the product's first impression and the smoke test of every release. It serves
the vendor emulators in this process on free ports (no network, no credentials) and runs the
real engine over them: **Workday** (SOAP ``Get_Workers``) → hierarchy check → a 3-level OKR
cascade → **Entra ID** people + managers, **SCIM** users (scim2-server, when installed) and
**SuccessFactors** goals → **Viva Learning** assignments (learning links: the company KRs' ``skill:``
tags matched against a small catalogue, ``learning-catalogue.yaml``, and recommended to the owners
of the KRs the cascade made); then it writes the org chart and the run report.

Rerun in the same folder, it is a nightly run with nothing to change. That is honest only if
the targets still hold what the first run wrote, so the emulated targets' state (Entra
directory and Viva Learning, SuccessFactors goals, SCIM resources) is saved as JSON in the folder
(``sandbox-state.json``) after each run and loaded into the fresh emulators before the next.
The source is deterministic (same seed, size and day → the same organisation).
"""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from okrsync.config import parse_config
from okrsync.engine import SyncEngine
from okrsync.errors import OkrSyncError
from okrsync.hierarchy import build_hierarchy
from okrsync.report import RunReport, write_run_report
from okrsync.sandbox import RunningEmulator, create_emulator, serve
from okrsync.sandbox.graph import GraphEmulator
from okrsync.sandbox.graph.learning import LearningApi
from okrsync.sandbox.orgs import SandboxOrg
from okrsync.state import open_state

DEMO_CONFIG = """\
# Written by `okrsync demo`. The demo's connections point at emulators that live only while
# `okrsync demo` runs (fresh ports and throwaway credentials each time), so they are not kept
# here; this file lets `okrsync -c okrsync.toml runs show ID` and `okrsync why PERSON` read the state.
[state]
path = "okrsync.db"

[reports]
dir = "reports"
"""

STATE_FILE = "sandbox-state.json"
SCIM_NOTE = "SCIM leg skipped: scim2-server is not installed (pip install scim2-server to include it)"
CATALOGUE_FILE = "learning-catalogue.yaml"
LEARNING_RULES: list[dict[str, Any]] = [
    # every KR with a `skill:` tag (and every KR cascaded from it) recommends the catalogue's
    # items with that skill to the KR's owner; the coaching KR also reaches the owner's team
    {"name": "skills", "audience": "owner"},
    {"name": "coaching teams", "key_results": ["CO-2-KR1"], "audience": "reports"},
]


@dataclass
class DemoResult:
    directory: Path
    report: RunReport
    managers: int = 0
    depth: int = 0
    problems: int = 0
    files: dict[str, str] = field(default_factory=dict)
    cascade: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    legs: list[str] = field(default_factory=list)
    learning: dict[str, int] = field(default_factory=dict)  # Viva Learning assignments: created/total

    @property
    def exit_code(self) -> int:
        return self.report.exit_code

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "run": self.report.to_dict(),
            "legs": self.legs,
            "managers": self.managers,
            "depth": self.depth,
            "problems": self.problems,
            "files": self.files,
            "cascade": self.cascade,
            "learning": self.learning,
            "notes": self.notes,
        }

    def lines(self) -> list[str]:
        r = self.report
        nightly = "nightly re-run: nothing changed" if r.status == "no_change" else f"status {r.status}"
        out = [
            f"okrsync demo in {self.directory}/ ({nightly})",
            f"  story: {' → '.join(self.legs)}",
            f"  Workday (sandbox): {r.pulled} workers pulled, {r.people} people, {self.managers} managers, "
            f"{self.depth} levels, {self.problems} hierarchy problem(s)",
        ]
        for t in r.targets.values():
            counts = ", ".join(f"{k} {v}" for k, v in sorted(t.counts.items())) or "no changes"
            out.append(f"  sync → {t.name}: {counts} ({t.written} written, {len(t.failed)} failed)")
        if self.cascade:
            out.append(
                f"  cascade: {self.cascade.get('objectives', 0)} objectives, "
                f"{self.cascade.get('key_results', 0)} key results over 3 levels of the manager chain"
            )
        for name, g in r.goals.items():
            out.append(
                f"  goals → {name}: {g['pushed']} pushed, {g['written']} written, {len(g['failed'])} failed"
            )
        for name, g in r.learning.items():
            out.append(
                f"  learning → {name} (Viva Learning): {g['links']} links, "
                f"{self.learning.get('created', 0)} assignments created "
                f"({self.learning.get('assignments', 0)} held), {g['written']} written, "
                f"{g['removed']} removed, {len(g['failed'])} failed"
            )
        for label, path in self.files.items():
            out.append(f"  {label}: {path}")
        out += [f"  note: {n}" for n in self.notes]
        out.append(f"  run details: okrsync -c {self.directory / 'okrsync.toml'} runs show {r.run_id}")
        return out


def run_demo(
    directory: Path,
    *,
    workers: int = 1000,
    seed: int = 42,
    as_of: date | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> DemoResult:
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "okrsync.toml"
    if not config_path.exists() or "[connections." in config_path.read_text(encoding="utf-8"):
        config_path.write_text(DEMO_CONFIG, encoding="utf-8")  # (older demos kept a files→files job here)
    org = SandboxOrg(workers, seed=seed, as_of=as_of)
    people = org.expected_people()
    hierarchy = build_hierarchy(people)
    ceo = hierarchy.roots()[0] if hierarchy.roots() else ""
    company = directory / "company-okrs.yaml"
    if not company.exists():
        company.write_text(_company_okrs(ceo), encoding="utf-8")
    catalogue = directory / CATALOGUE_FILE
    if not catalogue.exists():
        catalogue.write_text(LEARNING_CATALOGUE, encoding="utf-8")
    saved = _load_state(directory / STATE_FILE)
    notes: list[str] = []
    with ExitStack() as stack:
        workday = stack.enter_context(serve(create_emulator("workday", org)))
        entra = stack.enter_context(serve(create_emulator("entra", org, directory="empty")))
        sf = stack.enter_context(serve(create_emulator("successfactors", org)))
        scim = stack.enter_context(_scim_sandbox())
        _restore(saved, entra, sf, scim)
        targets = ["entra"] + (["scim"] if scim else [])
        connections: dict[str, Any] = {
            "workday": workday.connection(),
            "entra": entra.connection(),
            "successfactors": {**sf.connection(), "person_key": "empId"},
        }
        if scim is not None:
            connections["scim"] = {"type": "scim", "base_url": scim.base_url}
        else:
            notes.append(SCIM_NOTE)
        before = _activity_ids(entra)
        base = tomllib.loads(config_path.read_text(encoding="utf-8"))
        raw = {
            **base,
            "connections": connections,
            "jobs": {
                "nightly": {
                    "source": "workday",
                    "targets": targets,
                    "max_deletes": "5%",
                    "inactive_manager": "nearest_active",
                    "okrs": company.name,
                    "cascade_depth": 3,
                    "goal_targets": ["successfactors"],
                    "learning_targets": ["entra"],
                    "learning_catalogue": catalogue.name,
                    "learning_rules": LEARNING_RULES,
                }
            },
        }
        config = parse_config(raw, base_dir=directory.resolve())
        state = open_state(str(directory / "okrsync.db"))
        engine = SyncEngine(config, state, progress=progress)
        try:
            try:
                report = engine.sync("nightly")
            except OkrSyncError:
                report = _last_report(state)
                raise
            okrs = engine.okrs_for(config.job("nightly"), build_hierarchy(people))
        finally:
            engine.close()
            state.close()
            _save_state(directory / STATE_FILE, entra, sf, scim)
        after = _activity_ids(entra)

    result = DemoResult(directory=directory, report=report, notes=notes)
    result.learning = {"created": len(after - before), "assignments": len(after)}
    result.legs = ["Workday", "hierarchy check", "3-level cascade", "Entra ID people + managers"]
    result.legs += ["SCIM users"] if scim is not None else []
    result.legs += ["SuccessFactors goals", "Viva Learning assignments"]
    result.managers = sum(1 for p in people if hierarchy.span(p.id) > 0)
    result.depth = 1 + max((hierarchy.level(pid) for pid in hierarchy.order()), default=0)
    result.problems = len(hierarchy.problems)
    cascade_path = directory / "cascade.json"
    cascade_path.write_text(json.dumps(okrs.model_dump(mode="json"), indent=1), encoding="utf-8")
    result.cascade = {"objectives": len(okrs.objectives), "key_results": len(okrs.key_results)}
    _write_org_chart(result, hierarchy, directory)
    result.files["OKR cascade"] = str(cascade_path)
    if report.run_id is not None:
        json_file, html_file = write_run_report(report, directory / "reports")
        result.files["run report"] = str(html_file)
        result.files["run report (JSON)"] = str(json_file)
    result.files["sandbox state"] = str(directory / STATE_FILE)
    return result


# ---- the SCIM leg: scim2-server's WSGI app served in this process ----
class ScimSandbox:
    """scim2-server (an independent SCIM 2.0 implementation) on a free port, with a dump/restore."""

    def __init__(self, bearer_tokens: list[str] | None = None) -> None:
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        from scim2_models import ScimProvider
        from scim2_server.memory import InMemoryStorage
        from scim2_server.service import ScimService
        from scim2_server.testserver.application import BearerTokenApplication
        from scim2_server.testserver.cli import ThreadingWSGIServer
        from scim2_server.utils import (
            load_default_resource_types,
            load_default_schemas,
            load_default_service_provider_config,
        )

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.resource_types = list(load_default_resource_types().values())
        provider = ScimProvider.from_discovery(
            list(load_default_schemas().values()),
            self.resource_types,
            config=load_default_service_provider_config(),
        )
        self.service = ScimService(provider, secret=__import__("secrets").token_urlsafe(32))
        self.storage = InMemoryStorage()
        app = BearerTokenApplication(
            self.storage, provider, service=self.service, bearer_tokens=list(bearer_tokens or [])
        )
        self._server = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}/v2"
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-scim", daemon=True)
        self._thread.start()

    def dump(self) -> list[dict[str, Any]]:
        return [r.model_dump(mode="json") for r in self.storage.resources]

    def restore(self, resources: list[dict[str, Any]]) -> None:
        models = {rt.id: self.service.get_model(rt) for rt in self.resource_types}
        self.storage.resources = [
            models[str(r.get("meta", {}).get("resourceType", "User"))].model_validate(r) for r in resources
        ]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def _scim_sandbox() -> Iterator[ScimSandbox | None]:
    try:
        server = ScimSandbox()
    except ImportError:
        yield None
        return
    try:
        yield server
    finally:
        server.stop()


# ---- persisting the emulated targets between two demo runs ----
def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        if set(value) == {"$date"}:
            return date.fromisoformat(value["$date"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _load_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _learning_api(entra: RunningEmulator) -> LearningApi:
    assert isinstance(entra.emulator, GraphEmulator)
    return entra.emulator.learning


def _activity_ids(entra: RunningEmulator) -> set[str]:
    api = _learning_api(entra)
    with api.lock:
        return {aid for acts in api.activities.values() for aid in acts}


def _save_state(path: Path, entra: RunningEmulator, sf: RunningEmulator, scim: ScimSandbox | None) -> None:
    directory: Any = entra.emulator.directory  # type: ignore[attr-defined]
    goals: Any = sf.emulator.goals  # type: ignore[attr-defined]
    with directory.lock:
        users = directory.snapshot()
    api = _learning_api(entra)
    with api.lock:  # Viva Learning: plain JSON dicts, keyed by provider id
        learning = json.loads(
            json.dumps({"providers": api.providers, "contents": api.contents, "activities": api.activities})
        )
    data = {
        "entra": {"users": users, "learning": learning},
        "successfactors": {"next_id": goals._next, "rows": _encode(goals.rows)},
        "scim": scim.dump() if scim is not None else [],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)


def _restore(
    saved: dict[str, Any], entra: RunningEmulator, sf: RunningEmulator, scim: ScimSandbox | None
) -> None:
    if not saved:
        return
    directory: Any = entra.emulator.directory  # type: ignore[attr-defined]
    with directory.lock:
        created = {}
        for u in saved.get("entra", {}).get("users", []):
            props = {k: v for k, v in u.items() if k not in {"id", "manager"}}
            created[u["id"]] = (directory.create(props, None, uid=u["id"]), u.get("manager"))
        for user, manager in created.values():
            if manager:
                directory.set_manager(user, manager)
    learning = saved.get("entra", {}).get("learning")
    if learning:  # (a state file from a demo without the learning leg has none)
        api = _learning_api(entra)
        with api.lock:
            api.providers.update(learning.get("providers", {}))
            for pid in api.providers:
                api.contents[pid] = dict(learning.get("contents", {}).get(pid, {}))
                api.activities[pid] = dict(learning.get("activities", {}).get(pid, {}))
    goals: Any = sf.emulator.goals  # type: ignore[attr-defined]
    sf_saved = saved.get("successfactors", {})
    with goals._lock:
        for set_name, rows in _decode(sf_saved.get("rows", {})).items():
            goals.rows[set_name] = {int(k): v for k, v in rows.items()}
        goals._next = max(goals._next, int(sf_saved.get("next_id", 0)))
    if scim is not None and saved.get("scim"):
        scim.restore(saved["scim"])


def _last_report(state: Any) -> RunReport:
    runs = state.runs("nightly", limit=1)
    return RunReport(job="nightly", status=runs[0].status if runs else "error")


def _write_org_chart(result: DemoResult, hierarchy: Any, directory: Path) -> None:
    try:
        from okrsync.render import orgchart_html
    except ImportError:
        result.notes.append("org chart rendering is not installed in this build")
        return
    path = directory / "org-chart.html"
    path.write_text(orgchart_html(hierarchy, title="okrsync demo: org chart"), encoding="utf-8")
    result.files["org chart"] = str(path)


def _company_okrs(ceo: str) -> str:
    return f"""\
cycle: {{id: FY-H1, name: "First half", start: {date.today().year}-01-01, end: {date.today().year}-06-30}}
objectives:
  - id: CO-1
    title: Win the enterprise segment
    owner: "{ceo}"
    level: company
    key_results:
      - id: CO-1-KR1
        title: Close $2M in new enterprise business
        target_value: 2000000
        unit: USD
        tags: ["skill:negotiation"]
      - id: CO-1-KR2
        title: Lift net revenue retention to 115%
        target_value: 115
        metric_type: percent
        tags: ["skill:customer-retention"]
  - id: CO-2
    title: Grow the people who grow the company
    owner: "{ceo}"
    level: company
    key_results:
      - id: CO-2-KR1
        title: Every manager completes coaching training
        target_value: 100
        metric_type: percent
        tags: ["skill:coaching"]
"""


LEARNING_CATALOGUE = """\
# Written by `okrsync demo`: the learning items the demo's rules recommend. A company key result
# tagged `skill:X` (in company-okrs.yaml) links every item below whose `skills` contain X to the
# owners of that KR and of the KRs cascaded from it; they become Viva Learning assignments.
learning_items:
  - id: LI-NEG-101
    provider: okrsync-sandbox
    external_id: NEG-101
    title: Negotiation basics
    url: https://learning.example.com/courses/neg-101
    format: course
    skills: [negotiation]
    duration: PT45M
  - id: LI-NEG-201
    provider: okrsync-sandbox
    external_id: NEG-201
    title: Negotiating enterprise deals
    url: https://learning.example.com/courses/neg-201
    format: course
    skills: [negotiation, enterprise-sales]
    duration: PT2H
  - id: LI-RET-101
    provider: okrsync-sandbox
    external_id: RET-101
    title: Customer retention playbook
    url: https://learning.example.com/courses/ret-101
    format: course
    skills: [customer-retention]
    duration: PT1H
  - id: LI-COACH-101
    provider: okrsync-sandbox
    external_id: COACH-101
    title: Coaching conversations for managers
    url: https://learning.example.com/courses/coach-101
    format: course
    skills: [coaching]
    duration: PT1H30M
"""
