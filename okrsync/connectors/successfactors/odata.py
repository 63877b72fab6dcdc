"""OData v2 as SuccessFactors speaks it: URLs, filter literals, ``/Date()/`` values, errors, EDMX.

Pure helpers plus :class:`ODataReader`, which sends every OData call through the shared
:class:`~okrsync.http.HttpClient` with one SF habit taught: an expired or malformed bearer token
is answered with **403** ``LGN0005``-``LGN0007`` rather than 401, so those codes count as
authentication failures (the client then fetches a new token and retries once, like a 401).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import defusedxml.ElementTree as SafeET
import requests
from lxml import etree

from okrsync.errors import ApiError, AuthenticationError, ConnectorError
from okrsync.http import HttpClient, default_error_parser, odata_v2_pages, with_query

ALL_STATUSES = "status in 't','f','T','F','e','d'"
ACTIVE_USER_STATUSES = frozenset({"t", "T", "e"})
TOKEN_CODES = frozenset({"LGN0005", "LGN0006", "LGN0007"})  # 403s that mean "get a new token"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_BRACKET_CODE = re.compile(r"^\s*\[([A-Z]{3}\d{4})\]")
EDM = "{http://schemas.microsoft.com/ado/2008/09/edm}"
SAP = "{http://www.successfactors.com/edm/sap}"


# ---------------------------------------------------------------- values
def parse_sf_datetime(value: Any) -> datetime | None:
    """``/Date(ms)/`` or ``/Date(ms+0000)/`` (or ISO text) → an aware UTC datetime; None stays None."""
    if value is None or value == "":
        return None
    return _parse_sf_text(str(value))


@lru_cache(maxsize=8192)  # slice start dates repeat across users: parse each distinct text once
def _parse_sf_text(text: str) -> datetime:
    m = _DATE.match(text)
    if m:
        moment = EPOCH + timedelta(milliseconds=int(m.group(1)))
        return moment  # the offset suffix only says how SF would display it; ms are UTC
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an OData date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_sf_date(value: Any) -> date | None:
    moment = parse_sf_datetime(value)
    return None if moment is None else moment.date()


def sf_date(value: date | datetime) -> str:
    """A date as SF's ``Edm.DateTime`` JSON: midnight UTC in ms."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return f"/Date({int((value - EPOCH) / timedelta(milliseconds=1))})/"


def quote(text: str) -> str:
    """A string literal: ``'O''Brien'``."""
    return "'" + text.replace("'", "''") + "'"


def datetimeoffset(moment: datetime) -> str:
    return f"datetimeoffset'{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}'"


def datetime_literal(day: date) -> str:
    return f"datetime'{day:%Y-%m-%dT00:00:00}'"


def in_filter(prop: str, values: Iterable[str]) -> str:
    return f"{prop} in " + ",".join(quote(v) for v in values)


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ---------------------------------------------------------------- errors
def sf_error_parser(response: requests.Response) -> tuple[str | None, str | None]:
    """SF's ``{"error":{"code":"COE_…","message":{"value":"[COE0021]…"}}}`` → (``COE0021``, message).

    The bracketed code (``LGN0006``, ``COE0021``) is the one SAP's KBAs document, so it wins; the
    symbolic code (``INTERNAL_TOKEN_EXPIRED``) is kept in the message.
    """
    code, message = default_error_parser(response)
    if message:
        m = _BRACKET_CODE.match(message)
        if m:
            message = message[m.end() :].strip()
            if code and code != m.group(1):
                message = f"{message} ({code})"
            code = m.group(1)
    return code, message


def token_classifier(connector: str) -> Callable[[requests.Response], ConnectorError | None]:
    """SF answers an expired/invalid bearer token with 403 ``LGN0005``-``LGN0007``, not 401.

    Classified as :class:`AuthenticationError`, the shared client drops the token, fetches a
    new one and retries once, as it does for a 401.
    """

    def classify(response: requests.Response) -> ConnectorError | None:
        if response.status_code != 403:
            return None
        code, message = sf_error_parser(response)
        if code not in TOKEN_CODES:
            return None
        return AuthenticationError(
            message or "token rejected",
            connector=connector,
            url=response.url,
            status=403,
            code=code,
            body=response.content[:2000],
        )

    return classify


