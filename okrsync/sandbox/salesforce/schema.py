"""The sObject shapes the emulator serves: fields, types, write rules and relationships.

One table drives the SOQL checker (unknown columns, literal types), the write validator
(read-only fields, lengths, lookups), ``describe`` and the JSON rendering of values, so the
three can never disagree about what a field is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

STRING_TYPES = frozenset({"string", "email", "picklist", "textarea", "phone", "url"})
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"currency", "double", "percent", "int"})
_ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?\Z")
_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: str = ""
    updateable: bool = False
    createable: bool = False
    nillable: bool = True
    length: int = 0
    external_id: bool = False  # may name the record in an upsert/GET path (externalId or idLookup)
    reference_to: str | None = None
    relationship: str | None = None
    required_on_create: bool = False

    @property
    def is_string(self) -> bool:
        return self.type in STRING_TYPES

    @property
    def is_id(self) -> bool:
        return self.type in ID_TYPES

    @property
    def is_number(self) -> bool:
        return self.type in NUMBER_TYPES


@dataclass(frozen=True)
class SObject:
    name: str
    prefix: str  # the 3-character key prefix of its Ids
    label: str
    fields: tuple[Field, ...]
    createable: bool = True
    updateable: bool = True

    def field(self, name: str) -> Field | None:
        """Case-insensitive, as SOQL and the REST API treat field names."""
        return _FIELD_INDEX[self.name].get(name.lower())

    def relationship(self, name: str) -> Field | None:
        """The lookup field behind a relationship name (``Manager`` → ``ManagerId``)."""
        return _REL_INDEX[self.name].get(name.lower())


def _rw(name: str, type_: str, length: int = 0, **kw: Any) -> Field:
    return Field(
        name, type_, label=kw.pop("label", name), updateable=True, createable=True, length=length, **kw
    )


def _ro(name: str, type_: str, length: int = 0, **kw: Any) -> Field:
    return Field(name, type_, label=kw.pop("label", name), length=length, **kw)


_AUDIT = (
    _ro("CreatedDate", "datetime", nillable=False),
    _ro("LastModifiedDate", "datetime", nillable=False),
    _ro("SystemModstamp", "datetime", nillable=False),
)

USER = SObject(
    "User",
    "005",
    "User",
    (
        _ro("Id", "id", 18, nillable=False, external_id=True),
        _rw("Username", "string", 80, nillable=False, external_id=True, required_on_create=True),
        _rw("Email", "email", 128, nillable=False, required_on_create=True),
        _rw("FirstName", "string", 40),
        _rw("LastName", "string", 80, nillable=False, required_on_create=True),
        _ro("Name", "string", 121, nillable=False),
        _rw("Alias", "string", 8, nillable=False, required_on_create=True),
        _rw("ManagerId", "reference", 18, reference_to="User", relationship="Manager", label="Manager ID"),
        _rw("IsActive", "boolean", nillable=False),
        _rw("Title", "string", 80),
        _rw("Department", "string", 80),
        _rw("Division", "string", 80),
        _rw("CompanyName", "string", 80),
        _rw("City", "string", 40),
        _rw("EmployeeNumber", "string", 20, external_id=True),
        _rw("FederationIdentifier", "string", 512, external_id=True),
        _rw("UserRoleId", "reference", 18, reference_to="UserRole", relationship="UserRole", label="Role ID"),
        _rw(
            "ProfileId",
            "reference",
            18,
            nillable=False,
            reference_to="Profile",
            relationship="Profile",
            required_on_create=True,
            label="Profile ID",
        ),
        _rw("TimeZoneSidKey", "picklist", 40, nillable=False, required_on_create=True),
        _rw("LocaleSidKey", "picklist", 40, nillable=False, required_on_create=True),
        _rw("EmailEncodingKey", "picklist", 40, nillable=False, required_on_create=True),
        _rw("LanguageLocaleKey", "picklist", 40, nillable=False, required_on_create=True),
        *_AUDIT,
    ),
)

OPPORTUNITY = SObject(
    "Opportunity",
    "006",
    "Opportunity",
    (
        _ro("Id", "id", 18, nillable=False, external_id=True),
        _rw("Name", "string", 120, nillable=False, required_on_create=True),
        _rw("Amount", "currency"),
        _rw("StageName", "picklist", 255, nillable=False, required_on_create=True),
        _rw("Probability", "percent"),
        _ro("IsWon", "boolean", nillable=False),
        _ro("IsClosed", "boolean", nillable=False),
        _rw("CloseDate", "date", nillable=False, required_on_create=True),
        _rw("Type", "picklist", 255),
        _rw("LeadSource", "picklist", 255),
        _rw(
            "OwnerId",
            "reference",
            18,
            nillable=False,
            reference_to="User",
            relationship="Owner",
            label="Owner ID",
        ),
        *_AUDIT,
    ),
)

PROFILE = SObject(
    "Profile",
    "00e",
    "Profile",
    (
        _ro("Id", "id", 18, nillable=False, external_id=True),
        _ro("Name", "string", 255, nillable=False),
        *_AUDIT,
    ),
    createable=False,
    updateable=False,
)

USER_ROLE = SObject(
    "UserRole",
    "00E",
    "Role",
    (
        _ro("Id", "id", 18, nillable=False, external_id=True),
        _ro("Name", "string", 80, nillable=False),
        _ro("ParentRoleId", "reference", 18, reference_to="UserRole", relationship="ParentRole"),
        *_AUDIT,
    ),
    createable=False,
    updateable=False,
)

ORGANIZATION = SObject(
    "Organization",
    "00D",
    "Organization",
    (
        _ro("Id", "id", 18, nillable=False),
        _ro("Name", "string", 80, nillable=False),
        _ro("IsSandbox", "boolean", nillable=False),
        _ro("OrganizationType", "picklist", 40),
        _ro("InstanceName", "string", 5),
        *_AUDIT,
    ),
    createable=False,
    updateable=False,
)

SOBJECTS: dict[str, SObject] = {
    s.name.lower(): s for s in (USER, OPPORTUNITY, PROFILE, USER_ROLE, ORGANIZATION)
}
_FIELD_INDEX = {s.name: {f.name.lower(): f for f in s.fields} for s in SOBJECTS.values()}
_REL_INDEX = {
    s.name: {f.relationship.lower(): f for f in s.fields if f.relationship} for s in SOBJECTS.values()
}


def sobject(name: str) -> SObject | None:
    return SOBJECTS.get(name.lower())


# ---- Ids ----
def is_valid_id(value: str) -> bool:
    """15- or 18-character Salesforce Id (an 18-char one must carry the right checksum)."""
    if not _ID_RE.match(value):
        return False
    return len(value) == 15 or to_18(value[:15]) == value


def to_18(value: str) -> str:
    """The case-safe 18-character form of a 15- or 18-character Id."""
    short = value[:15]
    suffix = ""
    for chunk in (short[0:5], short[5:10], short[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _CHECKSUM_CHARS[bits]
    return short + suffix


# ---- values on the wire ----
def format_datetime(value: datetime) -> str:
    """Salesforce's JSON dateTime: ``2024-05-01T09:30:00.000+0000`` (always UTC, milliseconds)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
