"""Serve the Workday emulator in its own process: ``python -m okrsync.sandbox.workday --workers 100000``."""

from __future__ import annotations

import argparse
import sys

from okrsync.sandbox.orgs import SandboxOrg
from okrsync.sandbox.process import serve_main
from okrsync.sandbox.server import FaultSpec
from okrsync.sandbox.workday import WorkdayEmulator


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password", default=None, help="the ISU password (default: random)")


def _build(org: SandboxOrg, faults: FaultSpec, args: argparse.Namespace) -> WorkdayEmulator:
    return WorkdayEmulator(org, faults=faults, password=args.password)


def main(argv: list[str] | None = None) -> int:
    return serve_main("workday", _build, argv, add_options=_options, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
