"""OKR files in and out: a friendly YAML/TOML/JSON shape <-> the canonical :class:`OkrSet`.

People write OKR files by hand, so the file shape is forgiving where it costs nothing
(``owner: "1001"``, key results nested under their objective, ``aligns_to: [KR-1]``) and
strict where a typo would silently change meaning (unknown keys are errors). Parse errors
name the file, the item (with its id) and the field, because "validation error at
objectives.3" is useless in a 400-line file.

Semantic checks (:func:`validate_okrs`) are separate from parsing: a file can be well-formed
yet wrong (weights that don't sum, alignment loops), and those problems are reported as a
list rather than raised, so a caller can show them all at once or decide which are fatal.

File shape (YAML shown; TOML and JSON carry the same keys)::

    cycle: {id: 2025-H1, name: H1 2025, start: 2025-01-01, end: 2025-06-30}
    objectives:
      - id: OBJ-1
        title: Grow revenue
        owner: "1001"                 # a person id; or {unit: D-SALES}; or {person: "1001"}
        level: company
        weight: 60
        aligns_to: [OBJ-0]            # ids of objectives or key results (kind=align)
        key_results:
          - {id: KR-1, title: ARR 12M, metric_type: currency, target_value: 12000000, weight: 100}
    alignments:                       # optional: edges in full, e.g. cross-functional ones
      - {child_id: OBJ-7, parent_id: KR-1, parent_kind: key_result, kind: related}
    learning_items: [...]             # LearningItem fields
    learning_links: [...]             # LearningLink fields; ``id`` may be left out (derived)
    learning_rules: [...]             # okrsync.learning.LearningRule fields (read by read_learning_rules)

A separate catalogue of learning items (a list, or ``{learning_items: [...]}``) is read by
:func:`load_catalogue`. A canonical ``OkrSet.model_dump(mode="json")`` is also accepted as is.
"""

from __future__ import annotations

import json
import tomllib
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from okrsync.errors import ConfigError
from okrsync.models import (
    AlignmentEdge,
    AlignmentKind,
    AlignmentStatus,
    Cycle,
    KeyResult,
    LearningItem,
    LearningLink,
    NodeKind,
    Objective,
    OkrSet,
    Owner,
    OwnerKind,
)

__all__ = [
    "OkrFileError",
    "OkrProblem",
    "OkrProblemCode",
    "dump_okrs",
    "load_catalogue",
    "load_okrs",
    "okrs_from_document",
    "okrs_to_document",
    "read_learning_rules",
    "render_okrs",
    "validate_okrs",
]

_M = TypeVar("_M", bound=BaseModel)

_TOP_KEYS = frozenset(
    {
        "cycle",
        "objectives",
        "key_results",
        "alignments",
        "learning_items",
        "learning_links",
        "learning_rules",
    }
)
_ID_FIELDS = ("id", "objective_id", "cycle_id", "child_id", "parent_id", "item_id", "learner_id")


class OkrFileError(ConfigError):
    """An OKR file could not be read or does not fit the shape; ``problems`` lists every bad field."""


# --------------------------------------------------------------------------------------------
# reading


