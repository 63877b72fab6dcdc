"""Build and check the management hierarchy: the reporting graph every other phase leans on.

The cascade walks it to hand objectives down, the planner orders writes along it (a target
must know a manager before it can point a report at them) and the validation report explains
what was wrong with the source and what a policy did about it. So this module must be:

* **total** — any input, however broken, yields a usable forest plus a list of problems; it
  never raises on data (only on a bad policy string, which is configuration);
* **precise** — every defect is reported exactly once, naming the people involved and what the
  policy did, so an HR operator can fix the source rather than guess;
* **deterministic** — the same input gives the same problems, order and resolutions, so nightly
  runs are quiet when nothing changed;
* **linear and iterative** — org charts reach millions of people and management lines can be
  arbitrarily long in bad data, so there is no recursion and no per-node Python object beyond the
  ``Person`` the caller already holds. Ids are mapped to integer indexes once and all further work
  happens on flat lists indexed by those integers.

The core is one walk over the parent pointers (each person has at most one solid-line manager,
so the graph is a functional graph and cycles are found by colouring the climb). The same walk
resolves policies (an active report of a terminated manager, a manager outside the scope) and
computes levels, because every policy except ``fallback`` re-points a person to one of their own
ancestors, which the walk has already settled. Only ``fallback`` edges can point sideways (and
even create a loop), so they trigger a second, equally linear, pass.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from itertools import compress, islice, repeat
from operator import attrgetter, eq
from typing import Any

from okrsync.errors import ConfigError
from okrsync.models import Person, PersonStatus

__all__ = [
    "Hierarchy",
    "HierarchyPolicy",
    "Problem",
    "ProblemCode",
    "build_hierarchy",
]


class ProblemCode(StrEnum):
    CYCLE = "cycle"
    SELF_MANAGER = "self_manager"
    DANGLING_MANAGER = "dangling_manager"
    DANGLING_DOTTED_MANAGER = "dangling_dotted_manager"
    DUPLICATE_ID = "duplicate_id"
    DUPLICATE_EMAIL = "duplicate_email"
    MULTIPLE_ROOTS = "multiple_roots"
    INACTIVE_MANAGER = "inactive_manager"
    OUT_OF_SCOPE_MANAGER = "out_of_scope_manager"


# Problems are listed grouped by code in this order: identity defects first (they decide who
# the graph's nodes are), then edge defects, then what the policies did, then the overall shape.
_CODE_ORDER: tuple[ProblemCode, ...] = (
    ProblemCode.DUPLICATE_ID,
    ProblemCode.DUPLICATE_EMAIL,
    ProblemCode.SELF_MANAGER,
    ProblemCode.DANGLING_MANAGER,
    ProblemCode.DANGLING_DOTTED_MANAGER,
    ProblemCode.CYCLE,
    ProblemCode.OUT_OF_SCOPE_MANAGER,
    ProblemCode.INACTIVE_MANAGER,
    ProblemCode.MULTIPLE_ROOTS,
)

# How many names a message spells out before it says "and N more"; person_ids always has all.
_NAMES_IN_MESSAGE = 10


@dataclass(frozen=True)
class Problem:
    """One defect of the source data, and what the policy did about it (``resolution``)."""

    code: ProblemCode
    person_ids: tuple[str, ...]
    field: str
    message: str
    resolution: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": str(self.code),
            "person_ids": list(self.person_ids),
            "field": self.field,
            "message": self.message,
            "resolution": self.resolution,
        }


_REASSIGN_CHOICES = ("nearest_active", "none", "keep")
_FALLBACK = "fallback:"
_CYCLE_CHOICES = ("break", "stop")
_DANGLING_CHOICES = ("none",)


def _check_choice(key: str, value: object, choices: tuple[str, ...], fallback: bool) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"hierarchy policy {key!r} must be a string, got {value!r}", key=key)
    if value in choices:
        return
    if fallback and value.startswith(_FALLBACK) and value[len(_FALLBACK) :].strip():
        return
    allowed = [*choices, "fallback:<person id>"] if fallback else list(choices)
    raise ConfigError(
        f"invalid hierarchy policy {key} = {value!r}; expected one of: {', '.join(allowed)}",
        key=key,
        value=value,
    )


@dataclass(frozen=True)
class HierarchyPolicy:
    """What to do with defects that have a reasonable automatic fix.

    Defaults repair the graph conservatively and say so in each problem's ``resolution``:
    an active report of a terminated manager moves up to the nearest active ancestor (what HR
    does by hand), loops are cut at one deterministic edge, and a manager id that names no one
    is dropped rather than guessed.
    """

    inactive_manager: str = "nearest_active"
    out_of_scope_manager: str = "nearest_active"
    cycles: str = "break"
    dangling: str = "none"

    def __post_init__(self) -> None:
        # Validated here as well as in parse() so that a policy built in code fails just as early.
        _check_choice("inactive_manager", self.inactive_manager, _REASSIGN_CHOICES, fallback=True)
        _check_choice("out_of_scope_manager", self.out_of_scope_manager, _REASSIGN_CHOICES, fallback=True)
        _check_choice("cycles", self.cycles, _CYCLE_CHOICES, fallback=False)
        _check_choice("dangling", self.dangling, _DANGLING_CHOICES, fallback=True)

    @classmethod
    def parse(cls, mapping: Mapping[str, str]) -> HierarchyPolicy:
        """Build from config values (e.g. a ``[jobs.x]`` table); unknown keys are errors, not ignored,
        because a misspelt policy key silently falling back to the default is how wrong data ships."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in mapping if k not in known)
        if unknown:
            raise ConfigError(
                f"unknown hierarchy policy key(s): {', '.join(map(repr, unknown))}; "
                f"known keys: {', '.join(sorted(known))}",
                key=unknown[0],
            )
        return cls(**{k: mapping[k] for k in mapping})


