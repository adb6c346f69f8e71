"""Honest anomaly-detection metrics on per-step scores and labels (pure numpy).

Threshold-free: ``auc_roc``, ``auc_pr`` (average precision, as scikit-learn), ``vus_roc`` and
``vus_pr`` (range-based volume under the surface, ``amad.evaluation.vus``), ``best_f1`` (point-wise F1 at the
best threshold, an optimistic upper bound, never a deployable number).

At a given threshold (``scores >= threshold`` is an alert): point ``precision``/``recall``/``f1``,
affiliation precision/recall/F1 (Huet et al., KDD 2022), event F1 (recall over labelled events,
point-wise precision, as TSB-AD's "Event-based-F1"), PA%K F1 (Kim et al., AAAI 2022) and its
area over K, and ``legacy_point_adjusted_f1``: the point-adjusted F1 of the Anomaly Transformer
line of work, which marks a whole labelled segment detected when one step in it is flagged. It is
reported only for comparison with published figures: random scores reach high values on it.

Affiliation metrics treat step ``i`` as the interval ``[i, i + 1)`` on the time axis ``[0, T)``;
every integral below is of a piecewise-linear function and is computed exactly by the trapezoid
rule on its breakpoints.
"""

from __future__ import annotations

import math

import numpy as np

from amad.evaluation.vus import DEFAULT_MAX_BUFFER, segments, vus

PA_K_LEVELS = np.linspace(0.0, 1.0, 11)  # K = 0 %, 10 %, ..., 100 %


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if s.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} must be equal 1-D shapes")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    return s, y


def _safe_div(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def _f1(p: float, r: float) -> float:
    return _safe_div(2.0 * p * r, p + r)


# ---------------------------------------------------------------- threshold-free


def auc_roc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney with average ranks for ties); NaN if one class."""
    s, y = _check(scores, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ranked = s[order]
    _, first, counts = np.unique(ranked, return_index=True, return_counts=True)
    avg_rank = first + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks = np.empty_like(s)
    ranks[order] = np.repeat(avg_rank, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _pr_points(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every distinct threshold, strictest first: two (D,) arrays."""
    order = np.argsort(-s, kind="mergesort")
    ranked, hits = s[order], y[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(ranked)), len(s) - 1]
    tp = np.cumsum(hits)[last_of_group].astype(np.float64)
    n_pred = last_of_group + 1.0
    return tp / n_pred, tp / max(int(y.sum()), 1)


def auc_pr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision ``sum((R_k - R_{k-1}) P_k)``, as scikit-learn; NaN without positives."""
    s, y = _check(scores, labels)
    if not y.any():
        return math.nan
    precision, recall = _pr_points(s, y)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def best_f1(scores: np.ndarray, labels: np.ndarray) -> float:
    """The best point-wise F1 over all thresholds (an oracle upper bound)."""
    s, y = _check(scores, labels)
    if not y.any():
        return math.nan
    precision, recall = _pr_points(s, y)
    denom = precision + recall
    f1 = 2 * precision * recall / np.where(denom > 0, denom, 1.0)
    return float(f1.max())


# ---------------------------------------------------------------- at a threshold


def point_prf(pred: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Point-wise precision, recall, F1 of binary predictions."""
    p, y = np.asarray(pred).astype(bool), np.asarray(labels).astype(bool)
    tp = float(np.sum(p & y))
    precision, recall = _safe_div(tp, float(p.sum())), _safe_div(tp, float(y.sum()))
    return precision, recall, _f1(precision, recall)


def event_f1(pred: np.ndarray, labels: np.ndarray) -> float:
    """F1 of event recall (labelled segments hit at least once) and point-wise precision."""
    p, y = np.asarray(pred).astype(bool), np.asarray(labels).astype(bool)
    segs = segments(y)
    if len(segs) == 0:
        return math.nan
    hit = np.add.reduceat(np.r_[p.astype(np.int64), 0], np.c_[segs[:, 0], segs[:, 1] + 1].ravel())
    recall = float(np.mean(hit[::2] > 0))
    precision = _safe_div(float(np.sum(p & y)), float(p.sum()))
    return _f1(precision, recall)


