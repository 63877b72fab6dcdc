"""Pure value conversions between okrsync OKRs and SF goal/milestone fields (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from okrsync.connectors.successfactors.odata import EntityInfo, parse_sf_date, sf_date
from okrsync.models import KeyResult, Objective, Owner

_KR_TEXT = re.compile(r"^(?P<title>.*) \[(?P<start>\S+) -> (?P<target>\S+)(?: (?P<unit>.+))?\]$", re.S)


def num_text(value: float) -> str:
    """Shortest text that reads back as the same float (``1200``, ``109.090909``)."""
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(float(value))


def kr_text(kr: KeyResult) -> str:
    unit = f" {kr.unit}" if kr.unit else ""
    return f"{kr.title} [{num_text(kr.start_value)} -> {num_text(kr.target_value)}{unit}]"


def metric_line(kr: KeyResult) -> str:
    """One line of the goal's ``metric``: the key result and, when known, its current value."""
    return kr_text(kr) if kr.current_value is None else f"{kr_text(kr)} = {num_text(kr.current_value)}"


def parse_metric(metric: Any) -> dict[str, float]:
    """``metric`` lines written by :func:`metric_line` → {key-result text: current value}."""
    out: dict[str, float] = {}
    for line in str(metric or "").splitlines():
        text, sep, value = line.rpartition("] = ")
        if sep:
            try:
                out[text + "]"] = float(value)
            except ValueError:
                continue
    return out


def normalise(info: EntityInfo, name: str, value: Any) -> Any:
    """One value as comparable Python: dates as days, integers, rounded floats, blank text as None."""
    if value is None or value == "":
        return None
    edm = info.props[name].edm if name in info.props else "Edm.String"
    if edm in ("Edm.DateTime", "Edm.DateTimeOffset"):
        return value if isinstance(value, date) else parse_sf_date(value)
    if edm in ("Edm.Int64", "Edm.Int32", "Edm.Int16"):
        return int(str(value).rstrip("Ll"))
    if edm in ("Edm.Double", "Edm.Decimal", "Edm.Single"):
        return round(float(value), 6)
    return str(value)


def to_json(info: EntityInfo, name: str, value: Any) -> Any:
    edm = info.props[name].edm if name in info.props else "Edm.String"
    if value is None:
        return None
    if edm in ("Edm.DateTime", "Edm.DateTimeOffset"):
        return sf_date(value)
    if edm in ("Edm.Int64", "Edm.Decimal"):
        return str(value)  # OData v2 JSON carries 64-bit integers and decimals as strings
    return value


def objectives_owner(objectives: Sequence[Objective], goal_id: str) -> Owner | None:
    for o in reversed(objectives):
        if o.id == goal_id:
            return o.owner
    return None


def kr_from(
    mid: str, goal: str, r: Mapping[str, Any], owner: Owner | None, current: Mapping[str, float]
) -> KeyResult:
    """A milestone back as a key result: its ``description``, and the value its goal's metric gives."""
    text = str(r.get("description") or f"milestone {mid}")
    m = _KR_TEXT.match(text)
    fields: dict[str, Any] = {"title": text}
    if m:
        try:
            fields = {
                "title": m.group("title"),
                "start_value": float(m.group("start")),
                "target_value": float(m.group("target")),
                "unit": m.group("unit"),
            }
        except ValueError:
            fields = {"title": text}
    return KeyResult(
        id=mid,
        objective_id=goal,
        owner=owner,
        current_value=current.get(text),
        external_refs={"successfactors": mid},
        **fields,
    )


# caps kept when $metadata declares no MaxLength (SAP's goal schema declares none): a goal name
# is at most 500 characters per SAP's goal template documentation; 4000 for long texts is a
# conservative cap of our own
TEXT_LIMITS = {"name": 500, "metric": 4000, "desc": 4000, "description": 4000}


def fit(info: EntityInfo, name: str, value: Any) -> Any:
    """Text cut to the template's MaxLength, else :data:`TEXT_LIMITS`, so compares stay stable."""
    prop = info.props.get(name)
    limit = (prop.max_length if prop is not None else None) or TEXT_LIMITS.get(name)
    if isinstance(value, str) and prop is not None and limit and len(value) > limit:
        return value[:limit]
    return value
