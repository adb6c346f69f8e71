"""The end-to-end training recipe shared by ``amad train``, DVC stages and Prefect tasks.

``train_bundle(cfg, out)`` loads the series named by ``cfg.data``, splits its training period
in time and scales with the earlier part only (``amad.series.windows``), then ``train_prepared`` (which
callers holding a cached ``PreparedData`` use directly): ``fit`` on the training windows with early
stopping on the validation windows (``fit`` also sets the model's score statistics from them, see
``amad.detector.scoring.calibrate``); resolve ``score.orientation=auto`` by injecting spikes into
the validation series; fit the threshold on validation-period scores; optionally evaluate on the
labelled test split (reported in ``metrics.json``, never used to fit anything); write a verified
bundle. Test data reaches only the evaluation step, and the legacy threshold, which pools test
scores by definition and says so in its name.

What is hashed and what is not. The bundle holds only what the data, config and code determine
(``metrics`` without timings, the history without its wall-clock fields), so a fixed seed on
CPU writes the same bytes twice. The run's provenance (when, which commit, which device, how
long: ``TrainOutcome.provenance``) is returned to the caller, who records it elsewhere (the DVC
train stage: ``runs/pipeline/provenance.json``, outside the hashed outputs).
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amad.config import AmadConfig, build_config, config_to_dict
from amad.detector.bundle import save_bundle
from amad.detector.orientation import check_orientation
from amad.detector.scoring import (
    StepScores,
    resolve_config_channels,
    score_series,
)
from amad.detector.thresholds import Threshold, fit_threshold
from amad.detector.train import TrainResult, fit, split_timings
from amad.errors import ArtifactError
from amad.series.loaders import load_series
from amad.series.windows import PreparedData, build_windows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    """What ``train_bundle`` produced (the bundle itself is on disk at ``path``)."""

    path: Path
    config: AmadConfig  # resolved: orientation fixed
    threshold: float
    method: str
    epochs: int
    best_epoch: int
    seconds: float
    metrics: dict[str, Any]  # the bundle's metrics.json: content only, no timings
    provenance: dict[str, Any]  # created_at, git_sha, device, wall-clock timings: not in the bundle


def git_sha(cwd: Path | None = None) -> str | None:
    """The current commit of the source tree, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


def run_provenance(result: TrainResult, seconds: float) -> dict[str, Any]:
    """When, from which commit and on which device a model was trained, and how long it took."""
    _, timings = split_timings(result.history)
    rates = [t["windows_per_s"] for t in timings if "windows_per_s" in t]
    return {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "device": result.device,
        "seconds": seconds,
        "train_seconds": float(sum(t.get("seconds", 0.0) for t in timings)),
        "train_windows_per_s": float(np.mean(rates)) if rates else None,
        "epochs": timings,
    }


def resolve_orientation(
    cfg: AmadConfig, result: TrainResult, prepared: PreparedData
) -> tuple[AmadConfig, dict[str, float]]:
    """Replace ``score.orientation=auto`` with the sign chosen on validation data."""
    if cfg.score.orientation != "auto":
        return cfg, {}
    check = check_orientation(
        result.model,
        prepared.val_scaled,
        cfg.windows,
        batch_size=cfg.score.batch_size,
        seed=cfg.train.seed,
    )
    resolved = build_config(config_to_dict(cfg), {"score.orientation": check.orientation})
    return resolved, {"orientation_auc_paper": check.auc_paper}


def _evaluate_test(
    cfg: AmadConfig,
    result: TrainResult,
    prepared: PreparedData,
    threshold: Threshold,
    *,
    progress: bool,
) -> dict[str, float]:
    from amad.evaluation.metrics import evaluate

    scores = score_series(
        result.model, prepared.test_scaled, cfg.score, cfg.windows, progress=progress
    ).of(cfg.score.kind)
    out = {"test_alert_rate": float((scores > threshold.value).mean())}
    if prepared.labels is not None and 0 < prepared.labels.sum() < len(prepared.labels):
        out.update(
            {
                f"test_{k}": float(v)
                for k, v in evaluate(scores, prepared.labels, threshold.value).items()
            }
        )
    return out


def fit_val_threshold(
    cfg: AmadConfig, model: torch.nn.Module, prepared: PreparedData
) -> tuple[Threshold, StepScores]:
    """The threshold fitted on validation-period scores (and those scores, every kind).

    ``cfg.score.orientation`` must already be resolved (``resolve_orientation``). Public so that
    a caller holding a trained model (the benchmark, re-scoring one model several ways) fits
    the same threshold ``train_prepared`` does."""
    val = score_series(model, prepared.val_scaled, cfg.score, cfg.windows)
    test_scores = None
    if cfg.score.threshold == "legacy_train_test_percentile":  # pools test scores, by name
        test_scores = score_series(model, prepared.test_scaled, cfg.score, cfg.windows).of(
            cfg.score.kind
        )
    return fit_threshold(val.of(cfg.score.kind), cfg.score, test_scores=test_scores), val