_DEFAULT_POLICY = HierarchyPolicy()

# Derived from the model's own ``is_active`` so the two can never disagree about who counts.
_INACTIVE_STATUSES = frozenset(
    s for s in PersonStatus if not Person.model_construct(id="_", status=s).is_active
)

# Field readers for C-level passes over the people: at a million people a Python-level loop
# costs as much as the memory traffic it causes.
_ID = attrgetter("id")
_MANAGER_ID = attrgetter("manager_id")
_EMAIL = attrgetter("email")
_STATUS = attrgetter("status")
_DOTTED = attrgetter("additional_manager_ids")

# Colouring of the walks, kept in the level array itself; values >= 0 are settled levels.
_UNSEEN = -2
_ON_PATH = -3


def _names(ids: Iterable[str]) -> str:
    listed = list(ids)
    shown = ", ".join(repr(i) for i in listed[:_NAMES_IN_MESSAGE])
    if len(listed) > _NAMES_IN_MESSAGE:
        shown += f" and {len(listed) - _NAMES_IN_MESSAGE} more"
    return shown


def _fallback_id(value: str) -> str | None:
    return value[len(_FALLBACK) :].strip() if value.startswith(_FALLBACK) else None


class _PeopleView(Mapping[str, Person]):
    """``Hierarchy.people`` without a second million-entry dict: a view over the id index."""

    __slots__ = ("_index", "_inside", "_persons", "_size")

    def __init__(
        self, index: dict[str, int], persons: list[Person], inside: bytearray | None, size: int
    ) -> None:
        self._index = index
        self._persons = persons
        self._inside = inside
        self._size = size

    def __getitem__(self, key: str) -> Person:
        i = self._index[key]
        if self._inside is not None and not self._inside[i]:
            raise KeyError(key)
        return self._persons[i]

    def __contains__(self, key: object) -> bool:
        i = self._index.get(key) if isinstance(key, str) else None
        return i is not None and (self._inside is None or bool(self._inside[i]))

    def __iter__(self) -> Iterator[str]:
        if self._inside is None:
            return iter(self._index)
        return compress(self._index, self._inside)

    def __len__(self) -> int:
        return self._size


