"""OData v2 machinery of the SuccessFactors emulator: schema, literals, ``$filter``, options.

SuccessFactors speaks OData v2 with its own habits (``/Date(ms)/`` values, Int64 as JSON
strings, ``[COE0021]``-prefixed error texts). Everything here is vendor-neutral enough to be
tested on its own, but every choice follows what SF answers, because connectors and
independent clients (pyodata) are checked against this emulator.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(9999, 12, 31)  # SF's open end date, /Date(253402214400000)/
Record = dict[str, Any]


class ODataError(Exception):
    """An error the emulator answers in SF's error envelope (status, code, bracketed message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def property_not_found(entity: str, names: Sequence[str]) -> ODataError:
    listed = ", ".join(f"{entity}/{n}" for n in names)
    return ODataError(
        400,
        "COE_PROPERTY_NOT_FOUND",
        f"[COE0021]Invalid property names: {listed}. Please check the property names in $metadata.",
    )


def bad_request(message: str) -> ODataError:
    return ODataError(400, "COE_BAD_REQUEST", message)


# ---------------------------------------------------------------- schema
@dataclass(frozen=True)
class Prop:
    """One property as ``$metadata`` declares it; the flags become sap:* annotations."""

    name: str
    edm: str = "Edm.String"
    max_length: int | None = None
    nullable: bool = True
    required: bool = False
    label: str = ""
    upsertable: bool = False
    creatable: bool = False
    updatable: bool = False
    filterable: bool = True
    picklist: str | None = None
    declare_max_length: bool = True  # False: enforced, but $metadata has no MaxLength (SF goal fields)


@dataclass(frozen=True)
class Nav:
    """A navigation property; ``many`` decides ``{"results": [...]}`` versus a single object."""

    name: str
    target: str
    many: bool = False
    label: str = ""


@dataclass(frozen=True)
class EntityType:
    name: str
    keys: tuple[str, ...]
    props: tuple[Prop, ...]
    navs: tuple[Nav, ...] = ()
    label: str = ""
    creatable: bool = False
    updatable: bool = False
    upsertable: bool = False
    deletable: bool = False
    effective_dated: bool = False
    _by_name: dict[str, Prop] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({p.name: p for p in self.props})

    def prop(self, name: str) -> Prop | None:
        return self._by_name.get(name)

    def nav(self, name: str) -> Nav | None:
        return next((n for n in self.navs if n.name == name), None)


Schema = dict[str, EntityType]


# ---------------------------------------------------------------- values
def to_json_value(prop: Prop, value: Any) -> Any:
    """A Python value as SF writes it in JSON (OData v2 verbose JSON rules)."""
    if value is None:
        return None
    if prop.edm == "Edm.DateTime":
        return f"/Date({_millis(value)})/"
    if prop.edm == "Edm.DateTimeOffset":
        return f"/Date({_millis(value)}+0000)/"
    if prop.edm in {"Edm.Int64", "Edm.Decimal"}:
        return str(value)  # OData v2 JSON carries 64-bit integers and decimals as strings
    if prop.edm == "Edm.Double":
        return float(value)
    return value


def _millis(value: datetime | date) -> int:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int((value - EPOCH) / timedelta(milliseconds=1))


_DATE_JSON = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def from_json_value(prop: Prop, value: Any) -> Any:
    """A JSON value from a request body, checked against the property's Edm type."""
    if value is None:
        return None
    edm = prop.edm
    try:
        if edm in {"Edm.DateTime", "Edm.DateTimeOffset"}:
            if isinstance(value, str) and (m := _DATE_JSON.match(value)):
                moment = EPOCH + timedelta(milliseconds=int(m.group(1)))
            elif isinstance(value, str):
                moment = _parse_iso(value)
            else:
                raise ValueError(value)
            return moment if edm == "Edm.DateTimeOffset" else moment.replace(tzinfo=None)
        if edm in {"Edm.Int64", "Edm.Int32", "Edm.Int16", "Edm.Byte"}:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(str(value).rstrip("Ll"))
        if edm == "Edm.Double":
            return float(value)
        if edm == "Edm.Decimal":
            return Decimal(str(value))
        if edm == "Edm.Boolean":
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
    except (ValueError, TypeError, InvalidOperation):
        raise bad_request(
            f"[COE0009]Invalid value {value!r} for property {prop.name} of type {edm}."
        ) from None
    if not isinstance(value, str):
        raise bad_request(f"[COE0009]Invalid value {value!r} for property {prop.name} of type {edm}.")
    if prop.max_length is not None and len(value) > prop.max_length:
        raise ODataError(
            400,
            "COE_PROPERTY_EXCEED_MAX_LENGTH",
            f"String length exceed the limit(actual={len(value)}, limit={prop.max_length}) "
            f"of field {prop.name}!",
        )
    return value


