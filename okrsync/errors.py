"""The okrsync exception tree.

Errors are grouped by what the caller should do about them, and each class carries the
CLI exit code a scheduler sees, so the library never has to call ``sys.exit``::

    OkrSyncError                      1  anything else that went wrong
    ├── ConfigError                   2  fix the configuration or the command line
    ├── PolicyViolation               3  a safety policy stopped the run before any write
    ├── RecordsFailed                 4  the run finished, some records failed (see the report)
    ├── HierarchyError                4  the reporting graph is unusable under the chosen policy
    ├── ConnectorError                5  a remote system refused or failed
    │   ├── AuthenticationError       5  credentials rejected or token unobtainable
    │   ├── ApiError                  5  the vendor answered with an error
    │   │   └── RetriableApiError     5  ... one worth retrying (429, 5xx, resets)
    │   │       └── AmbiguousWriteError 5  a create whose answer was lost: look before retrying
    │   └── PaginationError           5  the vendor's paging misbehaved (loop, bad cursor)
    ├── StateError                    1  the state store is unusable
    │   └── LockError                 1  another run of the same job holds the lock
    └── MappingError                  2  a mapping file or expression is invalid

Every message is built from already-redacted parts: URLs pass through :func:`redact_url`
and bodies through :func:`excerpt`, and no secret is ever interpolated.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# query parameters and JSON/form keys whose values are secrets wherever they appear
SECRET_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "client_secret",
        "password",
        "assertion",
        "client_assertion",
        "token",
        "id_token",
        "api_key",
        "apikey",
        "security_token",
        "sig",
        "signature",
        "code",
        "sessionid",
        "session_id",
    }
)
_SECRET_KEY_PATTERN = "|".join(sorted(SECRET_KEYS, key=len, reverse=True))
# the key must stand alone: "code" is an OAuth secret, "errorCode" is what an operator needs to read
_SECRET_TEXT = re.compile(
    rf"(?i)((?<![A-Za-z0-9_])\"?(?:{_SECRET_KEY_PATTERN})\"?\s*[:=]\s*\"?)([^\"&\s,<]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_PASSWORD_XML = re.compile(r"(?is)(<(?:\w+:)?Password[^>]*>)(.*?)(</(?:\w+:)?Password>)")


def redact_url(url: str) -> str:
    """Drop user info and secret-looking query values, keep everything an operator needs."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = urlencode(
        [
            (k, "***" if k.lower() in SECRET_KEYS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="$(),'=:/ ",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str) -> str:
    """Mask secrets that may appear inside free text (error bodies, logs)."""
    text = _SECRET_TEXT.sub(lambda m: m.group(1) + "***", text)
    text = _BEARER.sub(lambda m: m.group(1) + " ***", text)
    return _PASSWORD_XML.sub(lambda m: m.group(1) + "***" + m.group(3), text)


def excerpt(body: str | bytes | None, limit: int = 500) -> str:
    """A short, redacted, single-line piece of a response body for an error message."""
    if body is None:
        return ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    body = " ".join(body.split())
    if len(body) > limit:
        body = body[:limit] + "…"
    return redact_text(body)


class OkrSyncError(Exception):
    """Base of every error okrsync raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        if not self.context:
            return self.message
        details = ", ".join(f"{k}={v}" for k, v in self.context.items())
        return f"{self.message} ({details})"


class ConfigError(OkrSyncError):
    """The configuration or the command line is wrong; nothing was contacted."""

    exit_code = 2

    def __init__(self, message: str, *, problems: list[str] | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.problems = problems or []

    def __str__(self) -> str:
        base = super().__str__()
        if not self.problems:
            return base
        return base + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class MappingError(ConfigError):
    """A mapping file or expression is invalid, or failed on a record."""


class PolicyViolation(OkrSyncError):
    """A safety policy (deletion threshold, cycle policy) stopped the run before any write."""

    exit_code = 3


class RecordsFailed(OkrSyncError):
    """The run completed but some records were quarantined or rejected by the target."""

    exit_code = 4


class HierarchyError(OkrSyncError):
    """The reporting graph cannot be used under the configured policy (e.g. cycles with policy=stop)."""

    exit_code = 4


class ConnectorError(OkrSyncError):
    """A remote system failed; carries connector, operation, redacted URL, status and request id."""

    exit_code = 5

    def __init__(
        self,
        message: str,
        *,
        connector: str | None = None,
        operation: str | None = None,
        url: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        body: str | bytes | None = None,
        **context: Any,
    ) -> None:
        self.connector = connector
        self.operation = operation
        self.url = redact_url(url) if url else None
        self.status = status
        self.request_id = request_id
        self.code = code
        self.body_excerpt = excerpt(body) if body is not None else None
        super().__init__(
            redact_text(message),
            connector=connector,
            operation=operation,
            status=status,
            code=code,
            url=self.url,
            request_id=request_id,
            body=self.body_excerpt or None,
            **context,
        )


class AuthenticationError(ConnectorError):
    """Credentials were rejected or a token could not be obtained."""


class ApiError(ConnectorError):
    """The vendor answered with an error that retrying will not fix."""


class RetriableApiError(ApiError):
    """A transient vendor failure (429, 5xx, reset); ``retry_after`` is the vendor's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class AmbiguousWriteError(RetriableApiError):
    """A create was sent but its answer was lost (reset, truncated body): it may have been applied.

    Retrying blindly would duplicate the record, so the caller must look before writing again.
    """


class PaginationError(ConnectorError):
    """Paging misbehaved: a cursor repeated, a page was malformed, or a token expired."""


class StateError(OkrSyncError):
    """The state store is missing, corrupt, or from a newer okrsync."""


class LockError(StateError):
    """Another run of the same job holds the lock."""
