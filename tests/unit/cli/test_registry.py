"""``amad registry ...`` on a local store, through the real CLI group and exit-code mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from amad.cli import cli, main
from amad.storage.registry import Registry
from amad.storage.store import LocalStore
from tests.unit.storage.test_registry import make_bundle


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_publish_promote_list_rollback_fetch(tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "reg"), "--model", "demo"]
    v1 = run(
        "registry",
        "publish",
        str(make_bundle(tmp_path / "b1", "1")),
        *store,
        "--data-version",
        "d1",
    ).strip()
    v2 = run("registry", "publish", str(make_bundle(tmp_path / "b2", "2")), *store).strip()
    assert "generation 1" in run("registry", "promote", v1, *store)
    assert "generation 2" in run("registry", "promote", v2, *store, "--reason", "better")
    listing = run("registry", "list", *store)
    assert f"* {v2}" in listing and f"  {v1}" in listing and "data=d1" in listing
    data = json.loads(run("registry", "list", *store, "--json"))
    assert data["champion"]["version"] == v2 and len(data["versions"]) == 2
    shown = json.loads(run("registry", "show", v1, *store, "--verify"))
    assert shown["verified"] and not shown["is_champion"]
    assert v1 in run("registry", "rollback", *store)
    out = tmp_path / "fetched"
    run("registry", "fetch", "champion", str(out), *store)
    assert (out / "manifest.json").read_bytes() == (tmp_path / "b1" / "manifest.json").read_bytes()


def test_store_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMAD_STORE", str(tmp_path / "reg"))
    v = run("registry", "publish", str(make_bundle(tmp_path / "b", "1")), "--model", "m").strip()
    assert Registry(LocalStore(tmp_path / "reg"), "m").show(v).version == v


def test_library_errors_become_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["registry", "rollback", "--store", str(tmp_path / "empty"), "--model", "m"])
    assert info.value.code == 10  # PromotionError: no earlier champion
    assert "no earlier champion" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(
            [
                "registry",
                "show",
                "20260101T000000Z-000000000000",
                "--store",
                str(tmp_path),
                "--model",
                "m",
            ]
        )
    assert info.value.code == 6  # ArtifactError: no such complete version
