"""Fleet scope: one pooled fit, one verified bundle per entity with its own statistics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from amad.config import build_config
from amad.detector.bundle import load_bundle
from amad.detector.pooled import train_fleet
from amad.errors import DataError
from amad.series.loaders import load_series
from amad.series.windows import PreparedData, build_windows

CFG = build_config(
    {
        "data": {"synthetic": {"n_channels": 3, "train_steps": 400, "test_steps": 200}},
        "windows": {"length": 20, "train_stride": 4, "score_stride": 20, "val_fraction": 0.25},
        "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16},
        "train": {"epochs": 1, "batch_size": 16, "max_windows_per_epoch": 32, "device": "cpu"},
        "score": {"kind": "normalized"},
    }
)


def _prepared(seed: int, scale: float = 1.0, n_channels: int = 3) -> PreparedData:
    cfg = build_config(
        CFG.model_dump(mode="json"),
        {"data.synthetic.seed": seed, "data.synthetic.n_channels": n_channels},
    )
    series = load_series(cfg.data)
    series = replace(series, train=(series.train * scale).astype(np.float32))
    return build_windows(series, cfg.windows)


def test_one_pooled_model_gives_each_entity_its_own_bundle(tmp_path: Path) -> None:
    prepared = {"unit/a": _prepared(0), "unit-b": _prepared(1, scale=5.0)}
    outcomes = train_fleet(CFG, prepared, tmp_path / "fleet")
    assert set(outcomes) == set(prepared)
    assert outcomes["unit/a"].path == tmp_path / "fleet" / "unit%2Fa"  # ids are encoded
    a, b = (load_bundle(outcomes[e].path) for e in prepared)
    weights_a, weights_b = dict(a.model.named_parameters()), dict(b.model.named_parameters())
    for name, tensor in weights_a.items():  # the shared weights (buffers hold the statistics)
        assert torch.equal(tensor, weights_b[name]), name
    assert not torch.equal(a.model.score_channel_scale, b.model.score_channel_scale)
    assert a.threshold.value != b.threshold.value
    np.testing.assert_allclose(a.scaler.std, prepared["unit/a"].scaler.std)  # own scaler
    scores = a.score(load_series(CFG.data).test).scores
    assert scores.shape == (200,) and np.isfinite(scores).all()


def test_entities_with_other_channels_cannot_share_a_model(tmp_path: Path) -> None:
    prepared = {"a": _prepared(0), "b": _prepared(1, n_channels=2)}
    with pytest.raises(DataError, match="one pooled model needs them equal"):
        train_fleet(CFG, prepared, tmp_path / "fleet")