def pa_k_adjust(pred: np.ndarray, labels: np.ndarray, k: float) -> np.ndarray:
    """PA%K: mark a whole labelled segment detected when more than ``k`` (0..1) of it is flagged.

    ``k = 0`` is the classic point adjustment; ``k = 1`` leaves the predictions unchanged.
    """
    p, y = np.asarray(pred).astype(bool).copy(), np.asarray(labels).astype(bool)
    for start, end in segments(y):
        if p[start : end + 1].mean() > k:
            p[start : end + 1] = True
    return p


def pa_k_f1(pred: np.ndarray, labels: np.ndarray, k: float) -> float:
    """Point F1 after PA%K adjustment at ``k`` (a fraction, 0.2 for PA%20)."""
    return point_prf(pa_k_adjust(pred, labels, k), labels)[2]


def pa_k_auc(pred: np.ndarray, labels: np.ndarray) -> float:
    """Area under the PA%K F1 curve for K = 0, 10, ..., 100 % (trapezoid, K scaled to [0, 1])."""
    f1 = np.array([pa_k_f1(pred, labels, float(k)) for k in PA_K_LEVELS])
    return float(np.sum(np.diff(PA_K_LEVELS) * (f1[1:] + f1[:-1]) / 2.0))


def legacy_point_adjusted_f1(pred: np.ndarray, labels: np.ndarray) -> float:
    """LEGACY point-adjusted F1 (one flagged step credits its whole segment). Inflated; compare only."""
    return pa_k_f1(pred, labels, 0.0)


# ---------------------------------------------------------------- affiliation (Huet et al. 2022)


def _events(mask: np.ndarray) -> np.ndarray:
    """Half-open ``[start, stop)`` intervals of every run of ones: (E, 2) float."""
    segs = segments(mask).astype(np.float64)
    segs[:, 1] += 1.0
    return segs


def _trapezoid(f, lo: float, hi: float, breaks: list[float]) -> float:
    """Exact integral over ``[lo, hi]`` of a continuous function linear between ``breaks``."""
    if hi <= lo:
        return 0.0
    pts = np.unique(np.clip(np.array([lo, hi, *breaks], dtype=np.float64), lo, hi))
    vals = f(pts)
    return float(np.sum(np.diff(pts) * (vals[1:] + vals[:-1]) / 2.0))


def _precision_integral(pieces: np.ndarray, gt: np.ndarray, zone: tuple[float, float]) -> float:
    """Integral over the predicted ``pieces`` of P(dist(X, gt) >= dist(x, gt)), X ~ U(zone)."""
    (a, b), (e0, e1) = gt, zone
    width = e1 - e0

    def survival(x: np.ndarray) -> np.ndarray:
        d = np.maximum(np.maximum(a - x, x - b), 0.0)
        return (np.maximum(a - d - e0, 0.0) + np.maximum(e1 - b - d, 0.0)) / width

    total = 0.0
    breaks = [a, b, a + b - e1, a + b - e0]
    for u, v in pieces:
        total += max(0.0, min(v, b) - max(u, a))  # inside the event: survival is 1
        total += _trapezoid(survival, u, min(v, a), breaks)
        total += _trapezoid(survival, max(u, b), v, breaks)
    return total


def _distance(y: np.ndarray, pieces: np.ndarray) -> np.ndarray:
    """Distance from each point ``y`` (N,) to the nearest of the sorted disjoint ``pieces``."""
    i = np.clip(np.searchsorted(pieces[:, 0], y, side="right") - 1, 0, len(pieces) - 1)  # (N,)
    j = np.minimum(i + 1, len(pieces) - 1)

    def gap(k: np.ndarray) -> np.ndarray:
        return np.maximum(np.maximum(pieces[k, 0] - y, y - pieces[k, 1]), 0.0)

    return np.minimum(gap(i), gap(j))


