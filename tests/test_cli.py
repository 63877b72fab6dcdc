"""The CLI as users and schedulers see it: versions, listings, exit codes, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from okrsync import __version__
from okrsync.cli import main
from okrsync.io import write_people
from okrsync.sandbox.orgs import SandboxOrg


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_connectors_json_lists_builtins_from_entry_points() -> None:
    result = CliRunner().invoke(main, ["connectors", "--json"])
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["files"]["module"] == "okrsync.connectors.files"
    assert set(rows["files"]["capabilities"]) >= {"OrgSource", "OrgTarget"}


def test_config_check_ok_and_warns_about_inline_secrets(tmp_path: Path) -> None:
    (tmp_path / "okrsync.toml").write_text('[connections.a]\ntype = "files"\npath = "a.jsonl"\n')
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "okrsync.toml"), "config", "check", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["connections"] == {"a": "files"}


def test_pull_writes_a_people_file_that_can_be_fed_back(tmp_path: Path) -> None:
    people = SandboxOrg(50, seed=3).expected_people()
    write_people(tmp_path / "in.csv", people)
    (tmp_path / "okrsync.toml").write_text('[connections.hr]\ntype = "files"\npath = "in.csv"\n')
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        main, ["-c", str(tmp_path / "okrsync.toml"), "pull", "hr", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["people"] == 50
    from okrsync.io import read_people

    assert read_people(out) == read_people(tmp_path / "in.csv")


def test_unknown_job_is_a_config_error_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "okrsync.toml").write_text('[connections.a]\ntype = "files"\npath = "a.jsonl"\n')
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "okrsync.toml"), "sync", "nope"])
    assert result.exit_code == 2
    assert "no job named 'nope'" in result.stderr


def test_sandbox_serve_prints_connection_json_first(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "okrsync.cli", "sandbox", "serve", "workday", "--workers", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["system"] == "workday"
        assert first["base_url"].startswith("http://127.0.0.1:")
        assert first["connection"]["type"] == "workday"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_demo_runs_then_is_a_no_change_nightly(tmp_path: Path) -> None:
    """Workday → hierarchy → cascade → Entra + SCIM + SF goals + Viva Learning; then a quiet nightly rerun."""
    runner = CliRunner()
    folder = tmp_path / "d"
    first = runner.invoke(main, ["demo", "--dir", str(folder), "--workers", "300", "--json"])
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    run = data["run"]
    assert run["status"] == "ok" and not run["quarantined"]
    people = run["people"]
    assert people > 250
    assert run["targets"]["entra"]["counts"]["create"] == people
    assert run["targets"]["scim"]["counts"]["create"] == people
    goals = run["goals"]["successfactors"]
    assert goals["written"] == goals["pushed"] > 100 and not goals["failed"]
    assert data["legs"][0] == "Workday" and "SuccessFactors goals" in data["legs"]
    assert "Viva Learning assignments" in data["legs"]
    learning = run["learning"]["entra"]
    assert learning["links"] > 0 and not learning["failed"] and learning["removed"] == 0
    assert data["learning"]["created"] == data["learning"]["assignments"] == learning["links"]
    assert learning["written"] == learning["links"] + 4  # the assignments + the catalogue's 4 contents
    assert not any("learning links skipped" in n for n in data["notes"])
    for label in ("org chart", "run report", "run report (JSON)", "OKR cascade"):
        assert Path(data["files"][label]).exists(), label
    saved = json.loads(Path(data["files"]["sandbox state"]).read_text())
    # Entra holds everyone but leavers (a terminated worker is not provisioned); only the CEO has no manager
    leavers = {p.id for p in SandboxOrg(300, seed=42).expected_people() if p.status.value == "terminated"}
    assert {u["employeeId"] for u in saved["entra"]["users"]}.isdisjoint(leavers)
    assert len(saved["entra"]["users"]) == people - len(leavers)
    assert sum(1 for u in saved["entra"]["users"] if not u["manager"]) == 1
    assert len([r for r in saved["scim"] if r["meta"]["resourceType"] == "User"]) == people
    assert len(saved["successfactors"]["rows"]["Goal_1"]) == data["cascade"]["objectives"]
    viva = saved["entra"]["learning"]
    assert sum(len(a) for a in viva["activities"].values()) == learning["links"]
    assert sum(len(c) for c in viva["contents"].values()) == 4

    second = runner.invoke(main, ["demo", "--dir", str(folder), "--workers", "300"])
    assert second.exit_code == 0, second.output
    assert "nothing changed" in second.stdout
    assert "goals → successfactors: " in second.stdout and " 0 written" in second.stdout
    assert (
        f"learning → entra (Viva Learning): {learning['links']} links, 0 assignments created "
        f"({learning['links']} held), 0 written, 0 removed, 0 failed"
    ) in second.stdout
    again = json.loads(Path(data["files"]["sandbox state"]).read_text())
    assert len(again["entra"]["users"]) == people - len(
        leavers
    )  # the targets still hold exactly what run 1 wrote
    assert len(again["successfactors"]["rows"]["Goal_1"]) == data["cascade"]["objectives"]
    assert again["entra"]["learning"] == viva  # no assignment or content posted, patched or deleted
    shown = runner.invoke(main, ["-c", str(folder / "okrsync.toml"), "runs", "show", "2"])
    assert shown.exit_code == 0 and "no_change" in shown.output
