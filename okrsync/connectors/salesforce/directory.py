"""Canonical person id ↔ Salesforce User Id, looked up once per key and cached per connector.

Metrics need the User Ids of a team and pushes need the User Id of each person and manager;
both arrive with canonical ids (``EmployeeNumber`` by default). Ids already known — from
:meth:`~.push.UserPusher.read_current`, the engine's id map or a Person's
``external_ids["salesforce"]`` — cost nothing; the rest are fetched with chunked ``IN`` queries.
When two Users share a number, the active one wins; two active ones are ambiguous and the key
stays unresolved (with the reason in :attr:`UserDirectory.problems`).
"""

# SOQL text is assembled from constant field names and validated config; data values only enter
# through soql.quote / soql.quote_id, which S608 cannot see.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable

from okrsync.connectors.salesforce.client import SalesforceClient
from okrsync.connectors.salesforce.config import SalesforceConfig
from okrsync.connectors.salesforce.soql import chunk_in_list, is_salesforce_id, quote, unique

_MARKER = "{keys}"


class UserDirectory:
    def __init__(self, config: SalesforceConfig, client: SalesforceClient) -> None:
        self.config = config
        self.client = client
        self.ids: dict[str, str] = {}
        self.problems: dict[str, str] = {}  # key -> why it has no User Id
        self.lookups = 0

    def remember(self, key: str, sf_id: str) -> None:
        self.ids[key] = sf_id
        self.problems.pop(key, None)

    def why_missing(self, key: str) -> str:
        return self.problems.get(key) or f"no Salesforce user with {self.config.id_field} {key}"

    def resolve(self, keys: Iterable[str]) -> dict[str, str]:
        """``{key: User Id}`` for every key that has exactly one (active) User."""
        wanted = unique(k for k in keys if k)
        if self.config.id_field == "Id":
            for k in wanted:
                if is_salesforce_id(k):
                    self.ids.setdefault(k, k)
                else:
                    self.problems[k] = f"{k!r} is not a Salesforce User Id"
        todo = [k for k in wanted if k not in self.ids and k not in self.problems]
        if todo:
            self._lookup(todo)
        return {k: self.ids[k] for k in wanted if k in self.ids}

    def _lookup(self, keys: list[str]) -> None:
        field = self.config.id_field
        template = f"SELECT Id, IsActive, {field} FROM User WHERE {field} IN {_MARKER}"
        found: dict[str, list[tuple[str, bool]]] = {}
        for soql, _ in chunk_in_list(
            template, _MARKER, [quote(k) for k in keys], max_uri_bytes=self.config.max_uri_bytes
        ):
            self.lookups += 1
            for rec in self.client.query_iter(soql, operation="look up users"):
                found.setdefault(str(rec[field]), []).append((str(rec["Id"]), bool(rec.get("IsActive"))))
        for key in keys:
            users = found.get(key, [])
            active = [uid for uid, is_active in users if is_active]
            if len(users) == 1:
                self.ids[key] = users[0][0]
            elif len(active) == 1:
                self.ids[key] = active[0]
            elif users:
                self.problems[key] = (
                    f"{len(users)} Salesforce users share {field} {key} "
                    f"({', '.join(uid for uid, _ in users[:5])}); make it unique"
                )
            else:
                self.problems[key] = f"no Salesforce user with {field} {key}"
