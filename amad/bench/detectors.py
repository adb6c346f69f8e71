"""Anomaly detectors behind one interface, for honest side-by-side benchmarks.

Every detector is fitted on the *fitting part* of an entity's training period (already scaled with
statistics of that part) and returns one score per step, higher meaning more anomalous::

    det.fit(train)            # (T, C) scaled; ``val=`` optionally passes held-out training data
    det.score(x) -> (T,)      # float64, finite

:func:`fit_with_threshold` is the one protocol all of them share: split the training period in
time, fit on the first part, and set the alert threshold at the ``(100 - r)``-th percentile of the
*held-out* part's scores (in-sample scores are too small, so thresholds fitted on them flag far
too much); AMAD's is the recipe's ``score.threshold`` on that part. Test data never reaches ``fit``.

Baselines are those of ``shared/BASELINES.md`` (``amad.bench.baselines``): seeded ``random``, ``pca``,
``iforest``, ``ae``, ``ar`` and ``kmeans``, plus their smoothed controls. ``restrict_score``
makes a detector score only some channels (a dataset's ``score_channels`` or ``score.channels``).
``amad`` is a thin adapter over the pipeline's training recipe (``amad.detector.recipe``: training,
early stopping, calibration, orientation, threshold) and the bundle's scorer, so the benchmark
measures the model ``amad train`` and the flows ship; its ablation variants and the Anomaly
Transformer reproduction (``at``) are config overrides listed in ``amad.bench.variants``.

Shape legend: T steps, C channels, n windows, w window length.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

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
from amad.bench.variants import AMAD_VARIANTS, amad_config
from amad.config import AmadConfig, WindowConfig, build_config, config_to_dict
from amad.detector.thresholds import Threshold, percentile_threshold
from amad.errors import ConfigError, DataError
from amad.series.windows import (
    PreparedData,
    Scaler,
    sliding_windows,
    split_train_val,
    windows_fingerprint,
)

if TYPE_CHECKING:
    from amad.detector.bundle import Bundle
    from amad.detector.recipe import TrainOutcome
    from amad.detector.train import TrainResult

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


class AMADDetector:
    """AMAD (or a variant) through the pipeline's own recipe: a thin adapter, no logic of its own.

    ``fit`` hands the (already scaled) fitting and held-out parts to
    ``amad.detector.recipe.train_prepared``, exactly what ``amad train``, the DVC stage and the
    flows run: the same early stopping and score calibration (on the recipe's validation
    subset), the same orientation check and the same threshold (``score.threshold`` and
    ``score.anomaly_ratio`` of ``cfg``). The bundle it writes goes to a temporary folder and is
    loaded back with ``load_bundle``; ``score`` is that bundle's ``score``. The runner scaled
    the parts with the fitting part's statistics, the rule ``build_windows`` applies, so the
    bundle's scaler is the identity. Without ``val`` the last ``windows.val_fraction`` of
    ``train`` is held out. A held-out part shorter than one window is mirrored up to one
    (``_pad_to_window``), which the recipe alone would refuse.
    """

    def __init__(self, name: str, cfg: AmadConfig, *, progress: bool = False) -> None:
        if cfg.score.threshold == "legacy_train_test_percentile":
            raise ConfigError(
                f"{name}: score.threshold=legacy_train_test_percentile pools test scores; the "
                "benchmark never lets test data reach fitting (see legacy_point_adjusted_f1_leaky)"
            )
        self.name, self.cfg, self.progress = name, cfg, progress
        self._bundle: Bundle | None = None
        self._prepared: PreparedData | None = None
        self.info: dict[str, Any] = {}

    @property
    def threshold(self) -> Threshold:
        """The recipe's threshold for this detector's config (after ``fit`` or ``adopt``)."""
        if self._bundle is None:
            raise RuntimeError("fit() before threshold")
        return self._bundle.threshold

    def prepare(self, train: np.ndarray, val: np.ndarray | None = None) -> PreparedData:
        """The recipe's input for these scaled parts (the last ``val_fraction`` of ``train``
        held out when ``val`` is None; a held-out part shorter than a window mirrored up)."""
        w = self.cfg.windows
        train = check_matrix(train, w.length)
        if val is None:
            train, val = split_train_val(train, w.val_fraction)
        return _prepared_data(self.name, train, _pad_to_window(check_matrix(val), w.length), w)

    def fit(self, train: np.ndarray, *, val: np.ndarray | None = None) -> None:
        from amad.detector.recipe import train_prepared

        prepared = self.prepare(train, val)
        with tempfile.TemporaryDirectory(prefix="amad-bench-") as tmp:
            self._load(prepared, train_prepared(self.cfg, prepared, Path(tmp) / "bundle",
                                                progress=self.progress))  # fmt: skip

    def adopt_pooled(self, pooled: TrainResult, prepared: PreparedData) -> None:
        """Take a fleet model's shared weights (``amad.detector.pooled``) with this entity's
        own score statistics and threshold, through the recipe's ``finish_bundle``."""
        from amad.detector.pooled import for_entity
        from amad.detector.recipe import finish_bundle

        with tempfile.TemporaryDirectory(prefix="amad-bench-") as tmp:
            outcome = finish_bundle(self.cfg, for_entity(self.cfg, pooled, prepared), prepared,
                                    Path(tmp) / "bundle", started=time.perf_counter())  # fmt: skip
            self._load(prepared, outcome)
        self.info["scope"] = "fleet"

    def _load(self, prepared: PreparedData, outcome: TrainOutcome) -> None:
        from amad.detector.bundle import load_bundle
        from amad.detector.train import select_device

        device = select_device(self.cfg.train.device)
        self._bundle = load_bundle(outcome.path, device=device)
        self._prepared = prepared
        self.info = {
            "best_epoch": outcome.best_epoch,
            "epochs_run": outcome.epochs,
            "device": str(device),
            "orientation": outcome.config.score.orientation,
            "threshold_method": outcome.method,
            "recipe_metrics": outcome.metrics,
            "history": self._bundle.history,
        }

    def training_key(self) -> str:
        """Everything that decides the trained weights: variants with equal keys train the same
        model (deterministic on CPU), so a benchmark may train once and score it several ways."""
        c = self.cfg
        sections = {"model": c.model, "train": c.train, "windows": c.windows}
        key: dict[str, Any] = {k: v.model_dump(mode="json") for k, v in sections.items()}
        for score_only in ("spread", "spread_deadzone"):  # read by the score, never by training
            key["model"].pop(score_only)
        key["orientation"] = c.score.orientation if c.score.orientation == "auto" else None
        return json.dumps(key, sort_keys=True)

    def adopt(self, trained: AMADDetector) -> None:
        """Score with ``trained``'s fitted model (same ``training_key``) instead of fitting; the
        threshold is the recipe's for this detector's own ``score`` settings."""
        from amad.detector.recipe import fit_val_threshold
        from amad.detector.spread import with_spread
        from amad.detector.train import val_subset

        bundle, prepared = trained._bundle, trained._prepared
        if bundle is None or prepared is None or trained.training_key() != self.training_key():
            raise ConfigError(f"{self.name} cannot reuse {trained.name}'s model: training differs")
        cfg = self.cfg
        if cfg.score.orientation == "auto":  # resolved once, on the shared model
            orientation = bundle.config.score.orientation
            cfg = build_config(config_to_dict(cfg), {"score.orientation": orientation})
        m = cfg.model
        model = with_spread(bundle.model, m.spread, m.spread_deadzone,
                            val_subset(prepared.val_windows, cfg.train))  # fmt: skip
        threshold, _ = fit_val_threshold(cfg, model, prepared)
        self._bundle = replace(bundle, model=model, config=cfg, threshold=threshold)
        self._prepared = prepared
        info = {k: v for k, v in trained.info.items() if k != "recipe_metrics"}
        self.info = {**info, "orientation": cfg.score.orientation,
                     "threshold_method": threshold.method, "model_shared_with": trained.name}  # fmt: skip

    def score(self, x: np.ndarray) -> np.ndarray:
        if self._bundle is None:
            raise RuntimeError("fit() before score()")
        x = check_matrix(x)
        padded = _pad_to_window(x, self.cfg.windows.length)
        return np.asarray(self._bundle.score(padded).scores[: len(x)], dtype=np.float64)


