"""A job that syncs people, cascades the OKR file along the hierarchy and pushes goals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
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


def test_goals_flow_from_successfactors_to_workday_and_files(start_emulator: Any, tmp_path: Path) -> None:
    """goal_source: a job reads SuccessFactors' goals and pushes them to Workday and to a goals
    file; ``okrsync goals pull`` writes the same OKRs as a file a job's ``okrs`` reads."""
    from okrsync.cascade import CascadeOptions, cascade
    from okrsync.connectors.base import ConnectorContext
    from okrsync.connectors.successfactors import SuccessFactorsConfig, SuccessFactorsConnector
    from okrsync.hierarchy import build_hierarchy
    from okrsync.models import KeyResult, Objective, ObjectiveLevel, OkrSet, Owner

    org = SandboxOrg(150, seed=12)
    people = org.expected_people()
    sf_run = start_emulator("successfactors", org=org)
    wd_run = start_emulator("workday", org=org)
    sf_settings = {**sf_run.connection(), "person_key": "empId"}
    company = Objective(
        id="O-1", title="Win the mid-market", owner=Owner(id=people[0].id), level=ObjectiveLevel.COMPANY
    )
    seeded = cascade(
        OkrSet(objectives=(company,), key_results=(KeyResult(id="KR-1", objective_id="O-1", title="ARR"),)),
        build_hierarchy(people),
        CascadeOptions(depth=2),
    ).okrs
    sf = SuccessFactorsConnector(SuccessFactorsConfig(**sf_settings), ConnectorContext("sf"))
    assert all(r.ok for r in sf.push_goals(seeded.objectives, seeded.key_results, {}))
    sf.close()

    write_people(tmp_path / "people.jsonl", people)
    config = tmp_path / "okrsync.toml"
    lines = [
        '[state]\npath = "state.db"\n',
        '[connections.hris]\ntype = "files"\npath = "people.jsonl"\n',
        '[connections.dir]\ntype = "files"\npath = "dir.jsonl"\n',
        '[connections.goalsfile]\ntype = "files"\ngoals_path = "goals-out.json"\n',
    ]
    for name, settings in (("sf", sf_settings), ("wd", wd_run.connection())):
        lines.append(
            f"[connections.{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
        )
    lines.append(
        '[jobs.nightly]\nsource = "hris"\ntargets = ["dir"]\ngoal_source = "sf"\n'
        'goal_targets = ["wd", "goalsfile"]\n'
    )
    config.write_text("\n".join(lines), encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(main, ["-c", str(config), "sync", "nightly", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.output[first.output.index("{") :])
    assert not report["goals"]["wd"]["failed"] and report["goals"]["wd"]["written"] > 0, report["goals"]

    stored = requests.get(f"{wd_run.url}/_sandbox/workday/goals", timeout=10).json()["goals"]
    in_workday = {(g["worker_id"], g["name"]) for g in stored}
    assert in_workday == {(o.owner.id, o.title) for o in seeded.objectives}  # owners as employee ids
    milestones = sum(len(g["milestones"]) for g in stored)
    assert milestones == len(seeded.key_results)
    in_file = json.loads((tmp_path / "goals-out.json").read_text())
    assert {o["title"] for o in in_file["objectives"]} == {o.title for o in seeded.objectives}

    second = runner.invoke(main, ["-c", str(config), "sync", "nightly", "--json"])
    assert second.exit_code == 0, second.output
    again = json.loads(second.output[second.output.index("{") :])
    assert again["goals"]["wd"]["written"] == 0 and again["goals"]["goalsfile"]["written"] == 0

    out = tmp_path / "sf-okrs.yaml"
    pulled = runner.invoke(main, ["-c", str(config), "goals", "pull", "sf", "--out", str(out), "--json"])
    assert pulled.exit_code == 0, pulled.output
    counts = json.loads(pulled.output)
    assert (counts["objectives"], counts["keyResults"]) == (len(seeded.objectives), len(seeded.key_results))
    as_file = load_okrs(out)
    assert {(o.owner.id, o.title) for o in as_file.objectives} == in_workday


def test_goal_source_and_okrs_file_are_exclusive_and_checked(tmp_path: Path) -> None:
    config = tmp_path / "okrsync.toml"
    config.write_text(
        CONFIG.replace('okrs = "company.yaml"', 'okrs = "company.yaml"\ngoal_source = "nowhere"'),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["-c", str(config), "config", "check"])
    assert result.exit_code == 2
    assert "jobs.nightly.goal_source: give either okrs (a file) or goal_source" in result.stderr
    assert "jobs.nightly.goal_source: no connection named 'nowhere'" in result.stderr
    scim = '[connections.idp]\ntype = "scim"\nbase_url = "http://127.0.0.1:9/scim/v2"\n\n'
    config.write_text(scim + CONFIG.replace('okrs = "company.yaml"', 'goal_source = "idp"'), encoding="utf-8")
    write_people(tmp_path / "people.jsonl", SandboxOrg(20, seed=1).expected_people())
    result = CliRunner().invoke(main, ["-c", str(config), "sync", "nightly"])
    assert result.exit_code == 2 and "connection 'idp' (scim) cannot read goals" in result.stderr
