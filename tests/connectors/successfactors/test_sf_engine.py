"""Through the engine: SuccessFactors as the source of a job that also pushes cascaded goals back to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from okrsync.config import parse_config
from okrsync.engine import SyncEngine
from okrsync.models import KeyResult, Objective, ObjectiveLevel, OkrSet, Owner
from okrsync.okrs import dump_okrs
from okrsync.sandbox import RunningEmulator, SandboxOrg
from okrsync.state import open_state


def test_engine_pulls_people_and_pushes_goals_idempotently(start_emulator: Any, tmp_path: Path) -> None:
    org = SandboxOrg(300, seed=8)
    run: RunningEmulator = start_emulator("successfactors", org=org)
    seed = Objective(id="O-1", title="Grow", owner=Owner(id=org.sf_user_id(2)), level=ObjectiveLevel.COMPANY)
    dump_okrs(
        OkrSet(objectives=(seed,), key_results=(KeyResult(id="KR-1", objective_id="O-1", title="ARR"),)),
        tmp_path / "okrs.yaml",
    )
    raw = {
        "state": {"path": "state.db"},
        "connections": {
            "sf": run.connection(),
            "out": {"type": "files", "path": "people.jsonl"},
        },
        "jobs": {
            "nightly": {
                "source": "sf",
                "targets": ["out"],
                "okrs": "okrs.yaml",
                "cascade_depth": 2,
                "goal_targets": ["sf"],
            }
        },
    }
    config = parse_config(raw, base_dir=tmp_path)
    state = open_state(str(tmp_path / "state.db"))
    try:
        first = SyncEngine(config, state).sync("nightly")
        assert first.goals["sf"]["written"] == first.goals["sf"]["pushed"] > 2
        assert not first.goals["sf"]["failed"] and not first.quarantined
        emulator = run.emulator
        auth = (f"{emulator.api_user}@{emulator.company_id}", emulator.basic_password)  # type: ignore[attr-defined]
        url = f"{run.url}/odata/v2/Goal_1?$format=json&$select=id,userId,name,milestones&$expand=milestones"
        goals = requests.get(url, auth=auth, timeout=30).json()["d"]["results"]
        assert len(goals) > 2
        # every cascaded goal is there, owned by its person; milestones carry the key results' text
        assert len({(g["userId"], g["name"]) for g in goals}) == len(goals)
        assert all(m["description"] for g in goals for m in g["milestones"]["results"])
        assert sum(len(g["milestones"]["results"]) for g in goals) + len(goals) == first.goals["sf"]["pushed"]
        # SAP's Goal_1 has no alignment property (alignment is a UI feature): the run report says
        # the cascade's edges were not written, and asking for such a field is refused like in SF
        (notice,) = [n for n in first.notices if "alignment" in n]
        assert notice.startswith("goals → sf: ") and "no alignment property in the OData API" in notice
        refused = requests.get(f"{run.url}/odata/v2/Goal_1?$select=parentId", auth=auth, timeout=30)
        assert refused.status_code == 400 and "Goal_1/parentId" in refused.text
        people = (tmp_path / "people.jsonl").read_text().splitlines()
        assert len(people) > 280
        second = SyncEngine(config, state).sync("nightly")
        assert second.goals["sf"]["written"] == 0 and second.status == "no_change"
    finally:
        state.close()
