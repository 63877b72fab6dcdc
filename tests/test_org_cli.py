"""``okrsync org check|chart|impact`` and ``okrsync cascade`` through click's CliRunner."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from okrsync.commands.org import cascade_command, org, parse_policy
from okrsync.errors import ConfigError
from okrsync.okrs import load_okrs

CLEAN: list[dict[str, Any]] = [
    {"id": "1", "display_name": "Ceo"},
    {"id": "2", "manager_id": "1", "display_name": "Vp", "email": "vp@example.com"},
    {"id": "3", "manager_id": "2", "display_name": "Dev", "additional_manager_ids": ["1"]},
    {"id": "4", "manager_id": "2", "display_name": "Ops"},
]
BROKEN: list[dict[str, Any]] = [
    *CLEAN,
    {"id": "5", "manager_id": "6"},
    {"id": "6", "manager_id": "5"},
    {"id": "7", "manager_id": "x"},
]


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def csv_file(path: Path, rows: list[dict[str, Any]]) -> Path:
    fields = ["id", "manager_id", "display_name", "email", "additional_manager_ids"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            row = {k: r.get(k, "") for k in fields}
            row["additional_manager_ids"] = ";".join(r.get("additional_manager_ids", []))
            writer.writerow(row)
    return path


def okr_file(path: Path, owner: str = "1") -> Path:
    doc = {
        "objectives": [
            {
                "id": "O1",
                "title": "Grow",
                "owner": owner,
                "level": "company",
                "key_results": [{"id": "K1", "title": "ARR", "metric_type": "currency", "target_value": 90}],
            }
        ]
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# -------------------------------------------------------------------------------------- org check


@pytest.mark.parametrize("writer", [jsonl, csv_file])
def test_check_clean_org_exits_zero(runner: CliRunner, tmp_path: Path, writer: Any) -> None:
    path = writer(tmp_path / ("people.jsonl" if writer is jsonl else "people.csv"), CLEAN)
    result = runner.invoke(org, ["check", "--people", str(path)])
    assert result.exit_code == 0, result.output
    assert "4 people, 1 root(s), max depth 2, 0 problem(s)" in result.output


def test_check_with_problems_exits_four_and_prints_a_table(runner: CliRunner, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "people.jsonl", BROKEN)
    result = runner.invoke(org, ["check", "--people", str(path)])
    assert result.exit_code == 4
    lines = result.output.splitlines()
    assert lines[1].split() == ["CODE", "PEOPLE", "MESSAGE"]
    assert any(line.startswith("cycle") and "5, 6" in line for line in lines)
    assert any(line.startswith("dangling_manager") for line in lines)
    assert any("-> cycle broken" in line for line in lines)


def test_check_json_is_parseable(runner: CliRunner, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "people.jsonl", BROKEN)
    result = runner.invoke(org, ["check", "--people", str(path), "--json", "--policy", "cycles=stop"])
    assert result.exit_code == 4
    report = json.loads(result.output)
    assert report["blocking"] is True
    assert {p["code"] for p in report["problems"]} >= {"cycle", "dangling_manager"}


def test_check_json_clean(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(org, ["check", "--people", str(jsonl(tmp_path / "p.jsonl", CLEAN)), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["problems"] == []


@pytest.mark.parametrize("policy", ["cycles=sometimes", "colour=blue", "nonsense"])
def test_bad_policy_exits_two(runner: CliRunner, tmp_path: Path, policy: str) -> None:
    path = jsonl(tmp_path / "people.jsonl", CLEAN)
    result = runner.invoke(org, ["check", "--people", str(path), "--policy", policy])
    assert result.exit_code == 2
    assert "error:" in result.output


def test_parse_policy() -> None:
    policy = parse_policy(["cycles=stop", " inactive_manager = fallback:1 "])
    assert (policy.cycles, policy.inactive_manager) == ("stop", "fallback:1")
    with pytest.raises(ConfigError):
        parse_policy(["=x"])


def test_bad_people_file_exits_two(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    path.write_text('{"id": "1"}\n{"id": "2", "status": "retired"}\n', encoding="utf-8")
    result = runner.invoke(org, ["check", "--people", str(path)])
    assert result.exit_code == 2 and "people.jsonl:2" in result.output


# -------------------------------------------------------------------------------------- org chart


def test_chart_formats(runner: CliRunner, tmp_path: Path) -> None:
    people = jsonl(tmp_path / "people.jsonl", BROKEN)
    out = tmp_path / "chart.html"
    result = runner.invoke(org, ["chart", "--people", str(people), "--out", str(out), "--title", "Acme"])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>Acme</title>" in page
    mermaid = runner.invoke(org, ["chart", "--people", str(people), "--format", "mermaid"])
    assert mermaid.exit_code == 0 and mermaid.output.startswith("graph TD")
    dot = runner.invoke(org, ["chart", "--people", str(people), "--format", "dot"])
    assert dot.exit_code == 0 and dot.output.startswith('digraph "Org chart"')


# ---------------------------------------------------------------------------------------- cascade


def test_cascade_writes_okrs_and_html(runner: CliRunner, tmp_path: Path) -> None:
    people = jsonl(tmp_path / "people.jsonl", CLEAN)
    okrs = okr_file(tmp_path / "okrs.yaml")
    out, html = tmp_path / "out.yaml", tmp_path / "align.html"
    args = [
        "--people",
        str(people),
        "--okrs",
        str(okrs),
        "--depth",
        "2",
        "--out",
        str(out),
        "--html",
        str(html),
    ]
    result = runner.invoke(cascade_command, args)
    assert result.exit_code == 0, result.output
    assert "generated 3 objective(s)" in result.output
    written = load_okrs(out)
    assert len(written.objectives) == 4
    assert "OKR cascade: okrs.yaml" in html.read_text(encoding="utf-8")
    again = runner.invoke(cascade_command, ["--people", str(people), "--okrs", str(out), "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["generated"] == 0


def test_cascade_json_summary_and_team_mode(runner: CliRunner, tmp_path: Path) -> None:
    people = jsonl(tmp_path / "people.jsonl", CLEAN)
    okrs = okr_file(tmp_path / "okrs.yaml")
    out = tmp_path / "out.json"
    args = ["--people", str(people), "--okrs", str(okrs), "--mode", "team", "--json", "--out", str(out)]
    result = runner.invoke(cascade_command, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["generated"] == 1 and summary["problems"] == []
    assert {s["person_id"] for s in summary["skipped"]} == {"3", "4"}
    assert json.loads(out.read_text(encoding="utf-8"))["objectives"][1]["owner"] == "2"


def test_cascade_with_unknown_owner_exits_four(runner: CliRunner, tmp_path: Path) -> None:
    people = jsonl(tmp_path / "people.jsonl", CLEAN)
    okrs = okr_file(tmp_path / "okrs.yaml", owner="404")
    result = runner.invoke(cascade_command, ["--people", str(people), "--okrs", str(okrs), "--json"])
    assert result.exit_code == 4
    summary = json.loads(result.output)
    assert [p["code"] for p in summary["problems"]] == ["unknown_owner"]


def test_cascade_refuses_a_blocking_hierarchy(runner: CliRunner, tmp_path: Path) -> None:
    people = jsonl(tmp_path / "people.jsonl", BROKEN)
    okrs = okr_file(tmp_path / "okrs.yaml")
    args = ["--people", str(people), "--okrs", str(okrs), "--policy", "cycles=stop"]
    result = runner.invoke(cascade_command, args)
    assert result.exit_code == 4 and "cycles policy is 'stop'" in result.output


def test_cascade_bad_inputs_exit_two(runner: CliRunner, tmp_path: Path) -> None:
    people = jsonl(tmp_path / "people.jsonl", CLEAN)
    okrs = okr_file(tmp_path / "okrs.yaml")
    bad_template = runner.invoke(
        cascade_command, ["--people", str(people), "--okrs", str(okrs), "--title-template", "{oops}"]
    )
    assert bad_template.exit_code == 2 and "title_template" in bad_template.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("objectives:\n  - {id: O1, owner: '1'}\n", encoding="utf-8")
    result = runner.invoke(cascade_command, ["--people", str(people), "--okrs", str(broken)])
    assert result.exit_code == 2
    assert "broken.yaml" in result.output and "objectives[0] (id O1): field 'title'" in result.output


# ------------------------------------------------------------------------------------- org impact


def test_impact_json(runner: CliRunner, tmp_path: Path) -> None:
    before = jsonl(tmp_path / "before.jsonl", CLEAN)
    moved = [dict(r, manager_id="1") if r["id"] == "3" else r for r in CLEAN]
    after = jsonl(tmp_path / "after.jsonl", moved)
    result = runner.invoke(org, ["impact", "--before", str(before), "--after", str(after), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["moved"] == [{"person_id": "3", "old_manager_id": "2", "new_manager_id": "1"}]
    text = runner.invoke(org, ["impact", "--before", str(before), "--after", str(after)])
    assert "moved   3: 2 -> 1" in text.output


def test_impact_with_okrs_lists_orphaned_alignments(runner: CliRunner, tmp_path: Path) -> None:
    before = jsonl(tmp_path / "before.jsonl", CLEAN)
    after = jsonl(tmp_path / "after.jsonl", [dict(r, manager_id="1") if r["id"] == "3" else r for r in CLEAN])
    people_okrs = okr_file(tmp_path / "okrs.yaml", owner="2")
    generated = tmp_path / "cascade.yaml"
    made = runner.invoke(
        cascade_command, ["--people", str(before), "--okrs", str(people_okrs), "--out", str(generated)]
    )
    assert made.exit_code == 0, made.output
    args = ["impact", "--before", str(before), "--after", str(after), "--okrs", str(generated)]
    result = runner.invoke(org, [*args, "--json"])
    assert result.exit_code == 0, result.output
    (impact,) = json.loads(result.output)["alignments"]
    assert impact["status"] == "orphaned" and impact["suggested_owner_id"] == "1"
    text = runner.invoke(org, args)
    assert "orphaned" in text.output and "no longer reports into 2's organisation" in text.output
