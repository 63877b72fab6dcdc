"""The emulator's records: Users rendered from the sandbox org, generated Opportunities, writes.

Salesforce is both a source (Users, key-result metrics) and a target (managers pushed back),
so the emulator keeps its own tables: built from the org at start, kept in step with org
edits through ``org.on_change`` (only the fields the edit changed, so a manager written
through the API survives an unrelated rename), and changed by API writes without touching
the org that the other emulators serve. Writes are validated as Salesforce validates them:
unknown and read-only fields, types, lengths, e-mail syntax, lookups, user-hierarchy loops.
"""

from __future__ import annotations

import random
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from okrsync.sandbox.orgs import DEPARTMENTS, SandboxOrg, Worker, salesforce_id
from okrsync.sandbox.salesforce.dates import add_months, quarter_start
from okrsync.sandbox.salesforce.schema import (
    SObject,
    is_valid_id,
    sobject,
    to_18,
)

Row = dict[str, Any]
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")
OPEN_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review")
STAGE_PROBABILITY = {
    "Prospecting": 10.0,
    "Qualification": 20.0,
    "Needs Analysis": 30.0,
    "Proposal/Price Quote": 60.0,
    "Negotiation/Review": 80.0,
    "Closed Won": 100.0,
    "Closed Lost": 0.0,
}
TIME_ZONES = {
    "London": "Europe/London",
    "New York": "America/New_York",
    "Berlin": "Europe/Berlin",
    "Paris": "Europe/Paris",
    "Singapore": "Asia/Singapore",
    "Toronto": "America/Toronto",
    "Sydney": "Australia/Sydney",
    "Madrid": "Europe/Madrid",
    "Chicago": "America/Chicago",
    "Dublin": "Europe/Dublin",
}
_COMPANIES = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Pied Piper",
    "Massive Dynamic",
)
_PRODUCTS = ("Platform licence", "Renewal", "Expansion", "Services", "Pilot", "Support upgrade")
# fields the org is the source of; an org edit rewrites only those that changed
_ORG_FIELDS = (
    "FirstName",
    "LastName",
    "Name",
    "Email",
    "Title",
    "Department",
    "Division",
    "City",
    "IsActive",
    "ManagerId",
    "TimeZoneSidKey",
)
_API_USER_BASE = 5 * 10**12  # Ids of users created through the API, far from the org's


