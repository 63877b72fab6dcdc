"""Learning links → a real xAPI LRS (Ralph), through the CLI: sync, re-sync, completion, status."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from okrsync.cli import main
from okrsync.connectors.xapi.statements import registration
from okrsync.io import write_people
from okrsync.sandbox import SandboxOrg
from okrsync.state import open_state

from .conftest import Lrs

HOME = "https://hr.example.com"


def setup(tmp: Path, lrs: Lrs) -> tuple[Path, str]:
    org = SandboxOrg(60, seed=3)
    people = org.expected_people()
    write_people(tmp / "people.jsonl", people)
    ceo = next(p.id for p in people if p.manager_id is None)
    okrs = {
        "cycle": {"id": "2025-H1", "name": "H1", "start": "2025-01-01", "end": "2025-06-30"},
        "objectives": [
            {
                "id": "OBJ-1",
                "title": "Win bigger deals",
                "owner": ceo,
                "level": "company",
                "key_results": [{"id": "KR-1", "title": "Close 40 deals", "tags": ["skill:negotiation"]}],
            }
        ],
        "learning_items": [
            {
                "id": "LI-NEG",
                "provider": "lms",
                "external_id": "NEG-101",
                "title": "Negotiation basics",
                "url": "https://learn.example.com/neg-101",
                "skills": ["negotiation"],
            }
        ],
        "learning_rules": [{"name": "negotiation", "audience": ["owner"]}],
    }
    (tmp / "okrs.yaml").write_text(yaml.safe_dump(okrs))
    (tmp / "okrsync.toml").write_text(
        f"""
[state]
path = "state.db"
[reports]
dir = "reports"
[connections.hr]
type = "files"
path = "people.jsonl"
[connections.lrs]
type = "xapi"
endpoint = "{lrs.endpoint}"
username = "{lrs.username}"
password = "${{OKRSYNC_TEST_LRS_PASSWORD}}"
homepage = "{HOME}"
activity_base = "https://okrs.example.com"
[jobs.learn]
source = "hr"
okrs = "okrs.yaml"
cascade_depth = 2
learning_targets = ["lrs"]
"""
    )
    return tmp / "okrsync.toml", ceo


def test_links_as_statements_idempotent_and_completion_in_status(lrs: Lrs, tmp_path: Path) -> None:
    config, _ = setup(tmp_path, lrs)
    runner = CliRunner()
    env = {"OKRSYNC_TEST_LRS_PASSWORD": lrs.password}

    first = runner.invoke(main, ["-c", str(config), "sync", "learn", "--json"], env=env)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output[first.output.index("{") :])
    pushed = report["learning"]["lrs"]
    assert pushed["links"] > 5 and not pushed["failed"]
    assert pushed["written"] == pushed["links"]
    stored = lrs.stored()
    assert len(stored) == pushed["links"]

    ids = open_state(str(tmp_path / "state.db")).get_id_map("lrs#learning")
    link_id = sorted(ids)[0]
    st = next(s for s in stored if s["id"] == ids[link_id])
    learner = st["actor"]["account"]["name"]
    session = lrs.session()
    agent = json.dumps({"objectType": "Agent", "account": {"homePage": HOME, "name": learner}})
    found = session.get(
        f"{lrs.endpoint}/statements", params={"agent": agent, "registration": registration(link_id)}
    ).json()["statements"]
    assert [s["id"] for s in found] == [ids[link_id]]
    ctx = found[0]["context"]["contextActivities"]
    assert ctx["parent"][0]["id"].startswith("https://okrs.example.com/key-results/")
    assert ctx["grouping"][0]["id"].startswith("https://okrs.example.com/objectives/")
    assert ctx["category"][0]["id"] == "https://okrs.example.com/xapi/profile"  # under our activity base
    assert found[0]["verb"]["id"] == "https://w3id.org/xapi/acrossx/verbs/was-assigned"
    assert found[0]["object"]["id"] == "https://learn.example.com/neg-101"

    second = runner.invoke(main, ["-c", str(config), "sync", "learn", "--json"], env=env)
    assert second.exit_code == 0, second.output
    again = json.loads(second.output[second.output.index("{") :])
    assert again["learning"]["lrs"]["written"] == 0 and again["status"] == "no_change"
    assert len(lrs.stored()) == pushed["links"]  # no statement added

    # the LMS reports a completion in the assignment's registration
    completion = {
        "actor": {"objectType": "Agent", "account": {"homePage": HOME, "name": learner}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
        "object": {"objectType": "Activity", "id": "https://learn.example.com/neg-101"},
        "result": {"completion": True},
        "context": {"registration": registration(link_id)},
    }
    assert session.post(f"{lrs.endpoint}/statements", json=completion).status_code == 200

    status = runner.invoke(
        main, ["-c", str(config), "learning", "status", "--job", "learn", "--json"], env=env
    )
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["by_link"][link_id]["status"] == "completed"
    assert data["targets"]["lrs"]["completed"] == 1
    kr_id = st["context"]["contextActivities"]["parent"][0]["id"].rsplit("/", 1)[1]
    goal = next(g for g in data["goals"] if g["id"] == kr_id)
    assert goal["completed"] == 1 and goal["assigned"] == 1
    total = next(g for g in data["goals"] if g["id"] == "OBJ-1")
    assert total["assigned"] >= 1

    text = runner.invoke(
        main, ["-c", str(config), "learning", "status", "--write-okrs", str(tmp_path / "ev.yaml")], env=env
    )
    assert text.exit_code == 0, text.output
    assert "1 completed" in text.output
    assert "learning:1/1" in (tmp_path / "ev.yaml").read_text()
    print(f"\nxapi: {pushed['links']} links; first run wrote {pushed['written']} statements, second 0")
