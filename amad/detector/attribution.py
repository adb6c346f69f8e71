"""Which channels drove a score: per-step, per-channel normalised errors, where they are asked for.

``amad.detector.scoring`` averages each step's squared error over channels (after dividing each
channel by its validation error scale, the ``normalized`` score). An alert must say *which*
metrics were off, so :func:`channel_errors` recomputes the same per-channel terms, un-averaged,
for the scoring windows that cover the requested steps only (the flagged ones): the cost is
proportional to the alerts, not to the batch. Overlapping windows are averaged per step as the
score does (a forecaster's warm-up positions weigh 0); steps not asked for are NaN.

Shape legend: n windows, b batch, t window steps, c channels, T series steps.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from amad.config import WindowConfig
from amad.detector.scoring import channel_scale
from amad.series.windows import window_starts

log = logging.getLogger(__name__)


@torch.inference_mode()
def _window_channel_errors(
    model: torch.nn.Module, windows: np.ndarray, *, batch_size: int, channel_floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """(n, t, c) squared error / channel scale, and (t,) the fold weight per position."""
    model.eval()
    device = next(model.parameters()).device
    scale = channel_scale(model, windows.shape[-1], device, floor=channel_floor)  # (c,)
    out = np.empty(windows.shape, dtype=np.float64)
    weight = np.ones(windows.shape[1])
    for lo in range(0, windows.shape[0], batch_size):
        batch = torch.from_numpy(np.array(windows[lo : lo + batch_size], dtype=np.float32))
        pred = model(batch.to(device), latents=False)
        err = (pred.recon.float() - batch.to(device)).pow(2) / scale  # (b, t, c)
        out[lo : lo + len(batch)] = err.cpu().numpy()
        step_weight = getattr(pred, "step_weight", None)  # (t,) a forecaster's warm-up is 0
        if step_weight is not None:
            weight = step_weight.detach().float().cpu().numpy().astype(np.float64)
    return out, weight


def channel_errors(
    model: torch.nn.Module,
    x_scaled: np.ndarray,
    window_cfg: WindowConfig,
    steps: np.ndarray,
    *,
    batch_size: int = 256,
    channel_floor: float = 0.0,
) -> np.ndarray:
    """(T, C) normalised squared error per channel at the True steps of ``steps (T,)``, else NaN."""
    n_steps, n_channels = x_scaled.shape
    wanted = np.asarray(steps, dtype=bool)
    result = np.full((n_steps, n_channels), np.nan)
    if wanted.shape != (n_steps,):
        raise ValueError(f"steps has shape {wanted.shape}, expected ({n_steps},)")
    if not wanted.any():
        return result
    length = window_cfg.length
    starts = window_starts(n_steps, length, window_cfg.score_stride)
    covered = np.concatenate([[0], np.cumsum(wanted)])  # wanted steps before each index
    keep = starts[covered[starts + length] > covered[starts]]  # windows holding a wanted step
    windows = np.stack([x_scaled[s : s + length] for s in keep])  # (n, t, c)
    errs, weight = _window_channel_errors(
        model, windows, batch_size=batch_size, channel_floor=channel_floor
    )
    idx = (keep[:, None] + np.arange(length)).ravel()  # (n * t,)
    w = np.broadcast_to(weight, (len(keep), length)).ravel()
    mass = np.bincount(idx, weights=w, minlength=n_steps)
    for ch in range(n_channels):
        sums = np.bincount(idx, weights=errs[:, :, ch].ravel() * w, minlength=n_steps)
        result[:, ch] = np.divide(sums, mass, out=np.full(n_steps, np.nan), where=mass > 0)
    missing, scored = np.flatnonzero(wanted & (mass == 0)), np.flatnonzero(mass > 0)
    if len(missing) and len(scored):  # only at warm-up positions: the nearest scored step's,
        nearest = scored[np.abs(scored[None, :] - missing[:, None]).argmin(axis=1)]
        result[missing] = result[nearest]  # as fold_window_scores does for the score
    result[~wanted] = np.nan
    log.debug("channel errors: %d windows for %d flagged steps", len(keep), int(wanted.sum()))
    return result
