"""``/v1.0/users``: listing with OData options and paging, single reads, manager links, writes.

Listing is the hot path (a 100k-user tenant read at ``$top=999``): each user's JSON is
encoded once per select/expand shape and cached in the directory, and a page is a byte
join of cached fragments, so a full read costs little more than the bytes it sends.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from okrsync.sandbox.graph.common import (
    USER_TYPE,
    GraphError,
    TokenCodec,
    bad_request,
    consistency_eventual,
    dump,
    json_object,
    not_found,
    options,
    query_string,
)
from okrsync.sandbox.graph.directory import Directory, DirUser
from okrsync.sandbox.graph.query import (
    DEFAULT_SELECT,
    READ_ONLY,
    USER_PROPERTIES,
    Expand,
    canonical,
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_search,
    parse_select,
    require_eventual,
)
from okrsync.sandbox.server import Request, Response

Route = tuple[str, str, Callable[[Request], Response]]
USER = r"(?P<user>[^/()$]+)"
MAX_LEVELS = 100
SEARCH_NEEDS_HEADER = (
    "Request with $search query parameter only works through MSGraph with a special request "
    "header: 'ConsistencyLevel: eventual'"
)
COUNT_NEEDS_HEADER = "Count is not currently supported without the header 'ConsistencyLevel: eventual'"
STRING_PROPERTIES = frozenset(name for name, default in USER_PROPERTIES.items() if default is None) - {
    "accountEnabled",
    "isResourceAccount",
    "showInAddressList",
    "passwordProfile",
    "employeeOrgData",
    "onPremisesExtensionAttributes",
    "onPremisesSyncEnabled",
}


# ---- rendering ----
def value_of(user: DirUser, name: str) -> Any:
    if name == "id":
        return user.id
    value = user.props.get(name, USER_PROPERTIES.get(name))
    return list(value) if isinstance(value, tuple) else value


def user_json(
    d: Directory, user: DirUser, select: tuple[str, ...] | None, expand: Expand | None
) -> dict[str, Any]:
    """A user as Graph renders it: only the selected (or default) properties, plus any expansion."""
    props = user.props
    out: dict[str, Any] = {}
    for name in select or DEFAULT_SELECT:  # the hot loop of a cold listing: value_of inlined
        value = user.id if name == "id" else props.get(name, USER_PROPERTIES.get(name))
        out[name] = list(value) if isinstance(value, tuple) else value
    if expand is not None and expand.navigation == "manager":
        manager = manager_json(d, user, expand, expand.levels)
        if manager is not None:
            out["manager"] = manager
    elif expand is not None:
        out["directReports"] = [related_json(d, r.id, expand.select) for r in d.direct_reports(user)]
    return out


def related_json(d: Directory, uid: str, select: tuple[str, ...] | None) -> dict[str, Any]:
    """An expanded/linked directory object; a dangling reference shows its id only."""
    out: dict[str, Any] = {"@odata.type": USER_TYPE, "id": uid}
    if select == ("id",):  # the common manager($select=id): no lookup needed
        return out
    target = d.live(uid)
    if target is not None:
        out.update((n, value_of(target, n)) for n in (select or DEFAULT_SELECT) if n != "id")
    return out


def manager_json(d: Directory, user: DirUser, expand: Expand, levels: int | None) -> dict[str, Any] | None:
    """``manager`` expansion; with ``$levels`` the chain nests (cycles and depth are cut off)."""
    if user.manager is None:
        return None
    top = related_json(d, user.manager, expand.select)
    remaining = None if levels is None else (MAX_LEVELS if levels == 0 else levels) - 1
    node, seen = top, {user.id}
    current = d.live(user.manager)
    while remaining and current is not None and current.manager is not None and current.id not in seen:
        seen.add(current.id)
        node["manager"] = related_json(d, current.manager, expand.select)
        node, current, remaining = node["manager"], d.live(current.manager), remaining - 1
    return top


def context_url(base: str, entity_set: str, select: tuple[str, ...] | None, suffix: str = "") -> str:
    shape = f"({','.join(select)})" if select else ""
    return f"{base}/v1.0/$metadata#{entity_set}{shape}{suffix}"


def page_body(head: dict[str, Any], fragments: list[bytes]) -> bytes:
    return dump(head)[:-1] + b',"value":[' + b",".join(fragments) + b"]}"


def next_link(req: Request, path: str, token: str) -> str:
    """The original options plus ``$skiptoken``, absolute, as Graph's ``@odata.nextLink``."""
    pairs = [(k, v[0]) for k, v in req.query.items() if k.lower().lstrip("$") != "skiptoken" and v]
    pairs.append(("$skiptoken", token))
    return f"{req.base_url}{path}?{query_string(pairs)}"