def load_okrs(path: str | Path) -> OkrSet:
    """Read an OKR file (``.yaml``/``.yml``, ``.toml`` or ``.json``) into an :class:`OkrSet`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise OkrFileError(f"cannot read OKR file {p}: {exc.strerror or exc}") from exc
    suffix = p.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            doc = yaml.safe_load(text)
        elif suffix == ".toml":
            doc = tomllib.loads(text)
        elif suffix == ".json":
            doc = json.loads(text)
        else:
            raise OkrFileError(f"{p}: unsupported OKR file type {suffix!r} (use .yaml, .yml, .toml or .json)")
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise OkrFileError(f"{p}: not valid {suffix.lstrip('.').upper()}: {exc}") from exc
    if doc is None:
        doc = {}
    return okrs_from_document(doc, source=str(p))


def okrs_from_document(doc: Any, *, source: str = "<document>") -> OkrSet:
    """Turn a parsed document (the friendly or the canonical shape) into an :class:`OkrSet`.

    Every item is validated on its own so that all bad fields are reported together.
    """
    if not isinstance(doc, Mapping):
        raise OkrFileError(f"{source}: the top level must be a mapping with 'objectives' etc.")
    errors: list[str] = []
    unknown = sorted(str(k) for k in doc if k not in _TOP_KEYS)
    if unknown:
        errors.append(
            f"unknown top-level key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_TOP_KEYS))})"
        )

    cycle: Cycle | None = None
    if doc.get("cycle") is not None:
        cycle = _validate(Cycle, _stringify_ids(doc["cycle"]), "cycle", errors)

    objectives: list[Objective] = []
    key_results: list[KeyResult] = []
    # (child id, child kind, raw aligns_to entry, location) resolved once all ids are known
    pending: list[tuple[str, NodeKind, Any, str]] = []

    for i, raw in enumerate(_as_list(doc.get("objectives"), "objectives", errors)):
        where = _where("objectives", i, raw)
        if not isinstance(raw, Mapping):
            errors.append(f"{where}: must be a mapping")
            continue
        data = dict(raw)
        nested_krs = data.pop("key_results", None)
        aligns = data.pop("aligns_to", None)
        data = _stringify_ids(data)
        if "owner" in data:
            data["owner"] = _owner(data["owner"])
        obj = _validate(Objective, data, where, errors)
        obj_id = obj.id if obj else str(data.get("id", ""))
        if obj:
            objectives.append(obj)
        for entry in _as_list(aligns, f"{where}.aligns_to", errors):
            pending.append((obj_id, NodeKind.OBJECTIVE, entry, f"{where}.aligns_to"))
        for j, kr_raw in enumerate(_as_list(nested_krs, f"{where}.key_results", errors)):
            kr_where = _where(f"{where}.key_results", j, kr_raw)
            if (
                isinstance(kr_raw, Mapping)
                and "objective_id" in kr_raw
                and str(kr_raw["objective_id"]) != obj_id
            ):
                errors.append(
                    f"{kr_where}: field 'objective_id': is {kr_raw['objective_id']!r} but the key result is "
                    f"nested under {obj_id!r} (drop the field)"
                )
                continue
            kr = _key_result(kr_raw, kr_where, obj_id, pending, errors)
            if kr:
                key_results.append(kr)

    for i, kr_raw in enumerate(_as_list(doc.get("key_results"), "key_results", errors)):
        kr = _key_result(kr_raw, _where("key_results", i, kr_raw), None, pending, errors)
        if kr:
            key_results.append(kr)

    objective_ids = {o.id for o in objectives}
    kr_ids = {k.id for k in key_results}
    krs_by_objective: dict[str, list[KeyResult]] = defaultdict(list)
    for kr in key_results:
        krs_by_objective[kr.objective_id].append(kr)
    alignments: list[AlignmentEdge] = []
    for child_id, child_kind, entry, where in pending:
        edge = _aligns_to_entry(child_id, child_kind, entry, where, objective_ids, kr_ids, errors)
        if edge:
            alignments.append(edge)
    for i, raw in enumerate(_as_list(doc.get("alignments"), "alignments", errors)):
        where = f"alignments[{i}]"
        if isinstance(raw, Mapping):
            data = _stringify_ids(raw)
            where += f" ({data.get('child_id', '?')} -> {data.get('parent_id', '?')})"
            if "parent_kind" not in data and data.get("parent_id") in kr_ids - objective_ids:
                data["parent_kind"] = NodeKind.KEY_RESULT.value
            if "child_kind" not in data and data.get("child_id") in kr_ids - objective_ids:
                data["child_kind"] = NodeKind.KEY_RESULT.value
        else:
            data = raw
        edge = _validate(AlignmentEdge, data, where, errors)
        if edge:
            alignments.append(edge)

    # Edges in document order of their child (nested entries before top-level ones), which is
    # the order okrs_to_document writes them in: load(dump(load(f))) == load(f).
    position: dict[tuple[NodeKind, str], int] = {}
    for obj in objectives:
        position.setdefault((NodeKind.OBJECTIVE, obj.id), len(position))
        for kr in krs_by_objective.get(obj.id, ()):
            position.setdefault((NodeKind.KEY_RESULT, kr.id), len(position))
    for kr in key_results:
        position.setdefault((NodeKind.KEY_RESULT, kr.id), len(position))
    alignments.sort(key=lambda e: position.get((e.child_kind, e.child_id), len(position)))

    items = [
        item
        for i, raw in enumerate(_as_list(doc.get("learning_items"), "learning_items", errors))
        if (item := _validate(LearningItem, _stringify_ids(raw), _where("learning_items", i, raw), errors))
    ]
    links = [
        link
        for i, raw in enumerate(_as_list(doc.get("learning_links"), "learning_links", errors))
        if (
            link := _validate(
                LearningLink, _link_id(_stringify_ids(raw)), _where("learning_links", i, raw), errors
            )
        )
    ]
    if errors:
        noun = "problem" if len(errors) == 1 else "problems"
        raise OkrFileError(f"{source}: {len(errors)} {noun} in the OKR file", problems=errors)
    return OkrSet(
        cycle=cycle,
        objectives=tuple(objectives),
        key_results=tuple(key_results),
        alignments=tuple(alignments),
        learning_items=tuple(items),
        learning_links=tuple(links),
    )


def _link_id(raw: Any) -> Any:
    """A learning link written without ``id`` gets the deterministic one (see okrsync.learning)."""
    if not isinstance(raw, Mapping) or raw.get("id") is not None:
        return raw
    from okrsync.learning import link_id

    if not raw.get("item_id") or not raw.get("learner_id"):
        return raw  # the model reports what is missing
    key = link_id(
        str(raw["item_id"]), str(raw["learner_id"]), raw.get("objective_id"), raw.get("key_result_id")
    )
    return {**raw, "id": key}


def _read_document(path: str | Path, what: str) -> Any:
    """A YAML/TOML/JSON file parsed, for the learning loaders (errors name the file)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise OkrFileError(f"cannot read {what} {p}: {exc.strerror or exc}") from exc
    suffix = p.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise OkrFileError(f"{p}: not valid {suffix.lstrip('.').upper()}: {exc}") from exc
    raise OkrFileError(f"{p}: unsupported {what} type {suffix!r} (use .yaml, .yml, .toml or .json)")


