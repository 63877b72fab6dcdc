"""Pure: SCIM User attributes ↔ flat values, normalisation, minimal PATCH operations and PUT bodies.

A push mapping (``okrsync/mappings/scim-push.toml``) turns a Person into flat SCIM keys:
``userName``, ``name.givenName``, ``emails[work].value``, ``enterprise.department`` … This
module knows how each key is read from a resource, written into a new one, and patched.

Comparisons use normalised values, because services re-format what they store and a
naive compare re-PATCHes every user every night (api-notes §7): whitespace is collapsed,
e-mails and user names compare case-insensitively, ``"False"``/``"True"`` strings are
booleans, and a manager is the same manager whether it is a bare string or ``{"value": …}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from okrsync.connectors.scim.client import CORE_USER, ENTERPRISE

SIMPLE = frozenset(
    {
        "externalId",
        "userName",
        "displayName",
        "nickName",
        "title",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "active",
    }
)
NAME_PARTS = frozenset({"givenName", "familyName", "middleName", "formatted", "honorificPrefix"})
ENTERPRISE_PARTS = frozenset({"employeeNumber", "costCenter", "organization", "division", "department"})
MULTI = frozenset({"emails", "phoneNumbers", "addresses"})
_MULTI_KEY = re.compile(r"^(emails|phoneNumbers|addresses)\[([A-Za-z]+)\]\.([A-Za-z]+)$")
CASELESS = frozenset({"userName", "emails"})
MANAGER = "manager"  # the flat key of the enterprise manager (a SCIM id once resolved)
MATCH_KEYS = {
    "externalId": "externalId",
    "userName": "userName",
    "employeeNumber": "enterprise.employeeNumber",
}


@dataclass(frozen=True)
class Key:
    """One flat key: where it lives in a resource and which PATCH path rewrites it."""

    text: str
    kind: str  # simple | name | enterprise | multi | manager
    attr: str  # top-level attribute or sub-attribute
    type_: str = ""  # multi-valued: the item type (work)
    sub: str = ""  # multi-valued: the sub-attribute (value, locality)

    @property
    def unit(self) -> str:
        """What one PATCH operation replaces: multi-valued attributes are replaced whole."""
        return self.attr if self.kind == "multi" else self.text

    @property
    def path(self) -> str:
        if self.kind == "name":
            return f"name.{self.attr}"
        if self.kind == "enterprise":
            return f"{ENTERPRISE}:{self.attr}"
        if self.kind == "manager":
            return f"{ENTERPRISE}:manager"
        return self.attr


def parse_key(text: str) -> Key:
    """A flat key of the vocabulary; ValueError names the accepted forms."""
    if text in SIMPLE:
        return Key(text, "simple", text)
    if text == MANAGER:
        return Key(text, "manager", MANAGER)
    head, _, tail = text.partition(".")
    if head == "name" and tail in NAME_PARTS:
        return Key(text, "name", tail)
    if head == "enterprise" and tail in ENTERPRISE_PARTS:
        return Key(text, "enterprise", tail)
    m = _MULTI_KEY.match(text)
    if m:
        return Key(text, "multi", m.group(1), m.group(2), m.group(3))
    raise ValueError(
        f"unknown SCIM key {text!r}; use one of {', '.join(sorted(SIMPLE))}, name.<part>, "
        "enterprise.<employeeNumber|department|division|costCenter|organization>, "
        "or emails[work].value / phoneNumbers[work].value / addresses[work].<sub>"
    )


# ---- reading a resource ----


def extension(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    ext = resource.get(ENTERPRISE)
    return ext if isinstance(ext, Mapping) else {}


def manager_ref(resource: Mapping[str, Any]) -> str | None:
    """The manager's SCIM id, whether sent as ``{"value": id}`` or as a bare string (Entra)."""
    value = extension(resource).get("manager")
    if isinstance(value, Mapping):
        value = value.get("value")
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _item(items: Any, type_: str) -> Mapping[str, Any] | None:
    """The item of a multi-valued attribute with ``type``, else the primary one, else the first."""
    if not isinstance(items, list):
        return None
    dicts: list[Mapping[str, Any]] = [i for i in items if isinstance(i, Mapping)]
    for item in dicts:
        if str(item.get("type", "")).lower() == type_.lower():
            return item
    for item in dicts:
        if bool_value(item.get("primary")) is True:
            return item
    return dicts[0] if dicts else None


def read(resource: Mapping[str, Any], key: Key) -> Any:
    if key.kind == "simple":
        return resource.get(key.attr)
    if key.kind == "name":
        name = resource.get("name")
        return name.get(key.attr) if isinstance(name, Mapping) else None
    if key.kind == "enterprise":
        return extension(resource).get(key.attr)
    if key.kind == "manager":
        return manager_ref(resource)
    item = _item(resource.get(key.attr), key.type_)
    return item.get(key.sub) if item is not None else None


