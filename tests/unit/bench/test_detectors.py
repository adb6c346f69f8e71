"""Detectors: the shared interface, the honest threshold protocol, and AMAD's variant configs."""

from __future__ import annotations

import numpy as np
import pytest

from amad.bench import detectors as D
from amad.config import profile_names
from amad.errors import ConfigError, DataError
from amad.evaluation.metrics import auc_roc

TINY_AMAD = {
    "model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1, "model.d_ff": 16,
    "model.proj_dim": 8, "windows.length": 32, "windows.score_stride": 16,
    "train.epochs": 1, "train.max_windows_per_epoch": 64, "train.batch_size": 16,
    "train.min_steps": 0,
}  # fmt: skip


def _correlated(n: int, rng: np.random.Generator) -> np.ndarray:
    """Four channels driven by two latent sines: (n, 4), low-rank plus small noise."""
    t = np.arange(n)
    latent = np.stack([np.sin(2 * np.pi * t / 50), np.cos(2 * np.pi * t / 73)], axis=1)
    mix = np.array([[1.0, 0.5, -0.7, 0.2], [0.3, -1.0, 0.4, 0.9]])
    return (latent @ mix + 0.05 * rng.standard_normal((n, 4))).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    train = _correlated(3000, rng)
    test = _correlated(1500, rng)
    labels = np.zeros(1500, dtype=np.int8)
    for start in (200, 700, 1200):
        test[start : start + 20, 1] += 2.0  # breaks the cross-channel structure
        labels[start : start + 20] = 1
    return train[:2400], train[2400:], test, labels


def test_pca_and_ae_beat_random(data) -> None:  # type: ignore[no-untyped-def]
    fit, val, test, labels = data
    aucs = {}
    for det in (D.RandomDetector(1), D.PCADetector(), D.WindowAEDetector(steps=150)):
        det.fit(fit, val=val)
        scores = det.score(test)
        assert scores.shape == (len(test),) and np.isfinite(scores).all()
        aucs[det.name] = auc_roc(scores, labels)
    assert abs(aucs["random"] - 0.5) < 0.1
    assert aucs["pca"] > 0.9
    assert aucs["ae"] > 0.8


def test_iforest_scores_outliers_higher(data) -> None:  # type: ignore[no-untyped-def]
    fit, _val, test, _ = data
    det = D.IForestDetector(n_trees=50, seed=0)
    det.fit(fit)
    far = np.full((5, 4), 10.0, dtype=np.float32)
    assert det.score(far).min() > np.median(det.score(test))


def test_threshold_comes_from_held_out_scores(data) -> None:  # type: ignore[no-untyped-def]
    fit, val, _, _ = data
    det = D.PCADetector()
    fitted = D.fit_with_threshold(det, fit, val, anomaly_ratio=2.0)
    assert fitted.val_scores.shape == (len(val),)
    assert fitted.threshold == pytest.approx(np.percentile(det.score(val), 98.0))
    assert np.mean(fitted.val_scores >= fitted.threshold) == pytest.approx(0.02, abs=0.005)
    # the in-sample alternative is smaller for a model fitted on that data
    assert np.percentile(det.score(fit), 98.0) <= fitted.threshold * 1.5


def test_random_is_seeded_per_entity() -> None:
    x = np.zeros((100, 2), dtype=np.float32)
    a, b = D.RandomDetector(D.entity_seed(0, "m-1")), D.RandomDetector(D.entity_seed(0, "m-1"))
    assert np.array_equal(a.score(x), b.score(x))
    assert D.entity_seed(0, "m-1") != D.entity_seed(0, "m-2")
    assert D.entity_seed(0, "m-1") != D.entity_seed(1, "m-1")


def test_bad_input_is_a_data_error() -> None:
    with pytest.raises(DataError):
        D.PCADetector().fit(np.zeros(10, dtype=np.float32))
    with pytest.raises(DataError):
        D.PCADetector().fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(DataError):
        D.WindowAEDetector(window=16).fit(np.zeros((8, 2), dtype=np.float32))


def test_every_variant_resolves_and_flips_its_switch() -> None:
    for name in D.AMAD_VARIANTS:
        for profile in profile_names():
            D.amad_config(name, profile)
    at = D.amad_config("at", "cpu")
    assert (at.model.mask, at.model.mixup, at.train.contrastive) == ("gaussian", False, False)
    assert D.amad_config("amad-maxmin", "cpu").train.maxmin is True
    assert D.amad_config("amad-score-reconstruction", "cpu").score.kind == "reconstruction"
    cpu, gpu = D.amad_config("amad", "cpu"), D.amad_config("amad", "gpu")
    assert cpu.model.d_model < gpu.model.d_model == 512
    assert D.amad_config("amad", "cpu", {"model.d_model": 32}).model.d_model == 32
    assert D.detector_config(D.make_detector("iforest", seed=4)) == {"n_trees": 100, "seed": 4}
    with pytest.raises(ConfigError):
        D.make_detector("nope")
    with pytest.raises(ConfigError):
        D.amad_config("amad", "tpu")


def test_amad_adapter_trains_and_scores_every_step(data) -> None:  # type: ignore[no-untyped-def]
    fit, val, test, _ = data
    det = D.make_detector("at", seed=3, overrides=TINY_AMAD)
    assert isinstance(det, D.AMADDetector) and det.cfg.train.seed == 3
    # a held-out part shorter than one window (32) is mirrored up to a window, then cut back
    fitted = D.fit_with_threshold(det, fit, val[:20], anomaly_ratio=1.0)
    assert fitted.val_scores.shape == (20,)
    scores = det.score(test)
    assert scores.shape == (len(test),) and np.isfinite(scores).all()
    assert np.isfinite(fitted.threshold)
    assert det.info["orientation"] == "paper" and det.info["epochs_run"] == 1
    assert D.detector_config(det)["model"]["mask"] == "gaussian"


@pytest.mark.gpu
def test_gpu_profile_trains_on_cuda(data) -> None:  # type: ignore[no-untyped-def]
    fit, val, test, _ = data
    over = {"train.epochs": 1, "train.max_windows_per_epoch": 256}
    det = D.make_detector("amad", profile="gpu", overrides=over)
    D.fit_with_threshold(det, fit, val, anomaly_ratio=1.0)
    assert det.info["device"].startswith("cuda")
    assert det.score(test).shape == (len(test),)


def test_smoothed_baseline_is_the_inner_score_smoothed() -> None:
    from amad.series.windows import smooth_steps

    rng = np.random.default_rng(3)
    train, test = rng.normal(size=(300, 4)), rng.normal(size=(120, 4))
    plain, smoothed = D.make_detector("pca"), D.make_detector("pca-smooth")
    assert isinstance(smoothed, D.SmoothedDetector) and smoothed.name == "pca-smooth"
    plain.fit(train)
    smoothed.fit(train)
    width = smoothed.params["smooth"]
    assert width > 1
    np.testing.assert_allclose(smoothed.score(test), smooth_steps(plain.score(test), width))
