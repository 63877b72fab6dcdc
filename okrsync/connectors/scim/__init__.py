"""SCIM 2.0 connector: provision people and reporting lines into any SCIM service, or read from one.

* target (``OrgTarget`` + ``OrgReader``): Users created, minimally PATCHed (a read-modify-write
  PUT where the service has no PATCH) and deactivated,
  core + enterprise extension (``manager.value`` = the manager's SCIM id), matched by
  ``externalId`` (default), ``userName`` or ``employeeNumber``; ``/Bulk`` with ``bulkId``
  references when the service announces it; ``If-Match`` when it versions resources.
* org units as Groups (``groups = "department" | "org_unit"``, off by default): one Group per
  value, owned through ``externalId = okrsync:<kind>:<value>``, members PATCHed after the users.
* source (``OrgSource``): every User, paged by 1-based ``startIndex``, manager translated to
  the canonical id space.

See docs/connectors/scim.md. Modules: ``config`` (the connection), ``client`` (HTTP, auth,
discovery, typed errors), ``resource`` (pure attribute handling), ``target``, ``bulk``,
``groups``, ``source``.
"""

from __future__ import annotations

from typing import ClassVar

from okrsync.connectors.base import Connector, ConnectorConfig, ConnectorContext
from okrsync.connectors.scim.client import (
    Capabilities,
    ScimClient,
    ScimConflict,
    ScimError,
    ScimInvalidValue,
    ScimNotFound,
    ScimPayloadTooLarge,
    ScimPreconditionFailed,
)
from okrsync.connectors.scim.config import ScimConfig
from okrsync.connectors.scim.groups import GroupSync
from okrsync.connectors.scim.source import ScimSourceMixin
from okrsync.connectors.scim.target import Entry, PushMapping, ScimTargetMixin
from okrsync.errors import ConfigError
from okrsync.mapping import load_mapping


class ScimConnector(ScimSourceMixin, ScimTargetMixin, Connector):
    """SCIM 2.0 service (RFC 7643/7644): Users with the enterprise extension, as source or target."""

    name = "scim"
    Config: ClassVar[type[ConnectorConfig]] = ScimConfig
    default_mapping = "scim"

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, ScimConfig)
        self.cfg = config
        self.client = ScimClient(config, rate_limiter=context.rate_limiter)
        push = config.push_mapping
        if push.endswith(".toml") and not push.startswith("/"):
            push = str(context.base_dir / push)
        try:
            self.push = PushMapping(load_mapping(push), config.match_attribute)
        except ValueError as exc:
            raise ConfigError(f"connections.{context.connection_name}.push_mapping: {exc}") from None
        self.match_attribute = config.match_attribute
        self.lookup_batch = config.lookup_batch
        self.batch_size = config.batch_size
        self.groups = GroupSync(self.client, config.groups) if config.groups != "none" else None
        self.managed_fields = self.push.managed_fields()
        if self.groups is not None and self.groups.field not in self.managed_fields:
            # the engine must notice a change of the grouping field even when no SCIM attribute holds it
            *fields, manager = self.managed_fields
            self.managed_fields = (*fields, self.groups.field, manager)
        self._entries: dict[str, Entry] = {}
        self._by_match: dict[str, Entry] = {}
        self._complete = False

    def request_counts(self) -> dict[str, int]:
        """Requests this connection sent: ``discovery`` and ``total`` (retries included)."""
        return {"discovery": self.client.discovery_requests, "total": self.client.stats.requests}

    def group_counts(self) -> dict[str, int]:
        """Group writes that succeeded on this connection: ``create`` and ``update`` (membership).

        The run report counts them in ``written`` and lists failures in ``failed``; this breaks
        them down for integrators and tests. All zero when ``groups = "none"``.
        """
        return dict(self.groups.counts) if self.groups is not None else {"create": 0, "update": 0}

    def close(self) -> None:
        self._complete = False
        self._entries.clear()
        self._by_match.clear()
        self.client.close()


__all__ = [
    "Capabilities",
    "ScimClient",
    "ScimConfig",
    "ScimConflict",
    "ScimConnector",
    "ScimError",
    "ScimInvalidValue",
    "ScimNotFound",
    "ScimPayloadTooLarge",
    "ScimPreconditionFailed",
]
