"""``amad registry ...`` on a local store, through the real CLI group and exit-code mapping."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from amad.cli import cli, main
from amad.config import build_config
from amad.detector.recipe import train_prepared
from amad.series.loaders import load_series
from amad.series.windows import build_windows
from amad.storage.registry import Registry
from amad.storage.store import LocalStore

TINY = {
    "data": {"synthetic": {"n_channels": 2, "train_steps": 300, "test_steps": 200}},
    "windows": {"length": 20, "train_stride": 2, "score_stride": 10},
    "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16},
    "train": {"epochs": 1, "batch_size": 16, "max_windows_per_epoch": 16, "device": "cpu"},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real, loadable bundles (publish loads a bundle before accepting it)."""
    root = tmp_path_factory.mktemp("trained")
    out = {}
    for seed in ("1", "2"):
        cfg = build_config({**TINY, "train": {**TINY["train"], "seed": int(seed)}})
        prepared = build_windows(load_series(cfg.data), cfg.windows)
        out[seed] = train_prepared(cfg, prepared, root / seed, progress=False).path
    return out


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_publish_promote_list_rollback_fetch(tmp_path: Path, trained: dict[str, Path]) -> None:
    store = ["--store", str(tmp_path / "reg"), "--model", "demo"]
    shutil.copytree(trained["1"], tmp_path / "b1")
    v1 = run(
        "registry",
        "publish",
        str(tmp_path / "b1"),
        *store,
        "--data-version",
        "d1",
    ).strip()
    v2 = run("registry", "publish", str(trained["2"]), *store).strip()
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


def test_store_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: dict[str, Path]
) -> None:
    monkeypatch.setenv("AMAD_STORE", str(tmp_path / "reg"))
    v = run("registry", "publish", str(trained["1"]), "--model", "m").strip()
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


def test_set_overrides_the_store_and_model_like_every_other_command(
    tmp_path: Path, trained: dict[str, Path]
) -> None:
    sets = ["--set", f"publish.local_root={tmp_path / 'reg'}", "--set", "publish.model_name=viaset"]
    version = run("registry", "publish", str(trained["1"]), *sets).strip()
    run("registry", "promote", version, *sets)
    champion = Registry(LocalStore(tmp_path / "reg"), "viaset").champion()
    assert champion is not None and champion.version == version
    assert version in run("registry", "show", version, *sets)
