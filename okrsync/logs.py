"""Logging set-up for the CLI: text or JSON lines, with secrets masked on the way out.

The redaction is a handler filter rather than a rule for callers, because a token can
reach a log line through a third-party library's debug output (urllib3, msal) too.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from okrsync.errors import redact_text


class RedactingFilter(logging.Filter):
    """Masks bearer tokens, passwords and secret query values in every record it passes."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if len(s) >= 4)

    def mask(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return redact_text(text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.mask(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "warning", fmt: str = "text", secrets: tuple[str, ...] = ()) -> RedactingFilter:
    """Install one stderr handler on the root logger (idempotent across CLI invocations in tests)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_okrsync", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._okrsync = True  # type: ignore[attr-defined]
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    redactor = RedactingFilter(secrets)
    handler.addFilter(redactor)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.WARNING))
    return redactor
