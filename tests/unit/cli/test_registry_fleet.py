"""``amad registry list`` shows the fleet: entity, champion, data version, metric, age."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from amad.cli import cli
from amad.storage.registry import Registry
from amad.storage.store import LocalStore
from tests.unit.storage.test_registry import make_bundle


def _fleet(root: Path) -> tuple[LocalStore, str]:
    store = LocalStore(root / "store")
    a = Registry(store, "amad", entity="pump-a")
    version = a.publish_version(make_bundle(root / "a", "a"), run_id="r", data_version="dv-aaaa")
    decision = {"evaluation": {"metric": "vus_pr", "challenger": 0.4242}}
    a.promote(version, run_id="r", reason="first", decision=decision)
    b = Registry(store, "amad", entity="pump-b")
    b.publish_version(make_bundle(root / "b", "b"), run_id="r", data_version="dv-bbbb")
    return store, version


def test_list_shows_one_row_per_entity(tmp_path: Path) -> None:
    store, version = _fleet(tmp_path)
    result = CliRunner().invoke(cli, ["registry", "list", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert "fleet: 2 entities, 1 with a champion" in result.output
    row_a = next(line for line in result.output.splitlines() if "pump-a" in line)
    assert version in row_a and "dv-aaaa" in row_a and "0.4242" in row_a
    row_b = next(line for line in result.output.splitlines() if "pump-b" in line)
    assert "none" in row_b


def test_list_one_entity_and_json(tmp_path: Path) -> None:
    store, version = _fleet(tmp_path)
    args = ["registry", "list", "--store", str(store.root)]
    one = CliRunner().invoke(cli, [*args, "--entity", "pump-a"])
    assert one.exit_code == 0 and f"* {version}" in one.output and "fleet:" not in one.output
    out = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    assert [r["entity"] for r in out["fleet"]] == ["pump-a", "pump-b"]
    assert out["fleet"][0]["champion"] == version and out["fleet"][1]["champion"] is None