# ---------------------------------------------------------------- reading
class ODataReader:
    """Reads entity sets with ``$format=json``, following ``__next`` one page at a time."""

    def __init__(self, client: HttpClient, service_url: str, page_size: int, paging: str) -> None:
        self.client = client
        self.service_url = service_url
        self.page_size = page_size
        self.paging = paging
        self.classify = token_classifier(client.connector)

    def url(self, path: str, params: dict[str, Any] | None = None) -> str:
        query = {"$format": "json", **(params or {})}
        return with_query(f"{self.service_url}/{path}", query)

    def request(self, method: str, url: str, *, operation: str, **kwargs: Any) -> requests.Response:
        return self.client.request(method, url, operation=operation, classify=self.classify, **kwargs)

    def json(self, method: str, url: str, *, operation: str, **kwargs: Any) -> Any:
        return self.client.json(method, url, operation=operation, classify=self.classify, **kwargs)

    def fetch(self, url: str, params: dict[str, Any] | None, operation: str) -> Any:
        return self.json(
            "GET", url, params=params, operation=operation, headers={"Accept": "application/json"}
        )

    def pages(self, entity: str, params: dict[str, Any], operation: str) -> Iterator[list[dict[str, Any]]]:
        query = {**params, "customPageSize": self.page_size}
        if self.paging == "snapshot":
            query["paging"] = "snapshot"
        url = self.url(entity, query)
        for d in odata_v2_pages(
            lambda u, p: self.fetch(u, p, operation), url, None, connector=self.client.connector
        ):
            results = d.get("results")
            if not isinstance(results, list):
                raise ApiError(
                    f"{entity} page has no results list", connector=self.client.connector, operation=operation
                )
            yield results

    def get(self, path: str, params: dict[str, Any] | None, operation: str) -> Any:
        body = self.fetch(self.url(path, params), None, operation)
        return body.get("d") if isinstance(body, dict) else None


# ---------------------------------------------------------------- $metadata
@dataclass(frozen=True)
class PropInfo:
    name: str
    edm: str
    max_length: int | None
    creatable: bool
    updatable: bool
    required: bool
    filterable: bool = True


@dataclass(frozen=True)
class EntityInfo:
    name: str
    keys: tuple[str, ...]
    props: dict[str, PropInfo] = field(default_factory=dict)
    navs: tuple[str, ...] = ()

    def writable(self, name: str) -> bool:
        p = self.props.get(name)
        return p is not None and (p.creatable or p.updatable)

    def filterable(self, name: str) -> bool:
        p = self.props.get(name)
        return p is not None and p.filterable


def parse_metadata(xml: bytes) -> dict[str, EntityInfo]:
    """Entity sets of an EDMX document → their types' properties (sap:* flags included).

    defusedxml refuses DTDs and entities before lxml (no network, no entity resolution) reads it.
    """
    try:
        SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
        root = etree.fromstring(xml, parser=parser)
    except Exception as exc:  # defusedxml and lxml raise several types
        raise ConnectorError(f"$metadata is not acceptable XML ({type(exc).__name__}: {exc})") from None
    types: dict[str, EntityInfo] = {}
    for et in root.iter(f"{EDM}EntityType"):
        props: dict[str, PropInfo] = {}
        for p in et.iterfind(f"{EDM}Property"):
            ml = p.get("MaxLength")
            props[p.get("Name", "")] = PropInfo(
                name=p.get("Name", ""),
                edm=p.get("Type", "Edm.String"),
                max_length=int(ml) if ml and ml.isdigit() else None,
                creatable=p.get(f"{SAP}creatable", "true") == "true",
                updatable=p.get(f"{SAP}updatable", "true") == "true",
                required=p.get(f"{SAP}required", "false") == "true",
                filterable=p.get(f"{SAP}filterable", "true") == "true",
            )
        keys = tuple(r.get("Name", "") for r in et.iterfind(f"{EDM}Key/{EDM}PropertyRef"))
        navs = tuple(n.get("Name", "") for n in et.iterfind(f"{EDM}NavigationProperty"))
        types[et.get("Name", "")] = EntityInfo(et.get("Name", ""), keys, props, navs)
    sets: dict[str, EntityInfo] = {}
    for es in root.iter(f"{EDM}EntitySet"):
        type_name = es.get("EntityType", "").rsplit(".", 1)[-1]
        info = types.get(type_name)
        if info is not None:
            sets[es.get("Name", "")] = EntityInfo(es.get("Name", ""), info.keys, info.props, info.navs)
    return sets
