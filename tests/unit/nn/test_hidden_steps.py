"""Hidden-step reconstruction (``model.hide_passes``): no step's own value reaches its output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from amad.config import ModelConfig, TrainConfig
from amad.nn.losses import objective, reconstruction_loss
from amad.nn.model import AMAD


def tiny(**kw: object) -> ModelConfig:
    base: dict[str, object] = dict(
        d_model=16, n_heads=2, n_layers=2, d_ff=16, n_scales=3, max_len=32, proj_dim=8
    )
    return ModelConfig.model_validate({**base, **kw})


@pytest.mark.parametrize(("passes", "block"), [(2, 1), (3, 2), (4, 5)])
def test_a_step_never_sees_its_own_value(passes: int, block: int) -> None:
    torch.manual_seed(0)
    model = AMAD(tiny(hide_passes=passes, hide_block=block), n_channels=3).eval()
    x = torch.randn(2, 20, 3)
    i = 7
    changed = x.clone()
    changed[:, i] += 50.0
    with torch.no_grad():
        before, after = model(x, latents=False), model(changed, latents=False)
    phase = (torch.arange(20) // block) % passes
    same = phase == phase[i]  # hidden in the same pass as step i: blind to it
    torch.testing.assert_close(after.recon[:, same], before.recon[:, same])
    for a, b in zip(after.local, before.local, strict=True):
        torch.testing.assert_close(a[:, :, same], b[:, :, same])
    assert (after.recon[:, ~same] - before.recon[:, ~same]).abs().amax() > 1e-3  # others see it


def test_without_hiding_the_step_reaches_its_own_output() -> None:
    torch.manual_seed(0)
    model = AMAD(tiny(), n_channels=3).eval()
    x = torch.randn(1, 20, 3)
    changed = x.clone()
    changed[:, 7] += 50.0
    with torch.no_grad():
        delta = model(changed, latents=False).recon[0, 7] - model(x, latents=False).recon[0, 7]
    assert delta.abs().amax() > 1e-3
    assert "hide_token" not in model.state_dict()  # bundles without hiding are unchanged


def test_training_hides_one_phase_per_window_and_counts_only_hidden_steps() -> None:
    torch.manual_seed(1)
    model = AMAD(tiny(hide_passes=4, hide_block=2), n_channels=3).train()
    x = torch.randn(64, 16, 3)
    out = model(x, latents=True)
    assert out.hidden is not None and out.hidden.shape == (64, 16)
    assert (out.hidden.sum(dim=1) == 4).all()  # 16 steps / 4 phases
    assert len(set(map(tuple, out.hidden.int().tolist()))) == 4  # every phase was drawn
    hidden = out.hidden[..., None].float()
    manual = ((out.recon - x).square() * hidden).sum() / (hidden.sum() * 3)
    torch.testing.assert_close(reconstruction_loss(out, x), manual)
    objective(out, x, TrainConfig()).total.backward()
    assert model.hide_token.grad is not None and model.hide_token.grad.abs().sum() > 0


def test_one_pass_is_rejected() -> None:
    with pytest.raises(ValidationError, match="hide_passes"):
        tiny(hide_passes=1)


def test_hidden_step_model_trains_and_scores_end_to_end() -> None:
    from amad.config import ScoreConfig, WindowConfig
    from amad.detector.scoring import score_series
    from amad.detector.train import fit
    from amad.series.windows import sliding_windows

    rng = np.random.default_rng(0)
    t = np.arange(600)
    x = np.stack([np.sin(t / 7), np.cos(t / 11), np.sin(t / 5)], axis=1) + 0.05 * rng.normal(
        size=(600, 3)
    )
    x = x.astype(np.float32)
    cfg = tiny(hide_passes=2, hide_block=1)
    tcfg = TrainConfig(epochs=2, batch_size=16, lr=3e-3, device="cpu", max_windows_per_epoch=128)
    result = fit(cfg, tcfg, sliding_windows(x[:400], 20, 2), sliding_windows(x[400:500], 20, 10))
    spiked = x[500:].copy()
    spiked[50, 0] += 4.0
    s = score_series(
        result.model, spiked, ScoreConfig(smooth=1), WindowConfig(length=20, score_stride=10)
    )
    assert s.normalized.shape == (100,) and np.isfinite(s.normalized).all()
    assert int(np.argmax(s.normalized)) == 50
