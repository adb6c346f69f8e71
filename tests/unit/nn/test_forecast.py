"""Forecasting AMAD (``model.objective=forecast``) and channel independence (``model.channels``)."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from amad.config import ModelConfig, TrainConfig, build_config
from amad.nn.layers import FreeMask, GaussianMask, SpectralMask
from amad.nn.losses import objective, reconstruction_loss
from amad.nn.model import AMAD

MASKS = ("spectral", "multiscale_gaussian", "gaussian", "free")


def tiny(**kw: object) -> ModelConfig:
    base: dict[str, object] = dict(
        d_model=16, n_heads=2, n_layers=2, d_ff=16, n_scales=3, max_len=32, proj_dim=8, warmup=2
    )
    return ModelConfig.model_validate({**base, **kw})


@pytest.mark.parametrize("channels", ["mixed", "independent"])
@pytest.mark.parametrize("mask", MASKS)
def test_perturbing_step_t_never_changes_earlier_outputs(channels: str, mask: str) -> None:
    torch.manual_seed(0)
    model = AMAD(tiny(objective="forecast", channels=channels, mask=mask), n_channels=3).eval()
    x = torch.randn(2, 16, 3)
    t = 9
    changed = x.clone()
    changed[:, t] += 10.0
    with torch.no_grad():
        a, b = model(x), model(changed)
    # recon[:, j] is the forecast of step j from steps < j: positions <= t must not move
    torch.testing.assert_close(a.recon[:, : t + 1], b.recon[:, : t + 1], rtol=0, atol=0)
    for p, q in zip(a.local + a.global_, b.local + b.global_, strict=True):
        torch.testing.assert_close(p[:, :, :t], q[:, :, :t], rtol=0, atol=0)  # rows i < t
    assert (a.recon[:, t + 1] - b.recon[:, t + 1]).abs().max() > 1e-4  # the future does move


def test_reconstruct_is_not_causal() -> None:
    torch.manual_seed(0)
    model = AMAD(tiny(), n_channels=3).eval()
    x = torch.randn(1, 16, 3)
    changed = x.clone()
    changed[:, 9] += 10.0
    with torch.no_grad():
        assert (model(x).recon[:, :9] - model(changed).recon[:, :9]).abs().max() > 1e-4


@pytest.mark.parametrize(
    "mask",
    [
        SpectralMask(d_model=16, n_heads=2, n_scales=3, causal=True),
        SpectralMask(d_model=16, n_heads=2, n_scales=3, learn_frequency=False, causal=True),
        GaussianMask(d_model=16, n_heads=2, causal=True),
        FreeMask(n_heads=2, max_len=32, causal=True),
    ],
)
def test_causal_masks_are_one_sided_rows_of_one(mask: torch.nn.Module) -> None:
    p = mask(torch.randn(2, 12, 16))  # (b, h, t, s)
    future = torch.triu(torch.ones(12, 12, dtype=torch.bool), diagonal=1)
    assert torch.all(p[..., future] == 0)
    assert torch.all(p[..., ~future] >= 0)
    assert torch.all(torch.diagonal(p, dim1=-2, dim2=-1) > 0)  # offset 0 always weighs
    torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]))


def test_global_association_is_causal() -> None:
    model = AMAD(tiny(objective="forecast"), n_channels=3).eval()
    out = model(torch.randn(2, 12, 3), latents=False)
    future = torch.triu(torch.ones(12, 12, dtype=torch.bool), diagonal=1)
    for s in out.global_:
        assert torch.all(s[..., future] == 0)


def test_forecast_targets_the_next_step_and_skips_the_warmup() -> None:
    model = AMAD(tiny(objective="forecast", warmup=3), n_channels=2).eval()
    x = torch.randn(4, 10, 2)
    out = model(x, latents=False)
    assert out.step_weight is not None
    assert out.step_weight.tolist() == [0.0] * 4 + [1.0] * 6
    assert torch.all(out.recon[:, 0] == 0)  # no forecast exists for the first step
    manual = (out.recon[:, 4:] - x[:, 4:]).square().mean()
    torch.testing.assert_close(reconstruction_loss(out, x), manual)


@pytest.mark.parametrize("objective_", ["reconstruct", "hidden", "forecast"])
@pytest.mark.parametrize("channels", ["mixed", "independent"])
def test_forward_backward_every_objective(objective_: str, channels: str) -> None:
    if objective_ == "hidden" and channels == "independent":
        pytest.skip("not a valid combination (see the config test)")
    extra = {"hide_passes": 2} if objective_ == "hidden" else {}
    torch.manual_seed(0)
    model = AMAD(tiny(objective=objective_, channels=channels, **extra), n_channels=3).train()
    x = torch.randn(3, 12, 3)
    parts = objective(model(x), x, TrainConfig(maxmin=True, contrastive=True))
    parts.total.backward()
    assert torch.isfinite(parts.total)
    assert parts.dis > 0 and parts.contrastive > 0
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_independent_channels_share_weights_and_never_mix() -> None:
    torch.manual_seed(0)
    cfg = tiny(objective="forecast", channels="independent")
    model = AMAD(cfg, n_channels=5).eval()
    wider = AMAD(cfg, n_channels=9)
    # shared weights: only the channel embedding depends on the channel count
    sizes = {k: v.shape for k, v in model.state_dict().items()}
    assert sizes == {
        **{k: v.shape for k, v in wider.state_dict().items()},
        "channel_embedding": (5, 16),
        "score_channel_scale": (5,),
    }
    assert model.embedding.token.in_channels == 1 and model.head.out_features == 1
    x = torch.randn(2, 14, 5)
    out = model(x)
    assert out.recon.shape == (2, 14, 5)
    assert out.local[0].shape == (2, 5 * 2, 14, 14)  # channels read as extra heads
    assert out.z_local[0].shape == (2 * 5, 14, 8)
    changed = x.clone()
    changed[:, :, 3] += 10.0
    with torch.no_grad():
        moved = (model(changed).recon - out.recon).abs().amax(dim=(0, 1))  # (c,)
    assert moved[3] > 1e-4 and torch.all(moved[[0, 1, 2, 4]] == 0)


def test_channel_embedding_tells_channels_apart() -> None:
    torch.manual_seed(0)
    model = AMAD(tiny(channels="independent"), n_channels=2).eval()
    x = torch.randn(1, 10, 1).expand(1, 10, 2).contiguous()  # the same series in both channels
    with torch.no_grad():
        recon = model(x).recon
    assert (recon[..., 0] - recon[..., 1]).abs().max() > 1e-4


def test_objective_config_rules() -> None:
    assert ModelConfig().objective == "reconstruct"
    assert ModelConfig(hide_passes=2).objective == "hidden"  # older configs keep their meaning
    with pytest.raises(ValidationError, match="hidden"):
        ModelConfig(objective="hidden")
    with pytest.raises(ValidationError, match="hidden"):
        ModelConfig(objective="forecast", hide_passes=2)
    with pytest.raises(ValidationError, match="independent"):
        ModelConfig(objective="hidden", hide_passes=2, channels="independent")
    with pytest.raises(Exception, match="score_stride"):
        build_config({}, {"model.objective": "forecast", "model.warmup": 60,
                          "windows.length": 100, "windows.score_stride": 50})  # fmt: skip
