"""``POST /v1.0/$batch``: JSON batching with Graph's limits, dependencies and per-item failures.

The batch as a whole is validated first (at most 20 items, unique ids ignoring case, relative
URLs, ``Content-Type`` with every body, known ``dependsOn`` ids); then each item runs through
the emulator's own routing and, independently, through the fault injector, so one item can be
throttled (429 + ``Retry-After`` in *its* headers) while its neighbours succeed, as in Graph.
Responses come back in a deterministic shuffle: clients must match them by id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from okrsync.sandbox.graph.common import bad_request, error_body, json_object
from okrsync.sandbox.server import Request, Response

MAX_REQUESTS = 20
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
Execute = Callable[[Request], Response]


def _invalid(message: str) -> Exception:
    return bad_request(message, "BadRequest")


class BatchApi:
    def __init__(
        self, execute: Execute, draw: Callable[[], str | None], retry_after: Callable[[], float]
    ) -> None:
        self.execute = execute
        self.draw = draw
        self.retry_after = retry_after

    def routes(self) -> list[tuple[str, str, Callable[[Request], Response]]]:
        return [("POST", r"(?i)/v1\.0/\$batch", self.batch)]

    def batch(self, req: Request) -> Response:
        items = self._validated(json_object(req))
        results: dict[str, dict[str, Any]] = {}
        for item in self._ordered(items):
            failed = [d for d in item.get("dependsOn") or () if results[str(d).lower()]["status"] >= 400]
            key = str(item["id"]).lower()
            if failed:
                results[key] = self._response(
                    item,
                    424,
                    {},
                    error_body(
                        "FailedDependency",
                        f"The request depends on request(s) {', '.join(map(str, failed))}, which failed.",
                    ),
                )
            else:
                results[key] = self._run(item, req)
        responses = list(results.values())
        seed = hashlib.sha256(",".join(sorted(results)).encode()).digest()
        random.Random(seed).shuffle(responses)
        return Response.json({"responses": responses})

    # ---- validation ----
    def _validated(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        items = body.get("requests")
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise _invalid("Invalid batch payload format: 'requests' must be a non-empty array of objects.")
        if len(items) > MAX_REQUESTS:
            raise _invalid(f"Number of batch request steps exceeds the maximum of {MAX_REQUESTS}.")
        seen: set[str] = set()
        for item in items:
            self._check_item(item)
            key = str(item["id"]).lower()
            if key in seen:
                raise _invalid(
                    f"Batch request contains duplicate Ids: '{item['id']}'. Ids must be unique "
                    "(compared ignoring case)."
                )
            seen.add(key)
        for item in items:
            for dep in item.get("dependsOn") or ():
                if str(dep).lower() not in seen:
                    raise _invalid(
                        f"Request id '{item['id']}' dependsOn id '{dep}' that does not exist in the batch."
                    )
        return items

    @staticmethod
    def _check_item(item: dict[str, Any]) -> None:
        if not isinstance(item.get("id"), str | int) or str(item.get("id")) == "":
            raise _invalid("Invalid batch payload format: every request needs an 'id'.")
        if str(item.get("method", "")).upper() not in METHODS:
            raise _invalid(f"Invalid method '{item.get('method')}' for request id '{item['id']}'.")
        url = item.get("url")
        if not isinstance(url, str) or not url:
            raise _invalid(f"Invalid request URI for request id '{item['id']}'.")
        if urlsplit(url).scheme or url.startswith("//"):
            raise _invalid(
                f"Invalid request URI for request id '{item['id']}': batch URLs must be relative to the "
                "version root, e.g. '/users'."
            )
        if urlsplit(url).path.lstrip("/").lower().startswith("$batch"):
            raise _invalid(f"Request id '{item['id']}': a batch cannot contain another batch.")
        headers = item.get("headers") or {}
        if not isinstance(headers, dict):
            raise _invalid(f"Invalid headers for request id '{item['id']}'.")
        has_type = any(k.lower() == "content-type" for k in headers)
        if "body" in item and item["body"] is not None and not has_type:
            raise _invalid(f"Write request id : {item['id']} does not contain Content-Type header or body.")
        depends = item.get("dependsOn")
        if depends is not None and not isinstance(depends, list):
            raise _invalid(f"Invalid dependsOn for request id '{item['id']}': an array of ids is required.")

    @staticmethod
    def _ordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Original order, except that an item waits for its dependencies; a cycle is a 400."""
        done: set[str] = set()
        pending = list(items)
        ordered: list[dict[str, Any]] = []
        while pending:
            ready = [i for i in pending if all(str(d).lower() in done for d in i.get("dependsOn") or ())]
            if not ready:
                raise _invalid("Batch request dependsOn ids form a cycle.")
            first = ready[0]
            ordered.append(first)
            done.add(str(first["id"]).lower())
            pending.remove(first)
        return ordered

    # ---- execution ----
    def _run(self, item: dict[str, Any], outer: Request) -> dict[str, Any]:
        fault = self.draw()
        if fault == "429":
            return self._response(
                item,
                429,
                {"Retry-After": f"{self.retry_after():g}"},
                error_body("TooManyRequests", "Too many requests; retry after the indicated time."),
            )
        if fault in {"500", "503"}:
            code = "serviceNotAvailable" if fault == "503" else "generalException"
            headers = {"Retry-After": f"{self.retry_after():g}"} if fault == "503" else {}
            return self._response(item, int(fault), headers, error_body(code, "injected fault"))
        resp = self.execute(self._inner_request(item, outer))
        return self._response(item, resp.status, resp.headers, self._decoded(resp), resp.content_type)

    @staticmethod
    def _inner_request(item: dict[str, Any], outer: Request) -> Request:
        url = str(item["url"])
        parts = urlsplit(url if url.startswith("/") else "/" + url)
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        if "authorization" in outer.headers:
            headers["authorization"] = outer.headers["authorization"]
        body = item.get("body")
        raw = b""
        if body is not None:
            is_json = "json" in headers.get("content-type", "")
            raw = (
                json.dumps(body).encode() if is_json or not isinstance(body, str) else base64.b64decode(body)
            )
        return Request(
            method=str(item["method"]).upper(),
            path="/v1.0" + unquote(parts.path),
            raw_query=parts.query,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=raw,
            base_url=outer.base_url,
            raw_path="/v1.0" + parts.path,
        )

    @staticmethod
    def _decoded(resp: Response) -> Any:
        if not resp.body:
            return None
        if "json" in resp.content_type:
            return json.loads(resp.body)
        return resp.body.decode()

    @staticmethod
    def _response(
        item: dict[str, Any],
        status: int,
        headers: dict[str, str],
        body: Any,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"id": str(item["id"]), "status": status, "headers": dict(headers)}
        if body is not None:
            out["headers"].setdefault("Content-Type", content_type)
            out["body"] = body
        return out
