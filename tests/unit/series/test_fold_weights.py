"""``fold_window_scores`` with per-position weights (a forecaster's warm-up positions weigh 0)."""

from __future__ import annotations

import numpy as np
import pytest

from amad.series.windows import fold_window_scores, window_starts


def test_zero_weight_positions_do_not_score() -> None:
    starts = np.array([0, 5])
    scores = np.array([[1.0] * 10, [100.0] * 2 + [3.0] * 8])
    weights = np.array([0.0, 0.0] + [1.0] * 8)
    folded = fold_window_scores(scores, starts, 15, weights=weights)
    # steps 5-6 are warm-up positions of window 2: only window 1 scores them
    np.testing.assert_allclose(folded[5:7], 1.0)
    np.testing.assert_allclose(folded[7:10], 2.0)  # both windows, equal weight
    np.testing.assert_allclose(folded[10:], 3.0)
    assert (folded < 100).all()


def test_series_start_takes_the_nearest_scored_step() -> None:
    starts = np.array([0, 5])
    scores = np.array([np.arange(10.0), np.arange(10.0)])
    weights = np.array([0.0, 0.0, 0.0] + [1.0] * 7)
    folded = fold_window_scores(scores, starts, 15, weights=weights)
    np.testing.assert_allclose(folded[:3], folded[3])  # no window scores steps 0-2 itself
    assert folded[3] == 3.0
    assert np.isfinite(folded).all()


def test_unit_weights_equal_the_plain_mean() -> None:
    rng = np.random.default_rng(0)
    starts = window_starts(53, 10, 3)
    scores = rng.random((len(starts), 10))
    np.testing.assert_allclose(
        fold_window_scores(scores, starts, 53, weights=np.ones(10)),
        fold_window_scores(scores, starts, 53),
    )


def test_per_window_weights_and_bad_weights() -> None:
    starts = np.array([0, 0])
    scores = np.array([[1.0] * 4, [5.0] * 4])
    weights = np.array([[3.0] * 4, [1.0] * 4])  # (n, l)
    np.testing.assert_allclose(fold_window_scores(scores, starts, 4, weights=weights), 2.0)
    with pytest.raises(ValueError, match=">= 0"):
        fold_window_scores(scores, starts, 4, weights=-np.ones(4))
    with pytest.raises(ValueError, match="every fold weight"):
        fold_window_scores(scores, starts, 4, weights=np.zeros(4))
    with pytest.raises(ValueError, match="in no window"):
        fold_window_scores(scores, starts, 6, weights=np.ones(4))
