"""Entra as an org source: ``/users`` full pulls and the cursor that makes later pulls deltas.

A full pull is one ``GET /users?$select=…&$expand=manager($select=…)&$top=999`` followed by
its nextLinks (``ceil(N/999)`` requests), streamed a page at a time, preceded by one
``/users/delta?$deltatoken=latest`` whose deltaLink becomes the cursor: it is taken *before*
the listing, so a change made while the pages are read is replayed by the next delta round
(replays are harmless: records replace, last wins) instead of being lost.

Canonical ids follow ``id_attribute``: the objectId (default; nothing to translate) or the
``employeeId``. With employeeId the manager's employeeId comes in the same listing
(``$expand=manager($select=id,employeeId)``); users without one are skipped (and counted in
a notice), since nothing else could name them. Delta rounds only carry objectIds, so the
cursor then also keeps the objectId → employeeId map of the users pulled (needed to name a
deleted user, whose delta entry is just its objectId) — about 50 bytes a user.

Each record is the Graph user as returned plus ``_okrsync`` = ``{id, managerId, externalIds}``,
which the mapping (``okrsync/mappings/entra.toml``) reads like any other field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from okrsync.connectors.base import Pull, PullMode, PullRequest, RawRecord
from okrsync.connectors.entra.config import EntraConfig
from okrsync.connectors.entra.graph import Graph, relative_url
from okrsync.mapping import Mapping as FieldMapping

CURSOR_VERSION = 1
ALWAYS_SELECTED = ("id", "employeeId")


@dataclass(frozen=True)
class UserShape:
    """What to ask Graph for: top-level properties and the manager's properties inside ``$expand``."""

    select: tuple[str, ...]
    manager_select: tuple[str, ...]

    @classmethod
    def build(
        cls, mappings: Iterable[FieldMapping], id_attribute: str, extra: Iterable[str] = ()
    ) -> UserShape:
        top: dict[str, None] = dict.fromkeys(ALWAYS_SELECTED)
        manager: dict[str, None] = {"id": None}
        if id_attribute != "id":
            manager[id_attribute] = None
        for name in extra:
            top[name] = None
        for mapping in mappings:
            for path in sorted(mapping.source_fields()):
                root, _, rest = path.partition(".")
                if not root or root.startswith("_") or "@" in root:
                    continue  # _okrsync.* is added by the connector; annotations are not properties
                if root == "manager":
                    if rest:
                        manager[rest.split(".", 1)[0]] = None
                    continue
                top[root] = None
        return cls(tuple(top), tuple(manager))

    @property
    def expand(self) -> str:
        return f"manager($select={','.join(self.manager_select)})"

    def list_params(self, top: int, flt: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"$select": ",".join(self.select), "$expand": self.expand, "$top": top}
        if flt:
            params["$filter"] = flt
        return params

    @property
    def delta_select(self) -> str:
        return ",".join((*self.select, "manager"))


