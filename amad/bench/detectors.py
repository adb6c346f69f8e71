"""Anomaly detectors behind one interface, for honest side-by-side benchmarks.

Every detector is fitted on the *fitting part* of an entity's training period (already scaled with
statistics of that part) and returns one score per step, higher meaning more anomalous::

    det.fit(train)            # (T, C) scaled; ``val=`` optionally passes held-out training data
    det.score(x) -> (T,)      # float64, finite

:func:`fit_with_threshold` is the one protocol all of them share: split the training period in
time, fit on the first part, and set the alert threshold at the ``(100 - r)``-th percentile of the
*held-out* part's scores (in-sample scores are too small, so thresholds fitted on them flag far
too much). Test data never reaches ``fit``.

Baselines are those of ``shared/BASELINES.md`` (``amad.bench.baselines``): seeded ``random``, ``pca``,
``iforest``, ``ae``, ``ar`` and ``kmeans``, plus their smoothed controls. ``restrict_score``
makes a detector score only some channels (a dataset's ``score_channels`` or ``score.channels``).
``amad`` wraps ``amad.detector.train.fit`` and ``amad.detector.scoring.score_series``; its ablation variants and the Anomaly
Transformer reproduction (``at``) are config overrides listed in ``AMAD_VARIANTS``.

Shape legend: T steps, C channels, n windows, w window length.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from amad.bench.baselines import (
    BASELINES,
    SMOOTHED_BASELINES,
    ARDetector,
    Detector,
    IForestDetector,
    KMeansDetector,
    PCADetector,
    RandomDetector,
    SmoothedDetector,
    WindowAEDetector,
    check_matrix,
)
from amad.config import AmadConfig, build_config, config_to_dict, load_profile
from amad.detector.thresholds import percentile_threshold
from amad.errors import ConfigError, DataError
from amad.series.windows import sliding_windows, split_train_val

__all__ = [
    "AMAD_VARIANTS",
    "BASELINES",
    "SMOOTHED_BASELINES",
    "AMADDetector",
    "ARDetector",
    "Detector",
    "FittedScores",
    "IForestDetector",
    "KMeansDetector",
    "PCADetector",
    "RandomDetector",
    "SmoothedDetector",
    "WindowAEDetector",
    "amad_config",
    "detector_config",
    "entity_seed",
    "fit_with_threshold",
    "known_detectors",
    "make_detector",
    "restrict_score",
]

log = logging.getLogger(__name__)


def entity_seed(seed: int, entity: str) -> int:
    """A stable per-entity seed (crc32 of the entity name mixed with the base seed)."""
    return (zlib.crc32(entity.encode()) + 1_000_003 * seed) % (2**31)


# ---------------------------------------------------------------- AMAD and its variants

#: Profiles live in amad/configs/<name>.yaml (amad.config.load_profile), applied before a
#: variant's overrides.


#: The forecasting reading (issue 9; model.objective in amad/config.py): a small causal model
#: on 32-step windows, trained until the validation loss stops improving but never for fewer
#: than 2,000 steps of 64 windows (128,000 windows: the AE baseline's 500 steps of 256).
FORECAST: dict[str, Any] = {
    "model.objective": "forecast", "model.warmup": 8, "model.d_model": 32, "model.n_heads": 4,
    "model.n_layers": 2, "model.d_ff": 64, "model.proj_dim": 16,
    "windows.length": 32, "windows.score_stride": 16,
    "train.batch_size": 64, "train.lr": 1e-3, "train.lr_decay": 1.0, "train.epochs": 130,
    "train.max_windows_per_epoch": 1024, "train.patience": 5, "train.min_steps": 2000,
    "train.contrastive": False,
}  # fmt: skip

#: AMAD default, one variant per ablation switch, and the Anomaly Transformer reproduction.
AMAD_VARIANTS: dict[str, dict[str, Any]] = {
    "amad": {},
    "amad-forecast": FORECAST,
    # C times the tokens of `amad-forecast` per window (52x its step time on SMD's 38 channels),
    # so a smaller budget: 300+ steps of 8 windows (8 x C univariate sequences per step)
    "amad-forecast-independent": {
        **FORECAST, "model.channels": "independent", "train.batch_size": 8,
        "train.max_windows_per_epoch": 128, "train.min_steps": 300, "train.epochs": 40,
    },
    "amad-mask-gaussian": {"model.mask": "gaussian"},
    "amad-mask-multiscale": {"model.mask": "multiscale_gaussian"},
    "amad-mask-free": {"model.mask": "free"},
    "amad-no-mixup": {"model.mixup": False},
    "amad-no-maxmin": {"train.maxmin": False},
    "amad-no-contrastive": {"train.contrastive": False},
    "amad-score-reconstruction": {"score.kind": "reconstruction"},
    "amad-score-association": {"score.kind": "association"},
    "amad-score-calibrated": {"score.kind": "calibrated"},
    "amad-no-smooth": {"score.smooth": 1},
    "at": {
        "model.mask": "gaussian", "model.mixup": False, "train.contrastive": False,
        "score.kind": "association", "score.orientation": "paper",
        "windows.score_stride": 100, "score.smooth": 1,
    },
}  # fmt: skip


def amad_config(
    variant: str, profile: str, overrides: Mapping[str, Any] | None = None
) -> AmadConfig:
    """The resolved config of an AMAD variant: defaults < profile < variant < user overrides."""
    if variant not in AMAD_VARIANTS:
        raise ConfigError(f"unknown AMAD variant {variant!r}; known: {', '.join(AMAD_VARIANTS)}")
    merged = {**AMAD_VARIANTS[variant], **dict(overrides or {})}
    return build_config(load_profile(profile), merged)


class AMADDetector:
    """AMAD (or a variant) trained with ``amad.detector.train.fit`` and scored with ``score_series``.

    ``val`` (held-out training-period data) drives early stopping and, when
    ``score.orientation`` is ``auto``, the orientation check; without it the last 20 % of
    ``train`` is held out for both.
    """

    def __init__(self, name: str, cfg: AmadConfig, *, progress: bool = False) -> None:
        self.name, self.cfg, self.progress = name, cfg, progress
        self._model: torch.nn.Module | None = None
        self._sign: float | None = None
        self.info: dict[str, Any] = {}

    def fit(self, train: np.ndarray, *, val: np.ndarray | None = None) -> None:
        from amad.detector import scoring
        from amad.detector import train as trainer

        w = self.cfg.windows
        train = check_matrix(train, w.length)
        if val is None:
            train, val = split_train_val(train, w.val_fraction)
        val = _pad_to_window(check_matrix(val), w.length)
        result = trainer.fit(
            self.cfg.model, self.cfg.train,
            sliding_windows(train, w.length, w.train_stride),
            self._val_windows(val),
            checkpoint_dir=None, progress=self.progress,
        )  # fmt: skip
        self._model = result.model
        orientation: str = self.cfg.score.orientation
        if orientation == "auto":
            check = scoring.check_orientation(
                result.model, val, w, batch_size=self.cfg.score.batch_size, seed=self.cfg.train.seed
            )
            orientation = check.orientation
        self._sign = scoring.ORIENTATION_SIGN[orientation]
        self.info = {
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "device": result.device,
            "orientation": orientation,
            "history": result.history,
        }

    def training_key(self) -> str:
        """Everything that decides the trained weights: variants with equal keys train the same
        model (deterministic on CPU), so a benchmark may train once and score it several ways."""
        c = self.cfg
        sections = {"model": c.model, "train": c.train, "windows": c.windows}
        key: dict[str, Any] = {k: v.model_dump(mode="json") for k, v in sections.items()}
        key["orientation"] = c.score.orientation if c.score.orientation == "auto" else None
        return json.dumps(key, sort_keys=True)

    def adopt(self, trained: AMADDetector) -> None:
        """Score with ``trained``'s fitted model (same ``training_key``) instead of fitting."""
        from amad.detector.scoring import ORIENTATION_SIGN

        if trained._model is None or trained.training_key() != self.training_key():
            raise ConfigError(f"{self.name} cannot reuse {trained.name}'s model: training differs")
        orientation = self.cfg.score.orientation
        self._model, self._sign = trained._model, trained._sign
        if orientation != "auto":
            self._sign = ORIENTATION_SIGN[orientation]
        self.info = {**trained.info, "model_shared_with": trained.name}

    def _val_windows(self, val: np.ndarray) -> np.ndarray:
        """Early-stopping windows, capped at ``max_windows_per_epoch`` (a fixed seeded subset)."""
        w, cap = self.cfg.windows, self.cfg.train.max_windows_per_epoch
        windows = sliding_windows(val, w.length, w.train_stride)  # (n, w, C)
        if cap is None or len(windows) <= cap:
            return windows
        rng = np.random.default_rng(self.cfg.train.seed + 1)
        return windows[np.sort(rng.choice(len(windows), cap, replace=False))]

    def score(self, x: np.ndarray) -> np.ndarray:
        from amad.detector import scoring

        if self._model is None:
            raise RuntimeError("fit() before score()")
        x = check_matrix(x)
        padded = _pad_to_window(x, self.cfg.windows.length)
        steps = scoring.score_series(
            self._model, padded, self.cfg.score, self.cfg.windows, sign=self._sign
        )
        return np.asarray(steps.of(self.cfg.score.kind)[: len(x)], dtype=np.float64)


