"""Configuration: every problem with its TOML path, secrets by reference, never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from okrsync.cli import main
from okrsync.config import Threshold, load_config, parse_config
from okrsync.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "okrsync.toml"
    path.write_text(text)
    return path


def test_every_problem_is_reported_with_its_toml_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[connections.people]
type = "files"
pth = "people.csv"

[connections.hr]
type = "workdayy"

[jobs.nightly]
source = "people"
targets = ["nowhere"]
max_deletes = "150%"
cycles = "ignore"

[extra]
x = 1
""",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    problems = "\n".join(err.value.problems)
    assert "extra: unknown section" in problems
    assert "connections.people.pth: Extra inputs are not permitted" in problems
    assert "connections.hr.type: unknown connector type 'workdayy'; installed connectors: " in problems
    assert "files" in problems.split("installed connectors:")[1]
    assert "jobs.nightly.max_deletes: max_deletes '150%' is not between 0% and 100%" in problems
    assert "jobs.nightly.cycles:" in problems
    result = CliRunner().invoke(main, ["-c", str(path), "config", "check", "--json"])
    assert result.exit_code == 2
    assert len(json.loads(result.stdout)["problems"]) == len(err.value.problems)


def test_target_reference_to_missing_connection(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[connections.a]\ntype="files"\npath="a.csv"\n[jobs.j]\nsource="a"\ntargets=["b"]\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == ["jobs.j.targets[0]: no connection named 'b'"]


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[state\n")
    with pytest.raises(ConfigError, match=r"okrsync.toml: invalid TOML"):
        load_config(path)


def test_missing_config_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OKRSYNC_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=r"pass -c FILE, set OKRSYNC_CONFIG, or create \./okrsync\.toml"):
        load_config()


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[connections.a]\ntype="files"\npath="sub/a.csv"\n')
    cfg = load_config(path)
    assert cfg.resolve_path("sub/a.csv") == tmp_path.resolve() / "sub/a.csv"


@pytest.mark.parametrize(
    ("value", "population", "limit"), [(10, 1000, 10), ("5%", 1000, 50), ("0%", 10, 0), ("7", 3, 7)]
)
def test_threshold(value: int | str, population: int, limit: int) -> None:
    assert Threshold.parse(value).limit(population) == limit


def test_threshold_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="count"):
        Threshold.parse("lots")


# ---- secrets: resolved from env/file, held as SecretStr, never printed ----
from pydantic import SecretStr  # noqa: E402

from okrsync.config import Secret, resolve_secret  # noqa: E402
from okrsync.connectors.base import ConnectorConfig  # noqa: E402


class _WithSecret(ConnectorConfig):
    password: Secret


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKR_TEST_PW", "s3cr3t-from-env")
    cfg = _WithSecret(type="x", password="${OKR_TEST_PW}")
    assert isinstance(cfg.password, SecretStr)
    assert cfg.password.get_secret_value() == "s3cr3t-from-env"
    assert "s3cr3t" not in repr(cfg) and "s3cr3t" not in str(cfg.model_dump())
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file-secret\n")
    assert resolve_secret(f"file:{secret_file}") == "from-file-secret"


def test_missing_env_secret_is_a_clear_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ValueError, match="environment variable NOT_SET_ANYWHERE is not set"):
        resolve_secret("${NOT_SET_ANYWHERE}")
    with pytest.raises(ValueError, match="cannot read secret file"):
        resolve_secret("file:/nonexistent/secret")


def test_parse_config_collects_job_and_state_problems() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"state": {"pth": "x"}, "jobs": {"j": {"targets": []}}})
    joined = "\n".join(err.value.problems)
    assert "state.pth: Extra inputs are not permitted" in joined
    assert "jobs.j.source: Field required" in joined
