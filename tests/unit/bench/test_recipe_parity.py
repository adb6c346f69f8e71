"""The benchmark's AMAD is the pipeline's AMAD: one training recipe, one threshold, one scorer.

For the same config and the same series, ``AMADDetector`` under the bench protocol
(``runner.prepare`` + ``fit_with_threshold`` + ``score``) must give the threshold and the test
scores that ``recipe.train_prepared`` + ``load_bundle(...).score`` give (what ``amad train`` and
the flows ship). Any copy of the training, early-stopping or threshold logic in ``amad.bench``
that drifts from the recipe breaks this.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from amad.bench import detectors as D
from amad.bench.runner import prepare
from amad.detector.bundle import load_bundle
from amad.detector.recipe import train_prepared
from amad.errors import ConfigError
from amad.series.loaders import load_series
from amad.series.windows import build_windows

SMALL_DATA = {
    "data.source": "synthetic", "data.synthetic.train_steps": 1500,
    "data.synthetic.test_steps": 600, "data.synthetic.n_channels": 3,
}  # fmt: skip
TINY = {
    "model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1, "model.d_ff": 16,
    "model.proj_dim": 8, "windows.length": 32, "windows.score_stride": 16,
    # 269 validation windows > the cap of 64: which 64 drive early stopping and calibration
    # is part of the recipe
    "train.epochs": 2, "train.max_windows_per_epoch": 64, "train.batch_size": 16,
    "train.patience": 1, "train.seed": 7, "train.min_steps": 0,
}  # fmt: skip
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "amad": ("amad", {}),
    # the dataset's channel choice (telemanom: column 0): restrict_score in the bench is
    # score.channels in the pipeline
    "amad-score-channel-0": ("amad", {"score.channels": [0]}),
    "forecast-pot-auto": (
        "amad",
        {"score.threshold": "pot", "score.orientation": "auto",
         "score.pot_init_quantile": 0.9, "score.anomaly_ratio": 0.5},
    ),
    "reconstruct-no-spread": ("amad-reconstruct", {"model.spread": 0.0}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bench_amad_matches_the_shipped_recipe(tmp_path: Path, case: str) -> None:
    variant, extra = CASES[case]
    cfg = D.amad_config(variant, "cpu", {**SMALL_DATA, **TINY, **extra})
    series = load_series(cfg.data)

    # the pipeline: build_windows -> train_prepared -> bundle on disk -> Bundle.score
    prepared = build_windows(series, cfg.windows)
    outcome = train_prepared(cfg, prepared, tmp_path / "bundle", progress=False)
    shipped = load_bundle(tmp_path / "bundle").score(series.test)

    # the benchmark: its split and scaler, its protocol, its detector
    data = prepare(series, cfg.windows.val_fraction)
    det = D.AMADDetector(variant, D.amad_config(variant, "cpu", {**SMALL_DATA, **TINY,
                         **{k: v for k, v in extra.items() if k != "score.channels"}}))  # fmt: skip
    assert D.restrict_score(det, None if cfg.score.channels is None else np.array([0]))
    fitted = D.fit_with_threshold(det, data.fit, data.val, anomaly_ratio=cfg.score.anomaly_ratio)
    bench_scores = det.score(data.test)

    # equal to the last bit on CPU (same process, deterministic training); a drift in the
    # validation subset, calibration or threshold rule moves these by percents
    assert fitted.threshold == pytest.approx(outcome.threshold, rel=1e-9)
    np.testing.assert_allclose(bench_scores, shipped.scores, rtol=1e-9, atol=1e-12)
    assert det.info["best_epoch"] == outcome.best_epoch
    assert det.info["epochs_run"] == outcome.epochs
    assert det.info["orientation"] == outcome.config.score.orientation


def test_bench_threshold_ratio_must_be_the_configs() -> None:
    """The runner passes its anomaly ratio into the config; a mismatch is refused, not ignored."""
    det = D.make_detector("amad", overrides={"score.anomaly_ratio": 1.0})
    x = np.zeros((200, 2), dtype=np.float32)
    with pytest.raises(ConfigError, match="anomaly_ratio"):
        D.fit_with_threshold(det, x, x, anomaly_ratio=0.5)


def test_runner_writes_its_protocol_into_the_amad_config(tmp_path: Path) -> None:
    from amad.bench.runner import BenchSpec, amad_overrides

    spec = BenchSpec(dataset="smd", out=tmp_path, overrides={"model.d_model": 32})
    over = amad_overrides(spec)  # SMD's r is 0.5 %, the recipe's default 1 %
    assert over == {"model.d_model": 32, "score.anomaly_ratio": 0.5, "windows.val_fraction": 0.2}
    agreeing = BenchSpec(dataset="smd", out=tmp_path, overrides={"score.anomaly_ratio": 0.5})
    assert amad_overrides(agreeing)["score.anomaly_ratio"] == 0.5
    for key, value in (("score.anomaly_ratio", 2.0), ("windows.val_fraction", 0.3)):
        with pytest.raises(ConfigError, match=key):
            amad_overrides(BenchSpec(dataset="smd", out=tmp_path, overrides={key: value}))


def test_bench_detectors_have_no_training_loop_of_their_own() -> None:
    """Weaker guard: amad.bench never calls the trainer or the threshold rule directly for AMAD."""
    import inspect

    source = inspect.getsource(D.AMADDetector)
    for forbidden in ("trainer.fit", "train.fit", "check_orientation", "percentile_threshold"):
        assert forbidden not in source, forbidden