class Identity:
    """Canonical ids from Graph users: the objectId, or the employeeId (blank = none)."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute

    def of(self, user: Mapping[str, Any] | None) -> str | None:
        if not user:
            return None
        value = user.get(self.attribute)
        if value is None:
            return None
        text = str(value).strip()
        return text or None


def make_record(user: dict[str, Any], key: str, manager_key: str | None) -> RawRecord:
    """The Graph user plus ``_okrsync`` (ids the mapping reads); the dict is reused, not copied."""
    oid = user["id"]
    external = {"entra": oid}
    eid = user.get("employeeId")
    if eid:
        external["employee_id"] = str(eid)
    user["_okrsync"] = {"id": key, "managerId": manager_key, "externalIds": external}
    return RawRecord(key=key, data=user, ref=f"entra:users/{oid}")


# Graph properties typed Edm.Boolean that the default mappings read: a value of another type is a
# wire-format violation (a proxy, a broken extension), so the user is quarantined, not guessed.
BOOLEAN_PROPERTIES = ("accountEnabled",)


def source_record(user: dict[str, Any], key: str, manager_key: str | None) -> RawRecord:
    """:func:`make_record`, or a record the engine quarantines (naming the property) when a typed
    property has the wrong JSON type (``"accountEnabled": "yes"``)."""
    for prop in BOOLEAN_PROPERTIES:
        value = user.get(prop)
        if value is not None and not isinstance(value, bool):
            shown = repr(value)[:80]
            return RawRecord(
                key=key,
                data={
                    "__error__": f"Graph sent {shown} ({type(value).__name__}) for Edm.Boolean {prop}",
                    "__field__": prop,
                },
                ref=f"entra:users/{user.get('id')}",
            )
    return make_record(user, key, manager_key)


def settings_fingerprint(config: EntraConfig, shape: UserShape) -> str:
    """Pull settings a delta token depends on; a change means the next pull must be full."""
    scope: list[Any] = [
        config.graph_url,
        config.id_attribute,
        config.filter,
        shape.select,
        shape.manager_select,
    ]
    if config.group_id:  # appended only when set: cursors of unscoped pulls stay valid across upgrades
        scope += [config.group_id, config.group_membership]
    text = json.dumps(scope)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(
    link: str, fingerprint: str, employee_ids: dict[str, str] | None, members: set[str] | None = None
) -> str:
    state: dict[str, Any] = {"v": CURSOR_VERSION, "deltaLink": link, "settings": fingerprint}
    if employee_ids is not None:
        state["employeeIds"] = employee_ids
    if members is not None:  # the scope group's members: the next round sees who joined or left
        state["members"] = sorted(members)
    return json.dumps(state, separators=(",", ":"))


def decode_cursor(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        state = json.loads(text)
    except ValueError:
        return None
    if not isinstance(state, dict) or state.get("v") != CURSOR_VERSION or not state.get("deltaLink"):
        return None
    return state


class EntraSource:
    """``OrgSource.pull`` for the connector: full listings and delta rounds."""

    def __init__(self, graph: Graph, config: EntraConfig, mapping: FieldMapping) -> None:
        self.graph = graph
        self.config = config
        self.shape = UserShape.build([mapping], config.id_attribute)
        self.identity = Identity(config.id_attribute)
        self.fingerprint = settings_fingerprint(config, self.shape)

    def pull(self, request: PullRequest) -> Pull:
        from okrsync.connectors.entra.delta import DeltaRound

        pull = Pull(records=iter(()), mode=PullMode.FULL)
        state = None if request.full else decode_cursor(request.cursor)
        if state is not None and state.get("settings") != self.fingerprint:
            pull.notices.append("entra pull settings changed since the last run; full resync")
            state = None
        if state is None:
            pull.records = self.full(pull)
        else:
            pull.mode = PullMode.INCREMENTAL
            pull.records = DeltaRound(self, pull, state).records()
        return pull

    # ---- full ----
    def latest_delta_link(self) -> str:
        """A deltaLink for "from now on" in one request (``$deltatoken=latest``)."""
        params = {"$select": self.shape.delta_select, "$deltatoken": "latest"}
        page = self.graph.get(relative_url("/users/delta", params), operation="delta (latest token)")
        link = page.get("@odata.deltaLink")
        if not link:
            from okrsync.errors import PaginationError

            raise PaginationError("delta answer without @odata.deltaLink", connector="entra")
        return str(link)

    def group_members(self) -> set[str] | None:
        """Object ids of the scope group's user members (None: no group scope).

        ``GET /groups/{id}/transitiveMembers/microsoft.graph.user?$select=id&$top=999&$count=true``
        with ``ConsistencyLevel: eventual`` (``members`` for direct membership): ``ceil(M/999)``
        requests of ids only. Users are then read from ``/users`` (full) or the delta round,
        which carry the manager: ``$expand`` is not allowed with the advanced query a cast is.
        """
        group = self.config.group_id
        if group is None:
            return None
        kind = "transitiveMembers" if self.config.group_membership == "transitive" else "members"
        # an OData cast is an advanced query: Graph wants ConsistencyLevel: eventual and $count=true
        params = {"$select": "id", "$top": 999, "$count": "true"}
        url = relative_url(f"/groups/{group}/{kind}/microsoft.graph.user", params)
        members: set[str] = set()
        pages = self.graph.pages(
            url, None, operation=f"list members of group {group}", headers={"ConsistencyLevel": "eventual"}
        )
        for page in pages:
            members.update(str(m["id"]).lower() for m in page.get("value") or () if m.get("id"))
        return members

    def full(self, pull: Pull) -> Iterator[RawRecord]:
        start = self.graph.requests
        link = self.latest_delta_link()
        members = self.group_members()
        employee_ids: dict[str, str] | None = {} if self.config.id_attribute != "id" else None
        identity = self.identity
        skipped = outside = 0
        params = self.shape.list_params(self.config.page_size, self.config.filter)
        for page in self.graph.pages(relative_url("/users", params), None, operation="list users"):
            for user in page.get("value") or ():
                if members is not None and str(user.get("id", "")).lower() not in members:
                    outside += 1
                    continue
                key = identity.of(user)
                if key is None:
                    skipped += 1
                    continue
                if employee_ids is not None:
                    employee_ids[user["id"]] = key
                yield source_record(user, key, identity.of(user.get("manager")))
        if skipped:
            pull.notices.append(
                f"{skipped} directory user(s) without {self.config.id_attribute} were skipped "
                f"(id_attribute = {self.config.id_attribute})"
            )
        if outside:
            pull.notices.append(
                f"{outside} directory user(s) outside group {self.config.group_id} were left out (group_id)"
            )
        pull.mode = PullMode.FULL
        pull.cursor = encode_cursor(link, self.fingerprint, employee_ids, members)
        pull.requests += self.graph.requests - start
