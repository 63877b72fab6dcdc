"""OData query options for ``microsoft.graph.user``: $select, $expand, $filter, $orderby, $search.

Graph rejects what it does not know (unknown properties, advanced filters without
``ConsistencyLevel: eventual``) with specific 400s; connectors must meet those here rather
than in production, so this parser is strict where Graph is strict and lenient (ignores)
only where Graph is known to ignore.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from okrsync.sandbox.graph.common import GraphError, bad_request, unknown_property

# Known v1.0 user properties -> the value Graph shows when the emulator does not model it.
# fmt: off
_SCALARS = (
    "aboutMe", "accountEnabled", "ageGroup", "birthday", "city", "companyName", "consentProvidedForMinor",
    "country", "createdDateTime", "creationType", "deletedDateTime", "department", "displayName",
    "employeeHireDate", "employeeId", "employeeLeaveDateTime", "employeeOrgData", "employeeType",
    "externalUserState", "externalUserStateChangeDateTime", "faxNumber", "givenName", "hireDate", "id",
    "isResourceAccount", "jobTitle", "lastPasswordChangeDateTime", "legalAgeGroupClassification", "mail",
    "mailNickname", "mobilePhone", "mySite", "officeLocation", "onPremisesDistinguishedName",
    "onPremisesDomainName", "onPremisesExtensionAttributes", "onPremisesImmutableId",
    "onPremisesLastSyncDateTime", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled", "onPremisesUserPrincipalName", "passwordPolicies", "passwordProfile",
    "postalCode",
    "preferredDataLocation", "preferredLanguage", "preferredName", "securityIdentifier", "showInAddressList",
    "signInSessionsValidFromDateTime", "state", "streetAddress", "surname", "usageLocation",
    "userPrincipalName", "userType",
)
_COLLECTIONS = (
    "businessPhones", "imAddresses", "otherMails", "proxyAddresses", "identities", "interests",
    "pastProjects", "responsibilities", "schools", "skills", "assignedLicenses", "assignedPlans",
    "provisionedPlans",
)
# fmt: on
USER_PROPERTIES: dict[str, Any] = {**dict.fromkeys(_SCALARS), **dict.fromkeys(_COLLECTIONS, ())}
NAVIGATION = {"manager": "manager", "directreports": "directReports"}
DEFAULT_SELECT: tuple[str, ...] = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
)  # fmt: skip
_CANONICAL = {name.lower(): name for name in USER_PROPERTIES}
READ_ONLY = frozenset(
    {
        "id",
        "createdDateTime",
        "deletedDateTime",
        "securityIdentifier",
        "onPremisesSyncEnabled",
        "externalUserState",
        "lastPasswordChangeDateTime",
        "signInSessionsValidFromDateTime",
    }
)
BOOLEAN_PROPERTIES = frozenset(
    {"accountEnabled", "isResourceAccount", "showInAddressList", "onPremisesSyncEnabled"}
)
DATE_PROPERTIES = frozenset({"employeeHireDate", "employeeLeaveDateTime", "createdDateTime", "hireDate"})
# Filters Graph serves without ConsistencyLevel: eventual ("default" support in the docs).
BASIC_FILTER = frozenset(
    {
        "accountEnabled",
        "department",
        "displayName",
        "employeeId",
        "employeeType",
        "givenName",
        "id",
        "jobTitle",
        "mail",
        "mailNickname",
        "surname",
        "userPrincipalName",
        "userType",
        "city",
        "country",
        "usageLocation",
        "state",
        "onPremisesImmutableId",
        "onPremisesSamAccountName",
        "preferredLanguage",
    }
)
BASIC_ORDERBY = frozenset({"displayName", "userPrincipalName"})
SEARCHABLE = frozenset(
    {
        "displayName",
        "givenName",
        "surname",
        "mail",
        "userPrincipalName",
        "jobTitle",
        "department",
        "employeeId",
        "mailNickname",
        "officeLocation",
    }
)


def canonical(name: str) -> str:
    """Graph matches property names case-insensitively but answers with the metadata spelling."""
    found = _CANONICAL.get(name.strip().lower())
    if found is None:
        raise unknown_property(name.strip())
    return found


def parse_select(value: str | None, *, navigation_ok: bool = False) -> tuple[str, ...] | None:
    """``$select`` → canonical names (None = Graph's default set). Navigation names are dropped
    (``manager`` is meaningful only to delta, which asks for it with ``navigation_ok``)."""
    if value is None or not value.strip():
        return None
    names: list[str] = []
    for raw in value.split(","):
        name = raw.strip()
        if not name:
            continue
        if name.lower() in NAVIGATION:
            if navigation_ok:
                names.append(NAVIGATION[name.lower()])
            continue
        prop = canonical(name)
        if prop not in names:
            names.append(prop)
    return tuple(names)


@dataclass(frozen=True)
class Expand:
    """One ``$expand`` clause: which navigation, the nested ``$select``, and ``$levels`` (0 = max)."""

    navigation: str
    select: tuple[str, ...] | None = None
    levels: int | None = None

    @property
    def key(self) -> str:
        return f"{self.navigation}({','.join(self.select or ('*',))};{self.levels})"


_EXPAND = re.compile(r"^\s*(?P<nav>[A-Za-z]+)\s*(?:\((?P<inner>.*)\))?\s*$")


def parse_expand(value: str | None, *, allowed: tuple[str, ...] = ("manager",)) -> Expand | None:
    if value is None or not value.strip():
        return None
    if _top_level_comma(value):
        raise bad_request(
            "Expansion of more than one navigation property is not supported for directory objects."
        )
    m = _EXPAND.match(value)
    if not m:
        raise bad_request(f"Invalid $expand expression '{value}'.")
    nav = NAVIGATION.get(m.group("nav").lower())
    if nav is None:
        raise unknown_property(m.group("nav"))
    if nav not in allowed:
        raise bad_request(f"Expanding '{nav}' is not supported on this resource.", "Request_UnsupportedQuery")
    select: tuple[str, ...] | None = None
    levels: int | None = None
    for part in (m.group("inner") or "").split(";"):
        key, _, val = part.partition("=")
        key = key.strip().lower().removeprefix("$")
        if not key:
            continue
        if key == "select":
            select = parse_select(val)
        elif key == "levels":
            levels = 0 if val.strip().lower() == "max" else _positive_int(val, "$levels")
        else:
            raise bad_request(f"Query option '${key}' is not supported inside $expand.")
    return Expand(nav, select, levels)


def _top_level_comma(value: str) -> bool:
    depth = 0
    for ch in value:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            return True
    return False


def _positive_int(value: str, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"Invalid value '{value}' for {what}.") from None
    if number < 1:
        raise bad_request(f"Invalid value '{value}' for {what}.")
    return number


# ---- $filter ----
Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Filter:
    """A compiled ``$filter``; ``advanced`` names why it needs ``ConsistencyLevel: eventual`` (or None)."""

    predicate: Predicate
    advanced: str | None
    properties: frozenset[str]


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<dt>\d{4}-\d\d-\d\d(?:T[\d:.]+(?:Z|[+-]\d\d:\d\d)?)?)"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),])|(?P<word>[A-Za-z_$@][\w./$@]*))"
)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}


class _FilterParser:
    """Recursive descent over ``or``/``and``/``not``, comparisons, ``in``, ``startswith``/``endswith``."""

    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.advanced: str | None = None
        self.properties: set[str] = set()

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, Any]]:
        tokens: list[tuple[str, Any]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise bad_request(f"Invalid filter clause: syntax error at position {pos} in '{text}'.")
            pos = m.end()
            kind = m.lastgroup or ""
            raw = m.group(kind)
            if kind == "str":
                tokens.append(("lit", raw[1:-1].replace("''", "'")))
            elif kind == "num":
                tokens.append(("lit", float(raw) if "." in raw else int(raw)))
            elif kind == "dt":
                tokens.append(("lit", _parse_datetime(raw)))
            elif kind == "word" and raw.lower() in {"true", "false", "null"}:
                tokens.append(("lit", {"true": True, "false": False, "null": None}[raw.lower()]))
            else:
                tokens.append((kind, raw))
        return tokens

    def parse(self) -> Filter:
        predicate = self._or()
        if self.pos != len(self.tokens):
            raise bad_request(f"Invalid filter clause: unexpected '{self.tokens[self.pos][1]}'.")
        return Filter(predicate, self.advanced, frozenset(self.properties))

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> tuple[str, Any]:
        tok = self._peek()
        if tok is None:
            raise bad_request("Invalid filter clause: unexpected end of expression.")
        self.pos += 1
        return tok

    def _expect(self, value: str) -> None:
        kind, raw = self._next()
        if kind not in {"punct", "word"} or str(raw).lower() != value:
            raise bad_request(f"Invalid filter clause: expected '{value}' but found '{raw}'.")

    def _keyword(self, word: str) -> bool:
        tok = self._peek()
        if tok and tok[0] == "word" and str(tok[1]).lower() == word:
            self.pos += 1
            return True
        return False

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._keyword("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda u: any(p(u) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._keyword("and"):
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda u: all(p(u) for p in parts))

    def _unary(self) -> Predicate:
        if self._keyword("not"):
            self.advanced = self.advanced or "Operator 'not' is not supported"
            inner = self._unary()
            return lambda u: not inner(u)
        tok = self._peek()
        if tok == ("punct", "("):
            self.pos += 1
            inner = self._or()
            self._expect(")")
            return inner
        return self._primary()

    def _property(self) -> str:
        kind, raw = self._next()
        if kind != "word":
            raise bad_request(f"Invalid filter clause: expected a property name, found '{raw}'.")
        prop = canonical(str(raw))
        self.properties.add(prop)
        if prop not in BASIC_FILTER:
            self.advanced = (
                self.advanced
                or f"Unsupported or invalid query filter clause specified for property '{prop}' "
                "of resource 'User'"
            )
        return prop

    def _literal(self) -> Any:
        kind, raw = self._next()
        if kind != "lit":
            raise bad_request(f"Invalid filter clause: expected a literal, found '{raw}'.")
        return raw

    def _primary(self) -> Predicate:
        kind, raw = self._next()
        word = str(raw).lower()
        if kind == "word" and word in {"startswith", "endswith"} and self._peek() == ("punct", "("):
            self._expect("(")
            prop = self._property()
            self._expect(",")
            needle = str(self._literal()).casefold()
            self._expect(")")
            if word == "endswith":
                self.advanced = self.advanced or "Operator 'endsWith' is not supported"
                return lambda u: str(u.get(prop) or "").casefold().endswith(needle)
            return lambda u: str(u.get(prop) or "").casefold().startswith(needle)
        self.pos -= 1
        prop = self._property()
        op_kind, op_raw = self._next()
        op = str(op_raw).lower()
        if op == "in":
            self._expect("(")
            values = [self._literal()]
            while self._peek() == ("punct", ","):
                self.pos += 1
                values.append(self._literal())
            self._expect(")")
            return lambda u: any(_equal(u.get(prop), v) for v in values)
        if op_kind != "word" or op not in _COMPARISONS:
            raise bad_request(f"Invalid filter clause: unsupported operator '{op_raw}'.")
        value = self._literal()
        self._check_types(prop, value, op)
        if op == "ne" or value is None:
            self.advanced = self.advanced or (
                f"Operator '{op}' is not supported because the required parameters might be missing. "
                "Try adding $count=true query parameter and ConsistencyLevel:eventual header"
            )
        if op in {"gt", "ge", "lt", "le"}:
            self.advanced = self.advanced or f"Operator '{op}' is not supported"
        return _comparison(prop, op, value)

    @staticmethod
    def _check_types(prop: str, value: Any, op: str) -> None:
        if value is None:
            return
        if prop in BOOLEAN_PROPERTIES and not isinstance(value, bool):
            raise bad_request(
                "A binary operator with incompatible types was detected. "
                "Found operand types 'Edm.Boolean' and "
                f"'Edm.{type(value).__name__.title()}' for operator kind '{op}'."
            )


def _parse_datetime(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00") if "T" in raw else raw + "T00:00:00+00:00")


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if isinstance(b, datetime) and isinstance(a, str):
        return _parse_datetime(a) == b
    return bool(a == b)


def _comparison(prop: str, op: str, value: Any) -> Predicate:
    if op == "eq":
        return lambda u: _equal(u.get(prop), value)
    if op == "ne":
        return lambda u: not _equal(u.get(prop), value)

    def ordered(u: Mapping[str, Any]) -> bool:
        have = u.get(prop)
        if have is None:
            return False
        left: Any = _parse_datetime(have) if isinstance(value, datetime) else have
        right: Any = value
        if isinstance(left, str) and isinstance(right, str):
            left, right = left.casefold(), right.casefold()
        try:
            return bool(
                {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[op]
            )
        except TypeError:
            return False

    return ordered


def parse_filter(value: str | None) -> Filter | None:
    if value is None or not value.strip():
        return None
    return _FilterParser(value).parse()


def require_eventual(reason: str, eventual: bool) -> None:
    """Advanced queries need ``ConsistencyLevel: eventual``; Graph says so with Request_UnsupportedQuery."""
    if not eventual:
        raise GraphError(400, "Request_UnsupportedQuery", reason + ".")


# ---- $orderby and $search ----
def parse_orderby(value: str | None, eventual: bool) -> tuple[str, bool] | None:
    """``$orderby=displayName desc`` → (property, descending)."""
    if value is None or not value.strip():
        return None
    if "," in value:
        raise bad_request("Sorting by more than one property is not supported.", "Request_UnsupportedQuery")
    name, _, direction = value.strip().partition(" ")
    prop = canonical(name)
    if prop not in BASIC_ORDERBY:
        require_eventual(f"Sorting not supported for '{prop}'", eventual)
    direction = direction.strip().lower() or "asc"
    if direction not in {"asc", "desc"}:
        raise bad_request(f"Invalid $orderby direction '{direction}'.")
    return prop, direction == "desc"


_SEARCH_CLAUSE = re.compile(r'"(?P<prop>[A-Za-z]+):(?P<term>[^"]*)"|(?P<op>\bAND\b|\bOR\b)')


def parse_search(value: str | None) -> Predicate | None:
    """``$search="displayName:ann" OR "mail:ann"``: tokenized prefix match, as Graph's directory search."""
    if value is None or not value.strip():
        return None
    clauses: list[tuple[str, str]] = []
    any_of = False
    for m in _SEARCH_CLAUSE.finditer(value):
        if m.group("op"):
            any_of = any_of or m.group("op") == "OR"
            continue
        prop = canonical(m.group("prop"))
        if prop not in SEARCHABLE:
            raise bad_request(f"Search is not supported on property '{prop}'.", "Request_UnsupportedQuery")
        clauses.append((prop, m.group("term").casefold()))
    if not clauses:
        raise bad_request('Syntax error: $search needs "property:term" clauses in double quotes.')

    def matches(u: Mapping[str, Any], prop: str, term: str) -> bool:
        text = str(u.get(prop) or "").casefold()
        return text.startswith(term) or any(t.startswith(term) for t in re.split(r"[^\w]+", text))

    combine = any if any_of else all
    return lambda u: combine(matches(u, p, t) for p, t in clauses)
