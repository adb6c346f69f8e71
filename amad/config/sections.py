"""The model side of the configuration: data, windows, model, training and scoring sections.

Every section forbids unknown keys (``_Section``), so a typo is a ``ConfigError`` naming it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

DATASETS_ENV = "AMAD_DATASETS"

AnomalyKind = Literal[
    "spike",
    "level_shift",
    "drift",
    "frequency_change",
    "correlation_break",
    "flatline",
    "noise_burst",
]
ANOMALY_KINDS: tuple[AnomalyKind, ...] = get_args(AnomalyKind)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticConfig(_Section):
    """The bundled telemetry generator (the embedded default data)."""

    n_channels: int = Field(8, ge=1)
    train_steps: int = Field(6000, ge=200)
    test_steps: int = Field(3000, ge=200)
    anomaly_rate: float = Field(0.03, ge=0.0, le=0.5)
    cadence_s: int = Field(60, ge=1)
    seed: int = 0
    n_factors: int = Field(3, ge=1)  # latent factors shared by the channels
    noise: float = Field(0.15, ge=0.0, le=2.0)  # white-noise std, relative to channel std
    kinds: list[AnomalyKind] = Field(default_factory=lambda: list(ANOMALY_KINDS))

    @model_validator(mode="after")
    def _check_kinds(self) -> SyntheticConfig:
        if not self.kinds:
            raise ValueError("kinds must name at least one anomaly kind")
        return self


class DataConfig(_Section):
    """Where training data comes from."""

    source: Literal["synthetic", "smd", "msl", "telemanom", "generic", "parquet"] = "synthetic"
    root: str | None = None  # dataset root; falls back to $AMAD_DATASETS/<layout>
    entity: str | None = None  # SMD machine, telemanom channel, generic file stem
    spacecraft: str = "MSL"  # telemanom filter
    synthetic: SyntheticConfig = SyntheticConfig()

    def resolved_root(self) -> Path | None:
        """The dataset root: explicit ``root``, else ``$AMAD_DATASETS/<SMD|MSL>``."""
        if self.root:
            return Path(self.root).expanduser()
        env = os.environ.get(DATASETS_ENV)
        if env and self.source in ("smd", "msl", "telemanom"):
            sub = {"smd": "SMD", "msl": "MSL", "telemanom": self.spacecraft}[self.source]
            return Path(env).expanduser() / sub
        return None


class WindowConfig(_Section):
    """Chronological split of the training period and sliding windows."""

    length: int = Field(100, ge=2)
    train_stride: int = Field(1, ge=1)
    score_stride: int = Field(100, ge=1)  # == length: non-overlapping scoring windows
    val_fraction: float = Field(0.2, gt=0.0, lt=0.9)

    @model_validator(mode="after")
    def _check_strides(self) -> WindowConfig:
        if self.score_stride > self.length:
            raise ValueError("score_stride must be <= length, or steps would go unscored")
        return self


class ModelConfig(_Section):
    """AMAD architecture; every component has an off switch for ablations."""

    d_model: int = Field(512, ge=8)
    n_heads: int = Field(8, ge=1)
    n_layers: int = Field(3, ge=1)
    d_ff: int = Field(512, ge=8)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    mask: Literal["spectral", "multiscale_gaussian", "gaussian", "free"] = "spectral"
    n_scales: int = Field(4, ge=1)
    mixup: bool = True
    mixup_per_step: bool = False
    max_len: int = Field(1024, ge=2)  # longest window (positions table, free-mask offsets)
    proj_dim: int = Field(64, ge=1)  # contrastive projection head output width
    # hidden-step reconstruction (amad/nn/model.py): 0 = off (the input is reconstructed with every
    # step visible, so the model can copy it); m >= 2 = every step is reconstructed from a pass
    # where it and the other steps of its phase are hidden, in blocks of hide_block steps
    hide_passes: int = Field(0, ge=0, le=16)
    hide_block: int = Field(1, ge=1)
    # entity: one model per entity, each with its own windows, training, champion/challenger
    # decision, registry champion and threshold (`fleet.entities` says which). fleet: one set of
    # weights trained on the windows of every entity (amad/detector/pooled.py), each entity
    # keeping its own scaler, score statistics, threshold, decision and registry champion
    scope: Literal["entity", "fleet"] = "entity"
    # what a window is trained to output (amad/nn/model.py): reconstruct = every step it sees
    # (Anomaly Transformer), hidden = hidden-step reconstruction (hide_passes >= 2; the default
    # when hide_passes is set and objective is not), forecast = causal attention and a one-sided
    # AutoMask, position i predicts step i + 1 and the first `warmup` positions neither train
    # nor score
    objective: Literal["reconstruct", "hidden", "forecast"] = "reconstruct"
    warmup: int = Field(8, ge=0)
    # mixed: all channels in one token; independent: channels folded into the batch, shared
    # weights and a learned channel embedding (PatchTST style)
    channels: Literal["mixed", "independent"] = "mixed"
    # weight of the spread term in the normalized score (amad/detector/spread.py): how unusual
    # each channel's local variability is against validation (a stuck or a noisy channel); 0: off
    spread: float = Field(0.0, ge=0.0)
    # ... counting only the part of each channel's |z| above this dead zone (0: all of it)
    spread_deadzone: float = Field(0.0, ge=0.0, lt=4.0)

    @model_validator(mode="before")
    @classmethod
    def _objective_from_hiding(cls, data: Any) -> Any:
        if isinstance(data, dict) and "objective" not in data and data.get("hide_passes"):
            return {**data, "objective": "hidden"}
        return data

    @model_validator(mode="after")
    def _check_heads(self) -> ModelConfig:
        if self.hide_passes == 1:
            raise ValueError("model.hide_passes must be 0 (off) or at least 2")
        if (self.objective == "hidden") != (self.hide_passes >= 2):
            raise ValueError("model.objective hidden needs hide_passes >= 2, and only it uses them")
        if self.objective == "hidden" and self.channels == "independent":
            raise ValueError("model.channels independent does not combine with hidden steps")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})"
            )
        return self


class TrainConfig(_Section):
    """Optimisation, objectives and runtime."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-4, gt=0.0)
    lr_decay: float = Field(0.5, gt=0.0, le=1.0)  # multiplied in each epoch
    grad_clip: float = Field(1.0, ge=0.0)  # 0 disables clipping
    patience: int = Field(3, ge=1)
    # early stopping never stops before this many optimiser steps (0: no floor); epochs caps
    min_steps: int = Field(0, ge=0)
    maxmin: bool = True
    k: float = Field(3.0, ge=0.0)
    contrastive: bool = True
    contrastive_weight: float = Field(0.1, ge=0.0)
    contrastive_temperature: float = Field(0.1, gt=0.0)
    max_windows_per_epoch: int | None = Field(None, ge=1)  # subsample long series per epoch
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False


