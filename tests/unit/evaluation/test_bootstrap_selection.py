"""Decisions worth trusting: a gain within bootstrap noise and a never-alerting threshold lose."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from amad.config import PromoteConfig
from amad.evaluation.bootstrap import event_safe_blocks, gain_interval
from amad.evaluation.records import Evaluation
from amad.evaluation.selection import Decision, decide
from tests.unit.evaluation.test_selection import labelled

POLICY = PromoteConfig(margin=0.0, max_alert_rate=0.2)


def _window(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    y = np.zeros(n, dtype=bool)
    for start in range(150, n, 400):  # 10 events of 30 steps
        y[start : start + 30] = True
    return y, np.random.default_rng(seed).normal(size=n)


def test_blocks_never_split_an_event() -> None:
    y, _ = _window()
    starts = event_safe_blocks(y, 37)
    assert starts[0] == 0 and np.all(np.diff(starts) > 0)
    for cut in starts[1:]:
        assert not (y[cut] and y[cut - 1])


def test_chance_level_models_give_an_interval_around_zero() -> None:
    y, noise = _window()
    other = np.random.default_rng(1).normal(size=len(y))
    iv = gain_interval(noise, other, y, n_boot=200, seed=0)
    assert iv.low < 0 < iv.high and iv.n_used == 200
    again = gain_interval(noise, other, y, n_boot=200, seed=0)
    assert (again.low, again.high) == (iv.low, iv.high)  # seeded


def test_a_real_gain_is_outside_the_noise() -> None:
    y, noise = _window()
    better = noise + 2.0 * y
    iv = gain_interval(noise, better, y, n_boot=200)
    assert iv.low > 0 and iv.gain > 0.2


def test_unmeasurable_gain_is_infinite_interval() -> None:
    y = np.zeros(100, dtype=bool)  # no labelled anomaly in the window: no resample is usable
    iv = gain_interval(np.zeros(100), np.ones(100), y, n_blocks=10, n_boot=50)
    assert iv.n_used == 0 and math.isinf(iv.low) and iv.to_dict()["low"] is None


def test_a_gain_within_noise_is_not_promoted_and_the_interval_is_recorded() -> None:
    y, noise = _window()
    iv = gain_interval(noise, np.random.default_rng(1).normal(size=len(y)), y)
    d = decide(labelled(0.047), labelled(0.055), POLICY, interval=iv)  # demo run 3's numbers
    assert not d.promote and "within noise" in d.reason and d.checks["beats_noise"] is False
    assert d.numbers["gain_ci_low"] == pytest.approx(iv.low)
    assert d.numbers["gain_ci_high"] == pytest.approx(iv.high)
    assert Decision.from_dict(d.to_dict()).numbers["gain_ci_level"] == 0.9
    assert decide(labelled(0.047), labelled(0.055), POLICY).promote  # no interval: point gain


def test_a_clear_gain_is_promoted_with_its_interval() -> None:
    y, noise = _window()
    d = decide(
        labelled(0.1), labelled(0.4), POLICY, interval=gain_interval(noise, noise + 2 * y, y)
    )
    assert d.promote and d.checks["beats_noise"] and d.numbers["gain_ci_low"] > 0


@pytest.mark.parametrize("champion", [None, labelled(0.1)])
def test_a_threshold_that_never_alerts_is_never_promoted(champion: Evaluation | None) -> None:
    silent = labelled(0.9, alert_rate=0.0)  # ranks well, flags nothing
    d = decide(champion, silent, PromoteConfig(require_beats_pca=False))
    assert not d.promote and "never alerts" in d.reason and d.checks["guardrails"] is False
    missing = replace(labelled(0.9), alert_rate=None)
    assert not decide(champion, missing, PromoteConfig(require_beats_pca=False)).promote
    assert decide(champion, labelled(0.9), PromoteConfig(require_beats_pca=False)).promote


def test_from_evaluation_files(tmp_path: object) -> None:
    from pathlib import Path

    from amad.evaluation.bootstrap import gain_interval_from_files

    root = Path(str(tmp_path))
    y, noise = _window()
    np.savez(root / "a.npz", scores=noise, labels=y)
    np.savez(root / "b.npz", scores=noise + 2 * y, labels=y)
    np.savez(root / "u.npz", scores=noise)
    iv = gain_interval_from_files(str(root / "a.npz"), str(root / "b.npz"), n_boot=50)
    assert iv is not None and iv.low > 0 and iv.n_boot == 50
    assert gain_interval_from_files(str(root / "a.npz"), str(root / "u.npz")) is None
    assert gain_interval_from_files(None, str(root / "b.npz")) is None
    assert gain_interval_from_files(str(root / "a.npz"), str(root / "b.npz"), n_boot=0) is None
