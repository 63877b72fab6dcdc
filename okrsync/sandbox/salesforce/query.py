"""Evaluating parsed SOQL against the emulator's rows: type checks, filters, projection, aggregates.

Literals are type-checked against the field before any row is read, with Salesforce's error
codes (``INVALID_FIELD`` for a quoted date, ``INVALID_QUERY_FILTER_OPERATOR`` for a bad Id), so
a connector that formats a watermark wrongly fails here as it would in production. Filters
compile to closures over ordinary Python comparisons; text compares case-insensitively and
Ids by their 15-character key, as in Salesforce.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from okrsync.sandbox.salesforce import dates
from okrsync.sandbox.salesforce.schema import Field, SObject, is_valid_id, sobject, to_json
from okrsync.sandbox.salesforce.soql import (
    Aggregate,
    Compare,
    Condition,
    FieldRef,
    Literal,
    Not,
    OrderItem,
    Query,
    SoqlError,
    parse,
    unescape,
)

MAX_OFFSET = 2000
Row = dict[str, Any]


class DataSource(Protocol):
    def rows(self, sobject_name: str) -> list[Row]: ...

    def get(self, sobject_name: str, record_id: str) -> Row | None: ...


# ---------------------------------------------------------------- binding to the schema
@dataclass(frozen=True)
class Path:
    """A field reached from a row, possibly through lookups (``Manager.Manager.Email``)."""

    hops: tuple[tuple[Field, SObject], ...]  # (lookup field, sObject it points to)
    field: Field

    @property
    def key(self) -> str:
        return ".".join([*(f.relationship or "" for f, _ in self.hops), self.field.name]).lower()

    def get(self, row: Row | None, source: DataSource) -> Any:
        for ref, target in self.hops:
            if row is None:
                return None
            fk = row.get(ref.name)
            row = source.get(target.name, fk) if fk else None
        return None if row is None else row.get(self.field.name)


def resolve(obj: SObject, name: str) -> Path:
    parts = name.split(".")
    hops: list[tuple[Field, SObject]] = []
    current = obj
    for rel in parts[:-1]:
        ref = current.relationship(rel)
        target = sobject(ref.reference_to or "") if ref else None
        if ref is None or target is None:
            raise SoqlError(
                "INVALID_FIELD",
                f"Didn't understand relationship '{rel}' in field path. If you are "
                "attempting to use a custom relationship, be sure to append the '__r' after the "
                "custom relationship name.",
            )
        hops.append((ref, target))
        current = target
    f = current.field(parts[-1])
    if f is None:
        raise SoqlError(
            "INVALID_FIELD",
            f"No such column '{parts[-1]}' on entity '{current.name}'. If you are "
            "attempting to use a custom field, be sure to append the '__c' after the custom field "
            "name. Please reference your WSDL or the describe call for the appropriate names.",
        )
    return Path(tuple(hops), f)


_TYPE_NAMES = {"currency": "double", "percent": "double", "datetime": "dateTime", "reference": "id"}


def _type_error(f: Field) -> SoqlError:
    kind = _TYPE_NAMES.get(f.type, "string" if f.is_string else f.type)
    how = "should be enclosed in quotes" if f.is_string or f.is_id else "should not be enclosed in quotes"
    return SoqlError(
        "INVALID_FIELD", f"value of filter criterion for field '{f.name}' must be of type {kind} and {how}"
    )


def normalise(f: Field, value: Any) -> Any:
    """The comparable form of a field value: text case-folded, Ids by their 15-char case-sensitive key."""
    if value is None:
        return None
    if f.is_id:
        return str(value)[:15]
    if f.is_string:
        return str(value).casefold()
    return value


def _bind_literal(f: Field, lit: Literal, today: date) -> tuple[str, Any]:
    """("value", comparable) or ("range", (lo, hi_exclusive)), checked against the field's type."""
    if lit.kind == "null":
        return "value", None
    if f.is_id:
        if lit.kind != "string":
            raise _type_error(f)
        if not is_valid_id(lit.value):
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}")
        return "value", lit.value[:15]
    if f.is_string:
        if lit.kind != "string":
            raise _type_error(f)
        return "value", lit.value.casefold()
    if f.type == "boolean":
        if lit.kind != "boolean":
            raise _type_error(f)
        return "value", lit.value
    if f.is_number:
        if lit.kind != "number":
            raise _type_error(f)
        return "value", lit.value
    if f.type in ("date", "datetime"):
        if lit.kind == "range":
            name, n = lit.value
            lo, hi = dates.date_range(name, n, today)
            hi = hi + timedelta(days=1)
            if f.type == "datetime":
                return "range", (datetime.combine(lo, time(), UTC), datetime.combine(hi, time(), UTC))
            return "range", (lo, hi)
        if lit.kind != ("date" if f.type == "date" else "datetime"):
            raise _type_error(f)
        return "value", lit.value
    raise SoqlError("INVALID_FIELD", f"field '{f.name}' can not be filtered in a query call")


