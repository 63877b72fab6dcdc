"""OrgTarget + OrgReader: managers and mapped attributes written with sObject Collections.

* :meth:`UserPusher.read_current` reads the Users once (one paged query), keyed by ``id_field``
  with managers through ``Manager.<id_field>``, so the engine's diff sees Salesforce in the
  source's id space and plans only what differs in ``push_fields`` (``managed_fields``).
* :meth:`UserPusher.apply` turns the engine's ordered operations (managers before reports) into
  ``PATCH /composite/sobjects`` calls of at most 200 records with ``allOrNone = false``, in
  that order, so a user's new manager is in place before anyone is moved under them. Each
  record's verdict becomes an ``OpResult``; a refused record (a manager loop,
  ``FIELD_INTEGRITY_EXCEPTION``) fails alone.
* A person without a User fails with "no Salesforce user with EmployeeNumber X": Users need
  licences, so creating them is opt-in (``create_users = true``). Salesforce never deletes
  Users; a disable writes ``IsActive = false`` only when ``status`` is among ``push_fields``.
* The daily-limit guard and ``REQUEST_LIMIT_EXCEEDED`` stop the run (raised); any other
  failure of a whole call fails that call's records, which the next run retries.
"""

# SOQL text is assembled from constant field names and validated config; data values only enter
# through soql.quote / soql.quote_id, which S608 cannot see.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from okrsync.connectors.base import Operation, OpKind, OpResult
from okrsync.connectors.salesforce.client import NAME, SalesforceClient
from okrsync.connectors.salesforce.config import PUSHABLE_FIELDS, SalesforceConfig
from okrsync.connectors.salesforce.directory import UserDirectory
from okrsync.connectors.salesforce.pull import clean_record
from okrsync.errors import ApiError, RetriableApiError
from okrsync.models import Person, PersonStatus

_STOP_CODES = frozenset({"API_RESERVE_REACHED", "REQUEST_LIMIT_EXCEEDED"})
_TEXT_FIELDS = {k: v for k, v in PUSHABLE_FIELDS.items() if k not in ("manager_id", "status")}


@dataclass
class _Pending:
    """One record on its way to a Collections call, and the operation it answers."""

    index: int
    record: dict[str, Any]