def _prepared_data(
    name: str, fit_part: np.ndarray, val_part: np.ndarray, cfg: WindowConfig
) -> PreparedData:
    """The recipe's input for already scaled parts: identity scaler, no test data (0 steps)."""
    n_channels = fit_part.shape[1]
    digest = hashlib.sha256()
    for part in (fit_part, val_part):
        digest.update(np.ascontiguousarray(part).tobytes())
    data_fp = digest.hexdigest()
    return PreparedData(
        name="bench", entity=name, window_cfg=cfg,
        scaler=Scaler(np.zeros(n_channels), np.ones(n_channels)),
        train_scaled=fit_part, val_scaled=val_part,
        test_scaled=np.empty((0, n_channels), dtype=np.float32), labels=None,
        train_windows=sliding_windows(fit_part, cfg.length, cfg.train_stride),
        val_windows=sliding_windows(val_part, cfg.length, cfg.train_stride),
        data_fingerprint=data_fp, fingerprint=windows_fingerprint(data_fp, cfg),
    )  # fmt: skip


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

    True when applied. AMAD gets it as ``score.channels`` in its config (before ``fit``, so the
    recipe's threshold sees the same channels). Detectors without a per-channel score (random,
    iforest) keep scoring every channel: False, with a warning when a restriction was asked for.
    """
    target = det.inner if isinstance(det, SmoothedDetector) else det
    if isinstance(target, AMADDetector):
        picked = None if channels is None else [int(c) for c in np.asarray(channels).reshape(-1)]
        target.cfg = build_config(config_to_dict(target.cfg), {"score.channels": picked})
        return True
    if hasattr(target, "score_channels"):
        target.score_channels = None if channels is None else np.asarray(channels, np.int64)
        return True
    if channels is not None:
        log.warning("%s has no per-channel score: it scores all channels", det.name)
    return channels is None


def known_detectors() -> list[str]:
    """Every name ``make_detector`` accepts (any AMAD variant also as ``<variant>@fleet``)."""
    return [*BASELINES, *SMOOTHED_BASELINES, *AMAD_VARIANTS]


#: ``<AMAD variant>@fleet``: the variant trained once on every entity's windows (model.scope
#: fleet, ``amad.detector.pooled``), each entity with its own statistics and threshold.
FLEET_SUFFIX = "@fleet"


def is_fleet(name: str) -> bool:
    """True for ``<AMAD variant>@fleet``."""
    return name.endswith(FLEET_SUFFIX) and name.removesuffix(FLEET_SUFFIX) in AMAD_VARIANTS


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
    variant = name.removesuffix(FLEET_SUFFIX)
    if variant in AMAD_VARIANTS:
        cfg = amad_config(variant, profile, {"train.seed": seed, **dict(overrides or {})})
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
    threshold: float  # (100 - anomaly_ratio) percentile of val_scores; AMAD: the recipe's


def fit_with_threshold(
    det: Detector,
    fit_part: np.ndarray,
    val_part: np.ndarray,
    *,
    anomaly_ratio: float,
    prefitted: bool = False,
) -> FittedScores:
    """Fit on the fitting part (unless ``prefitted``); threshold = percentile of the held-out
    part's scores. AMAD's threshold is the training recipe's (``score.threshold`` fitted on the
    same held-out part), whose ``score.anomaly_ratio`` must then be ``anomaly_ratio``."""
    if isinstance(det, AMADDetector) and det.cfg.score.anomaly_ratio != anomaly_ratio:
        raise ConfigError(
            f"{det.name}: score.anomaly_ratio is {det.cfg.score.anomaly_ratio}, the protocol's "
            f"anomaly_ratio {anomaly_ratio}; the recipe thresholds with the config's"
        )
    if not prefitted:
        det.fit(fit_part, val=val_part)
    val_scores = np.asarray(det.score(val_part), dtype=np.float64)
    if val_scores.shape != (len(val_part),) or not np.isfinite(val_scores).all():
        raise DataError(f"{det.name}: validation scores are not one finite value per step")
    if isinstance(det, AMADDetector):
        return FittedScores(val_scores, det.threshold.value)
    return FittedScores(val_scores, percentile_threshold(val_scores, anomaly_ratio))
