"""``okrsync.toml`` → validated pydantic models, before any network call.

Every connection is validated by its own connector's ``Config`` model (found through the
plug-in registry), so a typo in ``[connections.workday]`` is reported with its TOML path
instead of surfacing as an HTTP 400 at 2 a.m. Secrets are written as ``${ENV_VAR}`` or
``file:/path`` references, resolved here into ``SecretStr`` and never printed.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from okrsync import connectors
from okrsync.connectors.base import ConnectorConfig
from okrsync.errors import ConfigError
from okrsync.models import Person

DEFAULT_CONFIG_NAMES = ("okrsync.toml",)
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def resolve_secret(value: Any) -> Any:
    """``${VAR}`` → the environment variable, ``file:/path`` → the file's content (stripped)."""
    if isinstance(value, SecretStr) or not isinstance(value, str):
        return value
    m = _ENV_REF.match(value.strip())
    if m:
        name = m.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]
    if value.startswith("file:"):
        path = Path(value[5:]).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {path}: {exc.strerror or exc}") from None
    return value


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and (bool(_ENV_REF.match(value.strip())) or value.startswith("file:"))


Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
"""A config field holding a secret: accepts ``${ENV}``/``file:`` references; repr is masked."""


class StateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(default="okrsync.db", description="SQLite state file (relative to the config file).")
    url: str | None = Field(
        default=None, description="Instead of path: sqlite:///file.db (postgresql:// later)."
    )

    @property
    def location(self) -> str:
        return self.url or self.path


class ReportsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: str | None = Field(default="reports", description="Folder for run-<id>.json/.html (none = off).")


class ScopeFilter(BaseModel):
    """Which people a job manages: canonical field → allowed (include) or refused (exclude) values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    include: dict[str, list[str]] = Field(
        default_factory=dict, description="Field → values a person must have."
    )
    exclude: dict[str, list[str]] = Field(
        default_factory=dict, description="Field → values that exclude a person."
    )

    @field_validator("include", "exclude")
    @classmethod
    def _known_fields(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(Person.model_fields))
        if unknown:
            raise ValueError(
                f"unknown person field(s) {unknown}; use canonical names such as department, status"
            )
        return value

    def matches(self, person: Person) -> bool:
        for name, allowed in self.include.items():
            if str(_field_value(person, name)) not in allowed:
                return False
        return all(str(_field_value(person, name)) not in refused for name, refused in self.exclude.items())


def _field_value(person: Person, name: str) -> Any:
    value = getattr(person, name)
    return getattr(value, "value", value)


class Threshold(BaseModel):
    """A deletion/disable limit: a count (``50``) or a percentage of the target's population (``"5%"``)."""

    model_config = ConfigDict(frozen=True)

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, value: int | str) -> Threshold:
        if isinstance(value, int):
            if value < 0:
                raise ValueError("max_deletes cannot be negative")
            return cls(count=value)
        text = str(value).strip()
        if text.endswith("%"):
            pct = float(text[:-1])
            if not 0 <= pct <= 100:
                raise ValueError(f"max_deletes {text!r} is not between 0% and 100%")
            return cls(percent=pct)
        if text.isdigit():
            return cls(count=int(text))
        raise ValueError(f"max_deletes {value!r} must be a count (50) or a percentage ('5%')")

    def limit(self, population: int) -> int:
        """How many removals are allowed for a target currently holding ``population`` people."""
        if self.count is not None:
            return self.count
        assert self.percent is not None
        return int(population * self.percent / 100)

    def __str__(self) -> str:
        return f"{self.count}" if self.count is not None else f"{self.percent:g}%"


def _threshold(value: Any) -> Threshold:
    return value if isinstance(value, Threshold) else Threshold.parse(value)


ThresholdSetting = Annotated[
    Threshold,
    BeforeValidator(_threshold),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string"}]}),
]


class JobConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="Connection the people come from.")
    targets: list[str] = Field(
        default_factory=list, description="Connections people and managers are pushed to."
    )
    mapping: str | None = Field(
        default=None, description="Mapping for the source (overrides the connection's)."
    )
    max_deletes: ThresholdSetting = Field(
        default="5%",
        validate_default=True,
        description="Removal/disable limit per target: a count or a percentage.",
    )
    removal: Literal["disable", "delete"] = Field(
        default="disable", description="What a removal does in a target."
    )
    inactive_manager: str = Field(
        default="nearest_active", description="Report of an inactive manager goes to …"
    )
    out_of_scope_manager: str = Field(
        default="nearest_active", description="Report of an out-of-scope manager …"
    )
    cycles: Literal["break", "stop"] = Field(
        default="break", description="Reporting-line cycles: break or stop."
    )
    dangling_manager: str = Field(
        default="none", description="Manager id not in the source: none or fallback:<id>."
    )
    scope: ScopeFilter = Field(default_factory=ScopeFilter, description="Which people the job manages.")
    include_inactive: bool = Field(default=True, description="Keep terminated people (targets disable them).")
    okrs: str | None = Field(default=None, description="An OKR file to cascade and push to goal targets.")
    goal_source: str | None = Field(
        default=None,
        description="A goal-system connection (successfactors, workday) the OKRs are read from, "
        "instead of an okrs file: OKRs flow from one goal system to others.",
    )
    goal_targets: list[str] = Field(default_factory=list, description="Connections the OKRs are pushed to.")
    metric_sources: list[str] = Field(
        default_factory=list, description="Connections that compute key-result values (e.g. Salesforce SOQL)."
    )
    cascade_depth: int = Field(
        default=0, ge=0, le=10, description="Levels the OKR cascade goes down (0 = none)."
    )
    cascade_mode: Literal["individual", "team"] = Field(
        default="individual", description="Cascade to people or teams."
    )
    learning_targets: list[str] = Field(
        default_factory=list, description="Connections learning links are pushed to (Viva Learning, xAPI)."
    )
    learning_catalogue: str | None = Field(
        default=None, description="Catalogue file of learning items (YAML/JSON), besides the OKR file's."
    )
    learning_rules: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Rules linking key results to items (see docs/learning.md); added to the OKR file's.",
    )
    full_reconcile_every: int | None = Field(
        default=None, ge=1, description="Force a full pull every N runs."
    )

    @property
    def has_okrs(self) -> bool:
        """OKRs to push or cite come from a file or a goal system."""
        return bool(self.okrs or self.goal_source)

    def hierarchy_policy(self) -> dict[str, str]:
        return {
            "inactive_manager": self.inactive_manager,
            "out_of_scope_manager": self.out_of_scope_manager,
            "cycles": self.cycles,
            "dangling": self.dangling_manager,
        }


class OkrSyncConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: StateConfig = Field(default_factory=StateConfig)
    reports: ReportsConfig = Field(default_factory=ReportsConfig)
    connections: dict[str, ConnectorConfig] = Field(default_factory=dict)
    jobs: dict[str, JobConfig] = Field(default_factory=dict)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    warnings: tuple[str, ...] = Field(default=(), exclude=True)

    def job(self, name: str) -> JobConfig:
        if name not in self.jobs:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise ConfigError(f"no job named {name!r} in the configuration; jobs: {known}")
        return self.jobs[name]

    def connection(self, name: str) -> ConnectorConfig:
        if name not in self.connections:
            known = ", ".join(sorted(self.connections)) or "none"
            raise ConfigError(f"no connection named {name!r} in the configuration; connections: {known}")
        return self.connections[name]

    def resolve_path(self, value: str) -> Path:
        """Relative paths in a config file are relative to that file, not to the working directory."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path


def _loc(prefix: tuple[str, ...], loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in (*prefix, *loc))


def _pydantic_problems(exc: ValidationError, prefix: tuple[str, ...]) -> list[str]:
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        problems.append(f"{_loc(prefix, err['loc'])}: {msg}")
    return problems


def _secret_warnings(name: str, raw: Mapping[str, Any], model: type[ConnectorConfig]) -> list[str]:
    out = []
    for field_name, info in model.model_fields.items():
        if info.annotation is not None and "SecretStr" in str(info.annotation):
            value = raw.get(field_name)
            if isinstance(value, str) and value and not is_reference(value):
                out.append(
                    f"connections.{name}.{field_name}: secret written inline; "
                    'use "${ENV_VAR}" or "file:/path" so it stays out of the file'
                )
    return out


def _learning_rule_problems(job: str, rules: list[dict[str, Any]]) -> list[str]:
    if not rules:
        return []
    from okrsync.learning import parse_rules

    try:
        parse_rules(rules, where=f"jobs.{job}.learning_rules")
    except ConfigError as exc:
        return exc.problems or [exc.message]
    return []


def parse_config(data: Mapping[str, Any], *, base_dir: Path | None = None) -> OkrSyncConfig:
    """Validate a config mapping; every problem is collected (with its TOML path) before raising."""
    problems: list[str] = []
    warnings: list[str] = []
    unknown = sorted(set(data) - {"state", "reports", "connections", "jobs"})
    problems += [f"{key}: unknown section (expected state, reports, connections, jobs)" for key in unknown]

    connections: dict[str, ConnectorConfig] = {}
    for name, raw in dict(data.get("connections") or {}).items():
        if not isinstance(raw, Mapping):
            problems.append(f"connections.{name}: must be a table")
            continue
        type_name = raw.get("type")
        if not type_name:
            problems.append(
                f"connections.{name}.type: missing; installed connectors: {', '.join(connectors.available())}"
            )
            continue
        try:
            cls = connectors.load(str(type_name))
        except ConfigError as exc:
            problems.append(f"connections.{name}.type: {exc.message}")
            continue
        try:
            connections[name] = cls.Config.model_validate(dict(raw))
            warnings += _secret_warnings(name, raw, cls.Config)
        except ValidationError as exc:
            problems += _pydantic_problems(exc, ("connections", name))

    jobs: dict[str, JobConfig] = {}
    for name, raw in dict(data.get("jobs") or {}).items():
        try:
            job = JobConfig.model_validate(dict(raw))
        except ValidationError as exc:
            problems += _pydantic_problems(exc, ("jobs", name))
            continue
        refs = [(job.source, "source")] + [(t, f"targets[{i}]") for i, t in enumerate(job.targets)]
        refs += [(t, f"goal_targets[{i}]") for i, t in enumerate(job.goal_targets)]
        refs += [(t, f"metric_sources[{i}]") for i, t in enumerate(job.metric_sources)]
        if job.goal_source is not None:
            refs.append((job.goal_source, "goal_source"))
            if job.okrs:
                problems.append(f"jobs.{name}.goal_source: give either okrs (a file) or goal_source")
        if job.goal_targets and not job.has_okrs:
            problems.append(f"jobs.{name}.okrs: goal_targets need an OKR file to push (or a goal_source)")
        refs += [(t, f"learning_targets[{i}]") for i, t in enumerate(job.learning_targets)]
        if job.learning_targets and not job.has_okrs:
            problems.append(
                f"jobs.{name}.okrs: learning_targets need OKRs for links to cite (okrs or goal_source)"
            )
        problems += _learning_rule_problems(name, job.learning_rules)
        for ref, where in refs:
            if ref not in (data.get("connections") or {}):
                problems.append(f"jobs.{name}.{where}: no connection named {ref!r}")
        jobs[name] = job

    state = StateConfig()
    try:
        state = StateConfig.model_validate(dict(data.get("state") or {}))
    except ValidationError as exc:
        problems += _pydantic_problems(exc, ("state",))
    reports = ReportsConfig()
    try:
        reports = ReportsConfig.model_validate(dict(data.get("reports") or {}))
    except ValidationError as exc:
        problems += _pydantic_problems(exc, ("reports",))

    if problems:
        raise ConfigError(f"configuration has {len(problems)} problem(s)", problems=problems)
    return OkrSyncConfig(
        state=state,
        reports=reports,
        connections=connections,
        jobs=jobs,
        base_dir=base_dir or Path.cwd(),
        warnings=tuple(warnings),
    )


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``-c FILE``, else ``$OKRSYNC_CONFIG``, else ``./okrsync.toml``."""
    candidate = explicit or os.environ.get("OKRSYNC_CONFIG")
    if candidate:
        path = Path(candidate).expanduser()
        if not path.is_file():
            raise ConfigError(f"configuration file {path} does not exist")
        return path
    for name in DEFAULT_CONFIG_NAMES:
        path = Path.cwd() / name
        if path.is_file():
            return path
    raise ConfigError("no configuration found: pass -c FILE, set OKRSYNC_CONFIG, or create ./okrsync.toml")


def load_config(path: str | os.PathLike[str] | None = None) -> OkrSyncConfig:
    file = find_config(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    return parse_config(data, base_dir=file.parent.resolve())