class WriteError(Exception):
    """One record's failure: Salesforce's ``errors`` entries (``errorCode``, ``message``, ``fields``)."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or []
        self.status = status

    def rest(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.code, "fields": self.fields}

    def collection(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def _stamp(value: datetime) -> datetime:
    """Salesforce keeps whole seconds (``.000`` on the wire); comparisons must see the same value."""
    return value.astimezone(UTC).replace(microsecond=0)


@dataclass
class Upserted:
    id: str
    created: bool


class Store:
    """All tables, one lock; implements the SOQL ``DataSource`` protocol."""

    def __init__(self, org: SandboxOrg, *, opportunities_per_rep: int, seed: int) -> None:
        self.org = org
        self.lock = threading.RLock()
        self.tables: dict[str, dict[str, Row]] = {
            s: {} for s in ("User", "Opportunity", "Profile", "UserRole", "Organization")
        }
        self._org_view: dict[str, Row] = {}  # last org rendering per user Id
        self._journal: list[tuple[str, str, Row | None]] | None = None
        self._created = 0
        self.org_id = salesforce_id("00D", 1 + org.seed % 1000)
        self.integration_user_id = salesforce_id("005", 0)
        self.standard_profile_id = salesforce_id("00e", 1)
        epoch = datetime.combine(org.as_of - timedelta(days=3650), time(), UTC)
        for n, name in enumerate(("Standard User", "System Administrator", "Chatter Free User"), start=1):
            self.tables["Profile"][salesforce_id("00e", n)] = self._audit(
                {"Id": salesforce_id("00e", n), "Name": name}, epoch
            )
        self.role_ids = {}
        for n, dept in enumerate(("Executive", *(d[0] for d in DEPARTMENTS)), start=1):
            rid = salesforce_id("00E", n)
            self.role_ids[dept] = rid
            self.tables["UserRole"][rid] = self._audit(
                {"Id": rid, "Name": dept, "ParentRoleId": None if n == 1 else salesforce_id("00E", 1)}, epoch
            )
        self.tables["Organization"][self.org_id] = self._audit(
            {
                "Id": self.org_id,
                "Name": f"okrsync sandbox {org.seed}",
                "IsSandbox": True,
                "OrganizationType": "Enterprise Edition",
                "InstanceName": "CS1",
            },
            epoch,
        )
        with org.lock:
            for w in org:
                self._sync(w)
            listener = weakref.WeakMethod(self._on_change)  # a stopped emulator must not live on in the org

            def forward(w: Worker) -> None:
                method = listener()
                if method is not None:
                    method(w)

            org.on_change(forward)
        self._generate_opportunities(opportunities_per_rep, seed)

    @staticmethod
    def _audit(row: Row, when: datetime) -> Row:
        row.update(CreatedDate=when, LastModifiedDate=when, SystemModstamp=when)
        return row

    # ---- DataSource ----
    def rows(self, sobject_name: str) -> list[Row]:
        with self.lock:
            return list(self.tables[sobject_name].values())

    def get(self, sobject_name: str, record_id: str) -> Row | None:
        if len(record_id) == 15:
            record_id = to_18(record_id)
        return self.tables[sobject_name].get(record_id)

    # ---- org → Users ----
    def _render(self, w: Worker) -> Row:
        org = self.org
        return {
            "FirstName": w.given_name,
            "LastName": w.family_name,
            "Name": w.display_name,
            "Email": w.email,
            "Title": w.title,
            "Department": w.department,
            "Division": w.division,
            "City": w.location,
            "IsActive": w.status == "active" and not w.deleted,  # Users are deactivated, never deleted
            "ManagerId": None if w.manager is None else org.salesforce_user_id(w.manager),
            "TimeZoneSidKey": TIME_ZONES.get(w.location, "GMT"),
        }

    def _sync(self, w: Worker) -> None:
        uid = self.org.salesforce_user_id(w.index)
        view = self._render(w)
        modified = _stamp(w.last_modified)
        row = self.tables["User"].get(uid)
        if row is None:
            created = min(datetime.combine(w.hire_date, time(9), UTC), modified)
            row = {
                "Id": uid,
                "Username": w.email,
                "Alias": (w.given_name[:1] + w.family_name)[:8].lower() or "user",
                "CompanyName": "Sandbox Inc.",
                "EmployeeNumber": w.employee_id,
                "FederationIdentifier": w.employee_id,
                "UserRoleId": self.role_ids.get(w.department),
                "ProfileId": self.standard_profile_id,
                "LocaleSidKey": "en_US",
                "EmailEncodingKey": "UTF-8",
                "LanguageLocaleKey": "en_US",
                **view,
            }
            self.tables["User"][uid] = self._audit(row, modified)
            row["CreatedDate"] = created
        else:
            old = self._org_view.get(uid, {})
            for key in _ORG_FIELDS:
                if view[key] != old.get(key):
                    row[key] = view[key]
            row["LastModifiedDate"] = row["SystemModstamp"] = max(modified, row["LastModifiedDate"])
        self._org_view[uid] = view

    def _on_change(self, w: Worker) -> None:
        with self.lock:
            self._sync(w)

    # ---- Opportunities ----
    def _generate_opportunities(self, per_rep: int, seed: int) -> None:
        rng = random.Random(seed * 7919 + 17)
        as_of = self.org.as_of
        first = add_months(quarter_start(as_of), -3)  # previous quarter …
        days = (add_months(quarter_start(as_of), 3) - first).days  # … through the end of this one
        reps = [w for w in self.org if w.department == "Sales"]
        n = 0
        for rep in reps:
            owner = self.org.salesforce_user_id(rep.index)
            for _ in range(per_rep):
                n += 1
                close = first + timedelta(days=rng.randrange(days))
                if close <= as_of:
                    roll = rng.random()
                    stage = (
                        "Closed Won"
                        if roll < 0.45
                        else "Closed Lost"
                        if roll < 0.8
                        else rng.choice(OPEN_STAGES)
                    )
                else:
                    stage = "Closed Won" if rng.random() < 0.15 else rng.choice(OPEN_STAGES)
                created = datetime.combine(close - timedelta(days=rng.randint(20, 120)), time(10), UTC)
                modified = min(
                    created + timedelta(days=rng.randint(1, 60)), datetime.combine(as_of, time(), UTC)
                )
                oid = salesforce_id("006", n + (seed % 1000) * 10_000_000)
                row: Row = {
                    "Id": oid,
                    "Name": f"{rng.choice(_COMPANIES)} - {rng.choice(_PRODUCTS)}",
                    "Amount": float(rng.randrange(20, 1500) * 100),
                    "StageName": stage,
                    "CloseDate": close,
                    "Type": rng.choice(("New Business", "Existing Business")),
                    "LeadSource": rng.choice(("Web", "Partner Referral", "Phone Inquiry", "Trade Show")),
                    "OwnerId": owner,
                    "Probability": STAGE_PROBABILITY[stage],
                }
                self._derive("Opportunity", row)
                self.tables["Opportunity"][oid] = self._audit(row, max(created, modified))
                row["CreatedDate"] = created

    @staticmethod
    def _derive(obj: str, row: Row) -> None:
        if obj == "Opportunity":
            stage = row.get("StageName") or ""
            row["IsWon"] = stage == "Closed Won"
            row["IsClosed"] = stage.startswith("Closed")
        elif obj == "User":
            first = row.get("FirstName")
            row["Name"] = f"{first} {row.get('LastName')}" if first else row.get("LastName")

    # ---- writes ----
    @contextmanager
    def transaction(self) -> Iterator[list[tuple[str, str, Row | None]]]:
        """One request's writes under the lock, journalled so ``allOrNone`` can undo them all."""
        with self.lock:
            journal: list[tuple[str, str, Row | None]] = []
            self._journal = journal
            try:
                yield journal
            finally:
                self._journal = None

    def rollback(self, journal: list[tuple[str, str, Row | None]]) -> None:
        with self.lock:
            for obj, rid, old in reversed(journal):
                if old is None:
                    self.tables[obj].pop(rid, None)
                else:
                    self.tables[obj][rid] = old
            journal.clear()

    def _save(self, obj: str, rid: str, row: Row) -> None:
        if self._journal is not None:
            old = self.tables[obj].get(rid)
            self._journal.append((obj, rid, None if old is None else dict(old)))
        self.tables[obj][rid] = row

    def _validate(self, s: SObject, values: dict[str, Any], *, creating: bool, rid: str | None) -> Row:
        clean: Row = {}
        readonly: list[str] = []
        for key, value in values.items():
            if key == "attributes":
                continue
            f = s.field(key)
            if f is None:
                raise WriteError("INVALID_FIELD", f"No such column '{key}' on sobject of type {s.name}", [])
            if not (f.createable if creating else f.updateable):
                readonly.append(f.name)
                continue
            clean[f.name] = self._coerce(s, f.name, value)
        if readonly:
            raise WriteError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(readonly)}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                readonly,
            )
        if creating:
            missing = [f.name for f in s.fields if f.required_on_create and clean.get(f.name) in (None, "")]
            if missing:
                raise WriteError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
                )
        if s.name == "User":
            self._check_user(clean, rid)
        return clean

    def _coerce(self, s: SObject, name: str, value: Any) -> Any:
        f = s.field(name)
        assert f is not None
        if value is None or (value == "" and (f.is_string or f.is_id)):
            if not f.nillable:
                raise WriteError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{f.name}]", [f.name]
                )
            return None
        bad = WriteError(
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {f.type} from value {value!r} or "
            f"request may be missing a required field ({f.name})",
            [],
        )
        if f.is_string:
            if not isinstance(value, str):
                raise bad
            if f.length and len(value) > f.length:
                raise WriteError(
                    "STRING_TOO_LONG",
                    f"{f.label}: data value too large: {value} (max length={f.length})",
                    [f.name],
                )
            if f.type == "email" and not _EMAIL_RE.match(value):
                raise WriteError(
                    "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}", [f.name]
                )
            return value
        if f.type == "boolean":
            if not isinstance(value, bool):
                raise bad
            return value
        if f.is_number:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad
            return float(value)
        if f.type == "date":
            try:
                return date.fromisoformat(str(value))
            except ValueError:
                raise bad from None
        if f.is_id:
            if not isinstance(value, str) or not is_valid_id(value):
                raise WriteError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name])
            target = sobject(f.reference_to or "")
            full = to_18(value)
            if target is None or self.get(target.name, full) is None:
                raise WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
            return full
        raise bad

    def _check_user(self, clean: Row, rid: str | None) -> None:
        manager = clean.get("ManagerId")
        if manager is not None and rid is not None:
            seen: set[str] = set()
            m: str | None = manager
            while m is not None and m not in seen:
                if m == rid:
                    raise WriteError(
                        "FIELD_INTEGRITY_EXCEPTION",
                        "Manager: a user can't report to themselves "
                        "or to someone who reports to them (manager hierarchy loop)",
                        ["ManagerId"],
                    )
                seen.add(m)
                row = self.tables["User"].get(m)
                m = row.get("ManagerId") if row else None
        username = clean.get("Username")
        if username is not None:
            for row in self.tables["User"].values():
                if row["Id"] != rid and str(row.get("Username", "")).lower() == username.lower():
                    raise WriteError(
                        "DUPLICATE_USERNAME",
                        "Duplicate Username.<br>The username already exists "
                        "in this or another Salesforce organization. Usernames must be unique across "
                        "all Salesforce organizations.",
                        ["Username"],
                    )

    def _touch(self, row: Row) -> None:
        row["LastModifiedDate"] = row["SystemModstamp"] = _stamp(self.org.clock())

    def update(self, obj: str, rid: str, values: dict[str, Any]) -> str:
        s = sobject(obj)
        with self.lock:
            if s is None or not s.updateable:
                raise WriteError("INVALID_TYPE", f"sObject type '{obj}' is not updateable", [])
            if not is_valid_id(rid):
                raise WriteError("MALFORMED_ID", f"{s.name} ID: id value of incorrect type: {rid}", ["Id"])
            if not rid.startswith(s.prefix) or self.get(s.name, rid) is None:
                raise WriteError("NOT_FOUND", "The requested resource does not exist", ["Id"], status=404)
            full = to_18(rid)
            clean = self._validate(s, values, creating=False, rid=full)
            row = dict(self.tables[s.name][full])
            if "StageName" in clean and "Probability" not in clean:  # a stage carries its default probability
                clean["Probability"] = STAGE_PROBABILITY.get(clean["StageName"] or "", row.get("Probability"))
            row.update(clean)
            self._derive(s.name, row)
            self._touch(row)
            self._save(s.name, full, row)
            return full

    def create(self, obj: str, values: dict[str, Any]) -> str:
        s = sobject(obj)
        with self.lock:
            if s is None or not s.createable:
                raise WriteError("INVALID_TYPE", f"sObject type '{obj}' is not createable", [])
            clean = self._validate(s, values, creating=True, rid=None)
            self._created += 1
            rid = salesforce_id(s.prefix, _API_USER_BASE + self._created)
            row: Row = {f.name: None for f in s.fields}
            row.update(clean, Id=rid)
            if s.name == "User" and "IsActive" not in clean:
                row["IsActive"] = True
            self._derive(s.name, row)
            now = _stamp(self.org.clock())
            self._audit(row, now)
            self._save(s.name, rid, row)
            return rid

    def find(self, obj: str, field_name: str, value: str) -> list[str]:
        s = sobject(obj)
        assert s is not None
        f = s.field(field_name)
        assert f is not None
        with self.lock:
            if f.name == "Id":
                row = self.get(s.name, value) if is_valid_id(value) else None
                return [row["Id"]] if row else []
            return [r["Id"] for r in self.tables[s.name].values() if r.get(f.name) == value]

    def upsert(self, obj: str, field_name: str, value: str, values: dict[str, Any]) -> Upserted:
        """``PATCH /sobjects/X/{field}/{value}``: create, update, or refuse an ambiguous match (300)."""
        s = sobject(obj)
        assert s is not None
        f = s.field(field_name)
        assert f is not None
        body = {k: v for k, v in values.items() if k != "attributes"}
        given = next((v for k, v in body.items() if k.lower() == f.name.lower()), None)
        if given is not None and str(given) != value:
            raise WriteError(
                "INVALID_FIELD",
                f"The value of the external ID field {f.name} in the body "
                f"({given}) doesn't match the URL ({value})",
                [f.name],
            )
        with self.lock:
            matches = self.find(s.name, f.name, value)
            if len(matches) > 1:
                raise WriteError(
                    "MULTIPLE_CHOICES",
                    f"More than one record found for {f.name} = {value}",
                    matches,
                    status=300,
                )
            if matches:
                body.pop(f.name, None)
                return Upserted(self.update(s.name, matches[0], body), False)
            if f.name == "Id":
                raise WriteError("NOT_FOUND", "The requested resource does not exist", ["Id"], status=404)
            body[f.name] = value
            return Upserted(self.create(s.name, body), True)