def bool_value(value: Any) -> bool | None:
    """Booleans as services send them: true/false, or the strings "True"/"False" (any case)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in {"true", "1", "yes"}:
            return True
        if low in {"false", "0", "no"}:
            return False
        return None
    return bool(value)


def normalise(key: Key, value: Any) -> Any:
    """The comparable form of a value: blank → None, whitespace collapsed, case folded where caseless."""
    if key.text == "active":
        flag = bool_value(value)
        return True if flag is None else flag  # no "active" at all means active (RFC 7643 leaves it open)
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("value")
        if value is None:
            return None
    if isinstance(value, bool):
        return value
    text = " ".join(str(value).split())
    if not text:
        return None
    return text.casefold() if key.attr in CASELESS else text


def same(key: Key, a: Any, b: Any) -> bool:
    return bool(normalise(key, a) == normalise(key, b))


# ---- writing ----


def build_resource(values: Mapping[Key, Any], manager: str | None, *, enterprise: bool) -> dict[str, Any]:
    """A new User resource from flat values; ``manager`` is a SCIM id or a ``bulkId:`` reference."""
    body: dict[str, Any] = {"schemas": [CORE_USER]}
    ext: dict[str, Any] = {}
    multi: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        if key.kind == "simple":
            body[key.attr] = value
        elif key.kind == "name":
            body.setdefault("name", {})[key.attr] = value
        elif key.kind == "enterprise":
            ext[key.attr] = value
        elif key.kind == "multi":
            multi.setdefault(key.attr, {}).setdefault(key.type_, {})[key.sub] = value
    for attr, by_type in multi.items():
        body[attr] = multi_items(by_type)
    if manager:
        ext["manager"] = {"value": manager}
    if ext and enterprise:
        body["schemas"].append(ENTERPRISE)
        body[ENTERPRISE] = ext
    return body


def multi_items(by_type: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    items = []
    for i, (type_, subs) in enumerate(sorted(by_type.items())):
        items.append({**subs, "type": type_, **({"primary": True} if i == 0 else {})})
    return items


def patch_operations(
    desired: Mapping[Key, Any],
    current: Mapping[str, Any] | None,
    keys: Iterable[Key],
    *,
    manager: tuple[bool, str | None] = (False, None),
    enterprise: bool = True,
) -> list[dict[str, Any]]:
    """The minimal PatchOp operations turning ``current`` into ``desired`` for ``keys``.

    ``current`` None means unknown: every key is written. ``manager`` is (consider?, SCIM id or
    ``bulkId:`` reference or None to remove). Multi-valued attributes are replaced whole.
    """
    ops: list[dict[str, Any]] = []
    done_units: set[str] = set()
    keys = [k for k in keys if enterprise or k.kind != "enterprise"]
    for key in keys:
        if key.unit in done_units:
            continue
        want = desired.get(key)
        if current is not None and same(key, read(current, key), want):
            continue
        done_units.add(key.unit)
        if key.kind == "multi":
            by_type: dict[str, dict[str, Any]] = {}
            for k, v in desired.items():
                if k.kind == "multi" and k.attr == key.attr and v not in (None, ""):
                    by_type.setdefault(k.type_, {})[k.sub] = v
            if by_type:
                ops.append({"op": "replace", "path": key.attr, "value": multi_items(by_type)})
            else:
                ops.append({"op": "remove", "path": key.attr})
        elif want is None or want == "":
            ops.append({"op": "remove", "path": key.path})
        else:
            ops.append({"op": "replace", "path": key.path, "value": want})
    consider, ref = manager
    if consider and enterprise:
        now = manager_ref(current) if current is not None else None
        if current is None or (now or None) != (ref or None):
            path = f"{ENTERPRISE}:manager"
            if ref:
                ops.append({"op": "replace", "path": path, "value": {"value": ref}})
            elif current is not None:
                ops.append({"op": "remove", "path": path})
    return ops


def version_of(resource: Mapping[str, Any] | None) -> str | None:
    if not resource:
        return None
    meta = resource.get("meta")
    version = meta.get("version") if isinstance(meta, Mapping) else None
    return str(version) if version else (str(resource["__etag__"]) if resource.get("__etag__") else None)


# ---- replacing (PUT, RFC 7644 §3.5.1) ----

READ_ONLY = frozenset({"meta", "__etag__"})  # __etag__: the version okrsync kept beside the body
USER_READ_ONLY = READ_ONLY | {"groups"}  # a user's groups are written through the Groups


def replacement_base(resource: Mapping[str, Any], drop: Iterable[str] = ()) -> dict[str, Any]:
    """A resource as the service returned it, ready to be PUT back: ``meta`` (read-only) and
    ``drop`` removed, everything else kept — ``id`` too, which a PUT may carry (RFC 7644 §3.5.1).
    Attributes okrsync does not manage are sent back as read, so a PUT does not clear them."""
    skip = READ_ONLY | set(drop)
    return {k: deepcopy(v) for k, v in resource.items() if k not in skip}


def apply_operations(
    resource: Mapping[str, Any], operations: Iterable[Mapping[str, Any]], drop: Iterable[str] = USER_READ_ONLY
) -> dict[str, Any]:
    """The body of a PUT that has the effect of ``operations`` (what :func:`patch_operations`
    and the manager reference produce: ``replace``/``remove`` of ``attr``, ``name.<part>``, a
    whole multi-valued attribute or ``<enterprise urn>:<attr>``) on ``resource``."""
    body = replacement_base(resource, drop)
    for op in operations:
        path = str(op["path"])
        container: dict[str, Any] = body
        if path.startswith(ENTERPRISE + ":"):  # the URN has dots of its own: check it first
            attr = path[len(ENTERPRISE) + 1 :]
            parent = ENTERPRISE
        elif "." in path:
            parent, attr = path.split(".", 1)
        else:
            parent, attr = "", path
        if parent:
            held = body.get(parent)
            if not isinstance(held, dict):
                if op["op"] == "remove":
                    continue
                held = body[parent] = {}
            container = held
        if op["op"] == "remove":
            container.pop(attr, None)
        else:
            container[attr] = deepcopy(op["value"])
        if parent and not container:
            body.pop(parent)
    schemas = [s for s in body.get("schemas") or [CORE_USER] if s != ENTERPRISE]
    body["schemas"] = [*schemas, ENTERPRISE] if isinstance(body.get(ENTERPRISE), dict) else schemas
    return body
