"""Training objectives: reconstruction, association discrepancy, Max-Min and Local-Global InfoNCE.

Pure tensor functions over a ``ModelOutput``. The Max-Min strategy (Anomaly Transformer's
minimax) is computed in one backward pass: ``2*base - k*dis(P.detach(), S) + k*dis(P, S.detach())``
has exactly the gradients of the two passes ``base - k*dis(P.detach(), S)`` and
``base + k*dis(P, S.detach())``. ``dis`` is evaluated once by a fused autograd function whose
backward sends ``+dDIS/dP`` to the local branch and ``-dDIS/dS`` to the global branch.
``maxmin_two_pass_reference`` keeps the original two-pass recipe for tests and benchmarks.

Shape legend: b batch, t steps, s key steps, c channels, h heads, p projection width, n sampled steps
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from amad.config import TrainConfig
from amad.nn.model import ModelOutput

KL_EPS = 1e-4  # Anomaly Transformer's my_kl_loss epsilon inside the logs
CONTRASTIVE_MAX_STEPS = 1024  # steps sampled per layer for InfoNCE when b*t is larger


@dataclass(frozen=True)
class LossParts:
    """``total`` is what to backpropagate; ``rec``, ``dis``, ``contrastive`` are floats for logging.

    The parts are kept as detached tensors and turned into floats only when read, so building a
    ``LossParts`` never forces a device synchronisation before ``backward`` has been queued.
    """

    total: Tensor
    rec_tensor: Tensor
    dis_tensor: Tensor
    contrastive_tensor: Tensor | None = None

    @property
    def rec(self) -> float:
        return float(self.rec_tensor)

    @property
    def dis(self) -> float:
        return float(self.dis_tensor)

    @property
    def contrastive(self) -> float:
        return 0.0 if self.contrastive_tensor is None else float(self.contrastive_tensor)


def reconstruction_loss(out: ModelOutput, x: Tensor) -> Tensor:
    """Mean squared error over every element (over the hidden steps only when ``out.hidden`` is
    set: hidden-step training; over the weighted steps when ``out.step_weight`` is set: the
    forecast errors after warm-up), computed in at least float32."""
    recon = out.recon
    dtype = torch.promote_types(recon.dtype, torch.float32)
    if out.hidden is not None:
        weight = out.hidden.to(dtype)[..., None]  # (b, t, 1)
    elif out.step_weight is not None:
        weight = out.step_weight.to(dtype).view(1, -1, 1).expand(x.shape[0], -1, 1)  # (b, t, 1)
    else:
        return F.mse_loss(recon.to(dtype), x.to(dtype))
    err = (recon.to(dtype) - x.to(dtype)).square() * weight
    return err.sum() / (weight.sum() * x.shape[-1]).clamp_min(1.0)


def _kl_terms(p: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    """(p - s) and log(p+eps) - log(s+eps), both (b, h, t, s), in at least float32.

    In-place where autograd is not watching, so only two new (b, h, t, s) tensors stay alive.
    """
    dtype = torch.promote_types(torch.promote_types(p.dtype, s.dtype), torch.float32)
    p, s = p.to(dtype), s.to(dtype)
    if torch.is_grad_enabled() and (p.requires_grad or s.requires_grad):
        return p - s, torch.log(p + KL_EPS) - torch.log(s + KL_EPS)
    log_ratio = torch.add(p, KL_EPS).log_()
    log_s = torch.add(s, KL_EPS).log_()
    log_ratio.sub_(log_s)
    del log_s
    return torch.sub(p, s), log_ratio


def symmetric_kl(p: Tensor, s: Tensor) -> Tensor:
    """KL(P||S) + KL(S||P) per row, (b, h, t, s) x2 -> (b, h, t); differentiable both ways."""
    diff, log_ratio = _kl_terms(p, s)
    return torch.linalg.vecdot(diff, log_ratio)


class _MaxMinKL(torch.autograd.Function):
    """Symmetric KL rows with the Max-Min gradient: +d/dP to P, -d/dS to S.

    The backward reuses its buffers in place: two (b, h, t, s) gradients and one scratch tensor.
    """

    @staticmethod
    def forward(ctx: Any, p: Tensor, s: Tensor) -> Tensor:
        diff, log_ratio = _kl_terms(p, s)  # forward of a Function runs without autograd
        ctx.save_for_backward(p, s, diff, log_ratio)
        return torch.linalg.vecdot(diff, log_ratio)  # (b, h, t)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        p, s, diff, log_ratio = ctx.saved_tensors
        g = grad.unsqueeze(-1).to(diff.dtype)  # (b, h, t, 1)
        # d/dp (p-s)(lp-ls) = (lp-ls) + (p-s)/(p+eps);  -d/ds = (lp-ls) + (p-s)/(s+eps)
        scaled_diff = diff.mul_(g)  # diff is not needed again: reuse it
        grad_p = log_ratio.mul_(g)  # likewise
        grad_s = grad_p.clone()
        scratch = torch.empty_like(diff)
        torch.add(p, KL_EPS, out=scratch)
        grad_p.addcdiv_(scaled_diff, scratch)
        torch.add(s, KL_EPS, out=scratch)
        grad_s.addcdiv_(scaled_diff, scratch)
        return grad_p.to(p.dtype), grad_s.to(s.dtype)


def association_discrepancy(local: list[Tensor], global_: list[Tensor]) -> Tensor:
    """Per-step symmetric KL between P and S, averaged over heads and layers: (b, t)."""
    if not local or len(local) != len(global_):
        raise ValueError("need one local and one global association per layer")
    total = symmetric_kl(local[0], global_[0]).mean(dim=1)  # (b, t)
    for p, s in zip(local[1:], global_[1:], strict=True):
        total = total + symmetric_kl(p, s).mean(dim=1)
    return total / len(local)


def maxmin_discrepancy(local: list[Tensor], global_: list[Tensor]) -> Tensor:
    """Scalar mean discrepancy whose gradient minimises it in P and maximises it in S."""
    total = torch.stack([_MaxMinKL.apply(p, s).mean() for p, s in zip(local, global_, strict=True)])
    return total.mean()


def contrastive_loss(
    z_p: Tensor, z_s: Tensor, temperature: float, *, max_steps: int = CONTRASTIVE_MAX_STEPS
) -> Tensor:
    """Symmetrised InfoNCE between two views (b, t, p) of the same steps.

    Positive: the same step in the other view; negatives: every other (sampled) step of the
    window and the batch. At most ``max_steps`` steps are sampled, so memory is bounded.
    """
    if z_p.shape != z_s.shape or z_p.ndim != 3:
        raise ValueError(
            f"views must both be (b, t, p), got {tuple(z_p.shape)}, {tuple(z_s.shape)}"
        )
    a = z_p.reshape(-1, z_p.shape[-1])  # (b*t, p)
    b = z_s.reshape(-1, z_s.shape[-1])
    if a.shape[0] > max_steps:
        idx = torch.randperm(a.shape[0], device=a.device)[:max_steps]  # (n,)
        a, b = a[idx], b[idx]
    dtype = torch.promote_types(a.dtype, torch.float32)
    with torch.autocast(device_type=a.device.type, enabled=False):  # similarities in fp32
        a = F.normalize(a.to(dtype), dim=-1)
        b = F.normalize(b.to(dtype), dim=-1)
        logits = a @ b.T / temperature  # (n, n)
        target = torch.arange(a.shape[0], device=a.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _contrastive(out: ModelOutput, cfg: TrainConfig) -> Tensor | None:
    if not (cfg.contrastive and cfg.contrastive_weight > 0):
        return None
    if not out.z_local:
        raise ValueError("contrastive loss needs latents: call the model with latents=True")
    terms = [
        contrastive_loss(zp, zs, cfg.contrastive_temperature)
        for zp, zs in zip(out.z_local, out.z_global, strict=True)
    ]
    return torch.stack(terms).mean()


def objective(out: ModelOutput, x: Tensor, cfg: TrainConfig) -> LossParts:
    """The training loss for one batch, honouring the maxmin and contrastive switches.

    ``base = rec + gamma * contrastive``; with Max-Min on, ``total = 2*base + k*dis`` where the
    discrepancy term carries the minimax gradients (its value equals the plain discrepancy).
    With Max-Min off the discrepancy is only reported (``total = base``).
    """
    rec = reconstruction_loss(out, x)
    con = _contrastive(out, cfg)
    base = rec if con is None else rec + cfg.contrastive_weight * con
    if cfg.maxmin:
        dis = maxmin_discrepancy(out.local, out.global_)
        total = 2 * base + cfg.k * dis
    else:
        with torch.no_grad():
            dis = association_discrepancy(out.local, out.global_).mean()
        total = base
    return LossParts(total, rec.detach(), dis.detach(), _detach(con))


def anomaly_transformer_kl(p: Tensor, q: Tensor) -> Tensor:
    """Anomaly Transformer's ``my_kl_loss``: KL rows summed, averaged over heads -> (b, t)."""
    res = p * (torch.log(p + KL_EPS) - torch.log(q + KL_EPS))
    return torch.mean(torch.sum(res, dim=-1), dim=1)