def collect(candidates: Iterator[tuple[int, DirUser]], top: int) -> tuple[list[DirUser], int | None]:
    """Up to ``top`` users and the position where the next page starts (None at the end)."""
    page: list[DirUser] = []
    for pos, user in candidates:
        if len(page) == top:
            return page, pos
        page.append(user)
    return page, None


def parse_top(value: str | None, default: int = 100) -> int:
    if value is None:
        return default
    try:
        top = int(value)
    except ValueError:
        raise bad_request(
            f"Invalid page size specified: '{value}'. Must be between 1 and 999 inclusive.",
            "Request_UnsupportedQuery",
        ) from None
    if not 1 <= top <= 999:
        raise bad_request(
            f"Invalid page size specified: '{value}'. Must be between 1 and 999 inclusive.",
            "Request_UnsupportedQuery",
        )
    return top


class UsersApi:
    """Routes under ``/v1.0/users`` except delta."""

    def __init__(self, directory: Directory, codec: TokenCodec, domains: set[str]) -> None:
        self.d = directory
        self.codec = codec
        self.domains = {x.lower() for x in domains}
        self._sorted: tuple[tuple[Any, ...], list[str]] | None = None

    def routes(self) -> list[Route]:
        u = rf"(?i)/v1\.0/users/{USER}"
        return [
            ("GET", r"(?i)/v1\.0/users/?", self.list_users),
            ("POST", r"(?i)/v1\.0/users/?", self.create_user),
            ("GET", r"(?i)/v1\.0/users/\$count", self.count_users),
            ("GET", r"(?i)/v1\.0/me(?:/.*)?", self.me),
            ("GET", u + r"/manager/\$ref", self.get_manager_ref),
            ("PUT", u + r"/manager/\$ref", self.put_manager_ref),
            ("DELETE", u + r"/manager/\$ref", self.delete_manager_ref),
            ("GET", u + r"/manager", self.get_manager),
            ("GET", u + r"/directReports", self.direct_reports),
            ("GET", u, self.get_user),
            ("PATCH", u, self.patch_user),
            ("DELETE", u, self.delete_user),
        ]

    def _user(self, req: Request) -> DirUser:
        assert req.match is not None
        return self.d.require(req.match.group("user"))

    # ---- listing ----
    def list_users(self, req: Request) -> Response:
        opt = options(req)
        eventual = consistency_eventual(req)
        if "skip" in opt:
            raise bad_request(
                "The query specified in the URI is not valid. Query option 'Skip' is not allowed."
            )
        top = parse_top(opt.get("top"))
        select = parse_select(opt.get("select"))
        expand = parse_expand(opt.get("expand"))
        if expand is not None and expand.levels is not None:
            require_eventual("$levels in $expand requires the header 'ConsistencyLevel: eventual'", eventual)
        match = self._matcher(opt, eventual)
        counted = opt.get("count", "").lower() == "true"
        if counted:
            require_eventual(COUNT_NEEDS_HEADER, eventual)
        orderby = parse_orderby(opt.get("orderby"), eventual)
        state = self.codec.decode(opt["skiptoken"]) if "skiptoken" in opt else {}
        start = int(state.get("p", 0))
        with self.d.lock:
            if orderby is not None:
                candidates = self._sorted_candidates(orderby, match, opt, start)
            elif match is not None:
                candidates = ((p, u) for p, u in self.d.iter_live(start) if match(u))
            else:
                candidates = self.d.iter_live(start)
            page, next_pos = collect(candidates, top)
            fragments = self._fragments(page, select, expand)
            head: dict[str, Any] = {"@odata.context": context_url(req.base_url, "users", select)}
            if counted:
                head["@odata.count"] = self._count(match)
        if next_pos is not None:
            head["@odata.nextLink"] = next_link(req, "/v1.0/users", self.codec.encode({"p": next_pos}))
        return Response(200, page_body(head, fragments))

    def _matcher(self, opt: dict[str, str], eventual: bool) -> Callable[[DirUser], bool] | None:
        flt = parse_filter(opt.get("filter"))
        if flt is not None and flt.advanced:
            require_eventual(flt.advanced, eventual)
        search = parse_search(opt.get("search"))
        if search is not None:
            require_eventual(SEARCH_NEEDS_HEADER, eventual)
        tests = [p for p in (flt.predicate if flt else None, search) if p is not None]
        if not tests:
            return None
        return lambda u: all(t(u.view()) for t in tests)

    def _count(self, match: Callable[[DirUser], bool] | None) -> int:
        if match is None:
            return self.d.live_count
        return sum(1 for _, u in self.d.iter_live() if match(u))

    def _sorted_candidates(
        self,
        orderby: tuple[str, bool],
        match: Callable[[DirUser], bool] | None,
        opt: dict[str, str],
        start: int,
    ) -> Iterator[tuple[int, DirUser]]:
        """Sorted ids are cached per (order, filter, search, version): paging re-reads the same list."""
        key = (orderby, opt.get("filter"), opt.get("search"), self.d.version)
        if self._sorted is None or self._sorted[0] != key:
            prop, descending = orderby
            users = [u for _, u in self.d.iter_live() if match is None or match(u)]
            users.sort(key=lambda u: str(value_of(u, prop) or "").casefold(), reverse=descending)
            self._sorted = (key, [u.id for u in users])
        ids = self._sorted[1]
        return (
            (i, self.d.users[ids[i]]) for i in range(start, len(ids)) if self.d.users[ids[i]].removed is None
        )

    def _fragments(
        self, page: list[DirUser], select: tuple[str, ...] | None, expand: Expand | None
    ) -> list[bytes]:
        if expand is not None and expand.levels is not None:  # chains depend on many users: not cached
            return [dump(user_json(self.d, u, select, expand)) for u in page]
        cache = self.d.shape_cache(("list", select, expand.key if expand else None))
        out = []
        for user in page:
            fragment = cache.get(user.id)
            if fragment is None:
                fragment = cache[user.id] = dump(user_json(self.d, user, select, expand))
            out.append(fragment)
        return out

    def count_users(self, req: Request) -> Response:
        opt = options(req)
        eventual = consistency_eventual(req)
        require_eventual(COUNT_NEEDS_HEADER, eventual)
        match = self._matcher(opt, eventual)
        with self.d.lock:
            n = self._count(match)
        return Response(200, str(n).encode(), content_type="text/plain")

    def me(self, req: Request) -> Response:
        raise bad_request("/me request is only valid with delegated authentication flow.", "BadRequest")

    # ---- single reads ----
    def get_user(self, req: Request) -> Response:
        opt = options(req)
        select = parse_select(opt.get("select"))
        expand = parse_expand(opt.get("expand"), allowed=("manager", "directReports"))
        if expand is not None and expand.levels is not None:
            require_eventual(
                "$levels in $expand requires the header 'ConsistencyLevel: eventual'",
                consistency_eventual(req),
            )
        with self.d.lock:
            body = user_json(self.d, self._user(req), select, expand)
        return Response.json(
            {"@odata.context": context_url(req.base_url, "users", select, "/$entity"), **body}
        )

    def get_manager(self, req: Request) -> Response:
        select = parse_select(options(req).get("select"))
        with self.d.lock:
            user = self._user(req)
            if user.manager is None:
                raise not_found("manager")
            body = related_json(self.d, user.manager, select)
        return Response.json(
            {"@odata.context": f"{req.base_url}/v1.0/$metadata#directoryObjects/$entity", **body}
        )

    def get_manager_ref(self, req: Request) -> Response:
        with self.d.lock:
            user = self._user(req)
            if user.manager is None:
                raise not_found("manager")
            ref = f"{req.base_url}/v1.0/directoryObjects/{user.manager}/Microsoft.DirectoryServices.User"
        return Response.json(
            {"@odata.context": f"{req.base_url}/v1.0/$metadata#directoryObjects/$ref", "@odata.id": ref}
        )

    def direct_reports(self, req: Request) -> Response:
        opt = options(req)
        top = parse_top(opt.get("top"))
        select = parse_select(opt.get("select"))
        start = int(self.codec.decode(opt["skiptoken"]).get("p", 0)) if "skiptoken" in opt else 0
        with self.d.lock:
            user = self._user(req)
            reports = self.d.direct_reports(user)
            page = reports[start : start + top]
            values = [dump(related_json(self.d, r.id, select)) for r in page]
        head: dict[str, Any] = {"@odata.context": f"{req.base_url}/v1.0/$metadata#directoryObjects"}
        if start + top < len(reports):
            head["@odata.nextLink"] = next_link(
                req, f"/v1.0/users/{user.id}/directReports", self.codec.encode({"p": start + top})
            )
        return Response(200, page_body(head, values))

    # ---- manager writes ----
    def put_manager_ref(self, req: Request) -> Response:
        body = json_object(req)
        ref = body.get("@odata.id")
        m = re.search(r"/(?:users|directoryObjects)/([^/?#]+)", str(ref or ""), re.IGNORECASE)
        if not m:
            raise bad_request(
                "Invalid request body: '@odata.id' must reference a user, e.g. "
                "'https://graph.microsoft.com/v1.0/users/{id}'."
            )
        with self.d.lock:
            user = self._user(req)
            manager = self.d.require(m.group(1))
            if manager.id == user.id:
                raise bad_request("Invalid manager reference: a user cannot be its own manager.")
            self.d.set_manager(user, manager.id)
        return Response.empty(204)

    def delete_manager_ref(self, req: Request) -> Response:
        with self.d.lock:
            user = self._user(req)
            if user.manager is None:
                raise not_found("manager")
            self.d.set_manager(user, None)
        return Response.empty(204)

    # ---- user writes ----
    def patch_user(self, req: Request) -> Response:
        changes = self._validated(json_object(req))
        with self.d.lock:
            self.d.update(self._user(req), changes)
        return Response.empty(204)

    def create_user(self, req: Request) -> Response:
        body = json_object(req)
        missing = [
            k
            for k in ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile")
            if body.get(k) in (None, "")
        ]
        if missing:
            raise bad_request(f"Invalid value specified for property '{missing[0]}' of resource 'User'.")
        profile = body.get("passwordProfile")
        if not isinstance(profile, dict) or not profile.get("password"):
            raise bad_request("Invalid value specified for property 'passwordProfile' of resource 'User'.")
        props = self._validated(body)
        with self.d.lock:
            user = self.d.create(props)
            out = user_json(self.d, user, None, None)
        location = f"{req.base_url}/v1.0/directoryObjects/{user.id}/Microsoft.DirectoryServices.User"
        return Response.json(
            {"@odata.context": context_url(req.base_url, "users", None, "/$entity"), **out},
            201,
            {"Location": location},
        )

    def delete_user(self, req: Request) -> Response:
        with self.d.lock:
            self.d.remove(self._user(req), "changed")
        return Response.empty(204)

    def _validated(self, body: dict[str, Any]) -> dict[str, Any]:
        """Property names and value types as Graph checks them; ``passwordProfile`` is write-only."""
        out: dict[str, Any] = {}
        for key, value in body.items():
            if key == "@odata.type":
                continue
            try:
                name = canonical(key)
            except GraphError:
                raise bad_request(
                    f"Property '{key}' does not exist as a declared property or extension property."
                ) from None
            if name in READ_ONLY:
                raise bad_request(f"Property '{name}' is read-only and cannot be set.")
            if name == "passwordProfile":
                continue
            self._check_value(name, value)
            out[name] = tuple(value) if isinstance(value, list) else value
        return out

    def _check_value(self, name: str, value: Any) -> None:
        ok = True
        if name in {"accountEnabled", "showInAddressList"}:
            ok = isinstance(value, bool)
        elif isinstance(USER_PROPERTIES.get(name), tuple):
            ok = isinstance(value, list) and all(isinstance(v, str | dict) for v in value)
        elif name in STRING_PROPERTIES:
            ok = value is None or isinstance(value, str)
        if not ok:
            raise bad_request(f"Invalid value specified for property '{name}' of resource 'User'.")
        if name == "userPrincipalName":
            domain = str(value).rpartition("@")[2].lower()
            if not value or domain not in self.domains:
                raise bad_request(
                    "The domain portion of the userPrincipalName property is invalid. You must use "
                    "one of the verified domain names in your organization."
                )
