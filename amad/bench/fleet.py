"""``<AMAD variant>@fleet`` in the benchmark: one pooled fit over every benchmarked entity.

The runner calls ``fit_pooled_detectors`` before its entity loop with each entity's scaled
fitting and held-out parts (the same parts every other detector gets); each fleet detector is
trained once on all of them (``amad.detector.pooled.fit_pooled``). Per entity the runner then
hands the pooled weights to that entity's detector (``AMADDetector.adopt_pooled``: its own
score statistics and threshold from its own held-out part). Its recorded ``fit_s`` per entity
is that calibration plus an equal share of the pooled fit, so ``fit_s_total`` is the scope's
whole training cost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from amad.bench.detectors import AMADDetector, Detector, is_fleet
from amad.detector.pooled import fit_pooled
from amad.detector.train import TrainResult
from amad.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PooledFit:
    """A fleet detector's shared model and what it cost."""

    result: TrainResult
    fit_s: float
    entities: tuple[str, ...]

    @property
    def share_s(self) -> float:
        """The pooled fit's cost per entity."""
        return self.fit_s / max(len(self.entities), 1)


def fit_pooled_detectors(
    detectors: Mapping[str, AMADDetector],
    parts: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    progress: bool = False,
) -> dict[str, PooledFit]:
    """One pooled model per fleet detector from every entity's (fitting, held-out) parts."""
    out: dict[str, PooledFit] = {}
    for name, det in detectors.items():
        prepared = {entity: det.prepare(fit, val) for entity, (fit, val) in parts.items()}
        started = time.perf_counter()
        result = fit_pooled(det.cfg, prepared, progress=progress)
        out[name] = PooledFit(result, time.perf_counter() - started, tuple(prepared))
        log.info("%s: one model for %d entities in %.1fs", name, len(prepared), out[name].fit_s)
    return out


def adopt_pooled(
    det: Detector, fit: np.ndarray, val: np.ndarray, pooled: Mapping[str, PooledFit] | None
) -> PooledFit | None:
    """Give a fleet detector its shared model for this entity (None for any other detector)."""
    if not isinstance(det, AMADDetector) or not is_fleet(det.name):
        return None
    fleet = (pooled or {}).get(det.name)
    if fleet is None:
        raise DataError(f"{det.name}: no pooled model was trained (run it through run_bench)")
    det.adopt_pooled(fleet.result, det.prepare(fit, val))
    det.info["pooled_fit_s"] = fleet.fit_s
    return fleet
