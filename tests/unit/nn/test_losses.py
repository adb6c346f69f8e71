"""Objectives: reconstruction, discrepancy, one-pass Max-Min == two-pass reference, InfoNCE."""

from __future__ import annotations

import itertools

import pytest
import torch

from amad.config import ModelConfig, TrainConfig
from amad.nn.losses import (
    association_discrepancy,
    contrastive_loss,
    maxmin_discrepancy,
    maxmin_two_pass_reference,
    objective,
    reconstruction_loss,
    symmetric_kl,
)
from amad.nn.model import AMAD, ModelOutput

MASKS = ["spectral", "multiscale_gaussian", "gaussian", "free"]


def tiny_model(mask: str = "spectral", mixup: bool = True, **kw: object) -> AMAD:
    cfg = ModelConfig(
        d_model=16, n_heads=2, n_layers=2, d_ff=16, n_scales=2, max_len=16, proj_dim=8,
        mask=mask, mixup=mixup, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return AMAD(cfg, n_channels=3)


def rows(*shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.softmax(torch.randn(*shape, dtype=dtype) * 2, dim=-1)


def test_reconstruction_is_mse() -> None:
    x = torch.randn(2, 5, 3)
    out = ModelOutput(recon=x + 0.5, local=[], global_=[])
    assert torch.isclose(reconstruction_loss(out, x), torch.tensor(0.25))


def test_symmetric_kl_matches_both_directions_and_vanishes_on_equal_rows() -> None:
    p, s = rows(2, 3, 4, 4), rows(2, 3, 4, 4)
    eps = 1e-4
    kl_ps = (p * (torch.log(p + eps) - torch.log(s + eps))).sum(-1)
    kl_sp = (s * (torch.log(s + eps) - torch.log(p + eps))).sum(-1)
    assert torch.allclose(symmetric_kl(p, s), kl_ps + kl_sp)
    assert (symmetric_kl(p, s) > 0).all()
    assert torch.allclose(symmetric_kl(p, p), torch.zeros(2, 3, 4, dtype=p.dtype))


def test_association_discrepancy_averages_heads_and_layers() -> None:
    ps = [rows(2, 3, 5, 5) for _ in range(2)]
    ss = [rows(2, 3, 5, 5) for _ in range(2)]
    dis = association_discrepancy(ps, ss)
    assert dis.shape == (2, 5)
    expected = (symmetric_kl(ps[0], ss[0]).mean(1) + symmetric_kl(ps[1], ss[1]).mean(1)) / 2
    assert torch.allclose(dis, expected)
    with pytest.raises(ValueError):
        association_discrepancy(ps, ss[:1])


def test_maxmin_term_minimises_in_p_and_maximises_in_s() -> None:
    p = rows(2, 2, 4, 4).requires_grad_()
    s = rows(2, 2, 4, 4).requires_grad_()
    value = maxmin_discrepancy([p], [s])
    value.backward()
    p2, s2 = p.detach().clone().requires_grad_(), s.detach().clone().requires_grad_()
    symmetric_kl(p2, s2).mean().backward()
    assert torch.isclose(value, symmetric_kl(p, s).mean())
    assert p.grad is not None and s.grad is not None
    assert torch.allclose(p.grad, p2.grad)  # type: ignore[arg-type]
    assert torch.allclose(s.grad, -s2.grad)  # type: ignore[operator]


def _grads(model: AMAD) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    ("mask", "mixup", "contrastive"),
    [("spectral", True, True), ("spectral", True, False), ("gaussian", False, False),
     ("free", False, True), ("multiscale_gaussian", True, True)],
)  # fmt: skip
def test_one_pass_maxmin_gradients_equal_the_two_pass_reference(
    mask: str, mixup: bool, contrastive: bool
) -> None:
    torch.manual_seed(0)
    model = tiny_model(mask, mixup).double()
    x = torch.randn(3, 12, 3, dtype=torch.float64)
    cfg = TrainConfig(k=3.0, contrastive=contrastive)
    objective(model(x, latents=contrastive), x, cfg).total.backward()
    one_pass = _grads(model)
    model.zero_grad(set_to_none=True)
    maxmin_two_pass_reference(model(x, latents=contrastive), x, cfg)
    two_pass = _grads(model)
    assert one_pass.keys() == two_pass.keys()
    assert ("projection.weight" in one_pass) == contrastive  # head trains only with InfoNCE
    for name, grad in one_pass.items():
        torch.testing.assert_close(grad, two_pass[name], atol=1e-6, rtol=1e-6, msg=name)


def test_maxmin_actually_pushes_the_branches_apart() -> None:
    torch.manual_seed(0)
    model = tiny_model("spectral", True).double()
    x = torch.randn(3, 12, 3, dtype=torch.float64)
    cfg = TrainConfig(maxmin=True, contrastive=False)
    objective(model(x, latents=False), x, cfg).total.backward()
    with_maxmin = model.layers[0].attention.mask.log_scale.grad.clone()  # type: ignore[union-attr]
    model.zero_grad(set_to_none=True)
    objective(model(x, latents=False), x, cfg.model_copy(update={"maxmin": False})).total.backward()
    without = model.layers[0].attention.mask.log_scale.grad  # type: ignore[union-attr]
    assert not torch.allclose(with_maxmin, 2 * without)


def test_contrastive_loss_lower_for_aligned_views_than_shuffled() -> None:
    torch.manual_seed(0)
    z = torch.randn(4, 16, 8)
    aligned = contrastive_loss(z, z + 0.05 * torch.randn_like(z), 0.1)
    shuffled = contrastive_loss(z, z[:, torch.randperm(16)], 0.1)
    assert aligned < 0.5 < 2.0 < shuffled
    with pytest.raises(ValueError):
        contrastive_loss(z, z[:, :3], 0.1)


def test_contrastive_loss_samples_steps_when_large() -> None:
    torch.manual_seed(0)
    z = torch.randn(8, 50, 4, requires_grad=True)
    loss = contrastive_loss(z, z.detach() * 1.0, 0.5, max_steps=64)
    loss.backward()
    assert z.grad is not None
    touched = (z.grad.abs().sum(-1) > 0).sum()
    assert 0 < touched <= 64


@pytest.mark.parametrize(
    ("mask", "mixup", "maxmin", "contrastive"),
    list(itertools.product(MASKS, [True, False], [True, False], [True, False])),
)
def test_backward_works_for_every_switch(
    mask: str, mixup: bool, maxmin: bool, contrastive: bool
) -> None:
    torch.manual_seed(0)
    model = tiny_model(mask, mixup, mixup_per_step=mixup)
    x = torch.randn(2, 8, 3)
    parts = objective(
        model(x, latents=contrastive), x, TrainConfig(maxmin=maxmin, contrastive=contrastive)
    )
    parts.total.backward()
    assert torch.isfinite(parts.total)
    assert parts.rec > 0 and parts.dis > 0
    assert (parts.contrastive > 0) == contrastive
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_contrastive_needs_latents() -> None:
    model = tiny_model()
    x = torch.randn(2, 8, 3)
    with pytest.raises(ValueError, match="latents"):
        objective(model(x, latents=False), x, TrainConfig(contrastive=True))
