"""Serve the SuccessFactors emulator in its own process.

    python -m okrsync.sandbox.successfactors --workers 100000

The JSON line also carries ``basic_password`` for the legacy Basic path.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from okrsync.sandbox.orgs import SandboxOrg
from okrsync.sandbox.process import serve_main
from okrsync.sandbox.server import Emulator, FaultSpec
from okrsync.sandbox.successfactors import SuccessFactorsEmulator


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--goal-plans", default="1", help="comma-separated goal plan ids")
    parser.add_argument(
        "--no-goal-desc",
        action="store_true",
        help="goal templates without the optional 'desc' field (like SAP's published ones)",
    )


def _build(org: SandboxOrg, faults: FaultSpec, args: argparse.Namespace) -> SuccessFactorsEmulator:
    plans = tuple(int(p) for p in args.goal_plans.split(",") if p.strip())
    return SuccessFactorsEmulator(org, faults=faults, goal_plans=plans, goal_desc=not args.no_goal_desc)


def _extras(emulator: Emulator) -> dict[str, Any]:
    assert isinstance(emulator, SuccessFactorsEmulator)
    return {"basic_password": emulator.basic_password}


def main(argv: list[str] | None = None) -> int:
    return serve_main("successfactors", _build, argv, add_options=_options, extras=_extras, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
