"""AMAD building blocks: embedding, AutoMask local association, global attention, mixup, encoder.

Pure PyTorch, no device calls: constants are (non-persistent) buffers or are built on the input's
device. Every local-association variant (``spectral``, ``multiscale_gaussian``, ``gaussian``,
``free``) is a module with the same call signature ``mask(x) -> P``, and ``AssociationAttention``
composes one of them with the global (softmax) association and an optional mixup gate.

Causal (forecasting) layers. With ``causal=True`` (keyword of the embedding, every mask and the
attention) nothing at step ``j > i`` reaches row ``i``: the token convolution is padded on the left
only (it reads steps i-2..i), the masks are one-sided (offsets ``i - j >= 0``, zero elsewhere before
normalising) and the global softmax is masked above the diagonal. Both associations then have
exact zeros above the diagonal, where the symmetric KL contributes nothing, so the discrepancy,
Max-Min and the contrastive loss carry over unchanged.

Shape legend:
    b batch, t query steps (i), s key steps (j, == t), c channels, d model width,
    h heads, e head width (d // h), q mixture scales, r offsets (|i - j| or i - j + t - 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

MASK_EPS = 1e-6  # added to relu(m) before row-normalising the spectral kernel
FREQ_INIT = 1e-3  # initial spectral frequency (cycles per step); see SpectralMask


def sinusoidal_positions(n_steps: int, d_model: int) -> Tensor:
    """Fixed sinusoidal position table, (n_steps, d_model)."""
    pos = torch.arange(n_steps, dtype=torch.float32).unsqueeze(1)  # (t, 1)
    div = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )
    table = torch.zeros(n_steps, d_model)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
    return table


def future_mask(n_steps: int, device: torch.device) -> Tensor:
    """True where key step j lies after query step i: (t, s) bool."""
    ar = torch.arange(n_steps, device=device)
    return ar.unsqueeze(0) > ar.unsqueeze(1)


def abs_offsets(n_steps: int, device: torch.device) -> Tensor:
    """|i - j| for a window, (t, s) int64."""
    ar = torch.arange(n_steps, device=device)
    return (ar.unsqueeze(1) - ar.unsqueeze(0)).abs()


def toeplitz_rows(n: Tensor) -> Tensor:
    """(..., t, 2t-1) values over signed offsets r = j - i + t - 1 -> (..., t, s) matrix.

    The "skew" trick: row i of the result is the slice ``n[..., i, t-1-i : 2t-1-i]``, obtained with
    a flat slice and a reshape (views only), so no gather/scatter runs forward or backward.
    """
    t = n.shape[-2]
    if t == 1:
        return n
    flat = n.reshape(*n.shape[:-2], t * (2 * t - 1))  # (..., t*(2t-1))
    flat = flat[..., t - 1 : t - 1 + t * (2 * t - 2)]  # (..., t*(2t-2))
    return flat.reshape(*n.shape[:-2], t, 2 * t - 2)[..., :t]  # (..., t, s)


class _ToeplitzRowNormalise(torch.autograd.Function):
    """(..., t, 2t-1) mixed kernel -> P = normalise(relu(m) + eps) with m = toeplitz_rows(.).

    One fused function so forward and backward each allocate a single large tensor (on CPU every
    fresh (b, h, t, s) allocation page-faults; on GPU it costs memory).
    """

    @staticmethod
    def forward(ctx: Any, mixed: Tensor) -> Tensor:
        m = toeplitz_rows(mixed)  # (..., t, s) strided view
        p = torch.relu(m).add_(MASK_EPS)
        total = p.sum(dim=-1, keepdim=True)  # (..., t, 1)
        p.div_(total)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(p, total, m > 0)
            ctx.mixed_shape = mixed.shape
        return p

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        p, total, positive = ctx.saved_tensors
        grad_mixed = grad.new_zeros(ctx.mixed_shape)
        dot = torch.linalg.vecdot(grad, p).unsqueeze(-1)  # (..., t, 1): sum_j grad_j P_j
        g = toeplitz_rows(grad_mixed)  # (..., t, s) view into grad_mixed, filled in place
        g.copy_(grad).sub_(dot).div_(total).mul_(positive)
        return grad_mixed


class DataEmbedding(nn.Module):
    """Token convolution (kernel 3, circular) from c to d plus fixed sinusoidal positions."""

    positions: Tensor  # (max_len, d) buffer

    def __init__(
        self, *, n_channels: int, d_model: int, max_len: int, dropout: float, causal: bool = False
    ) -> None:
        super().__init__()
        self.causal = causal  # True: left (replicate) padding only, step i reads i-2..i
        self.token = nn.Conv1d(
            n_channels, d_model, kernel_size=3, padding=0 if causal else 1,
            padding_mode="zeros" if causal else "circular", bias=False,
        )  # fmt: skip
        nn.init.kaiming_normal_(self.token.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.register_buffer("positions", sinusoidal_positions(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(b, t, c) -> (b, t, d)."""
        xt = x.transpose(1, 2)  # (b, c, t)
        if self.causal:
            xt = nn.functional.pad(xt, (2, 0), mode="replicate")  # (b, c, t + 2)
        tokens = self.token(xt)  # (b, d, t)
        return self.dropout(tokens.transpose(1, 2) + self.positions[: x.shape[1]])


