"""Org units as SCIM Groups (``groups = "department" | "org_unit"``): one Group per value.

The target keeps, for each distinct value of the chosen Person field, a Group whose
``displayName`` is the value and whose ``externalId`` is ``okrsync:<kind>:<value>``; its members
are the active users with that value. The ``externalId`` prefix is how okrsync recognises the
groups it owns: any other group — same displayName or not — is never read for membership,
written or deleted.

The engine hands ``apply`` only the people that changed, so membership is reconciled *per
person touched*, after that person's user write succeeded (the user must have a SCIM id):
the owned groups are listed once per apply (one filtered, paged read), and each touched user
is added to the group of its value and removed from every other owned group, by SCIM id.
A user already where it belongs causes no write, so a rerun writes nothing to Groups.

Writes are minimal (RFC 7644 §3.5.2): one PATCH per changed group with an ``add`` of the new
members and a ``remove`` per leaver (``members[value eq "…"]``); a PUT of the whole group, with
If-Match, only when the service says PATCH is unsupported. A value seen for the first time is a
POST. A group whose value disappears is *emptied, not deleted*: other systems (app
assignments, policies, an OKR tool's teams) refer to groups by id, a reorg often empties a
department and refills it a run later, and a deletion cannot be undone — the same reason
leavers are deactivated rather than deleted. Group writes are few (one per changed value), so
they go one request each rather than through ``/Bulk``.

Each group write is reported like a user write: an :class:`OpResult` whose operation names
the group (``person_id`` = its externalId, ``seq`` negative: not from the plan) and whose
error says which group failed and why. A failed group write never turns the users' results
into failures — their writes happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from okrsync.connectors.base import Operation, OpKind, OpResult
from okrsync.connectors.scim import resource as res
from okrsync.connectors.scim.client import CORE_GROUP, ScimClient, describe
from okrsync.errors import ApiError
from okrsync.models import Person

GroupKind = Literal["department", "org_unit"]
PERSON_FIELD: dict[str, str] = {"department": "department", "org_unit": "org_unit_id"}
ScimIdOf = Callable[[str], "str | None"]  # person id -> SCIM user id (this run's, else the id map's)


@dataclass
class Group:
    """An okrsync-owned group as the service holds it (members by SCIM user id)."""

    scim_id: str
    value: str
    members: set[str]
    resource: dict[str, Any]


@dataclass(frozen=True)
class Want:
    """Where one touched user belongs: ``value`` None means in no group (inactive, no value)."""

    person_id: str
    value: str | None


@dataclass
class GroupWrite:
    """One planned group request: a create (``group`` None) or a membership change."""

    value: str
    group: Group | None
    add: dict[str, str] = field(default_factory=dict)  # SCIM id -> person id
    remove: dict[str, str] = field(default_factory=dict)


def clean(value: Any) -> str | None:
    """The group value of a field: whitespace collapsed, blank is no group."""
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def plan_group_writes(owned: Sequence[Group], wanted: Mapping[str, Want]) -> list[GroupWrite]:
    """Pure: the group writes that put every wanted user (by SCIM id) in exactly its group.

    Users not in ``wanted`` are left alone. Of two owned groups with the same value (a crashed
    run's duplicate), the one with the smallest id is kept and the other loses its members.
    """
    canonical: dict[str, Group] = {}
    for group in sorted(owned, key=lambda g: g.scim_id):
        canonical.setdefault(group.value, group)
    writes: dict[tuple[str, str | None], GroupWrite] = {}

    def write_for(value: str, group: Group | None) -> GroupWrite:
        key = (value, group.scim_id if group else None)
        return writes.setdefault(key, GroupWrite(value, group))

    for group in owned:
        keep = canonical[group.value] is group
        for sid in sorted(group.members & set(wanted)):
            if not keep or wanted[sid].value != group.value:
                write_for(group.value, group).remove[sid] = wanted[sid].person_id
    for sid, want in sorted(wanted.items()):
        if want.value is None:
            continue
        target = canonical.get(want.value)
        if target is None or sid not in target.members:
            write_for(want.value, target).add[sid] = want.person_id
    return [writes[k] for k in sorted(writes, key=lambda k: (k[0], k[1] or ""))]


def member_operations(write: GroupWrite) -> list[dict[str, Any]]:
    """RFC 7644 §3.5.2 PatchOp operations: one ``add`` of the newcomers, one ``remove`` per leaver."""
    ops: list[dict[str, Any]] = []
    if write.add:
        ops.append({"op": "add", "path": "members", "value": [{"value": sid} for sid in write.add]})
    for sid in write.remove:
        ops.append({"op": "remove", "path": f"members[value eq {json.dumps(sid)}]"})
    return ops


class GroupSync:
    """Keeps okrsync's groups of one kind in step with the users an apply touched."""

    def __init__(self, client: ScimClient, kind: GroupKind) -> None:
        self.client = client
        self.kind = kind
        self.field = PERSON_FIELD[kind]
        self.prefix = f"okrsync:{kind}:"
        self.counts: dict[str, int] = {"create": 0, "update": 0}

    def external_id(self, value: str) -> str:
        return self.prefix + value

    def value_of(self, person: Person) -> str | None:
        """The group an active person belongs in; inactive people (and pre-hires) belong in none."""
        return clean(getattr(person, self.field)) if person.is_active else None

    # ---- reading ----
    def read_owned(self) -> list[Group]:
        """okrsync's groups of this kind: filtered by externalId prefix when the service filters.

        The prefix is checked again here, so a service that ignores the filter (or treats
        ``sw`` loosely) can never make okrsync touch a group it does not own.
        """
        filter_ = f"externalId sw {json.dumps(self.prefix)}" if self.client.capabilities().filter else None
        owned = []
        for r in self.client.iter_groups(filter_):
            ext = str(r.get("externalId") or "")
            value = clean(ext[len(self.prefix) :]) if ext.startswith(self.prefix) else None
            if value is not None and r.get("id"):
                items = [m for m in r.get("members") or [] if isinstance(m, Mapping) and m.get("value")]
                owned.append(Group(str(r["id"]), value, {str(m["value"]) for m in items}, r))
        return owned

    def memberships(self) -> dict[str, set[str]]:
        """SCIM user id -> the values of the owned groups that list it (for ``read_current``)."""
        out: dict[str, set[str]] = {}
        for group in self.read_owned():
            for sid in group.members:
                out.setdefault(sid, set()).add(group.value)
        return out

    def as_held(self, person: Person, values: set[str]) -> Person:
        """The person as the target holds them, group included: an active user's field reads as
        the one owned group listing them (None when in none or several), so the engine's diff sees
        a membership that is off — after ``groups`` is switched on, or a group write failed — and
        a ``--full`` run fixes it. Inactive users are left as read (they belong in no group)."""
        if not person.is_active:
            return person
        held = next(iter(values)) if len(values) == 1 else None
        if clean(getattr(person, self.field)) == held:
            return person
        return person.model_copy(update={self.field: held})

    # ---- writing ----
    def wanted(self, results: Iterable[OpResult], scim_id: ScimIdOf) -> dict[str, Want]:
        """Touched users whose user write succeeded, by SCIM id, with the group they belong in.

        ``scim_id(person_id)`` resolves ids the results do not carry (e.g. a disable of a user
        already inactive). A failed user write is skipped: the engine retries that person.
        """
        out: dict[str, Want] = {}
        for r in results:
            op = r.op
            sid = r.target_id or scim_id(op.person_id)
            if not r.ok or not sid:
                continue
            keeps = op.kind in (OpKind.CREATE, OpKind.UPDATE) and op.person is not None
            value = self.value_of(op.person) if keeps and op.person is not None else None
            out[str(sid)] = Want(op.person_id, value)
        return out

    def sync(self, results: Sequence[OpResult], scim_id: ScimIdOf) -> list[OpResult]:
        """After the user writes of one apply: the group writes, one result each."""
        wanted = self.wanted(results, scim_id)
        if not wanted:
            return []
        try:
            owned = self.read_owned()
        except ApiError as exc:
            error = f"{self.kind} groups: could not read them ({describe(exc)}); membership not written"
            return [
                OpResult(self._operation(self.prefix + "*", OpKind.UPDATE, {}, -1), ok=False, error=error)
            ]
        writes = plan_group_writes(owned, wanted)
        return [self.send(write, -1 - i) for i, write in enumerate(writes)]

    def send(self, write: GroupWrite, seq: int) -> OpResult:
        ext = self.external_id(write.value)
        changes: dict[str, tuple[Any, Any]] = {}
        if write.add:
            changes["members_added"] = (None, tuple(sorted(write.add.values())))
        if write.remove:
            changes["members_removed"] = (tuple(sorted(write.remove.values())), None)
        kind = OpKind.CREATE if write.group is None else OpKind.UPDATE
        op = self._operation(ext, kind, changes, seq)
        try:
            if write.group is None:
                self._create(write)
            elif self.client.capabilities().patch:
                self.client.patch_group(write.group.scim_id, member_operations(write))
            else:
                self._replace(write, write.group)
        except ApiError as exc:
            verb = "create" if write.group is None else "membership update"
            return OpResult(
                op, ok=False, error=f"group {write.value!r} ({ext}): {verb} failed: {describe(exc)}"
            )
        self.counts[kind.value] += 1
        return OpResult(op, ok=True)

    def _create(self, write: GroupWrite) -> None:
        body = {
            "schemas": [CORE_GROUP],
            "displayName": write.value,
            "externalId": self.external_id(write.value),
            "members": [{"value": sid} for sid in write.add],
        }
        self.client.create_group(body)

    def _replace(self, write: GroupWrite, group: Group) -> None:
        """The PUT fallback: the group as read, with the new member list (other attributes kept)."""
        members = (group.members - set(write.remove)) | set(write.add)
        body = res.replacement_base(group.resource, drop={"members"})
        body["members"] = [{"value": sid} for sid in sorted(members)]
        self.client.put_group(group.scim_id, body, res.version_of(group.resource))

    @staticmethod
    def _operation(ext: str, kind: OpKind, changes: Mapping[str, tuple[Any, Any]], seq: int) -> Operation:
        """A group write as an Operation: the engine records and counts it like a user write."""
        return Operation(kind, ext, None, changes, seq)
