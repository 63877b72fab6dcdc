"""Collection reads: ``$filter`` → ``$orderby`` → ``$skip/$top`` → server paging → rendering.

SF pages at most 1000 rows (``customPageSize`` lowers that) and hands out an opaque
``$skiptoken`` inside an absolute ``__next`` URL. Two paging modes are emulated:

* cursor (the default): the token remembers how many rows were served and the key of the
  last one; the next page re-runs the query and continues after that key, so rows inserted
  or removed meanwhile shift the result as they would on a live tenant;
* ``paging=snapshot``: the first request freezes the matching keys server-side and later
  pages walk that frozen list (rows are re-read, so edits show but the set does not change).

Filtering and sorting a 100,000-row set for every page would make the emulator, not the client,
the bottleneck of a benchmark (``bench/sf_pull.py``). Collections that say how to tell their data
changed (``Collection.version``) keep their filtered, sorted rows per query until it does; a cursor
then finds its place through a key index instead of a scan.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from okrsync.sandbox.successfactors.filters import FilterParser, Node, evaluate
from okrsync.sandbox.successfactors.odata import (
    EntityType,
    ODataError,
    Record,
    Schema,
    Shape,
    bad_request,
    format_key,
    parse_orderby,
    parse_shape,
    sort_records,
    to_json_value,
)

MAX_PAGE = 1000
NavFn = Callable[[Record, str], "Record | list[Record] | None"]


@dataclass
class Collection:
    """One entity set as the query engine sees it: its type, rows, key lookup and navigation."""

    etype: EntityType
    rows: Callable[[], list[Record]]
    navigate: NavFn
    default_filter: Callable[[Node | None], Node | None] = lambda node: node
    # what changes whenever ``rows`` would change; None: recompute on every request
    version: Callable[[], Hashable] | None = None


@dataclass
class _Result:
    """One query's filtered, sorted rows, and (built on first need) where each key sits in them."""

    rows: list[Record]
    positions: dict[str, int] | None = field(default=None)
    # rendered, encoded rows by (``$select``, ``$expand``) and row index: valid as long as the result
    encoded: dict[tuple[str | None, str | None], dict[int, bytes]] = field(default_factory=dict)

    def position(self, etype: EntityType, key: str) -> int | None:
        if self.positions is None:
            self.positions = {format_key(etype, r): i for i, r in enumerate(self.rows)}
        return self.positions.get(key)


class Renderer:
    """Writes records as SF's verbose JSON: ``__metadata``, Edm-typed values, expanded/deferred navs."""

    def __init__(
        self, schema: Schema, collections: dict[str, Collection], service_url: Callable[[], str]
    ) -> None:
        self.schema = schema
        self.collections = collections
        self.service_url = service_url

    def uri(self, etype: EntityType, record: Record) -> str:
        return f"{self.service_url()}/{etype.name}{format_key(etype, record)}"

    def render(self, etype: EntityType, record: Record, shape: Shape) -> dict[str, Any]:
        uri = self.uri(etype, record)
        out: dict[str, Any] = {"__metadata": {"uri": uri, "type": f"SFOData.{etype.name}"}}
        for p in etype.props:
            if (shape.props is None or p.name in shape.props) and p.name in record:
                out[p.name] = to_json_value(p, record[p.name])
        for nav in etype.navs:
            if nav.target not in self.schema:
                continue
            if shape.props is not None and nav.name not in shape.navs:
                continue  # with $select, SF renders only the navigations it names
            if nav.name not in shape.expand:
                out[nav.name] = {"__deferred": {"uri": f"{uri}/{nav.name}"}}
                continue
            target = self.schema[nav.target]
            sub = shape.expand[nav.name]
            value = self.collections[etype.name].navigate(record, nav.name)
            if nav.many:
                items = value if isinstance(value, list) else []
                out[nav.name] = {"results": [self.render(target, r, sub) for r in items]}
            else:
                single = value if isinstance(value, dict) else None
                out[nav.name] = None if single is None else self.render(target, single, sub)
        return out