class Hierarchy:
    """The effective reporting forest of the in-scope people, after policies, plus its problems.

    Built by :func:`build_hierarchy`; query methods take and return person ids. Asking about an
    id that is not in :attr:`people` raises ``KeyError``. Levels and order are computed during
    the build; children lists and subtree sizes are computed on first use, because the sync path
    (order + managers) does not need them and they cost as much as the build's main walk.
    """

    def __init__(
        self,
        *,
        ids: list[str],
        index: dict[str, int],
        persons: list[Person],
        inside: bytearray | None,
        parent: list[int],
        level: list[int],
        order: list[int],
        n_roots: int,
        external: dict[int, str],
        dotted: dict[int, tuple[str, ...]],
        problems: list[Problem],
        policy: HierarchyPolicy,
    ) -> None:
        self._ids = ids
        self._index = index
        self._persons = persons
        self._inside = inside
        self._parent = parent
        self._level = level
        self._order = order
        self._n_roots = n_roots
        self._external = external
        self._dotted = dotted
        self.problems = problems
        self.policy = policy
        self.people: Mapping[str, Person] = _PeopleView(index, persons, inside, len(order))
        self._children: list[int] | None = None
        self._child_parent: list[int] | None = None
        self._sizes: list[int] | None = None

    # -- lookups ---------------------------------------------------------------------------

    def _i(self, pid: str) -> int:
        i = self._index.get(pid)
        if i is None or (self._inside is not None and not self._inside[i]):
            raise KeyError(pid)
        return i

    def manager_of(self, pid: str) -> str | None:
        """Effective solid-line manager; under ``out_of_scope_manager="keep"`` this may be an id
        outside :attr:`people` (the person is then a root of the in-scope forest)."""
        i = self._i(pid)
        j = self._parent[i]
        if j >= 0:
            return self._ids[j]
        return self._external.get(i)

    def dotted_managers(self, pid: str) -> tuple[str, ...]:
        """Dotted-line managers that are in the hierarchy; never part of chains or levels."""
        return self._dotted.get(self._i(pid), ())

    def _kids(self) -> tuple[list[int], list[int]]:
        if self._children is None or self._child_parent is None:
            # A stable sort of the non-roots by parent index: siblings stay in order() order, and
            # bisect on the parallel parent list finds a person's reports without an offsets array.
            parent = self._parent
            kids = sorted(self._order[self._n_roots :], key=parent.__getitem__)
            self._children = kids
            self._child_parent = [parent[k] for k in kids]
        return self._children, self._child_parent

    def _kid_slice(self, i: int) -> list[int]:
        kids, kpar = self._kids()
        lo = bisect_left(kpar, i)
        return kids[lo : bisect_right(kpar, i, lo)]

    def direct_reports(self, pid: str) -> list[str]:
        ids = self._ids
        return sorted(ids[k] for k in self._kid_slice(self._i(pid)))

    def span(self, pid: str) -> int:
        _, kpar = self._kids()
        i = self._i(pid)
        lo = bisect_left(kpar, i)
        return bisect_right(kpar, i, lo) - lo

    def chain(self, pid: str) -> list[str]:
        """Managers from the nearest up to the root, within the hierarchy (a manager kept outside
        the scope ends the chain unlisted: nothing is known of their own line)."""
        i = self._i(pid)
        parent, ids = self._parent, self._ids
        out: list[str] = []
        j = parent[i]
        while j >= 0:
            out.append(ids[j])
            j = parent[j]
        return out

    def level(self, pid: str) -> int:
        return self._level[self._i(pid)]

    def _subtree_sizes(self) -> list[int]:
        if self._sizes is None:
            parent = self._parent
            sizes = [1] * len(parent)
            for u in reversed(self._order):
                p = parent[u]
                if p >= 0:
                    sizes[p] += sizes[u]
            self._sizes = sizes
        return self._sizes

    def subtree_size(self, pid: str) -> int:
        return self._subtree_sizes()[self._i(pid)]

    def roots(self) -> list[str]:
        ids = self._ids
        return [ids[i] for i in self._order[: self._n_roots]]

    def order(self) -> list[str]:
        """Every manager before each of their reports: by level, then in input order.

        Input order (not id order) breaks ties because sorting a million strings would cost more
        than the whole build; it is just as deterministic for the same input.
        """
        ids = self._ids
        return [ids[i] for i in self._order]

    def subtree(self, pid: str) -> list[str]:
        """``pid`` and everyone below, in :meth:`order` order."""
        start = self._i(pid)
        found = [start]
        for u in found:  # BFS; appending while iterating is how the list grows
            found.extend(self._kid_slice(u))
        level = self._level
        found.sort(key=lambda i: (level[i], i))
        ids = self._ids
        return [ids[i] for i in found]

    def resolved_people(self) -> list[Person]:
        """People in :meth:`order` with ``manager_id`` (and ``additional_manager_ids``) set to the
        effective values; unchanged people are returned as they are (frozen, so safe to share)."""
        ids, persons, parent, external, dotted = (
            self._ids,
            self._persons,
            self._parent,
            self._external,
            self._dotted,
        )
        out: list[Person] = []
        for i in self._order:
            person = persons[i]
            j = parent[i]
            manager = ids[j] if j >= 0 else external.get(i)
            update: dict[str, Any] = {}
            if manager != person.manager_id:
                update["manager_id"] = manager
            kept = dotted.get(i, ())
            if kept != person.additional_manager_ids:
                update["additional_manager_ids"] = kept
            out.append(person.model_copy(update=update) if update else person)
        return out

    @property
    def has_blocking_problems(self) -> bool:
        """True when the source has reporting loops and the policy says to stop rather than cut."""
        return self.policy.cycles == "stop" and any(p.code is ProblemCode.CYCLE for p in self.problems)

    def max_depth(self) -> int:
        return self._level[self._order[-1]] if self._order else 0

    def largest_spans(self, limit: int = 10) -> list[tuple[str, int]]:
        counts = Counter(map(self._parent.__getitem__, self._order))
        counts.pop(-1, None)
        ids = self._ids
        top = heapq.nsmallest(limit, counts.items(), key=lambda kv: (-kv[1], ids[kv[0]]))
        return [(ids[i], n) for i, n in top]

    def report(self) -> dict[str, Any]:
        counts = Counter(str(p.code) for p in self.problems)
        return {
            "people": len(self._order),
            "roots": self.roots(),
            "max_depth": self.max_depth(),
            "largest_spans": [{"id": pid, "span": n} for pid, n in self.largest_spans()],
            "problem_counts": {str(c): counts[str(c)] for c in _CODE_ORDER if counts[str(c)]},
            "blocking": self.has_blocking_problems,
            "problems": [p.to_dict() for p in self.problems],
        }


