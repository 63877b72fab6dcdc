"""Pieces every Graph route shares: the error type, per-request ids, opaque tokens, query options.

Handlers raise :class:`GraphError` instead of building error responses, so the one place
that renders Graph's error body (``GraphEmulator.error``) also stamps the same
``request-id`` into the body and the header, as Graph does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from okrsync.sandbox.server import Request

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
USER_TYPE = "#microsoft.graph.user"


class GraphError(Exception):
    """An error Graph would answer with: HTTP status, Graph error code, message, extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def unknown_property(name: str, type_name: str = "microsoft.graph.user") -> GraphError:
    return bad_request(f"Could not find a property named '{name}' on type '{type_name}'.")


# ---- request ids: one per Graph request (batch items get their own) ----
_context = threading.local()


def begin_request(client_request_id: str | None) -> tuple[str, str]:
    """Start a request scope; returns (request-id, client-request-id) and remembers them per thread."""
    previous = getattr(_context, "ids", None)
    ids = (str(uuid.uuid4()), client_request_id or str(uuid.uuid4()))
    _context.stack = [*getattr(_context, "stack", []), previous]
    _context.ids = ids
    return ids


def end_request() -> None:
    stack: list[tuple[str, str] | None] = getattr(_context, "stack", [])
    _context.ids = stack.pop() if stack else None
    _context.stack = stack


def current_ids() -> tuple[str, str]:
    """The ids of the request being served; a fresh pair outside any scope (injected faults)."""
    ids: tuple[str, str] | None = getattr(_context, "ids", None)
    return ids or (str(uuid.uuid4()), str(uuid.uuid4()))


def error_body(code: str, message: str, ids: tuple[str, str] | None = None) -> dict[str, Any]:
    request_id, client_request_id = ids or current_ids()
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }


# ---- opaque, tamper-evident tokens ($skiptoken, $deltatoken) ----
class TokenCodec:
    """Encodes paging/delta state into an opaque string a client cannot forge or edit.

    Graph's tokens are opaque too; signing them lets the emulator answer a corrupted token
    with a 400 instead of silently serving the wrong page.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, state: dict[str, Any]) -> str:
        payload = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
        tag = hmac.new(self._secret, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(tag + payload).decode().rstrip("=")

    def decode(self, token: str, what: str = "$skiptoken") -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            tag, payload = raw[:12], raw[12:]
            if not hmac.compare_digest(tag, hmac.new(self._secret, payload, hashlib.sha256).digest()[:12]):
                raise ValueError("bad signature")
            state = json.loads(payload)
            if not isinstance(state, dict):
                raise ValueError("not an object")
            return state
        except (ValueError, TypeError) as exc:
            raise bad_request(f"Invalid {what} value: {exc}") from None


# ---- query options ----
def options(req: Request) -> dict[str, str]:
    """System query options, case-insensitive and with the ``$`` optional (as Graph v1.0 accepts)."""
    out: dict[str, str] = {}
    for name, values in req.query.items():
        key = name.lower().removeprefix("$")
        if values:
            out[key] = values[0]
    return out


def consistency_eventual(req: Request) -> bool:
    return req.headers.get("consistencylevel", "").strip().lower() == "eventual"


def query_string(pairs: list[tuple[str, str]]) -> str:
    """A query string that keeps ``$``, commas and parentheses readable, like Graph's own links."""
    return "&".join(f"{k}={quote(v, safe=CHARS_SAFE_IN_LINKS)}" for k, v in pairs)


CHARS_SAFE_IN_LINKS = "$,()=;'/:@"


def json_body(req: Request) -> Any:
    """The parsed JSON body, or a Graph-shaped 400."""
    try:
        return req.json()
    except (ValueError, UnicodeDecodeError):
        raise bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set "
            "and payload is of valid JSON format.",
            "BadRequest",
        ) from None


def json_object(req: Request) -> dict[str, Any]:
    body = json_body(req)
    if not isinstance(body, dict):
        raise bad_request("Invalid request body: a JSON object is required.", "BadRequest")
    return body


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dump(data: Any) -> bytes:
    """Compact UTF-8 JSON; one shared encoder (``json.dumps`` with options builds one per call)."""
    return _ENCODE(data).encode()