class QueryEngine:
    def __init__(self, schema: Schema, collections: dict[str, Collection], renderer: Renderer) -> None:
        self.schema = schema
        self.collections = collections
        self.renderer = renderer
        self._snapshots: OrderedDict[str, list[str]] = OrderedDict()
        self._results: OrderedDict[Hashable, _Result] = OrderedDict()
        self._lock = threading.Lock()

    def _resolver(self, coll: Collection) -> Callable[[Record, tuple[str, ...]], Any]:
        def resolve(record: Record, path: tuple[str, ...]) -> Any:
            etype, current = coll.etype, record
            for seg in path[:-1]:
                nav = etype.nav(seg)
                if nav is None:
                    return None
                value = self.collections[etype.name].navigate(current, seg)
                if isinstance(value, list):
                    value = value[0] if value else None
                if value is None:
                    return None
                current, etype = value, self.schema[nav.target]
            return current.get(path[-1])

        return resolve

    def filtered(self, coll: Collection, query: dict[str, list[str]]) -> list[Record]:
        text = _arg(query, "$filter")
        node = FilterParser(text, coll.etype, self.schema).parse() if text and text.strip() else None
        node = coll.default_filter(node)
        rows = coll.rows()
        if node is None:
            return rows
        resolve = self._resolver(coll)
        return [r for r in rows if evaluate(node, r, resolve)]

    def count(self, coll: Collection, query: dict[str, list[str]]) -> int:
        return len(self.filtered(coll, query))

    def _result(self, coll: Collection, query: dict[str, list[str]]) -> _Result:
        """The query's rows, from the cache while ``coll.version`` says nothing changed."""
        order = parse_orderby(_arg(query, "$orderby"), coll.etype)
        if coll.version is None:
            return _Result(sort_records(self.filtered(coll, query), order, coll.etype.keys))
        key = (
            coll.etype.name,
            coll.version(),
            _arg(query, "$filter"),
            _arg(query, "$orderby"),
            tuple(
                sorted(
                    (k, tuple(v))
                    for k, v in query.items()
                    if not k.startswith("$") and k not in {"paging", "customPageSize"}
                )
            ),
        )
        with self._lock:
            cached = self._results.get(key)
            if cached is not None:
                self._results.move_to_end(key)
                return cached
        result = _Result(sort_records(self.filtered(coll, query), order, coll.etype.keys))
        with self._lock:
            self._results[key] = result
            while len(self._results) > 8:
                self._results.popitem(last=False)
        return result

    def collection_json(
        self, coll: Collection, query: dict[str, list[str]], raw_query: str, path: str
    ) -> bytes:
        """The whole ``{"d": ...}`` body of one page, encoded.

        Rendering a row (metadata, typed values, expanded managers) costs far more than sending it;
        for a versioned collection each row is rendered and encoded once per result and shape.
        """
        shape, result, indexes, extras = self._page(coll, query, raw_query, path)
        rows, etype = result.rows, coll.etype
        if coll.version is None:
            parts = [_encode(self.renderer.render(etype, rows[i], shape)) for i in indexes]
        else:
            with self._lock:
                encoded = result.encoded.setdefault((_arg(query, "$select"), _arg(query, "$expand")), {})
            parts = []
            for i in indexes:
                part = encoded.get(i)
                if part is None:
                    part = encoded[i] = _encode(self.renderer.render(etype, rows[i], shape))
                parts.append(part)
        tail = b"".join(b"," + _encode(k) + b":" + _encode(v) for k, v in extras.items())
        return b'{"d":{"results":[' + b",".join(parts) + b"]" + tail + b"}}"

    def _page(
        self, coll: Collection, query: dict[str, list[str]], raw_query: str, path: str
    ) -> tuple[Shape, _Result, list[int], dict[str, Any]]:
        """The page a request asks for: its shape, the result it is cut from, the indexes of its
        rows in that result, and the ``__count``/``__next`` entries."""
        etype = coll.etype
        shape = parse_shape(_arg(query, "$select"), _arg(query, "$expand"), etype, self.schema)
        result = self._result(coll, query)
        rows = result.rows
        total = len(rows)
        skip = _int_arg(query, "$skip", 0)
        top = _int_arg(query, "$top", None)
        end = total if top is None else min(total, skip + top)
        window = range(min(skip, total), end)
        page_size = min(_int_arg(query, "customPageSize", MAX_PAGE) or MAX_PAGE, MAX_PAGE)
        snapshot = (_arg(query, "paging") or "").lower() == "snapshot"
        token = _decode_token(_arg(query, "$skiptoken"))
        served = int(token.get("n", 0))
        if snapshot:
            keys = self._snapshot(token.get("s"), rows, window, etype)
            sid = token.get("s") or self._store_snapshot(keys)
            found = (result.position(etype, k) for k in keys[served : served + page_size])
            indexes = [i for i in found if i is not None]
            more = served + page_size < len(keys)
            next_token: dict[str, Any] = {"m": "s", "s": sid, "n": served + page_size}
        else:
            start = served
            last = token.get("k")
            if last is not None:
                at = result.position(etype, str(last))
                if at is not None and 0 <= at - skip < len(window):
                    start = at - skip + 1
            indexes = list(window[start : start + page_size])
            more = start + page_size < len(window)
            next_token = {
                "m": "c",
                "n": served + len(indexes),
                "k": format_key(etype, rows[indexes[-1]]) if indexes else None,
            }
        extras: dict[str, Any] = {}
        if (_arg(query, "$inlinecount") or "").lower() == "allpages":
            extras["__count"] = str(total)
        if more and indexes:
            extras["__next"] = self._next_url(raw_query, path, next_token)
        return shape, result, indexes, extras

    def _snapshot(self, sid: Any, rows: list[Record], window: range, etype: EntityType) -> list[str]:
        if sid is None:
            return [format_key(etype, rows[i]) for i in window]
        with self._lock:
            keys = self._snapshots.get(str(sid))
        if keys is None:
            raise bad_request("[COE0016]The snapshot of this $skiptoken has expired; restart the query.")
        return keys

    def _store_snapshot(self, keys: list[str]) -> str:
        sid = secrets.token_hex(8)
        with self._lock:
            self._snapshots[sid] = keys
            while len(self._snapshots) > 64:
                self._snapshots.popitem(last=False)
        return sid

    def _next_url(self, raw_query: str, path: str, token: dict[str, Any]) -> str:
        kept = [
            p for p in raw_query.split("&") if p and p.split("=", 1)[0] not in {"$skiptoken", "%24skiptoken"}
        ]
        encoded = (
            base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode().rstrip("=")
        )
        kept.append("$skiptoken=" + quote(encoded, safe=""))
        return f"{self.renderer.service_url()}/{path}?" + "&".join(kept)


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()  # as Response.json encodes


def _arg(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _int_arg(query: dict[str, list[str]], name: str, default: int | None) -> Any:
    text = _arg(query, name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"[COE0017]Invalid value {text!r} for {name}.") from None
    if value < 0:
        raise bad_request(f"[COE0017]Invalid value {text!r} for {name}.")
    return value


def _decode_token(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise ODataError(400, "COE_BAD_REQUEST", "[COE0016]Invalid $skiptoken.") from None
    if not isinstance(data, dict):
        raise ODataError(400, "COE_BAD_REQUEST", "[COE0016]Invalid $skiptoken.")
    return data
