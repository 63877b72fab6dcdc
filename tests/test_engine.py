"""The engine's promises on a files → files job, through the real CLI and library."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from okrsync.cli import main
from okrsync.io import iter_rows, read_people, write_people
from okrsync.models import Person
from okrsync.sandbox.orgs import SandboxOrg
from okrsync.state import open_state

CONFIG = """\
[state]
path = "state.db"

[connections.hris]
type = "files"
path = "source.jsonl"

[connections.directory]
type = "files"
path = "target.jsonl"
batch_size = {batch}

[jobs.nightly]
source = "hris"
targets = ["directory"]
max_deletes = "5%"
"""


def make_job(tmp_path: Path, people: list[Person], batch: int = 5000) -> Path:
    (tmp_path / "okrsync.toml").write_text(CONFIG.format(batch=batch))
    write_people(tmp_path / "source.jsonl", people)
    return tmp_path / "okrsync.toml"


def sync(config: Path, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["-c", str(config), "sync", "nightly", "--json", *args])
    assert result.output.strip(), result.stderr if hasattr(result, "stderr") else result
    return result.exit_code, json.loads(result.stdout)


def target_ids(tmp_path: Path) -> list[str]:
    return [str(r.data["id"]) for r in iter_rows(tmp_path / "target.jsonl") if r.data]


@pytest.fixture
def org_people() -> list[Person]:
    return SandboxOrg(300, seed=5).expected_people()


def test_first_sync_creates_everyone_and_second_writes_nothing(
    tmp_path: Path, org_people: list[Person]
) -> None:
    config = make_job(tmp_path, org_people)
    code, report = sync(config)
    assert code == 0, report
    assert report["targets"]["directory"]["counts"] == {"create": 300}
    assert sorted(target_ids(tmp_path)) == sorted(p.id for p in org_people)
    assert {p.id: p.manager_id for p in read_people(tmp_path / "target.jsonl")} == {
        p.id: p.manager_id for p in org_people
    }
    before = (tmp_path / "target.jsonl").stat().st_mtime_ns
    code, report = sync(config)
    assert code == 0
    assert report["writes"] == 0 and report["status"] == "no_change"
    assert report["targets"]["directory"]["counts"] == {}
    assert (tmp_path / "target.jsonl").stat().st_mtime_ns == before, (
        "a no-change run must not touch the target"
    )


def test_updates_are_minimal_and_managers_first(tmp_path: Path, org_people: list[Person]) -> None:
    config = make_job(tmp_path, org_people)
    assert sync(config)[0] == 0
    changed = [
        p.model_copy(update={"title": "Chief of Staff"}) if p.id == "100010" else p for p in org_people
    ]
    hire = Person(id="999001", manager_id="999000", display_name="New Report")
    manager = Person(id="999000", manager_id=org_people[0].id, display_name="New Manager")
    write_people(tmp_path / "source.jsonl", [*changed, hire, manager])
    result = CliRunner().invoke(main, ["-c", str(config), "plan", "nightly", "--json"])
    plan = json.loads(result.stdout)["targets"]["directory"]
    ops = [(o["op"], o["person_id"]) for o in plan["operations"]]
    assert ("update", "100010") in ops
    assert ops.index(("create", "999000")) < ops.index(("create", "999001")), "managers before their reports"
    update = next(o for o in plan["operations"] if o["person_id"] == "100010")
    assert set(update["changes"]) == {"title"}
    code, report = sync(config)
    assert code == 0 and report["targets"]["directory"]["counts"] == {"create": 2, "update": 1}


def test_mass_removal_stops_before_any_write_then_allow_deletes_proceeds(
    tmp_path: Path, org_people: list[Person]
) -> None:
    config = make_job(tmp_path, org_people)
    assert sync(config)[0] == 0
    target_before = (tmp_path / "target.jsonl").read_bytes()
    kept = org_people[: int(len(org_people) * 0.7)]
    write_people(tmp_path / "source.jsonl", kept)

    code, report = sync(config)
    assert code == 3
    assert report["status"] == "policy_stop"
    assert "exceed max_deletes = 5%" in report["blocked"]
    assert (
        len(report["targets"]["directory"]["would_remove"])
        == report["targets"]["directory"]["counts"]["disable"]
    )
    assert (tmp_path / "target.jsonl").read_bytes() == target_before, (
        "nothing may be written on a policy stop"
    )

    code, report = sync(config, "--allow-deletes")
    assert code == 0, report
    held = {p.id: p for p in read_people(tmp_path / "target.jsonl")}
    removed = {p.id for p in org_people} - {p.id for p in kept}
    assert all(held[pid].status.value == "terminated" for pid in removed), "removal disables, never drops"
    code, report = sync(config)
    assert code == 0 and report["writes"] == 0, "disabled people are not disabled again"


def test_malformed_rows_are_quarantined_by_name_and_valid_rows_sync(tmp_path: Path) -> None:
    (tmp_path / "okrsync.toml").write_text(CONFIG.format(batch=100).replace("source.jsonl", "source.csv"))
    (tmp_path / "source.csv").write_text(
        textwrap.dedent(
            """\
            id,manager_id,email,display_name,hire_date,status
            1,,ceo@x.com,Chief,2020-01-01,active
            2,1,a@x.com,Alice,2021-02-03,active
            ,1,noid@x.com,No Id,2021-02-03,active
            2,1,dup@x.com,Duplicate Two,2021-02-03,active
            3,1,b@x.com,Bob,2021-02-31,active
            4,77,c@x.com,Carol,2022-05-06,active
            5,1,d@x.com,Dan,2022-05-06,sacked
            6,2,e@x.com,=HYPERLINK("http://x"),2022-05-06,active
            """
        )
    )
    code, report = sync(tmp_path / "okrsync.toml")
    assert code == 4, "finished with failed records"
    quarantined = {(q["key"], q["field"]): q for q in report["quarantined"]}
    assert ("line 4", "id") in quarantined and "missing id" in quarantined[("line 4", "id")]["reason"]
    assert quarantined[("line 4", "id")]["ref"] == "source.csv:4"
    assert (
        "duplicate id" in quarantined[("2", "id")]["reason"]
        and quarantined[("2", "id")]["ref"] == "source.csv:5"
    )
    assert (
        "date" in quarantined[("3", "hire_date")]["reason"]
        and "2021-02-31" in quarantined[("3", "hire_date")]["reason"]
    )
    assert ("5", "status") in quarantined
    dangling = [p for p in report["problems"] if p["code"] == "dangling_manager"]
    assert dangling and dangling[0]["person_ids"][0] == "4" and dangling[0]["field"] == "manager_id"
    assert "77" in dangling[0]["message"]
    synced = {p.id: p for p in read_people(tmp_path / "target.jsonl")}
    assert set(synced) == {"1", "2", "4", "6"}
    assert synced["2"].display_name == "Alice", "the first of two duplicate ids wins"
    assert synced["4"].manager_id is None, "a dangling manager is not written (policy: none)"
    raw = (tmp_path / "target.jsonl").read_text()
    assert "HYPERLINK" in raw
    out = tmp_path / "export.csv"
    write_people(out, synced.values())
    assert "'=HYPERLINK" in out.read_text(), "formulas are neutralised in CSV output"


def test_previously_synced_person_with_a_broken_record_is_not_removed(
    tmp_path: Path, org_people: list[Person]
) -> None:
    config = make_job(tmp_path, org_people)
    assert sync(config)[0] == 0
    lines = (tmp_path / "source.jsonl").read_text().splitlines()
    victim = json.loads(lines[5])
    victim["hire_date"] = "not a date"
    lines[5] = json.dumps(victim)
    (tmp_path / "source.jsonl").write_text("\n".join(lines) + "\n")
    code, report = sync(config)
    assert code == 4
    assert report["targets"]["directory"]["counts"] == {}, (
        "a malformed record is kept as it was, not disabled"
    )
    assert [q["key"] for q in report["quarantined"]] == [victim["id"]]


def test_dry_run_writes_and_commits_nothing(tmp_path: Path, org_people: list[Person]) -> None:
    config = make_job(tmp_path, org_people)
    code, report = sync(config, "--dry-run")
    assert code == 0 and report["status"] == "dry_run"
    assert report["targets"]["directory"]["counts"] == {"create": 300}
    assert not (tmp_path / "target.jsonl").exists()
    code, report = sync(config)
    assert report["targets"]["directory"]["counts"] == {"create": 300}


KILLER = """
import os, signal, sys, tomllib
from pathlib import Path
from okrsync.config import parse_config
from okrsync.connectors.files import FilesConnector
from okrsync.engine import SyncEngine
from okrsync.state import open_state

