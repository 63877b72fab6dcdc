"""OrgSource: Users through ``query_all_iter``, full or incremental on a modstamp watermark.

One SOQL query per pull. The canonical id is ``id_field`` (``EmployeeNumber`` by default, so
Salesforce joins with the HRIS), and the manager is read through the ``Manager`` relationship in
the same id space (``Manager.EmployeeNumber``) — no second pass to translate ``ManagerId``.
Users without a value in ``id_field`` (integration, automated-process and guest users) cannot
be named in that space and are left out by the query itself.

Incremental pulls ask for ``{modstamp_field} >= cursor`` where the cursor is the watermark of
the previous run (taken by the engine at that run's *start*, floored to the second because
Salesforce keeps whole seconds), so a change made while a run was reading is read again next
time rather than lost. Users are deactivated, never deleted, so there are no removals.
"""

# SOQL text is assembled from constant field names and validated config; data values only enter
# through soql.quote / soql.quote_id, which S608 cannot see.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from okrsync.connectors.base import Pull, PullMode, PullRequest, RawRecord
from okrsync.connectors.salesforce.client import SalesforceClient
from okrsync.connectors.salesforce.config import SalesforceConfig
from okrsync.errors import ConfigError

USER_FIELDS: tuple[str, ...] = (
    "Id",
    "Username",
    "Email",
    "FirstName",
    "LastName",
    "Name",
    "ManagerId",
    "IsActive",
    "Title",
    "Department",
    "Division",
    "City",
    "EmployeeNumber",
    "FederationIdentifier",
    "LastModifiedDate",
)


def soql_datetime(value: datetime) -> str:
    """A SOQL dateTime literal in UTC, whole seconds (``2024-05-15T12:00:00Z``)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_cursor(cursor: str) -> datetime:
    try:
        value = datetime.fromisoformat(cursor.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"the saved Salesforce cursor {cursor!r} is not an ISO timestamp; run once with --full"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def user_query(config: SalesforceConfig, since: datetime | None = None) -> str:
    """The one SOQL query of a pull (``since``: incremental lower bound, inclusive)."""
    fields = list(USER_FIELDS)
    if config.modstamp_field not in fields:
        fields.append(config.modstamp_field)
    if config.id_field != "Id":
        fields.append(f"Manager.{config.id_field}")
    where = []
    if config.id_field != "Id":
        where.append(f"{config.id_field} != null")
    if config.user_filter:
        where.append(f"({config.user_filter})")
    if since is not None:
        where.append(f"{config.modstamp_field} >= {soql_datetime(since)}")
    text = f"SELECT {', '.join(fields)} FROM User"
    if where:
        text += " WHERE " + " AND ".join(where)
    return text


def clean_record(record: Any) -> dict[str, Any]:
    """simple-salesforce's OrderedDicts → plain dicts without the ``attributes`` envelopes."""
    out: dict[str, Any] = {}
    for key, value in dict(record).items():
        if key == "attributes":
            continue
        out[key] = clean_record(value) if isinstance(value, dict) else value
    return out


class UserPuller:
    """Builds :class:`Pull` objects for the connector."""

    def __init__(self, config: SalesforceConfig, client: SalesforceClient) -> None:
        self.config = config
        self.client = client

    def pull(self, request: PullRequest) -> Pull:
        since = None
        mode = PullMode.FULL
        if request.cursor and not request.full:
            since = parse_cursor(request.cursor) - timedelta(seconds=self.config.cursor_lookback_seconds)
            mode = PullMode.INCREMENTAL
        watermark = soql_datetime(request.watermark)
        pull = Pull(records=iter(()), mode=mode, cursor=watermark)
        pull.records = self._records(pull, user_query(self.config, since))
        return pull

    def _records(self, pull: Pull, soql: str) -> Iterator[RawRecord]:
        start = self.client.requests
        id_field = self.config.id_field
        try:
            for record in self.client.query_iter(soql, operation="pull users"):
                data = clean_record(record)
                sf_id = str(data.get("Id"))
                data["external_ids"] = {"salesforce": sf_id}
                key = data.get(id_field)
                yield RawRecord(
                    key=str(key) if key not in (None, "") else sf_id,
                    data=data,
                    ref=f"salesforce:User/{sf_id}",
                )
        finally:
            pull.requests = self.client.requests - start
        pull.notices.append(f"Salesforce API usage: {self.client.usage.describe()}")