Predicate = Callable[[Row], bool]


def _compile_compare(c: Compare, obj: SObject, source: DataSource, today: date) -> Predicate:
    path = resolve(obj, c.ref.name)
    f = path.field

    def value_of(row: Row) -> Any:
        return normalise(f, path.get(row, source))

    if c.op == "LIKE":
        assert isinstance(c.value, Literal)
        if not (f.is_string or f.is_id):
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on field '{f.name}': LIKE")
        pattern = _like_regex(unescape(c.value.raw, like=True))
        return lambda row: (v := path.get(row, source)) is not None and pattern.fullmatch(str(v)) is not None
    if c.op in ("IN", "NOTIN"):
        assert isinstance(c.value, tuple)
        bound = [_bind_literal(f, lit, today) for lit in c.value]
        plain = {v for kind, v in bound if kind == "value"}
        ranges = [v for kind, v in bound if kind == "range"]

        def member(row: Row) -> bool:
            v = value_of(row)
            return v in plain or any(v is not None and lo <= v < hi for lo, hi in ranges)

        if c.op == "IN":
            return member
        return lambda row: not member(row)
    assert isinstance(c.value, Literal)
    kind, target = _bind_literal(f, c.value, today)
    if f.type == "boolean" and c.op not in ("=", "!="):
        raise SoqlError(
            "INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on boolean field '{f.name}': {c.op}"
        )
    op = c.op
    if kind == "range":
        lo, hi = target
        tests: dict[str, Callable[[Any], bool]] = {
            "=": lambda v: v is not None and lo <= v < hi,
            "!=": lambda v: v is None or not lo <= v < hi,
            "<": lambda v: v is not None and v < lo,
            "<=": lambda v: v is not None and v < hi,
            ">": lambda v: v is not None and v >= hi,
            ">=": lambda v: v is not None and v >= lo,
        }
    else:
        tests = {
            "=": lambda v: v == target,
            "!=": lambda v: v != target,
            "<": lambda v: v is not None and target is not None and v < target,
            "<=": lambda v: v is not None and target is not None and v <= target,
            ">": lambda v: v is not None and target is not None and v > target,
            ">=": lambda v: v is not None and target is not None and v >= target,
        }
    test = tests[op]
    return lambda row: test(value_of(row))


def _like_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _compile_condition(cond: Condition, obj: SObject, source: DataSource, today: date) -> Predicate:
    if isinstance(cond, Compare):
        return _compile_compare(cond, obj, source, today)
    if isinstance(cond, Not):
        inner = _compile_condition(cond.part, obj, source, today)
        return lambda row: not inner(row)
    parts = [_compile_condition(p, obj, source, today) for p in cond.parts]
    if cond.op == "AND":
        return lambda row: all(p(row) for p in parts)
    return lambda row: any(p(row) for p in parts)


# ---------------------------------------------------------------- evaluation
@dataclass
class Result:
    records: list[dict[str, Any]]
    total_size: int
    aggregate: bool = False


def _record_url(obj: str, record_id: str, version: str) -> str:
    return f"/services/data/v{version}/sobjects/{obj}/{record_id}"


