"""Per-step anomaly scores from a trained model (thresholds on them: ``amad.detector.thresholds``).

Scores. A scaled series ``x (T, C)`` is cut into scoring windows of ``windows.length`` steps with
``windows.score_stride`` (non-overlapping when stride == length, the default; a smaller stride
averages every step over all windows that cover it). For each window the model reconstructs the
input; per step we keep

- ``reconstruction``: the squared reconstruction error averaged over channels;
- ``normalized`` (the default): each channel's squared error divided by that channel's mean
  error on the validation windows of the training period, then averaged over channels, so a
  channel that is always hard to reconstruct does not dominate the score;
- ``calibrated``: ``normalized * exp(sign * clip(z, -c, c))`` where ``z`` is the step's
  association discrepancy standardised with its validation mean and std (``score.dis_clip`` = c);
- ``association``: Anomaly Transformer's form, ``L * softmax_t(-T * dis_t) * rec_t``, where
  ``dis_t`` is the local/global association discrepancy at step ``t`` and the softmax runs over
  the window (the factor ``L`` only makes the weight average 1, it does not change a ranking).

The validation statistics (per-channel error scale, discrepancy mean and std) are set once by
:func:`calibrate`, which ``amad.detector.train.fit`` calls on its validation windows after training; they
live in the model's ``score_*`` buffers and travel with the weights. A model that was never
calibrated has scale 1 and statistics (0, 1).

Smoothing. Every per-step score is finally averaged over ``score.smooth`` neighbouring steps
(centred; 1 turns it off). Thresholds are fitted on validation scores smoothed the same way.

Orientation. Anomaly Transformer assumes anomalies have a *low* discrepancy (``paper``, hence
``-T``); the official checkpoint and our dev entities favoured the *high*-discrepancy sign.
``score.orientation`` is ``paper``, ``flipped`` (the default) or ``auto``: ``amad.detector.orientation``
injects spikes into the *validation* split and keeps the sign under which the discrepancy ranks
them higher (label-free; it can pick the sign real incidents contradict). Test labels are never
looked at. Only ``association`` and ``calibrated`` use the sign.

Boundary artefact. ``dis`` is computed per query row (symmetric KL of row i of P and S), which is
right; but the local prior is truncated at the window edges, so ``dis`` has a systematic profile
over the position in the window, and the window softmax of ``association`` turns it into a
nearly one-hot weight on the edge steps. ``calibrated`` replaces the softmax by a z-score with
validation statistics (no reference to the window, no collapse); overlapping scoring windows
(``windows.score_stride < length``) average each step over several positions. The measurements
behind these choices: ``benchmarks/TUNING.md`` (sections 2, 6 and 12).

Shape legend: n windows, b batch, t window steps (L), c channels, T series steps.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from amad.config import ScoreConfig, WindowConfig
from amad.detector.spread import calibrate_spread, spread_term
from amad.errors import ConfigError, DataError
from amad.nn import losses
from amad.series.data import channel_indices
from amad.series.windows import fold_window_scores, sliding_windows, smooth_steps, window_starts

log = logging.getLogger(__name__)

ORIENTATION_SIGN = {"paper": -1.0, "flipped": 1.0}
_PROGRESS_MIN_WINDOWS = 64  # below this, no progress bar even when asked for


SCORE_KINDS = ("reconstruction", "normalized", "calibrated", "association")


@dataclass(frozen=True)
class StepScores:
    """Per-step scores of one series; every array has length T (see the module docstring)."""

    reconstruction: np.ndarray  # (T,) squared error, mean over channels
    association: np.ndarray  # (T,) Anomaly Transformer's window-softmax-weighted squared error
    discrepancy: np.ndarray  # (T,) association discrepancy (for orientation checks)
    normalized: np.ndarray  # (T,) squared error / validation error per channel, mean over channels
    calibrated: np.ndarray  # (T,) normalized * exp(sign * clip(z(discrepancy)))

    def of(self, kind: str) -> np.ndarray:
        """The score named by ``ScoreConfig.kind``."""
        if kind not in SCORE_KINDS:
            raise ConfigError(f"unknown score kind {kind!r}; one of {', '.join(SCORE_KINDS)}")
        scores: np.ndarray = getattr(self, kind)
        return scores


def validate_series(x: np.ndarray, *, n_channels: int, min_steps: int, what: str = "input") -> None:
    """Raise ``DataError`` naming the problem if ``x`` cannot be scored as a (T, C) series."""
    if x.ndim != 2:
        raise DataError(f"{what} must be 2-D (steps, channels), got shape {x.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{what} is empty (0 steps)")
    if x.shape[1] != n_channels:
        raise DataError(f"{what} has {x.shape[1]} channels, the model expects {n_channels}")
    if x.shape[0] < min_steps:
        raise DataError(f"{what} has {x.shape[0]} steps, at least {min_steps} (one window) needed")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{what} is not numeric (dtype {x.dtype})")
    bad = ~np.isfinite(x)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise DataError(
            f"{what} has {int(bad.sum())} NaN/inf values (first at step {rows[0]}, channel {cols[0]})"
        )


@dataclass(frozen=True)
class WindowTerms:
    """Per-window, per-step model outputs, each (n, t)."""

    rec: np.ndarray  # squared error, mean over channels
    normalized: np.ndarray  # squared error / the model's validation scale, mean over channels
    dis: np.ndarray  # association discrepancy


def channel_scale(
    model: torch.nn.Module, n_channels: int, device: torch.device, *, floor: float = 0.0
) -> torch.Tensor:
    """The model's per-channel error scale (c,), each at least ``floor`` x the channels' mean
    (so a channel that was nearly constant in validation cannot dominate); ones when absent."""
    scale = getattr(model, "score_channel_scale", None)  # (c,); absent on foreign modules
    if scale is None:
        return torch.ones(n_channels, device=device)
    scale = scale.to(device=device, dtype=torch.float32)
    return scale.clamp_min(floor * float(scale.mean())) if floor > 0 else scale


def step_weights(model: torch.nn.Module, n_steps: int) -> np.ndarray:
    """(t,) fold weight per window position: 0 where the model makes no real estimate (a
    forecaster's warm-up), 1 elsewhere; ones for a model without ``step_weights``."""
    weights = getattr(model, "step_weights", None)
    if weights is None:
        return np.ones(n_steps)
    return np.asarray(weights(n_steps).detach().cpu().numpy(), dtype=np.float64)


def dis_stats(model: torch.nn.Module) -> tuple[float, float]:
    """(mean, std) of the validation discrepancy held by the model; (0, 1) when absent."""
    stats_ = getattr(model, "score_dis_stats", None)
    if stats_ is None:
        return 0.0, 1.0
    mean, std = (float(v) for v in stats_.detach().cpu())
    return mean, std


def _window_terms(
    model: torch.nn.Module,
    batch: torch.Tensor,
    scale: torch.Tensor,
    channels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared error, error / ``scale (c,)`` and discrepancy of one batch: all (b, t). With
    ``channels (S,)`` only those channels' errors are averaged (all stay model inputs); with
    ``model.spread`` on, the normalized term adds the window's spread term (amad.detector.spread)."""
    out = model(batch, latents=False)
    err = (out.recon.float() - batch).pow(2)  # (b, t, c)
    dis = losses.association_discrepancy(out.local, out.global_).float()  # (b, t)
    normalized = err / scale
    if channels is not None:
        err, normalized = err[..., channels], normalized[..., channels]  # (b, t, S)
    spread = spread_term(model, batch, channels)  # (b,) or None (model.spread off)
    norm = normalized.mean(dim=-1) if spread is None else normalized.mean(dim=-1) + spread[:, None]
    return err.mean(dim=-1), norm, dis


def _channel_index(
    channels: np.ndarray | None, n_channels: int, device: torch.device
) -> torch.Tensor | None:
    """``channels`` as an index tensor (S,) on ``device``; None (all) stays None."""
    if channels is None:
        return None
    index = np.asarray(channels, dtype=np.int64).reshape(-1)
    if index.size == 0 or index.min() < 0 or index.max() >= n_channels:
        raise ConfigError(f"score channels {index.tolist()} not within 0..{n_channels - 1}")
    return torch.from_numpy(index).to(device)


@torch.inference_mode()
def window_scores(
    model: torch.nn.Module,
    windows: np.ndarray,
    *,
    batch_size: int = 256,
    progress: bool = False,
    channel_floor: float = 0.0,
    channels: np.ndarray | None = None,
) -> WindowTerms:
    """Per-window squared error, normalised error and discrepancy, (n, t) each, of (n, t, c);
    the errors over ``channels`` (indices, (S,)) only when given."""
    model.eval()
    device = next(model.parameters()).device
    scale = channel_scale(model, windows.shape[-1], device, floor=channel_floor)  # (c,)
    picked = _channel_index(channels, windows.shape[-1], device)
    n = windows.shape[0]
    outs = [np.empty(windows.shape[:2], dtype=np.float64) for _ in range(3)]
    bar = tqdm(
        total=n,
        unit="win",
        desc="scoring",
        file=sys.stderr,
        disable=not progress or n < _PROGRESS_MIN_WINDOWS,
        leave=False,
    )
    with bar:
        for lo in range(0, n, batch_size):
            chunk = np.array(windows[lo : lo + batch_size], dtype=np.float32)  # writable copy
            batch = torch.from_numpy(chunk).to(device)  # (b, t, c)
            for arr, term in zip(outs, _window_terms(model, batch, scale, picked), strict=True):
                arr[lo : lo + len(chunk)] = term.cpu().numpy()
            bar.update(len(chunk))
    return WindowTerms(rec=outs[0], normalized=outs[1], dis=outs[2])


@torch.inference_mode()
def calibrate(model: torch.nn.Module, val_windows: np.ndarray, *, batch_size: int = 256) -> None:
    """Set the model's score statistics from validation windows ``(n, t, c)`` of the training
    period: each channel's mean squared error and the discrepancy's mean and std."""
    scale = getattr(model, "score_channel_scale", None)
    stats_ = getattr(model, "score_dis_stats", None)
    if scale is None or stats_ is None:
        raise ConfigError(f"{type(model).__name__} has no score calibration buffers")
    model.eval()
    device = scale.device
    err_sum = torch.zeros(scale.shape, dtype=torch.float64, device=device)  # (c,)
    dis_all: list[torch.Tensor] = []
    for lo in range(0, val_windows.shape[0], batch_size):
        chunk = np.array(val_windows[lo : lo + batch_size], dtype=np.float32)
        batch = torch.from_numpy(chunk).to(device)  # (b, t, c)
        out = model(batch, latents=False)
        w = (
            torch.ones(batch.shape[1], device=device)
            if out.step_weight is None
            else out.step_weight
        )
        err = (out.recon.float() - batch).pow(2) * w.float().view(1, -1, 1)  # (b, t, c)
        err_sum += err.sum(dim=(0, 1)).double()
        dis_all.append(losses.association_discrepancy(out.local, out.global_).float().flatten())
    n_steps = val_windows.shape[0] * float(step_weights(model, val_windows.shape[1]).sum())
    mean_err = (err_sum / max(n_steps, 1)).float()
    floor = 1e-6 * float(mean_err.mean()) + 1e-12  # a perfectly reconstructed channel stays finite
    dis = torch.cat(dis_all).double()
    scale.copy_(mean_err.clamp_min(floor))
    std = float(dis.std()) if dis.numel() > 1 else 1.0
    stats_.copy_(torch.tensor([float(dis.mean()), std + 1e-12], device=device))
    calibrate_spread(model, val_windows, batch_size=batch_size)
    log.info("score calibration: channel error scale %.3g..%.3g, dis %.4g +- %.3g",
             float(scale.min()), float(scale.max()), float(stats_[0]), float(stats_[1]))  # fmt: skip


def association_weight(dis: np.ndarray, *, temperature: float, sign: float) -> np.ndarray:
    """``L * softmax_t(sign * T * dis)`` per window: (n, t) -> (n, t), mean 1 per window."""
    logits = sign * temperature * dis
    logits = logits - logits.max(axis=-1, keepdims=True)
    w = np.exp(logits)
    return w * (dis.shape[-1] / w.sum(axis=-1, keepdims=True))


def calibrated_score(
    normalized: np.ndarray, dis: np.ndarray, *, mean: float, std: float, sign: float, clip: float
) -> np.ndarray:
    """``normalized * exp(sign * clip(z))`` with ``z = (dis - mean) / std`` (validation stats).

    Unlike the window softmax this weight has no reference to the window: a step's weight depends
    on its own discrepancy only, so there is no edge effect and no collapse to 0.
    """
    z = np.clip((dis - mean) / std, -clip, clip)
    return np.asarray(normalized * np.exp(sign * z), dtype=np.float64)


def config_channels(cfg: ScoreConfig) -> np.ndarray | None:
    """``score.channels`` as indices (None: all); names must have been resolved first."""
    if cfg.channels is None:
        return None
    names = [c for c in cfg.channels if not isinstance(c, int)]
    if names:
        raise ConfigError(
            f"score.channels names {names[:3]} must be resolved to indices before scoring "
            "(resolve_config_channels, with the series' channel names)"
        )
    return np.asarray(cfg.channels, dtype=np.int64)


def resolve_config_channels(
    cfg: ScoreConfig, n_channels: int, names: list[str] | None
) -> list[int] | None:
    """``score.channels`` with every name replaced by its 0-based index in ``names``."""
    if cfg.channels is None:
        return None
    return list(channel_indices(cfg.channels, n_channels, names, what="score.channels"))


def _sign(cfg: ScoreConfig) -> float:
    orientation = getattr(cfg, "orientation", "paper")
    if orientation == "auto":
        raise ConfigError(
            "score.orientation is 'auto': resolve it with check_orientation() before scoring"
        )
    return ORIENTATION_SIGN[orientation]


def score_series(
    model: torch.nn.Module,
    x_scaled: np.ndarray,
    cfg: ScoreConfig,
    window_cfg: WindowConfig,
    *,
    progress: bool = False,
    sign: float | None = None,
    channels: np.ndarray | None = None,
) -> StepScores:
    """Per-step scores for a scaled series ``(T, C)``: every step scored, overlaps averaged.

    ``channels`` (0-based indices) restricts the error terms to those channels, every channel
    staying a model input; None: ``cfg.channels`` (``score.channels``, names resolved to indices
    by ``resolve_config_channels`` when the model was trained), else every channel.
    """
    n_steps = x_scaled.shape[0]
    length, stride = window_cfg.length, window_cfg.score_stride
    expected = getattr(model, "n_channels", None)
    n_channels = int(expected) if expected is not None else int(x_scaled.shape[-1])
    validate_series(x_scaled, n_channels=n_channels, min_steps=length)
    windows = sliding_windows(x_scaled, length, stride)  # (n, t, c)
    starts = window_starts(n_steps, length, stride)
    terms = window_scores(
        model,
        windows,
        batch_size=cfg.batch_size,
        progress=progress,
        channel_floor=cfg.channel_floor,
        channels=config_channels(cfg) if channels is None else channels,
    )
    return _fold_terms(model, terms, starts, n_steps, cfg, _sign(cfg) if sign is None else sign)


def _fold_terms(
    model: torch.nn.Module,
    terms: WindowTerms,
    starts: np.ndarray,
    n_steps: int,
    cfg: ScoreConfig,
    sign: float,
) -> StepScores:
    """Every score kind per step from the per-window terms: folded over the windows that cover
    a step (a forecaster's warm-up positions weigh 0), then smoothed."""
    weight = association_weight(terms.dis, temperature=cfg.temperature, sign=sign)
    position_weight = step_weights(model, terms.rec.shape[1])  # (t,)

    def fold(values: np.ndarray) -> np.ndarray:
        folded = fold_window_scores(values, starts, n_steps, weights=position_weight)
        return smooth_steps(folded, cfg.smooth)

    normalized, discrepancy = fold(terms.normalized), fold(terms.dis)
    mean, std = dis_stats(model)
    return StepScores(
        reconstruction=fold(terms.rec),
        association=fold(weight * terms.rec),
        discrepancy=discrepancy,
        normalized=normalized,
        calibrated=calibrated_score(
            normalized, discrepancy, mean=mean, std=std, sign=sign, clip=cfg.dis_clip
        ),
    )
