"""SOQL text built safely: literal escaping, Id checks, ``IN`` lists chunked under the URI limit.

Queries travel in the URL (``GET /query?q=``) and Salesforce answers 414 above 16,384 bytes, so a
list of a few thousand Ids has to be split. :func:`chunk_in_list` packs as many values per
query as fit the byte budget *after* URL encoding (quotes and commas triple in size).
Values from data are never pasted raw: strings go through :func:`quote` (SOQL's backslash
escapes) and Ids must look like Ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from urllib.parse import quote_plus

_SF_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
# the bytes around the query text in a query URI: "/services/data/v59.0/query/?q=" plus slack
URI_OVERHEAD = 64


def quote(value: str) -> str:
    """A SOQL string literal: ``O'Brien`` → ``'O\\'Brien'`` (no injection through data)."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in value) + "'"


def is_salesforce_id(value: str) -> bool:
    return bool(_SF_ID.match(value))


def quote_id(value: str) -> str:
    """An Id literal; anything that is not 15/18 alphanumerics is refused, not escaped."""
    if not is_salesforce_id(value):
        raise ValueError(f"{value!r} is not a Salesforce Id")
    return f"'{value}'"


def in_list(literals: Sequence[str]) -> str:
    return "(" + ",".join(literals) + ")"


def encoded_length(text: str) -> int:
    """Bytes ``text`` takes in a query string, as requests encodes it (``quote_plus``)."""
    return len(quote_plus(text))


def chunk_in_list(
    template: str, marker: str, literals: Sequence[str], *, max_uri_bytes: int
) -> Iterator[tuple[str, int]]:
    """Yield ``(query, values in it)`` with ``marker`` replaced by as many literals as fit.

    Every query stays under ``max_uri_bytes`` once URL-encoded (with :data:`URI_OVERHEAD` for
    the path). An empty ``literals`` yields nothing: the caller decides what an empty set means.
    """
    base = encoded_length(template.replace(marker, "()")) + URI_OVERHEAD
    budget = max_uri_bytes - base
    comma = encoded_length(",")
    chunk: list[str] = []
    size = 0
    for lit in literals:
        cost = encoded_length(lit) + (comma if chunk else 0)
        if chunk and size + cost > budget:
            yield template.replace(marker, in_list(chunk)), len(chunk)
            chunk, size = [], 0
            cost = encoded_length(lit)
        if cost > budget:
            raise ValueError(f"one value ({lit[:40]}…) does not fit in a {max_uri_bytes}-byte query URI")
        chunk.append(lit)
        size += cost
    if chunk:
        yield template.replace(marker, in_list(chunk)), len(chunk)


def unique(values: Iterable[str]) -> list[str]:
    """Values once each, in first-seen order."""
    return list(dict.fromkeys(values))
