"""Figures the reliability tests record for the CI log's "reliability summary" (tests/conftest.py)."""

from __future__ import annotations

from collections import Counter

FIGURES: Counter[str] = Counter()


def record(name: str, value: int = 1) -> None:
    FIGURES[name] += value
