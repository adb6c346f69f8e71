"""Range-based AUC and Volume Under the Surface (VUS-ROC, VUS-PR), vectorised.

Paparrizos et al., "Volume Under the Surface", PVLDB 2022, following the reference implementation
in TSB-AD 1.5 (``RangeAUC_volume_opt``) step for step, but without its per-threshold Python loops:

* For a buffer length ``w`` every labelled segment ``[s, e]`` is widened by ``w // 2`` steps on
  each side; a buffer step at distance ``d`` from the segment gets the soft label
  ``sqrt(1 - d / w)`` (summed over nearby segments, capped at 1).
* For each of ``n_thresholds`` thresholds taken at evenly spaced ranks of the sorted scores,
  ``pred = score >= t``; then ``TP = #pred in segments + sum(soft * pred over buffers)``,
  ``P' = P + sum(soft * pred over buffers) / 2``, ``recall = min(TP / P', 1)``,
  ``TPR = recall * existence`` (the share of widened, merged segments hit at least once),
  ``FPR = (#pred - TP) / (T - P')`` and ``precision = TP / #pred``.
* The range-AUC-ROC is the trapezoid under ``(FPR, TPR)`` from (0, 0) to (1, 1); the range-AP is
  ``sum(delta TPR * precision)``. VUS averages both over ``w = 0 .. max_buffer``.

Everything per buffer length is one pass over the score order (cumulative sums), so a 24k-step
series with 101 buffer lengths and 250 thresholds takes tens of milliseconds.

Legend: T steps, K thresholds, W + 1 buffer lengths, G labelled segments.
"""

from __future__ import annotations

import numpy as np

DEFAULT_MAX_BUFFER = 100
DEFAULT_THRESHOLDS = 250


def segments(labels: np.ndarray) -> np.ndarray:
    """Inclusive ``[start, end]`` rows of every run of ones: (G, 2) int64."""
    y = np.asarray(labels).astype(bool).astype(np.int8)
    padded = np.concatenate(([0], y, [0]))
    d = np.diff(padded)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return np.stack([starts, ends], axis=1).astype(np.int64)


def _merged_windows(segs: np.ndarray, half: int, n: int) -> np.ndarray:
    """Segments widened by ``half`` on each side and merged when they touch: (G', 2) inclusive.

    Mirrors TSB-AD's ``new_sequence``: two segments stay apart only when
    ``end_i + half < start_{i+1} - half``.
    """
    lo = np.maximum(segs[:, 0] - half, 0)
    hi = np.minimum(segs[:, 1] + half, n - 1)
    keep_apart = segs[:-1, 1] + half < segs[1:, 0] - half  # (G-1,)
    first = np.concatenate(([True], keep_apart))
    last = np.concatenate((keep_apart, [True]))
    return np.stack([lo[first], hi[last]], axis=1)


def soft_labels(labels: np.ndarray, window: int) -> np.ndarray:
    """Labels widened by a ``window``-long buffer with sqrt-decaying soft values: (T,) float."""
    y = np.asarray(labels).astype(bool)
    n = y.shape[0]
    out = y.astype(np.float64)
    half = window // 2
    segs = segments(y)
    if half == 0 or len(segs) == 0:
        return out
    d = np.arange(1, half + 1)  # (half,)
    value = np.sqrt(1.0 - d / window)  # (half,)
    after = segs[:, 1:2] + d[None, :]  # (G, half)
    before = segs[:, 0:1] - d[None, :]  # (G, half)
    idx = np.concatenate([after.ravel(), before.ravel()])
    val = np.concatenate([np.broadcast_to(value, after.shape).ravel()] * 2)
    ok = (idx >= 0) & (idx < n)
    np.add.at(out, idx[ok], val[ok])
    return np.minimum(out, 1.0)


def _threshold_counts(scores: np.ndarray, n_thresholds: int) -> tuple[np.ndarray, np.ndarray]:
    """Descending score order and, per threshold, how many steps score >= it: (T,), (K,)."""
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]  # descending
    picks = np.linspace(0, len(scores) - 1, n_thresholds).astype(int)
    thresholds = ranked[picks]  # (K,)
    # number of scores >= t = T - number of scores < t; ascending copy for searchsorted
    ascending = ranked[::-1]
    n_pred = len(scores) - np.searchsorted(ascending, thresholds, side="left")  # (K,)
    return order, n_pred


def range_curves(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    max_buffer: int = DEFAULT_MAX_BUFFER,
    n_thresholds: int = DEFAULT_THRESHOLDS,
) -> tuple[np.ndarray, np.ndarray]:
    """Range-AUC-ROC and range-AP for every buffer length 0..max_buffer: two (W + 1,) arrays.

    Both are NaN when ``labels`` has no positive step.
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be equal 1-D shapes")
    n = y.shape[0]
    segs = segments(y)
    roc = np.full(max_buffer + 1, np.nan)
    ap = np.full(max_buffer + 1, np.nan)
    if len(segs) == 0:
        return roc, ap
    p = float(y.sum())
    order, n_pred = _threshold_counts(s, n_thresholds)  # (T,), (K,)
    take = n_pred - 1  # index of the last predicted step in score order; n_pred >= 1 always
    hits_in_segments = np.cumsum(y[order])[take]  # (K,)
    # threshold values at the same ranks, to test "segment max >= threshold"
    thresholds = s[order][take]  # (K,)
    for window in range(max_buffer + 1):
        soft = soft_labels(y, window)
        buffer = np.where(y, 0.0, soft)  # soft labels outside the segments only
        soft_hits = np.cumsum(buffer[order])[take]  # (K,)
        merged = _merged_windows(segs, window // 2, n)  # (G', 2)
        seg_max = _segment_max(s, merged)
        existence = (seg_max[None, :] >= thresholds[:, None]).sum(axis=1) / len(merged)  # (K,)
        tp = hits_in_segments + soft_hits
        p_new = p + soft_hits / 2.0
        tpr = np.minimum(tp / p_new, 1.0) * existence
        fpr = (n_pred - tp) / (n - p_new)
        precision = tp / n_pred
        tpr_c = np.concatenate(([0.0], tpr, [1.0]))
        fpr_c = np.concatenate(([0.0], fpr, [1.0]))
        roc[window] = float(np.dot(np.diff(fpr_c), (tpr_c[1:] + tpr_c[:-1]) / 2.0))
        ap[window] = float(np.dot(np.diff(tpr_c[:-1]), precision))
    return roc, ap


def _segment_max(s: np.ndarray, merged: np.ndarray) -> np.ndarray:
    """Maximum score inside each inclusive ``[lo, hi]`` row of ``merged``: (G',)."""
    bounds = np.stack([merged[:, 0], merged[:, 1] + 1], axis=1).ravel()  # lo0, hi0+1, lo1, ...
    if bounds[-1] == len(s):
        out = np.maximum.reduceat(s, bounds[:-1])[::2]
    else:
        out = np.maximum.reduceat(s, bounds)[::2]
    return np.asarray(out, dtype=np.float64)


def vus(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    max_buffer: int = DEFAULT_MAX_BUFFER,
    n_thresholds: int = DEFAULT_THRESHOLDS,
) -> tuple[float, float]:
    """``(VUS-ROC, VUS-PR)``: range AUCs averaged over buffer lengths 0..max_buffer."""
    roc, ap = range_curves(labels, scores, max_buffer=max_buffer, n_thresholds=n_thresholds)
    return float(np.mean(roc)), float(np.mean(ap))
