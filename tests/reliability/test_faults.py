"""Fault suite: Workday → (Entra people + managers, SCIM users, SuccessFactors goals) under vendor faults.

Every fault the sandbox can inject (429 with Retry-After, 500, 503, connection resets,
truncated bodies, slow answers, tokens expiring mid-run, Graph delta tokens expiring) is
thrown at every vendor emulator of the pipeline; each job must end in exactly the target state
of a fault-free run, with no duplicate record, and every injected fault must be matched by a
logged retry (``okrsync.http`` warnings, counted against ``/_sandbox/stats``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from okrsync.report import RunReport
from tests.reliability.pipeline import RETRIED_FAULTS, Pipeline, control
from tests.reliability.summary import record

WORKERS = 80
FAULTS: dict[str, str] = {
    "429": "429=0.12,retry_after=0.05",
    "500": "500=0.1",
    "503": "503=0.1,retry_after=0.05",
    "reset": "reset=0.1",
    "truncate": "truncate=0.08",
    "slow": "slow=0.2,slow_seconds=0.05",
    "token_ttl": "token_ttl=0.4",
    "mixed": "429=0.04,500=0.03,503=0.03,reset=0.04,slow=0.05,slow_seconds=0.05,retry_after=0.05",
}
ROUND = re.compile(r"round \d+: (\d+) \$batch item")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with Pipeline(tmp_path_factory.mktemp("baseline"), WORKERS) as pipe:
        report = pipe.sync()
        assert report.status == "ok", report.lines()
        state = pipe.target_state()
    assert not state["duplicates"]
    assert len(state["entra"]) > WORKERS * 0.9 and len(state["scim"]) == WORKERS and len(state["goals"]) > 20
    return state


def retries_logged(records: list[logging.LogRecord]) -> dict[str, tuple[int, int]]:
    """Per connector: (retry log lines, requests or $batch items they re-sent)."""
    out: dict[str, tuple[int, int]] = {}
    for r in records:
        message = r.getMessage()
        retried = ("retrying in", "re-submitting", "looking before retrying")
        if r.name != "okrsync.http" or not any(word in message for word in retried):
            continue
        # an expired token renewed is a retry, but not of an injected fault
        system = "token-renewals" if "token rejected" in message else message.split(" ", 1)[0]
        lines, resent = out.get(system, (0, 0))
        out[system] = (lines + 1, resent + (int(m.group(1)) if (m := ROUND.search(message)) else 1))
    return out


def assert_same_state(pipe: Pipeline, baseline: dict[str, Any], report: RunReport) -> None:
    assert report.status in {"ok", "no_change"}, report.lines()
    state = pipe.target_state()
    assert state["duplicates"] == []
    for target in ("entra", "scim", "goals"):
        assert state[target] == baseline[target], f"{target} differs from the fault-free run"


@pytest.mark.parametrize("kind", list(FAULTS))
def test_every_fault_converges_to_the_fault_free_state(
    kind: str, baseline: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="okrsync")
    seed = 1 + list(FAULTS).index(kind)
    with Pipeline(tmp_path, WORKERS, faults=f"{FAULTS[kind]},seed={seed}") as pipe:
        report = pipe.sync()
        injected = pipe.injected()
        assert_same_state(pipe, baseline, report)
        logged = retries_logged(caplog.records)
        record("fault_runs", 1)
        record("faults_injected", sum(injected.values()))
        record("retries_logged", sum(resent for _, resent in logged.values()))
        if kind in RETRIED_FAULTS:
            assert injected[kind] > 0, "the fault rate was too low to inject anything"
        # every retry the clients counted was logged ...
        assert sum(lines for lines, _ in logged.values()) == sum(pipe.http_retries.values()), (
            logged,
            pipe.http_retries,
        )
        # ... and every injected fault was retried: exactly, request for request, on Workday and SF
        for system in ("workday", "successfactors"):
            faults = pipe.runs[system].emulator.faults.injected
            retried = sum(faults[k] for k in RETRIED_FAULTS)
            assert logged.get(system, (0, 0))[1] == retried, f"{system}: {dict(faults)} vs {logged}"
        # Graph also draws faults per $batch item; there only 429/500/503 apply (a reset or a
        # truncation cannot hit one item of a batch answer), so they bound the re-sends from below
        graph = pipe.runs["entra"].emulator.faults.injected
        resent = logged.get("entra", (0, 0))[1]
        low = graph["429"] + graph["500"] + graph["503"]
        assert low <= resent <= sum(graph[k] for k in RETRIED_FAULTS), f"entra: {dict(graph)} vs {resent}"
        if kind == "token_ttl":
            tokens = sum(
                n for run in pipe.runs.values() for key, n in run.emulator.requests.items() if "token" in key
            )
            assert tokens > 3, "tokens expired mid-run but were never renewed"
        # a second night under the same faults changes nothing and duplicates nothing
        again = pipe.sync()
        assert again.status == "no_change" and again.writes == 0, again.lines()
        assert_same_state(pipe, baseline, again)


def test_workday_retries_are_logged_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The source's own retries: 429s and resets on Get_Workers pages (Count=30 → several pages)."""
    caplog.set_level(logging.WARNING, logger="okrsync")
    with Pipeline(
        tmp_path, 150, faults="429=0.1,reset=0.08,retry_after=0.05,seed=4", scim=False, goals=False
    ) as pipe:
        pipe.data["connections"]["workday"]["page_size"] = 30
        report = pipe.sync()
        injected = pipe.runs["workday"].emulator.faults.injected
        assert report.status == "ok", report.lines()
        assert injected["429"] + injected["reset"] > 0
        assert pipe.http_retries["workday"] >= injected["429"] + injected["reset"]
        record("faults_injected", sum(injected.values()))


def test_delta_token_expiry_means_a_full_resync_not_a_loss(tmp_path: Path) -> None:
    """Entra as the source: after edits the delta token expires (``/_sandbox/expire-delta``) → full resync."""
    from okrsync.config import parse_config
    from okrsync.engine import SyncEngine
    from okrsync.io import read_people
    from okrsync.sandbox import SandboxOrg, create_emulator, serve
    from okrsync.state import open_state

    org = SandboxOrg(120, seed=9)
    with serve(create_emulator("entra", org)) as run:
        raw = {
            "state": {"path": "state.db"},
            "connections": {"entra": run.connection(), "out": {"type": "files", "path": "out.jsonl"}},
            "jobs": {"j": {"source": "entra", "targets": ["out"], "max_deletes": "50%"}},
        }
        config = parse_config(raw, base_dir=tmp_path)
        state = open_state(str(tmp_path / "state.db"))
        try:
            first = SyncEngine(config, state).sync("j")
            assert first.status == "ok"
            org.random_edits(6, seed=3)
            control(run, "/_sandbox/expire-delta", {})
            second = SyncEngine(config, state).sync("j")
            assert second.status in {"ok", "failed_records"}, second.lines()
            assert second.mode == "full", "an expired delta token must restart with a full pull"
            held = {p.id: p.manager_id for p in read_people(tmp_path / "out.jsonl")}
            directory = control(run, "/_sandbox/directory")["users"]
            assert held == {u["id"]: u["manager"] for u in directory}, (
                "the resync holds the directory as it is"
            )
            record("faults_injected", 1)
        finally:
            state.close()
