"""Pure: what changed between two sets of people, after normalisation.

Targets re-format values (e-mail case, whitespace, empty string vs missing), and a sync
that compares raw values rewrites the same people every night. Comparing normalised
values is what makes the second run write nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from okrsync.models import Person

# fields that describe the record's provenance rather than the person: never a reason to write
IGNORED_FIELDS = frozenset({"raw_ref", "external_ids"})
CASE_INSENSITIVE_FIELDS = frozenset({"email", "user_name"})
COMPARED_FIELDS: tuple[str, ...] = tuple(f for f in Person.model_fields if f not in IGNORED_FIELDS)


def normalise(name: str, value: Any) -> Any:
    """The comparable form of a field value: blank → None, tuples sorted, enums by value."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        value = " ".join(value.split())
        if not value:
            return None
        if name in CASE_INSENSITIVE_FIELDS:
            return value.casefold()
        return value
    if isinstance(value, tuple | list):
        return tuple(sorted(str(v) for v in value)) or None
    if isinstance(value, dict):
        return {k: normalise(k, v) for k, v in sorted(value.items())} or None
    return value


def changed_fields(
    before: Person, after: Person, fields: Iterable[str] = COMPARED_FIELDS
) -> dict[str, tuple[Any, Any]]:
    """field → (old, new) for every compared field whose normalised value differs."""
    out: dict[str, tuple[Any, Any]] = {}
    for name in fields:
        old, new = getattr(before, name), getattr(after, name)
        if old is new or old == new:
            continue
        if normalise(name, old) != normalise(name, new):
            out[name] = (old, new)
    return out


@dataclass
class PeopleDiff:
    created: list[Person] = field(default_factory=list)
    updated: list[tuple[Person, Person, dict[str, tuple[Any, Any]]]] = field(default_factory=list)
    removed: list[Person] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.created or self.updated or self.removed)


def diff_people(
    before: Mapping[str, Person],
    after: Mapping[str, Person],
    fields: Iterable[str] = COMPARED_FIELDS,
) -> PeopleDiff:
    """Compare by id. Order of ``after`` is kept so callers can pre-sort (e.g. managers first)."""
    fields = tuple(fields)
    out = PeopleDiff()
    for pid, person in after.items():
        old = before.get(pid)
        if old is None:
            out.created.append(person)
            continue
        if old == person:  # the common nightly case, compared in C
            out.unchanged += 1
            continue
        changes = changed_fields(old, person, fields)
        if changes:
            out.updated.append((old, person, changes))
        else:
            out.unchanged += 1
    out.removed = [p for pid, p in before.items() if pid not in after]
    return out
