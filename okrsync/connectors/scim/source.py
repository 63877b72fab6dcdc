"""The SCIM connector as a source: every User, flattened for the ``scim`` mapping.

Services differ in small ways that must not reach the core: a manager arrives as
``{"value": id}`` or as a bare string, booleans as ``true`` or ``"False"``, the enterprise
extension may be missing altogether. :func:`flat_record` absorbs all of them. The canonical
id is the match attribute's value (``externalId`` by default) and the manager — a SCIM id
on the wire — is translated to that id space. A user without a match value cannot be
identified: it is quarantined (loudly) rather than invented an id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from okrsync.connectors.base import Pull, PullMode, PullRequest, RawRecord
from okrsync.connectors.scim import resource as res
from okrsync.io import person_from_row
from okrsync.mapping import load_mapping
from okrsync.models import Person

log = logging.getLogger("okrsync.connector.scim")

_WORK = {
    "email": res.parse_key("emails[work].value"),
    "location": res.parse_key("addresses[work].locality"),
}


def flat_record(r: Mapping[str, Any], key: str | None, manager_key: str | None) -> dict[str, Any]:
    """The flat shape ``okrsync/mappings/scim.toml`` reads (documented there)."""
    raw_name = r.get("name")
    name: Mapping[str, Any] = raw_name if isinstance(raw_name, Mapping) else {}
    ext = res.extension(r)
    active = res.bool_value(r.get("active"))
    out: dict[str, Any] = {
        "key": key,
        "manager_key": manager_key,
        "scim_id": r.get("id"),
        "externalId": r.get("externalId"),
        "userName": r.get("userName"),
        "displayName": r.get("displayName"),
        "givenName": name.get("givenName"),
        "familyName": name.get("familyName"),
        "title": r.get("title"),
        "userType": r.get("userType"),
        "active": True if active is None else active,
        "email": res.read(r, _WORK["email"]),
        "location": res.read(r, _WORK["location"]),
    }
    for part in sorted(res.ENTERPRISE_PARTS):
        value = ext.get(part)
        out[part] = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    return out


def records(target: Any, resources: list[dict[str, Any]], keys: Mapping[str, str]) -> Iterator[RawRecord]:
    """RawRecords for ``resources``; ``keys`` maps SCIM id → canonical id."""
    base = target.client.base
    for r in resources:
        scim = str(r.get("id") or "")
        ref = f"{base}{target.client.users}/{scim}"
        key = keys.get(scim)
        if key is None:
            why = f"user {scim or '?'} has no {target.match_attribute}; it cannot be identified"
            yield RawRecord(key=f"scim:{scim}", data={"__error__": why}, ref=ref)
            continue
        manager = res.manager_ref(r)
        # a manager outside the listing keeps its SCIM id, so the hierarchy reports it as dangling
        manager_key = keys.get(manager, manager) if manager else None
        yield RawRecord(key=key, data=flat_record(r, key, manager_key), ref=ref)


def people_from_resources(
    target: Any, resources: list[dict[str, Any]], keys: Mapping[str, str]
) -> list[Person]:
    """What ``read_current`` returns: the resources through the connection's read mapping."""
    mapping = load_mapping(target.config.mapping or "scim")
    people = []
    for raw in records(target, resources, keys):
        if "__error__" in raw.data:
            continue  # not one of ours: never a candidate for removal
        try:
            people.append(person_from_row(dict(mapping.apply(raw.data)), raw.ref))
        except (ValueError, TypeError) as exc:
            log.warning("scim: user %s read back unusable (%s); left out of the comparison", raw.key, exc)
    return people


class ScimSourceMixin:
    """``pull`` for :class:`~okrsync.connectors.scim.ScimConnector`: always a full listing."""

    def pull(self, request: PullRequest) -> Pull:
        pull = Pull(records=iter(()), mode=PullMode.FULL, cursor=None)
        pull.records = self._pull_records(pull)
        return pull

    def _pull_records(self, pull: Pull) -> Iterator[RawRecord]:
        target: Any = self
        before = target.client.stats.requests
        resources = list(target.client.iter_users())
        keys: dict[str, str] = {}
        for r in resources:
            value = target.match_value(r)
            if r.get("id") and value:
                keys[str(r["id"])] = value
        pull.requests = target.client.stats.requests - before
        yield from records(target, resources, keys)
