"""The AMAD model: embedding, a stack of AutoMask encoder layers, and a reconstruction head.

``AMAD(cfg, n_channels=c)`` is built only from ``ModelConfig``; ``forward`` always returns one
``ModelOutput``. The losses live in ``amad.nn.losses``; the contrastive projection head lives here
because it is trained with the model. With ``mask="gaussian"`` and ``mixup=False`` (and the
contrastive loss off in training) this is an Anomaly Transformer reproduction.

Callers pick device and precision: the model is bf16-autocast safe (associations, masks and
losses stay fp32) and traces into one ``torch.compile`` graph. Pass ``latents=False`` when the
contrastive projections are not needed (evaluation, scoring, training without InfoNCE).

Score calibration. Two persistent buffers hold statistics of the *validation* period that the
anomaly score is normalised with (``amad.detector.scoring``): ``score_channel_scale (c,)``, each channel's
mean squared reconstruction error, and ``score_dis_stats (2,)``, the mean and standard deviation
of the per-step association discrepancy. They are not trained: ``amad.detector.train.fit`` sets them from
the validation windows after training (like BatchNorm's running statistics), so they are saved
and loaded with the weights. A fresh model holds ones and (0, 1), i.e. no normalisation. With
``model.spread > 0`` a third, ``score_spread_stats (2, c)``, holds each channel's validation
mean and std of its windows' log spread (``amad.detector.spread``).

Hidden-step reconstruction (``hide_passes = m >= 2``). A reconstruction model that sees a step
can copy it, anomalies included. With hiding on, step ``i`` belongs to phase
``(i // hide_block) % m``; a pass for phase ``j`` zeroes those steps in the input and adds a learned
``hide_token`` to their embeddings, so nothing of their values reaches the network (the kernel-3
token convolution of a neighbour sees the zero too). In training each window hides one random
phase and the reconstruction loss counts the hidden steps only (``ModelOutput.hidden``). In
evaluation the model runs all ``m`` passes and returns, for every step, the outputs of the pass
that hid it: every score is then an error of predicting the step from its context. This costs
``m`` forward passes when scoring and nothing extra in training.

Forecasting (``objective="forecast"``). Embedding, masks and global attention are causal
(``amad.nn.layers``), so position ``i`` sees steps ``<= i`` only, and the head's output at ``i`` is
the forecast of step ``i + 1``. ``ModelOutput.recon`` is stored *aligned with its target*:
``recon[:, j]`` is the forecast of ``x[:, j]`` made from steps ``< j`` (``recon[:, 0]`` is zero, no
forecast exists), so every error ``recon - x`` is a forecast error, and ``step_weight (t,)`` marks
the positions that train and score: 1 from ``warmup + 1`` on, 0 before (the first positions have
too little history). Scoring folds windows with those weights.

Channel independence (``channels="independent"``, PatchTST style). The channels are folded into
the batch, ``(b, t, c) -> (b*c, t, 1)``: one univariate sequence per channel through shared
weights, with a learned channel embedding (c, d) added to every token, so each channel is
predicted from its own history only. The outputs are unfolded: ``recon`` back to (b, t, c), the
associations to (b, c*h, t, s) (channels read as extra heads, so per-step discrepancies stay
(b, t)); the contrastive latents stay folded, (b*c, t, p). Not combined with hidden steps.

Shape legend: b batch, t steps, s key steps, c channels, d model width, h heads, p projection width
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from amad.config import ModelConfig
from amad.nn.layers import (
    AssociationAttention,
    DataEmbedding,
    EncoderLayer,
    FreeMask,
    GaussianMask,
    MixupGate,
    SpectralMask,
)


@dataclass
class ModelOutput:
    """Everything the losses and scores need from one forward pass (lists: one item per layer)."""

    recon: Tensor  # (b, t, c)
    local: list[Tensor]  # P (b, h, t, s), rows sum to 1
    global_: list[Tensor]  # S (b, h, t, s), rows sum to 1
    z_local: list[Tensor] = field(default_factory=list)  # projected P V (b, t, p); [] if skipped
    z_global: list[Tensor] = field(default_factory=list)  # projected S V (b, t, p); [] if skipped
    hidden: Tensor | None = None  # (b, t) bool: steps hidden from the input (training only)
    step_weight: Tensor | None = None  # (t,) 1 where recon estimates x (forecast), None: all


def _mask_builders(cfg: ModelConfig) -> dict[str, Callable[[], nn.Module]]:
    d, h, causal = cfg.d_model, cfg.n_heads, cfg.objective == "forecast"
    return {
        "spectral": lambda: SpectralMask(
            d_model=d, n_heads=h, n_scales=cfg.n_scales, causal=causal
        ),
        "multiscale_gaussian": lambda: SpectralMask(
            d_model=d, n_heads=h, n_scales=cfg.n_scales, learn_frequency=False, causal=causal
        ),
        "gaussian": lambda: GaussianMask(d_model=d, n_heads=h, causal=causal),
        "free": lambda: FreeMask(n_heads=h, max_len=cfg.max_len, causal=causal),
    }


def build_layer(cfg: ModelConfig) -> EncoderLayer:
    """One encoder layer with the configured mask variant and mixup switch."""
    mask = _mask_builders(cfg)[cfg.mask]()
    gate = (
        MixupGate(d_model=cfg.d_model, n_heads=cfg.n_heads, per_step=cfg.mixup_per_step)
        if cfg.mixup
        else None
    )
    attention = AssociationAttention(
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        mask=mask,
        gate=gate,
        causal=cfg.objective == "forecast",
    )
    return EncoderLayer(
        attention=attention, d_model=cfg.d_model, d_ff=cfg.d_ff, dropout=cfg.dropout
    )


class AMAD(nn.Module):
    """AutoMasked-attention reconstruction model for windows of multivariate telemetry."""

    def __init__(self, cfg: ModelConfig, *, n_channels: int) -> None:
        super().__init__()
        if n_channels < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}")
        self.cfg = cfg
        self.n_channels = n_channels
        self.forecast = cfg.objective == "forecast"
        self.independent = cfg.channels == "independent"
        width = 1 if self.independent else n_channels  # channels per token
        self.embedding = DataEmbedding(
            n_channels=width, d_model=cfg.d_model, max_len=cfg.max_len, dropout=cfg.dropout,
            causal=self.forecast,
        )  # fmt: skip
        if self.independent:  # only then, so mixed-channel bundles keep their state dict
            self.channel_embedding = nn.Parameter(torch.randn(n_channels, cfg.d_model) * 0.02)
        self.layers = nn.ModuleList(build_layer(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, width)
        self.projection = nn.Linear(cfg.d_model, cfg.proj_dim)  # contrastive head, shared
        if cfg.hide_passes:  # only then, so bundles without hiding keep their state dict
            self.hide_token = nn.Parameter(torch.zeros(cfg.d_model))  # (d,)
        self.score_channel_scale: Tensor
        self.score_dis_stats: Tensor
        self.register_buffer("score_channel_scale", torch.ones(n_channels))  # (c,)
        self.register_buffer("score_dis_stats", torch.tensor([0.0, 1.0]))  # (mean, std)
        if cfg.spread > 0:  # only then, so bundles without the spread term keep their state dict
            self.score_spread_stats: Tensor
            self.add_spread_stats(n_channels)

    def add_spread_stats(self, n_channels: int) -> None:
        """Register ``score_spread_stats (2, c)`` (mean 0, std 1 until calibrated)."""
        stats = torch.stack([torch.zeros(n_channels), torch.ones(n_channels)])
        self.register_buffer("score_spread_stats", stats.to(self.score_channel_scale.device))

    def _check(self, x: Tensor) -> None:
        if x.ndim != 3:
            raise ValueError(f"expected input (batch, steps, channels), got shape {tuple(x.shape)}")
        if x.shape[-1] != self.n_channels:
            raise ValueError(
                f"expected {self.n_channels} channels, got {x.shape[-1]} (shape {tuple(x.shape)})"
            )
        if not 1 <= x.shape[1] <= self.cfg.max_len:
            raise ValueError(f"window length {x.shape[1]} outside 1..{self.cfg.max_len}")
        if x.shape[0] < 1:
            raise ValueError("empty batch")

    def step_weights(self, n_steps: int) -> Tensor:
        """(t,) float: 1 where ``recon`` estimates the step and counts (forecast: after warm-up)."""
        weight = torch.ones(n_steps, device=self.score_channel_scale.device)
        if self.forecast:
            weight[: min(self.cfg.warmup + 1, n_steps)] = 0.0
        return weight

    def forward(self, x: Tensor, *, latents: bool = True) -> ModelOutput:
        """(b, t, c) -> ModelOutput. ``latents=False`` skips the contrastive projections
        (inference and training without the contrastive loss), leaving z lists empty."""
        self._check(x)
        if self.independent:
            return self._forward_independent(x, latents=latents)
        m = self.cfg.hide_passes
        if not m:
            return self._encode(x, None, latents=latents)
        phase = (torch.arange(x.shape[1], device=x.device) // self.cfg.hide_block) % m  # (t,)
        if self.training:  # one random phase per window
            pick = torch.randint(m, (x.shape[0], 1), device=x.device)  # (b, 1)
            hidden = phase[None, :] == pick  # (b, t)
            out = self._encode(x, hidden, latents=latents)
            out.hidden = hidden
            return out
        passes = [
            self._encode(x, (phase == j)[None, :].expand(x.shape[0], -1), latents=latents)
            for j in range(m)
        ]
        return _compose(passes, phase)

    def _forward_independent(self, x: Tensor, *, latents: bool) -> ModelOutput:
        """Channels folded into the batch: (b, t, c) -> (b*c, t, 1) -> outputs unfolded."""
        b, t, c = x.shape
        folded = x.transpose(1, 2).reshape(b * c, t, 1)  # (b*c, t, 1), channel-major per window
        bias = self.channel_embedding.repeat(b, 1).unsqueeze(1)  # (b*c, 1, d)
        out = self._encode(folded, None, latents=latents, token_bias=bias)

        def heads(a: Tensor) -> Tensor:  # (b*c, h, t, s) -> (b, c*h, t, s)
            return a.reshape(b, c * a.shape[1], *a.shape[2:])

        return ModelOutput(
            recon=out.recon.reshape(b, c, t).transpose(1, 2),  # (b, t, c)
            local=[heads(a) for a in out.local],
            global_=[heads(a) for a in out.global_],
            z_local=out.z_local,  # (b*c, t, p)
            z_global=out.z_global,
            step_weight=out.step_weight,
        )

    def _encode(
        self,
        x: Tensor,
        hidden: Tensor | None,
        *,
        latents: bool,
        token_bias: Tensor | None = None,
    ) -> ModelOutput:
        """One pass with the steps where ``hidden (b, t)`` is True hidden (None: none);
        ``token_bias`` (b, 1, d) is added to every token (the channel embedding)."""
        if hidden is not None:
            x = x.masked_fill(hidden[..., None], 0.0)
        h = self.embedding(x)  # (b, t, d)
        if token_bias is not None:
            h = h + token_bias
        if hidden is not None:
            h = torch.where(hidden[..., None], h + self.hide_token, h)
        local: list[Tensor] = []
        global_: list[Tensor] = []
        z_local: list[Tensor] = []
        z_global: list[Tensor] = []
        for layer in self.layers:
            h, att = layer(h, latents=latents)
            local.append(att.local)
            global_.append(att.global_)
            if latents and att.z_local is not None:
                z_local.append(self.projection(att.z_local))  # (b, t, p)
                z_global.append(self.projection(att.z_global))
        recon = self.head(self.norm(h))  # (b, t, c)
        weight = None
        if self.forecast:  # the output at i forecasts i + 1: align it with its target
            recon = torch.cat([torch.zeros_like(recon[:, :1]), recon[:, :-1]], dim=1)  # (b, t, c)
            weight = self.step_weights(x.shape[1]).to(recon.dtype)  # (t,)
        return ModelOutput(
            recon=recon, local=local, global_=global_, z_local=z_local, z_global=z_global,
            step_weight=weight,
        )  # fmt: skip


def _compose(passes: list[ModelOutput], phase: Tensor) -> ModelOutput:
    """For every step (and every query row of the associations), the pass that hid it."""

    def pick(tensors: list[Tensor], step_dim: int) -> Tensor:
        shape = [1] * tensors[0].ndim
        shape[step_dim] = -1
        return sum(  # type: ignore[return-value]
            t * (phase == j).view(shape).to(t.dtype) for j, t in enumerate(tensors)
        )

    first = passes[0]
    return ModelOutput(
        recon=pick([p.recon for p in passes], 1),
        local=[pick([p.local[i] for p in passes], 2) for i in range(len(first.local))],
        global_=[pick([p.global_[i] for p in passes], 2) for i in range(len(first.global_))],
        z_local=[pick([p.z_local[i] for p in passes], 1) for i in range(len(first.z_local))],
        z_global=[pick([p.z_global[i] for p in passes], 1) for i in range(len(first.z_global))],
    )