def _dedupe(persons: list[Person]) -> tuple[list[Person], list[str], dict[str, int], dict[str, int]]:
    """Keep the first record of each id; returns (people, ids, index, occurrences of duplicated ids)."""
    ids = list(map(_ID, persons))
    index = dict(zip(ids, range(len(ids)), strict=True))
    if len(index) == len(ids):
        return persons, ids, index, {}
    counts = Counter(ids)
    dupes = {k: n for k, n in counts.items() if n > 1}
    kept: list[Person] = []
    index = {}
    for p in persons:
        if p.id not in index:
            index[p.id] = len(kept)
            kept.append(p)
    return kept, [p.id for p in kept], index, dupes


def build_hierarchy(
    people: Iterable[Person],
    policy: HierarchyPolicy = _DEFAULT_POLICY,
    scope: Callable[[Person], bool] | None = None,
) -> Hierarchy:
    """Index, validate and repair the reporting graph in linear time.

    ``scope(p)`` False keeps ``p`` out of the result, but ``p`` still takes part in walks up the
    solid line (a report of an out-of-scope manager can be re-pointed to the first in-scope
    active ancestor above them) and still counts as existing (so it is not "dangling").
    """
    # A copy even of a list: the hierarchy indexes into it and must not see the caller mutate it.
    persons, ids, index, dupes = _dedupe(list(people))
    n = len(persons)
    by_code: dict[ProblemCode, list[Problem]] = {c: [] for c in _CODE_ORDER}

    inside: bytearray | None = None
    outside: list[int] = []
    if scope is not None:
        inside = bytearray(map(bool, map(scope, persons)))
        if inside.count(1) == n:
            inside = None
        else:
            outside = [i for i in range(n) if not inside[i]]

    def in_scope(i: int) -> bool:
        return inside is None or bool(inside[i])

    for pid, count in dupes.items():
        if in_scope(index[pid]):
            by_code[ProblemCode.DUPLICATE_ID].append(
                Problem(
                    ProblemCode.DUPLICATE_ID,
                    (pid,),
                    "id",
                    f"id {pid!r} appears {count} times in the source",
                    f"kept the first record, ignored {count - 1} later one(s)",
                )
            )

    _check_emails(persons, inside, by_code[ProblemCode.DUPLICATE_EMAIL])

    # bad[i]: i cannot be anyone's effective manager without a policy (inactive or out of scope).
    bad = bytearray(n)
    for i in compress(range(n), map(_INACTIVE_STATUSES.__contains__, map(_STATUS, persons))):
        bad[i] = 1
    inactive = bytes(bad)  # before scope is folded in: the walk needs to tell the two apart
    for i in outside:
        bad[i] = 1

    manager_ids = list(map(_MANAGER_ID, persons))
    # -1 for "no manager" and for "no such person" alike; counting tells whether any dangle.
    parent = list(map(index.get, manager_ids, repeat(-1)))

    fallbacks: dict[int, tuple[ProblemCode, str, str]] = {}  # i -> (code, old manager id, fallback id)
    if parent.count(-1) != manager_ids.count(None):
        dangling_to = _fallback_id(policy.dangling)
        for i in range(n):
            mid = manager_ids[i]
            if mid is not None and parent[i] < 0 and in_scope(i):
                if dangling_to is not None:
                    fallbacks[i] = (ProblemCode.DANGLING_MANAGER, mid, dangling_to)
                else:
                    by_code[ProblemCode.DANGLING_MANAGER].append(
                        Problem(
                            ProblemCode.DANGLING_MANAGER,
                            (ids[i], mid),
                            "manager_id",
                            f"{ids[i]!r} reports to {mid!r}, who is not in the source",
                            f"manager cleared: {ids[i]!r} now has no manager",
                        )
                    )
    del manager_ids

    dotted = _check_dotted(persons, ids, index, inside, by_code)

    level = [_UNSEEN] * n
    external: dict[int, str] = {}
    _walk(
        ids=ids,
        persons=persons,
        parent=parent,
        level=level,
        bad=bad,
        inactive=inactive,
        inside=inside,
        policy=policy,
        by_code=by_code,
        fallbacks=fallbacks,
        external=external,
    )
    if fallbacks:
        _apply_fallbacks(ids, index, persons, parent, level, inside, fallbacks, by_code)
    for i in outside:
        level[i] = -1

    # index.values() rather than range(n): reuses the index's int objects instead of a million new ones.
    candidates: Iterable[int] = index.values() if inside is None else compress(index.values(), inside)
    order = sorted(candidates, key=level.__getitem__)
    n_roots = level.count(0)
    if n_roots > 1:
        roots = [ids[i] for i in order[:n_roots]]
        by_code[ProblemCode.MULTIPLE_ROOTS].append(
            Problem(
                ProblemCode.MULTIPLE_ROOTS,
                tuple(roots),
                "manager_id",
                f"{n_roots} people have no manager, so the hierarchy has {n_roots} roots: {_names(roots)}",
            )
        )

    # Within a code, problems follow the input order of the first person named; the walk visits
    # people in an order that is deterministic but meaningless to a reader.
    problems: list[Problem] = []
    for code in _CODE_ORDER:
        found_here = by_code[code]
        found_here.sort(key=lambda p: index.get(p.person_ids[0], n))
        problems.extend(found_here)
    return Hierarchy(
        ids=ids,
        index=index,
        persons=persons,
        inside=inside,
        parent=parent,
        level=level,
        order=order,
        n_roots=n_roots,
        external=external,
        dotted=dotted,
        problems=problems,
        policy=policy,
    )


