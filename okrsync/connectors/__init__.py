"""Connector registry: built-ins and third-party plug-ins load the same way, through entry points.

A connector package declares, in its ``pyproject.toml``::

    [project.entry-points."okrsync.connectors"]
    mysystem = "mypackage.connector:MySystemConnector"
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from okrsync.connectors.base import Connector, ConnectorConfig, ConnectorContext
from okrsync.errors import ConfigError

ENTRY_POINT_GROUP = "okrsync.connectors"


@cache
def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Names of every installed connector, built-in or plug-in."""
    return sorted(_entry_points())


def load(name: str) -> type[Connector]:
    """The connector class registered under ``name``; an unknown name lists the installed ones."""
    eps = _entry_points()
    if name not in eps:
        raise ConfigError(
            f"unknown connector type {name!r}; installed connectors: {', '.join(available()) or 'none'}"
        )
    try:
        cls = eps[name].load()  # type: ignore[attr-defined]
    except Exception as exc:  # a broken plug-in must not take the others down
        raise ConfigError(f"connector {name!r} failed to load: {exc}") from exc
    if not (isinstance(cls, type) and hasattr(cls, "Config")):
        raise ConfigError(f"connector {name!r} is not a connector class (it has no Config model)")
    return cls


def create(name: str, config: ConnectorConfig, context: ConnectorContext) -> Connector:
    return load(config.type)(config, context)


__all__ = ["ENTRY_POINT_GROUP", "Connector", "ConnectorConfig", "ConnectorContext", "available", "load"]
