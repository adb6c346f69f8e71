"""AMAD building blocks: embedding, every AutoMask variant, global association, mixup, encoder."""

from __future__ import annotations

import math

import pytest
import torch

from amad.nn.layers import (
    AssociationAttention,
    DataEmbedding,
    EncoderLayer,
    FreeMask,
    GaussianMask,
    MixupGate,
    SpectralMask,
    abs_offsets,
    sinusoidal_positions,
    toeplitz_rows,
)

D, H, T, B = 16, 2, 12, 3


def _masks() -> dict[str, torch.nn.Module]:
    return {
        "spectral": SpectralMask(d_model=D, n_heads=H, n_scales=3),
        "multiscale_gaussian": SpectralMask(
            d_model=D, n_heads=H, n_scales=3, learn_frequency=False
        ),
        "gaussian": GaussianMask(d_model=D, n_heads=H),
        "free": FreeMask(n_heads=H, max_len=40),
    }


def test_toeplitz_rows_matches_explicit_offsets() -> None:
    n = torch.randn(2, 3, T, 2 * T - 1)
    i = torch.arange(T).unsqueeze(1)
    j = torch.arange(T).unsqueeze(0)
    expected = n.gather(-1, (j - i + T - 1).expand(2, 3, T, T))
    assert torch.equal(toeplitz_rows(n), expected)


