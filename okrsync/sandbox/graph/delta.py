"""``/v1.0/users/delta``: initial full round, later rounds of changes only, expiring tokens.

The tokens carry the whole query (select, filter) plus two directory versions: a round
returns the users whose version lies in ``(since, upto]`` (all live users in an initial
round), each once with its current state. Users that change while a round is being paged
may show up in it and again in the next round, which Graph also allows ("deduplicate by id,
last wins"), so connectors get exercised on that.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from okrsync.sandbox.graph.common import (
    USER_TYPE,
    GraphError,
    TokenCodec,
    bad_request,
    dump,
    options,
    query_string,
)
from okrsync.sandbox.graph.directory import Directory, DirUser
from okrsync.sandbox.graph.query import DEFAULT_SELECT, parse_select
from okrsync.sandbox.graph.users import collect, context_url, page_body, value_of
from okrsync.sandbox.server import Request, Response

EXPIRY_MODES = ("gone", "sync_state_not_found")
UNSUPPORTED = ("expand", "top", "orderby", "search", "count", "skip")
_ID_EQ = re.compile(r"\s*id\s+eq\s+'([^']+)'\s*(?:\bor\b|$)", re.IGNORECASE)


@dataclass
class DeltaSettings:
    """How delta pages and expires; ``ttl`` is read per request so fault changes apply at once."""

    page_size: int = 200
    expiry: str = "gone"
    ttl: Callable[[], float | None] = lambda: None


class DeltaApi:
    def __init__(self, directory: Directory, codec: TokenCodec, settings: DeltaSettings) -> None:
        if settings.expiry not in EXPIRY_MODES:
            raise ValueError(
                f"unknown delta expiry mode {settings.expiry!r}; choose from {', '.join(EXPIRY_MODES)}"
            )
        self.d = directory
        self.codec = codec
        self.settings = settings
        self.generation = 0

    def routes(self) -> list[tuple[str, str, Callable[[Request], Response]]]:
        return [("GET", r"(?i)/v1\.0/users/(?:microsoft\.graph\.)?delta(?:\(\))?", self.delta)]

    def expire_all(self, mode: str | None = None) -> None:
        """Invalidate every outstanding delta/skip token (the ``/_sandbox/expire-delta`` control)."""
        if mode is not None:
            if mode not in EXPIRY_MODES:
                raise ValueError(f"unknown delta expiry mode {mode!r}; choose from {', '.join(EXPIRY_MODES)}")
            self.settings.expiry = mode
        self.generation += 1

    # ---- the one route ----
    def delta(self, req: Request) -> Response:
        opt = options(req)
        if "deltatoken" in opt:
            state = self._round_from_delta_token(opt, req.base_url)
        elif "skiptoken" in opt:
            state = self._resume(opt["skiptoken"], "$skiptoken", req.base_url)
        else:
            state = self._initial(opt)
        if state.get("latest"):
            return self._respond(req, state, [], None)
        with self.d.lock:
            page, next_pos = collect(self._candidates(state), self.settings.page_size)
            fragments = [self._item(u, state) for u in page]
        return self._respond(req, state, fragments, next_pos)

    def _initial(self, opt: dict[str, str]) -> dict[str, Any]:
        for name in UNSUPPORTED:
            if name in opt:
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    f"The query option '${name}' is not supported with delta queries.",
                )
        select = parse_select(opt.get("select"), navigation_ok=True)
        state: dict[str, Any] = {
            "s": list(select) if select is not None else None,
            "f": self._ids(opt.get("filter")),
            "since": -1,
            "upto": self.d.version,
            "p": 0,
        }
        return state

    def _round_from_delta_token(self, opt: dict[str, str], base_url: str) -> dict[str, Any]:
        if opt["deltatoken"].lower() == "latest":
            state = self._initial(opt)
            state.update(since=self.d.version, latest=True)
            return state
        state = self._resume(opt["deltatoken"], "$deltatoken", base_url)
        state.update(upto=self.d.version, p=0)
        return state

    def _resume(self, token: str, what: str, base_url: str) -> dict[str, Any]:
        state = self.codec.decode(token, what)
        ttl = self.settings.ttl()
        if state.get("g") != self.generation or (
            ttl is not None and time.time() - float(state.get("t", 0)) > ttl
        ):
            raise self._expired(state, base_url)
        return state

    @staticmethod
    def _ids(value: str | None) -> list[str] | None:
        """Delta filters only on ``id eq '...'`` clauses joined by ``or`` (at most 50)."""
        if value is None or not value.strip():
            return None
        ids, pos = [], 0
        while pos < len(value):
            m = _ID_EQ.match(value, pos)
            if not m:
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    "Delta queries support only $filter=id eq '...' clauses joined by 'or'.",
                )
            ids.append(m.group(1).lower())
            pos = m.end()
        if len(ids) > 50:
            raise bad_request("Too many id filters in a delta query: at most 50 are allowed.")
        return ids

    # ---- rounds ----
    def _candidates(self, state: dict[str, Any]) -> Iterator[tuple[int, DirUser]]:
        wanted = set(state["f"]) if state.get("f") else None
        if state["since"] < 0:
            live = self.d.iter_live(int(state["p"]))
            return ((p, u) for p, u in live if wanted is None or u.id in wanted)
        ids = self.d.changed_between(int(state["since"]), int(state["upto"]))
        return (
            (i, self.d.users[ids[i]])
            for i in range(int(state["p"]), len(ids))
            if wanted is None or ids[i] in wanted
        )

    def _item(self, user: DirUser, state: dict[str, Any]) -> bytes:
        later = state["since"] >= 0
        if user.removed is not None:
            return dump({"id": user.id, "@removed": {"reason": user.removed}})
        select = tuple(state["s"]) if state["s"] is not None else None
        cache = self.d.shape_cache(("delta", select, later))
        fragment = cache.get(user.id)
        if fragment is None:
            fragment = cache[user.id] = dump(self._render(user, select, later))
        return fragment

    @staticmethod
    def _render(user: DirUser, select: tuple[str, ...] | None, later: bool) -> dict[str, Any]:
        names = select or DEFAULT_SELECT
        out = {n: value_of(user, n) for n in names if n not in {"manager", "directReports"}}
        out.setdefault("id", user.id)
        if "manager" in names:
            if user.manager is not None:
                out["manager@delta"] = [{"@odata.type": USER_TYPE, "id": user.manager}]
            elif later and user.former_manager is not None:
                out["manager@delta"] = [
                    {"@odata.type": USER_TYPE, "id": user.former_manager, "@removed": {"reason": "deleted"}}
                ]
        return out

    def _respond(
        self, req: Request, state: dict[str, Any], fragments: list[bytes], next_pos: int | None
    ) -> Response:
        select = tuple(state["s"]) if state["s"] is not None else None
        head: dict[str, Any] = {"@odata.context": context_url(req.base_url, "users", select)}
        base = f"{req.base_url}/v1.0/users/delta"
        common = {"s": state["s"], "f": state.get("f"), "g": self.generation, "t": time.time()}
        if next_pos is not None:
            token = self.codec.encode(
                {**common, "since": state["since"], "upto": state["upto"], "p": next_pos}
            )
            head["@odata.nextLink"] = f"{base}?{query_string([('$skiptoken', token)])}"
        else:
            token = self.codec.encode(
                {**common, "since": state["upto"] if not state.get("latest") else state["since"]}
            )
            head["@odata.deltaLink"] = f"{base}?{query_string([('$deltatoken', token)])}"
        return Response(200, page_body(head, fragments))

    def _expired(self, state: dict[str, Any], base_url: str) -> GraphError:
        """410 + Location (a fresh initial URL) or 400 ``syncStateNotFound``, as configured."""
        pairs = [("$select", ",".join(state["s"]))] if state.get("s") else []
        if state.get("f"):
            pairs.append(("$filter", " or ".join(f"id eq '{i}'" for i in state["f"])))
        fresh = f"{base_url}/v1.0/users/delta" + (f"?{query_string(pairs)}" if pairs else "")
        if self.settings.expiry == "sync_state_not_found":
            return GraphError(
                400,
                "syncStateNotFound",
                "The sync state generation is not found. The delta token is "
                f"expired or invalid; restart with a full synchronization: {fresh}",
            )
        return GraphError(
            410,
            "resyncRequired",
            "Resync required. The delta token has expired; replace any local "
            "cached copies with a full synchronization from the URL in the Location header.",
            {"Location": fresh},
        )