def _pad_to_window(x: np.ndarray, length: int) -> np.ndarray:
    """A series shorter than one window, mirrored at its end up to ``length`` steps: (>= length, C).

    Short held-out parts happen on small entities (MSL T-9 keeps 88 validation steps); only the
    padded steps' own window sees the mirror, and their scores are dropped again.
    """
    if len(x) >= length:
        return x
    log.warning("padding a %d-step series to one %d-step window (mirrored)", len(x), length)
    return np.pad(x, ((0, length - len(x)), (0, 0)), mode="symmetric")


# ---------------------------------------------------------------- factory and protocol


def restrict_score(det: Detector, channels: np.ndarray | None) -> bool:
    """Make ``det`` score only ``channels`` (indices; None = all), all channels staying inputs.

    True when applied. Detectors without a per-channel score (random, iforest) and AMAD, whose
    channel mean sits inside ``amad.detector.scoring`` (no channel choice there yet), keep
    scoring every channel: False, with a warning when a restriction was asked for.
    """
    target = det.inner if isinstance(det, SmoothedDetector) else det
    if hasattr(target, "score_channels"):
        target.score_channels = None if channels is None else np.asarray(channels, np.int64)
        return True
    if channels is not None:
        log.warning("%s has no per-channel score: it scores all channels", det.name)
    return channels is None


