"""Drills on the registry (issue 13, items 9, 10): a corrupt pointer is reported and repaired,
empty targets are errors, only loadable self-contained bundles are published or loaded."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from amad.config import build_config
from amad.detector.bundle import load_bundle
from amad.detector.recipe import train_prepared
from amad.errors import ArtifactError
from amad.series.loaders import load_series
from amad.series.windows import build_windows
from amad.storage.registry import Registry
from amad.storage.store import LocalStore
from tests.unit.helpers import run_cli as run
from tests.unit.storage.test_registry import make_bundle

TINY = {
    "data": {"source": "synthetic",
             "synthetic": {"n_channels": 2, "train_steps": 300, "test_steps": 200, "seed": 3}},
    "windows": {"length": 20, "train_stride": 2, "score_stride": 10, "val_fraction": 0.25},
    "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16},
    "train": {"epochs": 1, "batch_size": 16, "max_windows_per_epoch": 16, "device": "cpu"},
}  # fmt: skip


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("bundles")
    out = []
    for seed in (3, 4):
        cfg = build_config({**TINY, "train": {**TINY["train"], "seed": seed}})
        prepared = build_windows(load_series(cfg.data), cfg.windows)
        out.append(train_prepared(cfg, prepared, root / f"b{seed}", progress=False).path)
    return out


def copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / f"copy-{bundle.name}"))


def rewrite_manifest(bundle: Path, edit: dict[str, dict[str, object]]) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"].update(edit)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_a_corrupt_pointer_is_reported_and_promote_or_rollback_repairs_it(
    bundles: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "reg")
    reg = Registry(store, "m")
    v1, v2 = (reg.publish_version(b, run_id="r") for b in bundles)
    reg.promote(v1, run_id="r", reason="first")
    reg.promote(v2, run_id="r", reason="second")
    base = ["--store", str(tmp_path / "reg"), "--model", "m"]
    for attempt in ("rollback", "promote"):
        store.put_bytes(reg.pointer_key, b'{"version": ')  # a torn or tampered pointer
        code, out, err = run(["registry", "list", *base], capsys)
        assert code == 6 and "corrupt" in err and v1 in out and v2 in out
        argv = ["registry", "rollback", *base] if attempt == "rollback" else [
            "registry", "promote", v2, *base]  # fmt: skip
        code, out, err = run(argv, capsys)
        assert code == 0, err
        champ = reg.champion()
        assert champ is not None
        assert champ.version == (v1 if attempt == "rollback" else v2)
    assert [e["generation"] for e in reg.history()] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "argv", [["registry", "rollback", "--to", ""], ["registry", "promote", " "]]
)
def test_empty_targets_are_usage_errors(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run([*argv, "--store", str(tmp_path / "reg")], capsys)
    assert code == 2 and "empty" in err


def test_publish_refuses_a_bundle_that_does_not_load(
    bundles: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = copy(bundles[0], tmp_path)
    (bad / "config.yaml").write_text("model: {d_model: -1}\n")  # consistent hashes, bad content
    digest = hashlib.sha256((bad / "config.yaml").read_bytes()).hexdigest()
    rewrite_manifest(bad, {"config.yaml": {"sha256": digest, "bytes": 0}})
    code, _, err = run(["registry", "publish", str(bad), "--store", str(tmp_path / "reg")], capsys)
    assert code == 6 and "config.yaml" in err
    assert Registry(LocalStore(tmp_path / "reg"), "amad").list_versions() == []


def test_symlinks_and_outside_paths_are_refused_on_publish_and_load(
    bundles: list[Path], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of any bundle")
    reg = Registry(LocalStore(tmp_path / "reg"), "m")
    linked = copy(bundles[0], tmp_path)
    (linked / "history.json").unlink()
    (linked / "history.json").symlink_to(secret)
    outside = copy(bundles[1], tmp_path)
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    rewrite_manifest(outside, {"../secret.txt": {"sha256": digest, "bytes": 22}})
    for bad in (linked, outside):
        with pytest.raises(ArtifactError, match=r"symlink|outside"):
            reg.publish_version(bad, run_id="r", check=load_bundle)
        with pytest.raises(ArtifactError, match=r"symlink|outside"):
            load_bundle(bad)
    assert reg.list_versions() == []


def test_a_challenger_without_a_decision_leaves_its_data_version_to_retry(tmp_path: Path) -> None:
    reg = Registry(LocalStore(tmp_path / "reg"), "m")
    decided = reg.publish_version(make_bundle(tmp_path / "a", "1"), run_id="r1", data_version="d1")
    reg.record_decision({"challenger_version": decided, "promote": False}, run_id="r1")
    # run r2 trained and published on d2, then died before champion/challenger decided
    reg.publish_version(make_bundle(tmp_path / "b", "2"), run_id="r2", data_version="d2")
    assert reg.decided_data_versions() == ["d1"]