class ScoreConfig(_Section):
    """Per-step anomaly scores and the alert threshold."""

    # see amad/detector/scoring.py: reconstruction (raw squared error), normalized (each
    # channel's error / its validation mean), calibrated (normalized weighted by exp(+-z) of the
    # validation-standardised discrepancy), association (AT). The figures behind this section's
    # defaults: benchmarks/TUNING.md, section 12
    kind: Literal["association", "reconstruction", "normalized", "calibrated"] = "normalized"
    temperature: float = Field(50.0, gt=0.0)
    dis_clip: float = Field(3.0, gt=0.0)  # |z| of the discrepancy is clipped here (calibrated)
    # normalized/calibrated: each channel's validation error scale is floored at this fraction
    # of the channels' mean scale (0: no floor)
    channel_floor: float = Field(0.5, ge=0.0, le=1.0)
    # sign of the discrepancy term: paper = low discrepancy is anomalous (Anomaly Transformer's
    # softmax(-T*dis)), flipped = high discrepancy is anomalous, auto = chosen at training time by
    # injecting spikes into validation data. Only the association and calibrated kinds use it
    orientation: Literal["auto", "paper", "flipped"] = "flipped"
    # centred moving average of every per-step score over this many steps (1: off), applied
    # before thresholds, so validation scores are smoothed the same way; it delays an alert by
    # width/2 steps
    smooth: int = Field(20, ge=1)
    threshold: Literal["percentile", "pot", "legacy_train_test_percentile"] = "percentile"
    anomaly_ratio: float = Field(1.0, gt=0.0, lt=50.0)  # percent of steps expected anomalous
    pot_init_quantile: float = Field(0.98, gt=0.5, lt=1.0)
    pot_risk: float = Field(1e-3, gt=0.0, lt=0.5)
    batch_size: int = Field(256, ge=1)
    # channels (names or 0-based indices) whose errors enter the score; every channel stays a
    # model input. None = what the dataset declares (telemanom: column 0), else all. `amad bench`
    # applies it to every detector with a per-channel score (amad/bench/detectors.py)
    channels: list[int | str] | None = Field(None, min_length=1)
