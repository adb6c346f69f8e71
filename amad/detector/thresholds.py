"""Alert thresholds fitted on held-out, training-period scores (never on test data).

``percentile`` takes the (100 - r)th percentile of scores on *held-out validation* windows of the
training period (in-sample training scores are too small and flag far too much); ``pot`` fits a
generalised Pareto tail over a high quantile of the same scores (SPOT's initial step); the papers'
pooled train+test percentile exists only as the explicitly named
``legacy_train_test_percentile`` and needs the test scores passed in on purpose.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from amad.config import ScoreConfig
from amad.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Threshold:
    """An alert threshold and how it was obtained (stored as ``threshold.json``)."""

    value: float
    method: str
    kind: str  # which score it applies to
    anomaly_ratio: float
    n_fit: int  # number of scores it was fitted on
    details: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Threshold:
        return cls(**raw)


def _finite(scores: np.ndarray, what: str) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise DataError(f"cannot fit a threshold on empty {what}")
    if not np.isfinite(s).all():
        raise DataError(f"{what} contain NaN/inf; cannot fit a threshold")
    return s


def pot_threshold(
    scores: np.ndarray, *, init_quantile: float, risk: float
) -> tuple[float, dict[str, float]]:
    """SPOT's initial step: fit a GPD to excesses over a high quantile, return ``z_q``.

    ``P(score > z_q) = risk`` under the fitted tail:
    ``z_q = t + sigma / xi * ((risk * n / n_t) ** -xi - 1)`` (``t - sigma * log(...)`` at xi=0).
    """
    t = float(np.quantile(scores, init_quantile))
    excess = scores[scores > t] - t
    n, n_t = scores.size, excess.size
    if n_t < 10 or np.ptp(excess) == 0:
        log.warning("POT: only %d distinct peaks over %.4g; using the initial quantile", n_t, t)
        return t, {"init_threshold": t, "n_peaks": float(n_t), "xi": 0.0, "sigma": 0.0}
    xi, _, sigma = stats.genpareto.fit(excess, floc=0.0)
    details = {"init_threshold": t, "n_peaks": float(n_t), "xi": float(xi), "sigma": float(sigma)}
    ratio = risk * n / n_t
    if abs(xi) < 1e-6:  # exponential tail
        return float(t - sigma * math.log(ratio)), details
    return float(t + sigma / xi * (ratio ** (-xi) - 1.0)), details


def percentile_threshold(scores: np.ndarray, anomaly_ratio: float) -> float:
    """The one percentile rule: the ``(100 - anomaly_ratio)``-th percentile of ``scores``."""
    return float(np.percentile(scores, 100.0 - anomaly_ratio))


def fit_threshold(
    val_scores: np.ndarray,
    cfg: ScoreConfig,
    *,
    test_scores: np.ndarray | None = None,
) -> Threshold:
    """Fit ``cfg.threshold`` on held-out validation scores of the training period."""
    s = _finite(val_scores, "validation scores")
    details: dict[str, float] = {}
    if cfg.threshold == "percentile":
        value = percentile_threshold(s, cfg.anomaly_ratio)
    elif cfg.threshold == "pot":
        value, details = pot_threshold(s, init_quantile=cfg.pot_init_quantile, risk=cfg.pot_risk)
    elif cfg.threshold == "legacy_train_test_percentile":
        if test_scores is None:
            raise ConfigError(
                "score.threshold=legacy_train_test_percentile needs the test scores "
                "(it pools training-period and test scores, as Anomaly Transformer does)"
            )
        s = np.concatenate([s, _finite(test_scores, "test scores")])
        value = percentile_threshold(s, cfg.anomaly_ratio)
    else:  # pragma: no cover - the config Literal forbids it
        raise ConfigError(f"unknown threshold method {cfg.threshold!r}")
    return Threshold(
        value=value,
        method=cfg.threshold,
        kind=cfg.kind,
        anomaly_ratio=cfg.anomaly_ratio,
        n_fit=int(s.size),
        details=details,
    )
