"""The spread term of the anomaly score: how unusual each channel's local variability is.

A forecast (or reconstruction) error measures how surprising a window's *values* are. A channel
that gets stuck (a flatline) is *less* surprising than normal data to a model that predicts
from its own history, and a model can learn to follow a channel that turns noisy. The spread
term looks at the input window itself: per channel ``s_c = log(std of the window's first
differences + EPS)``, standardised with the mean and std of ``s_c`` over the validation windows of
the training period, clipped to ``+-SPREAD_CLIP``, squared and averaged over the scored
channels. It is about 1 on validation data and up to ``SPREAD_CLIP ** 2`` on a window where a
channel stops moving or becomes much noisier (or much faster) than it ever was in training.

With ``model.spread = w > 0`` the model holds the statistics in a buffer
``score_spread_stats (2, c)`` (mean and std per channel; registered only then, so models without
the term keep their state dict), :func:`calibrate_spread` sets it next to the other score
statistics, and the ``normalized`` score adds ``w`` times the term at every step of the window
(``calibrated``, which multiplies ``normalized``, with it). ``w = 0`` (the default) is off.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from amad.config import ModelConfig

SPREAD_CLIP = 4.0  # |z| of a channel's log spread is clipped here
EPS = 1e-4  # added to the std (scaled units) so a constant channel has a finite log spread


def log_spread(batch: torch.Tensor) -> torch.Tensor:
    """(b, t, c) -> (b, c): log of each channel's std of first differences over the window."""
    diffs = batch[:, 1:].float() - batch[:, :-1].float()  # (b, t - 1, c)
    return torch.log(diffs.std(dim=1, unbiased=False) + EPS)


def spread_weight(model: torch.nn.Module) -> float:
    """The model's ``model.spread`` weight; 0 when off, uncalibrated or a foreign module."""
    if getattr(model, "score_spread_stats", None) is None:
        return 0.0
    return float(getattr(getattr(model, "cfg", None), "spread", 0.0))


def _deadzone(model: torch.nn.Module) -> float:
    return float(getattr(getattr(model, "cfg", None), "spread_deadzone", 0.0))


def spread_term(
    model: torch.nn.Module, batch: torch.Tensor, channels: torch.Tensor | None = None
) -> torch.Tensor | None:
    """(b, t, c) -> (b,): the weighted spread term of each window over ``channels`` (indices,
    None: all); None when the model has no spread term."""
    weight = spread_weight(model)
    if weight <= 0:
        return None
    stats = torch.as_tensor(model.score_spread_stats).to(batch.device)  # (2, c)
    z = ((log_spread(batch) - stats[0]) / stats[1]).abs().clamp_max(SPREAD_CLIP)
    z = (z - _deadzone(model)).clamp_min(0.0).pow(2)
    if channels is not None:
        z = z[:, channels]  # (b, S)
    return weight * z.mean(dim=-1)


@torch.inference_mode()
def calibrate_spread(
    model: torch.nn.Module, val_windows: np.ndarray, *, batch_size: int = 256
) -> None:
    """Set ``score_spread_stats`` from validation windows ``(n, t, c)``; no-op without it."""
    stats = getattr(model, "score_spread_stats", None)
    if stats is None:
        return
    parts = [
        log_spread(torch.from_numpy(np.array(val_windows[lo : lo + batch_size], np.float32)))
        for lo in range(0, val_windows.shape[0], batch_size)
    ]
    values = torch.cat(parts).double()  # (n, c)
    std = values.std(dim=0) if values.shape[0] > 1 else torch.ones(values.shape[1])
    stats.copy_(torch.stack([values.mean(dim=0), std.clamp_min(1e-3)]).to(stats))


def with_spread(
    model: torch.nn.Module, weight: float, deadzone: float, val_windows: np.ndarray,
    *, batch_size: int = 256,
) -> torch.nn.Module:  # fmt: skip
    """``model`` scored with another ``model.spread`` weight and dead zone: the same trained
    weights (the term never enters training), as a copy, so ``model`` itself is unchanged.

    A model trained without the term gets its statistics from ``val_windows (n, t, c)``, the
    validation windows ``calibrate`` would have used. ``model`` itself when nothing changes.
    """
    cfg: ModelConfig = getattr(model, "cfg")  # noqa: B009 (an AMAD, typed as a Module)
    if (cfg.spread, cfg.spread_deadzone) == (weight, deadzone):
        return model
    out = copy.deepcopy(model)
    setattr(out, "cfg", cfg.model_copy(update={"spread": weight, "spread_deadzone": deadzone}))  # noqa: B010
    if weight > 0 and getattr(out, "score_spread_stats", None) is None:
        out.add_spread_stats(int(val_windows.shape[-1]))  # type: ignore[operator]
        calibrate_spread(out, val_windows, batch_size=batch_size)
    return out