def load_catalogue(path: str | Path) -> list[LearningItem]:
    """Learning items from a catalogue file: a list, or a mapping with ``learning_items``."""
    from okrsync.learning import catalogue_from_document

    return catalogue_from_document(_read_document(path, "learning catalogue"), source=str(path))


def read_learning_rules(path: str | Path) -> list[Any]:
    """The raw ``learning_rules`` entries of an OKR file (validate with ``learning.parse_rules``)."""
    doc = _read_document(path, "OKR file")
    rules = doc.get("learning_rules") if isinstance(doc, Mapping) else None
    if rules is None:
        return []
    return list(rules) if isinstance(rules, list | tuple) else [rules]


def _where(section: str, index: int, raw: Any) -> str:
    if isinstance(raw, Mapping) and raw.get("id") is not None:
        return f"{section}[{index}] (id {raw['id']})"
    return f"{section}[{index}]"


def _as_list(value: Any, where: str, errors: list[str]) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    errors.append(f"{where}: must be a list")
    return []


def _stringify_ids(raw: Any) -> Any:
    """YAML reads ``id: 1001`` as an int; ids are strings everywhere else, so coerce them here."""
    if not isinstance(raw, Mapping):
        return raw
    data = dict(raw)
    for key in _ID_FIELDS:
        if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
            data[key] = str(data[key])
    return data


