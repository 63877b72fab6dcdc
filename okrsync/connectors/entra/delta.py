"""One incremental pull: a ``/users/delta`` round turned into complete records.

The engine *replaces* a person with an incremental record (it does not merge), so every
record emitted here is the user's complete current state. A delta entry is used as it is
when it is provably complete: every selected property present, and the manager known
(``manager@delta`` present: its last non-removed entry, or none). Anything else — a partial
entry (Graph sends "at least the changed properties"), no ``manager@delta`` (manager
unchanged, or none: Graph does not say which), a manager whose employeeId is unknown, or
any change at all when a scope ``filter`` is set (delta cannot filter on it) — is re-read:
``GET /users?$filter=id in (…15 ids…)[ and (filter)]&$select=…&$expand=manager(…)``, 20 of
those per ``$batch`` call. A user a re-read does not return left the scope (or the
directory): it is reported removed (soft).

Cost of a round: the delta pages (one request when nothing changed — the nightly case)
plus ``ceil(re-read / 300)`` ``$batch`` calls. Entries for the same user across pages are
merged (later values win; a removal wins over earlier values, a later entry after a
removal restores the user). The new deltaLink is the cursor; the engine commits it only
after a successful run. An expired token (410, ``syncStateNotFound``, ``resyncRequired``)
turns the pull into a full one, reported as a notice.

With a scope group (``group_id``) each round also lists the group's member ids again
(``ceil(M/999)`` requests; user delta knows nothing of group membership, and group delta
does not flatten nested groups): entries of non-members are dropped, users who left the
group are reported removed (soft), and users who joined are re-read like partial entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from okrsync.connectors.base import Pull, PullMode, RawRecord
from okrsync.connectors.entra.graph import BatchItem, relative_url
from okrsync.connectors.entra.pull import encode_cursor, source_record
from okrsync.errors import ApiError, PaginationError

if TYPE_CHECKING:
    from okrsync.connectors.entra.pull import EntraSource

EXPIRED_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
IDS_PER_READ = 15  # values in one `id in (...)` filter
EXPIRED_NOTICE = "delta token expired; full resync"


def is_expired(exc: ApiError) -> bool:
    return exc.status == 410 or (exc.code or "").lower() in EXPIRED_CODES


def _manager_from_delta(entries: Any) -> str | None:
    """The manager objectId a ``manager@delta`` list ends with (None: removed)."""
    current = None
    for entry in entries or ():
        if isinstance(entry, dict):
            current = None if "@removed" in entry else entry.get("id")
    return current


def _merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    if old is None or "@removed" in new or "@removed" in old:
        return new
    return {**old, **new}


class DeltaRound:
    def __init__(self, source: EntraSource, pull: Pull, state: dict[str, Any]) -> None:
        self.source = source
        self.graph = source.graph
        self.pull = pull
        self.state = state
        by_oid = state.get("employeeIds")
        self.employee_ids: dict[str, str] | None = (
            dict(by_oid) if isinstance(by_oid, dict) else ({} if source.config.id_attribute != "id" else None)
        )
        self.round_eids: dict[str, str] = {}
        self.reread_count = 0

    # ---- the generator the engine iterates ----
    def records(self) -> Iterator[RawRecord]:
        start = self.graph.requests
        try:
            entries, link = self._collect()
        except ApiError as exc:
            if not is_expired(exc):
                raise
            yield from self._resync(start)
            return
        members = self.source.group_members()
        if members is not None:
            entries = self._scope(entries, members)
        yield from self._emit(entries)
        self.pull.cursor = encode_cursor(link, self.source.fingerprint, self.employee_ids, members)
        self.pull.requests += self.graph.requests - start

    def _scope(self, entries: dict[str, dict[str, Any]], members: set[str]) -> dict[str, dict[str, Any]]:
        """The round's entries as the scope group sees them: non-members' changes dropped, leavers
        turned into removals, joiners added as entries to re-read (their delta says nothing)."""
        before = set(self.state.get("members") or ())  # lower-case object ids, as group_members gives
        scoped: dict[str, dict[str, Any]] = {}
        for oid, entry in entries.items():
            key = oid.lower()
            if key in members or ("@removed" in entry and key in before):
                scoped[oid] = entry
        known = {oid.lower() for oid in scoped}
        for oid in before - members - known:
            scoped[oid] = {"id": oid, "@removed": {"reason": "changed"}}  # left the group
        for oid in members - before - known:
            scoped[oid] = {"id": oid}  # joined: no properties, so it is re-read
        return scoped

    def _resync(self, start: int) -> Iterator[RawRecord]:
        self.pull.mode = PullMode.FULL
        self.pull.notices.append(EXPIRED_NOTICE)
        self.pull.requests += self.graph.requests - start
        yield from self.source.full(self.pull)

    def _collect(self) -> tuple[dict[str, dict[str, Any]], str]:
        entries: dict[str, dict[str, Any]] = {}
        link = None
        for page in self.graph.pages(str(self.state["deltaLink"]), None, operation="delta"):
            for entry in page.get("value") or ():
                oid = str(entry.get("id") or "")
                if oid:
                    entries[oid] = _merge(entries.get(oid), entry)
            link = page.get("@odata.deltaLink") or link
        if not link:
            raise PaginationError("delta round ended without @odata.deltaLink", connector="entra")
        return entries, str(link)

    # ---- entries → records ----
    def _emit(self, entries: dict[str, dict[str, Any]]) -> Iterator[RawRecord]:
        cfg = self.source.config
        select = self.source.shape.select
        if self.employee_ids is not None:  # employeeIds learnt in this round name managers too
            for oid, entry in entries.items():
                eid = self.source.identity.of(entry)
                if eid is not None and "@removed" not in entry:
                    self.round_eids[oid] = eid
        live: list[RawRecord] = []
        removed: dict[str, bool] = {}
        reread: list[str] = []
        for oid, entry in entries.items():
            if "@removed" in entry:
                reason = str((entry.get("@removed") or {}).get("reason", "changed"))
                self._remove(oid, reason == "deleted", removed)
                continue
            if cfg.filter or "manager@delta" not in entry or any(name not in entry for name in select):
                reread.append(oid)
                continue
            manager_oid = _manager_from_delta(entry.get("manager@delta"))
            manager_key = self._manager_key(manager_oid)
            if manager_oid is not None and manager_key is None:
                reread.append(oid)  # employeeId mode: a manager we cannot name yet
                continue
            user = {k: v for k, v in entry.items() if k != "manager@delta"}
            if manager_oid is not None:
                user["manager"] = {"id": manager_oid}
            record = self._record(user, manager_key, removed)
            if record is not None:
                live.append(record)
        live += self._reread(reread, removed)
        keys = {r.key for r in live}
        yield from live
        for key, hard in removed.items():
            if key not in keys:  # an id that moved to another object in this round stays
                yield RawRecord(key=key, data={}, removed=True, hard=hard)

    def _manager_key(self, manager_oid: str | None) -> str | None:
        if manager_oid is None:
            return None
        if self.employee_ids is None:
            return manager_oid
        return self.round_eids.get(manager_oid) or self.employee_ids.get(manager_oid)

    def _record(
        self, user: dict[str, Any], manager_key: str | None, removed: dict[str, bool]
    ) -> RawRecord | None:
        oid = user["id"]
        key = self.source.identity.of(user)
        if self.employee_ids is not None:
            before = self.employee_ids.get(oid)
            if key is None:
                self._remove(oid, False, removed)  # no employeeId any more: no longer identifiable
                return None
            if before is not None and before != key:
                removed[before] = False  # the employeeId changed: the old id is gone
            self.employee_ids[oid] = key
        if key is None:
            return None
        return source_record(user, key, manager_key)

    def _remove(self, oid: str, hard: bool, removed: dict[str, bool]) -> None:
        if self.employee_ids is None:
            removed[oid] = hard
            return
        key = self.employee_ids.pop(oid, None)
        if key is not None:
            removed[key] = hard

    def _reread(self, oids: list[str], removed: dict[str, bool]) -> list[RawRecord]:
        """Current state of ``oids`` (15 per filtered GET, 20 GETs per ``$batch`` call)."""
        if not oids:
            return []
        self.reread_count += len(oids)
        shape = self.source.shape
        scope = self.source.config.filter
        items = []
        for k in range(0, len(oids), IDS_PER_READ):
            chunk = oids[k : k + IDS_PER_READ]
            clause = "id in (" + ",".join(f"'{oid}'" for oid in chunk) + ")"
            params = {
                "$filter": f"{clause} and ({scope})" if scope else clause,
                "$select": ",".join(shape.select),
                "$expand": shape.expand,
                "$top": 999,
            }
            items.append(BatchItem("GET", relative_url("/users", params), key=chunk))
        out: list[RawRecord] = []
        for res in self.graph.batch(items, operation="delta re-read"):
            if not res.ok:
                raise ApiError(
                    f"re-reading changed users failed: {res.error}",
                    connector="entra",
                    operation="delta re-read",
                )
            found = {str(u["id"]): u for u in (res.body or {}).get("value") or ()}
            for oid in res.item.key:
                user = found.get(oid)
                if user is None:
                    self._remove(oid, False, removed)  # out of scope now, or gone since the round
                    continue
                record = self._record(user, self.source.identity.of(user.get("manager")), removed)
                if record is not None:
                    out.append(record)
        return out
