"""Crash suite: SIGKILL ``okrsync sync`` at 10 seeded random points, then prove recovery.

The job (Workday → Entra + SCIM + SuccessFactors goals) runs as ``python -m okrsync.cli``
in a subprocess against emulators served by this test process. Kill times are drawn across
the measured duration of a fault-free run, so kills land in the pull, the apply and the goals
phase. Timing alone cannot promise a kill mid-batch (on a fast machine the apply lasts a few
milliseconds), so unless a seeded point already did, one more run is aimed at it: the Entra
emulator answers slowly and the test polls the targets, killing as soon as they are partly
written (proven by reading them again after the kill). After every kill:
``integrity_check() == []``; a rerun converges to the fault-free target state with no
duplicates; the run after that writes nothing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from okrsync.state import open_state
from tests.reliability.pipeline import Pipeline, control
from tests.reliability.summary import record

WORKERS = 100
KILLS = 10
SEED = 20240531


def cli(pipe: Pipeline, *args: str) -> list[str]:
    return [sys.executable, "-m", "okrsync.cli", "-c", str(pipe.config_path), *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def fault_free(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The target state of an uninterrupted CLI run, and how long that run took."""
    with Pipeline(tmp_path_factory.mktemp("fault-free"), WORKERS) as pipe:
        t0 = time.monotonic()
        proc = subprocess.run(
            cli(pipe, "sync", "nightly"), capture_output=True, text=True, timeout=300, env=env()
        )
        duration = time.monotonic() - t0
        assert proc.returncode == 0, proc.stderr[-3000:]
        state = pipe.target_state()
    assert not state["duplicates"]
    return {"state": state, "duration": duration}


def partially_written(pipe: Pipeline, full: dict[str, Any]) -> bool:
    entra, scim, goals = len(pipe.entra_users()), len(pipe.scim_users()), len(pipe.goal_rows())
    return 0 < entra < len(full["entra"]) or 0 < scim < len(full["scim"]) or 0 < goals < len(full["goals"])


def test_sigkill_at_random_points_then_rerun_converges(fault_free: dict[str, Any], tmp_path: Path) -> None:
    rng = random.Random(SEED)
    duration = fault_free["duration"]
    full = fault_free["state"]
    mid_batch = 0
    outcomes: list[tuple[float, str, bool]] = []
    delays = [rng.uniform(0.25, 0.97) * duration for _ in range(KILLS)]
    # a run can finish before its kill point: then more seeded points until 10 kills landed
    extra = [rng.uniform(0.25, 0.9) * duration for _ in range(8)]
    kills = 0
    for n, delay in enumerate(delays + extra):
        if n >= KILLS and kills >= KILLS:
            break
        killed, partial = kill_and_recover(tmp_path / f"kill-{n}", n, delay, full)
        kills += killed
        mid_batch += partial
        outcomes.append((round(delay, 2), "killed" if killed else "finished", partial))
    for attempt in range(3):
        if mid_batch:
            break
        killed, partial = kill_and_recover(tmp_path / f"aimed-{attempt}", 100 + attempt, None, full)
        kills += killed
        mid_batch += partial
        outcomes.append((-1.0, "killed when partly written" if killed else "finished", partial))
    print("kill points (delay s or -1 if aimed, outcome, target partly written):", outcomes)
    assert kills >= KILLS, outcomes
    assert mid_batch >= 1, f"no kill landed mid-apply: {outcomes}"


def test_an_overlapping_run_of_the_same_job_is_refused(tmp_path: Path) -> None:
    """The first run is slowed by the sandbox; the second, started meanwhile, must refuse with exit 1."""
    with Pipeline(tmp_path, 60, faults="slow=1.0,slow_seconds=0.15", scim=False, goals=False) as pipe:
        first = subprocess.Popen(
            cli(pipe, "sync", "nightly"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # wait until the first run holds the lock
                if (pipe.folder / "state.db").exists():
                    store = open_state(str(pipe.folder / "state.db"))
                    try:
                        if any(r.status == "running" for r in store.runs("nightly")):
                            break
                    finally:
                        store.close()
                time.sleep(0.05)
            second = subprocess.run(
                cli(pipe, "sync", "nightly"), capture_output=True, text=True, timeout=120, env=env()
            )
            assert first.poll() is None, "the first run ended before the second started: slow it down"
            assert second.returncode == 1, (
                second.returncode,
                second.stderr,
            )  # LockError: a StateError, exit 1
            assert "job 'nightly' is already running" in second.stderr
            assert f"pid {first.pid}" in second.stderr
        finally:
            _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err[-2000:]
        record("lock_refusals", 1)


def kill_when_partly_written(pipe: Pipeline, proc: subprocess.Popen[bytes], full: dict[str, Any]) -> None:
    """SIGKILL ``proc`` as soon as a target is partly written; Entra answers slowly meanwhile."""
    control(pipe.runs["entra"], "/_sandbox/faults", {"spec": "slow=1.0,slow_seconds=0.15"})
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            if partially_written(pipe, full):
                proc.send_signal(signal.SIGKILL)
                return
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        control(pipe.runs["entra"], "/_sandbox/faults", {"spec": ""})


def kill_and_recover(folder: Path, n: int, delay: float | None, full: dict[str, Any]) -> tuple[bool, bool]:
    """SIGKILL one sync after ``delay`` s (``None``: once partly written), check the store, rerun to
    convergence; (killed, mid-batch)."""
    with Pipeline(folder, WORKERS) as pipe:
        proc = subprocess.Popen(
            cli(pipe, "sync", "nightly"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env()
        )
        if delay is None:
            kill_when_partly_written(pipe, proc, full)
        else:
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed = proc.returncode == -signal.SIGKILL
        partial = killed and partially_written(pipe, full)
        store = open_state(str(pipe.folder / "state.db"))
        try:
            assert store.integrity_check() == [], f"kill {n} at {delay:.2f}s"
            runs = store.runs("nightly")
            if killed and runs:
                # a kill that lands after the commit leaves a finished run: recovery must still hold
                assert runs[0].status in {"running", "interrupted", "ok"}, runs[0].status
        finally:
            store.close()
        report = pipe.sync()
        assert report.status in {"ok", "no_change"}, (n, report.lines())
        state = pipe.target_state()
        assert state["duplicates"] == [], f"kill {n} at {delay:.2f}s"
        for target in ("entra", "scim", "goals"):
            assert state[target] == full[target], f"kill {n} at {delay:.2f}s: {target} did not converge"
        again = pipe.sync()
        assert again.status == "no_change" and again.writes == 0, again.lines()
        store = open_state(str(pipe.folder / "state.db"))
        try:
            assert store.integrity_check() == []
        finally:
            store.close()
        record("crashes", int(killed))
        record("crashes_mid_batch", int(partial))
        return killed, bool(partial)