def _owner(value: Any) -> Any:
    """Accept ``"1001"``, ``1001``, ``{person: "1001"}``, ``{unit: "D-X"}`` or ``{kind, id}``."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return {"kind": OwnerKind.PERSON.value, "id": str(value)}
    if isinstance(value, Mapping):
        if set(value) == {"person"}:
            return {"kind": OwnerKind.PERSON.value, "id": str(value["person"])}
        if set(value) == {"unit"}:
            return {"kind": OwnerKind.ORG_UNIT.value, "id": str(value["unit"])}
        return _stringify_ids(value)
    return value


def _key_result(
    raw: Any,
    where: str,
    objective_id: str | None,
    pending: list[tuple[str, NodeKind, Any, str]],
    errors: list[str],
) -> KeyResult | None:
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: must be a mapping")
        return None
    data = dict(raw)
    aligns = data.pop("aligns_to", None)
    data = _stringify_ids(data)
    if objective_id is not None:
        data["objective_id"] = objective_id
    if data.get("owner") is not None:
        data["owner"] = _owner(data["owner"])
    kr = _validate(KeyResult, data, where, errors)
    for entry in _as_list(aligns, f"{where}.aligns_to", errors):
        pending.append((str(data.get("id", "")), NodeKind.KEY_RESULT, entry, f"{where}.aligns_to"))
    return kr


def _aligns_to_entry(
    child_id: str,
    child_kind: NodeKind,
    entry: Any,
    where: str,
    objective_ids: set[str],
    kr_ids: set[str],
    errors: list[str],
) -> AlignmentEdge | None:
    """``"KR-1"`` or ``{to: KR-1, node: key_result, kind: cascade, weight, generated_by, status}``."""
    if isinstance(entry, str | int) and not isinstance(entry, bool):
        data: dict[str, Any] = {"to": str(entry)}
    elif isinstance(entry, Mapping):
        data = dict(entry)
        if "id" in data and "to" not in data:
            data["to"] = data.pop("id")
    else:
        errors.append(f"{where}: each entry must be an id or a mapping with 'to'")
        return None
    if data.get("to") is None:
        errors.append(f"{where}: field 'to': missing (the id of the objective or key result aligned to)")
        return None
    parent_id = str(data.pop("to"))
    node = data.pop("node", None)
    if node is None:
        node = (
            NodeKind.KEY_RESULT.value
            if parent_id in kr_ids and parent_id not in objective_ids
            else "objective"
        )
    fields = {
        "child_id": child_id,
        "child_kind": child_kind.value,
        "parent_id": parent_id,
        "parent_kind": node,
    }
    fields.update(data)
    return _validate(AlignmentEdge, fields, f"{where} ({parent_id})", errors)


def _validate(model: type[_M], data: Any, where: str, errors: list[str]) -> _M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors.extend(_explain(exc, where))
        return None


def _explain(exc: ValidationError, where: str) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        field = f"field '{loc}'" if loc else "value"
        got = err.get("input")
        suffix = f" (got {got!r})" if err["type"] != "missing" and not isinstance(got, dict | list) else ""
        out.append(f"{where}: {field}: {err['msg']}{suffix}")
    return out


# --------------------------------------------------------------------------------------------
# writing


def okrs_to_document(okrs: OkrSet) -> dict[str, Any]:
    """The friendly shape :func:`okrs_from_document` reads; JSON-able, defaults left out.

    Alignments sit under their child (``aligns_to``) so a reader sees what each objective
    supports; an edge whose child isn't in the set goes to the top-level ``alignments``.
    """
    objective_ids = {o.id for o in okrs.objectives}
    kr_ids = {k.id for k in okrs.key_results}
    krs_by_objective: dict[str, list[KeyResult]] = defaultdict(list)
    loose_krs: list[KeyResult] = []
    for kr in okrs.key_results:
        (krs_by_objective[kr.objective_id] if kr.objective_id in objective_ids else loose_krs).append(kr)
    edges_by_child: dict[tuple[NodeKind, str], list[AlignmentEdge]] = defaultdict(list)
    loose_edges: list[AlignmentEdge] = []
    for edge in okrs.alignments:
        ids = objective_ids if edge.child_kind is NodeKind.OBJECTIVE else kr_ids
        if edge.child_id in ids:
            edges_by_child[(edge.child_kind, edge.child_id)].append(edge)
        else:
            loose_edges.append(edge)

    def aligns(kind: NodeKind, node_id: str) -> list[Any]:
        return [_edge_entry(e, objective_ids, kr_ids) for e in edges_by_child.get((kind, node_id), [])]

    def kr_doc(kr: KeyResult, nested: bool) -> dict[str, Any]:
        d = kr.model_dump(mode="json", exclude_defaults=True, exclude={"owner"})
        d["id"] = kr.id
        if nested:
            d.pop("objective_id", None)
        else:
            d["objective_id"] = kr.objective_id
        if kr.owner is not None:
            d["owner"] = _owner_doc(kr.owner)
        if a := aligns(NodeKind.KEY_RESULT, kr.id):
            d["aligns_to"] = a
        return d

    doc: dict[str, Any] = {}
    if okrs.cycle is not None:
        doc["cycle"] = okrs.cycle.model_dump(mode="json", exclude_defaults=True)
    objectives = []
    for obj in okrs.objectives:
        d = obj.model_dump(mode="json", exclude_defaults=True, exclude={"owner"})
        d = {"id": obj.id, "title": obj.title, "owner": _owner_doc(obj.owner), **d}
        if a := aligns(NodeKind.OBJECTIVE, obj.id):
            d["aligns_to"] = a
        if krs := krs_by_objective.get(obj.id):
            d["key_results"] = [kr_doc(kr, True) for kr in krs]
        objectives.append(d)
    if objectives:
        doc["objectives"] = objectives
    if loose_krs:
        doc["key_results"] = [kr_doc(kr, False) for kr in loose_krs]
    if loose_edges:
        doc["alignments"] = [e.model_dump(mode="json", exclude_defaults=True) for e in loose_edges]
    if okrs.learning_items:
        doc["learning_items"] = [
            i.model_dump(mode="json", exclude_defaults=True) for i in okrs.learning_items
        ]
    if okrs.learning_links:
        doc["learning_links"] = [
            lk.model_dump(mode="json", exclude_defaults=True) for lk in okrs.learning_links
        ]
    tidy: dict[str, Any] = _tidy(doc)
    return tidy


def _tidy(value: Any) -> Any:
    """Write ``60`` rather than ``60.0``: the file is for people, and the models read both."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value


