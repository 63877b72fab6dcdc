"""Serve the Graph + login emulator in its own process: ``python -m okrsync.sandbox.graph``."""

from __future__ import annotations

import argparse
import sys

from okrsync.sandbox.graph import GraphEmulator
from okrsync.sandbox.orgs import SandboxOrg
from okrsync.sandbox.process import serve_main
from okrsync.sandbox.server import FaultSpec


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--directory", default="same", choices=("same", "empty", "stale"))
    parser.add_argument("--stale-fraction", type=float, default=0.2)


def _build(org: SandboxOrg, faults: FaultSpec, args: argparse.Namespace) -> GraphEmulator:
    return GraphEmulator(org, faults=faults, directory=args.directory, stale_fraction=args.stale_fraction)


def main(argv: list[str] | None = None) -> int:
    return serve_main("graph", _build, argv, add_options=_options, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