def known_detectors() -> list[str]:
    """Every name ``make_detector`` accepts."""
    return [*BASELINES, *SMOOTHED_BASELINES, *AMAD_VARIANTS]


def make_detector(
    name: str,
    *,
    seed: int = 0,
    profile: str = "cpu",
    overrides: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> Detector:
    """A fresh detector by name; AMAD variants get ``train.seed = seed``."""
    if name in BASELINES:
        return BASELINES[name](seed)
    if name in SMOOTHED_BASELINES:
        return SMOOTHED_BASELINES[name](seed)
    if name in AMAD_VARIANTS:
        cfg = amad_config(name, profile, {"train.seed": seed, **dict(overrides or {})})
        return AMADDetector(name, cfg, progress=progress)
    raise ConfigError(f"unknown detector {name!r}; known: {', '.join(known_detectors())}")


def detector_config(det: Detector) -> dict[str, Any]:
    """A JSON-safe description of a detector's settings (the full config for AMAD)."""
    if isinstance(det, AMADDetector):
        return config_to_dict(det.cfg)
    return dict(getattr(det, "params", {}))


@dataclass(frozen=True)
class FittedScores:
    """Scores a detector produced under the shared protocol, and its honest threshold."""

    val_scores: np.ndarray  # (T_val,) held-out part of the training period
    threshold: float  # (100 - anomaly_ratio) percentile of val_scores


def fit_with_threshold(
    det: Detector,
    fit_part: np.ndarray,
    val_part: np.ndarray,
    *,
    anomaly_ratio: float,
    prefitted: bool = False,
) -> FittedScores:
    """Fit on the fitting part (unless ``prefitted``); threshold = percentile of the held-out
    part's scores."""
    if not prefitted:
        det.fit(fit_part, val=val_part)
    val_scores = np.asarray(det.score(val_part), dtype=np.float64)
    if val_scores.shape != (len(val_part),) or not np.isfinite(val_scores).all():
        raise DataError(f"{det.name}: validation scores are not one finite value per step")
    return FittedScores(val_scores, percentile_threshold(val_scores, anomaly_ratio))
