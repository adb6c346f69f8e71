"""The model bundle: round trip, atomic writes, and refusal of tampered/incomplete bundles."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import amad.detector.bundle as artifacts
from amad.config import build_config
from amad.detector.bundle import FILES, MANIFEST, load_bundle, save_bundle, verify_bundle
from amad.detector.scoring import score_series
from amad.detector.thresholds import Threshold
from amad.errors import ArtifactError, DataError
from amad.nn.model import AMAD
from amad.series.windows import Scaler

CFG = build_config(
    {
        "windows": {"length": 20, "score_stride": 10},
        "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16},
        "score": {"orientation": "paper"},
    }
)
N_CH = 3


def _raw(n: int = 120, seed: int = 0) -> np.ndarray:
    return (10.0 + 3.0 * np.random.default_rng(seed).normal(size=(n, N_CH))).astype(np.float32)


@pytest.fixture
def model() -> AMAD:
    torch.manual_seed(0)
    return AMAD(CFG.model, n_channels=N_CH).eval()


@pytest.fixture
def bundle_dir(tmp_path: Path, model: AMAD) -> Path:
    return save_bundle(
        tmp_path / "bundle",
        model=model,
        config=CFG,
        scaler=Scaler().fit(_raw(seed=1)),
        threshold=Threshold(value=0.5, method="percentile", kind="association",
                            anomaly_ratio=1.0, n_fit=100),
        history=[{"epoch": 0.0, "val_rec": 0.3}],
        data_fingerprint="ab" * 32,
        extra_metrics={"val_rec": 0.3, "test_auc_pr": float("nan")},
    )  # fmt: skip


def test_bundle_round_trip_scores_like_the_original_model(bundle_dir: Path, model: AMAD) -> None:
    b = load_bundle(bundle_dir)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[k], v, rtol=0, atol=0)
    assert b.config == CFG and b.n_channels == N_CH and b.threshold.value == 0.5
    assert b.history == [{"epoch": 0.0, "val_rec": 0.3}]
    assert b.metrics == {"val_rec": 0.3, "test_auc_pr": None}  # NaN stored as JSON null
    x = _raw(seed=2)
    scored = b.score(x)
    expected = score_series(model, b.scaler.transform(x), CFG.score, CFG.windows).association
    np.testing.assert_allclose(scored.scores, expected, rtol=1e-6)
    assert scored.scores.shape == (120,) and scored.flags.dtype == bool
    np.testing.assert_array_equal(scored.flags, scored.scores > 0.5)


def test_manifest_describes_every_file(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted(FILES)
    assert manifest["n_channels"] == N_CH and manifest["data_fingerprint"] == "ab" * 32
    assert {"package_version", "torch_version"} <= set(manifest)
    assert not {"created_at", "git_sha"} & set(manifest)  # provenance: the run's, not the bundle's
    assert sorted(p.name for p in bundle_dir.iterdir()) == sorted([*FILES, MANIFEST])
    assert not [p for p in bundle_dir.parent.iterdir() if p.name.startswith(".")]


def test_the_same_inputs_save_byte_identical_bundles(
    bundle_dir: Path, model: AMAD, tmp_path: Path
) -> None:
    """No clock, host or commit in the bytes: DVC's and the registry's hashes track the model."""
    time.sleep(1.1)  # a timestamp with one-second resolution would now differ
    again = save_bundle(
        tmp_path / "again",
        model=model,
        config=CFG,
        scaler=Scaler().fit(_raw(seed=1)),
        threshold=Threshold(value=0.5, method="percentile", kind="association",
                            anomaly_ratio=1.0, n_fit=100),
        history=[{"epoch": 0.0, "val_rec": 0.3}],
        data_fingerprint="ab" * 32,
        extra_metrics={"val_rec": 0.3, "test_auc_pr": float("nan")},
    )  # fmt: skip
    names = sorted(p.name for p in bundle_dir.iterdir())
    assert names == sorted(p.name for p in again.iterdir()) and MANIFEST in names
    for name in names:
        assert (again / name).read_bytes() == (bundle_dir / name).read_bytes(), name


@pytest.mark.parametrize("name", ["weights.safetensors", "threshold.json", "config.yaml"])
def test_a_tampered_file_is_refused_by_name(bundle_dir: Path, name: str) -> None:
    path = bundle_dir / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"{name}.*sha256"):
        load_bundle(bundle_dir)


def test_a_missing_file_is_refused_by_name(bundle_dir: Path) -> None:
    (bundle_dir / "scaler.json").unlink()
    with pytest.raises(ArtifactError, match=r"scaler\.json.*missing"):
        load_bundle(bundle_dir)


def test_an_extra_file_is_refused_by_name(bundle_dir: Path) -> None:
    (bundle_dir / "notes.txt").write_text("hello")
    with pytest.raises(ArtifactError, match=r"notes\.txt.*not listed"):
        verify_bundle(bundle_dir)


def test_a_manifest_that_drops_a_file_is_refused(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    del manifest["files"]["history.json"]
    (bundle_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"history\.json"):
        load_bundle(bundle_dir)


def test_missing_manifest_or_directory_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        load_bundle(tmp_path / "nope")
    (bundle_dir / MANIFEST).unlink()
    with pytest.raises(ArtifactError, match=MANIFEST):
        load_bundle(bundle_dir)


def test_existing_bundle_is_not_overwritten_unless_asked(bundle_dir: Path, model: AMAD) -> None:
    kwargs = {
        "model": model,
        "config": CFG,
        "scaler": Scaler().fit(_raw()),
        "threshold": Threshold(1.0, "percentile", "association", 1.0, 10),
        "history": [],
        "data_fingerprint": "cd" * 32,
    }
    with pytest.raises(ArtifactError, match="already exists"):
        save_bundle(bundle_dir, **kwargs)  # type: ignore[arg-type]
    save_bundle(bundle_dir, overwrite=True, **kwargs)  # type: ignore[arg-type]
    assert load_bundle(bundle_dir).threshold.value == 1.0
    assert [p.name for p in bundle_dir.parent.iterdir()] == ["bundle"]


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, model: AMAD, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(artifacts, "sha256_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_bundle(
            tmp_path / "b",
            model=model,
            config=CFG,
            scaler=Scaler().fit(_raw()),
            threshold=Threshold(1.0, "percentile", "association", 1.0, 10),
            history=[],
            data_fingerprint="x",
        )
    assert list(tmp_path.iterdir()) == []


def test_bundle_score_refuses_bad_input(bundle_dir: Path) -> None:
    b = load_bundle(bundle_dir)
    with pytest.raises(DataError, match="channels"):
        b.score(np.zeros((50, N_CH + 1)))
    with pytest.raises(DataError, match="NaN"):
        b.score(np.full((50, N_CH), np.nan))
    with pytest.raises(DataError, match="empty"):
        b.score(np.zeros((0, N_CH)))


def test_weights_that_do_not_fit_the_config_are_refused(bundle_dir: Path) -> None:
    cfg_path = bundle_dir / "config.yaml"
    cfg_path.write_text(cfg_path.read_text().replace("d_model: 16", "d_model: 32"))
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    manifest["files"]["config.yaml"]["sha256"] = artifacts.sha256_file(cfg_path)
    (bundle_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"weights\.safetensors"):
        load_bundle(bundle_dir)


def _rewrite_config(bundle_dir: Path, text: str) -> None:
    """Replace config.yaml and re-hash it in the manifest (a consistent but changed bundle)."""
    (bundle_dir / "config.yaml").write_text(text)
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    manifest["files"]["config.yaml"]["sha256"] = artifacts.sha256_file(bundle_dir / "config.yaml")
    (bundle_dir / MANIFEST).write_text(json.dumps(manifest))


def test_a_profiled_config_loads_as_it_was_resolved(tmp_path: Path, bundle_dir: Path) -> None:
    # resolved with the cpu profile (d_model 64, length 100) and overrides laid over it: loading
    # must not lay the profile over the resolved values again (the weights would not fit)
    cfg = build_config(
        {"profile": "cpu"},
        {"model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1, "model.d_ff": 16,
         "model.proj_dim": 8, "windows.length": 20, "windows.score_stride": 10},
    )  # fmt: skip
    b = load_bundle(bundle_dir)
    torch.manual_seed(0)
    out = save_bundle(tmp_path / "profiled", model=AMAD(cfg.model, n_channels=N_CH), config=cfg,
                      scaler=b.scaler, threshold=b.threshold, history=[],
                      data_fingerprint="ab" * 32)  # fmt: skip
    loaded = load_bundle(out)
    assert loaded.config == cfg and loaded.config.profile == "cpu"
    assert loaded.config.model.d_model == 16 and loaded.config.windows.length == 20


@pytest.mark.parametrize("text", ["model: [unclosed\n", "model:\n  d_model: -3\n", "- a list\n"])
def test_an_invalid_config_is_an_artifact_error(bundle_dir: Path, text: str) -> None:
    _rewrite_config(bundle_dir, text)
    with pytest.raises(ArtifactError, match=r"config\.yaml is invalid"):
        load_bundle(bundle_dir)
