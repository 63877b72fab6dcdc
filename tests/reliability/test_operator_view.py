"""The operator's view and the deletion safeguard, end to end through the CLI on the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.reliability.pipeline import Pipeline, control


def run_cli(pipe: Pipeline, *args: str, json_logs: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "okrsync.cli"]
    if json_logs:
        command += ["--log-level", "debug", "--log-format", "json"]
    command += ["-c", str(pipe.config_path), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ))


def test_a_source_returning_60_percent_stops_before_any_write(tmp_path: Path) -> None:
    with Pipeline(tmp_path, 100, scim=False, goals=False, max_deletes="5%") as pipe:
        assert run_cli(pipe, "sync", "nightly").returncode == 0
        before = pipe.entra_users()
        workers = [w for w in pipe.org if w.manager is not None]
        hidden = workers[::5][:20] + workers[1::5][:20]  # 40 of 100 vanish from Workday
        for w in hidden:
            pipe.org.delete(w.employee_id)
        proc = run_cli(pipe, "sync", "nightly", "--full", "--json")
        assert proc.returncode == 3, proc.stderr[-2000:]
        report = json.loads(proc.stdout)
        assert report["status"] == "policy_stop" and "5%" in report["blocked"]
        in_entra = {u["employeeId"] for u in before}
        would = set(report["targets"]["entra"]["would_remove"])
        assert would <= {w.employee_id for w in hidden} & in_entra and len(would) >= 30  # leavers already off
        assert report["targets"]["entra"]["written"] == 0
        assert pipe.entra_users() == before, "the Entra directory must be untouched"
        shown = run_cli(pipe, "runs", "show", "2")
        assert ("policy_stop" in shown.stdout and "BLOCKED" in shown.stdout) or "5%" in shown.stdout


def test_json_logs_runs_show_reports_and_why_across_three_runs(tmp_path: Path) -> None:
    with Pipeline(tmp_path, 80, scim=False, goals=False, faults="429=0.05,retry_after=0.05,seed=3") as pipe:
        first = run_cli(pipe, "sync", "nightly", json_logs=True)
        assert first.returncode == 0, first.stderr[-2000:]
        lines = [line for line in first.stderr.splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]  # one JSON object per line, nothing else
        assert all({"level", "logger", "message"} <= set(r) for r in records)
        worker = next(w for w in pipe.org if w.manager is not None and w.status == "active")
        pipe.org.rename(worker.employee_id, department="Reliability")
        assert run_cli(pipe, "sync", "nightly", "--full").returncode == 0
        pipe.org.rename(worker.employee_id, title="Principal Reliability Engineer")
        assert run_cli(pipe, "sync", "nightly", "--full").returncode == 0
        for run_id in (1, 2, 3):
            assert (pipe.folder / "reports" / f"run-{run_id}.json").exists()
            html = (pipe.folder / "reports" / f"run-{run_id}.html").read_text()
            assert html.lstrip().lower().startswith("<!doctype html")
        shown = run_cli(pipe, "runs", "show", "1")
        assert "target entra: create" in shown.stdout and "phases:" in shown.stdout
        data = json.loads(run_cli(pipe, "runs", "show", "2", "--json").stdout)
        assert data["summary"]["targets"]["entra"]["counts"].get("update", 0) >= 1
        why = json.loads(run_cli(pipe, "why", worker.employee_id, "--json").stdout)
        ops = [(e["run"], e["operation"], sorted(e["changes"] or {})) for e in why]
        assert (3, "update", ["title"]) in ops and (2, "update", ["department"]) in ops
        assert any(r == 1 and op == "create" for r, op, _ in ops)


def test_runs_show_counts_the_source_connectors_retries(tmp_path: Path) -> None:
    with Pipeline(tmp_path, 60, scim=False, goals=False) as pipe:
        control(pipe.runs["workday"], "/_sandbox/faults", {"spec": "503=0.5,retry_after=0.01,seed=4"})
        proc = run_cli(pipe, "sync", "nightly", "--json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        report = json.loads(proc.stdout)
        injected = sum(control(pipe.runs["workday"], "/_sandbox/stats")["faults"].values())
        assert injected >= 1, "the Workday emulator injected no fault: nothing to count"
        assert report["source_retries"] == injected  # every 503 from the source was retried once
        entra = report["targets"]["entra"]
        assert entra["requests"] >= 1 and entra["http_retries"] == 0  # the target had no faults
        shown = run_cli(pipe, "runs", "show", "1")
        assert f", {injected} retries" in next(
            line for line in shown.stdout.splitlines() if "source:" in line
        )
        assert f"; {entra['requests']} requests" in shown.stdout
        html = (pipe.folder / "reports" / "run-1.html").read_text()
        assert "<th>retries</th>" in html.split("<h2>Targets</h2>")[0]
