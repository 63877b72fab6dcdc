"""A third-party connector is discovered exactly like the built-ins: through entry points."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from okrsync import connectors
from okrsync.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "okrsync-example-plugin"


@pytest.fixture
def installed_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What pip would leave behind: a dist-info with entry_points.txt, and the package importable."""
    dist = tmp_path / "okrsync_example_plugin-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: okrsync-example-plugin\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(
        "[okrsync.connectors]\nyaml-people = okrsync_example.connector:YamlPeopleConnector\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    connectors._entry_points.cache_clear()
    yield
    connectors._entry_points.cache_clear()
    sys.modules.pop("okrsync_example.connector", None)


def test_plugin_is_listed_with_its_capabilities(installed_example: None) -> None:
    result = CliRunner().invoke(main, ["connectors", "--json"])
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["yaml-people"]["capabilities"] == ["OrgSource"]
    assert "files" in rows


def test_plugin_config_is_validated_and_it_syncs(installed_example: None, tmp_path: Path) -> None:
    (tmp_path / "people.yaml").write_text("people:\n  - {id: '1'}\n  - {id: '2', manager_id: '1'}\n")
    bad = tmp_path / "bad.toml"
    bad.write_text('[connections.p]\ntype = "yaml-people"\nfile = "people.yaml"\n')
    result = CliRunner().invoke(main, ["-c", str(bad), "config", "check"])
    assert result.exit_code == 2 and "connections.p.path: Field required" in result.stderr
    good = tmp_path / "okrsync.toml"
    good.write_text(
        '[connections.p]\ntype = "yaml-people"\npath = "people.yaml"\n'
        '[connections.out]\ntype = "files"\npath = "out.jsonl"\n'
        '[jobs.j]\nsource = "p"\ntargets = ["out"]\n'
    )
    result = CliRunner().invoke(main, ["-c", str(good), "sync", "j", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["targets"]["out"]["counts"] == {"create": 2}


def test_unknown_connector_lists_installed_ones() -> None:
    with pytest.raises(Exception, match=r"installed connectors: .*files"):
        connectors.load("sap-hana-hr")
