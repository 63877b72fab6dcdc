"""A job that syncs people, cascades the OKR file along the hierarchy and pushes goals."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from okrsync.cli import main
from okrsync.io import write_people
from okrsync.okrs import load_okrs
from okrsync.sandbox.orgs import SandboxOrg

CONFIG = """\
[connections.hris]
type = "files"
path = "people.jsonl"

[connections.dir]
type = "files"
path = "dir.jsonl"

[connections.goals]
type = "files"
goals_path = "goals-out.json"

[jobs.nightly]
source = "hris"
targets = ["dir"]
okrs = "company.yaml"
goal_targets = ["goals"]
cascade_depth = 3
"""


def test_cascade_is_pushed_once_and_second_run_writes_nothing(tmp_path: Path) -> None:
    people = SandboxOrg(400, seed=9).expected_people()
    write_people(tmp_path / "people.jsonl", people)
    ceo = people[0].id
    (tmp_path / "company.yaml").write_text(
        "objectives:\n"
        f"  - {{id: CO-1, title: Win, owner: '{ceo}', level: company,"
        " key_results: [{id: CO-1-KR1, title: Close 2M, target_value: 2000000}]}\n"
    )
    (tmp_path / "okrsync.toml").write_text(CONFIG)
    runner = CliRunner()
    first = runner.invoke(main, ["-c", str(tmp_path / "okrsync.toml"), "sync", "nightly", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    pushed = report["goals"]["goals"]
    assert pushed["written"] == pushed["pushed"] > 100, "the 3-level cascade reached the goal target"
    held = load_okrs(tmp_path / "goals-out.json")
    owners = {o.owner.id for o in held.objectives}
    assert ceo in owners and len(owners) > 50
    second = runner.invoke(main, ["-c", str(tmp_path / "okrsync.toml"), "sync", "nightly", "--json"])
    assert json.loads(second.stdout)["goals"]["goals"]["written"] == 0


def test_goal_targets_without_okrs_file_is_a_config_problem(tmp_path: Path) -> None:
    (tmp_path / "okrsync.toml").write_text(CONFIG.replace('okrs = "company.yaml"\n', ""))
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "okrsync.toml"), "config", "check"])
    assert result.exit_code == 2 and "jobs.nightly.okrs: goal_targets need an OKR file" in result.stderr
