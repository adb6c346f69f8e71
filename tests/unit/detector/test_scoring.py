"""Per-step scores (alignment, orientation) and thresholds (percentile, POT, legacy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from amad.config import ModelConfig, ScoreConfig, WindowConfig
from amad.detector.orientation import check_orientation
from amad.detector.scoring import (
    association_weight,
    calibrate,
    calibrated_score,
    resolve_config_channels,
    score_series,
    validate_series,
    window_scores,
)
from amad.detector.spread import EPS, SPREAD_CLIP, spread_weight
from amad.detector.thresholds import fit_threshold, pot_threshold
from amad.errors import ConfigError, DataError
from amad.nn.model import AMAD, ModelOutput

TINY = ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=16)


@pytest.fixture(scope="module")
def tiny_model() -> AMAD:
    torch.manual_seed(0)
    return AMAD(TINY, n_channels=3).eval()


# ------------------------------------------------------------------ thresholds


def test_percentile_threshold_is_the_100_minus_r_percentile_of_validation_scores() -> None:
    val = np.random.default_rng(0).gamma(2.0, size=5000)
    thr = fit_threshold(val, ScoreConfig(threshold="percentile", anomaly_ratio=2.0))
    assert thr.value == pytest.approx(np.percentile(val, 98.0))
    assert (val > thr.value).mean() == pytest.approx(0.02, abs=1e-3)
    assert (thr.method, thr.n_fit) == ("percentile", 5000)


def test_percentile_ignores_test_scores_and_legacy_pools_them() -> None:
    rng = np.random.default_rng(1)
    val, test = rng.normal(size=2000), rng.normal(5.0, 1.0, size=2000)
    honest = fit_threshold(val, ScoreConfig(threshold="percentile"), test_scores=test)
    assert honest.value == pytest.approx(np.percentile(val, 99.0))
    legacy = fit_threshold(
        val, ScoreConfig(threshold="legacy_train_test_percentile"), test_scores=test
    )
    assert legacy.value == pytest.approx(np.percentile(np.concatenate([val, test]), 99.0))
    assert legacy.n_fit == 4000 and legacy.value > honest.value


def test_legacy_threshold_requires_test_scores_by_name() -> None:
    with pytest.raises(ConfigError, match="legacy_train_test_percentile"):
        fit_threshold(np.ones(10), ScoreConfig(threshold="legacy_train_test_percentile"))


@pytest.mark.parametrize("xi", [0.0, 0.25])
def test_pot_recovers_the_tail_quantile_of_a_heavy_tailed_sample(xi: float) -> None:
    risk = 1e-3
    dist = stats.genpareto(c=xi, scale=1.0)
    sample = dist.rvs(size=200_000, random_state=np.random.default_rng(2))
    value, details = pot_threshold(sample, init_quantile=0.98, risk=risk)
    truth = dist.ppf(1.0 - risk)
    assert value == pytest.approx(truth, rel=0.1)
    assert details["xi"] == pytest.approx(xi, abs=0.1)
    assert value > details["init_threshold"]


def test_pot_threshold_via_config_extrapolates_beyond_the_sample_percentile() -> None:
    sample = stats.genpareto(c=0.3).rvs(size=20_000, random_state=np.random.default_rng(3))
    cfg = ScoreConfig(threshold="pot", pot_risk=1e-4, pot_init_quantile=0.95)
    thr = fit_threshold(sample, cfg)
    assert thr.method == "pot" and thr.value > np.percentile(sample, 99.9)
    assert set(thr.details) >= {"xi", "sigma", "init_threshold", "n_peaks"}


def test_pot_with_too_few_peaks_falls_back_to_the_initial_quantile() -> None:
    flat = np.r_[np.zeros(1000), np.ones(5)]
    value, details = pot_threshold(flat, init_quantile=0.98, risk=1e-3)
    assert value == details["init_threshold"] == np.quantile(flat, 0.98)


def test_threshold_refuses_nonfinite_or_empty_scores() -> None:
    with pytest.raises(DataError, match="NaN"):
        fit_threshold(np.array([1.0, np.nan]), ScoreConfig())
    with pytest.raises(DataError, match="empty"):
        fit_threshold(np.array([]), ScoreConfig())


def test_threshold_round_trips_through_a_dict() -> None:
    thr = fit_threshold(np.arange(100.0), ScoreConfig(threshold="pot", pot_init_quantile=0.6))
    assert type(thr).from_dict(thr.to_dict()) == thr


# ------------------------------------------------------------------ scores


def test_association_weight_is_a_window_softmax_with_mean_one_and_a_sign() -> None:
    dis = np.array([[0.0, 1.0, 2.0, 3.0]])
    paper = association_weight(dis, temperature=2.0, sign=-1.0)
    flipped = association_weight(dis, temperature=2.0, sign=1.0)
    assert paper.mean() == pytest.approx(1.0) and flipped.mean() == pytest.approx(1.0)
    assert np.all(np.diff(paper[0]) < 0) and np.all(np.diff(flipped[0]) > 0)


def test_calibrated_score_weights_by_the_clipped_validation_z_of_the_discrepancy() -> None:
    normalized = np.array([1.0, 1.0, 1.0, 2.0])
    dis = np.array([0.5, 1.0, 100.0, 0.5])  # validation mean 0.5, std 0.5: z = 0, 1, clip 3, 0
    high = calibrated_score(normalized, dis, mean=0.5, std=0.5, sign=1.0, clip=3.0)
    np.testing.assert_allclose(high, [1.0, np.e, np.e**3, 2.0])
    low = calibrated_score(normalized, dis, mean=0.5, std=0.5, sign=-1.0, clip=3.0)
    np.testing.assert_allclose(low, [1.0, 1 / np.e, np.e**-3, 2.0])


def test_calibrate_sets_channel_scales_and_discrepancy_stats_from_validation_windows() -> None:
    torch.manual_seed(1)
    model = AMAD(TINY, n_channels=3).eval()
    rng = np.random.default_rng(7)
    val = (rng.normal(size=(9, 20, 3)) * np.array([1.0, 5.0, 0.1])).astype(np.float32)
    raw = window_scores(model, val)  # uncalibrated: normalized == rec
    np.testing.assert_allclose(raw.normalized, raw.rec)
    calibrate(model, val, batch_size=4)  # several batches
    with torch.no_grad():
        err = (model(torch.from_numpy(val), latents=False).recon - torch.from_numpy(val)) ** 2
    torch.testing.assert_close(model.score_channel_scale, err.mean(dim=(0, 1)), rtol=1e-5, atol=0)
    mean, std = model.score_dis_stats.tolist()
    assert mean == pytest.approx(raw.dis.mean(), rel=1e-5)
    assert std == pytest.approx(raw.dis.std(ddof=1), rel=1e-4)
    normed = window_scores(model, val).normalized  # each channel contributes about 1 on average
    assert normed.mean() == pytest.approx(1.0, rel=1e-4)


def test_normalized_and_calibrated_scores_use_the_model_statistics(tiny_model: AMAD) -> None:
    x = np.random.default_rng(8).normal(size=(60, 3)).astype(np.float32)
    wcfg = WindowConfig(length=20, score_stride=20)
    model = AMAD(TINY, n_channels=3).eval()
    model.load_state_dict(tiny_model.state_dict())
    model.score_channel_scale.copy_(torch.tensor([1.0, 4.0, 0.5]))
    model.score_dis_stats.copy_(torch.tensor([0.2, 0.1]))
    unfloored = ScoreConfig(orientation="flipped", kind="calibrated", channel_floor=0.0, smooth=1)
    s = score_series(model, x, unfloored, wcfg)
    windows = torch.from_numpy(x.reshape(3, 20, 3))  # the three non-overlapping windows
    with torch.no_grad():
        err = ((model(windows, latents=False).recon - windows) ** 2).reshape(60, 3).numpy()
    np.testing.assert_allclose(s.reconstruction, err.mean(-1), rtol=1e-5)
    np.testing.assert_allclose(s.of("normalized"), (err / [1.0, 4.0, 0.5]).mean(-1), rtol=1e-5)
    z = np.clip((s.discrepancy - 0.2) / 0.1, -3.0, 3.0)
    np.testing.assert_allclose(s.of("calibrated"), s.normalized * np.exp(z), rtol=1e-6)
    with pytest.raises(ConfigError, match="unknown score kind"):
        s.of("bogus")
    # a floor at 0.5 x the mean scale (5.5 / 3) lifts only the third channel's 0.5
    floor = ScoreConfig(orientation="flipped", channel_floor=0.5, smooth=1)
    floored = score_series(model, x, floor, wcfg)
    expected = (err / [1.0, 4.0, 0.5 * 5.5 / 3]).mean(-1)
    np.testing.assert_allclose(floored.normalized, expected, rtol=1e-5)


@pytest.mark.parametrize("stride", [20, 7])
def test_every_step_is_scored_and_aligned(tiny_model: AMAD, stride: int) -> None:
    x = np.random.default_rng(4).normal(size=(257, 3)).astype(np.float32)
    wcfg = WindowConfig(length=20, score_stride=stride)
    s = score_series(tiny_model, x, ScoreConfig(orientation="paper"), wcfg)
    for arr in (s.reconstruction, s.association, s.discrepancy, s.normalized, s.calibrated):
        assert arr.shape == (257,) and np.isfinite(arr).all()
    assert (s.reconstruction >= 0).all() and (s.association >= 0).all()


def test_nonoverlapping_reconstruction_matches_a_manual_window_pass(tiny_model: AMAD) -> None:
    x = np.random.default_rng(5).normal(size=(50, 3)).astype(np.float32)
    wcfg = WindowConfig(length=20, score_stride=20)
    s = score_series(tiny_model, x, ScoreConfig(orientation="paper", smooth=1), wcfg)
    with torch.no_grad():  # windows at 0, 20 and the end-aligned one at 30
        errs = [
            (tiny_model(torch.from_numpy(x[a : a + 20])[None]).recon[0].numpy() - x[a : a + 20])
            ** 2
            for a in (0, 20, 30)
        ]
    manual = np.zeros(50)
    manual[:20] = errs[0].mean(-1)
    manual[20:30] = errs[1][:10].mean(-1)
    manual[30:40] = (errs[1][10:].mean(-1) + errs[2][:10].mean(-1)) / 2  # overlap averaged
    manual[40:] = errs[2][10:].mean(-1)
    np.testing.assert_allclose(s.reconstruction, manual, rtol=1e-5, atol=1e-7)


def test_auto_orientation_must_be_resolved_before_scoring(tiny_model: AMAD) -> None:
    x = np.zeros((40, 3), dtype=np.float32)
    with pytest.raises(ConfigError, match="orientation"):
        score_series(
            tiny_model, x, ScoreConfig(orientation="auto"), WindowConfig(length=20, score_stride=20)
        )


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((0, 3)), "empty"),
        (np.zeros((50, 4)), "4 channels"),
        (np.zeros((10, 3)), "at least 20"),
        (np.array([[0.0, np.nan, 0.0]] * 30), "NaN"),
        (np.zeros(30), "2-D"),
    ],
)
def test_validate_series_names_the_problem(x: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        validate_series(x, n_channels=3, min_steps=20)


class _SpikeDiscrepancy(torch.nn.Module):
    """Global attention sharpens on rows whose input is large: spikes get high (or low) dis."""

    def __init__(self, spikes_high: bool) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.spikes_high = spikes_high

    def forward(self, x: torch.Tensor, *, latents: bool = True) -> ModelOutput:
        t = x.shape[1]
        spiky = (x.abs().amax(-1) > 2.0).float()  # (b, t)
        sharp = spiky if self.spikes_high else 1.0 - spiky
        logits = 8.0 * sharp[..., None] * torch.eye(t)  # (b, t, t)
        glob = torch.softmax(logits, dim=-1)[:, None]  # (b, 1, t, t)
        local = torch.full_like(glob, 1.0 / t)
        return ModelOutput(recon=x, local=[local], global_=[glob])


@pytest.mark.parametrize(("spikes_high", "expected"), [(True, "flipped"), (False, "paper")])
def test_orientation_check_finds_the_sign_that_ranks_injected_spikes_high(
    spikes_high: bool, expected: str
) -> None:
    x_val = 0.1 * np.random.default_rng(6).normal(size=(600, 3)).astype(np.float32)
    check = check_orientation(
        _SpikeDiscrepancy(spikes_high), x_val, WindowConfig(length=20, score_stride=20)
    )
    assert check.orientation == expected and check.n_injected == 6
    assert (check.auc_paper < 0.1) if spikes_high else (check.auc_paper > 0.9)


def test_smoothing_is_a_centred_moving_average_of_the_unsmoothed_scores(tiny_model: AMAD) -> None:
    x = np.random.default_rng(6).normal(size=(90, 3)).astype(np.float32)
    wcfg = WindowConfig(length=20, score_stride=10)
    raw = score_series(tiny_model, x, ScoreConfig(orientation="paper", smooth=1), wcfg)
    smooth = score_series(tiny_model, x, ScoreConfig(orientation="paper", smooth=5), wcfg)
    for kind in ("reconstruction", "normalized", "association"):
        padded = np.pad(raw.of(kind), (2, 2), mode="edge")
        manual = np.array([padded[i : i + 5].mean() for i in range(90)])
        np.testing.assert_allclose(smooth.of(kind), manual, rtol=1e-9, atol=1e-12)
    assert smooth.normalized.std() < raw.normalized.std()


def test_score_series_refuses_a_series_with_another_channel_count(tiny_model: AMAD) -> None:
    x = np.random.default_rng(6).normal(size=(60, 4)).astype(np.float32)  # model has 3
    with pytest.raises(DataError, match="4 channels, the model expects 3"):
        score_series(
            tiny_model,
            x,
            ScoreConfig(orientation="paper"),
            WindowConfig(length=20, score_stride=20),
        )


def test_score_channels_restrict_the_error_terms_and_keep_every_input(tiny_model: AMAD) -> None:
    x = np.random.default_rng(9).normal(size=(60, 3)).astype(np.float32)
    wcfg = WindowConfig(length=20, score_stride=20)
    model = AMAD(TINY, n_channels=3).eval()
    model.load_state_dict(tiny_model.state_dict())
    model.score_channel_scale.copy_(torch.tensor([1.0, 4.0, 0.5]))
    cfg = ScoreConfig(orientation="flipped", channel_floor=0.0, smooth=1)
    s = score_series(model, x, cfg, wcfg, channels=np.array([2, 0]))
    windows = torch.from_numpy(x.reshape(3, 20, 3))
    with torch.no_grad():
        err = ((model(windows, latents=False).recon - windows) ** 2).reshape(60, 3).numpy()
    np.testing.assert_allclose(s.reconstruction, err[:, [2, 0]].mean(-1), rtol=1e-5)
    np.testing.assert_allclose(s.normalized, (err[:, [2, 0]] / [0.5, 1.0]).mean(-1), rtol=1e-5)
    # channel 1 still feeds the model: changing it changes the scores of channels 0 and 2
    moved = x.copy()
    moved[:, 1] += 5.0
    assert not np.allclose(
        score_series(model, moved, cfg, wcfg, channels=np.array([0, 2])).reconstruction,
        s.reconstruction,
    )
    everything = score_series(model, x, cfg, wcfg)
    np.testing.assert_allclose(everything.reconstruction, err.mean(-1), rtol=1e-5)
    with pytest.raises(ConfigError, match=r"not within 0\.\.2"):
        score_series(model, x, cfg, wcfg, channels=np.array([3]))


def test_score_channels_in_the_config_apply_once_resolved_to_indices(tiny_model: AMAD) -> None:
    x = np.random.default_rng(10).normal(size=(60, 3)).astype(np.float32)
    wcfg = WindowConfig(length=20, score_stride=20)
    named = ScoreConfig(orientation="flipped", smooth=1, channels=["c", 0])
    with pytest.raises(ConfigError, match="resolved to indices"):
        score_series(tiny_model, x, named, wcfg)
    assert resolve_config_channels(named, 3, ["a", "b", "c"]) == [2, 0]
    with pytest.raises(ConfigError, match="no channel named 'c'"):
        resolve_config_channels(named, 3, ["a", "b"])
    resolved = ScoreConfig(orientation="flipped", smooth=1, channels=[2, 0])
    explicit = score_series(tiny_model, x, ScoreConfig(orientation="flipped", smooth=1), wcfg,
                            channels=np.array([2, 0]))  # fmt: skip
    np.testing.assert_allclose(
        score_series(tiny_model, x, resolved, wcfg).reconstruction, explicit.reconstruction
    )


# ------------------------------------------------------------------ the spread term


def test_spread_is_off_by_default_and_keeps_the_state_dict() -> None:
    plain = AMAD(TINY, n_channels=3)
    spread = AMAD(TINY.model_copy(update={"spread": 1.0}), n_channels=3)
    assert "score_spread_stats" not in plain.state_dict()
    assert set(spread.state_dict()) - set(plain.state_dict()) == {"score_spread_stats"}
    assert spread_weight(plain) == 0.0 and spread_weight(spread) == 1.0


def test_spread_statistics_are_the_validation_log_spread_per_channel() -> None:
    torch.manual_seed(0)
    model = AMAD(TINY.model_copy(update={"spread": 1.0}), n_channels=3).eval()
    val = np.random.default_rng(0).normal(size=(40, 20, 3)).astype(np.float32)
    val[..., 2] *= 10.0
    calibrate(model, val, batch_size=16)
    logs = np.log(np.diff(val.astype(np.float64), axis=1).std(axis=1) + EPS)  # (n, c)
    mean, std = model.score_spread_stats.double().numpy()
    np.testing.assert_allclose(mean, logs.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(std, logs.std(axis=0, ddof=1), rtol=1e-4)


def test_spread_term_flags_a_stuck_and_a_noisy_channel_only_when_on() -> None:
    torch.manual_seed(0)
    model = AMAD(TINY.model_copy(update={"spread": 2.0}), n_channels=3).eval()
    rng = np.random.default_rng(1)
    calibrate(model, rng.normal(size=(60, 20, 3)).astype(np.float32))
    test = rng.normal(size=(3, 20, 3)).astype(np.float32)
    test[1, :, 0] = 0.7  # stuck
    test[2, :, 1] *= 30.0  # noisy
    with_term = window_scores(model, test).normalized  # (n, t)
    model.cfg = model.cfg.model_copy(update={"spread": 0.0})
    without = window_scores(model, test).normalized
    added = (with_term - without).mean(axis=1)  # the weighted term, constant within a window
    np.testing.assert_allclose(with_term - without, added[:, None] * np.ones((1, 20)), atol=1e-5)
    # a clipped channel adds (weight / channels) x SPREAD_CLIP ** 2; a normal window far less
    assert added[1] >= 2.0 * SPREAD_CLIP**2 / 3 and added[2] >= 2.0 * SPREAD_CLIP**2 / 3
    assert added[0] < 2.0 * 3.0
    # score.channels restrict the term too: the stuck channel 0 left out, window 1 is normal
    model.cfg = model.cfg.model_copy(update={"spread": 2.0})
    picked = np.array([1, 2])
    on = window_scores(model, test, channels=picked).normalized
    model.cfg = model.cfg.model_copy(update={"spread": 0.0})
    off = window_scores(model, test, channels=picked).normalized
    assert (on - off)[1].mean() < 2.0 * 3.0 and (on - off)[2].mean() >= 2.0 * SPREAD_CLIP**2 / 2


def test_the_spread_dead_zone_drops_ordinary_windows_and_keeps_a_stuck_channel() -> None:
    torch.manual_seed(0)
    model = AMAD(TINY.model_copy(update={"spread": 1.0, "spread_deadzone": 2.0}), n_channels=3)
    rng = np.random.default_rng(2)
    calibrate(model.eval(), rng.normal(size=(60, 20, 3)).astype(np.float32))
    test = rng.normal(size=(2, 20, 3)).astype(np.float32)
    test[1, :, 0] = 0.3  # stuck: |z| clipped at SPREAD_CLIP
    with_zone = window_scores(model, test).normalized
    model.cfg = model.cfg.model_copy(update={"spread": 0.0})
    added = (with_zone - window_scores(model, test).normalized).mean(axis=1)
    assert added[0] == pytest.approx(0.0, abs=0.05)  # an ordinary window: |z| < 2 everywhere
    assert added[1] == pytest.approx((SPREAD_CLIP - 2.0) ** 2 / 3, rel=0.05)
