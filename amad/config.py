"""One validated configuration for the whole system, loaded from ``params.yaml``.

``AmadConfig`` is a frozen pydantic model with one section per concern (data, windows, model,
train, score, contract, promote, publish, fleet). Every section forbids unknown keys, so a typo in
``params.yaml`` or in an override is a ``ConfigError`` that names the key. Callers slice the
config on the way down (the model gets ``cfg.model``, the trainer ``cfg.train``) and flows turn
their parameters into dotted-key overrides (``{"train.epochs": 3}``), never a second config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from amad.errors import ConfigError

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
    # decision, registry champion and threshold (`fleet.entities` says which). A pooled `fleet`
    # scope is not implemented yet, so it is not offered
    scope: Literal["entity"] = "entity"
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


class ColumnSpec(_Section):
    """One metric column of the telemetry contract."""

    name: str
    dtype: Literal["float", "int"] = "float"
    min: float | None = None
    max: float | None = None
    unit: str | None = None


class ContractConfig(_Section):
    """The telemetry contract every incoming batch is validated against, and where batches go.

    Severities: a failed ``error`` check rejects the batch; a failed ``warning`` is recorded.
    Paths are relative to the working directory (the repository root for ``dvc repro``).
    """

    timestamp_column: str = "timestamp"
    entity_column: str = "entity"
    label_column: str | None = "label"
    cadence_s: int = Field(60, ge=1)
    max_gap_s: int = Field(600, ge=1)
    null_tolerance: float = Field(0.01, ge=0.0, le=1.0)
    min_rows: int = Field(10, ge=1)
    entities: list[str] | None = None  # None: any entity id is accepted
    columns: list[ColumnSpec] = Field(
        default_factory=lambda: [ColumnSpec(name=f"m{i:02d}") for i in range(8)]
    )
    drift_mean_tolerance: float = Field(4.0, gt=0.0)  # in reference standard deviations
    drift_std_ratio_tolerance: float = Field(4.0, gt=1.0)
    drift_severity: Literal["warning", "error"] = "warning"
    column_order: Literal["any", "strict"] = "any"  # strict: columns in the contract's order
    cadence_jitter_s: float = Field(0.0, ge=0.0)  # allowed distance from the cadence grid
    max_rows: int | None = Field(None, ge=1)
    flat_severity: Literal["warning", "error"] = "error"  # a metric constant over the batch
    data_dir: str = "data"  # the versioned dataset (tracked by data.dvc)
    quarantine_dir: str = "quarantine"  # rejected batches, unchanged, with their reports
    reports_dir: str = "runs/validation"  # per-batch JSON reports and Data Docs HTML
    eval_fraction: float = Field(0.3, gt=0.0, lt=0.9)  # last part of each entity: evaluation
    dvc_remote: str | None = None  # DVC remote to push to; None: the repository's default

    @model_validator(mode="after")
    def _check_contract(self) -> ContractConfig:
        names = [c.name for c in self.columns]
        reserved = {self.timestamp_column, self.entity_column, self.label_column}
        if not names:
            raise ValueError("columns must name at least one metric")
        if len(set(names)) != len(names):
            raise ValueError("column names must be unique")
        clash = sorted(str(n) for n in reserved & set(names))
        if clash:
            raise ValueError(f"metric columns may not reuse {clash}")
        if any(n.startswith("__amad_") for n in names):
            raise ValueError("column names starting with '__amad_' are reserved")
        if self.max_gap_s < self.cadence_s:
            raise ValueError("max_gap_s must be >= cadence_s")
        if self.max_rows is not None and self.max_rows < self.min_rows:
            raise ValueError("max_rows must be >= min_rows")
        for col in self.columns:
            if col.min is not None and col.max is not None and col.min > col.max:
                raise ValueError(f"column {col.name}: min > max")
        return self


class PromoteConfig(_Section):
    """Champion/challenger policy (the rules are written out in ``amad.evaluation.selection``)."""

    primary_metric: str = "vus_pr"  # with labels; higher is better
    margin: float = Field(0.0, ge=0.0)  # challenger must beat champion by more than this
    max_alert_rate: float = Field(0.2, gt=0.0, le=1.0)  # guardrail on recent normal data
    require_beats_pca: bool = True
    # label-free criterion: relative reduction of validation reconstruction error required,
    # and the largest score-distribution shift (population stability index) tolerated
    label_free_margin: float = Field(0.0, ge=0.0, lt=1.0)
    max_score_psi: float = Field(0.25, gt=0.0)
    # noise: the paired block-bootstrap interval of the gain (amad.evaluation.bootstrap) must lie
    # above 0; and a threshold that flags at most min_alert_rate of a labelled window never wins
    bootstrap_samples: int = Field(200, ge=0)  # 0: no interval, the point gain alone decides
    bootstrap_level: float = Field(0.9, gt=0.0, lt=1.0)
    min_alert_rate: float = Field(0.0, ge=0.0, lt=1.0)


class AlertConfig(_Section):
    """Flags to alerts (``amad.evaluation.alerts``) and who hears of them."""

    top_k: int = Field(3, ge=0)  # channels named per alert, by mean normalised error
    merge_gap: int = Field(0, ge=0)  # runs of flags this many steps apart are one alert
    notify_block: str | None = None  # a saved Prefect notification block (webhook, Slack, ...)


class TimeoutConfig(_Section):
    """Wall-clock limits (seconds) on work that can hang; a run past one fails, named TimedOut."""

    train_s: float = Field(3600.0, gt=0)  # one retrain task (fit + evaluate)
    deployment_s: float = Field(7200.0, gt=0)  # waiting on a deployment run (e.g. the GPU pool)
    storage_s: float = Field(300.0, gt=0)  # one storage task (fetch, upload, publish)


class PublishConfig(_Section):
    """Where versioned artifacts are published (S3 endpoint and keys come from the environment)."""

    model_name: str = Field("amad", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    bucket: str = "amad-models"
    prefix: str = ""
    store: Literal["local", "s3"] = "local"
    local_root: str = "runs/registry"


class FleetConfig(_Section):
    """Which entities the pipeline trains, and the task runner their retrains fan out on."""

    entities: list[str] | None = None  # None: every entity in the dataset; else exactly these
    # default: Prefect's thread pool in the flow's process; dask: prefect-dask's DaskTaskRunner on
    # a temporary distributed.LocalCluster (127.0.0.1), or the scheduler at dask_address
    runner: Literal["default", "dask"] = "default"
    threads: int = Field(1, ge=1)  # default runner: entities retrained at once (1: one by one)
    dask_address: str | None = None  # e.g. tcp://dask-scheduler:8786 (infra/k8s/dask-cluster.yaml)
    dask_workers: int = Field(2, ge=1)  # local cluster: worker processes
    dask_threads_per_worker: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check_fleet(self) -> FleetConfig:
        entities = self.entities
        if entities is not None and (not entities or len(set(entities)) != len(entities)):
            raise ValueError("entities must be a non-empty list of unique ids (or null)")
        if self.dask_address and self.runner != "dask":
            raise ValueError("dask_address needs runner: dask")
        return self


class AmadConfig(_Section):
    """The whole configuration."""

    # a shipped profile (amad/configs/<name>.yaml) laid over the file: how a worker pool adapts
    # the one params.yaml to its hardware (the gpu deployment sets profile=gpu)
    profile: str | None = None
    data: DataConfig = DataConfig()
    windows: WindowConfig = WindowConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    score: ScoreConfig = ScoreConfig()
    contract: ContractConfig = ContractConfig()
    promote: PromoteConfig = PromoteConfig()
    publish: PublishConfig = PublishConfig()
    fleet: FleetConfig = FleetConfig()
    alerts: AlertConfig = AlertConfig()
    timeouts: TimeoutConfig = TimeoutConfig()

    @model_validator(mode="after")
    def _check_forecast_windows(self) -> AmadConfig:
        m, w = self.model, self.windows
        if m.objective == "forecast" and w.score_stride > w.length - m.warmup - 1:
            raise ValueError(
                f"forecast: windows.score_stride ({w.score_stride}) must be <= windows.length - "
                f"model.warmup - 1 ({w.length - m.warmup - 1}), or steps would go unscored"
            )
        return self


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


# keys whose values are entity ids: text as written (007, true, null, NA), never YAML-typed
ENTITY_KEYS = frozenset({"data.entity", "fleet.entities", "contract.entities"})


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.epochs=3"`` -> ``("train.epochs", 3)``; the value is parsed as YAML, except
    that entity ids (``ENTITY_KEYS``) stay text: ``data.entity=007`` is ``"007"``."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if key in ENTITY_KEYS:
        try:
            return key, yaml.load(
                raw, Loader=yaml.BaseLoader
            )  # BaseLoader: plain strings, no objects
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {text!r}: {exc}") from exc
    return key, yaml.safe_load(raw)


def _format_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key {where!r}")
        elif err["type"] == "string_type" and ".entit" in f".{where}":
            lines.append(
                f"{where}: {err['msg']}, got {err['input']!r} (YAML read an entity id as "
                "a number, boolean, date or null: quote it, e.g. '007')"
            )
        else:
            lines.append(f"{where}: {err['msg']}")
    return "invalid configuration: " + "; ".join(lines)


def build_config(
    raw: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> AmadConfig:
    """Validate a raw mapping plus dotted-key overrides into an ``AmadConfig``.

    Layers: the mapping, then the profile named by ``profile`` (in the overrides or the
    mapping; its keys replace the mapping's), then the dotted-key overrides.
    """
    tree: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(raw or {}))) or {}
    profile = (overrides or {}).get("profile", tree.get("profile"))
    if profile is not None:
        if not isinstance(profile, str):
            raise ConfigError(f"profile must be a profile name, got {profile!r}")
        for section, values in load_profile(profile).items():
            for key, value in values.items():
                _set_dotted(tree, f"{section}.{key}", value)
    for key, value in (overrides or {}).items():
        _set_dotted(tree, key, value)
    try:
        return AmadConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from exc


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> AmadConfig:
    """Load ``params.yaml`` (or defaults when ``path`` is None) and apply overrides."""
    raw: Any = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{p} must hold a mapping of sections")
    return build_config(raw, overrides)


DEFAULT_PARAMS = Path("params.yaml")
PROFILES_DIR = Path(__file__).resolve().parent / "configs"


def profile_names() -> list[str]:
    """The named profiles shipped in ``amad/configs/`` (``cpu``, ``gpu``)."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(name: str) -> dict[str, Any]:
    """A profile's sections (a partial params tree); ``ConfigError`` for an unknown name."""
    path = PROFILES_DIR / f"{name}.yaml"
    if name not in profile_names():
        raise ConfigError(f"unknown profile {name!r}; known: {', '.join(profile_names())}")
    tree = yaml.safe_load(path.read_text()) or {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    return tree


def resolve_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> AmadConfig:
    """The one way every command and flow gets its config.

    An explicit ``path`` must exist (else ``ConfigError``: a mistyped path never silently trains
    the built-in defaults); without one, ``./params.yaml`` is used when it exists (what
    ``dvc repro`` sees), else the built-in defaults. ``overrides`` are dotted keys applied last.
    """
    if path is None and DEFAULT_PARAMS.is_file():
        path = DEFAULT_PARAMS
    return load_config(path, overrides)


def config_to_dict(cfg: AmadConfig) -> dict[str, Any]:
    """A plain, YAML/JSON-safe dict of the resolved configuration."""
    return cfg.model_dump(mode="json")