def _owner_doc(owner: Owner) -> Any:
    return owner.id if owner.kind is OwnerKind.PERSON else {"unit": owner.id}


def _edge_entry(edge: AlignmentEdge, objective_ids: set[str], kr_ids: set[str]) -> Any:
    inferred = (
        NodeKind.KEY_RESULT
        if edge.parent_id in kr_ids and edge.parent_id not in objective_ids
        else NodeKind.OBJECTIVE
    )
    plain = (
        edge.kind is AlignmentKind.ALIGN
        and edge.generated_by == "manual"
        and edge.status is AlignmentStatus.ACTIVE
        and edge.weight is None
        and edge.parent_kind is inferred
    )
    if plain:
        return edge.parent_id
    d: dict[str, Any] = {"to": edge.parent_id}
    if edge.parent_kind is not inferred:
        d["node"] = edge.parent_kind.value
    d.update(
        edge.model_dump(mode="json", exclude_defaults=True, exclude={"child_id", "child_kind", "parent_id"})
    )
    d.pop("parent_kind", None)
    return d


def render_okrs(okrs: OkrSet, fmt: str) -> str:
    """Serialise to ``"json"`` or ``"yaml"`` text in the friendly shape."""
    doc = okrs_to_document(okrs)
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt in ("yaml", "yml"):
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)
    raise OkrFileError(f"cannot write OKRs as {fmt!r} (use json or yaml)")