def _check_emails(persons: list[Person], inside: bytearray | None, out: list[Problem]) -> None:
    """Duplicate emails, compared case-insensitively (mail systems do), among in-scope people.

    Only the hash of each folded address is kept, never the folded copies themselves (at a
    million people those were the build's largest transient). Equal addresses have equal hashes,
    so distinct hashes prove there is no duplicate (the common case, one C-level set build); a
    shared hash only makes its few addresses candidates, compared exactly below.
    """
    people: Iterable[Person] = persons if inside is None else compress(persons, inside)
    emails = list(filter(None, map(_EMAIL, people)))
    hashes = list(map(hash, map(str.casefold, emails)))
    if len(set(hashes)) == len(hashes):
        return
    ordered = sorted(hashes)
    shared = set(compress(ordered, map(eq, ordered, islice(ordered, 1, None))))
    del ordered
    # emails[t] is the address of persons[where[t]]
    where: Sequence[int]
    if inside is None and len(emails) == len(persons):
        where = range(len(persons))  # everyone has an address: no second pass over the people
    else:
        with_email = compress(range(len(persons)), map(_EMAIL, persons))
        where = list(with_email) if inside is None else [i for i in with_email if inside[i]]
    groups: dict[str, list[int]] = {}
    for t in compress(range(len(hashes)), map(shared.__contains__, hashes)):
        groups.setdefault(emails[t].casefold(), []).append(where[t])
    for members in groups.values():
        if len(members) < 2:
            continue  # a hash collision between different addresses
        who = tuple(persons[i].id for i in members)
        spelled = sorted({persons[i].email or "" for i in members})
        out.append(
            Problem(
                ProblemCode.DUPLICATE_EMAIL,
                who,
                "email",
                f"{_names(who)} share the email address {' / '.join(map(repr, spelled))}",
            )
        )


