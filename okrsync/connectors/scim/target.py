"""The SCIM connector as a target: find, create, minimally patch and deactivate Users.

Per apply batch:

1. **locate** every person the batch touches (and every manager it references that is not
   known yet) by the match attribute, ``lookup_batch`` values per ``or`` filter — so a rerun
   after a crash finds the users the crashed run created instead of creating them twice. After
   ``read_current`` listed the whole directory in this run, nothing needs looking up;
2. **plan** one write per operation against what the service holds now: a POST for a new
   user, a PATCH of only the attributes that differ after normalisation (nothing at all when
   they already match), ``active = false`` for a removal (or DELETE if the job says delete);
3. **send** them in order: through ``/Bulk`` when the service announces it (managers created
   in the same request are referenced as ``bulkId:``), else one request each. A PATCH carries
   ``If-Match`` when the service versions resources; a 412 re-reads the user and retries once.
   A create refused as a duplicate (409) is turned into a PATCH of the user found.

A service whose ``/ServiceProviderConfig`` says PATCH is unsupported (it answers 501) gets a PUT
of the whole user instead, for updates and deactivations alike: read-modify-write — the user as
the service returned it (read in this run, else read now), with the same minimal changes a PATCH
would carry applied and the read-only attributes dropped — sent with ``If-Match`` (or the bulk
operation's ``version``); a 412 re-reads, re-applies and retries once, exactly like a PATCH.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from okrsync.connectors.base import Operation, OpKind, OpResult
from okrsync.connectors.scim import resource as res
from okrsync.connectors.scim.bulk import send_writes
from okrsync.connectors.scim.client import (
    ENTERPRISE,
    ScimClient,
    ScimConflict,
    ScimError,
    ScimNotFound,
    ScimPreconditionFailed,
    describe,
    filter_in,
)
from okrsync.connectors.scim.groups import GroupSync
from okrsync.connectors.scim.resource import Key
from okrsync.errors import ApiError
from okrsync.mapping import Mapping as FieldMapping
from okrsync.models import Person

log = logging.getLogger("okrsync.connector.scim")

FILTER_PATH = {
    "externalId": "externalId",
    "userName": "userName",
    "employeeNumber": f"{ENTERPRISE}:employeeNumber",
}


@dataclass
class Entry:
    """A user the service holds: its SCIM id, version and (when read in this run) its body."""

    scim_id: str
    version: str | None = None
    resource: dict[str, Any] | None = None


@dataclass
class Write:
    """One planned request for one operation."""

    op: Operation
    method: str  # POST | PATCH | PUT (an update where the service has no PATCH) | DELETE
    values: dict[Key, Any] = field(default_factory=dict)
    keys: list[Key] = field(default_factory=list)
    entry: Entry | None = None
    patch: list[dict[str, Any]] = field(default_factory=list)
    manager: str | None = None  # the manager's person id
    set_manager: bool = False  # write the manager reference (create, or it changed)
    retries: int = 0

    @property
    def bulk_id(self) -> str:
        return f"p{self.op.seq}"


class PushMapping:
    """The push mapping compiled to SCIM keys, with the Person fields each key depends on."""

    def __init__(self, mapping: FieldMapping, match_attribute: str) -> None:
        self.mapping = mapping
        self.keys: dict[str, Key] = {}
        self.reads: dict[Key, frozenset[str]] = {}
        for rule in mapping.fields:
            if rule.target == "externalId":
                raise ValueError("externalId is always the person's id; remove it from the push mapping")
            key = res.parse_key(rule.target)
            self.keys[rule.target] = key
            self.reads[key] = frozenset(p.split(".", 1)[0] for p in rule.reads)
        self.external_id = res.parse_key("externalId")
        match_key = res.MATCH_KEYS[match_attribute]
        if match_key != "externalId" and match_key not in self.keys:
            raise ValueError(
                f"match_attribute {match_attribute!r} needs a {match_key!r} rule in the push mapping"
            )
        self.match_key = self.external_id if match_key == "externalId" else self.keys[match_key]

    def managed_fields(self) -> tuple[str, ...]:
        fields = set().union(*self.reads.values()) if self.reads else set()
        fields -= {"id", "attributes", "raw_ref", "external_ids"}
        return (*sorted(fields & set(Person.model_fields)), "manager_id")

    def values(self, person: Person) -> dict[Key, Any]:
        out = self.mapping.apply(person.model_dump(mode="json"))
        values = {self.keys[k]: v for k, v in out.items() if k in self.keys}
        values[self.external_id] = person.id
        return values

    def keys_for(self, changed: Iterable[str]) -> list[Key]:
        changed = set(changed)
        return [k for k, reads in self.reads.items() if reads & changed]


class ScimTargetMixin:
    """``apply`` and ``read_current`` for :class:`~okrsync.connectors.scim.ScimConnector`."""

    client: ScimClient
    push: PushMapping
    match_attribute: str
    lookup_batch: int
    _entries: dict[str, Entry]
    _by_match: dict[str, Entry]  # the same entries by match value (userName matching: ids differ)
    _complete: bool
    groups: GroupSync | None  # set when the connection keeps org units as Groups

    # ---- helpers shared with the source side ----
    def match_value(self, resource: Mapping[str, Any]) -> str | None:
        value = res.read(resource, self.push.match_key)
        return res.normalise(self.push.match_key, value) if value is not None else None

    def _enterprise(self) -> bool:
        return self.client.capabilities().enterprise

    # ---- locate ----
    def _lookup(self, attribute: str, key: Key, values: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Users whose ``attribute`` is one of ``values``, by normalised value."""
        found: dict[str, dict[str, Any]] = {}
        size = self.lookup_batch
        for start in range(0, len(values), size):
            chunk = list(values[start : start + size])
            for r in self.client.iter_users(filter_in(attribute, chunk), count=max(len(chunk), 1)):
                value = res.read(r, key)
                if value is not None:
                    found[res.normalise(key, value)] = r
        return found

    def _remember(self, pid: str, r: Mapping[str, Any]) -> Entry:
        entry = Entry(str(r["id"]), res.version_of(r), dict(r))
        self._entries[pid] = entry
        value = self.match_value(r)
        if value:
            self._by_match[value] = entry
        return entry

    def _locate(self, ops: Sequence[Operation], id_map: Mapping[str, str]) -> None:
        """Find the users the batch touches and the managers it references (batched or-filters)."""
        if self._complete:
            return
        wanted: dict[str, str] = {}  # match value -> person id
        for op in ops:
            entry = self._entries.get(op.person_id)
            if op.person is not None and (entry is None or entry.resource is None):
                value = res.normalise(
                    self.push.match_key, self.push.values(op.person).get(self.push.match_key)
                )
                if value:
                    wanted[value] = op.person_id
        touched = {op.person_id for op in ops}
        managers = sorted(
            {
                op.person.manager_id
                for op in ops
                if op.person is not None
                and op.person.manager_id
                and op.kind in (OpKind.CREATE, OpKind.UPDATE)
            }
            - touched
            - set(id_map)
            - set(self._entries)
        )
        key, attribute = self.push.match_key, FILTER_PATH[self.match_attribute]
        by_external_id = self.match_attribute == "externalId"
        values = list(wanted) + (managers if by_external_id else [])
        found = self._lookup(attribute, key, values) if values else {}
        for value, pid in wanted.items():
            if value in found:
                self._remember(pid, found[value])
            elif pid in id_map:  # the match value changed (a userName rename): try the id we stored
                r = self.client.get_user(id_map[pid])
                if r is not None:
                    self._remember(pid, r)
        if managers and not by_external_id:  # managers are found by externalId (= their person id)
            found = self._lookup("externalId", self.push.external_id, managers)
        for m in managers:
            if m in found:
                self._remember(m, found[m])

    # ---- OrgTarget ----
    def apply(self, ops: Sequence[Operation], id_map: Mapping[str, str]) -> list[OpResult]:
        self.client.capabilities()
        self._locate(ops, id_map)
        results: dict[int, OpResult] = {}
        writes: list[Write] = []
        for op in ops:
            try:
                write = self._plan(op, id_map)
            except ValueError as exc:
                results[op.seq] = OpResult(op, ok=False, error=str(exc))
                continue
            except ApiError as exc:  # reading the user back for a PUT failed
                results[op.seq] = OpResult(op, ok=False, error=describe(exc))
                continue
            if write is None:
                entry = self._entries.get(op.person_id)
                results[op.seq] = OpResult(op, ok=True, target_id=entry.scim_id if entry else None)
            else:
                writes.append(write)
        for write, result in send_writes(self, writes, id_map):
            results[write.op.seq] = result
        out = [results[op.seq] for op in ops]
        if self.groups is not None:  # after the users: members need their SCIM ids
            out += self.groups.sync(out, lambda pid: self.scim_id(pid, id_map))
        return out

    def _plan(self, op: Operation, id_map: Mapping[str, str]) -> Write | None:
        entry = self._entries.get(op.person_id)
        if entry is None and op.person is not None:  # keyed by match value when read_current listed it
            value = self.push.values(op.person).get(self.push.match_key)
            entry = self._by_match.get(res.normalise(self.push.match_key, value)) if value else None
            if entry is not None:
                self._entries[op.person_id] = entry
        put = self._update_method() == "PUT"
        if put and entry is not None and entry.resource is None and op.kind is not OpKind.DELETE:
            entry = self._read_back(op.person_id, entry)  # read-modify-write needs the user as held
        if entry is None and op.kind not in (OpKind.CREATE, OpKind.UPDATE):
            return None  # nothing to disable or delete
        if op.kind is OpKind.DELETE:
            assert entry is not None
            return Write(op, "DELETE", entry=entry)
        if op.kind is OpKind.DISABLE:
            assert entry is not None
            active = res.parse_key("active")
            current = entry.resource
            if current is not None and res.normalise(active, current.get("active")) is False:
                return None
            return Write(
                op,
                self._update_method(),
                {active: False},
                [active],
                entry,
                [{"op": "replace", "path": "active", "value": False}],
            )
        assert op.person is not None
        values = self.push.values(op.person)
        manager = op.person.manager_id
        if entry is None:
            return Write(op, "POST", values, list(values), manager=manager, set_manager=True)
        if op.kind is OpKind.CREATE:  # it exists already (a rerun): converge on every attribute
            keys, consider = list(values), True
        else:
            keys, consider = self.push.keys_for(op.changes), "manager_id" in op.changes
        write = Write(op, self._update_method(), values, keys, entry, manager=manager)
        self._diff(write, id_map, consider)
        return write if (write.patch or write.set_manager) else None

    def _update_method(self) -> str:
        """PATCH; PUT of the whole user when the service says PATCH is unsupported (it answers 501)."""
        return "PATCH" if self.client.capabilities().patch else "PUT"

    def _read_back(self, pid: str, entry: Entry) -> Entry | None:
        """The user as the service holds it now (None, and forgotten, when it is gone)."""
        fresh = self.client.get_user(entry.scim_id)
        if fresh is None:
            self._entries.pop(pid, None)
            return None
        return self._remember(pid, fresh)

    def _diff(self, write: Write, id_map: Mapping[str, str], consider_manager: bool) -> None:
        """Fill ``write.patch`` / ``set_manager`` against the entry's current resource."""
        assert write.entry is not None
        current = write.entry.resource
        write.patch = res.patch_operations(write.values, current, write.keys, enterprise=self._enterprise())
        write.set_manager = False
        if consider_manager and self._enterprise():
            known = self.scim_id(write.manager, id_map) if write.manager else None
            now = res.manager_ref(current) if current is not None else None
            unresolved = known is None and write.manager is not None  # created in this batch
            write.set_manager = current is None or unresolved or known != now

    def scim_id(self, pid: str | None, id_map: Mapping[str, str]) -> str | None:
        if pid is None:
            return None
        entry = self._entries.get(pid)
        return entry.scim_id if entry is not None else id_map.get(pid)

    def replacement(self, write: Write, ref: str | None) -> dict[str, Any] | None:
        """The PUT body of an update: the user as the service returned it, with the write's
        changes (``write.patch`` and the manager reference ``ref``) applied and the read-only
        attributes dropped. None when the user was not read (the caller reads it first)."""
        assert write.entry is not None
        current = write.entry.resource
        if current is None:
            return None
        return res.apply_operations(current, write.patch + self.manager_patch(write, ref))

    def manager_patch(self, write: Write, ref: str | None) -> list[dict[str, Any]]:
        if not write.set_manager:
            return []
        path = f"{ENTERPRISE}:manager"
        if ref:
            return [{"op": "replace", "path": path, "value": {"value": ref}}]
        return [{"op": "remove", "path": path}]

    # ---- one request at a time (also the fallback of bulk failures) ----
    def send_single(self, write: Write, id_map: Mapping[str, str]) -> OpResult:
        op = write.op
        ref = self.scim_id(write.manager, id_map) if write.set_manager else None
        if write.set_manager and write.manager and ref is None:
            return OpResult(
                op, ok=False, error=f"manager {write.manager} is not in the target", retries=write.retries
            )
        try:
            if write.method == "POST":
                body = res.build_resource(write.values, ref, enterprise=self._enterprise())
                try:
                    created = self.client.create_user(body)
                except ScimConflict:
                    return self._converge_existing(write, id_map)
                self._entries[op.person_id] = Entry(str(created["id"]), res.version_of(created), None)
                return OpResult(op, ok=True, target_id=str(created["id"]), retries=write.retries)
            assert write.entry is not None
            if write.method == "DELETE":
                self.client.delete_user(write.entry.scim_id, write.entry.version)
                self._entries.pop(op.person_id, None)
                return OpResult(op, ok=True, target_id=write.entry.scim_id, retries=write.retries)
            return self._patch(write, id_map, ref)
        except ApiError as exc:
            return OpResult(op, ok=False, error=describe(exc), retries=write.retries)

    def _patch(self, write: Write, id_map: Mapping[str, str], ref: str | None) -> OpResult:
        """PATCH an existing user (PUT it whole when the service has no PATCH); a 412 re-reads
        the user, recomputes the change against what it holds now and retries once."""
        for attempt in range(2):
            try:
                assert write.entry is not None
                if write.method == "PUT" and write.entry.resource is None:
                    self.refresh(write, id_map)  # read-modify-write starts from what the service holds
                entry = write.entry
                operations = write.patch + self.manager_patch(write, ref)
                if not operations:
                    return OpResult(write.op, ok=True, target_id=entry.scim_id, retries=write.retries)
                if write.method == "PUT":
                    body = self.replacement(write, ref)
                    assert body is not None
                    entry.version = self.client.put_user(entry.scim_id, body, entry.version)
                else:
                    entry.version = self.client.patch_user(entry.scim_id, operations, entry.version)
                entry.resource = None  # changed: read it again before comparing
                return OpResult(write.op, ok=True, target_id=entry.scim_id, retries=write.retries)
            except ScimPreconditionFailed:
                if attempt:
                    raise
                write.retries += 1
                self.refresh(write, id_map)
            except ScimNotFound:
                if write.op.kind is not OpKind.UPDATE:
                    return OpResult(write.op, ok=True, target_id=None, retries=write.retries)
                self._entries.pop(write.op.person_id, None)  # deleted behind our back: create it again
                write.method, write.entry, write.keys, write.set_manager = (
                    "POST",
                    None,
                    list(write.values),
                    True,
                )
                return self.send_single(write, id_map)
        raise AssertionError("unreachable")  # pragma: no cover

    def refresh(self, write: Write, id_map: Mapping[str, str]) -> None:
        """Re-read the user (after a 412, or for a PUT) and recompute the change against what it holds now."""
        assert write.entry is not None
        fresh = self.client.get_user(write.entry.scim_id)
        if fresh is None:
            raise ScimNotFound("the user disappeared", connector="scim", operation="patch user", status=404)
        write.entry = self._remember(write.op.person_id, fresh)
        consider = write.set_manager or write.op.kind is OpKind.CREATE
        self._diff(write, id_map, consider)

    def _converge_existing(self, write: Write, id_map: Mapping[str, str]) -> OpResult:
        """A create refused as a duplicate: find the user by the match attribute and patch it."""
        value = res.normalise(self.push.match_key, write.values.get(self.push.match_key))
        found = self._lookup(FILTER_PATH[self.match_attribute], self.push.match_key, [value]) if value else {}
        if value not in found:
            raise ScimError(
                "create refused as a duplicate (409) but no user matches "
                f"{self.match_attribute} = {value!r}; another attribute (userName?) collides",
                connector="scim",
                operation="create user",
                status=409,
                code="uniqueness",
            )
        entry = self._remember(write.op.person_id, found[str(value)])
        write.method, write.entry, write.keys = self._update_method(), entry, list(write.values)
        self._diff(write, id_map, True)
        ref = self.scim_id(write.manager, id_map) if write.set_manager else None
        return self._patch(write, id_map, ref)

    # ---- OrgReader ----
    def read_current(self, id_map: Mapping[str, str]) -> Iterable[Person]:
        """Every user, as Persons keyed in the source's id space (id map, else the match value)."""
        from okrsync.connectors.scim.source import people_from_resources

        resources = list(self.client.iter_users())
        inverse = {scim: pid for pid, scim in id_map.items()}
        keys: dict[str, str] = {}
        self._entries.clear()
        self._by_match.clear()
        for r in resources:
            scim = str(r.get("id") or "")
            key = inverse.get(scim) or self.match_value(r)
            if scim and key:
                keys[scim] = key
                self._remember(key, r)
        self._complete = True
        people = people_from_resources(self, resources, keys)
        if self.groups is None:
            return people
        try:
            memberships = self.groups.memberships()
        except ApiError as exc:  # users can still be compared; apply reports the group failure per group
            log.warning("scim: groups could not be read back (%s); membership not compared", describe(exc))
            return people
        scim_of = {key: scim for scim, key in keys.items()}
        return [self.groups.as_held(p, memberships.get(scim_of.get(p.id, ""), set())) for p in people]
