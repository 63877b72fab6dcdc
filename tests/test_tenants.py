"""Tenant registry: folder and PostgreSQL rows, state placement, secrets by reference, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from okrsync import tenants as tenants_mod
from okrsync.cli import main
from okrsync.config import Secret
from okrsync.connectors.files import FilesConfig, FilesConnector
from okrsync.errors import ConfigError
from okrsync.tenants import (
    FolderRegistry,
    check_tenants,
    inline_secrets,
    open_registry,
    state_location,
    tenant_id,
)
from tests.conftest import require_or_skip

GOOD = """
[connections.hr]
type = "files"
path = "data/{name}/people.csv"

[connections.dir]
type = "files"
path = "data/{name}/directory.jsonl"

[jobs.nightly]
source = "hr"
targets = ["dir"]
"""


def write_tenant(folder: Path, name: str, text: str | None = None) -> Path:
    path = folder / f"{name}.toml"
    path.write_text((text or GOOD).format(name=name), encoding="utf-8")
    return path


class SecretConfig(FilesConfig):
    password: Secret | None = None


class SecretConnector(FilesConnector):
    Config = SecretConfig


@pytest.fixture
def with_secret_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tenants_mod.connectors.load

    def load(name: str) -> Any:
        return SecretConnector if name == "files" else real(name)

    monkeypatch.setattr(tenants_mod.connectors, "load", load)


def test_folder_registry_lists_loads_and_places_state(tmp_path: Path) -> None:
    write_tenant(tmp_path, "acme")
    write_tenant(tmp_path, "globex-eu")
    (tmp_path / "_defaults.toml").write_text("# ignored", encoding="utf-8")
    registry = FolderRegistry(tmp_path, state_template=str(tmp_path / "state" / "{tenant}.db"))
    assert registry.names() == ["acme", "globex-eu"]
    config = registry.load("acme")
    assert config.jobs["nightly"].source == "hr" and config.base_dir == tmp_path.resolve()
    assert state_location("acme", config, registry.state_template) == str(tmp_path / "state" / "acme.db")
    pg = "postgresql://db/okrsync?schema=t_{tenant_id}"
    assert state_location("globex-eu", config, pg) == "postgresql://db/okrsync?schema=t_globex_eu"
    # a tenant's own [state] wins over the template
    write_tenant(tmp_path, "own", GOOD + '\n[state]\npath = "own.db"\n')
    own = registry.load("own")
    assert state_location("own", own, pg) == str(tmp_path.resolve() / "own.db")
    with pytest.raises(ConfigError, match="no tenant named 'nobody'"):
        registry.load("nobody")
    with pytest.raises(ConfigError, match="invalid tenant name"):
        tenant_id("Bad Name")
    with pytest.raises(ConfigError, match="does not exist"):
        open_registry(str(tmp_path / "missing"))


def test_inline_secrets_are_found_and_references_pass(with_secret_connector: None) -> None:
    raw = {
        "connections": {
            "a": {"type": "files", "path": "x.csv", "password": "hunter2"},
            "b": {"type": "files", "path": "x.csv", "password": "${WD_PASSWORD}"},
            "c": {"type": "files", "path": "x.csv", "password": "file:/run/secrets/wd"},
        }
    }
    assert inline_secrets(raw) == ["connections.a.password"]


def test_check_reports_per_tenant(tmp_path: Path, with_secret_connector: None) -> None:
    write_tenant(tmp_path, "good")
    write_tenant(
        tmp_path,
        "inline",
        GOOD + '\n[connections.vendor]\ntype = "files"\npath = "v.csv"\npassword = "s3cr3t"\n',
    )
    write_tenant(tmp_path, "broken", GOOD.replace('targets = ["dir"]', 'targets = ["nowhere"]'))
    write_tenant(tmp_path, "nojobs", '[connections.hr]\ntype = "files"\npath = "p.csv"\n')
    (tmp_path / "badtoml.toml").write_text("[jobs\n", encoding="utf-8")
    results = {r.tenant: r for r in check_tenants(FolderRegistry(tmp_path, state_template="/s/{tenant}.db"))}
    assert (
        results["good"].ok and results["good"].jobs == ("nightly",) and results["good"].state == "/s/good.db"
    )
    assert (
        not results["inline"].ok
        and "connections.vendor.password: secret written inline" in results["inline"].problems[0]
    )
    assert "s3cr3t" not in json.dumps(results["inline"].to_dict())
    assert any(
        "jobs.nightly.targets[0]: no connection named 'nowhere'" in p for p in results["broken"].problems
    )
    assert results["nojobs"].problems == ("no [jobs.*] defined: nothing to run",)
    assert "invalid TOML" in results["badtoml"].problems[0]


def test_tenants_cli_list_and_check(tmp_path: Path) -> None:
    write_tenant(tmp_path, "acme")
    write_tenant(tmp_path, "globex")
    runner = CliRunner()
    out = runner.invoke(main, ["tenants", "--registry", str(tmp_path), "list"])
    assert out.exit_code == 0 and out.output.split() == ["acme", "globex"]
    out = runner.invoke(main, ["tenants", "--registry", str(tmp_path), "list", "--json"])
    assert json.loads(out.output)["tenants"] == ["acme", "globex"]
    out = runner.invoke(main, ["tenants", "--registry", str(tmp_path), "check", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["failed"] == 0
    write_tenant(tmp_path, "zbad", GOOD.replace('source = "hr"', 'source = "gone"'))
    out = runner.invoke(main, ["tenants", "--registry", str(tmp_path), "check"])
    assert out.exit_code == 2 and "BAD zbad" in out.output and "3 tenant(s), 1 with problems" in out.output
    out = runner.invoke(main, ["tenants", "--registry", str(tmp_path / "nope"), "list"])
    assert out.exit_code == 2 and "does not exist" in out.output


@pytest.mark.services
def test_postgres_registry_rows_never_hold_secrets(tmp_path: Path, with_secret_connector: None) -> None:
    from tests.state.services import PG_URL, REQUIRE_ENV, fresh_schema, pg_available

    available, reason = pg_available()
    require_or_skip(available, reason, REQUIRE_ENV)
    from okrsync.tenants import PostgresRegistry

    with fresh_schema("okrsync_registry_test") as schema:
        registry = open_registry(f"{PG_URL}?schema={schema}", state_template="/s/{tenant}.db")
        assert isinstance(registry, PostgresRegistry)
        try:
            registry.put("acme", GOOD.format(name="acme"))
            registry.put("globex", GOOD.format(name="globex"), enabled=False)
            with pytest.raises(ConfigError, match=r"written inline: connections\.hr\.password"):
                registry.put(
                    "leaky",
                    GOOD.format(name="leaky").replace(
                        'path = "data/leaky/people.csv"', 'path = "p"\npassword = "pw"'
                    ),
                )
            registry.put(
                "ref",
                GOOD.format(name="ref").replace(
                    'path = "data/ref/people.csv"', 'path = "p"\npassword = "${X_PW}"'
                ),
            )
            assert registry.names() == ["acme", "ref"]
            assert registry.load("acme").jobs["nightly"].targets == ["dir"]
            checks = {r.tenant: r for r in check_tenants(registry)}
            assert checks["acme"].ok and not checks["ref"].ok  # X_PW is not set here
            assert "environment variable X_PW is not set" in " ".join(checks["ref"].problems)
            registry.remove("ref")
            assert registry.names() == ["acme"]
        finally:
            registry.close()