def _threshold(
    cfg: AmadConfig, result: TrainResult, prepared: PreparedData
) -> tuple[Threshold, StepScores]:
    return fit_val_threshold(cfg, result.model, prepared)


def _train_metrics(
    cfg: AmadConfig, result: TrainResult, val: StepScores, threshold: Threshold
) -> dict[str, float]:
    best = result.history[result.best_epoch] if result.best_epoch >= 0 else {}
    return {
        "val_rec": float(best.get("val_rec", np.nan)),
        # per-step reconstruction error on the validation period: the label-free selection input
        "val_recon_error": float(np.mean(val.reconstruction)),
        "val_alert_rate": float((val.of(cfg.score.kind) > threshold.value).mean()),
    }  # timings are provenance (run_provenance), never in the bundle


def resolve_score_channels(cfg: AmadConfig, n_channels: int, names: list[str] | None) -> AmadConfig:
    """``cfg`` with ``score.channels`` as indices (names looked up in ``names``)."""
    resolved = resolve_config_channels(cfg.score, n_channels, names)
    if resolved is None or resolved == cfg.score.channels:
        return cfg
    return build_config(config_to_dict(cfg), {"score.channels": resolved})


def train_prepared(
    cfg: AmadConfig,
    prepared: PreparedData,
    out: str | Path,
    *,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    evaluate: bool = False,
    channels: list[str] | None = None,
) -> TrainOutcome:
    """Fit on an already built (or cached) window set, fit the threshold, write the bundle.

    ``channels`` (the input column names, in order) is recorded in the bundle's manifest, and
    names in ``score.channels`` are resolved against it (the bundle records indices).
    """
    started = time.perf_counter()
    if Path(out).exists() and not overwrite:  # fail before training, not after
        raise ArtifactError(f"bundle directory already exists: {out} (pass overwrite)")
    cfg = resolve_score_channels(cfg, prepared.n_channels, channels)
    result = fit(cfg.model, cfg.train, prepared.train_windows, prepared.val_windows,
                 checkpoint_dir=checkpoint_dir, progress=progress)  # fmt: skip
    return finish_bundle(cfg, result, prepared, out, started=started, overwrite=overwrite,
                         evaluate=evaluate, channels=channels, progress=progress)  # fmt: skip


def finish_bundle(
    cfg: AmadConfig,
    result: TrainResult,
    prepared: PreparedData,
    out: str | Path,
    *,
    started: float,
    overwrite: bool = False,
    evaluate: bool = False,
    channels: list[str] | None = None,
    progress: bool = False,
) -> TrainOutcome:
    """The recipe after ``fit``: orientation, the validation threshold, optional test metrics
    and the verified bundle of ``result.model`` for ``prepared`` (its scaler and validation
    period). ``cfg.score.channels`` must already be resolved (``resolve_score_channels``).
    A fleet-scope model (``amad.detector.pooled``) reaches here once per entity."""
    cfg, metrics = resolve_orientation(cfg, result, prepared)
    threshold, val = _threshold(cfg, result, prepared)
    metrics.update(_train_metrics(cfg, result, val, threshold))
    if evaluate:
        metrics.update(_evaluate_test(cfg, result, prepared, threshold, progress=progress))
    history, _ = split_timings(result.history)
    path = save_bundle(out, model=result.model, config=cfg, scaler=prepared.scaler,
                       threshold=threshold, history=history,
                       data_fingerprint=prepared.data_fingerprint, extra_metrics=metrics,
                       n_channels=prepared.n_channels, channels=channels,
                       overwrite=overwrite)  # fmt: skip
    seconds = time.perf_counter() - started
    return TrainOutcome(path=path, config=cfg, threshold=threshold.value, method=threshold.method,
                        epochs=len(result.history), best_epoch=result.best_epoch,
                        seconds=seconds, metrics=metrics,
                        provenance=run_provenance(result, seconds))  # fmt: skip


def train_bundle(
    cfg: AmadConfig,
    out: str | Path,
    *,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    evaluate: bool = False,
) -> TrainOutcome:
    """Load ``cfg.data``, build its windows and ``train_prepared``; see the module docstring."""
    if Path(out).exists() and not overwrite:  # fail before loading data, not after training
        raise ArtifactError(f"bundle directory already exists: {out} (pass overwrite)")
    series = load_series(cfg.data)
    if cfg.score.channels is None and series.score_channels is not None:  # e.g. telemanom: col 0
        cfg = build_config(config_to_dict(cfg), {"score.channels": list(series.score_channels)})
    prepared = build_windows(series, cfg.windows)
    return train_prepared(cfg, prepared, out, checkpoint_dir=checkpoint_dir, progress=progress,
                          overwrite=overwrite, evaluate=evaluate)  # fmt: skip
