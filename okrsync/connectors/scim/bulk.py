"""Sending planned writes: ``/Bulk`` requests within the service's limits, or one request each.

RFC 7644 §3.7: a bulk request carries up to ``maxOperations`` operations and
``maxPayloadSize`` bytes; a POST names itself with a ``bulkId`` and later operations of the
*same* request refer to it as ``bulkId:<id>`` — which is how a manager and the reports
created with them land in one request. Requests are packed greedily in plan order (managers
first), so a reference always points backwards: into the same request (``bulkId:``) or to a
user an earlier request created (its SCIM id). A 413 splits the request in halves and sends
them again; per-operation failures that a second look can fix (412 precondition, 409 on a
create that already exists) are retried one at a time. Where the service has no PATCH, an
update is a PUT operation carrying the whole user; its manager may be a ``bulkId:`` reference
too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from okrsync.connectors.base import OpResult
from okrsync.connectors.scim import resource as res
from okrsync.connectors.scim.client import (
    PATCH_OP,
    ScimPayloadTooLarge,
    describe,
    error_from_body,
)
from okrsync.errors import ApiError

if TYPE_CHECKING:
    from okrsync.connectors.scim.target import ScimTargetMixin, Write

ENVELOPE = 200  # bytes of the BulkRequest around its operations, with room to spare
HEADROOM = 0.97  # stay a little under maxPayloadSize: services count bytes differently


def send_writes(
    target: ScimTargetMixin, writes: Sequence[Write], id_map: Mapping[str, str]
) -> Iterator[tuple[Write, OpResult]]:
    caps = target.client.capabilities()
    if not writes:
        return
    if not (target.client.config.use_bulk and caps.bulk and caps.bulk_max_operations > 0):
        for write in writes:
            yield write, target.send_single(write, id_map)
        return
    max_ops = caps.bulk_max_operations
    if target.client.config.bulk_max_operations:
        max_ops = min(max_ops, target.client.config.bulk_max_operations)
    limit = int(caps.bulk_max_payload * HEADROOM) if caps.bulk_max_payload else 0
    yield from _send_bulks(target, list(writes), id_map, max_ops, limit)


def _send_bulks(
    target: ScimTargetMixin, writes: list[Write], id_map: Mapping[str, str], max_ops: int, limit: int
) -> Iterator[tuple[Write, OpResult]]:
    i = 0
    while i < len(writes):
        chunk: list[Write] = []
        body: list[dict[str, Any]] = []
        in_chunk: dict[str, str] = {}  # person id -> bulkId, for creates in this request
        size = ENVELOPE
        while i < len(writes) and len(chunk) < max_ops:
            write = writes[i]
            operation, problem = _bulk_operation(target, write, in_chunk, id_map)
            if operation is None:
                yield write, OpResult(write.op, ok=False, error=problem)
                i += 1
                continue
            n = len(_dumps(operation)) + 1
            if chunk and limit and size + n > limit:
                break
            chunk.append(write)
            body.append(operation)
            size += n
            i += 1
            if write.method == "POST":
                in_chunk[write.op.person_id] = write.bulk_id
        if not chunk:
            continue
        try:
            outcomes = target.client.bulk(body)
        except ScimPayloadTooLarge:
            if len(chunk) == 1:
                yield chunk[0], OpResult(chunk[0].op, ok=False, error="413: too large for one bulk request")
                continue
            yield from _send_bulks(target, chunk, id_map, max(1, len(chunk) // 2), limit)
            continue
        except ApiError as exc:
            for write in chunk:
                yield write, OpResult(write.op, ok=False, error=describe(exc))
            continue
        yield from _outcomes(target, chunk, body, outcomes, id_map)


def _bulk_operation(
    target: ScimTargetMixin, write: Write, in_chunk: Mapping[str, str], id_map: Mapping[str, str]
) -> tuple[dict[str, Any] | None, str]:
    """The bulk operation for a write, with its manager resolved; (None, why) when it cannot be."""
    ref: str | None = None
    if write.set_manager and write.manager:
        if write.manager in in_chunk:
            ref = f"bulkId:{in_chunk[write.manager]}"
        else:
            ref = target.scim_id(write.manager, id_map)
            if ref is None:
                return None, f"manager {write.manager} is not in the target"
    users = target.client.users
    if write.method == "POST":
        data = res.build_resource(write.values, ref, enterprise=target.client.capabilities().enterprise)
        return {"method": "POST", "bulkId": write.bulk_id, "path": users, "data": data}, ""
    assert write.entry is not None
    operation: dict[str, Any] = {"method": write.method, "path": f"{users}/{write.entry.scim_id}"}
    if write.entry.version and target.client.config.use_etags and target.client.capabilities().etag:
        operation["version"] = write.entry.version
    if write.method == "PATCH":
        operation["data"] = {
            "schemas": [PATCH_OP],
            "Operations": write.patch + target.manager_patch(write, ref),
        }
    elif write.method == "PUT":  # the service has no PATCH: the whole user (RFC 7644 §3.7 allows PUT)
        replacement = target.replacement(write, ref)
        if replacement is None:
            return None, "the user was not read back for its replacement"
        operation["data"] = replacement
    return operation, ""


def _outcomes(
    target: ScimTargetMixin,
    chunk: list[Write],
    body: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
    id_map: Mapping[str, str],
) -> Iterator[tuple[Write, OpResult]]:
    by_bulk_id = {str(o.get("bulkId")): o for o in outcomes if o.get("bulkId")}
    by_location = {str(o.get("location", "")).rstrip("/").rsplit("/", 1)[-1]: o for o in outcomes}
    positional = len(outcomes) == len(chunk)
    for index, write in enumerate(chunk):
        if write.method == "POST":
            outcome = by_bulk_id.get(write.bulk_id)
        else:
            assert write.entry is not None
            outcome = by_location.get(write.entry.scim_id)
        if outcome is None and positional:
            outcome = outcomes[index]
        if outcome is None:
            yield write, OpResult(write.op, ok=False, error="the bulk response has no outcome for it")
            continue
        status = _status(outcome.get("status"))
        if 200 <= status < 300:
            yield write, _success(target, write, outcome)
            continue
        error = error_from_body(status, outcome.get("response"), connector="scim", operation="bulk")
        if status == 412 and write.method in ("PATCH", "PUT"):
            write.retries += 1
            try:
                target.refresh(write, id_map)
            except ApiError as exc:
                yield write, OpResult(write.op, ok=False, error=describe(exc), retries=write.retries)
                continue
            yield write, target.send_single(write, id_map)
        elif status == 409 and write.method == "POST" and error.scim_type == "uniqueness":
            write.retries += 1
            yield write, target.send_single(write, id_map)  # finds the existing user and patches it
        else:
            yield write, OpResult(write.op, ok=False, error=describe(error), retries=write.retries)


def _success(target: ScimTargetMixin, write: Write, outcome: Mapping[str, Any]) -> OpResult:
    from okrsync.connectors.scim.target import Entry

    pid = write.op.person_id
    version = outcome.get("version")
    if write.method == "POST":
        scim_id = str(outcome.get("location", "")).rstrip("/").rsplit("/", 1)[-1]
        if not scim_id:
            return OpResult(write.op, ok=False, error="bulk create succeeded without a location")
        target._entries[pid] = Entry(scim_id, str(version) if version else None, None)
        return OpResult(write.op, ok=True, target_id=scim_id, retries=write.retries)
    assert write.entry is not None
    if write.method == "DELETE":
        target._entries.pop(pid, None)
    else:
        write.entry.version = str(version) if version else None
        write.entry.resource = None
    return OpResult(write.op, ok=True, target_id=write.entry.scim_id, retries=write.retries)


def _status(value: Any) -> int:
    try:
        return int(str(value).strip()[:3])
    except (TypeError, ValueError):
        return 0


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