def _check_dotted(
    persons: list[Person],
    ids: list[str],
    index: dict[str, int],
    inside: bytearray | None,
    by_code: dict[ProblemCode, list[Problem]],
) -> dict[int, tuple[str, ...]]:
    """Dotted lines stay apart from the solid line: they never shape chains, levels or order."""
    dotted: dict[int, tuple[str, ...]] = {}
    for i in compress(range(len(persons)), map(_DOTTED, persons)):
        if inside is not None and not inside[i]:
            continue
        pid = ids[i]
        kept: list[str] = []
        for mid in dict.fromkeys(persons[i].additional_manager_ids):  # a repeat is no new defect
            j = index.get(mid)
            if j is None:
                by_code[ProblemCode.DANGLING_DOTTED_MANAGER].append(
                    Problem(
                        ProblemCode.DANGLING_DOTTED_MANAGER,
                        (pid, mid),
                        "additional_manager_ids",
                        f"{pid!r} has a dotted-line manager {mid!r}, who is not in the source",
                        f"dotted line to {mid!r} dropped",
                    )
                )
            elif j == i:
                by_code[ProblemCode.SELF_MANAGER].append(
                    Problem(
                        ProblemCode.SELF_MANAGER,
                        (pid,),
                        "additional_manager_ids",
                        f"{pid!r} is listed as their own dotted-line manager",
                        "dotted line to self dropped",
                    )
                )
            elif inside is None or inside[j]:
                kept.append(mid)
        dotted[i] = tuple(kept)
    return dotted


