"""The simple strong baselines (ridge AR, KMeansAD) and the score-channel restriction."""

from __future__ import annotations

import numpy as np
import pytest

from amad.bench import detectors as D


def _ar1(n: int, phi: float, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """(n, channels) independent AR(1) processes x[t] = phi x[t-1] + e[t], e ~ N(0, 1)."""
    x = np.zeros((n, channels))
    noise = rng.standard_normal((n, channels))
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x.astype(np.float32)


def test_ar_recovers_an_ar1_coefficient() -> None:
    rng = np.random.default_rng(0)
    x = _ar1(6000, 0.8, rng)
    det = D.ARDetector(order=16, lam=10.0)
    det.fit(x[:5000], val=x[5000:])
    assert det.coef is not None and det.coef.shape == (1, 16)
    assert det.coef[0, 0] == pytest.approx(0.8, abs=0.03)  # lag 1
    assert np.abs(det.coef[0, 1:]).max() < 0.05  # the older lags carry nothing
    assert det.scale is not None and det.scale[0] == pytest.approx(1.0, abs=0.15)  # noise var


def test_ar_spike_scores_above_every_other_step() -> None:
    rng = np.random.default_rng(1)
    x = _ar1(4000, 0.7, rng, channels=3)
    det = D.ARDetector()
    det.fit(x[:2000], val=x[2000:3000])
    test = x[3000:].copy()
    test[500, 1] += 8.0
    scores = det.score(test)
    assert scores.shape == (1000,) and np.isfinite(scores).all()
    assert int(np.argmax(scores)) == 500
    # steps 501..516 hold the spike in their history; every other step is far below it
    assert scores[500] > 3 * np.delete(scores, range(500, 517)).max()


def test_ar_error_scale_is_per_channel_and_floored() -> None:
    rng = np.random.default_rng(2)
    x = _ar1(3000, 0.5, rng, channels=2)
    x[:, 1] *= 10.0  # ten times the noise: 100x the squared error
    x = np.concatenate([x, np.zeros((3000, 1), np.float32)], axis=1)  # a constant channel
    det = D.ARDetector(floor=0.5)
    det.fit(x[:2000], val=x[2000:])
    assert det.scale is not None
    assert det.scale[1] / det.scale[0] == pytest.approx(100.0, rel=0.2)
    assert det.scale[2] == pytest.approx(0.0, abs=1e-9)
    test = x[2000:].copy()
    test[100, 2] = 1.0  # a blip on the constant channel: finite, weighed by the floor
    scores = det.score(test)
    assert np.isfinite(scores).all()
    floor = 0.5 * det.scale.mean()
    assert scores[100] == pytest.approx(
        np.mean(det.errors(test)[100] / np.maximum(det.scale, floor)), rel=1e-6
    )


def test_score_channels_restrict_the_mean_not_the_inputs() -> None:
    rng = np.random.default_rng(3)
    x = _ar1(3000, 0.7, rng, channels=3)
    test = x[2000:].copy()
    test[300, 1] += 10.0  # only channel 1
    # (a z-scored KMeans window or a PCA residual spreads one channel's spike over all of them)
    for det in (D.ARDetector(), D.KMeansDetector(window=8, k=4)):
        det.fit(x[:1500], val=x[1500:2000])
        everywhere = det.score(test)
        assert D.restrict_score(det, np.array([0, 2]))
        others = det.score(test)
        assert D.restrict_score(det, np.array([1]))
        target = det.score(test)
        assert everywhere[300] > np.percentile(everywhere, 99.5)
        assert target[300] > np.percentile(target, 99.5)
        assert others[300] < np.percentile(others, 99.5), det.name  # the spike is not scored


def test_restricted_scores_are_the_scored_channels_mean() -> None:
    rng = np.random.default_rng(4)
    x = _ar1(2000, 0.6, rng, channels=4)
    x[:, 2] += 0.8 * x[:, 0]  # some shared structure for PCA to keep
    det = D.ARDetector()
    det.fit(x[:1500], val=x[1500:])
    D.restrict_score(det, np.array([1, 3]))
    assert det.scale is not None
    scale = det.scale[[1, 3]]
    expected = (det.errors(x)[:, [1, 3]] / np.maximum(scale, 0.5 * scale.mean())).mean(axis=1)
    np.testing.assert_allclose(det.score(x), expected, rtol=1e-6)
    pca = D.PCADetector(variance=0.7)
    pca.fit(x[:1500])
    full = pca.score(x)
    D.restrict_score(pca, np.array([2]))
    recon = pca._pca.inverse_transform(pca._pca.transform(x))
    np.testing.assert_allclose(pca.score(x), (x[:, 2] - recon[:, 2]) ** 2, rtol=1e-4, atol=1e-6)
    assert not np.allclose(pca.score(x), full)


def _periodic(n: int, period: int, channels: int = 2) -> np.ndarray:
    """(n, channels) of one repeating pattern: exactly ``period`` distinct windows."""
    base = np.random.default_rng(5).standard_normal((period, channels))
    return np.tile(base, (n // period + 1, 1))[:n].astype(np.float32)


@pytest.mark.parametrize("normalize", [True, False])
def test_kmeans_distance_is_zero_on_a_training_window(normalize: bool) -> None:
    train = _periodic(400, 10)
    det = D.KMeansDetector(window=12, k=10, normalize=normalize)
    det.fit(train)
    assert np.allclose(det.window_distances(train), 0.0, atol=1e-3)
    odd = train[:60].copy()
    odd[30, 0] += 3.0
    dist = det.window_distances(odd)  # 49 windows; those holding step 30 start at 19..30
    assert dist[19:31].min() > 0.1 and np.allclose(np.delete(dist, range(19, 31)), 0, atol=1e-3)


def test_kmeans_folds_window_scores_back_to_every_step() -> None:
    train = _periodic(300, 10)
    det = D.KMeansDetector(window=40, k=10)
    det.fit(train)
    x = train[:57].copy()
    x[20:25] += 1.0
    dist = det.window_distances(x)
    scores = det.score(x)
    assert dist.shape == (57 - 40 + 1,) and scores.shape == (57,)
    assert scores[0] == pytest.approx(dist[0]) and scores[-1] == pytest.approx(dist[-1])
    assert scores[39] == pytest.approx(dist[:18].mean())  # step 39 lies in windows 0..17
    assert scores[10] == pytest.approx(dist[:11].mean())  # windows 0..10
    with pytest.raises(D.DataError):
        det.score(x[:39])  # shorter than one window


def test_smoothed_controls_and_restriction_pass_through() -> None:
    for name in ("ar", "kmeans"):
        assert name in D.BASELINES and f"{name}-smooth" in D.SMOOTHED_BASELINES
    smoothed = D.make_detector("ar-smooth")
    assert isinstance(smoothed, D.SmoothedDetector) and isinstance(smoothed.inner, D.ARDetector)
    assert D.restrict_score(smoothed, np.array([0]))
    assert smoothed.inner.score_channels is not None
    assert list(smoothed.inner.score_channels) == [0]
    assert D.make_detector("kmeans").params == {
        "window": 40,
        "k": 10,
        "normalize": False,
        "seed": 0,
    }
    znorm = D.make_detector("kmeans-znorm-smooth")
    assert isinstance(znorm, D.SmoothedDetector) and znorm.name == "kmeans-znorm-smooth"
    assert isinstance(znorm.inner, D.KMeansDetector) and znorm.inner.normalize
    assert not D.restrict_score(D.make_detector("iforest"), np.array([0]))  # no per-channel score
    assert D.restrict_score(D.make_detector("iforest"), None)  # nothing asked, nothing refused