class GaussianMask(nn.Module):
    """Anomaly Transformer's prior: a Gaussian over |i - j| with a learned sigma per step and head.

    ``sigma = 3 ** (sigmoid(5 * W x_i) + 1e-5) - 1`` exactly as the official code; the row
    normalisation makes the 1 / (sqrt(2 pi) sigma) factor cancel, so P is a softmax of
    ``-|i-j|^2 / (2 sigma^2)``.
    """

    def __init__(self, *, d_model: int, n_heads: int, causal: bool = False) -> None:
        super().__init__()
        self.causal = causal
        self.sigma = nn.Linear(d_model, n_heads)

    def forward(self, x: Tensor) -> Tensor:
        """(b, t, d) -> P (b, h, t, s), rows sum to 1."""
        t = x.shape[1]
        raw = self.sigma(x).transpose(1, 2)  # (b, h, t)
        raw = raw.to(torch.promote_types(raw.dtype, torch.float32))  # the prior stays fp32
        sigma = torch.sigmoid(raw * 5) + 1e-5
        sigma = torch.pow(3, sigma) - 1
        dist2 = abs_offsets(t, x.device).to(sigma.dtype).square()  # (t, s)
        scale = -0.5 / sigma.square()  # (b, h, t)
        logits = scale.unsqueeze(-1) * dist2  # (b, h, t, s)
        if self.causal:
            logits = logits.masked_fill(future_mask(t, x.device), float("-inf"))
        return torch.softmax(logits, dim=-1)  # (b, h, t, s)