def _walk(
    *,
    ids: list[str],
    persons: list[Person],
    parent: list[int],
    level: list[int],
    bad: bytearray,
    inactive: bytes,
    inside: bytearray | None,
    policy: HierarchyPolicy,
    by_code: dict[ProblemCode, list[Problem]],
    fallbacks: dict[int, tuple[ProblemCode, str, str]],
    external: dict[int, str],
) -> None:
    """One colouring climb along the raw parent pointers: finds and cuts loops, applies the
    manager policies and fills ``level``; rewrites ``parent`` in place into the effective one.

    ``level`` doubles as the colouring (``_UNSEEN``, ``_ON_PATH``, or the settled level), so the
    walk touches as few arrays as possible: at a million people, memory traffic is the cost.
    A person is settled only after their raw manager is, so each needs O(1) work, and rewriting
    ``parent[k]`` once ``k`` is settled is safe because climbs stop at settled people.

    ``above[b]``, kept only for the few *bad* people (inactive or out of scope), is the nearest
    in-scope active person above ``b`` on the raw line (-1 if none): exactly what
    ``nearest_active`` needs for their reports. Good people are their own nearest.
    """
    n = len(parent)
    above: dict[int, int] = {}
    path: list[int] = []
    push = path.append
    pop = path.pop
    unseen, on_path = _UNSEEN, _ON_PATH
    stop = policy.cycles == "stop"

    def cut_loop(loop: list[int]) -> None:
        # ``loop[t]`` reports to ``loop[t + 1]``; rotate to start at the smallest id, cut its edge.
        start = min(range(len(loop)), key=lambda t: ids[loop[t]])
        loop = loop[start:] + loop[:start]
        parent[loop[0]] = -1
        who = tuple(ids[i] for i in loop)
        if len(loop) == 1:
            by_code[ProblemCode.SELF_MANAGER].append(
                Problem(
                    ProblemCode.SELF_MANAGER,
                    who,
                    "manager_id",
                    f"{who[0]!r} is listed as their own manager",
                    f"manager cleared: {who[0]!r} now has no manager",
                )
            )
            return
        if inside is not None and not any(inside[i] for i in loop):
            return  # a loop wholly outside the scope is not this hierarchy's defect
        ring = " → ".join(repr(x) for x in (*who, who[0]))
        if stop:
            resolution = (
                f"not resolved (cycles policy is 'stop'); {who[0]!r} is shown without a manager "
                "so the rest of the hierarchy can be inspected"
            )
        else:
            resolution = f"cycle broken: {who[0]!r} now has no manager"
        by_code[ProblemCode.CYCLE].append(
            Problem(
                ProblemCode.CYCLE,
                who,
                "manager_id",
                f"reporting loop of {len(who)} people: {ring}",
                resolution,
            )
        )

    def settle_slow(k: int, j: int) -> None:
        """Settle ``k`` whose raw manager ``j`` is inactive or out of scope (``j`` is settled)."""
        nearest_j = above[j]
        if bad[k]:
            above[k] = nearest_j
        if inside is not None and not inside[k]:
            level[k] = 0  # settled; out of scope, only a stepping stone for walks up the line
            return
        out_of_scope = inside is not None and not inside[j]
        if not out_of_scope and inactive[k]:
            level[k] = level[j] + 1  # an inactive report of an inactive manager is just data
            return
        pid, mid = ids[k], ids[j]
        if out_of_scope:
            code, choice = ProblemCode.OUT_OF_SCOPE_MANAGER, policy.out_of_scope_manager
            why = f"{pid!r} reports to {mid!r}, who is outside the scope of this hierarchy"
        else:
            code, choice = ProblemCode.INACTIVE_MANAGER, policy.inactive_manager
            why = f"{pid!r} ({persons[k].status}) reports to {mid!r}, who is {persons[j].status}"
        target = _fallback_id(choice)
        if target is not None:
            parent[k] = -1  # until the fallback pass, which may find the fallback below k
            level[k] = 0
            fallbacks[k] = (code, mid, target)
            return
        if choice == "keep":
            if out_of_scope:
                parent[k] = -1
                external[k] = mid
                level[k] = 0
                resolution = f"kept: {pid!r} still reports to {mid!r}, outside the hierarchy"
            else:
                level[k] = level[j] + 1
                resolution = f"kept: {pid!r} still reports to {mid!r}"
        elif choice == "nearest_active" and nearest_j >= 0:
            parent[k] = nearest_j
            level[k] = level[nearest_j] + 1
            resolution = f"reassigned to nearest active ancestor {ids[nearest_j]!r}"
        else:
            parent[k] = -1
            level[k] = 0
            if choice == "none":
                resolution = f"manager cleared: {pid!r} now has no manager"
            else:
                resolution = f"no active in-scope manager above {mid!r}: {pid!r} now has no manager"
        by_code[code].append(Problem(code, (pid, mid), "manager_id", why, resolution))

    for i in range(n):
        if level[i] != unseen:
            continue
        while True:
            j = i
            while j >= 0 and level[j] == unseen:
                level[j] = on_path
                push(j)
                j = parent[j]
            if j < 0 or level[j] != on_path:
                break
            # The climb met its own path: the part from j onwards is a loop. Cut it, forget the
            # climb and redo it; the loop's smallest id is now a root, so the redo terminates.
            cut_loop(path[path.index(j) :])
            for k in path:
                level[k] = unseen
            path.clear()
        while path:
            k = pop()
            j = parent[k]
            if j < 0:
                level[k] = 0
                if bad[k]:
                    above[k] = -1
            elif bad[j]:
                settle_slow(k, j)
            else:
                level[k] = level[j] + 1
                if bad[k]:
                    above[k] = j


