"""Paginators for the four paging styles vendors use, each with a loop guard.

A paginator is created per pull (they hold position), yields one decoded page at a time
(memory stays one page deep), and raises :class:`PaginationError` when a vendor hands back
the same cursor twice — the failure mode that otherwise turns a nightly sync into an
endless loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode, urljoin

from okrsync.errors import PaginationError

FetchJson = Callable[[str, dict[str, Any] | None], Any]
"""``fetch(url, params)`` → decoded JSON; usually ``lambda u, p: client.json("GET", u, params=p, ...)``."""


class _Guard:
    def __init__(self, what: str, connector: str | None) -> None:
        self.seen: set[str] = set()
        self.what = what
        self.connector = connector

    def check(self, token: str) -> None:
        if token in self.seen:
            raise PaginationError(
                f"the vendor returned the same {self.what} twice; stopping to avoid a loop",
                connector=self.connector,
                url=token if token.startswith("http") else None,
            )
        self.seen.add(token)


def next_link_pages(
    fetch: FetchJson,
    url: str,
    params: dict[str, Any] | None = None,
    *,
    next_key: str = "@odata.nextLink",
    connector: str | None = None,
) -> Iterator[dict[str, Any]]:
    """OData v4 (Graph): follow absolute ``@odata.nextLink`` URLs (they carry every option)."""
    guard = _Guard("nextLink", connector)
    guard.check(with_query(url, params) if params else url)
    page = fetch(url, params)
    while True:
        yield page
        nxt = page.get(next_key)
        if not nxt:
            return
        guard.check(nxt)
        page = fetch(nxt, None)


def odata_v2_pages(
    fetch: FetchJson, url: str, params: dict[str, Any] | None = None, *, connector: str | None = None
) -> Iterator[dict[str, Any]]:
    """OData v2 (SuccessFactors): ``{"d": {"results": [...], "__next": "..."}}``."""
    guard = _Guard("__next link", connector)
    guard.check(with_query(url, params) if params else url)
    page = fetch(url, params)
    while True:
        d = page.get("d") if isinstance(page, dict) else None
        if not isinstance(d, dict):
            raise PaginationError("OData v2 page without a 'd' object", connector=connector, url=url)
        yield d
        nxt = d.get("__next")
        if not nxt:
            return
        nxt = urljoin(url, nxt)
        guard.check(nxt)
        page = fetch(nxt, None)


def offset_limit_pages(
    fetch: FetchJson,
    url: str,
    params: dict[str, Any] | None = None,
    *,
    limit: int,
    items_key: str = "data",
    connector: str | None = None,
    max_pages: int = 1_000_000,
) -> Iterator[list[Any]]:
    """``?limit=&offset=`` (Workday REST): stop on a short or empty page, never trusting ``total``."""
    offset = 0
    for _ in range(max_pages):
        page = fetch(url, {**(params or {}), "limit": limit, "offset": offset})
        items = page.get(items_key) if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise PaginationError(f"page without a '{items_key}' list", connector=connector, url=url)
        if items:
            yield items
        if len(items) < limit:
            return
        offset += len(items)
    raise PaginationError(f"more than {max_pages} pages; stopping", connector=connector, url=url)


def start_index_pages(
    fetch: FetchJson,
    url: str,
    params: dict[str, Any] | None = None,
    *,
    count: int = 100,
    connector: str | None = None,
) -> Iterator[list[Any]]:
    """SCIM ListResponse: 1-based ``startIndex``; servers may return fewer than ``count``."""
    start = 1
    guard = _Guard("startIndex", connector)
    while True:
        guard.check(str(start))
        page = fetch(url, {**(params or {}), "startIndex": start, "count": count})
        resources = page.get("Resources") or []
        total = int(page.get("totalResults") or 0)
        if resources:
            yield resources
        start += len(resources)
        if not resources or start > total:
            return


def with_query(url: str, params: dict[str, Any]) -> str:
    """Append query parameters, keeping OData's ``$`` and commas readable in logs."""
    sep = "&" if "?" in url else "?"
    return url + sep + urlencode(params, safe="$,()='/:")