class SpectralMask(nn.Module):
    """AutoMask: a per-step mixture of Q spectral components over relative offsets.

    ``m_i(k) = sum_q w_iq exp(-k^2 / (2 s_q^2)) cos(2 pi f_q k)`` with per-head scales ``s_q``
    (geometric init 1, 2, 4, ...; kept positive as exp of a parameter), per-head frequencies
    ``f_q`` (init ``FREQ_INIT``, near 0 but not 0, where cos has no gradient; a fixed zero buffer
    when ``learn_frequency`` is False, which is the ``multiscale_gaussian`` variant) and ``w_iq = softmax_q(W x_i)``. The kernel is evaluated once
    per (head, scale) over the 2t-1 signed offsets, mixed per step, and laid out as (t, s) with the
    Toeplitz skew (no (b, h, t, s) distance tensors). ``P_i = normalise(relu(m_i) + eps)``.
    """

    def __init__(
        self,
        *,
        d_model: int,
        n_heads: int,
        n_scales: int,
        learn_frequency: bool = True,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.n_heads, self.n_scales, self.causal = n_heads, n_scales, causal
        init = torch.log(2.0 ** torch.arange(n_scales, dtype=torch.float32))  # (q,)
        self.log_scale = nn.Parameter(init.repeat(n_heads, 1))  # (h, q)
        if learn_frequency:
            # cos is even in f, so f = 0 exactly is a stationary point whose gradient is zero for
            # ever; a tiny start keeps the mask a multi-scale Gaussian but lets f learn.
            self.frequency = nn.Parameter(torch.full((n_heads, n_scales), FREQ_INIT))  # (h, q)
        else:
            self.register_buffer("frequency", torch.zeros(n_heads, n_scales), persistent=False)
        self.weights = nn.Linear(d_model, n_heads * n_scales)

    def kernel(self, n_steps: int, device: torch.device) -> Tensor:
        """The components over signed offsets, (h, q, 2t-1)."""
        k = torch.arange(1 - n_steps, n_steps, device=device, dtype=self.log_scale.dtype)  # (r,)
        scale = self.log_scale.exp().unsqueeze(-1)  # (h, q, 1)
        gauss = torch.exp(-0.5 * (k / scale).square())  # (h, q, r)
        return gauss * torch.cos(2 * math.pi * self.frequency.unsqueeze(-1) * k)

    def forward(self, x: Tensor) -> Tensor:
        """(b, t, d) -> P (b, h, t, s), rows sum to 1."""
        b, t, _ = x.shape
        logits = self.weights(x).view(b, t, self.n_heads, self.n_scales)  # (b, t, h, q)
        w = torch.softmax(logits, dim=-1).transpose(1, 2)  # (b, h, t, q)
        with torch.autocast(device_type=x.device.type, enabled=False):  # the mask stays fp32
            dtype = torch.promote_types(w.dtype, torch.float32)
            kern = self.kernel(t, x.device).to(dtype)  # (h, q, r)
            mixed = torch.matmul(w.to(dtype), kern)  # (b, h, t, q) @ (h, q, r) -> (b, h, t, r)
            if not self.causal:
                return _ToeplitzRowNormalise.apply(mixed)  # (b, h, t, s)
            p = (torch.relu(toeplitz_rows(mixed)) + MASK_EPS).masked_fill(
                future_mask(t, x.device), 0.0
            )  # (b, h, t, s): one-sided, offsets i - j >= 0 only
            return p / p.sum(dim=-1, keepdim=True)


class FreeMask(nn.Module):
    """A learnable bias per head and signed offset, softmax-normalised over j (ablation)."""

    def __init__(self, *, n_heads: int, max_len: int, causal: bool = False) -> None:
        super().__init__()
        self.max_len, self.causal = max_len, causal
        k = torch.arange(1 - max_len, max_len, dtype=torch.float32)  # (2L-1,)
        # start as a Gaussian of width 2 (log-kernel), so the mask begins local like the others
        self.bias = nn.Parameter((-0.5 * (k / 2.0).square()).repeat(n_heads, 1))  # (h, 2L-1)

    def forward(self, x: Tensor) -> Tensor:
        """(b, t, d) -> P (b, h, t, s) (expanded over b, no copy)."""
        b, t, _ = x.shape
        centre = self.max_len - 1
        bias = self.bias[:, centre - (t - 1) : centre + t]  # (h, 2t-1)
        rows = toeplitz_rows(bias.unsqueeze(1).expand(-1, t, -1).contiguous())  # (h, t, s)
        if self.causal:
            rows = rows.masked_fill(future_mask(t, x.device), float("-inf"))
        return torch.softmax(rows, dim=-1).unsqueeze(0).expand(b, -1, -1, -1)  # (b, h, t, s)


class MixupGate(nn.Module):
    """beta = sigmoid(.) per head, or per head and step from x_i; starts at 0.5."""

    def __init__(self, *, d_model: int, n_heads: int, per_step: bool) -> None:
        super().__init__()
        self.per_step = per_step
        self.head_logit = nn.Parameter(torch.zeros(n_heads))  # (h,)
        self.step = nn.Linear(d_model, n_heads) if per_step else None
        if self.step is not None:
            nn.init.zeros_(self.step.weight)
            nn.init.zeros_(self.step.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(b, t, d) -> beta broadcastable to (b, h, t, e): (h, 1, 1) or (b, h, t, 1)."""
        logit = self.head_logit.view(-1, 1, 1)  # (h, 1, 1)
        if self.step is not None:
            logit = logit + self.step(x).transpose(1, 2).unsqueeze(-1)  # (b, h, t, 1)
        return torch.sigmoid(logit)


@dataclass
class AttentionOutput:
    """One attention layer's results."""

    out: Tensor  # (b, t, d) after the output projection
    local: Tensor  # P (b, h, t, s)
    global_: Tensor  # S (b, h, t, s)
    z_local: Tensor | None  # P V merged over heads, (b, t, d); None when not needed
    z_global: Tensor  # S V merged over heads, (b, t, d)


def merge_heads(z: Tensor) -> Tensor:
    """(b, h, t, e) -> (b, t, h*e)."""
    b, h, t, e = z.shape
    return z.transpose(1, 2).reshape(b, t, h * e)


class AssociationAttention(nn.Module):
    """Global softmax association S, a local mask P, and their mixup A = beta P + (1-beta) S.

    ``A V`` is computed as ``beta * (P V) + (1 - beta) * (S V)`` so A is never materialised.
    Without a gate the representation is ``S V`` (Anomaly Transformer).
    """

    def __init__(
        self,
        *,
        d_model: int,
        n_heads: int,
        mask: nn.Module,
        gate: MixupGate | None,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.n_heads, self.causal = n_heads, causal
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.mask = mask
        self.gate = gate

    def forward(self, x: Tensor, *, latents: bool = True) -> AttentionOutput:
        """(b, t, d) -> AttentionOutput; ``latents=False`` skips P V when mixup is off."""
        b, t, d = x.shape
        h, e = self.n_heads, d // self.n_heads
        qkv = self.qkv(x).view(b, t, 3, h, e).permute(2, 0, 3, 1, 4)  # (3, b, h, t, e)
        q, k, v = qkv.unbind(0)  # unbind: one stack in backward, not three scatters
        scores = torch.matmul(q * (1.0 / math.sqrt(e)), k.transpose(-1, -2))  # (b, h, t, s)
        if self.causal:
            scores = scores.masked_fill(future_mask(t, x.device), float("-inf"))
        s_assoc = torch.softmax(
            scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32)
        )
        p_assoc = self.mask(x)  # (b, h, t, s)
        z_s = torch.matmul(s_assoc.to(v.dtype), v)  # (b, h, t, e)
        z_p = torch.matmul(p_assoc.to(v.dtype), v) if (self.gate or latents) else None
        if self.gate is not None and z_p is not None:
            beta = self.gate(x).to(v.dtype)
            mixed = z_s + beta * (z_p - z_s)  # beta P V + (1 - beta) S V
        else:
            mixed = z_s
        return AttentionOutput(
            out=self.out(merge_heads(mixed)),
            local=p_assoc,
            global_=s_assoc,
            z_local=merge_heads(z_p) if z_p is not None else None,
            z_global=merge_heads(z_s),
        )


class EncoderLayer(nn.Module):
    """Attention, residual, LayerNorm, feed-forward (GELU), residual, LayerNorm (post-norm, AT)."""

    def __init__(
        self, *, attention: AssociationAttention, d_model: int, d_ff: int, dropout: float
    ) -> None:
        super().__init__()
        self.attention = attention
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, *, latents: bool = True) -> tuple[Tensor, AttentionOutput]:
        """(b, t, d) -> (b, t, d) and the layer's associations."""
        att = self.attention(x, latents=latents)
        x = self.norm1(x + self.dropout(att.out))
        return self.norm2(x + self.dropout(self.ff(x))), att
