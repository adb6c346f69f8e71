"""Threshold recalibration: same weights (byte-identical), a threshold re-fitted in the expected
direction, a new immutable version naming its source; the champion moves only on promote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from amad.config import build_config
from amad.detector.bundle import WEIGHTS, load_bundle
from amad.detector.recalibrate import recalibrate, recalibrate_bundle
from amad.detector.recipe import train_prepared
from amad.errors import ArtifactError
from amad.files import sha256_file
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
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A real bundle and raw normal rows (the synthetic training period) to recalibrate on."""
    cfg = build_config(TINY)
    series = load_series(cfg.data)
    bundle = train_prepared(cfg, build_windows(series, cfg.windows),
                            tmp_path_factory.mktemp("b") / "bundle", progress=False).path  # fmt: skip
    return bundle, np.asarray(series.train, dtype=np.float32)


def _spread(x: np.ndarray, factor: float) -> np.ndarray:
    mean = x.mean(axis=0, keepdims=True)
    return (mean + factor * (x - mean)).astype(np.float32)


def test_threshold_follows_the_data_and_weights_stay(
    tmp_path: Path, trained: tuple[Path, np.ndarray]
) -> None:
    bundle, x = trained
    same = recalibrate_bundle(bundle, x, tmp_path / "same", source_version="v0")
    wide = recalibrate_bundle(bundle, _spread(x, 4.0), tmp_path / "wide", source_version="v0",
                              window={"rows": len(x)})  # fmt: skip
    assert wide.threshold_new > same.threshold_new  # larger errors -> a higher threshold
    assert wide.threshold_old == load_bundle(bundle).threshold.value
    new = load_bundle(tmp_path / "wide")
    assert new.threshold.value == wide.threshold_new and new.threshold.n_fit == wide.n_fit
    assert sha256_file(tmp_path / "wide" / WEIGHTS) == sha256_file(bundle / WEIGHTS)
    assert (tmp_path / "wide" / WEIGHTS).read_bytes() == (bundle / WEIGHTS).read_bytes()
    record = json.loads((tmp_path / "wide" / "metrics.json").read_text())["recalibration"]
    assert record["recalibrated_from"] == "v0" and record["window"] == {"rows": len(x)}

    labels = np.zeros(len(x), dtype=np.int8)
    labels[:50] = 1
    masked = recalibrate_bundle(bundle, x, tmp_path / "m", source_version="v0", labels=labels,
                                exclude_flagged=True)  # fmt: skip
    assert masked.excluded_labelled == 50 and masked.n_fit + 50 + masked.excluded_flagged == len(x)


def test_registry_round_new_version_champion_untouched(
    tmp_path: Path, trained: tuple[Path, np.ndarray]
) -> None:
    bundle, x = trained
    reg = Registry(LocalStore(str(tmp_path / "reg")), "demo", entity="e1")
    with pytest.raises(ArtifactError, match="no champion"):
        recalibrate(reg, x, tmp_path / "w0", run_id="r0")
    v1 = reg.publish_version(bundle, run_id="r1", metrics={"val_recon_error": 1.0},
                             data_version="d1", check=load_bundle)  # fmt: skip
    reg.promote(v1, run_id="r1", reason="first")

    record = recalibrate(reg, _spread(x, 4.0), tmp_path / "w", run_id="r2",
                         window={"entity": "e1", "data_version": "d2"})  # fmt: skip
    assert record.version and record.version != v1 and record.recalibrated_from == v1
    pointer = reg.champion()
    assert pointer is not None and pointer.version == v1  # not silently replaced
    info = reg.show(record.version)
    assert info.metrics["recalibrated_from"] == v1 and info.data_version == "d1"
    assert info.metrics["threshold_new"] > info.metrics["threshold_old"]
    assert info.files[WEIGHTS] == reg.show(v1).files[WEIGHTS]  # the same weights

    reg.promote(record.version, run_id="r3", reason="recalibrated")  # the guarded path
    pointer = reg.champion()
    assert pointer is not None and pointer.version == record.version
    fetched = load_bundle(reg.fetch(record.version, tmp_path / "f"))
    assert fetched.threshold.value == record.threshold_new
