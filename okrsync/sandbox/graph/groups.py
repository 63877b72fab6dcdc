"""Security groups and their membership: ``/groups/{id}``, ``/members`` and ``/transitiveMembers``.

Enough of Graph's groups for a connector that scopes its pull to a group: a group's direct
members (users and nested groups) and its transitive members (nested groups flattened, each
object once, loops cut), with the ``microsoft.graph.user`` / ``microsoft.graph.group`` OData
casts (also spelt ``graph.user``, as the SDKs do), ``$select``, ``$top`` (1..999, default
100) and an opaque ``$skiptoken`` in ``@odata.nextLink``. Deleted users drop out of every
membership; disabled ones stay members, as in Entra. ``$expand`` on member lists is not
emulated and is refused (400), so no client comes to depend on it here. As Microsoft documents,
a cast needs ``ConsistencyLevel: eventual`` and ``$count=true`` (else 400), and the answer
then carries ``@odata.count``.

Groups are made through the sandbox (``POST /_sandbox/groups``, or :meth:`Groups.create`), not
through Graph's own ``POST /groups``, which a sync connector never calls.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from okrsync.sandbox.graph.common import (
    GraphError,
    TokenCodec,
    bad_request,
    consistency_eventual,
    dump,
    not_found,
    options,
    unknown_property,
)
from okrsync.sandbox.graph.directory import Directory, DirUser
from okrsync.sandbox.graph.query import parse_select, require_eventual
from okrsync.sandbox.graph.users import context_url, next_link, page_body, parse_top, user_json
from okrsync.sandbox.server import Request, Response

Route = tuple[str, str, Callable[[Request], Response]]
GROUP_TYPE = "#microsoft.graph.group"
USER_TYPE = "#microsoft.graph.user"
CASTS = {"graph.user": "user", "graph.group": "group"}
CAST_NEEDS_EVENTUAL = (
    "An OData cast on group members requires the header 'ConsistencyLevel: eventual' and $count=true"
)
GROUP_PROPERTIES = ("id", "displayName", "description", "securityEnabled", "mailEnabled")


@dataclass
class Group:
    id: str
    display_name: str
    description: str | None = None
    users: dict[str, None] = field(default_factory=dict)  # member user object ids, in order added
    groups: dict[str, None] = field(default_factory=dict)  # nested member group ids

    def json(self, select: tuple[str, ...] | None = None) -> dict[str, Any]:
        values = {
            "id": self.id,
            "displayName": self.display_name,
            "description": self.description,
            "securityEnabled": True,
            "mailEnabled": False,
        }
        return {"@odata.type": GROUP_TYPE, **{k: values[k] for k in (select or GROUP_PROPERTIES)}}


class Groups:
    """The tenant's groups; membership refers to users of :class:`Directory` by object id."""

    def __init__(self, directory: Directory, codec: TokenCodec) -> None:
        self.d = directory
        self.codec = codec  # the same signed paging tokens as every other Graph route
        self.groups: dict[str, Group] = {}
        self.lock = threading.RLock()
        self.version = 0  # bumped by every membership change; with the directory's, keys the cache
        self._listed: dict[tuple[str, bool], tuple[tuple[int, int], list[tuple[str, str]]]] = {}

    # ---- the sandbox's edit API ----
    def create(
        self,
        display_name: str,
        members: Iterable[str] = (),
        groups: Iterable[str] = (),
        *,
        gid: str | None = None,
        description: str | None = None,
    ) -> Group:
        """A security group with these members: user object ids, UPNs or employeeIds, and group ids."""
        with self.lock:
            group = Group((gid or str(uuid.uuid4())).lower(), display_name, description)
            if group.id in self.groups:
                raise ValueError(f"group {group.id} already exists")
            self.groups[group.id] = group
            self.change(group.id, add=members, add_groups=groups)
            return group

    def change(
        self,
        gid: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        add_groups: Iterable[str] = (),
        remove_groups: Iterable[str] = (),
    ) -> Group:
        with self.lock:
            group = self.require(gid)
            for uid in self._user_ids(add):
                group.users[uid] = None
            for uid in self._user_ids(remove):
                group.users.pop(uid, None)
            for other in add_groups:
                group.groups[self.require(other).id] = None
            for other in remove_groups:
                group.groups.pop(other, None)
            self.version += 1
            return group

    def _user_ids(self, keys: Iterable[str]) -> list[str]:
        """Object ids, UPNs or employeeIds → the users' object ids (one employeeId index per call)."""
        by_employee_id: dict[str, str] | None = None
        out: list[str] = []
        with self.d.lock:
            for key in keys:
                user = self.d.live(key)
                if user is not None:
                    out.append(user.id)
                    continue
                if by_employee_id is None:
                    by_employee_id = {
                        str(u.props["employeeId"]): u.id
                        for _, u in self.d.iter_live()
                        if u.props.get("employeeId")
                    }
                uid = by_employee_id.get(key)
                if uid is None:
                    raise ValueError(f"no live user {key!r} (object id, userPrincipalName or employeeId)")
                out.append(uid)
        return out

    def require(self, gid: str) -> Group:
        group = self.groups.get(gid.strip().lower())
        if group is None:
            raise not_found(gid)
        return group

    # ---- membership ----
    def members(self, group: Group, transitive: bool) -> list[tuple[str, str]]:
        """("user"|"group", id) of the members, direct or flattened; each object once, loops cut.

        Kept until a membership or the directory changes: paging a large group re-reads it."""
        version = (self.version, self.d.version)
        cached = self._listed.get((group.id, transitive))
        if cached is not None and cached[0] == version:
            return cached[1]
        found = self._flatten(group, transitive)
        self._listed[(group.id, transitive)] = (version, found)
        return found

    def _flatten(self, group: Group, transitive: bool) -> list[tuple[str, str]]:
        out: dict[tuple[str, str], None] = {}
        seen = {group.id}
        stack = [group]
        while stack:
            current = stack.pop()
            for uid in current.users:
                user = self.d.users.get(uid)
                if user is not None and user.removed is None:
                    out[("user", uid)] = None
            for gid in current.groups:
                out[("group", gid)] = None
                nested = self.groups.get(gid)
                if transitive and nested is not None and gid not in seen:
                    seen.add(gid)
                    stack.append(nested)
        return list(out)

    # ---- routes ----
    def routes(self) -> list[Route]:
        g = r"(?i)/v1\.0/groups/(?P<group>[^/()$]+)"
        kinds = r"/(?P<kind>members|transitiveMembers)(?:/(?P<cast>(?:microsoft\.)?graph\.[A-Za-z]+))?/?"
        return [
            ("GET", g + kinds, self.list_members),
            ("GET", g + r"/?", self.get_group),
        ]

    def get_group(self, req: Request) -> Response:
        assert req.match is not None
        select = parse_select(options(req).get("select"))
        with self.lock:
            group = self.require(req.match.group("group"))
            unknown = [n for n in select or () if n not in GROUP_PROPERTIES]
            if unknown:
                raise unknown_property(unknown[0], "microsoft.graph.group")
            body = group.json(select)
        return Response.json(
            {"@odata.context": context_url(req.base_url, "groups", select, "/$entity"), **body}
        )

    def list_members(self, req: Request) -> Response:
        assert req.match is not None
        opt = options(req)
        cast = req.match.group("cast")
        # the SDKs write the cast short (``graph.user``); Graph accepts both spellings
        only = CASTS.get(cast.lower().removeprefix("microsoft.")) if cast else None
        if cast and only is None:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"The type '{cast}' is not a supported member type of a security group.",
            )
        if "expand" in opt:
            raise bad_request("$expand on group members is not emulated by the okrsync sandbox.")
        if "filter" in opt or "orderby" in opt or "search" in opt:
            raise bad_request("$filter, $orderby and $search on group members are not emulated here")
        # Microsoft: the header and $count are required with OData casts. A nextLink's signed
        # token carries the query, so later pages are not re-checked (msgraph-sdk's PageIterator
        # does not repeat request headers)
        if only is not None and "skiptoken" not in opt:
            require_eventual(CAST_NEEDS_EVENTUAL, consistency_eventual(req))
            if opt.get("count", "").lower() != "true":
                raise GraphError(400, "Request_UnsupportedQuery", CAST_NEEDS_EVENTUAL + ".")
        top = parse_top(opt.get("top"))
        select = parse_select(opt.get("select"))
        start = int(self.codec.decode(opt["skiptoken"]).get("p", 0)) if "skiptoken" in opt else 0
        with self.lock, self.d.lock:
            group = self.require(req.match.group("group"))
            found = self.members(group, req.match.group("kind").lower() == "transitivemembers")
            if only is not None:
                found = [m for m in found if m[0] == only]
            page = found[start : start + top]
            fragments = [self._member_json(kind, oid, select) for kind, oid in page]
        entity_set = {"user": "users", "group": "groups"}.get(only or "", "directoryObjects")
        head: dict[str, Any] = {"@odata.context": context_url(req.base_url, entity_set, select)}
        if only is not None:
            head["@odata.count"] = len(found)
        if start + top < len(found):
            head["@odata.nextLink"] = next_link(req, req.raw_path, self.codec.encode({"p": start + top}))
        return Response(200, page_body(head, fragments))

    def _member_json(self, kind: str, oid: str, select: tuple[str, ...] | None) -> bytes:
        if kind == "group":
            group = self.groups[oid]
            return dump(group.json(tuple(n for n in select if n in GROUP_PROPERTIES) if select else None))
        user: DirUser = self.d.users[oid]
        return dump({"@odata.type": USER_TYPE, **user_json(self.d, user, select, None)})
