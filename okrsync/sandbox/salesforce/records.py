"""sObject routes: describe, record GET/PATCH/POST, upsert by external id, sObject Collections.

A mixin of :class:`~okrsync.sandbox.salesforce.emulator.SalesforceEmulator`, split out so the
emulator module keeps to routing, auth and accounting. Every write runs inside one
``Store.transaction()``; Collections process records in order (so a report can follow its new
manager in the same request) and undo the whole request when ``allOrNone`` is set and a record
fails, answering Salesforce's per-record results either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from okrsync.sandbox.salesforce.data import Store, WriteError
from okrsync.sandbox.salesforce.schema import SOBJECTS, SObject, is_valid_id, sobject, to_json
from okrsync.sandbox.server import Request, Response

MAX_COLLECTION = 200


class RecordRoutes:
    """Handlers over ``self.store``; the emulator supplies ``api_version`` and ``_limit_info()``."""

    store: Store
    api_version: str

    def _limit_info(self) -> str:
        raise NotImplementedError

    def _write_error(self, exc: WriteError) -> Response:
        if exc.status == 300:
            v = self.api_version
            types = {s.prefix: s.name for s in SOBJECTS.values()}
            urls = [f"/services/data/v{v}/sobjects/{types.get(rid[:3], 'User')}/{rid}" for rid in exc.fields]
            return Response.json(urls, 300, {"Sforce-Limit-Info": self._limit_info()})
        resp = Response.json([exc.rest()], exc.status)
        resp.headers["Sforce-Limit-Info"] = self._limit_info()
        return resp

    @staticmethod
    def _body(req: Request) -> Any:
        try:
            return json.loads(req.body or b"null")
        except ValueError as exc:
            raise WriteError("JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}") from None

    @staticmethod
    def _sobject(req: Request) -> SObject:
        assert req.match is not None
        s = sobject(req.match.group("obj"))
        if s is None:
            raise WriteError("NOT_FOUND", "The requested resource does not exist", status=404)
        return s

    # ------------------------------------------------------------ describe
    def _basic(self, s: SObject) -> dict[str, Any]:
        v = self.api_version
        return {
            "name": s.name,
            "label": s.label,
            "keyPrefix": s.prefix,
            "queryable": True,
            "createable": s.createable,
            "updateable": s.updateable,
            "deletable": False,
            "custom": False,
            "urls": {
                "sobject": f"/services/data/v{v}/sobjects/{s.name}",
                "describe": f"/services/data/v{v}/sobjects/{s.name}/describe",
                "rowTemplate": f"/services/data/v{v}/sobjects/{s.name}/{{ID}}",
            },
        }

    def _describe_global(self, req: Request) -> Response:
        return Response.json(
            {
                "encoding": "UTF-8",
                "maxBatchSize": MAX_COLLECTION,
                "sobjects": [self._basic(s) for s in SOBJECTS.values()],
            }
        )

    def _sobject_info(self, req: Request) -> Response:
        try:
            s = self._sobject(req)
        except WriteError as exc:
            return self._write_error(exc)
        return Response.json({"objectDescribe": self._basic(s), "recentItems": []})

    def _describe(self, req: Request) -> Response:
        try:
            s = self._sobject(req)
        except WriteError as exc:
            return self._write_error(exc)
        fields = [
            {
                "name": f.name,
                "label": f.label or f.name,
                "type": f.type,
                "length": f.length,
                "updateable": f.updateable,
                "createable": f.createable,
                "nillable": f.nillable,
                "externalId": f.external_id and f.name != "Id",
                "idLookup": f.external_id,
                "referenceTo": [f.reference_to] if f.reference_to else [],
                "relationshipName": f.relationship,
            }
            for f in s.fields
        ]
        return Response.json({**self._basic(s), "fields": fields})

    # ------------------------------------------------------------ records
    def _render(self, s: SObject, row: dict[str, Any], fields: list[str] | None = None) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "attributes": {
                "type": s.name,
                "url": f"/services/data/v{self.api_version}/sobjects/{s.name}/{row['Id']}",
            }
        }
        for f in s.fields:
            if fields is None or f.name.lower() in fields:
                rec[f.name] = to_json(row.get(f.name))
        return rec

    def _fields_param(self, s: SObject, req: Request) -> list[str] | None:
        raw = req.arg("fields")
        if raw is None:
            return None
        names = [n.strip() for n in raw.split(",") if n.strip()]
        for n in names:
            if s.field(n) is None:
                raise WriteError("INVALID_FIELD", f"No such column '{n}' on entity '{s.name}'")
        return [n.lower() for n in names]

    def _get_record(self, req: Request) -> Response:
        assert req.match is not None
        rid = req.match.group("rid")
        try:
            s = self._sobject(req)
            fields = self._fields_param(s, req)
            if not is_valid_id(rid):
                raise WriteError(
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: {rid}",
                    status=404,
                )
            with self.store.lock:
                row = self.store.get(s.name, rid) if rid.startswith(s.prefix) else None
                if row is None:
                    raise WriteError("NOT_FOUND", "The requested resource does not exist", status=404)
                return Response.json(self._render(s, row, fields))
        except WriteError as exc:
            return self._write_error(exc)

    def _update(self, req: Request) -> Response:
        assert req.match is not None
        rid = req.match.group("rid")
        try:
            s = self._sobject(req)
            body = self._body(req)
            if not isinstance(body, dict):
                raise WriteError("JSON_PARSER_ERROR", "The request body must be a JSON object")
            if not is_valid_id(rid):
                raise WriteError(
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: {rid}",
                    status=404,
                )
            with self.store.transaction():
                self.store.update(s.name, rid, body)
        except WriteError as exc:
            return self._write_error(exc)
        return Response.empty(204)

    def _external_field(self, s: SObject, name: str) -> str:
        f = s.field(name)
        if f is None or not f.external_id:
            raise WriteError(
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {name}",
                status=404,
            )
        return f.name

    def _get_by_external_id(self, req: Request) -> Response:
        assert req.match is not None
        try:
            s = self._sobject(req)
            fields = self._fields_param(s, req)
            name = self._external_field(s, req.match.group("field"))
            with self.store.lock:
                matches = self.store.find(s.name, name, req.match.group("value"))
                if len(matches) > 1:
                    raise WriteError("MULTIPLE_CHOICES", "more than one record", matches, status=300)
                row = self.store.get(s.name, matches[0]) if matches else None
                if row is None:
                    raise WriteError("NOT_FOUND", "The requested resource does not exist", status=404)
                return Response.json(self._render(s, row, fields))
        except WriteError as exc:
            return self._write_error(exc)

    def _upsert(self, req: Request) -> Response:
        assert req.match is not None
        try:
            s = self._sobject(req)
            name = self._external_field(s, req.match.group("field"))
            body = self._body(req)
            if not isinstance(body, dict):
                raise WriteError("JSON_PARSER_ERROR", "The request body must be a JSON object")
            with self.store.transaction():
                done = self.store.upsert(s.name, name, req.match.group("value"), body)
        except WriteError as exc:
            return self._write_error(exc)
        return Response.json(
            {"id": done.id, "success": True, "errors": [], "created": done.created},
            201 if done.created else 200,
        )

    def _create(self, req: Request) -> Response:
        try:
            s = self._sobject(req)
            body = self._body(req)
            if not isinstance(body, dict):
                raise WriteError("JSON_PARSER_ERROR", "The request body must be a JSON object")
            with self.store.transaction():
                rid = self.store.create(s.name, body)
        except WriteError as exc:
            return self._write_error(exc)
        return Response.json({"id": rid, "success": True, "errors": []}, 201)

    # ------------------------------------------------------------ sObject Collections
    def _collection_get(self, req: Request) -> Response:
        try:
            s = self._sobject(req)
            fields = self._fields_param(s, req)
            if fields is None:
                raise WriteError("MISSING_ARGUMENT", "fields parameter is required")
            ids = [i.strip() for i in (req.arg("ids") or "").split(",") if i.strip()]
            if not ids or len(ids) > 2000:
                raise WriteError(
                    "MISSING_ARGUMENT" if not ids else "EXCEEDED_ID_LIMIT",
                    "ids parameter is required" if not ids else "more than 2000 ids",
                )
            with self.store.lock:
                out = []
                for rid in ids:
                    row = (
                        self.store.get(s.name, rid) if is_valid_id(rid) and rid.startswith(s.prefix) else None
                    )
                    out.append(None if row is None else self._render(s, row, fields))
        except WriteError as exc:
            return self._write_error(exc)
        return Response.json(out)

    def _collection(self, req: Request, one: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
        """Shared loop: ≤200 records, in order (parents before reports), per-record results, allOrNone."""
        try:
            body = self._body(req)
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                raise WriteError("JSON_PARSER_ERROR", 'expected {"allOrNone": …, "records": [...]}')
            records: list[Any] = body["records"]
            if len(records) > MAX_COLLECTION:
                raise WriteError(
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                )
        except WriteError as exc:
            return self._write_error(exc)
        all_or_none = bool(body.get("allOrNone", False))
        results: list[dict[str, Any]] = []
        failed = False
        with self.store.transaction() as journal:
            for rec in records:
                try:
                    if not isinstance(rec, dict):
                        raise WriteError("JSON_PARSER_ERROR", "each record must be a JSON object")
                    results.append(one(rec))
                except WriteError as exc:
                    failed = True
                    results.append({"success": False, "errors": [exc.collection()]})
            if failed and all_or_none:
                self.store.rollback(journal)
                rolled = {
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back "
                    "because not all records were valid and the request was using AllOrNone header",
                    "fields": [],
                }
                for r in results:
                    if r["success"]:
                        r.update(success=False, errors=[rolled])
                        r.pop("created", None)
        return Response.json(results)

    @staticmethod
    def _record_type(rec: dict[str, Any], expected: str | None = None) -> SObject:
        attributes = rec.get("attributes")
        name = attributes.get("type") if isinstance(attributes, dict) else None
        s = sobject(str(name)) if name else None
        if s is None or (expected is not None and s.name != expected):
            raise WriteError("INVALID_TYPE", "Must send a concrete entity type.")
        return s

    def _collection_update(self, req: Request) -> Response:
        def one(rec: dict[str, Any]) -> dict[str, Any]:
            s = self._record_type(rec)
            rid = next((v for k, v in rec.items() if k.lower() == "id"), None)
            if not rid:
                raise WriteError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            values = {k: v for k, v in rec.items() if k.lower() != "id"}
            return {"id": self.store.update(s.name, str(rid), values), "success": True, "errors": []}

        return self._collection(req, one)

    def _collection_create(self, req: Request) -> Response:
        def one(rec: dict[str, Any]) -> dict[str, Any]:
            s = self._record_type(rec)
            return {"id": self.store.create(s.name, rec), "success": True, "errors": []}

        return self._collection(req, one)

    def _collection_upsert(self, req: Request) -> Response:
        assert req.match is not None
        try:
            s = self._sobject(req)
            name = self._external_field(s, req.match.group("field"))
        except WriteError as exc:
            return self._write_error(exc)

        def one(rec: dict[str, Any]) -> dict[str, Any]:
            self._record_type(rec, s.name)
            value = next((v for k, v in rec.items() if k.lower() == name.lower()), None)
            if value is None or value == "":
                raise WriteError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", [name])
            done = self.store.upsert(s.name, name, str(value), rec)
            return {"id": done.id, "success": True, "errors": [], "created": done.created}

        return self._collection(req, one)