def test_embedding_shape_and_fixed_positions() -> None:
    emb = DataEmbedding(n_channels=5, d_model=D, max_len=64, dropout=0.0)
    assert emb(torch.randn(B, T, 5)).shape == (B, T, D)
    assert "positions" not in emb.state_dict()  # a constant, rebuilt on load
    table = sinusoidal_positions(10, D)
    assert torch.allclose(table[0, 0::2], torch.zeros(D // 2))
    assert torch.allclose(table[0, 1::2], torch.ones(D // 2))


@pytest.mark.parametrize("name", ["spectral", "multiscale_gaussian", "gaussian", "free"])
def test_every_mask_is_a_row_stochastic_matrix(name: str) -> None:
    torch.manual_seed(0)
    p = _masks()[name](torch.randn(B, T, D))
    assert p.shape == (B, H, T, T)
    assert (p >= 0).all()
    assert torch.allclose(p.sum(-1), torch.ones(B, H, T), atol=1e-5)


def test_multiscale_gaussian_frequencies_are_not_learned() -> None:
    names = {n for n, _ in _masks()["multiscale_gaussian"].named_parameters()}
    assert "frequency" not in names
    assert "frequency" in {n for n, _ in _masks()["spectral"].named_parameters()}


def test_spectral_with_one_scale_and_zero_frequency_is_the_gaussian_prior() -> None:
    torch.manual_seed(0)
    x = torch.randn(B, T, D, dtype=torch.float64)
    gauss = GaussianMask(d_model=D, n_heads=H).double()
    torch.nn.init.zeros_(gauss.sigma.weight)
    torch.nn.init.zeros_(gauss.sigma.bias)
    sigma = 3 ** (0.5 + 1e-5) - 1  # Anomaly Transformer's sigma for a zero projection
    spectral = SpectralMask(d_model=D, n_heads=H, n_scales=1).double()
    with torch.no_grad():
        spectral.log_scale.fill_(math.log(sigma))
        spectral.frequency.zero_()
    # Anomaly Transformer's formula, written out: normalised 1/(sqrt(2 pi) s) exp(-k^2 / 2s^2)
    dist = abs_offsets(T, x.device).double()
    prior = torch.exp(-(dist**2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
    prior = (prior / prior.sum(-1, keepdim=True)).expand(B, H, T, T)
    assert torch.allclose(gauss(x), prior, atol=1e-12)
    assert torch.allclose(spectral(x), prior, atol=1e-5)


def test_spectral_frequency_shapes_the_kernel_and_stays_valid() -> None:
    mask = SpectralMask(d_model=D, n_heads=H, n_scales=2)
    with torch.no_grad():
        mask.log_scale.fill_(math.log(6.0))
        mask.frequency.fill_(0.25)  # cos(pi k / 2): zero at odd offsets, negative at k = 2
    p = mask(torch.randn(B, T, D))
    assert torch.allclose(p.sum(-1), torch.ones(B, H, T), atol=1e-5)
    assert p[0, 0, 5, 7] < 1e-5  # offset 2 is cut by relu
    assert p[0, 0, 5, 9] > 1e-3  # offset 4 is positive again


def test_spectral_weights_mix_scales_per_step() -> None:
    mask = SpectralMask(d_model=D, n_heads=1, n_scales=2)
    x = torch.randn(1, T, D)
    with torch.no_grad():
        mask.weights.weight.zero_()
        mask.weights.bias.copy_(torch.tensor([20.0, -20.0]))  # all weight on scale 1
        narrow = mask(x)
        mask.weights.bias.copy_(torch.tensor([-20.0, 20.0]))  # all weight on scale 2
        wide = mask(x)
    assert narrow[0, 0, 6, 6] > wide[0, 0, 6, 6]


def test_mixup_gate_per_head_and_per_step() -> None:
    x = torch.randn(B, T, D)
    assert MixupGate(d_model=D, n_heads=H, per_step=False)(x).shape == (H, 1, 1)
    beta = MixupGate(d_model=D, n_heads=H, per_step=True)(x)
    assert beta.shape == (B, H, T, 1)
    assert torch.allclose(beta, torch.full_like(beta, 0.5))


def test_mixup_interpolates_local_and_global_values() -> None:
    torch.manual_seed(0)
    gate = MixupGate(d_model=D, n_heads=H, per_step=False)
    att = AssociationAttention(d_model=D, n_heads=H, mask=_masks()["spectral"], gate=gate)
    x = torch.randn(B, T, D)
    with torch.no_grad():
        gate.head_logit.fill_(60.0)  # beta = 1: pure local
        res = att(x)
        assert res.z_local is not None
        assert torch.allclose(res.out, att.out(res.z_local), atol=1e-5)
        gate.head_logit.fill_(-60.0)  # beta = 0: pure global
        res = att(x)
        assert torch.allclose(res.out, att.out(res.z_global), atol=1e-5)


def test_global_association_rows_sum_to_one_and_latents_can_be_skipped() -> None:
    att = AssociationAttention(d_model=D, n_heads=H, mask=_masks()["gaussian"], gate=None)
    res = att(torch.randn(B, T, D), latents=False)
    assert res.global_.shape == (B, H, T, T)
    assert torch.allclose(res.global_.sum(-1), torch.ones(B, H, T), atol=1e-5)
    assert res.z_local is None
    assert res.z_global.shape == (B, T, D)


def test_encoder_layer_keeps_shape_and_normalises() -> None:
    att = AssociationAttention(d_model=D, n_heads=H, mask=_masks()["free"], gate=None)
    layer = EncoderLayer(attention=att, d_model=D, d_ff=32, dropout=0.0)
    y, res = layer(torch.randn(B, T, D))
    assert y.shape == (B, T, D)
    assert torch.allclose(y.mean(-1), torch.zeros(B, T), atol=1e-5)
    assert res.local.shape == (B, H, T, T)


def test_spectral_frequency_starts_learnable_and_near_a_multiscale_gaussian() -> None:
    torch.manual_seed(0)
    x = torch.randn(B, T, D)
    spectral = SpectralMask(d_model=D, n_heads=H, n_scales=3)
    gaussian = SpectralMask(d_model=D, n_heads=H, n_scales=3, learn_frequency=False)
    gaussian.load_state_dict(spectral.state_dict(), strict=False)
    p = spectral(x)
    assert torch.allclose(p, gaussian(x), atol=1e-3)
    p.square().sum().backward()
    assert spectral.frequency.grad is not None
    assert spectral.frequency.grad.abs().min() > 0  # f = 0 exactly would never move
