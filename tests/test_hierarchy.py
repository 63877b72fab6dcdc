"""Tests of okrsync.hierarchy: plain examples per problem and policy, then properties.

The property tests compare against a reference written here independently, with dicts and
walks one step at a time, as a person would check an org chart by hand; it shares nothing with
the module's integer-index implementation, so the two cannot share a mistake.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okrsync.errors import ConfigError
from okrsync.hierarchy import Hierarchy, HierarchyPolicy, Problem, ProblemCode, build_hierarchy
from okrsync.models import Person, PersonStatus

ACTIVE, ON_LEAVE, TERMINATED, PRE_HIRE = (
    PersonStatus.ACTIVE,
    PersonStatus.ON_LEAVE,
    PersonStatus.TERMINATED,
    PersonStatus.PRE_HIRE,
)


def P(pid: str, manager: str | None = None, **kw: Any) -> Person:
    return Person(id=pid, manager_id=manager, **kw)


def only(h: Hierarchy, code: ProblemCode) -> list[Problem]:
    return [p for p in h.problems if p.code == code]


def codes(h: Hierarchy) -> list[str]:
    return [str(p.code) for p in h.problems]


# --------------------------------------------------------------------------------------------
# a clean tree


@pytest.fixture
def org() -> list[Person]:
    #        ceo
    #      /     \
    #    cto     cfo
    #   /  \       \
    #  e2   e1      a1
    #  |
    #  e3
    return [
        P("ceo", email="ceo@x.io"),
        P("cto", "ceo", email="cto@x.io"),
        P("cfo", "ceo"),
        P("e2", "cto"),
        P("e1", "cto", additional_manager_ids=("cfo",)),
        P("a1", "cfo"),
        P("e3", "e2"),
    ]


def test_clean_tree_navigation(org: list[Person]) -> None:
    h = build_hierarchy(org)
    assert h.problems == []
    assert not h.has_blocking_problems
    assert h.roots() == ["ceo"]
    assert h.manager_of("e3") == "e2"
    assert h.manager_of("ceo") is None
    assert h.chain("e3") == ["e2", "cto", "ceo"]
    assert h.chain("ceo") == []
    assert [h.level(x) for x in ("ceo", "cto", "e2", "e3")] == [0, 1, 2, 3]
    assert h.direct_reports("cto") == ["e1", "e2"]  # sorted by id, not input order
    assert h.direct_reports("e3") == []
    assert h.span("cto") == 2 and h.span("e3") == 0
    assert h.subtree_size("ceo") == 7 and h.subtree_size("cto") == 4 and h.subtree_size("a1") == 1
    assert h.order() == ["ceo", "cto", "cfo", "e2", "e1", "a1", "e3"]  # level, then input order
    assert h.subtree("cto") == ["cto", "e2", "e1", "e3"]
    assert h.dotted_managers("e1") == ("cfo",)
    assert h.dotted_managers("e2") == ()
    assert set(h.people) == {p.id for p in org} and len(h.people) == 7
    assert h.people["e1"] is org[4]
    assert "nobody" not in h.people


def test_dotted_lines_stay_off_the_solid_line(org: list[Person]) -> None:
    h = build_hierarchy(org)
    assert "e1" not in h.subtree("cfo")
    assert h.chain("e1") == ["cto", "ceo"]


def test_unknown_person_is_a_key_error(org: list[Person]) -> None:
    h = build_hierarchy(org)
    for call in (h.manager_of, h.chain, h.level, h.span, h.subtree, h.direct_reports, h.dotted_managers):
        with pytest.raises(KeyError):
            call("nobody")


def test_empty_input() -> None:
    h = build_hierarchy([])
    assert h.problems == [] and h.roots() == [] and h.order() == [] and h.resolved_people() == []
    assert h.report()["people"] == 0 and h.report()["max_depth"] == 0


def test_accepts_any_iterable(org: list[Person]) -> None:
    assert build_hierarchy(p for p in org).order() == build_hierarchy(org).order()


def test_report_is_json(org: list[Person]) -> None:
    people = [*org, P("lost", "ghost"), P("loop1", "loop2"), P("loop2", "loop1")]
    rep = build_hierarchy(people).report()
    json.dumps(rep)
    assert rep["people"] == 10
    assert rep["problem_counts"] == {"dangling_manager": 1, "cycle": 1, "multiple_roots": 1}
    assert rep["max_depth"] == 3
    assert rep["largest_spans"][0] == {"id": "ceo", "span": 2}
    assert rep["roots"] == ["ceo", "lost", "loop1"]
    assert rep["blocking"] is False
    assert rep["problems"][0]["code"] == "dangling_manager"


# --------------------------------------------------------------------------------------------
# one example per problem code


def test_self_manager_is_cleared_and_not_blocking() -> None:
    h = build_hierarchy([P("boss", "boss"), P("a", "boss")], HierarchyPolicy(cycles="stop"))
    (p,) = h.problems
    assert p.code is ProblemCode.SELF_MANAGER
    assert p.person_ids == ("boss",) and p.field == "manager_id"
    assert p.message == "'boss' is listed as their own manager"
    assert p.resolution == "manager cleared: 'boss' now has no manager"
    assert h.manager_of("boss") is None and h.chain("a") == ["boss"]
    assert not h.has_blocking_problems  # a CEO listed as their own manager is everyday HR data


def test_cycle_is_one_problem_starting_at_smallest_id() -> None:
    # d -> b -> c -> d is a loop; a hangs below it; root r is unrelated
    people = [P("r"), P("d", "b"), P("b", "c"), P("c", "d"), P("a", "c")]
    h = build_hierarchy(people)
    (cycle,) = only(h, ProblemCode.CYCLE)
    assert cycle.person_ids == ("b", "c", "d")  # b reports to c, c to d, d to b
    assert cycle.message == "reporting loop of 3 people: 'b' → 'c' → 'd' → 'b'"
    assert cycle.resolution == "cycle broken: 'b' now has no manager"
    assert h.manager_of("b") is None
    assert h.chain("a") == ["c", "d", "b"]
    assert h.order().index("b") < h.order().index("d") < h.order().index("c") < h.order().index("a")
    assert not h.has_blocking_problems
    assert codes(h) == ["cycle", "multiple_roots"]


def test_cycle_with_stop_policy_is_blocking_but_inspectable() -> None:
    h = build_hierarchy([P("y", "x"), P("x", "y")], HierarchyPolicy(cycles="stop"))
    (cycle,) = h.problems
    assert cycle.person_ids == ("x", "y")
    assert cycle.resolution is not None and "'stop'" in cycle.resolution
    assert h.has_blocking_problems
    assert h.roots() == ["x"] and h.chain("y") == ["x"]


def test_dangling_manager_none() -> None:
    h = build_hierarchy([P("a"), P("b", "ghost")])
    p = only(h, ProblemCode.DANGLING_MANAGER)[0]
    assert p.person_ids == ("b", "ghost") and p.field == "manager_id"
    assert p.message == "'b' reports to 'ghost', who is not in the source"
    assert p.resolution == "manager cleared: 'b' now has no manager"
    assert h.manager_of("b") is None


def test_dangling_manager_fallback() -> None:
    h = build_hierarchy([P("a"), P("b", "ghost")], HierarchyPolicy(dangling="fallback:a"))
    assert codes(h) == ["dangling_manager"]
    assert h.problems[0].resolution == "reassigned to fallback 'a'"
    assert h.manager_of("b") == "a" and h.level("b") == 1 and h.roots() == ["a"]


def test_fallback_that_does_not_exist_leaves_no_manager() -> None:
    h = build_hierarchy([P("a"), P("b", "ghost")], HierarchyPolicy(dangling="fallback:nobody"))
    p = only(h, ProblemCode.DANGLING_MANAGER)[0]
    assert p.resolution == "fallback 'nobody' is not in the hierarchy: 'b' now has no manager"
    assert h.manager_of("b") is None


def test_fallback_to_oneself_or_below_oneself_is_refused() -> None:
    # 'top' dangles; the fallback 'mid' reports to 'top', so obeying would make a loop
    people = [P("top", "ghost"), P("mid", "top"), P("me", "ghost2")]
    h = build_hierarchy(people, HierarchyPolicy(dangling="fallback:mid"))
    by_person = {p.person_ids[0]: p for p in only(h, ProblemCode.DANGLING_MANAGER)}
    assert by_person["top"].resolution == (
        "fallback 'mid' reports (directly or not) to 'top': 'top' now has no manager"
    )
    assert by_person["me"].resolution == "reassigned to fallback 'mid'"
    assert h.manager_of("top") is None and h.chain("me") == ["mid", "top"]
    assert only(h, ProblemCode.CYCLE) == []

    h = build_hierarchy([P("a", "ghost")], HierarchyPolicy(dangling="fallback:a"))
    assert h.problems[0].resolution == "'a' is the fallback manager: 'a' now has no manager"


def test_dangling_dotted_manager_is_dropped() -> None:
    people = [P("a"), P("b", "a", additional_manager_ids=("ghost", "a", "b", "a"))]
    h = build_hierarchy(people)
    assert codes(h) == ["self_manager", "dangling_dotted_manager"]
    dd = only(h, ProblemCode.DANGLING_DOTTED_MANAGER)[0]
    assert dd.person_ids == ("b", "ghost") and dd.field == "additional_manager_ids"
    assert dd.message == "'b' has a dotted-line manager 'ghost', who is not in the source"
    assert dd.resolution == "dotted line to 'ghost' dropped"
    assert only(h, ProblemCode.SELF_MANAGER)[0].field == "additional_manager_ids"
    assert h.dotted_managers("b") == ("a",)
    assert h.manager_of("b") == "a"  # the solid line is untouched
    assert h.resolved_people()[1].additional_manager_ids == ("a",)


def test_duplicate_id_first_record_wins() -> None:
    first, second = P("a", title="first"), P("a", title="second")
    h = build_hierarchy([first, P("b", "a"), second, P("a")])
    (p,) = h.problems
    assert p.code is ProblemCode.DUPLICATE_ID and p.person_ids == ("a",) and p.field == "id"
    assert p.message == "id 'a' appears 3 times in the source"
    assert p.resolution == "kept the first record, ignored 2 later one(s)"
    assert h.people["a"] is first and len(h.people) == 2 and h.order() == ["a", "b"]


def test_duplicate_email_is_case_insensitive() -> None:
    people = [
        P("a", email="Ann@X.io"),
        P("b", email="bob@x.io"),
        P("c", email="ann@x.io"),
        P("d"),
        P("e"),  # no email is not a duplicate of no email
        P("f", email="ANN@x.io"),
    ]
    h = build_hierarchy(people)
    (p,) = only(h, ProblemCode.DUPLICATE_EMAIL)
    assert p.person_ids == ("a", "c", "f") and p.field == "email"
    assert p.message == "'a', 'c', 'f' share the email address 'ANN@x.io' / 'Ann@X.io' / 'ann@x.io'"
    assert p.resolution is None


def test_multiple_roots_lists_all_roots_once() -> None:
    h = build_hierarchy([P("a"), P("b"), P("c", "a"), P("d")])
    (p,) = h.problems
    assert p.code is ProblemCode.MULTIPLE_ROOTS and p.person_ids == ("a", "b", "d")
    assert p.message == "3 people have no manager, so the hierarchy has 3 roots: 'a', 'b', 'd'"
    assert build_hierarchy([P("a"), P("c", "a")]).problems == []


def test_long_messages_are_truncated_but_ids_are_complete() -> None:
    h = build_hierarchy([P(f"r{i:02d}") for i in range(15)])
    (p,) = h.problems
    assert len(p.person_ids) == 15 and p.message.endswith("'r09' and 5 more")


# --------------------------------------------------------------------------------------------
# inactive managers


@pytest.fixture
def with_leavers() -> list[Person]:
    # ceo <- vp (terminated) <- dir (pre_hire) <- ic (active); ic2 (on leave) under dir;
    # old (terminated) under dir is just data
    return [
        P("ceo"),
        P("vp", "ceo", status=TERMINATED),
        P("dir", "vp", status=PRE_HIRE),
        P("ic", "dir"),
        P("ic2", "dir", status=ON_LEAVE),
        P("old", "dir", status=TERMINATED),
    ]


def test_inactive_manager_nearest_active(with_leavers: list[Person]) -> None:
    h = build_hierarchy(with_leavers)
    found = only(h, ProblemCode.INACTIVE_MANAGER)
    assert [p.person_ids for p in found] == [("ic", "dir"), ("ic2", "dir")]
    assert found[0].message == "'ic' (active) reports to 'dir', who is pre_hire"
    assert found[1].message == "'ic2' (on_leave) reports to 'dir', who is pre_hire"
    assert found[0].resolution == "reassigned to nearest active ancestor 'ceo'"
    assert h.manager_of("ic") == "ceo" and h.level("ic") == 1 and h.chain("ic") == ["ceo"]
    # inactive people remain as data, on their own reporting line
    assert h.manager_of("dir") == "vp" and h.manager_of("old") == "dir" and h.level("old") == 3
    assert codes(h) == ["inactive_manager", "inactive_manager"]


def test_inactive_manager_without_active_ancestor(with_leavers: list[Person]) -> None:
    people = [P("ceo", status=TERMINATED), *with_leavers[1:]]
    h = build_hierarchy(people)
    p = only(h, ProblemCode.INACTIVE_MANAGER)[0]
    assert p.resolution == "no active in-scope manager above 'dir': 'ic' now has no manager"
    assert h.manager_of("ic") is None
    assert h.roots() == ["ceo", "ic", "ic2"]


@pytest.mark.parametrize(
    ("choice", "manager", "resolution"),
    [
        ("none", None, "manager cleared: 'ic' now has no manager"),
        ("keep", "dir", "kept: 'ic' still reports to 'dir'"),
        ("fallback:ceo", "ceo", "reassigned to fallback 'ceo'"),
        ("fallback:old", "old", "reassigned to fallback 'old'"),
    ],
)
def test_inactive_manager_policies(
    with_leavers: list[Person], choice: str, manager: str | None, resolution: str
) -> None:
    h = build_hierarchy(with_leavers, HierarchyPolicy(inactive_manager=choice))
    p = only(h, ProblemCode.INACTIVE_MANAGER)[0]
    assert p.person_ids == ("ic", "dir") and p.resolution == resolution
    assert h.manager_of("ic") == manager
    if manager is not None:
        assert h.level("ic") == h.level(manager) + 1
    order = h.order()
    assert all(order.index(h.chain(x)[0]) < order.index(x) for x in order if h.chain(x))


# --------------------------------------------------------------------------------------------
# scope


@pytest.fixture
def contractors() -> list[Person]:
    # scope = employees; 'vendor' (contingent) manages 'emp2'; 'c2' is a contingent leaf
    return [
        P("ceo"),
        P("mgr", "ceo"),
        P("vendor", "mgr", worker_type="contingent"),
        P("emp2", "vendor"),
        P("c2", "mgr", worker_type="contingent"),
    ]


def employees(p: Person) -> bool:
    return p.worker_type == "employee"


def test_out_of_scope_people_are_not_in_the_result(contractors: list[Person]) -> None:
    h = build_hierarchy(contractors, scope=employees)
    assert sorted(h.people) == ["ceo", "emp2", "mgr"] and len(h.people) == 3
    assert "vendor" not in h.people
    with pytest.raises(KeyError):
        h.people["vendor"]
    with pytest.raises(KeyError):
        h.level("vendor")
    assert h.order() == ["ceo", "mgr", "emp2"]
    assert h.direct_reports("mgr") == ["emp2"] and h.span("mgr") == 1
    (p,) = h.problems
    assert p.code is ProblemCode.OUT_OF_SCOPE_MANAGER and p.person_ids == ("emp2", "vendor")
    assert p.message == "'emp2' reports to 'vendor', who is outside the scope of this hierarchy"
    assert p.resolution == "reassigned to nearest active ancestor 'mgr'"
    assert h.manager_of("emp2") == "mgr"
    assert [x.id for x in h.resolved_people()] == ["ceo", "mgr", "emp2"]


@pytest.mark.parametrize(
    ("choice", "manager", "level", "resolution"),
    [
        ("none", None, 0, "manager cleared: 'emp2' now has no manager"),
        ("keep", "vendor", 0, "kept: 'emp2' still reports to 'vendor', outside the hierarchy"),
        ("fallback:ceo", "ceo", 1, "reassigned to fallback 'ceo'"),
        ("fallback:c2", None, 0, "fallback 'c2' is not in the hierarchy: 'emp2' now has no manager"),
    ],
)
def test_out_of_scope_policies(
    contractors: list[Person], choice: str, manager: str | None, level: int, resolution: str
) -> None:
    h = build_hierarchy(contractors, HierarchyPolicy(out_of_scope_manager=choice), scope=employees)
    p = only(h, ProblemCode.OUT_OF_SCOPE_MANAGER)[0]
    assert p.resolution == resolution
    assert h.manager_of("emp2") == manager and h.level("emp2") == level
    if choice == "keep":
        assert h.chain("emp2") == [] and "emp2" in h.roots()
        resolved = {x.id: x for x in h.resolved_people()}
        assert resolved["emp2"].manager_id == "vendor"


def test_scope_walks_through_inactive_and_out_of_scope_ancestors() -> None:
    people = [
        P("ceo"),
        P("vp", "ceo", status=TERMINATED),
        P("vendor", "vp", worker_type="contingent"),
        P("emp", "vendor"),
    ]
    h = build_hierarchy(people, scope=employees)
    assert h.manager_of("emp") == "ceo"
    assert [p.code for p in h.problems] == [ProblemCode.OUT_OF_SCOPE_MANAGER]


def test_out_of_scope_is_not_dangling_and_defects_outside_scope_are_ignored() -> None:
    people = [
        P("a"),
        P("b", "x"),
        P("x", "ghost", worker_type="contingent", email="same@x.io"),
        P("y", "x", worker_type="contingent", email="SAME@x.io"),
        P("z1", "z2", worker_type="contingent"),
        P("z2", "z1", worker_type="contingent"),
    ]
    h = build_hierarchy(people, scope=employees)
    assert codes(h) == ["out_of_scope_manager", "multiple_roots"]
    assert h.manager_of("b") is None


def test_all_in_scope_is_the_same_as_no_scope(org: list[Person]) -> None:
    a, b = build_hierarchy(org), build_hierarchy(org, scope=lambda p: True)
    assert a.order() == b.order() and a.problems == b.problems


def test_cycle_through_an_out_of_scope_person_is_reported() -> None:
    people = [P("a", "v"), P("v", "a", worker_type="contingent")]
    h = build_hierarchy(people, scope=employees)
    (cycle,) = only(h, ProblemCode.CYCLE)
    assert cycle.person_ids == ("a", "v")
    assert h.manager_of("a") is None and h.order() == ["a"]


# --------------------------------------------------------------------------------------------
# resolved people


def test_resolved_people(with_leavers: list[Person]) -> None:
    people = [*with_leavers, P("x", "ghost")]
    h = build_hierarchy(people)
    resolved = h.resolved_people()
    assert [p.id for p in resolved] == h.order()
    by_id = {p.id: p for p in resolved}
    assert by_id["ic"].manager_id == "ceo" and by_id["x"].manager_id is None
    assert by_id["ceo"] is people[0]  # unchanged people are shared, not copied
    assert by_id["ic"].status is ACTIVE and by_id["ic"] == people[3].model_copy(update={"manager_id": "ceo"})


# --------------------------------------------------------------------------------------------
# policy parsing


def test_policy_parse() -> None:
    assert HierarchyPolicy.parse({}) == HierarchyPolicy()
    pol = HierarchyPolicy.parse({"inactive_manager": "fallback:ceo", "cycles": "stop", "dangling": "none"})
    assert pol.inactive_manager == "fallback:ceo" and pol.cycles == "stop"


@pytest.mark.parametrize(
    ("mapping", "needle"),
    [
        ({"inactive_manger": "none"}, "'inactive_manger'"),
        ({"inactive_manager": "nearest"}, "inactive_manager = 'nearest'"),
        ({"out_of_scope_manager": "fallback:"}, "out_of_scope_manager = 'fallback:'"),
        ({"cycles": "keep"}, "cycles = 'keep'"),
        ({"dangling": "nearest_active"}, "dangling = 'nearest_active'"),
        ({"cycles": 1}, "'cycles'"),
    ],
)
def test_policy_parse_rejects(mapping: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        HierarchyPolicy.parse(mapping)
    assert needle in str(err.value)


def test_policy_constructor_validates_too() -> None:
    with pytest.raises(ConfigError, match="expected one of: break, stop"):
        HierarchyPolicy(cycles="ignore")


def test_problem_to_dict() -> None:
    p = Problem(ProblemCode.CYCLE, ("a", "b"), "manager_id", "m", "r")
    assert p.to_dict() == {
        "code": "cycle",
        "person_ids": ["a", "b"],
        "field": "manager_id",
        "message": "m",
        "resolution": "r",
    }


# --------------------------------------------------------------------------------------------
# scale: no recursion anywhere


def test_deep_chain_and_deep_loop() -> None:
    n = 50_000
    line = [P(f"p{i:05d}", f"p{i - 1:05d}" if i else None) for i in range(n)]
    h = build_hierarchy(reversed(line))  # worst case for a climb: deepest person first
    last = f"p{n - 1:05d}"
    assert h.level(last) == n - 1 and len(h.chain(last)) == n - 1
    assert h.subtree_size("p00000") == n and len(h.subtree("p00000")) == n
    assert h.order()[0] == "p00000" and h.problems == []

    loop = [P(f"q{i:05d}", f"q{(i + 1) % n:05d}") for i in range(n)]
    h = build_hierarchy(loop)
    (cycle,) = h.problems
    assert len(cycle.person_ids) == n and cycle.person_ids[:2] == ("q00000", "q00001")
    assert h.level("q00001") == n - 1


# --------------------------------------------------------------------------------------------
# properties against an independent reference


def reference(people: Iterable[Person]) -> dict[str, Any]:
    """Default-policy expectations, computed the slow, obvious way."""
    first: dict[str, Person] = {}
    for p in people:
        first.setdefault(p.id, p)
    n = len(first)
    selfish = {pid for pid, p in first.items() if p.manager_id == pid}
    dangling = {pid for pid, p in first.items() if p.manager_id is not None and p.manager_id not in first}
    raw: dict[str, str | None] = {
        pid: None if pid in selfish or pid in dangling else p.manager_id for pid, p in first.items()
    }

    def on_loop(pid: str) -> bool:
        cur = raw[pid]
        for _ in range(n):
            if cur is None:
                return False
            if cur == pid:
                return True
            cur = raw[cur]
        return False

    loops: list[tuple[str, ...]] = []
    placed: set[str] = set()
    for pid in first:
        if pid in placed or not on_loop(pid):
            continue
        ring = [pid]
        cur = raw[pid]
        while cur != pid:
            assert cur is not None
            ring.append(cur)
            cur = raw[cur]
        placed.update(ring)
        k = ring.index(min(ring))
        loops.append(tuple(ring[k:] + ring[:k]))
    cut = dict(raw)
    for loop in loops:
        cut[loop[0]] = None

    effective: dict[str, str | None] = {}
    inactive_reports: set[str] = set()
    for pid, boss in cut.items():
        if boss is not None and first[pid].is_active and not first[boss].is_active:
            inactive_reports.add(pid)
            up: str | None = boss
            while up is not None and not first[up].is_active:
                up = cut[up]
            boss = up
        effective[pid] = boss
    return {
        "self": selfish,
        "dangling": dangling,
        "loops": sorted(loops),
        "effective": effective,
        "inactive_reports": inactive_reports,
    }


def check_structure(h: Hierarchy) -> None:
    """Invariants any hierarchy must satisfy, checked against its own manager_of()."""
    order = h.order()
    assert sorted(order) == sorted(h.people)
    pos = {pid: i for i, pid in enumerate(order)}
    boss = {pid: h.manager_of(pid) for pid in order}
    inside = {pid: m for pid, m in boss.items() if m is not None and m in h.people}
    for pid, m in inside.items():
        assert pos[m] < pos[pid]
    roots = [pid for pid in order if pid not in inside]
    assert h.roots() == roots
    # reference levels, chains and subtree sizes: one step at a time up the managers
    below: dict[str, set[str]] = {pid: {pid} for pid in order}
    for pid in order:
        up, steps, chain = inside.get(pid), 0, []
        while up is not None:
            chain.append(up)
            below[up].add(pid)
            up = inside.get(up)
            steps += 1
            assert steps <= len(order), "loop left in the effective hierarchy"
        assert h.chain(pid) == chain
        assert h.level(pid) == len(chain)
    for pid in order:
        assert h.subtree_size(pid) == len(below[pid])
        sub = h.subtree(pid)
        assert set(sub) == below[pid] and sub == sorted(sub, key=pos.__getitem__)
        reports = sorted(r for r, m in inside.items() if m == pid)
        assert h.direct_reports(pid) == reports and h.span(pid) == len(reports)
    # each defect once
    keys = [(p.code, p.field, p.person_ids) for p in h.problems]
    assert len(keys) == len(set(keys))
    multi = only(h, ProblemCode.MULTIPLE_ROOTS)
    assert len(multi) == (1 if len(roots) > 1 else 0)
    if multi:
        assert multi[0].person_ids == tuple(roots)
    json.dumps(h.report())


@st.composite
def orgs(draw: st.DrawFn) -> list[Person]:
    n = draw(st.integers(0, 24))
    ids = [f"p{i}" for i in range(n)]
    people = []
    for i in range(n):
        kind = draw(st.sampled_from(["tree", "tree", "tree", "any", "none", "self", "ghost"]))
        if kind == "tree" and i:
            manager: str | None = ids[draw(st.integers(0, i - 1))]  # a forest, by construction
        elif kind == "any" and n:
            manager = ids[draw(st.integers(0, n - 1))]  # may close loops of any length
        elif kind == "self":
            manager = ids[i]
        elif kind == "ghost":
            manager = f"ghost{draw(st.integers(0, 2))}"
        else:
            manager = None
        dotted = draw(st.lists(st.sampled_from([*ids, "ghost9"]), max_size=2)) if n else []
        people.append(
            Person(
                id=ids[i],
                manager_id=manager,
                additional_manager_ids=tuple(dotted),
                status=draw(st.sampled_from([ACTIVE, ACTIVE, ACTIVE, ON_LEAVE, TERMINATED, PRE_HIRE])),
                email=draw(st.sampled_from([None, f"u{i}@x.io", "Dup@x.io", "dup@X.io"])),
                worker_type=draw(st.sampled_from(["employee", "employee", "contingent"])),
            )
        )
    perm = draw(st.permutations(range(n)))
    shuffled = [people[i] for i in perm]
    if n and draw(st.booleans()):
        shuffled.append(draw(st.sampled_from(people)).model_copy(update={"title": "duplicate"}))
    return shuffled


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orgs())
def test_default_policy_matches_reference(people: list[Person]) -> None:
    h = build_hierarchy(people)
    ref = reference(people)
    check_structure(h)
    assert {pid: h.manager_of(pid) for pid in h.people} == ref["effective"]

    solid_self = {p.person_ids[0] for p in only(h, ProblemCode.SELF_MANAGER) if p.field == "manager_id"}
    assert solid_self == ref["self"]
    dangling = only(h, ProblemCode.DANGLING_MANAGER)
    assert {p.person_ids[0] for p in dangling} == ref["dangling"] and len(dangling) == len(ref["dangling"])
    loops = only(h, ProblemCode.CYCLE)
    assert sorted(p.person_ids for p in loops) == ref["loops"]
    inactive = only(h, ProblemCode.INACTIVE_MANAGER)
    assert {p.person_ids[0] for p in inactive} == ref["inactive_reports"]
    assert len(inactive) == len(ref["inactive_reports"])

    first: dict[str, Person] = {}
    for p in people:
        first.setdefault(p.id, p)
    dupes = {p.person_ids for p in only(h, ProblemCode.DUPLICATE_ID)}
    assert dupes == {(pid,) for pid in first if sum(p.id == pid for p in people) > 1}
    by_mail: dict[str, list[str]] = {}
    for pid, p in first.items():
        if p.email:
            by_mail.setdefault(p.email.casefold(), []).append(pid)
    expected_mail = {tuple(v) for v in by_mail.values() if len(v) > 1}
    assert {p.person_ids for p in only(h, ProblemCode.DUPLICATE_EMAIL)} == expected_mail
    for pid, p in first.items():
        assert set(h.dotted_managers(pid)) == {m for m in p.additional_manager_ids if m in first and m != pid}
    ghosts = sum(m not in first for p in first.values() for m in set(p.additional_manager_ids))
    assert len(only(h, ProblemCode.DANGLING_DOTTED_MANAGER)) == ghosts

    resolved = h.resolved_people()
    assert [p.id for p in resolved] == h.order()
    assert all(p.manager_id == h.manager_of(p.id) for p in resolved)


policies = st.builds(
    HierarchyPolicy,
    inactive_manager=st.sampled_from(["nearest_active", "none", "keep", "fallback:p0", "fallback:p3"]),
    out_of_scope_manager=st.sampled_from(["nearest_active", "none", "keep", "fallback:p1", "fallback:zz"]),
    cycles=st.sampled_from(["break", "stop"]),
    dangling=st.sampled_from(["none", "fallback:p2", "fallback:p0"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orgs(), policies, st.booleans())
def test_any_policy_and_scope_yields_a_sound_forest(
    people: list[Person], policy: HierarchyPolicy, scoped: bool
) -> None:
    h = build_hierarchy(people, policy, scope=employees if scoped else None)
    check_structure(h)
    first: dict[str, Person] = {}
    for p in people:
        first.setdefault(p.id, p)
    expected = {pid for pid, p in first.items() if not scoped or employees(p)}
    assert set(h.people) == expected
    assert h.has_blocking_problems == (policy.cycles == "stop" and bool(only(h, ProblemCode.CYCLE)))
    for prob in h.problems:
        if prob.code in (ProblemCode.INACTIVE_MANAGER, ProblemCode.OUT_OF_SCOPE_MANAGER):
            assert prob.resolution and prob.person_ids[0] in h.people
            if policy_for(prob.code, policy) == "keep":
                assert h.manager_of(prob.person_ids[0]) == prob.person_ids[1]
    for pid in h.people:
        m = h.manager_of(pid)
        if m is None or m not in h.people or policy.inactive_manager == "keep":
            continue
        if h.people[pid].is_active and not h.people[m].is_active:
            # an active person ends up under an inactive manager only when a fallback says so
            assert any(p.person_ids[0] == pid and "fallback" in (p.resolution or "") for p in h.problems), (
                pid,
                m,
            )


def policy_for(code: ProblemCode, policy: HierarchyPolicy) -> str:
    return policy.inactive_manager if code is ProblemCode.INACTIVE_MANAGER else policy.out_of_scope_manager
