"""Tenant registry: many organisations' okrsync configs, one per tenant, for a fleet of workers.

A tenant is a name plus an ordinary okrsync configuration (``[state]``, ``[connections.*]``,
``[jobs.*]``). Two places can hold them:

- a **folder** of ``TENANT.toml`` files (:class:`FolderRegistry`): the file name is the tenant,
  relative paths inside are relative to the folder, exactly as for ``okrsync -c TENANT.toml``;
- **PostgreSQL rows** (:class:`PostgresRegistry`): table ``tenants`` in schema
  ``okrsync_registry`` (name, TOML text, enabled, updated_at), for deployments whose control
  plane writes tenants through SQL.

Secrets are held by reference only: ``${ENV_VAR}`` or ``file:/path``, resolved on the worker
when the tenant's config is loaded. :meth:`PostgresRegistry.put` refuses a config with a secret
written inline, so no row ever holds one; ``okrsync tenants check`` reports inline secrets in
folder files as problems.

Where a tenant's state lives: its own ``[state]`` section if it has one, else the registry's
``state_template`` with ``{tenant}`` (the name) and ``{tenant_id}`` (the name as an SQL
identifier: ``-`` → ``_``) filled in, e.g. ``postgresql://db/okrsync?schema=t_{tenant_id}``
(one PostgreSQL schema per tenant) or ``/var/lib/okrsync/{tenant}.db`` (one SQLite file each).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from okrsync import connectors
from okrsync.config import OkrSyncConfig, is_reference, parse_config
from okrsync.errors import ConfigError, OkrSyncError

__all__ = [
    "FolderRegistry",
    "PostgresRegistry",
    "TenantCheck",
    "TenantRegistry",
    "check_tenants",
    "inline_secrets",
    "open_registry",
    "state_location",
    "tenant_id",
]

_TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


def validate_name(name: str) -> str:
    """Tenant names become file names, schema names and lock keys: keep them boring."""
    if not _TENANT_NAME.match(name):
        raise ConfigError(
            f"invalid tenant name {name!r}: use 1-48 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def tenant_id(name: str) -> str:
    """The tenant name as an SQL identifier part (``acme-eu`` → ``acme_eu``)."""
    return validate_name(name).replace("-", "_")


def inline_secrets(data: Mapping[str, Any]) -> list[str]:
    """TOML paths of secrets written inline (not ``${ENV}``/``file:``) in a raw config mapping."""
    found = []
    for name, raw in dict(data.get("connections") or {}).items():
        if not isinstance(raw, Mapping) or not raw.get("type"):
            continue
        try:
            model = connectors.load(str(raw["type"])).Config
        except ConfigError:
            continue  # an unknown type is reported by parse_config
        for field_name, info in model.model_fields.items():
            value = raw.get(field_name)
            secret = "SecretStr" in str(info.annotation)
            if secret and isinstance(value, str) and value and not is_reference(value):
                found.append(f"connections.{name}.{field_name}")
    return found


def state_location(name: str, config: OkrSyncConfig, state_template: str | None) -> str:
    """Where this tenant's state store is: its own ``[state]``, else the registry's template."""
    own = config.state
    if own.model_fields_set or state_template is None:
        location = own.location
        if "://" not in location and location != ":memory:":
            location = str(config.resolve_path(location))
        return location
    filled = state_template.format(tenant=validate_name(name), tenant_id=tenant_id(name))
    if "://" not in filled:
        filled = str(Path(filled).expanduser())
    return filled


@dataclasses.dataclass(frozen=True)
class TenantCheck:
    """The outcome of validating one tenant's config (``okrsync tenants check``)."""

    tenant: str
    ok: bool
    jobs: tuple[str, ...] = ()
    state: str | None = None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@runtime_checkable
class TenantRegistry(Protocol):
    """Where tenants come from; workers and the CLI only need these four things."""

    state_template: str | None

    def names(self) -> list[str]: ...

    def raw(self, name: str) -> dict[str, Any]: ...

    def load(self, name: str) -> OkrSyncConfig: ...

    def describe(self) -> str: ...


def _load_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None


class FolderRegistry:
    """One ``TENANT.toml`` per tenant in ``folder`` (files starting with ``_`` or ``.`` are ignored)."""

    def __init__(self, folder: str | Path, *, state_template: str | None = None) -> None:
        self.folder = Path(folder).expanduser()
        self.state_template = state_template
        if not self.folder.is_dir():
            raise ConfigError(f"tenant folder {self.folder} does not exist")

    def describe(self) -> str:
        return str(self.folder)

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.toml") if not p.name.startswith(("_", ".")))

    def path(self, name: str) -> Path:
        return self.folder / f"{validate_name(name)}.toml"

    def raw(self, name: str) -> dict[str, Any]:
        path = self.path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"no tenant named {name!r} in {self.folder}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        return _load_toml(text, str(path))

    def load(self, name: str) -> OkrSyncConfig:
        return parse_config(self.raw(name), base_dir=self.folder.resolve())