def _apply_fallbacks(
    ids: list[str],
    index: dict[str, int],
    persons: list[Person],
    parent: list[int],
    level: list[int],
    inside: bytearray | None,
    fallbacks: dict[int, tuple[ProblemCode, str, str]],
    by_code: dict[ProblemCode, list[Problem]],
) -> None:
    """Point people at their configured fallback manager, then recompute levels.

    A fallback can sit anywhere in the tree, even below the person being re-pointed, so this is
    the one place where a policy can create a loop; such an edge is refused (the person stays
    without a manager) and the resolution says why.
    """
    refused: dict[int, str] = {}
    applied: list[int] = []
    for k, (_code, _mid, target) in fallbacks.items():
        t = index.get(target)
        if t is None or (inside is not None and not inside[t]):
            refused[k] = f"fallback {target!r} is not in the hierarchy"
        elif t == k:
            refused[k] = f"{ids[k]!r} is the fallback manager"
        else:
            parent[k] = t
            applied.append(k)

    n = len(parent)
    state = [_UNSEEN] * n  # reuse of the colouring idea: -2 unseen, -3 on path, >=0 level
    path: list[int] = []
    for i in range(n):
        if state[i] != _UNSEEN or (inside is not None and not inside[i]):
            continue
        while True:
            j = i
            while j >= 0 and state[j] == _UNSEEN:
                state[j] = _ON_PATH
                path.append(j)
                j = parent[j]
            if j < 0 or state[j] != _ON_PATH:
                break
            loop = path[path.index(j) :]
            culprit = min((k for k in loop if k in fallbacks and k not in refused), key=ids.__getitem__)
            parent[culprit] = -1
            target = fallbacks[culprit][2]
            refused[culprit] = f"fallback {target!r} reports (directly or not) to {ids[culprit]!r}"
            for k in path:
                state[k] = _UNSEEN
            path.clear()
        d = state[j] if j >= 0 else -1
        while path:
            d += 1
            state[path.pop()] = d
    for i in range(n):
        if state[i] >= 0:
            level[i] = state[i]

    for k, (code, mid, target) in fallbacks.items():
        pid = ids[k]
        if code is ProblemCode.DANGLING_MANAGER:
            why = f"{pid!r} reports to {mid!r}, who is not in the source"
        elif code is ProblemCode.OUT_OF_SCOPE_MANAGER:
            why = f"{pid!r} reports to {mid!r}, who is outside the scope of this hierarchy"
        else:
            j = index[mid]
            why = f"{pid!r} ({persons[k].status}) reports to {mid!r}, who is {persons[j].status}"
        if k in refused:
            resolution = f"{refused[k]}: {pid!r} now has no manager"
        else:
            resolution = f"reassigned to fallback {target!r}"
        by_code[code].append(Problem(code, (pid, mid), "manager_id", why, resolution))