def maxmin_two_pass_reference(out: ModelOutput, x: Tensor, cfg: TrainConfig) -> LossParts:
    """The reference minimax: two losses and two backward passes, as Anomaly Transformer does.

    Runs ``backward`` itself (gradients accumulate in ``.grad``) and returns detached parts.
    """
    rec = reconstruction_loss(out, x)
    con = _contrastive(out, cfg)
    base = rec if con is None else rec + cfg.contrastive_weight * con
    if not cfg.maxmin:
        base.backward()
        return LossParts(base.detach(), rec.detach(), torch.zeros_like(rec), _detach(con))
    series_loss = torch.zeros((), dtype=rec.dtype, device=rec.device)
    prior_loss = torch.zeros((), dtype=rec.dtype, device=rec.device)
    for p, s in zip(out.local, out.global_, strict=True):
        series_loss = series_loss + (
            torch.mean(anomaly_transformer_kl(s, p.detach()))
            + torch.mean(anomaly_transformer_kl(p.detach(), s))
        )
        prior_loss = prior_loss + (
            torch.mean(anomaly_transformer_kl(p, s.detach()))
            + torch.mean(anomaly_transformer_kl(s.detach(), p))
        )
    series_loss = series_loss / len(out.local)
    prior_loss = prior_loss / len(out.local)
    loss1 = base - cfg.k * series_loss
    loss2 = base + cfg.k * prior_loss
    loss1.backward(retain_graph=True)
    loss2.backward()
    return LossParts((loss1 + loss2).detach(), rec.detach(), series_loss.detach(), _detach(con))


def _detach(value: Tensor | None) -> Tensor | None:
    return value.detach() if value is not None else None