base = Path(sys.argv[1]); kill_after = int(sys.argv[2])

class KillingFiles(FilesConnector):
    batches = 0
    def apply(self, ops, id_map):
        results = super().apply(ops, id_map)
        KillingFiles.batches += 1
        if KillingFiles.batches >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return results

def factory(cfg, ctx):
    return KillingFiles(cfg, ctx) if ctx.connection_name == "directory" else FilesConnector(cfg, ctx)

config = parse_config(tomllib.loads((base / "okrsync.toml").read_text()), base_dir=base)
SyncEngine(config, open_state(str(base / "state.db")), connector_factory=factory).sync("nightly")
"""


@pytest.mark.parametrize("kill_after", [1, 3, 6])
def test_kill_during_apply_then_rerun_converges_without_duplicates(
    tmp_path: Path, org_people: list[Person], kill_after: int
) -> None:
    config = make_job(tmp_path, org_people, batch=40)
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(tmp_path), str(kill_after)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    partial = target_ids(tmp_path)
    assert 0 < len(partial) < len(org_people), "the kill landed mid-apply"
    store = open_state(str(tmp_path / "state.db"))
    assert store.integrity_check() == []
    assert store.get_snapshot("nightly", "source") is None, "nothing committed by the killed run"
    store.close()

    code, report = sync(config)
    assert code == 0, report
    ids = target_ids(tmp_path)
    assert len(ids) == len(set(ids)) == len(org_people), "converged, no duplicates"
    assert {p.id: p.manager_id for p in read_people(tmp_path / "target.jsonl")} == {
        p.id: p.manager_id for p in org_people
    }
    code, report = sync(config)
    assert code == 0 and report["writes"] == 0
    store = open_state(str(tmp_path / "state.db"))
    assert store.integrity_check() == []
    assert [r.status for r in store.runs("nightly")][:3] == ["ok", "ok", "interrupted"]
    store.close()


def test_overlapping_run_is_refused_with_a_clear_message(tmp_path: Path, org_people: list[Person]) -> None:
    config = make_job(tmp_path, org_people)
    from datetime import UTC, datetime

    store = open_state(str(tmp_path / "state.db"))
    store.begin_run("nightly", started_at=datetime.now(UTC), mode="full")
    result = CliRunner().invoke(main, ["-c", str(config), "sync", "nightly"])
    store.close()
    assert result.exit_code == 1
    assert "already running" in result.stderr


def test_every_run_writes_json_and_html_reports(tmp_path: Path, org_people: list[Person]) -> None:
    config = make_job(tmp_path, org_people)
    write_people(
        tmp_path / "source.jsonl", [*org_people, Person(id="x1", display_name="<script>alert(1)</script>")]
    )
    code, report = sync(config)
    assert code == 0
    html = (tmp_path / "reports" / f"run-{report['run_id']}.html").read_text()
    saved = json.loads((tmp_path / "reports" / f"run-{report['run_id']}.json").read_text())
    assert saved["targets"]["directory"]["counts"] == {"create": 301}
    assert "<script>alert" not in html and "create 301" in html
    kept = org_people[:100]
    write_people(tmp_path / "source.jsonl", kept)
    code, report = sync(config)
    assert code == 3
    html = (tmp_path / "reports" / f"run-{report['run_id']}.html").read_text()
    assert "Stopped before any write" in html and "Would have been removed" in html
