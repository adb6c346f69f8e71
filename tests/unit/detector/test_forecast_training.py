"""The training budget (early stopping on a validation plateau, a floor of optimiser steps) and
scoring a forecaster (warm-up positions do not score, every step still gets a score)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from amad.config import ModelConfig, ScoreConfig, TrainConfig, WindowConfig, build_config
from amad.detector import train as trainer
from amad.detector.bundle import load_bundle, save_bundle
from amad.detector.scoring import calibrate, score_series
from amad.detector.thresholds import Threshold
from amad.nn.model import AMAD
from amad.series.windows import Scaler, sliding_windows

TINY = ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=16, n_scales=2, max_len=32,
                   proj_dim=8, objective="forecast", warmup=2)  # fmt: skip


def _windows(n_steps: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)[:, None]
    x = np.sin(t / 5.0 + np.arange(3)) + 0.1 * rng.standard_normal((n_steps, 3))
    return sliding_windows(x.astype(np.float32), 16, 1)


def _plateau(monkeypatch: pytest.MonkeyPatch) -> None:
    losses = iter([1.0, 0.5] + [0.7] * 100)  # best after epoch 2, then a plateau
    monkeypatch.setattr(trainer, "eval_step", lambda *a, **k: next(losses))


def test_early_stopping_stops_on_a_validation_plateau(monkeypatch: pytest.MonkeyPatch) -> None:
    _plateau(monkeypatch)
    cfg = TrainConfig(epochs=50, batch_size=16, lr=1e-3, patience=3, max_windows_per_epoch=32,
                      device="cpu", contrastive=False)  # fmt: skip
    result = trainer.fit(TINY, cfg, _windows(), _windows(seed=1), progress=False)
    assert result.stopped_early
    assert len(result.history) == 2 + 3  # best epoch, then `patience` epochs without a gain
    assert result.best_epoch == 1


def test_the_step_floor_holds_early_stopping_back(monkeypatch: pytest.MonkeyPatch) -> None:
    _plateau(monkeypatch)
    cfg = TrainConfig(epochs=50, batch_size=16, lr=1e-3, patience=3, max_windows_per_epoch=32,
                      device="cpu", contrastive=False, min_steps=20)  # 2 steps per epoch  # fmt: skip
    result = trainer.fit(TINY, cfg, _windows(), _windows(seed=1), progress=False)
    assert result.stopped_early
    assert len(result.history) == 10  # 20 steps / 2 per epoch, though the plateau began at 5
    assert result.best_epoch == 1


def test_forecaster_scores_every_step_without_warmup_positions() -> None:
    model = AMAD(TINY, n_channels=3).eval()
    wcfg = WindowConfig(length=16, score_stride=8, train_stride=1)
    x = np.random.default_rng(0).standard_normal((101, 3)).astype(np.float32)
    scores = score_series(model, x, ScoreConfig(smooth=1), wcfg).normalized
    assert scores.shape == (101,) and np.isfinite(scores).all()
    np.testing.assert_allclose(scores[:3], scores[3])  # the series start: nearest scored step
    spiked = x.copy()
    spiked[50, 1] += 20.0
    moved = score_series(model, spiked, ScoreConfig(smooth=1), wcfg).normalized - scores
    assert moved[50] > 0 and int(np.argmax(moved)) in (50, 51, 52)
    np.testing.assert_allclose(moved[:50], 0.0, atol=1e-9)  # a forecaster cannot see ahead


def test_calibration_ignores_warmup_positions() -> None:
    model = AMAD(TINY, n_channels=3)
    val = _windows(seed=2)
    calibrate(model, val, batch_size=64)
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(val)), latents=False)
    err = (out.recon.numpy() - val)[:, 3:] ** 2  # positions 0..warmup weigh 0
    np.testing.assert_allclose(model.score_channel_scale.numpy(), err.mean(axis=(0, 1)), rtol=1e-4)


def test_forecast_independent_bundle_round_trip(tmp_path: Path) -> None:
    cfg = build_config({
        "windows": {"length": 16, "score_stride": 4},
        "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16, "warmup": 2,
                  "objective": "forecast", "channels": "independent"},
    })  # fmt: skip
    torch.manual_seed(0)
    model = AMAD(cfg.model, n_channels=3).eval()
    raw = np.random.default_rng(0).normal(size=(80, 3)).astype(np.float32)
    scaler = Scaler().fit(raw)
    threshold = Threshold(value=0.5, method="percentile", kind="normalized", anomaly_ratio=1.0,
                          n_fit=80)  # fmt: skip
    path = save_bundle(tmp_path / "b", model=model, config=cfg, scaler=scaler,
                       threshold=threshold, history=[{"epoch": 0.0, "val_rec": 0.3}],
                       data_fingerprint="ab" * 32, extra_metrics={})  # fmt: skip
    bundle = load_bundle(path)
    expected = score_series(model, scaler.transform(raw), cfg.score, cfg.windows)
    np.testing.assert_allclose(bundle.score(raw).scores, expected.of(cfg.score.kind), rtol=1e-6)