class UserPusher:
    def __init__(self, config: SalesforceConfig, client: SalesforceClient, directory: UserDirectory) -> None:
        self.config = config
        self.client = client
        self.directory = directory
        self.write_calls = 0

    # ---- OrgReader ----
    def read_current(self, id_map: Mapping[str, str]) -> list[Person]:
        cfg = self.config
        key_field = cfg.id_field
        columns = ["Id", "IsActive", "ManagerId", *(PUSHABLE_FIELDS[f] for f in _TEXT_FIELDS)]
        if key_field != "Id":
            columns += [key_field, f"Manager.{key_field}"]
        where = [f"{key_field} != null"] if key_field != "Id" else []
        if cfg.user_filter:
            where.append(f"({cfg.user_filter})")
        soql = f"SELECT {', '.join(dict.fromkeys(columns))} FROM User"
        if where:
            soql += " WHERE " + " AND ".join(where)
        people: dict[str, Person] = {}
        for raw in self.client.query_iter(soql, operation="read current users"):
            rec = clean_record(raw)
            key = str(rec[key_field])
            if key in people and not rec.get("IsActive"):
                continue  # a shared number: the active user is the one HR means
            self.directory.remember(key, str(rec["Id"]))
            people[key] = self._person(key, rec)
        return list(people.values())

    def _person(self, key: str, rec: dict[str, Any]) -> Person:
        key_field = self.config.id_field
        manager_id = rec.get("ManagerId")
        if manager_id and key_field != "Id":
            manager = rec.get("Manager") or {}
            # a manager without a number cannot be named in the source's space: keep their Id, so
            # the diff sees a difference and the push points the user at the right manager
            manager_id = manager.get(key_field) or f"salesforce:{manager_id}"
        values: dict[str, Any] = {f: rec.get(sf) for f, sf in _TEXT_FIELDS.items()}
        return Person(
            id=key,
            external_ids={"salesforce": str(rec["Id"])},
            manager_id=manager_id,
            status=PersonStatus.ACTIVE if rec.get("IsActive") else PersonStatus.TERMINATED,
            raw_ref=f"salesforce:User/{rec['Id']}",
            **values,
        )

    # ---- OrgTarget ----
    def apply(self, ops: Sequence[Operation], id_map: Mapping[str, str]) -> list[OpResult]:
        results: list[OpResult | None] = [None] * len(ops)
        self._seed(ops, id_map)
        wanted: list[str] = []
        for op in ops:
            wanted.append(op.person_id)
            if op.person is not None and op.person.manager_id:
                wanted.append(op.person.manager_id)
        ids = self.directory.resolve(wanted)
        updates: list[_Pending] = []
        creates: list[_Pending] = []
        for i, op in enumerate(ops):
            try:
                pending = self._record(i, op, ids)
            except _Refused as exc:
                results[i] = OpResult(op=op, ok=False, target_id=ids.get(op.person_id), error=str(exc))
                continue
            if pending is None:
                results[i] = OpResult(op=op, ok=True, target_id=ids.get(op.person_id))
            elif "Id" in pending.record:
                updates.append(pending)
            else:
                creates.append(pending)
        if creates:
            self._create(ops, creates, results)
        self._send(ops, updates, results, method="PATCH")
        return [
            r if r is not None else OpResult(op=ops[i], ok=False, error="not sent")
            for i, r in enumerate(results)
        ]

    def _seed(self, ops: Sequence[Operation], id_map: Mapping[str, str]) -> None:
        """User Ids the engine or the people themselves already know."""
        for op in ops:
            for key in (op.person_id, op.person.manager_id if op.person else None):
                if key and key not in self.directory.ids:
                    known = id_map.get(key)
                    if known is None and op.person is not None and key == op.person_id:
                        known = op.person.external_ids.get("salesforce")
                    if known:
                        self.directory.remember(key, known)

    def _record(self, index: int, op: Operation, ids: Mapping[str, str]) -> _Pending | None:
        key_field = self.config.id_field
        fields = self.config.push_fields
        sf_id = ids.get(op.person_id)
        if op.kind is OpKind.DELETE:
            raise _Refused('Salesforce users cannot be deleted; use removal = "disable"')
        if sf_id is None and not (op.kind is OpKind.CREATE and self.config.create_users):
            raise _Refused(self.directory.why_missing(op.person_id))
        if op.kind is OpKind.DISABLE:
            if "status" not in fields:
                raise _Refused('not deactivated: add "status" to push_fields to let okrsync set IsActive')
            return _Pending(index, {"attributes": {"type": "User"}, "Id": sf_id, "IsActive": False})
        person = op.person
        assert person is not None
        names = (
            fields if (op.kind is OpKind.CREATE or sf_id is None) else [f for f in fields if f in op.changes]
        )
        record: dict[str, Any] = {"attributes": {"type": "User"}}
        for name in names:
            if name == "manager_id":
                manager = person.manager_id
                if manager is not None and manager not in ids:
                    if sf_id is None:
                        continue  # a new user whose manager is created with them: set afterwards
                    raise _Refused(f"manager {manager}: {self.directory.why_missing(manager)}")
                record["ManagerId"] = None if manager is None else ids[manager]
            elif name == "status":
                record["IsActive"] = person.is_active
            else:
                record[PUSHABLE_FIELDS[name]] = getattr(person, name)
        if sf_id is not None:
            if len(record) == 1:
                return None  # nothing Salesforce holds differs
            record["Id"] = sf_id
            return _Pending(index, record)
        if key_field == "Id":
            raise _Refused('cannot create a user when id_field = "Id" (Salesforce assigns Ids)')
        record.update(self._new_user_fields(person))
        record[key_field] = op.person_id
        return _Pending(index, record)

    def _new_user_fields(self, person: Person) -> dict[str, Any]:
        email = person.email or person.user_name
        if not email:
            raise _Refused("cannot create a Salesforce user without an email")
        alias = ((person.given_name or "")[:1] + (person.family_name or person.id))[:8].lower()
        return {
            "Username": person.user_name or email,
            "Email": email,
            "LastName": person.family_name or person.display_name or person.id,
            "FirstName": person.given_name,
            "Alias": alias or "user",
            "ProfileId": self.config.new_user_profile_id,
            "TimeZoneSidKey": "GMT",
            "LocaleSidKey": "en_US",
            "EmailEncodingKey": "UTF-8",
            "LanguageLocaleKey": "en_US",
        }

    def _create(
        self, ops: Sequence[Operation], creates: list[_Pending], results: list[OpResult | None]
    ) -> None:
        self._send(ops, creates, results, method="POST")
        late: list[_Pending] = []  # managers created in the same call: their Ids exist only now
        for p in creates:
            res = results[p.index]
            person = ops[p.index].person
            if not (res and res.ok and res.target_id and person and person.manager_id):
                continue
            self.directory.remember(ops[p.index].person_id, res.target_id)
            if "ManagerId" not in p.record and "manager_id" in self.config.push_fields:
                manager = self.directory.resolve([person.manager_id]).get(person.manager_id)
                if manager:
                    record = {"attributes": {"type": "User"}, "Id": res.target_id, "ManagerId": manager}
                    late.append(_Pending(p.index, record))
        self._send(ops, late, results, method="PATCH")

    def _send(
        self,
        ops: Sequence[Operation],
        pending: list[_Pending],
        results: list[OpResult | None],
        *,
        method: str,
    ) -> None:
        size = self.config.batch_size
        for start in range(0, len(pending), size):
            chunk = pending[start : start + size]
            body = {"allOrNone": False, "records": [p.record for p in chunk]}
            try:
                self.write_calls += 1
                answers = self.client.restful("composite/sobjects", method=method, json=body)
            except ApiError as exc:
                if exc.code in _STOP_CODES and not isinstance(exc, RetriableApiError):
                    raise
                for p in chunk:
                    results[p.index] = OpResult(op=ops[p.index], ok=False, error=exc.message)
                continue
            answers = answers if isinstance(answers, list) else []
            for p, answer in zip(chunk, answers, strict=False):
                op = ops[p.index]
                target = answer.get("id") or p.record.get("Id")
                if answer.get("success"):
                    results[p.index] = OpResult(op=op, ok=True, target_id=target)
                else:
                    results[p.index] = OpResult(op=op, ok=False, target_id=target, error=_errors(answer))
            for p in chunk[len(answers) :]:
                results[p.index] = OpResult(op=ops[p.index], ok=False, error="no answer for this record")


class _Refused(Exception):
    """An operation okrsync will not send; its message becomes the failed OpResult's error."""


def _errors(answer: Mapping[str, Any]) -> str:
    parts = []
    for err in answer.get("errors") or []:
        fields = err.get("fields") or []
        where = f" ({', '.join(fields)})" if fields else ""
        parts.append(f"{err.get('statusCode') or err.get('errorCode')}: {err.get('message')}{where}")
    return "; ".join(parts) or f"{NAME} refused the record without a reason"


def managed_fields(push_fields: Iterable[str]) -> tuple[str, ...]:
    return tuple(push_fields)
