"""Entra as an org target: read what the directory holds, write only what differs, via ``$batch``.

People are matched on the ``anchor`` property (``employeeId`` by default; ``mail`` or
``userPrincipalName``), which must hold the source's canonical person id; the id map
(person id → objectId, filled from every result) takes precedence once known.

``read_current`` lists the directory once (the same paged ``/users`` query as a pull,
``$expand=manager($select=id,<anchor>)`` so managers come back as anchors) and maps users
through the pull mapping: the engine diffs those Persons against the source, so a first run
against a stale directory writes exactly what differs. Users without an anchor value are not
managed (they are left out, so they can never be disabled by a sync).

``apply`` turns operations into Graph requests, all inside ``$batch`` (≤ 20 per call):

* creates first (``POST /users``: the push mapping's properties, the anchor, a random
  password to change at first sign-in, ``mailNickname``), so a report's manager link never
  precedes its manager's creation — the engine already orders managers before reports;
* then ``PATCH /users/{id}`` with only the Graph properties whose value differs after the
  push mapping (``op.changes`` says which canonical fields changed; pre-hire → terminated is
  ``accountEnabled: false`` both times, so nothing is sent), and manager links with
  ``PUT|DELETE /users/{id}/manager/$ref``;
* removals disable (``accountEnabled: false``), or ``DELETE`` (restorable) if configured.

Ids the map and the last read do not know are looked up in bulk
(``$filter=<anchor> in (…15…)``, 20 per ``$batch`` call). Items throttled inside a batch are
re-submitted by :meth:`Graph.batch`; their retries are counted into ``OpResult.retries``.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from okrsync.connectors.base import Operation, OpKind, OpResult
from okrsync.connectors.entra.config import EntraConfig
from okrsync.connectors.entra.graph import BatchItem, Graph, ItemResult, relative_url
from okrsync.connectors.entra.pull import Identity, UserShape, make_record
from okrsync.diff import normalise
from okrsync.errors import MappingError
from okrsync.io import person_from_row
from okrsync.mapping import Mapping as FieldMapping
from okrsync.models import Person

IDS_PER_LOOKUP = 15


def person_record(person: Person) -> dict[str, Any]:
    """A Person as the push mapping reads it: JSON values (enums and dates as text)."""
    return person.model_dump(mode="json", exclude={"raw_ref", "external_ids"})


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _nickname(upn: str, fallback: str) -> str:
    local = re.sub(r"[^A-Za-z0-9._-]", "", upn.partition("@")[0])[:64]
    return local or re.sub(r"[^A-Za-z0-9._-]", "", fallback)[:64] or "user"


def _password() -> str:
    return secrets.token_urlsafe(18) + "aA1!"  # meets Entra's complexity rules; changed at sign-in


class EntraTarget:
    """``OrgTarget`` + ``OrgReader`` for the connector."""

    def __init__(
        self,
        graph: Graph,
        config: EntraConfig,
        pull_mapping: FieldMapping,
        push_mapping: FieldMapping,
        logger: logging.Logger,
    ) -> None:
        self.graph = graph
        self.config = config
        self.log = logger
        self.pull_mapping = pull_mapping
        self.push_mapping = push_mapping
        self.identity = Identity(config.anchor)
        create_only = set(config.create_only_fields)
        update_rules = [r for r in push_mapping.fields if r.target not in create_only]
        self.update_properties = tuple(r.target for r in update_rules)
        reads = {path.split(".", 1)[0] for r in update_rules for path in r.reads}
        self.managed_fields: tuple[str, ...] = tuple(
            sorted((reads & set(Person.model_fields)) - {"id", "attributes"} | {"manager_id"})
        )
        self.shape = UserShape.build([pull_mapping], config.anchor, extra=(config.anchor,))
        self.object_ids: dict[str, str] = {}  # person id → objectId, learnt from reads, creates, look-ups
        self.batch_size = config.batch_size

    # ---- OrgReader ----
    def read_current(self, id_map: Mapping[str, str]) -> list[Person]:
        reverse = {oid: pid for pid, oid in id_map.items()}
        people: list[Person] = []
        seen: set[str] = set()
        params = self.shape.list_params(self.config.page_size, self.config.filter)
        for page in self.graph.pages(relative_url("/users", params), None, operation="read directory"):
            for user in page.get("value") or ():
                oid = str(user["id"])
                key = reverse.get(oid) or self.identity.of(user)
                if key is None:
                    continue  # no anchor: not a person this sync manages
                if key in seen:
                    self.log.warning(
                        "entra: %s %r is held by more than one user; using the first", self.config.anchor, key
                    )
                    continue
                seen.add(key)
                manager = user.get("manager")
                manager_key = None
                if manager:
                    manager_key = reverse.get(str(manager.get("id"))) or self.identity.of(manager)
                self.object_ids[key] = oid
                record = make_record(user, key, manager_key)
                try:
                    people.append(person_from_row(self.pull_mapping.apply(record.data), record.ref))
                except (MappingError, ValidationError, ValueError) as exc:
                    self.log.warning("entra: directory user %s cannot be read as a person: %s", oid, exc)
        return people

    # ---- OrgTarget ----
    def apply(self, ops: Sequence[Operation], id_map: Mapping[str, str]) -> list[OpResult]:
        results: dict[int, OpResult] = {}
        self._resolve(ops, id_map)
        created = self._create(ops, id_map, results)
        items: list[BatchItem] = []
        for i, op in enumerate(ops):
            if i not in results:
                items += self._writes(i, op, id_map, created, results)
        outcomes: dict[int, list[ItemResult]] = {}
        for res in self.graph.batch(items, operation="write users"):
            outcomes.setdefault(res.item.key, []).append(res)
        for i, op in enumerate(ops):
            if i in results:
                continue
            oid = self._oid(op.person_id, id_map)
            done = outcomes.get(i, [])
            failed = [r for r in done if not (r.ok or _absent_manager_ok(r))]
            retries = sum(r.retries for r in done) + (created[i][1] if i in created else 0)
            error = "; ".join(f"{r.item.method} {r.item.url.split('?')[0]}: {r.error}" for r in failed)
            results[i] = OpResult(op, not failed, oid, error or None, retries)
        return [results[i] for i in range(len(ops))]

    def _oid(self, key: str | None, id_map: Mapping[str, str]) -> str | None:
        if key is None:
            return None
        return id_map.get(key) or self.object_ids.get(key)

    def _resolve(self, ops: Sequence[Operation], id_map: Mapping[str, str]) -> None:
        """Look up, in bulk, the objectIds of people and managers neither the map nor a read knows."""
        wanted: dict[str, None] = {}
        for op in ops:
            wanted[op.person_id] = None
            manager = op.person.manager_id if op.person is not None else None
            if manager and (op.kind is OpKind.CREATE or "manager_id" in op.changes):
                wanted[manager] = None
        unknown = [k for k in wanted if self._oid(k, id_map) is None]
        self.lookup(unknown)

    def lookup(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        anchor = self.config.anchor
        items = [
            BatchItem(
                "GET",
                relative_url(
                    "/users",
                    {
                        "$filter": f"{anchor} in (" + ",".join(_quote(k) for k in chunk) + ")",
                        "$select": f"id,{anchor}",
                        "$top": 999,
                    },
                ),
            )
            for chunk in (keys[k : k + IDS_PER_LOOKUP] for k in range(0, len(keys), IDS_PER_LOOKUP))
        ]
        for res in self.graph.batch(items, operation="look up users"):
            if not res.ok:
                self.log.warning("entra: looking up users by %s failed: %s", anchor, res.error)
                continue
            for user in (res.body or {}).get("value") or ():
                key = self.identity.of(user)
                if key is not None:
                    self.object_ids.setdefault(key, str(user["id"]))

    # ---- creates ----
    def _create(
        self, ops: Sequence[Operation], id_map: Mapping[str, str], results: dict[int, OpResult]
    ) -> dict[int, tuple[str, int]]:
        """POST the people the directory lacks; returns op index → (new objectId, retries)."""
        items: list[BatchItem] = []
        for i, op in enumerate(ops):
            if op.kind not in (OpKind.CREATE, OpKind.UPDATE) or op.person is None:
                continue
            if self._oid(op.person_id, id_map) is not None:
                continue
            person = op.person
            if not self.config.create_users:
                results[i] = OpResult(
                    op,
                    False,
                    None,
                    f"not in the directory ({self.config.anchor} {person.id!r}); create_users = false",
                )
            elif (
                not person.is_active
                and person.status.value == "terminated"
                and not self.config.create_inactive
            ):
                results[i] = OpResult(op, True, None, None)  # no account for someone who already left
            else:
                body = self._create_body(person)
                if "userPrincipalName" not in body:
                    results[i] = OpResult(
                        op, False, None, "cannot create: no user_name or email for userPrincipalName"
                    )
                else:
                    items.append(BatchItem("POST", "/users", body, key=i))
        created: dict[int, tuple[str, int]] = {}
        adopt: list[int] = []
        for res in self.graph.batch(items, operation="create users"):
            i = res.item.key
            if res.ok and isinstance(res.body, dict) and res.body.get("id"):
                self.object_ids[ops[i].person_id] = str(res.body["id"])
                created[i] = (str(res.body["id"]), res.retries)
            elif res.status == 400 and "already exists" in res.error:
                adopt.append(i)  # e.g. an earlier attempt got through before a reset: adopt that user
                created[i] = ("", res.retries)
            else:
                results[i] = OpResult(ops[i], False, None, f"POST /users: {res.error}", res.retries)
        if adopt:
            self.lookup(ops[i].person_id for i in adopt)
            for i in adopt:
                oid = self.object_ids.get(ops[i].person_id)
                if oid is None:
                    results[i] = OpResult(ops[i], False, None, "POST /users: userPrincipalName already taken")
                    created.pop(i)
                else:
                    created[i] = (oid, created[i][1])
        return created

    def _create_body(self, person: Person) -> dict[str, Any]:
        body = {k: v for k, v in self.push_mapping.apply(person_record(person)).items() if v is not None}
        body[self.config.anchor] = person.id
        upn = body.get("userPrincipalName")
        if upn:
            body.setdefault("mailNickname", _nickname(str(upn), person.id))
        body.setdefault("accountEnabled", person.is_active)
        body.setdefault("displayName", person.display_name or person.id)
        if self.config.usage_location:
            body.setdefault("usageLocation", self.config.usage_location)
        body["passwordProfile"] = {"password": _password(), "forceChangePasswordNextSignIn": True}
        return body

    # ---- updates, managers, removals ----
    def _writes(
        self,
        i: int,
        op: Operation,
        id_map: Mapping[str, str],
        created: dict[int, tuple[str, int]],
        results: dict[int, OpResult],
    ) -> list[BatchItem]:
        oid = created[i][0] if i in created else self._oid(op.person_id, id_map)
        if oid is None:
            if op.kind in (OpKind.DISABLE, OpKind.DELETE):
                results[i] = OpResult(op, True, None, None)  # not in the directory: nothing to remove
            else:
                results[i] = OpResult(op, False, None, f"not found in the directory by {self.config.anchor}")
            return []
        user_url = f"/users/{oid}"
        if op.kind is OpKind.DELETE and self.config.removal == "delete":
            return [BatchItem("DELETE", user_url, key=i)]
        if op.kind in (OpKind.DISABLE, OpKind.DELETE):
            return [BatchItem("PATCH", user_url, {"accountEnabled": False}, key=i)]
        assert op.person is not None
        items: list[BatchItem] = []
        fresh = i in created
        if not fresh:
            patch = self._patch(op)
            if patch:
                items.append(BatchItem("PATCH", user_url, patch, key=i))
        if fresh or "manager_id" in op.changes or op.kind is OpKind.CREATE:
            manager = op.person.manager_id
            if manager is None:
                if not fresh:
                    items.append(BatchItem("DELETE", f"{user_url}/manager/$ref", key=i))
            else:
                moid = self._oid(manager, id_map)
                if moid is None:
                    results[i] = OpResult(
                        op,
                        False,
                        oid,
                        f"manager {manager!r} not found in the directory by {self.config.anchor}",
                    )
                    return []
                ref = {"@odata.id": f"{self.graph.base}/users/{moid}"}
                items.append(BatchItem("PUT", f"{user_url}/manager/$ref", ref, key=i))
        if not items:
            results[i] = OpResult(op, True, oid, None)  # differs only where Graph holds the same value
        return items

    def _patch(self, op: Operation) -> dict[str, Any]:
        """The Graph properties whose mapped value differs between the old and the new person."""
        assert op.person is not None
        new = self.push_mapping.apply(person_record(op.person))
        if op.kind is OpKind.CREATE:  # the user exists already (matched late): write every property
            return {k: new[k] for k in self.update_properties if k in new}
        old_values = {f: old for f, (old, _) in op.changes.items() if f in Person.model_fields}
        if not old_values:
            return {}
        before = Person.model_validate({**op.person.model_dump(), **old_values})
        old = self.push_mapping.apply(person_record(before))
        return {
            k: new[k]
            for k in self.update_properties
            if k in new and normalise(k, new[k]) != normalise(k, old.get(k))
        }


def _absent_manager_ok(res: ItemResult) -> bool:
    """Removing a manager that is not there is done, not failed."""
    return res.item.method == "DELETE" and res.item.url.endswith("/manager/$ref") and res.status == 404
