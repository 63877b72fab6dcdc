"""Through the engine: a job computes a key result from Salesforce and pushes it with the goals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from okrsync.config import parse_config
from okrsync.engine import SyncEngine
from okrsync.io import write_people
from okrsync.okrs import load_okrs
from okrsync.sandbox import SandboxOrg, create_emulator, serve
from okrsync.state import open_state
from tests.connectors.salesforce.helpers import AS_OF, settings

OKRS = """\
cycle: {id: Q2, name: Q2 2024, start: 2024-04-01, end: 2024-06-30}
objectives:
  - id: CO-1
    title: Grow revenue
    owner: "%s"
    level: company
    key_results:
      - id: CO-1-KR1
        title: Closed-won revenue this quarter
        target_value: 50000000
        metric_type: currency
        data_source: >-
          salesforce:SELECT SUM(Amount) total FROM Opportunity WHERE IsWon = true
          AND CloseDate >= {cycle_start} AND CloseDate <= {cycle_end} AND OwnerId IN {team:subtree}
"""


def test_job_evaluates_salesforce_metric_and_pushes_it(tmp_path: Path) -> None:
    org = SandboxOrg(600, seed=8, as_of=AS_OF)
    people = org.expected_people()
    write_people(tmp_path / "people.jsonl", people)
    (tmp_path / "okrs.yaml").write_text(OKRS % people[0].id)
    with serve(create_emulator("salesforce", org)) as running:
        data: dict[str, Any] = {
            "connections": {
                "hris": {"type": "files", "path": "people.jsonl"},
                "dir": {"type": "files", "path": "dir.jsonl"},
                "goals": {"type": "files", "goals_path": "goals.json"},
                "sf": settings(running),
            },
            "jobs": {
                "j": {
                    "source": "hris",
                    "targets": ["dir"],
                    "okrs": "okrs.yaml",
                    "goal_targets": ["goals"],
                    "metric_sources": ["sf"],
                }
            },
        }
        state = open_state(str(tmp_path / "state.db"))
        try:
            report = SyncEngine(parse_config(data, base_dir=tmp_path), state).sync("j")
        finally:
            state.close()
        expected = running.emulator.won_amount(  # type: ignore[attr-defined]
            [org.salesforce_user_id(w.index) for w in org], quarter=0
        )
    assert report.status == "ok", report.lines()
    [metric] = report.metrics
    assert metric["ok"] and metric["value"] == expected > 0
    held = load_okrs(tmp_path / "goals.json")
    assert next(k for k in held.key_results if k.id == "CO-1-KR1").current_value == expected
    assert json.loads(json.dumps(report.to_dict(), default=str))["metrics"][0]["key_result_id"] == "CO-1-KR1"