def _recall_integral(pieces: np.ndarray, gt: np.ndarray, zone: tuple[float, float]) -> float:
    """Integral over the event of P(|X - y| >= dist(y, pieces)), X ~ U(zone)."""
    (a, b), (e0, e1) = gt, zone
    width = e1 - e0

    def survival(y: np.ndarray) -> np.ndarray:
        return 1.0 - (np.minimum(d := _distance(y, pieces), y - e0) + np.minimum(d, e1 - y)) / width

    mids = (pieces[:-1, 1] + pieces[1:, 0]) / 2.0
    breaks = [
        *pieces.ravel(),
        *mids,
        *((pieces[:, 0] + e0) / 2.0),
        *((pieces[:, 1] + e1) / 2.0),
    ]
    return _trapezoid(survival, a, b, breaks)


def affiliation(pred: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Affiliation ``(precision, recall, f1)``; precision averages zones holding predictions.

    Precision and F1 are 0 when nothing is predicted; all three are NaN without labelled events.
    """
    p, y = np.asarray(pred).astype(bool), np.asarray(labels).astype(bool)
    gt, pr = _events(y), _events(p)
    if len(gt) == 0:
        return math.nan, math.nan, math.nan
    cuts = np.r_[0.0, (gt[:-1, 1] + gt[1:, 0]) / 2.0, float(len(y))]
    precisions, recalls = [], []
    for j, event in enumerate(gt):
        zone = (float(cuts[j]), float(cuts[j + 1]))
        pieces = np.c_[np.maximum(pr[:, 0], zone[0]), np.minimum(pr[:, 1], zone[1])]
        pieces = pieces[pieces[:, 1] > pieces[:, 0]]
        if len(pieces) == 0:
            recalls.append(0.0)
            continue
        length = float(np.sum(pieces[:, 1] - pieces[:, 0]))
        precisions.append(_precision_integral(pieces, event, zone) / length)
        recalls.append(_recall_integral(pieces, event, zone) / float(event[1] - event[0]))
    precision = float(np.mean(precisions)) if precisions else 0.0
    recall = float(np.mean(recalls))
    return precision, recall, _f1(precision, recall)


# ---------------------------------------------------------------- everything at once


def threshold_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Every metric that needs alerts, for ``alert = scores >= threshold``."""
    s, y = _check(scores, labels)
    pred = s >= threshold
    precision, recall, f1 = point_prf(pred, y)
    aff_p, aff_r, aff_f1 = affiliation(pred, y)
    return {
        "threshold": float(threshold),
        "alert_rate": float(pred.mean()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "affiliation_precision": aff_p,
        "affiliation_recall": aff_r,
        "affiliation_f1": aff_f1,
        "event_f1": event_f1(pred, y),
        "pa_k20_f1": pa_k_f1(pred, y, 0.2),
        "pa_k_auc": pa_k_auc(pred, y),
        "legacy_point_adjusted_f1": legacy_point_adjusted_f1(pred, y),
    }


def evaluate(
    scores: np.ndarray,
    labels: np.ndarray,
    threshold: float | None = None,
    *,
    max_buffer: int = DEFAULT_MAX_BUFFER,
) -> dict[str, float]:
    """Every threshold-free metric, plus the threshold metrics when ``threshold`` is given."""
    s, y = _check(scores, labels)
    vus_roc, vus_pr = vus(y, s, max_buffer=max_buffer)
    out = {
        "auc_roc": auc_roc(s, y),
        "auc_pr": auc_pr(s, y),
        "vus_roc": vus_roc,
        "vus_pr": vus_pr,
        "best_f1": best_f1(s, y),
        "anomaly_rate": float(y.mean()) if len(y) else math.nan,
    }
    if threshold is not None:
        out.update(threshold_metrics(s, y, threshold))
    return out
