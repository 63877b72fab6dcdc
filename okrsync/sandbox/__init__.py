"""Local emulators of the vendor APIs, one generated organisation behind them all.

Like moto for AWS: tests, integrators and ``okrsync demo`` rehearse a sync offline.
Each emulator module defines an :class:`~okrsync.sandbox.server.Emulator` subclass; this
registry maps the CLI's system names to them (imported lazily so a missing optional
piece never breaks the others).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from okrsync.sandbox.orgs import SandboxOrg, Worker
from okrsync.sandbox.server import Emulator, FaultSpec, RunningEmulator, sandbox_ca_path, serve

EMULATORS: dict[str, str] = {
    "entra": "okrsync.sandbox.graph:GraphEmulator",
    "successfactors": "okrsync.sandbox.successfactors:SuccessFactorsEmulator",
    "workday": "okrsync.sandbox.workday:WorkdayEmulator",
    "salesforce": "okrsync.sandbox.salesforce:SalesforceEmulator",
}


def emulator_class(system: str) -> type[Emulator]:
    if system not in EMULATORS:
        raise ValueError(f"unknown sandbox system {system!r}; choose from {', '.join(sorted(EMULATORS))}")
    module, _, name = EMULATORS[system].partition(":")
    cls: type[Emulator] = getattr(import_module(module), name)
    return cls


def create_emulator(
    system: str, org: SandboxOrg, *, faults: FaultSpec | None = None, **options: Any
) -> Emulator:
    return emulator_class(system)(org, faults=faults, **options)


__all__ = [
    "EMULATORS",
    "Emulator",
    "FaultSpec",
    "RunningEmulator",
    "SandboxOrg",
    "Worker",
    "create_emulator",
    "emulator_class",
    "sandbox_ca_path",
    "serve",
]
