"""The shared training recipe: thresholds from validation scores, legacy pooling only by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amad.config import build_config
from amad.detector.recipe import train_bundle, train_prepared
from amad.errors import ArtifactError
from amad.series.loaders import load_series
from amad.series.windows import build_windows

CFG = build_config(
    {
        "data": {"synthetic": {"n_channels": 2, "train_steps": 400, "test_steps": 300}},
        "windows": {"length": 20, "train_stride": 4, "score_stride": 20, "val_fraction": 0.25},
        "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16},
        "train": {"epochs": 1, "batch_size": 16, "max_windows_per_epoch": 32, "device": "cpu"},
        "score": {"kind": "reconstruction", "orientation": "paper"},
    }
)


@pytest.mark.parametrize(
    ("method", "n_fit"), [("percentile", 100), ("legacy_train_test_percentile", 400)]
)
def test_threshold_is_fitted_on_validation_steps_and_legacy_adds_test(
    tmp_path: Path, method: str, n_fit: int
) -> None:
    cfg = build_config(CFG.model_dump(mode="json"), {"score.threshold": method})
    prepared = build_windows(load_series(cfg.data), cfg.windows)
    assert len(prepared.val_scaled) == 100 and len(prepared.test_scaled) == 300
    outcome = train_prepared(cfg, prepared, tmp_path / "b", progress=False)
    thr = json.loads((tmp_path / "b" / "threshold.json").read_text())
    assert (thr["method"], thr["n_fit"], thr["kind"]) == (method, n_fit, "reconstruction")
    assert outcome.threshold == thr["value"] and outcome.epochs == 1
    assert "test_auc_roc" not in outcome.metrics  # evaluation is opt-in


def test_an_existing_bundle_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    bad = build_config(CFG.model_dump(mode="json"), {"data.source": "smd", "data.root": "/nope"})
    with pytest.raises(ArtifactError, match="already exists"):
        train_bundle(bad, tmp_path / "b", progress=False)  # no DatasetNotFoundError: never loaded


def test_training_twice_on_cpu_writes_byte_identical_bundles(tmp_path: Path) -> None:
    """A fixed seed on CPU: the same bundle bytes (so the same dvc.lock); timings and the
    commit are the run's provenance, returned beside the bundle and never written into it."""
    prepared = build_windows(load_series(CFG.data), CFG.windows)
    a = train_prepared(CFG, prepared, tmp_path / "a", progress=False)
    b = train_prepared(CFG, prepared, tmp_path / "b", progress=False)
    names = sorted(p.name for p in a.path.iterdir())
    assert names == sorted(p.name for p in b.path.iterdir())
    for name in names:
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes(), name
    history = json.loads((a.path / "history.json").read_text())
    assert history and not {"seconds", "windows_per_s"} & set(history[0])
    assert a.metrics == json.loads((a.path / "metrics.json").read_text())
    assert not {"train_seconds", "train_windows_per_s"} & set(a.metrics)
    assert {"created_at", "git_sha", "device", "train_seconds"} <= set(a.provenance)
    assert a.provenance["device"] == "cpu" and a.provenance["train_seconds"] > 0
    assert [e["epoch"] for e in a.provenance["epochs"]] == [0.0]
