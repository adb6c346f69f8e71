"""The synthetic generator: determinism, anomaly kinds and coverage, detectability, frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amad.config import ANOMALY_KINDS, ColumnSpec, SyntheticConfig
from amad.series.synthetic import AnomalyEvent, generate, synthetic_series_data, to_frame

CFG = SyntheticConfig(n_channels=6, train_steps=3000, test_steps=3000, anomaly_rate=0.05, seed=3)


def test_same_seed_same_series_other_seed_differs() -> None:
    a = generate(CFG, n_steps=2000)
    b = generate(CFG, n_steps=2000)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.events == b.events and np.array_equal(a.labels, b.labels)
    c = generate(CFG, n_steps=2000, seed=4)
    assert not np.allclose(a.values, c.values)
    d = generate(CFG, n_steps=2000, start_step=2000)
    assert not np.allclose(a.values, d.values)


def test_shapes_dtypes_and_no_anomalies_when_off() -> None:
    s = generate(CFG, n_steps=1500, anomalies=False)
    assert s.values.shape == (1500, 6) and s.values.dtype == np.float32
    assert s.labels.shape == (1500,) and s.labels.dtype == np.int8
    assert s.events == [] and s.labels.sum() == 0
    assert np.isfinite(s.values).all()


def test_all_kinds_present_and_labels_match_events() -> None:
    s = generate(CFG, n_steps=20_000, anomaly_rate=0.1)
    assert {e.kind for e in s.events} == set(ANOMALY_KINDS)
    expected = np.zeros(20_000, dtype=np.int8)
    for ev in s.events:
        assert 0 <= ev.start < ev.end <= 20_000 and ev.channels
        assert all(0 <= c < 6 for c in ev.channels)
        assert expected[ev.start : ev.end].sum() == 0  # events do not overlap
        expected[ev.start : ev.end] = 1
    np.testing.assert_array_equal(s.labels, expected)


@pytest.mark.parametrize("rate", [0.02, 0.05, 0.15])
def test_label_coverage_is_close_to_rate(rate: float) -> None:
    s = generate(CFG, n_steps=10_000, anomaly_rate=rate)
    assert s.labels.mean() == pytest.approx(rate, abs=0.01)


def test_requested_kinds_only() -> None:
    s = generate(CFG, n_steps=5000, kinds=["flatline", "drift"])
    assert {e.kind for e in s.events} == {"flatline", "drift"}
    for ev in s.events:
        if ev.kind == "flatline":
            seg = s.values[ev.start : ev.end, list(ev.channels)]
            assert np.ptp(seg, axis=0).max() == 0.0
    with pytest.raises(ValueError, match="unknown anomaly kinds"):
        generate(CFG, n_steps=100, kinds=["meteor"])


def test_single_channel_skips_correlation_break() -> None:
    cfg = CFG.model_copy(update={"n_channels": 1})
    s = generate(cfg, n_steps=20_000, anomaly_rate=0.1)
    kinds = {e.kind for e in s.events}
    assert "correlation_break" not in kinds and len(kinds) == 6


def test_channels_are_correlated_and_seasonal() -> None:
    cfg = CFG.model_copy(update={"cadence_s": 600})  # 144 steps a day
    s = generate(cfg, n_steps=144 * 14, anomalies=False)
    corr = np.corrcoef(s.values.T)
    off_diag = np.abs(corr[~np.eye(6, dtype=bool)])
    assert off_diag.max() > 0.5  # shared latent factors
    x = s.values[:, 0] - s.values[:, 0].mean()
    lag_day = np.corrcoef(x[:-144], x[144:])[0, 1]
    lag_half = np.corrcoef(x[:-72], x[72:])[0, 1]
    assert lag_day > lag_half  # a daily cycle


def test_zscore_flags_spikes_but_not_normal_steps() -> None:
    data = synthetic_series_data(CFG)
    mu, sd = data.train.mean(axis=0), data.train.std(axis=0)
    s = generate(CFG, n_steps=30_000, start_step=CFG.train_steps, anomaly_rate=0.1)
    z = np.abs((s.values - mu) / sd)
    spikes = [e for e in s.events if e.kind == "spike"]
    assert len(spikes) >= 3
    hit = [z[e.start : e.end, list(e.channels)].max() > 4.0 for e in spikes]
    assert np.mean(hit) >= 0.8
    assert (z[s.labels == 0] > 4.0).any(axis=1).mean() < 0.005
    # ... and it is not trivial: a plain z-score misses most other anomalous steps.
    assert (z[s.labels == 1] > 4.0).any(axis=1).mean() < 0.6


def test_series_data_train_is_clean_test_has_rate() -> None:
    data = synthetic_series_data(CFG)
    assert data.train.shape == (3000, 6) and data.test.shape == (3000, 6)
    assert data.labels is not None
    assert data.labels.mean() == pytest.approx(CFG.anomaly_rate, abs=0.02)
    again = synthetic_series_data(CFG)
    assert again.fingerprint() == data.fingerprint()


def test_to_frame_contract_shape() -> None:
    s = generate(CFG, n_steps=50)
    cols = [ColumnSpec(name=f"cpu{i}") for i in range(6)]
    frame = to_frame(
        s, entity="node-1", start=pd.Timestamp("2026-01-01 00:00"), cadence_s=30, columns=cols
    )
    assert list(frame.columns) == ["timestamp", "entity", *[c.name for c in cols], "label"]
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert (frame["timestamp"].diff().dropna() == pd.Timedelta(seconds=30)).all()
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2026-01-01", tz="UTC")
    assert (frame["entity"] == "node-1").all()
    np.testing.assert_allclose(frame[["cpu0", "cpu5"]].to_numpy(), s.values[:, [0, 5]])
    np.testing.assert_array_equal(frame["label"].to_numpy(), s.labels)
    default = to_frame(
        s, entity="n", start=pd.Timestamp("2026-01-01", tz="Europe/Paris"), cadence_s=60
    )
    assert list(default.columns)[2:8] == [f"m{i:02d}" for i in range(6)]
    assert default["timestamp"].iloc[0] == pd.Timestamp("2025-12-31 23:00", tz="UTC")
    with pytest.raises(ValueError, match="3 column names for 6 channels"):
        to_frame(s, entity="n", start=pd.Timestamp(0), cadence_s=60, columns=["a", "b", "c"])


def test_event_to_dict() -> None:
    ev = AnomalyEvent(kind="spike", start=3, end=5, channels=(1, 2))
    assert ev.to_dict() == {"kind": "spike", "start": 3, "end": 5, "channels": [1, 2]}


def test_correlation_breaks_and_level_shifts_leave_the_normal_subspace() -> None:
    # A rank-3 PCA fitted on the clean training period: normal test steps stay inside its
    # 99th-percentile residual, while correlation breaks and level shifts leave it.
    data = synthetic_series_data(CFG)
    mu, sd = data.train.mean(axis=0), data.train.std(axis=0)
    z_train = (data.train - mu) / sd
    basis = np.linalg.svd(z_train, full_matrices=False)[2][: CFG.n_factors]  # (k, c)

    def residual(z: np.ndarray) -> np.ndarray:
        return np.asarray(np.linalg.norm(z - z @ basis.T @ basis, axis=1))

    limit = np.quantile(residual(z_train), 0.99)
    s = generate(CFG, n_steps=30_000, start_step=CFG.train_steps, anomaly_rate=0.1)
    over = residual((s.values - mu) / sd) > limit
    assert over[s.labels == 0].mean() < 0.03
    for kind in ("correlation_break", "level_shift"):
        steps = np.concatenate([np.arange(e.start, e.end) for e in s.events if e.kind == kind])
        assert over[steps].mean() > 0.3, kind