class PostgresRegistry:
    """Tenants as rows: ``okrsync_registry.tenants (name, config TOML, enabled, updated_at)``.

    ``base_dir`` is what relative paths in the stored configs are relative to. The table is
    created on first use. Writing goes through :meth:`put`, which refuses inline secrets.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = "okrsync_registry",
        state_template: str | None = None,
        base_dir: str | Path | None = None,
    ) -> None:
        import psycopg
        from psycopg import sql

        from okrsync.state.postgres import redact_url, split_schema

        dsn, from_url = split_schema(url)
        self.schema = from_url if "schema=" in url else schema
        self.url = redact_url(dsn)
        self.state_template = state_template
        self.base_dir = Path(base_dir).expanduser() if base_dir else Path.cwd()
        self._sql = sql
        try:
            self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
            with self._conn.transaction():
                self._conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
                self._conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {}.tenants (name TEXT PRIMARY KEY,"
                        " config TEXT NOT NULL, enabled BOOLEAN NOT NULL DEFAULT TRUE,"
                        " updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                    ).format(sql.Identifier(self.schema))
                )
        except psycopg.Error as exc:
            raise ConfigError(f"tenant registry {self.url}: {str(exc).strip().splitlines()[0]}") from None

    def _table(self) -> Any:
        return self._sql.SQL("{}.tenants").format(self._sql.Identifier(self.schema))

    def describe(self) -> str:
        return f"{self.url} (schema {self.schema})"

    def close(self) -> None:
        self._conn.close()

    def names(self) -> list[str]:
        query = self._sql.SQL("SELECT name FROM {} WHERE enabled ORDER BY name").format(self._table())
        return [str(r[0]) for r in self._conn.execute(query)]

    def raw(self, name: str) -> dict[str, Any]:
        query = self._sql.SQL("SELECT config FROM {} WHERE name = %s").format(self._table())
        row = self._conn.execute(query, (name,)).fetchone()
        if row is None:
            raise ConfigError(f"no tenant named {name!r} in {self.describe()}")
        return _load_toml(str(row[0]), f"tenant {name}")

    def load(self, name: str) -> OkrSyncConfig:
        return parse_config(self.raw(name), base_dir=self.base_dir)

    def put(self, name: str, toml_text: str, *, enabled: bool = True) -> None:
        """Add or replace a tenant; refused (nothing stored) if any secret is written inline."""
        data = _load_toml(toml_text, f"tenant {validate_name(name)}")
        inline = inline_secrets(data)
        if inline:
            raise ConfigError(
                f"tenant {name}: secrets must be references (${{ENV}} or file:/path), never stored in the "
                f"registry; written inline: {', '.join(inline)}"
            )
        query = self._sql.SQL(
            "INSERT INTO {} (name, config, enabled, updated_at) VALUES (%s, %s, %s, now())"
            " ON CONFLICT (name) DO UPDATE SET config = excluded.config, enabled = excluded.enabled,"
            " updated_at = excluded.updated_at"
        ).format(self._table())
        self._conn.execute(query, (name, toml_text, enabled))

    def remove(self, name: str) -> None:
        self._conn.execute(self._sql.SQL("DELETE FROM {} WHERE name = %s").format(self._table()), (name,))


def open_registry(location: str, *, state_template: str | None = None) -> TenantRegistry:
    """A folder path, or ``postgresql://…[?schema=okrsync_registry]`` for registry rows."""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresRegistry(location, state_template=state_template)
    return FolderRegistry(location, state_template=state_template)


def check_tenants(registry: TenantRegistry) -> list[TenantCheck]:
    """Validate every tenant's config (no network calls); one result per tenant, never raises."""
    out = []
    for name in registry.names():
        problems: list[str] = []
        warnings: list[str] = []
        jobs: tuple[str, ...] = ()
        state = None
        try:
            validate_name(name)
            raw = registry.raw(name)
            problems += [
                f"{path}: secret written inline; use ${{ENV}} or file:/path" for path in inline_secrets(raw)
            ]
            config = parse_config(raw, base_dir=getattr(registry, "folder", None) or Path.cwd())
            jobs = tuple(sorted(config.jobs))
            if not jobs:
                problems.append("no [jobs.*] defined: nothing to run")
            warnings += [w for w in config.warnings if "secret written inline" not in w]
            state = _redacted(state_location(name, config, registry.state_template))
        except ConfigError as exc:
            problems += list(exc.problems) if getattr(exc, "problems", None) else [exc.message]
        except OkrSyncError as exc:
            problems.append(str(exc))
        out.append(TenantCheck(name, not problems, jobs, state, tuple(problems), tuple(warnings)))
    return out


def _redacted(location: str) -> str:
    if "://" in location and "@" in location:
        from okrsync.errors import redact_text

        return redact_text(re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", location))
    return location
