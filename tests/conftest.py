"""Shared fixtures: emulators started in-process on free ports."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from okrsync.sandbox import FaultSpec, RunningEmulator, SandboxOrg, create_emulator, serve

StartEmulator = Callable[..., RunningEmulator]


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """``start_emulator("entra", org=SandboxOrg(100), faults="429=0.1", **options)`` → a running emulator.

    Everything started is stopped when the test ends.
    """
    with ExitStack() as stack:

        def start(
            system: str, org: SandboxOrg | None = None, faults: str | None = None, **options: Any
        ) -> RunningEmulator:
            emulator = create_emulator(
                system, org or SandboxOrg(100, seed=1), faults=FaultSpec.parse(faults), **options
            )
            return stack.enter_context(serve(emulator))

        yield start


def require_or_skip(available: bool, reason: str, env: str) -> None:
    """Skip with a reason on a bare machine; fail under CI (``env`` set), where skipping would hide a gap."""
    if available:
        return
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason} (required here because {env}=1)")
    pytest.skip(reason)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print the reliability figures (cases, faults injected, retries, crashes survived) at the end."""
    import sys

    module = sys.modules.get("tests.reliability.summary")
    figures = getattr(module, "FIGURES", None)
    if not figures:
        return
    labels = {
        "fault_runs": "fault-suite pipeline runs",
        "faults_injected": "faults injected (emulator /_sandbox/stats)",
        "retries_logged": "retries logged (requests or $batch items re-sent)",
        "crashes": "SIGKILLs survived (integrity ok, rerun converged)",
        "crashes_mid_batch": "  of which landed mid-batch (target partly written)",
        "lock_refusals": "overlapping runs refused by the job lock",
        "corpus_cases": "hostile-input corpus cases (people files + vendor bodies)",
        "secrets_scanned": "secret/token values scanned for",
        "artifacts_scanned": "artifacts scanned (logs, state DB, reports, CLI output, errors)",
        "leaks": "secret leaks found",
        "graph_100k_users_per_s": "Graph emulator, 100,000 users, cold $top=999 listing: users/s",
        "graph_100k_rss_mib": "  its RSS (MiB, must stay under 1,024)",
    }
    terminalreporter.write_sep("=", "reliability summary")
    for key, label in labels.items():
        if key in figures:
            terminalreporter.write_line(f"  {label:<58} {figures[key]}")
    for key in sorted(set(figures) - set(labels)):
        terminalreporter.write_line(f"  {key:<58} {figures[key]}")
