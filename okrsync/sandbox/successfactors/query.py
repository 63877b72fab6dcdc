"""Collection reads: ``$filter`` → ``$orderby`` → ``$skip/$top`` → server paging → rendering.

SF pages at most 1000 rows (``customPageSize`` lowers that) and hands out an opaque
``$skiptoken`` inside an absolute ``__next`` URL. Two paging modes are emulated:

* cursor (the default): the token remembers how many rows were served and the key of the
  last one; the next page re-runs the query and continues after that key, so rows inserted
  or removed meanwhile shift the result as they would on a live tenant;
* ``paging=snapshot``: the first request freezes the matching keys server-side and later
  pages walk that frozen list (rows are re-read, so edits show but the set does not change).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
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

    def collection(
        self, coll: Collection, query: dict[str, list[str]], raw_query: str, path: str
    ) -> dict[str, Any]:
        etype = coll.etype
        shape = parse_shape(_arg(query, "$select"), _arg(query, "$expand"), etype, self.schema)
        order = parse_orderby(_arg(query, "$orderby"), etype)
        rows = sort_records(self.filtered(coll, query), order, etype.keys)
        total = len(rows)
        skip = _int_arg(query, "$skip", 0)
        top = _int_arg(query, "$top", None)
        window = rows[skip:] if top is None else rows[skip : skip + top]
        page_size = min(_int_arg(query, "customPageSize", MAX_PAGE) or MAX_PAGE, MAX_PAGE)
        snapshot = (_arg(query, "paging") or "").lower() == "snapshot"
        token = _decode_token(_arg(query, "$skiptoken"))
        served = int(token.get("n", 0))
        if snapshot:
            keys = self._snapshot(token.get("s"), window, etype)
            sid = token.get("s") or self._store_snapshot(keys)
            by_key = {format_key(etype, r): r for r in rows}
            page_keys = keys[served : served + page_size]
            page = [by_key[k] for k in page_keys if k in by_key]
            more = served + page_size < len(keys)
            next_token = {"m": "s", "s": sid, "n": served + page_size}
        else:
            start = served
            last = token.get("k")
            if last is not None:
                for idx, r in enumerate(window):
                    if format_key(etype, r) == last:
                        start = idx + 1
                        break
            page = window[start : start + page_size]
            more = start + page_size < len(window)
            next_token = {
                "m": "c",
                "n": served + len(page),
                "k": format_key(etype, page[-1]) if page else None,
            }
        body: dict[str, Any] = {"results": [self.renderer.render(etype, r, shape) for r in page]}
        if (_arg(query, "$inlinecount") or "").lower() == "allpages":
            body["__count"] = str(total)
        if more and page:
            body["__next"] = self._next_url(raw_query, path, next_token)
        return body

    def _snapshot(self, sid: Any, window: list[Record], etype: EntityType) -> list[str]:
        if sid is None:
            return [format_key(etype, r) for r in window]
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
