"""How sure a metric gain is: a paired block bootstrap over the evaluation window.

Champion and challenger are scored on the same evaluation window (``scores (T,)`` each, one
``labels (T,)``). A small difference in VUS-PR between two models can be noise;
:func:`gain_interval` says how much. The window is cut into ``n_blocks`` contiguous blocks whose
cuts are moved out of labelled events (an event is never split, so resampling keeps whole
anomalies), blocks are drawn with replacement, and on each resample the gain ``metric(challenger)
- metric(champion)`` is computed on the same blocks (paired). The interval is the central
``level`` quantile range of those gains; resamples with no positive or no negative step are
skipped and counted. With fewer than half the resamples usable the interval is (-inf, inf): a
gain that cannot be measured is not a gain.

The metric is AUC-PR (average precision) by default: threshold-free like VUS-PR and much
cheaper, so hundreds of resamples stay cheap (figures: benchmarks/TUNING.md). Pure numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from amad.evaluation.metrics import auc_pr, auc_roc

METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "auc_pr": auc_pr,
    "auc_roc": auc_roc,
}


@dataclass(frozen=True)
class GainInterval:
    """The bootstrap distribution of challenger-minus-champion on one metric."""

    metric: str
    gain: float  # on the whole window
    low: float  # lower end of the central ``level`` interval
    high: float
    level: float
    n_boot: int  # resamples drawn
    n_used: int  # resamples with both classes present
    n_blocks: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                for k, v in asdict(self).items()}  # fmt: skip


def event_safe_blocks(labels: np.ndarray, n_blocks: int) -> np.ndarray:
    """Block start indices (ascending, first 0): equal cuts moved to the end of any event they
    would split."""
    y = np.asarray(labels, dtype=bool).ravel()
    n = len(y)
    cuts = set()
    for raw in np.linspace(0, n, max(1, n_blocks) + 1)[1:-1].astype(int):
        cut = int(raw)
        while 0 < cut < n and y[cut] and y[cut - 1]:  # inside an event: move past its end
            cut += 1
        if 0 < cut < n:
            cuts.add(cut)
    return np.array([0, *sorted(cuts)], dtype=np.int64)


def gain_interval(
    champion: np.ndarray,
    challenger: np.ndarray,
    labels: np.ndarray,
    *,
    metric: str = "auc_pr",
    n_boot: int = 200,
    level: float = 0.9,
    n_blocks: int = 20,
    seed: int = 0,
) -> GainInterval:
    """Paired block-bootstrap interval of ``metric(challenger) - metric(champion)``."""
    a, b = np.asarray(champion, np.float64).ravel(), np.asarray(challenger, np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if not len(a) == len(b) == len(y):
        raise ValueError(f"lengths differ: champion {len(a)}, challenger {len(b)}, labels {len(y)}")
    if not 0 < level < 1 or n_boot < 1:
        raise ValueError("level must be in (0, 1) and n_boot >= 1")
    fn = METRICS[metric]
    starts = event_safe_blocks(y, n_blocks)
    ends = np.append(starts[1:], len(y))
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(starts), size=len(starts))
        idx = np.concatenate([np.arange(starts[i], ends[i]) for i in pick])
        yy = y[idx]
        if yy.all() or not yy.any():
            continue
        gains.append(fn(b[idx], yy) - fn(a[idx], yy))
    whole = fn(b, y) - fn(a, y) if 0 < y.sum() < len(y) else math.nan
    if len(gains) < max(1, n_boot // 2):
        low, high = -math.inf, math.inf
    else:
        tail = (1.0 - level) / 2.0
        low, high = (float(q) for q in np.quantile(gains, [tail, 1.0 - tail]))
    return GainInterval(metric, float(whole), low, high, level, n_boot, len(gains), len(starts))


def gain_interval_from_files(
    champion_file: str | None,
    challenger_file: str | None,
    *,
    n_boot: int = 200,
    level: float = 0.9,
    metric: str = "auc_pr",
) -> GainInterval | None:
    """:func:`gain_interval` of two evaluation score files (``scores.npz``: ``scores``, and
    ``labels`` when the window has them); None when either is missing, unlabelled or
    ``n_boot`` is 0. The files must cover the same window (same length)."""
    if not champion_file or not challenger_file or n_boot <= 0:
        return None
    with np.load(champion_file) as a, np.load(challenger_file) as b:
        if "labels" not in b.files:
            return None
        return gain_interval(a["scores"], b["scores"], b["labels"], metric=metric,
                             n_boot=n_boot, level=level)  # fmt: skip
