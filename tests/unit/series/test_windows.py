"""Windows: chronological split, train-only scaler, window counts and coverage, fold, cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from amad.config import SyntheticConfig, WindowConfig
from amad.errors import DataError
from amad.series.data import SeriesData, make_series
from amad.series.synthetic import synthetic_series_data
from amad.series.windows import (
    Scaler,
    build_windows,
    fold_window_scores,
    load_prepared,
    save_prepared,
    scoring_windows,
    sliding_windows,
    smooth_steps,
    split_train_val,
    window_starts,
)

WCFG = WindowConfig(length=20, train_stride=1, score_stride=20, val_fraction=0.25)


def _series(n_train: int = 400, n_test: int = 130, c: int = 3) -> SeriesData:
    rng = np.random.default_rng(1)
    train = np.arange(n_train)[:, None] + rng.normal(size=(n_train, c))  # a ramp: split matters
    labels = np.zeros(n_test, dtype=int)
    labels[50:60] = 1
    return make_series("t", "e", train, rng.normal(size=(n_test, c)), labels)


def test_split_is_chronological_and_complete() -> None:
    x = np.arange(100)[:, None].astype(np.float32)
    fit, val = split_train_val(x, 0.2)
    assert len(fit) == 80 and len(val) == 20
    assert fit[-1, 0] < val[0, 0]  # validation strictly after training
    np.testing.assert_array_equal(np.concatenate([fit, val]), x)
    with pytest.raises(DataError):
        split_train_val(x[:1], 0.2)


def test_scaler_round_trip_and_zero_variance() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(500, 4)).astype(np.float32)
    x[:, 2] = 7.0  # constant channel
    sc = Scaler().fit(x)
    z = sc.transform(x)
    assert z.dtype == np.float32 and np.isfinite(z).all()
    np.testing.assert_allclose(z[:, [0, 1, 3]].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:, [0, 1, 3]].std(axis=0), 1.0, atol=1e-4)
    assert np.all(z[:, 2] == 0.0)
    np.testing.assert_allclose(sc.inverse_transform(z), x, rtol=1e-5, atol=1e-5)
    again = Scaler.from_dict(json.loads(json.dumps(sc.to_dict())))
    np.testing.assert_array_equal(again.transform(x), z)
    with pytest.raises(DataError, match="expects 4 channels"):
        sc.transform(x[:, :3])
    with pytest.raises(ValueError, match="std > 0"):
        Scaler.from_dict({"kind": "standard", "mean": [0.0], "std": [0.0]})
    with pytest.raises(ValueError, match="not a standard scaler"):
        Scaler.from_dict({"mean": [0.0]})
    with pytest.raises(RuntimeError, match="not fitted"):
        Scaler().transform(x)


def test_scaler_sees_only_the_fitting_part() -> None:
    series = _series()
    prepared = build_windows(series, WCFG)
    fit_raw, val_raw = split_train_val(series.train, WCFG.val_fraction)
    assert prepared.scaler.mean is not None
    np.testing.assert_allclose(prepared.scaler.mean, fit_raw.mean(axis=0), rtol=1e-6)
    assert not np.allclose(prepared.scaler.mean, series.train.mean(axis=0), rtol=1e-3)
    # Changing validation or test data must not change the fit.
    noisy = SeriesData(
        "t",
        "e",
        np.concatenate([fit_raw, val_raw * 100]),
        series.test * 100,
        series.labels,
    )
    other = build_windows(noisy, WCFG)
    np.testing.assert_array_equal(other.scaler.mean, prepared.scaler.mean)
    np.testing.assert_array_equal(other.train_windows, prepared.train_windows)


@pytest.mark.parametrize(
    ("n", "length", "stride", "expected"),
    [(100, 20, 20, [0, 20, 40, 60, 80]), (105, 20, 20, [0, 20, 40, 60, 80, 85]),
     (20, 20, 5, [0]), (23, 20, 1, [0, 1, 2, 3]), (25, 10, 7, [0, 7, 14, 15])],
)  # fmt: skip
def test_window_starts(n: int, length: int, stride: int, expected: list[int]) -> None:
    assert window_starts(n, length, stride).tolist() == expected


def test_window_starts_too_short() -> None:
    with pytest.raises(DataError, match="fewer than one window"):
        window_starts(9, 10, 1)


@pytest.mark.parametrize("stride", [1, 3, 7, 10])
def test_sliding_windows_content_and_coverage(stride: int) -> None:
    x = np.arange(53 * 2, dtype=np.float32).reshape(53, 2)
    w = sliding_windows(x, 10, stride)
    starts = window_starts(53, 10, stride)
    assert w.shape == (len(starts), 10, 2)
    for i, s in enumerate(starts):
        np.testing.assert_array_equal(w[i], x[s : s + 10])
    covered = np.zeros(53, bool)
    for s in starts:
        covered[s : s + 10] = True
    assert covered.all()


def test_stride_one_windows_are_a_read_only_view() -> None:
    x = np.zeros((1000, 4), dtype=np.float32)
    w = sliding_windows(x, 100, 1)
    assert w.shape == (901, 100, 4)
    assert np.shares_memory(w, x) and not w.flags.writeable


def test_fold_averages_overlaps_and_identity_when_disjoint() -> None:
    steps = np.arange(50, dtype=np.float64)
    for stride in (10, 3, 1):
        starts = window_starts(50, 10, stride)
        per_window = steps[starts[:, None] + np.arange(10)]  # each window reports the step id
        np.testing.assert_allclose(fold_window_scores(per_window, starts, 50), steps)
    starts = np.array([0, 5])
    folded = fold_window_scores(np.array([[1.0] * 10, [3.0] * 10]), starts, 15)
    np.testing.assert_allclose(folded, [1.0] * 5 + [2.0] * 5 + [3.0] * 5)
    with pytest.raises(ValueError, match="in no window"):
        fold_window_scores(np.ones((1, 10)), np.array([0]), 12)
    with pytest.raises(ValueError, match="outside"):
        fold_window_scores(np.ones((1, 10)), np.array([5]), 12)


def test_scoring_windows_use_score_stride() -> None:
    x = np.zeros((130, 3), dtype=np.float32)
    windows, starts = scoring_windows(x, WCFG)
    assert starts.tolist() == [0, 20, 40, 60, 80, 100, 110]
    assert windows.shape == (7, 20, 3)


def test_build_windows_counts_and_contents() -> None:
    series = _series()
    p = build_windows(series, WCFG)
    assert p.train_scaled.shape == (300, 3) and p.val_scaled.shape == (100, 3)
    assert p.test_scaled.shape == (130, 3) and p.n_channels == 3
    assert p.train_windows.shape == (300 - 20 + 1, 20, 3)
    assert p.val_windows.shape == (100 - 20 + 1, 20, 3)
    np.testing.assert_array_equal(p.val_windows[0], p.val_scaled[:20])
    np.testing.assert_allclose(
        p.scaler.inverse_transform(p.val_scaled), series.train[300:], rtol=1e-5
    )
    assert p.labels is not None and series.labels is not None
    np.testing.assert_array_equal(p.labels, series.labels)
    assert p.data_fingerprint == series.fingerprint() and len(p.fingerprint) == 64
    other = build_windows(series, WCFG.model_copy(update={"length": 10, "score_stride": 10}))
    assert other.fingerprint != p.fingerprint


def test_build_windows_rejects_too_short_parts() -> None:
    with pytest.raises(DataError, match="validation part has 10 steps"):
        build_windows(_series(n_train=40), WCFG)
    with pytest.raises(DataError, match="test part"):
        build_windows(_series(n_test=15), WCFG)


def test_save_and_load_prepared_round_trip(tmp_path: Path) -> None:
    series = synthetic_series_data(SyntheticConfig(n_channels=3, train_steps=400, test_steps=300))
    p = build_windows(series, WCFG)
    out = save_prepared(p, tmp_path / "w")
    assert {f.name for f in out.iterdir()} == {
        "prepared.json", "train_scaled.npy", "val_scaled.npy", "test_scaled.npy", "labels.npy",
    }  # fmt: skip
    q = load_prepared(out)
    assert q.fingerprint == p.fingerprint and q.data_fingerprint == p.data_fingerprint
    assert q.window_cfg == p.window_cfg and (q.name, q.entity) == (p.name, p.entity)
    np.testing.assert_array_equal(q.train_windows, p.train_windows)
    np.testing.assert_array_equal(q.val_windows, p.val_windows)
    np.testing.assert_array_equal(q.test_scaled, p.test_scaled)
    assert q.labels is not None and p.labels is not None
    np.testing.assert_array_equal(q.labels, p.labels)
    np.testing.assert_array_equal(q.scaler.transform(series.test), p.test_scaled)


def test_load_prepared_refuses_tampered_or_incomplete(tmp_path: Path) -> None:
    series = _series()
    out = save_prepared(build_windows(series, WCFG), tmp_path / "w")
    arr = np.load(out / "val_scaled.npy")
    np.save(out / "val_scaled.npy", arr + 1)
    with pytest.raises(DataError, match=r"val_scaled\.npy is missing or changed"):
        load_prepared(out)
    (out / "prepared.json").unlink()
    with pytest.raises(DataError, match=r"prepared\.json missing"):
        load_prepared(out)


def test_unlabelled_series_round_trip(tmp_path: Path) -> None:
    s = _series()
    p = build_windows(SeriesData(s.name, s.entity, s.train, s.test, None), WCFG)
    q = load_prepared(save_prepared(p, tmp_path / "u"))
    assert q.labels is None and not (tmp_path / "u" / "labels.npy").exists()


def test_load_prepared_refuses_foreign_manifest(tmp_path: Path) -> None:
    out = save_prepared(build_windows(_series(), WCFG), tmp_path / "w")
    meta = json.loads((out / "prepared.json").read_text())
    (out / "prepared.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(DataError, match="not a format-1"):
        load_prepared(out)
    del meta["scaler"]
    (out / "prepared.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"missing keys \['scaler'\]"):
        load_prepared(out)
    meta["scaler"] = {"kind": "minmax"}
    (out / "prepared.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="bad parameters"):
        load_prepared(out)


@pytest.mark.parametrize("width", [1, 2, 5, 20])
def test_smooth_steps_matches_a_naive_centred_mean(width: int) -> None:
    s = np.random.default_rng(width).normal(size=37)
    left = width // 2
    padded = np.concatenate([np.full(left, s[0]), s, np.full(width - 1 - left, s[-1])])
    naive = np.array([padded[i : i + width].mean() for i in range(37)])
    np.testing.assert_allclose(smooth_steps(s, width), naive, rtol=1e-12, atol=1e-12)


def test_smooth_steps_rejects_a_zero_width() -> None:
    with pytest.raises(ValueError, match="width"):
        smooth_steps(np.ones(4), 0)
