"""Per-channel errors on flagged steps: the spiked channel leads; other steps stay NaN."""

from __future__ import annotations

import numpy as np
import torch

from amad.config import build_config
from amad.detector.attribution import channel_errors
from amad.nn.model import AMAD

CFG = build_config(
    {
        "windows": {"length": 16, "score_stride": 8},
        "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16},
    }
)


def test_spiked_channel_has_the_largest_error_and_only_asked_steps_are_computed() -> None:
    torch.manual_seed(0)
    model = AMAD(CFG.model, n_channels=4).eval()
    x = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    x[40:44, 2] += 30.0
    steps = np.zeros(100, dtype=bool)
    steps[40:44] = True
    errors = channel_errors(model, x, CFG.windows, steps, batch_size=3)
    assert errors.shape == (100, 4)
    assert np.isnan(errors[~steps]).all() and np.isfinite(errors[steps]).all()
    assert (errors[steps].argmax(axis=1) == 2).all()
    none = channel_errors(model, x, CFG.windows, np.zeros(100, dtype=bool))
    assert np.isnan(none).all()


def test_same_values_as_computing_every_window() -> None:
    torch.manual_seed(1)
    model = AMAD(CFG.model, n_channels=3).eval()
    x = np.random.default_rng(1).normal(size=(64, 3)).astype(np.float32)
    some = np.zeros(64, dtype=bool)
    some[[3, 30, 63]] = True
    full = channel_errors(model, x, CFG.windows, np.ones(64, dtype=bool))
    part = channel_errors(model, x, CFG.windows, some)
    np.testing.assert_allclose(part[some], full[some], rtol=1e-6)


def test_a_forecasters_warm_up_steps_take_the_nearest_scored_steps_errors() -> None:
    forecast = CFG.model.model_copy(update={"objective": "forecast", "warmup": 4})
    torch.manual_seed(2)
    model = AMAD(forecast, n_channels=3).eval()
    x = np.random.default_rng(2).normal(size=(64, 3)).astype(np.float32)
    first = np.zeros(64, dtype=bool)
    first[:3] = True  # only the first window's warm-up positions cover these steps
    errors = channel_errors(model, x, CFG.windows, first)
    assert np.isfinite(errors[first]).all()  # an alert there still names its channels
    full = channel_errors(model, x, CFG.windows, np.ones(64, dtype=bool))
    np.testing.assert_allclose(errors[first], np.repeat(full[5:6], 3, axis=0), rtol=1e-6)