def _project(row: Row, paths: list[Path], obj: SObject, source: DataSource, version: str) -> dict[str, Any]:
    rec: dict[str, Any] = {"attributes": {"type": obj.name, "url": _record_url(obj.name, row["Id"], version)}}
    for path in paths:
        cur: dict[str, Any] | None = rec
        current_row: Row | None = row
        for ref, target in path.hops:
            assert cur is not None and current_row is not None
            rel = ref.relationship or ref.name
            fk = current_row.get(ref.name)
            current_row = source.get(target.name, fk) if fk else None
            if rel not in cur:
                cur[rel] = (
                    None
                    if current_row is None
                    else {
                        "attributes": {
                            "type": target.name,
                            "url": _record_url(target.name, current_row["Id"], version),
                        }
                    }
                )
            cur = cur[rel]
            if cur is None or current_row is None:
                break
        else:
            assert cur is not None and current_row is not None
            cur[path.field.name] = to_json(current_row.get(path.field.name))
    return rec


def _sort(items: list[Any], keys: list[tuple[Callable[[Any], Any], OrderItem]]) -> list[Any]:
    """Stable multi-key sort, last key first; nulls first ascending / last descending unless told."""
    for key, item in reversed(keys):
        values = [(key(x), x) for x in items]
        nulls = [x for v, x in values if v is None]
        present = [(v, x) for v, x in values if v is not None]
        present.sort(key=lambda p: p[0], reverse=item.desc)
        nulls_first = (not item.desc) if item.nulls_first is None else item.nulls_first
        ordered = [x for _, x in present]
        items = nulls + ordered if nulls_first else ordered + nulls
    return items


def _aggregate(func: str, path: Path | None, rows: list[Row], source: DataSource) -> Any:
    if path is None:
        return len(rows)
    values = [v for v in (path.get(r, source) for r in rows) if v is not None]
    if func == "COUNT":
        return len(values)
    if func == "COUNT_DISTINCT":
        return len({normalise(path.field, v) for v in values})
    if not values:
        return None
    if func == "SUM":
        total = sum(values)
        return int(total) if path.field.type == "int" else float(total)
    if func == "AVG":
        return float(sum(values)) / len(values)
    return to_json(max(values) if func == "MAX" else min(values))


def execute(text: str, source: DataSource, *, today: date, version: str) -> Result:
    """Parse, check and run one SOQL statement against ``source``."""
    q = parse(text)
    obj = sobject(q.sobject)
    if obj is None:
        raise SoqlError(
            "INVALID_TYPE",
            f"sObject type '{q.sobject}' is not supported. If you are attempting to "
            "use a custom object, be sure to append the '__c' after the entity name.",
        )
    predicate = _compile_condition(q.where, obj, source, today) if q.where else None
    if q.offset is not None and q.offset > MAX_OFFSET:
        raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}")
    count_only = any(isinstance(s.expr, Aggregate) and s.expr.arg is None for s in q.select)
    if count_only and (len(q.select) > 1 or q.group_by or q.select[0].alias):
        raise SoqlError("MALFORMED_QUERY", "COUNT() must be the only element in the SELECT list")
    is_aggregate = bool(q.group_by) or any(isinstance(s.expr, Aggregate) for s in q.select)

    rows = source.rows(obj.name)
    if predicate is not None:
        rows = [r for r in rows if predicate(r)]
    if count_only:
        total = len(rows)
        if q.offset:
            total = max(total - q.offset, 0)
        if q.limit is not None:
            total = min(total, q.limit)
        return Result([], total)
    if is_aggregate:
        return _execute_aggregate(q, obj, rows, source)

    seen: set[str] = set()
    paths: list[Path] = []
    for item in q.select:
        assert isinstance(item.expr, FieldRef)
        if item.alias:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{item.alias}'")
        path = resolve(obj, item.expr.name)
        if path.key in seen:
            raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {item.expr.name}")
        seen.add(path.key)
        paths.append(path)
    if q.order_by:
        keys: list[tuple[Callable[[Any], Any], OrderItem]] = []
        for o in q.order_by:
            if isinstance(o.expr, Aggregate):
                raise SoqlError("MALFORMED_QUERY", "ORDER BY an aggregate needs an aggregate query")
            keys.append((_row_key(resolve(obj, o.expr.name), source), o))
        rows = _sort(rows, keys)
    start = q.offset or 0
    rows = rows[start:] if q.limit is None else rows[start : start + q.limit]
    return Result([_project(r, paths, obj, source, version) for r in rows], len(rows))