def dump_okrs(okrs: OkrSet, path: str | Path) -> None:
    """Write ``okrs`` to ``path``; the format follows the extension (``.json``, ``.yaml``, ``.yml``)."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in ("json", "yaml", "yml"):
        raise OkrFileError(
            f"{p}: cannot write OKRs as {p.suffix or 'no extension'!r} (use .json, .yaml or .yml)"
        )
    p.write_text(render_okrs(okrs, fmt), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# semantic validation


class OkrProblemCode(StrEnum):
    DUPLICATE_ID = "duplicate_id"
    UNKNOWN_OWNER = "unknown_owner"
    ALIGNMENT_CYCLE = "alignment_cycle"
    MISSING_OBJECTIVE = "missing_objective"
    MISSING_ALIGNMENT_TARGET = "missing_alignment_target"
    MISSING_ALIGNMENT_SOURCE = "missing_alignment_source"
    MISSING_REFERENCE = "missing_reference"
    UNKNOWN_CYCLE = "unknown_cycle"
    DATE_OUTSIDE_CYCLE = "date_outside_cycle"
    START_AFTER_DUE = "start_after_due"
    WEIGHTS_DONT_SUM = "weights_dont_sum"


@dataclass(frozen=True)
class OkrProblem:
    """One thing wrong with an OKR set; ``item_id`` is the objective/KR/edge/link it is about."""

    code: OkrProblemCode
    item_id: str
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {
            "code": self.code.value,
            "item_id": self.item_id,
            "field": self.field,
            "message": self.message,
        }


def validate_okrs(
    okrs: OkrSet,
    *,
    known_people: Collection[str] | None = None,
    known_units: Collection[str] | None = None,
) -> list[OkrProblem]:
    """Every semantic problem in ``okrs``; owners are only checked against the sets given."""
    problems: list[OkrProblem] = []
    problems += _duplicates(okrs)
    problems += _owners(okrs, known_people, known_units)
    problems += _references(okrs)
    problems += _dates(okrs)
    problems += _weights(okrs)
    problems += _alignment_cycles(okrs)
    return problems


def _duplicates(okrs: OkrSet) -> list[OkrProblem]:
    out: list[OkrProblem] = []
    seen: dict[str, str] = {}
    node_ids = [("objective", o.id) for o in okrs.objectives] + [
        ("key result", k.id) for k in okrs.key_results
    ]
    for what, node_id in node_ids:
        if node_id in seen:
            out.append(
                OkrProblem(
                    OkrProblemCode.DUPLICATE_ID,
                    node_id,
                    "id",
                    f"{what} id {node_id!r} is already used by a{'n' if seen[node_id][0] == 'o' else ''} "
                    f"{seen[node_id]}; alignment references would be ambiguous",
                )
            )
        else:
            seen[node_id] = what
    for what, ids in (
        ("learning item", [i.id for i in okrs.learning_items]),
        ("learning link", [lk.id for lk in okrs.learning_links]),
    ):
        once: set[str] = set()
        for item_id in ids:
            if item_id in once:
                out.append(
                    OkrProblem(OkrProblemCode.DUPLICATE_ID, item_id, "id", f"{what} id {item_id!r} repeats")
                )
            once.add(item_id)
    edges: set[tuple[str, str, str]] = set()
    for e in okrs.alignments:
        key = (e.child_id, e.parent_id, e.kind.value)
        if key in edges:
            out.append(
                OkrProblem(
                    OkrProblemCode.DUPLICATE_ID,
                    _edge_id(e),
                    "alignments",
                    f"{e.kind.value} alignment {_edge_id(e)} is listed twice",
                )
            )
        edges.add(key)
    return out


def _owners(
    okrs: OkrSet, known_people: Collection[str] | None, known_units: Collection[str] | None
) -> list[OkrProblem]:
    people = set(known_people) if known_people is not None else None
    units = set(known_units) if known_units is not None else None
    out = []
    owned: list[tuple[str, str, Owner | None]] = [(o.id, "owner", o.owner) for o in okrs.objectives]
    owned += [(k.id, "owner", k.owner) for k in okrs.key_results]
    for item_id, field, owner in owned:
        if owner is None:
            continue
        known = people if owner.kind is OwnerKind.PERSON else units
        if known is not None and owner.id not in known:
            what = "person" if owner.kind is OwnerKind.PERSON else "org unit"
            out.append(
                OkrProblem(
                    OkrProblemCode.UNKNOWN_OWNER, item_id, field, f"owner {what} {owner.id!r} is not known"
                )
            )
    if people is not None:
        for link in okrs.learning_links:
            if link.learner_id is not None and link.learner_id not in people:
                out.append(
                    OkrProblem(
                        OkrProblemCode.UNKNOWN_OWNER,
                        link.id,
                        "learner_id",
                        f"learner {link.learner_id!r} is not a known person",
                    )
                )
    return out


def _references(okrs: OkrSet) -> list[OkrProblem]:
    objective_ids = {o.id for o in okrs.objectives}
    kr_ids = {k.id for k in okrs.key_results}
    ids = {NodeKind.OBJECTIVE: objective_ids, NodeKind.KEY_RESULT: kr_ids}
    out = [
        OkrProblem(
            OkrProblemCode.MISSING_OBJECTIVE,
            kr.id,
            "objective_id",
            f"key result {kr.id!r} belongs to objective {kr.objective_id!r}, which does not exist",
        )
        for kr in okrs.key_results
        if kr.objective_id not in objective_ids
    ]
    for e in okrs.alignments:
        if e.parent_id not in ids[e.parent_kind]:
            out.append(
                OkrProblem(
                    OkrProblemCode.MISSING_ALIGNMENT_TARGET,
                    _edge_id(e),
                    "parent_id",
                    f"{e.child_id!r} aligns to {e.parent_kind.value.replace('_', ' ')} {e.parent_id!r}, "
                    "which does not exist",
                )
            )
        if e.child_id not in ids[e.child_kind]:
            out.append(
                OkrProblem(
                    OkrProblemCode.MISSING_ALIGNMENT_SOURCE,
                    _edge_id(e),
                    "child_id",
                    f"alignment starts at {e.child_kind.value.replace('_', ' ')} {e.child_id!r}, "
                    "which does not exist",
                )
            )
    item_ids = {i.id for i in okrs.learning_items}
    for link in okrs.learning_links:
        checks = [("item_id", link.item_id, item_ids, "learning item")]
        if link.objective_id is not None:
            checks.append(("objective_id", link.objective_id, objective_ids, "objective"))
        if link.key_result_id is not None:
            checks.append(("key_result_id", link.key_result_id, kr_ids, "key result"))
        for field, ref, known, what in checks:
            if ref not in known:
                out.append(
                    OkrProblem(
                        OkrProblemCode.MISSING_REFERENCE, link.id, field, f"{what} {ref!r} does not exist"
                    )
                )
    return out


def _dates(okrs: OkrSet) -> list[OkrProblem]:
    out = []
    cycle = okrs.cycle
    for obj in okrs.objectives:
        if obj.start and obj.due and obj.start > obj.due:
            out.append(
                OkrProblem(
                    OkrProblemCode.START_AFTER_DUE,
                    obj.id,
                    "start",
                    f"starts {obj.start} after it is due {obj.due}",
                )
            )
        if obj.cycle_id is not None and (cycle is None or obj.cycle_id != cycle.id):
            out.append(
                OkrProblem(
                    OkrProblemCode.UNKNOWN_CYCLE,
                    obj.id,
                    "cycle_id",
                    f"cycle {obj.cycle_id!r} is not the file's cycle"
                    + (f" ({cycle.id!r})" if cycle else " (the file has none)"),
                )
            )
            continue
        if cycle is None:
            continue
        for field in ("start", "due"):
            value = getattr(obj, field)
            if value is not None and not cycle.start <= value <= cycle.end:
                out.append(
                    OkrProblem(
                        OkrProblemCode.DATE_OUTSIDE_CYCLE,
                        obj.id,
                        field,
                        f"{field} {value} is outside cycle {cycle.id!r} ({cycle.start} .. {cycle.end})",
                    )
                )
    if cycle is not None:
        for link in okrs.learning_links:
            if link.due is not None and not cycle.start <= link.due <= cycle.end:
                out.append(
                    OkrProblem(
                        OkrProblemCode.DATE_OUTSIDE_CYCLE,
                        link.id,
                        "due",
                        f"due {link.due} is outside cycle {cycle.id!r} ({cycle.start} .. {cycle.end})",
                    )
                )
    return out


def _weights(okrs: OkrSet) -> list[OkrProblem]:
    out: list[OkrProblem] = []
    by_objective: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    for kr in okrs.key_results:
        by_objective[kr.objective_id].append((kr.id, kr.weight))
    for obj_id, group in by_objective.items():
        if msg := _weight_message(group):
            out.append(
                OkrProblem(OkrProblemCode.WEIGHTS_DONT_SUM, obj_id, "key_results.weight", f"key result {msg}")
            )
    by_owner: dict[tuple[str, str, str | None], list[tuple[str, float | None]]] = defaultdict(list)
    for obj in okrs.objectives:
        by_owner[(obj.owner.kind.value, obj.owner.id, obj.cycle_id)].append((obj.id, obj.weight))
    for (kind, owner_id, _cycle), group in by_owner.items():
        if msg := _weight_message(group):
            what = "person" if kind == OwnerKind.PERSON.value else "org unit"
            out.append(
                OkrProblem(
                    OkrProblemCode.WEIGHTS_DONT_SUM,
                    group[0][0],
                    "weight",
                    f"objective {msg} for owner {what} {owner_id!r}",
                )
            )
    return out


def _weight_message(group: Iterable[tuple[str, float | None]]) -> str | None:
    """None when weights are absent or sum to 100 (percent) / 1.0 (fractions); else why not.

    The convention is detected from the numbers: all weights <= 1 means fractions.
    """
    items = list(group)
    given = [(i, w) for i, w in items if w is not None]
    if not given:
        return None
    if len(given) < len(items):
        missing = ", ".join(i for i, w in items if w is None)
        return f"weights are partial: {len(given)} of {len(items)} have one (missing on {missing})"
    total = sum(w for _, w in given)
    fractions = all(w <= 1 for _, w in given)
    expected, tolerance = (1.0, 1e-6) if fractions else (100.0, 1e-4)
    if abs(total - expected) <= tolerance * max(1.0, expected):
        return None
    convention = "fractions of 1.0" if fractions else "percent"
    return f"weights sum to {total:g}, expected {expected:g} ({convention})"


def _alignment_cycles(okrs: OkrSet) -> list[OkrProblem]:
    """Loops through alignment edges, counting each key result as a child of its objective.

    Each loop is reported once, in edge order, starting at its smallest id.
    """
    graph: dict[str, list[str]] = defaultdict(list)
    kr_ids = {k.id for k in okrs.key_results}
    for kr in okrs.key_results:
        graph["kr:" + kr.id].append("obj:" + kr.objective_id)
    for e in okrs.alignments:
        prefix = {NodeKind.OBJECTIVE: "obj:", NodeKind.KEY_RESULT: "kr:"}
        graph[prefix[e.child_kind] + e.child_id].append(prefix[e.parent_kind] + e.parent_id)
    loops = _find_cycles(graph)
    out = []
    for loop in loops:
        names = [n.split(":", 1)[1] for n in loop]
        first = names[0]
        kind = "key result" if loop[0].startswith("kr:") and first in kr_ids else "objective"
        out.append(
            OkrProblem(
                OkrProblemCode.ALIGNMENT_CYCLE,
                first,
                "aligns_to",
                f"alignment loop: {' -> '.join([*names, first])} "
                f"(the {kind} {first!r} ends up aligned to itself)",
            )
        )
    return out


def _find_cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Iterative DFS; returns the distinct loops found along back edges, canonically rotated.

    Not every elementary cycle of a dense graph is listed (that can be exponential), but every
    strongly connected tangle yields at least one loop, which is what a person needs to fix.
    """
    white, grey, black = 0, 1, 2
    colour: dict[str, int] = defaultdict(int)
    found: dict[tuple[str, ...], list[str]] = {}
    for start in sorted(graph):
        if colour[start] != white:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        colour[start] = grey
        while stack:
            node, idx = stack[-1]
            nexts = graph.get(node, [])
            if idx < len(nexts):
                stack[-1] = (node, idx + 1)
                nxt = nexts[idx]
                if colour[nxt] == white:
                    colour[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
                elif colour[nxt] == grey:
                    loop = path[path.index(nxt) :]
                    # start at the smallest objective id, so the message reads from an objective
                    pivot = loop.index(min(loop, key=lambda n: (not n.startswith("obj:"), n)))
                    canon = loop[pivot:] + loop[:pivot]
                    found.setdefault(tuple(canon), canon)
            else:
                colour[node] = black
                stack.pop()
                path.pop()
    return [found[k] for k in sorted(found)]


def _edge_id(edge: AlignmentEdge) -> str:
    return f"{edge.child_id}->{edge.parent_id}"
