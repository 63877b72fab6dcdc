"""Encodings the store writes: snapshots as zlib-compressed JSON, timestamps as UTC ISO text.

JSON rather than pickle because a state file may be copied around and must never execute
code when read; zlib because 100,000 people are ~32 MB of JSON and ~3 MB compressed. The
body is validated back through pydantic-core in one ``validate_json`` call, which is the
fastest *validating* path: a snapshot read from disk is not trusted to be well-formed.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from okrsync.errors import redact_text
from okrsync.models import OrgSnapshot

#: Recorded per snapshot row, so a later format can be added without rewriting old rows.
SNAPSHOT_ENCODING = "json+zlib"
_ZLIB_LEVEL = 1  # ~3x faster than level 6 for ~20% more bytes: nightly commit time matters more than disk
_SNAPSHOT = TypeAdapter(OrgSnapshot)
# field names in event changes whose values must never be stored, even if a mapping emits them
_SECRET_FIELD = re.compile(r"(?i)pass(word|wd)|secret|token|api_?key|credential|private_?key")


class SnapshotDecodeError(ValueError):
    """A stored snapshot body could not be turned back into an OrgSnapshot."""


def encode_snapshot(snapshot: OrgSnapshot) -> bytes:
    """Serialise without default-valued fields (most Person fields are defaults) and compress.

    Raises ``pydantic_core.PydanticSerializationError`` (a ValueError) when ``attributes``
    hold something JSON cannot express; values such as dates inside ``attributes`` come
    back as strings, since ``attributes`` is typed ``Any``.
    """
    return zlib.compress(_SNAPSHOT.dump_json(snapshot, exclude_defaults=True), _ZLIB_LEVEL)


def decode_snapshot(blob: bytes, encoding: str) -> OrgSnapshot:
    if encoding != SNAPSHOT_ENCODING:
        raise SnapshotDecodeError(f"unknown snapshot encoding {encoding!r}")
    try:
        return OrgSnapshot.model_validate_json(zlib.decompress(blob))
    except zlib.error as exc:
        raise SnapshotDecodeError(f"corrupt snapshot body: {exc}") from exc
    except ValidationError as exc:
        raise SnapshotDecodeError(
            f"snapshot does not match the current model: {exc.error_count()} errors, "
            f"first: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}"
        ) from exc


def to_iso(value: datetime) -> str:
    """UTC, fixed width, so TEXT columns sort chronologically (and map to timestamptz later).

    A naive datetime is taken to be UTC already (the engine's clocks are aware; this only
    keeps a naive test value from shifting by the local offset).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _lenient_default(value: Any) -> Any:
    try:
        return _json_default(value)
    except TypeError:
        return redact_text(str(value))


def dump_json(value: Any, *, lenient: bool = False) -> str:
    """JSON for summaries, event changes and KV values; dates/enums/sets are made JSON-able.

    ``lenient`` stores anything else as its (redacted) ``str``: used for run summaries,
    because ``finish_run`` runs in a ``finally`` and must not mask the run's real error.
    """
    default = _lenient_default if lenient else _json_default
    return json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":"))


def scrub_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Defence in depth: a secret-looking field's old/new values are replaced by ``***``."""
    return {k: ["***", "***"] if _SECRET_FIELD.search(k) else v for k, v in changes.items()}


def scrub_error(error: str | None) -> str | None:
    """Connector errors are redacted at the source; redact again in case one was not."""
    return None if error is None else redact_text(error)