Column = Callable[[tuple[Any, ...], list[Row]], Any]


def _row_key(path: Path, source: DataSource) -> Callable[[Row], Any]:
    return lambda row: normalise(path.field, path.get(row, source))


def _group_column(index: int) -> Column:
    return lambda key, rows: to_json(key[index])


def _aggregate_column(func: str, path: Path, source: DataSource) -> Column:
    return lambda key, rows: _aggregate(func, path, rows, source)


def _index_key(index: int) -> Callable[[tuple[Any, ...]], Any]:
    return lambda key: key[index]


def _group_aggregate_key(
    func: str, path: Path | None, groups: dict[tuple[Any, ...], list[Row]], source: DataSource
) -> Callable[[tuple[Any, ...]], Any]:
    return lambda key: _aggregate(func, path, groups[key], source)


def _execute_aggregate(q: Query, obj: SObject, rows: list[Row], source: DataSource) -> Result:
    group_paths = [resolve(obj, g.name) for g in q.group_by]
    group_keys = {p.key: i for i, p in enumerate(group_paths)}
    columns: list[tuple[str, Column]] = []
    expr_n = 0
    names: set[str] = set()
    for item in q.select:
        if isinstance(item.expr, FieldRef):
            p = resolve(obj, item.expr.name)
            if p.key not in group_keys:
                raise SoqlError("MALFORMED_QUERY", f"Field must be grouped or aggregated: {p.field.name}")
            idx = group_keys[p.key]
            name = item.alias or p.field.name
            columns.append((name, _group_column(idx)))
        else:
            agg = item.expr
            assert agg.arg is not None
            ap = resolve(obj, agg.arg.name)
            if agg.func in ("SUM", "AVG") and not ap.field.is_number:
                raise SoqlError(
                    "INVALID_FIELD", f"field {ap.field.name} does not support aggregate operator {agg.func}"
                )
            if item.alias:
                name = item.alias
            else:
                name = f"expr{expr_n}"
                expr_n += 1
            columns.append((name, _aggregate_column(agg.func, ap, source)))
        if name.lower() in names:
            raise SoqlError("MALFORMED_QUERY", f"duplicate alias: {name}")
        names.add(name.lower())

    groups: dict[tuple[Any, ...], list[Row]] = {}
    originals: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for r in rows:
        raw = tuple(p.get(r, source) for p in group_paths)
        norm = tuple(normalise(p.field, v) for p, v in zip(group_paths, raw, strict=True))
        groups.setdefault(norm, []).append(r)
        originals.setdefault(norm, raw)
    if not group_paths and not groups:
        groups[()] = []
        originals[()] = ()
    items = list(groups)
    if q.order_by:
        keys: list[tuple[Callable[[Any], Any], OrderItem]] = []
        for o in q.order_by:
            if isinstance(o.expr, FieldRef):
                p = resolve(obj, o.expr.name)
                if p.key not in group_keys:
                    raise SoqlError(
                        "MALFORMED_QUERY", f"Ordered field must be grouped or aggregated: {p.field.name}"
                    )
                keys.append((_index_key(group_keys[p.key]), o))
            else:
                arg = resolve(obj, o.expr.arg.name) if o.expr.arg else None
                keys.append((_group_aggregate_key(o.expr.func, arg, groups, source), o))
        items = _sort(items, keys)
    start = q.offset or 0
    items = items[start:] if q.limit is None else items[start : start + q.limit]
    records = []
    for k in items:
        rec: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
        for name, fn in columns:
            rec[name] = fn(originals[k], groups[k])
        records.append(rec)
    return Result(records, len(records), aggregate=True)