def _parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def as_utc(value: Any) -> Any:
    """Dates and naive datetimes compare as UTC instants, so every literal form meets every field."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


# ---------------------------------------------------------------- literals and tokens
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<typed>(?:datetimeoffset|datetime|guid|time)'[^']*')
    | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[LlMmDdFf]?)
    | (?P<op>[(),/])
    | (?P<name>[A-Za-z_$][A-Za-z0-9_.$]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Tok:
    kind: str  # "lit" | "name" | "op"
    value: Any
    text: str


def tokenize(text: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise bad_request(f"[COE0010]Invalid filter expression near {text[pos : pos + 20]!r}.")
        pos = m.end()
        raw = m.group(m.lastgroup or "")
        if m.lastgroup == "str":
            out.append(Tok("lit", raw[1:-1].replace("''", "'"), raw))
        elif m.lastgroup == "typed":
            out.append(Tok("lit", parse_typed_literal(raw), raw))
        elif m.lastgroup == "num":
            out.append(Tok("lit", _number(raw), raw))
        elif m.lastgroup == "op":
            out.append(Tok("op", raw, raw))
        elif raw in {"true", "false"}:
            out.append(Tok("lit", raw == "true", raw))
        elif raw == "null":
            out.append(Tok("lit", None, raw))
        else:
            out.append(Tok("name", raw, raw))
    return out


def _number(raw: str) -> int | float | Decimal:
    suffix = raw[-1].lower()
    if suffix == "l":
        return int(raw[:-1])
    if suffix == "m":
        return Decimal(raw[:-1])
    if suffix in "df":
        return float(raw[:-1])
    return float(raw) if any(c in raw for c in ".eE") else int(raw)


def parse_typed_literal(raw: str) -> Any:
    kind, _, rest = raw.partition("'")
    body = rest[:-1]
    try:
        if kind == "datetimeoffset":
            return _parse_iso(body)
        if kind == "datetime":
            moment = datetime.fromisoformat(body.rstrip("Z"))
            return moment.replace(tzinfo=None) if moment.tzinfo is None else moment
    except ValueError:
        raise bad_request(f"[COE0010]Invalid {kind} literal {raw}.") from None
    return body


def parse_key(text: str, etype: EntityType) -> dict[str, Any]:
    """``'u1'`` / ``123L`` / ``seqNumber=1L,startDate=datetime'…',userId='u1'`` → key values."""
    if "=" not in re.sub(r"'(?:[^']|'')*'", "", text):
        toks = tokenize(text)
        if len(toks) == 1 and toks[0].kind == "lit" and len(etype.keys) == 1:
            return {etype.keys[0]: _coerce(etype.prop(etype.keys[0]), toks[0].value)}
        raise bad_request(f"[COE0011]Invalid key predicate ({text}) for {etype.name}.")
    key: dict[str, Any] = {}
    for part in _split_named_key(text):
        name, _, raw = part.partition("=")
        name = name.strip()
        prop = etype.prop(name)
        if prop is None or name not in etype.keys:
            raise bad_request(f"[COE0011]Invalid key predicate ({text}) for {etype.name}.")
        lit = tokenize(raw)
        if len(lit) != 1 or lit[0].kind != "lit":
            raise bad_request(f"[COE0011]Invalid key predicate ({text}) for {etype.name}.")
        key[name] = _coerce(prop, lit[0].value)
    if set(key) != set(etype.keys):
        raise bad_request(f"[COE0011]Invalid key predicate ({text}) for {etype.name}.")
    return key


def _split_named_key(text: str) -> list[str]:
    parts, buf, quoted = [], "", False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    parts.append(buf)
    return [p for p in parts if p.strip()]


def format_key(etype: EntityType, record: Record) -> str:
    """The key predicate as SF writes it in ``__metadata.uri``."""
    parts = []
    for name in etype.keys:
        prop = etype.prop(name)
        assert prop is not None
        parts.append((name, key_literal(prop, record.get(name))))
    if len(parts) == 1:
        return f"({parts[0][1]})"
    return "(" + ",".join(f"{n}={v}" for n, v in parts) + ")"


def key_literal(prop: Prop, value: Any) -> str:
    if prop.edm == "Edm.Int64":
        return f"{value}L"
    if prop.edm in {"Edm.Int32", "Edm.Double", "Edm.Decimal"}:
        return str(value)
    if prop.edm == "Edm.DateTime":
        return f"datetime'{value:%Y-%m-%dT%H:%M:%S}'"
    return "'" + str(value).replace("'", "''") + "'"


def _coerce(prop: Prop | None, value: Any) -> Any:
    """Compare like with like: ``userId eq 1`` or ``id eq '5'`` still mean what the client meant."""
    if prop is None or value is None:
        return value
    if prop.edm in {"Edm.Int64", "Edm.Int32"} and isinstance(value, str | float | Decimal):
        try:
            return int(value)
        except (ValueError, TypeError):
            return value
    if prop.edm in {"Edm.DateTime", "Edm.DateTimeOffset"}:
        return as_utc(value)
    if prop.edm == "Edm.String" and not isinstance(value, str):
        return value if isinstance(value, bool) else str(value)
    return value


# ---------------------------------------------------------------- $select / $expand / $orderby
@dataclass
class Shape:
    """What to render for one entity: selected properties (None = all) and nav sub-shapes."""

    props: set[str] | None = None
    navs: set[str] = field(default_factory=set)  # navs named in $select (when $select is given)
    expand: dict[str, Shape] = field(default_factory=dict)


def parse_shape(select: str | None, expand: str | None, etype: EntityType, schema: Schema) -> Shape:
    shape = Shape()
    unknown: list[str] = []
    for path in _paths(expand):
        _expand_path(shape, path, etype, schema, unknown)
    if select is not None and select.strip() and select.strip() != "*":
        shape.props = set()
        for path in _paths(select):
            _select_path(shape, path, etype, schema, unknown)
    if unknown:
        raise property_not_found(etype.name, unknown)
    return shape


def _paths(text: str | None) -> list[list[str]]:
    if not text:
        return []
    return [[seg.strip() for seg in part.split("/")] for part in text.split(",") if part.strip()]


def _expand_path(
    shape: Shape, path: list[str], etype: EntityType, schema: Schema, unknown: list[str]
) -> None:
    cur, t = shape, etype
    for seg in path:
        nav = t.nav(seg)
        if nav is None or nav.target not in schema:
            unknown.append("/".join(path))
            return
        cur = cur.expand.setdefault(seg, Shape())
        t = schema[nav.target]


def _select_path(
    shape: Shape, path: list[str], etype: EntityType, schema: Schema, unknown: list[str]
) -> None:
    cur, t = shape, etype
    for k, seg in enumerate(path):
        last = k == len(path) - 1
        if seg == "*" and last:
            cur.props = None
            return
        nav = t.nav(seg)
        if nav is not None and nav.target in schema:
            if cur.props is None:
                cur.props = set()
            cur.navs.add(seg)
            if last:
                return
            sub = cur.expand.get(seg)
            if sub is None:  # selecting into a nav that is not expanded: SF answers it deferred
                return
            if sub.props is None:
                sub.props = set()
            cur, t = sub, schema[nav.target]
            continue
        if last and t.prop(seg) is not None:
            if cur.props is None:
                cur.props = set()
            cur.props.add(seg)
            return
        unknown.append("/".join(path))
        return


def parse_orderby(text: str | None, etype: EntityType) -> list[tuple[str, bool]]:
    """``lastName desc,firstName`` → [(name, descending)]."""
    out: list[tuple[str, bool]] = []
    unknown: list[str] = []
    for part in (text or "").split(","):
        words = part.split()
        if not words:
            continue
        if etype.prop(words[0]) is None:
            unknown.append(words[0])
            continue
        desc = len(words) > 1 and words[1].lower() == "desc"
        out.append((words[0], desc))
    if unknown:
        raise property_not_found(etype.name, unknown)
    return out


def sort_records(records: list[Record], order: list[tuple[str, bool]], keys: tuple[str, ...]) -> list[Record]:
    """Stable multi-key sort, nulls first as SF does, always ending on the entity key."""
    out = sorted(records, key=lambda r: tuple(_sortable(r.get(k)) for k in keys))
    for name, desc in reversed(order):
        out.sort(key=lambda r, n=name: _sortable(r.get(n)), reverse=desc)  # type: ignore[misc]
    return out


def _sortable(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    value = as_utc(value)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float | Decimal):
        return (2, value)
    if isinstance(value, datetime):
        return (3, value)
    return (4, str(value))
