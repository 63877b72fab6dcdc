"""MetricSource: a key result's value from a SOQL aggregate over the owner's team.

A key result names its query in ``data_source``::

    salesforce:SELECT SUM(Amount) total FROM Opportunity
      WHERE IsWon = true AND CloseDate >= {cycle_start} AND CloseDate <= {cycle_end}
      AND OwnerId IN {team:subtree}

Placeholders (the only text okrsync puts into the query, always as typed literals):

* ``{cycle_start}``, ``{cycle_end}`` — the cycle's dates as SOQL date literals;
* ``{team:self}`` (the owner), ``{team:reports}`` (the owner and their direct reports),
  ``{team:subtree}`` (the owner and everyone below; ``{team}`` means the same) — a parenthesised
  list of the team's User Ids, at most one team placeholder per query;
* ``{owner}`` — the owner's User Id as a quoted literal.

Team members are canonical person ids, translated to User Ids through ``id_field`` (cached),
or taken from ``Person.external_ids["salesforce"]``; Ids are checked before they are inlined, so
data cannot inject SOQL. A long team list is split into several queries that each stay under
the URI limit, and the partial results are combined: SUM and COUNT add up, MIN and MAX take the
extreme, AVG is rewritten to SUM and COUNT per chunk and divided at the end; COUNT_DISTINCT
cannot be combined across chunks and is refused when the team needs more than one query.
The query must return one row: ``GROUP BY`` is refused.
"""

# SOQL text is assembled from constant field names and validated config; data values only enter
# through soql.quote / soql.quote_id, which S608 cannot see.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from okrsync.connectors.salesforce.client import SalesforceClient
from okrsync.connectors.salesforce.config import SalesforceConfig
from okrsync.connectors.salesforce.directory import UserDirectory
from okrsync.connectors.salesforce.pull import soql_datetime
from okrsync.connectors.salesforce.soql import chunk_in_list, quote_id, unique
from okrsync.errors import ConfigError, OkrSyncError
from okrsync.models import KeyResult, Person

PREFIX = "salesforce:"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)(?::([A-Za-z_]+))?\}")
_SELECT = re.compile(
    r"^\s*SELECT\s+(?P<fn>COUNT_DISTINCT|COUNT|SUM|AVG|MIN|MAX)\s*\(\s*(?P<field>[A-Za-z_][\w.]*)?\s*\)"
    r"(?:\s+(?!FROM\b)(?P<alias>[A-Za-z_]\w*))?\s+FROM\s+(?P<rest>.+)$",
    re.IGNORECASE | re.DOTALL,
)
_MARKER = "\x00team\x00"


class TeamScope(StrEnum):
    SELF = "self"
    REPORTS = "reports"
    SUBTREE = "subtree"


class NoMetricValue(OkrSyncError):
    """The aggregate returned no value (MIN/MAX/AVG over no rows)."""


@dataclass(frozen=True)
class MetricQuery:
    """A parsed ``salesforce:`` data source."""

    text: str
    function: str
    field: str | None
    alias: str | None
    rest: str
    scope: TeamScope | None
    uses_owner: bool

    @classmethod
    def parse(cls, data_source: str) -> MetricQuery:
        if not data_source.startswith(PREFIX):
            raise ConfigError(f"data_source {data_source[:60]!r} is not a {PREFIX} query")
        text = " ".join(data_source[len(PREFIX) :].split())
        m = _SELECT.match(text)
        if not m:
            raise ConfigError(
                "a Salesforce key-result query must select exactly one aggregate, e.g. "
                f"'SELECT SUM(Amount) total FROM Opportunity WHERE ...'; got {text[:120]!r}"
            )
        if re.search(r"\bGROUP\s+BY\b", text, re.IGNORECASE):
            raise ConfigError(f"a key-result query must return one row; remove GROUP BY from {text[:120]!r}")
        fn = m.group("fn").upper()
        if fn != "COUNT" and not m.group("field"):
            raise ConfigError(f"{fn}() needs a field, e.g. {fn}(Amount)")
        scopes: list[TeamScope] = []
        uses_owner = False
        for pm in _PLACEHOLDER.finditer(text):
            name, arg = pm.group(1), pm.group(2)
            if name == "team":
                try:
                    scopes.append(TeamScope(arg or "subtree"))
                except ValueError:
                    raise ConfigError(
                        f"unknown team scope {{team:{arg}}}; use {{team:self}}, {{team:reports}} "
                        "or {team:subtree}"
                    ) from None
            elif name == "owner" and arg is None:
                uses_owner = True
            elif name not in ("cycle_start", "cycle_end") or arg is not None:
                raise ConfigError(
                    f"unknown placeholder {pm.group(0)} in {text[:120]!r}; known: {{cycle_start}}, "
                    "{cycle_end}, {owner}, {team:self}, {team:reports}, {team:subtree}"
                )
        if len(scopes) > 1:
            raise ConfigError("a key-result query may name the team once ({team:...} appears twice)")
        return cls(
            text=text,
            function=fn,
            field=m.group("field"),
            alias=m.group("alias"),
            rest=m.group("rest"),
            scope=scopes[0] if scopes else None,
            uses_owner=uses_owner,
        )


@dataclass
class Evaluation:
    """One evaluated metric: the value, and what was asked to get it (for the state store)."""

    value: float | None
    query: str  # the query with the team shown as a count, not thousands of Ids
    queries: int = 0
    team_size: int = 0
    matched: int = 0
    unmatched: list[str] = field(default_factory=list)
    team_digest: str = ""


