"""AMAD on CUDA: bf16 autocast forward/backward, one-pass == two-pass, memory at full size."""

from __future__ import annotations

import pytest
import torch

from amad.config import ModelConfig, TrainConfig
from amad.nn.losses import association_discrepancy, maxmin_two_pass_reference, objective
from amad.nn.model import AMAD

pytestmark = pytest.mark.gpu

MASKS = ["spectral", "multiscale_gaussian", "gaussian", "free"]


@pytest.mark.parametrize("mask", MASKS)
def test_bf16_autocast_forward_backward(mask: str) -> None:
    torch.manual_seed(0)
    device = torch.device("cuda")
    cfg = ModelConfig(d_model=64, n_heads=4, n_layers=2, d_ff=64, mask=mask, mixup_per_step=True)
    model = AMAD(cfg, n_channels=7).to(device)
    x = torch.randn(16, 50, 7, device=device)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x)
    for p, s in zip(out.local, out.global_, strict=True):
        assert p.dtype == s.dtype == torch.float32  # associations stay fp32 under autocast
        torch.testing.assert_close(p.sum(-1), torch.ones_like(p[..., 0]), atol=1e-4, rtol=0)
        torch.testing.assert_close(s.sum(-1), torch.ones_like(s[..., 0]), atol=1e-4, rtol=0)
    parts = objective(out, x, TrainConfig())
    parts.total.backward()
    assert torch.isfinite(parts.total)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x, latents=False)
        dis = association_discrepancy(out.local, out.global_)
    assert dis.shape == (16, 50) and torch.isfinite(dis).all()


def test_one_pass_matches_two_pass_on_cuda() -> None:
    torch.manual_seed(0)
    device = torch.device("cuda")
    cfg = ModelConfig(d_model=32, n_heads=2, n_layers=2, d_ff=32, max_len=32)
    model = AMAD(cfg, n_channels=3).to(device).double()
    x = torch.randn(4, 20, 3, device=device, dtype=torch.float64)
    tcfg = TrainConfig(contrastive=True)
    objective(model(x), x, tcfg).total.backward()
    one = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    maxmin_two_pass_reference(model(x), x, tcfg)
    for n, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(one[n], p.grad, atol=1e-6, rtol=1e-6)


def test_full_size_train_step_fits_in_7_gib() -> None:
    torch.manual_seed(0)
    device = torch.device("cuda")
    model = AMAD(ModelConfig(), n_channels=55).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    x = torch.randn(256, 100, 55, device=device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(2):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x)
        objective(out, x, TrainConfig()).total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize(device)
    assert torch.cuda.max_memory_allocated(device) < 7 * 2**30
