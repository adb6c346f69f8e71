"""Metrics on hand-computable cases, plus optional cross-checks against reference packages.

The TSB-AD cross-check runs when ``TSB_AD`` is importable. Its wheel pins ``numpy<2``, so it is not
a dependency (not even an extra); to run the check, unpack the wheel and put it on the path:
``pip download --no-deps tsb-ad -d /tmp/w && unzip /tmp/w/TSB_AD-*.whl -d /tmp/tsb &&
PYTHONPATH=/tmp/tsb pytest tests/unit/evaluation/test_metrics.py``. It agreed to 1e-15 when last run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from amad.evaluation import metrics as M
from amad.evaluation.vus import range_curves, segments, soft_labels, vus

S2 = math.sqrt(0.5)


def test_auc_roc_and_auc_pr_textbook_case() -> None:
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    assert M.auc_roc(scores, labels) == pytest.approx(0.75)
    # thresholds 0.8 (P=1, R=.5), 0.4 (P=.5, R=.5), 0.35 (P=2/3, R=1): AP = .5*1 + .5*2/3
    assert M.auc_pr(scores, labels) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_auc_roc_ties_and_orientation() -> None:
    labels = np.array([0, 1, 0, 1, 0])
    assert M.auc_roc(np.ones(5), labels) == pytest.approx(0.5)
    assert M.auc_roc(labels.astype(float), labels) == pytest.approx(1.0)
    assert M.auc_roc(-labels.astype(float), labels) == pytest.approx(0.0)
    assert math.isnan(M.auc_roc(np.ones(3), np.zeros(3)))


def test_best_f1_picks_the_best_threshold() -> None:
    scores = np.array([0.9, 0.8, 0.1, 0.2])
    labels = np.array([1, 0, 0, 1])
    # top-3 (threshold 0.2): P = 2/3, R = 1 -> F1 = 0.8, the best of 0.667, 0.5, 0.8, 0.667
    assert M.best_f1(scores, labels) == pytest.approx(0.8)


def test_segments_and_soft_labels() -> None:
    y = np.array([1, 1, 0, 0, 0, 1, 0, 0])
    assert segments(y).tolist() == [[0, 1], [5, 5]]
    soft = soft_labels(np.array([0, 0, 0, 1, 0, 0, 0]), window=4)
    # half = 2: distance 1 -> sqrt(1 - 1/4), distance 2 -> sqrt(1 - 2/4)
    expected = [0, math.sqrt(0.5), math.sqrt(0.75), 1, math.sqrt(0.75), math.sqrt(0.5), 0]
    assert soft == pytest.approx(expected)
    assert soft_labels(np.array([0, 1, 0]), window=1) == pytest.approx([0, 1, 0])  # half = 0


def test_vus_is_one_for_perfect_scores_at_every_buffer() -> None:
    y = np.zeros(300, dtype=int)
    y[50:60] = 1
    y[200:203] = 1
    roc, ap = range_curves(y, y.astype(float), max_buffer=20)
    assert roc == pytest.approx(np.ones(21))
    assert ap == pytest.approx(np.ones(21))


def test_range_ap_hand_case_with_a_buffer() -> None:
    # one labelled step at 3; the detector peaks one step early (index 2), then at the label
    y = np.array([0, 0, 0, 1, 0, 0, 0])
    s = np.array([0, 0, 1, 0.5, 0, 0, 0])
    _, ap = range_curves(y, s, max_buffer=2)
    # w = 0: pred {2}: TP 0; pred {2,3}: TP 1, TPR 1, precision 1/2 -> AP = 0.5
    assert ap[0] == pytest.approx(0.5)
    # w = 2: soft label S2 at 2 and 4. pred {2}: TP = S2, P' = 1 + S2/2, TPR = S2/P', prec = S2
    tpr1 = S2 / (1 + S2 / 2)
    # pred {2,3}: TP = 1 + S2 >= P' -> TPR 1, precision (1 + S2)/2
    assert ap[2] == pytest.approx(tpr1 * S2 + (1 - tpr1) * (1 + S2) / 2)


def test_vus_handles_a_long_series_and_rejects_bad_input() -> None:
    rng = np.random.default_rng(0)
    y = np.zeros(24_000, dtype=int)
    for start in rng.integers(0, 23_000, size=30):
        y[start : start + rng.integers(1, 200)] = 1
    roc, pr = vus(y, rng.random(24_000) + y * 0.2)
    assert 0.5 < roc < 1.0 and 0.0 < pr < 1.0
    assert all(math.isnan(v) for v in vus(np.zeros(10), np.ones(10)))
    with pytest.raises(ValueError):
        vus(np.zeros(10), np.ones(9))


def test_affiliation_hand_case_far_prediction() -> None:
    # T = 10, event [4, 5), one alert [0, 1): zone is [0, 10)
    y = np.zeros(10, dtype=int)
    y[4] = 1
    pred = np.zeros(10, dtype=int)
    pred[0] = 1
    p, r, f1 = M.affiliation(pred, y)
    # precision: integral over [0,1) of (x + (1 + x)) / 10 = 0.2
    assert p == pytest.approx(0.2)
    # recall: integral over [4,5) of 1 - 2 (y - 1) / 10 = 0.3
    assert r == pytest.approx(0.3)
    assert f1 == pytest.approx(2 * 0.2 * 0.3 / 0.5)


def test_affiliation_perfect_and_empty() -> None:
    y = np.zeros(50, dtype=int)
    y[10:15] = 1
    y[30:31] = 1
    assert M.affiliation(y, y) == pytest.approx((1.0, 1.0, 1.0))
    assert M.affiliation(np.zeros(50), y) == (0.0, 0.0, 0.0)
    assert all(math.isnan(v) for v in M.affiliation(y, np.zeros(50)))


def test_event_f1_and_point_adjustment() -> None:
    y = np.zeros(30, dtype=int)
    y[5:15] = 1  # segment of 10
    y[20:25] = 1  # segment of 5
    pred = np.zeros(30, dtype=int)
    pred[5:8] = 1  # 30 % of the first segment
    pred[28] = 1  # one false alarm
    # event recall 1/2, point precision 3/4
    assert M.event_f1(pred, y) == pytest.approx(2 * 0.5 * 0.75 / 1.25)
    # PA: first segment fully credited -> TP 10, FP 1, FN 5
    assert M.legacy_point_adjusted_f1(pred, y) == pytest.approx(2 * 10 / (2 * 10 + 1 + 5))
    assert M.pa_k_f1(pred, y, 0.2) == pytest.approx(M.legacy_point_adjusted_f1(pred, y))
    # at K = 50 % the 30 % detection is not adjusted: TP 3, FP 1, FN 12
    assert M.pa_k_f1(pred, y, 0.5) == pytest.approx(2 * 3 / (2 * 3 + 1 + 12))
    assert M.pa_k_f1(pred, y, 1.0) == pytest.approx(M.point_prf(pred, y)[2])
    assert M.point_prf(pred, y)[2] < M.pa_k_auc(pred, y) < M.legacy_point_adjusted_f1(pred, y)


def test_evaluate_keys_and_threshold() -> None:
    rng = np.random.default_rng(3)
    y = np.zeros(500, dtype=int)
    y[100:130] = 1
    s = rng.random(500) + 2 * y
    out = M.evaluate(s, y, threshold=1.5)
    assert out["auc_roc"] == pytest.approx(1.0)
    assert out["f1"] == pytest.approx(1.0)
    assert out["alert_rate"] == pytest.approx(0.06)
    assert {"vus_pr", "vus_roc", "affiliation_f1", "event_f1", "legacy_point_adjusted_f1"} <= set(
        out
    )
    assert "f1" not in M.evaluate(s, y)
    with pytest.raises(ValueError):
        M.evaluate(np.array([np.nan, 1.0]), np.array([0, 1]))


def test_against_scikit_learn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    for _ in range(5):
        y = (rng.random(400) < 0.1).astype(int)
        s = np.round(rng.random(400) + y * 0.3, 2)  # ties on purpose
        assert M.auc_roc(s, y) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
        assert M.auc_pr(s, y) == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)


def _random_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(100, 2000))
    y = np.zeros(n, dtype=int)
    for _ in range(int(rng.integers(1, 6))):
        start = int(rng.integers(0, n - 2))
        y[start : start + int(rng.integers(1, 60))] = 1
    return y, np.round(rng.random(n) + y * rng.random(), 2)


def test_against_tsb_ad_reference() -> None:
    basic = pytest.importorskip("TSB_AD.evaluation.basic_metrics")
    aff = pytest.importorskip("TSB_AD.evaluation.affiliation.metrics")
    gen = pytest.importorskip("TSB_AD.evaluation.affiliation.generics")
    rng = np.random.default_rng(11)
    for _ in range(4):
        y, s = _random_case(rng)
        ref = basic.basic_metricor().RangeAUC_volume_opt(y, s, 100, 250)
        assert vus(y, s) == pytest.approx((ref[4], ref[5]), abs=1e-12)
        pred = (s >= np.quantile(s, 0.9)).astype(int)
        events = gen.convert_vector_to_events
        r = aff.pr_from_events(events(pred), events(y), (0, len(y)))
        p, rec, _ = M.affiliation(pred, y)
        assert (p, rec) == pytest.approx(
            (r["Affiliation_Precision"], r["Affiliation_Recall"]), abs=1e-12
        )
