"""xAPI (Experience API 1.0.3) LRS as a learning target: links as statements, completion read back.

``push_learning`` sends one assignment statement per link (see :mod:`.statements` for the
profile) and voids the statements of links that went away; the id map (link id → statement
id, kept by the engine under ``{connection}#learning``) makes a rerun send nothing.
``pull_learning_status`` reads each link's registration back by agent + registration — not by
``activity``, which some LRSs (Ralph 5.1's file backend) do not match. All HTTP goes through
:class:`~okrsync.http.HttpClient` (retries, Retry-After, typed errors) with Basic auth and the
``X-Experience-API-Version`` header.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urljoin

from okrsync.connectors.base import Connector, ConnectorConfig, ConnectorContext, GoalResult
from okrsync.connectors.xapi.config import XapiConfig
from okrsync.connectors.xapi.statements import Profile, assignment, registration, status_of, voiding
from okrsync.errors import ApiError
from okrsync.http import HttpClient
from okrsync.learning import LinkStatus
from okrsync.models import LearningItem, LearningLink

__all__ = ["XapiConfig", "XapiConnector"]


class BasicAuth:
    """``TokenAuth`` for HttpClient: a fixed Basic header (nothing to refresh)."""

    def __init__(self, username: str, password: str) -> None:
        self._header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def header(self) -> str:
        return self._header

    def invalidate(self) -> None:
        """Basic credentials do not expire; a 401 is final (the client raises it)."""


class XapiConnector(Connector):
    """An LRS as a ``LearningTarget`` (plus ``pull_learning_status``)."""

    name = "xapi"
    Config = XapiConfig

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, XapiConfig)
        self.cfg = config
        self.profile = Profile(config)
        auth = BasicAuth(config.username, config.password.get_secret_value())
        self.http = HttpClient("xapi", config.http_settings(), auth=auth, rate_limiter=context.rate_limiter)
        self.statements_url = f"{config.endpoint}/statements"
        self.headers = {"X-Experience-API-Version": config.version}

    def close(self) -> None:
        self.http.close()

    # ---- LearningTarget ----
    def push_learning(
        self, items: Sequence[LearningItem], links: Sequence[LearningLink], id_map: Mapping[str, str]
    ) -> list[GoalResult]:
        """Post what is new or changed, void what was removed; per link results (see module doc)."""
        now = self.context.clock()
        by_id = {i.id: i for i in items}
        results: list[GoalResult] = []
        outgoing: list[tuple[str | None, dict[str, Any]]] = []  # (link id or None for voids, statement)
        desired = set()
        for link in links:
            desired.add(link.id)
            item = by_id.get(link.item_id)
            if item is None or not link.learner_id:
                why = "no learner" if item is not None else f"learning item {link.item_id!r} not given"
                results.append(GoalResult(link.id, ok=False, error=why))
                continue
            stmt = assignment(self.profile, link, item, now)
            previous = id_map.get(link.id)
            if previous == stmt["id"]:
                results.append(GoalResult(link.id, ok=True, target_id=previous))
                continue
            outgoing.append((link.id, stmt))
            if previous:
                outgoing.append((None, voiding(self.profile, previous, link.id, now)))
        for gone, sid in id_map.items():
            if gone not in desired and sid:
                outgoing.append((gone, voiding(self.profile, sid, gone, now)))
        size = self.cfg.statements_per_post
        for start in range(0, len(outgoing), size):
            chunk = outgoing[start : start + size]
            errors = self._post([s for _, s in chunk])
            for ref, stmt in chunk:
                if ref is None:
                    continue
                link_id = ref
                removed = link_id not in desired
                error = errors.get(stmt["id"])
                if error:
                    results.append(GoalResult(link_id, ok=False, error=error))
                else:
                    results.append(
                        GoalResult(link_id, ok=True, target_id=None if removed else stmt["id"], written=True)
                    )
        return results

    def _post(self, statements: list[dict[str, Any]]) -> dict[str, str]:
        """POST a batch; on 409 (an id already stored) fall back to one by one. Returns id → error."""
        try:
            self._send(statements)
            return {}
        except ApiError as exc:
            if exc.status != 409 or len(statements) == 1:
                if exc.status == 409:
                    return {}  # the LRS holds this id already: nothing to add
                return {s["id"]: str(exc) for s in statements}
        errors: dict[str, str] = {}
        for s in statements:
            errors.update(self._post([s]))
        return errors

    def _send(self, statements: list[dict[str, Any]]) -> None:
        self.http.request(
            "POST",
            self.statements_url,
            operation="post statements",
            ok=(200, 204),
            headers={**self.headers, "Content-Type": "application/json"},
            data=json.dumps(statements),
        )

    # ---- read back ----
    def pull_learning_status(
        self, links: Sequence[LearningLink], id_map: Mapping[str, str] | None = None
    ) -> dict[str, LinkStatus]:
        """Each link's status from the statements of its registration (by agent + registration)."""
        todo = [lk for lk in links if lk.learner_id]
        workers = max(1, min(self.http.settings.concurrency, len(todo)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xapi-status") as pool:
            found = list(pool.map(self._status, todo))
        return {st.link_id: st for st in found}

    def _status(self, link: LearningLink) -> LinkStatus:
        assert link.learner_id is not None
        return status_of(link.id, self.statements(link.learner_id, registration(link.id)))

    def statements(self, learner_id: str, registration_id: str) -> Iterator[dict[str, Any]]:
        """Every statement of one learner in one registration, following ``more`` (loop-guarded)."""
        params: dict[str, Any] | None = {
            "agent": json.dumps(self.profile.agent(learner_id)),
            "registration": registration_id,
            "limit": self.cfg.page_size,
        }
        url = self.statements_url
        seen: set[str] = set()
        while True:
            body = self.http.json(
                "GET", url, params=params, operation="query statements", headers=self.headers
            )
            if not isinstance(body, dict):
                raise ApiError("statement query did not answer a JSON object", connector="xapi", url=url)
            yield from body.get("statements") or ()
            more = body.get("more")
            if not more:
                return
            if more in seen:
                raise ApiError(
                    f"the LRS answered the same 'more' link twice ({more})", connector="xapi", url=url
                )
            seen.add(more)
            url, params = urljoin(self.cfg.endpoint + "/", more), None