def render_literal(value: Any) -> str:
    """A window value as a SOQL date or dateTime literal (never free text)."""
    if isinstance(value, datetime):
        return soql_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
        try:
            return soql_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ConfigError(f"window value {value!r} is not a date or a datetime")


class MetricEvaluator:
    def __init__(self, config: SalesforceConfig, client: SalesforceClient, directory: UserDirectory) -> None:
        self.config = config
        self.client = client
        self.directory = directory

    def evaluate(self, key_result: KeyResult, team: Sequence[Person], **window: Any) -> float:
        ev = self.run(key_result, team, **window)
        if ev.value is None:
            raise NoMetricValue(
                f"key result {key_result.id}: the query returned no value (no matching rows)",
                key_result=key_result.id,
            )
        return ev.value

    def run(self, key_result: KeyResult, team: Sequence[Person], **window: Any) -> Evaluation:
        if not key_result.data_source:
            raise ConfigError(f"key result {key_result.id} has no data_source")
        q = MetricQuery.parse(key_result.data_source)
        owner_id = key_result.owner.id if key_result.owner is not None else None
        text = self._fill(q.text, q, window, owner_id)
        if q.scope is None:
            return Evaluation(self._single(q, text), query=text, queries=1)
        keys = unique(p.id for p in team)
        ids = self._user_ids(team)
        ev = Evaluation(
            None,
            query=text.replace(_MARKER, f"(:team {q.scope.value}, {len(ids)} users)"),
            team_size=len(keys),
            matched=len(ids),
            unmatched=[k for k in keys if k not in ids],
            team_digest=hashlib.sha256("\n".join(sorted(ids.values())).encode()).hexdigest()[:16],
        )
        literals = [quote_id(i) for i in unique(ids.values())]
        if not literals:
            ev.value = 0.0 if q.function in ("SUM", "COUNT", "COUNT_DISTINCT") else None
            return ev
        chunks = [
            c for c, _ in chunk_in_list(text, _MARKER, literals, max_uri_bytes=self.config.max_uri_bytes)
        ]
        ev.queries = len(chunks)
        if len(chunks) == 1:
            ev.value = self._single(q, chunks[0])
        elif q.function == "AVG":  # averages of chunks are not the average: add up sums and counts
            rest = self._fill(q.rest, q, window, owner_id)
            avg = f"SELECT SUM({q.field}) s, COUNT({q.field}) c FROM {rest}"
            parts = chunk_in_list(avg, _MARKER, literals, max_uri_bytes=self.config.max_uri_bytes)
            ev.value, ev.queries = self._average([c for c, _ in parts])
        else:
            ev.value = self._combined(q, chunks)
        return ev

    def _fill(self, text: str, q: MetricQuery, window: Mapping[str, Any], owner_id: str | None) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name == "team":
                return _MARKER
            if name == "owner":
                if owner_id is None:
                    raise ConfigError("{owner} needs a key result with a person owner")
                sf_id = self.directory.resolve([owner_id]).get(owner_id)
                if sf_id is None:
                    raise ConfigError(f"{{owner}}: {self.directory.why_missing(owner_id)}")
                return quote_id(sf_id)
            if name not in window or window[name] is None:
                raise ConfigError(f"the query uses {{{name}}} but no {name} was given (is the cycle set?)")
            return render_literal(window[name])

        return _PLACEHOLDER.sub(sub, text)

    def _user_ids(self, team: Sequence[Person]) -> dict[str, str]:
        for p in team:
            sf_id = p.external_ids.get("salesforce")
            if sf_id and p.id not in self.directory.ids:
                self.directory.remember(p.id, sf_id)
        return self.directory.resolve(p.id for p in team)

    def _value(self, result: Mapping[str, Any], key: str | None) -> float | None:
        if key is None:  # COUNT() answers in totalSize
            return float(result.get("totalSize") or 0)
        records = result.get("records") or []
        if not records:
            return None
        value = records[0].get(key)
        return None if value is None else float(value)

    def _key(self, q: MetricQuery) -> str | None:
        if q.function == "COUNT" and not q.field:
            return None
        return q.alias or "expr0"

    def _single(self, q: MetricQuery, soql: str) -> float | None:
        value = self._value(self.client.query(soql, operation="metric query"), self._key(q))
        if value is None and q.function in ("SUM", "COUNT"):
            return 0.0
        return value

    def _average(self, queries: list[str]) -> tuple[float | None, int]:
        total = count = 0.0
        for soql in queries:
            records = self.client.query(soql, operation="metric query").get("records") or [{}]
            total += float(records[0].get("s") or 0)
            count += float(records[0].get("c") or 0)
        return (total / count if count else None), len(queries)

    def _combined(self, q: MetricQuery, queries: list[str]) -> float | None:
        if q.function == "COUNT_DISTINCT":
            raise ConfigError(
                f"COUNT_DISTINCT({q.field}) cannot be combined across the {len(queries)} queries this "
                "team needs (a value may appear in several); use a smaller team scope or COUNT"
            )
        values = [self._value(self.client.query(s, operation="metric query"), self._key(q)) for s in queries]
        present = [v for v in values if v is not None]
        if q.function in ("SUM", "COUNT"):
            return float(sum(present))
        if not present:
            return None
        return min(present) if q.function == "MIN" else max(present)
