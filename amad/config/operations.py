"""The operations side of the configuration: the telemetry contract, promotion, alerts, limits,
publishing and the fleet."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from amad.config.sections import _Section


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
    # ingest compacts an entity-day holding more than this many parts into one; None: never
    compact_after_parts: int | None = Field(8, ge=1)

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
    # drift acts: the retrain automation (flows/notify_setup.py) starts at most one pipeline run
    # per window of this many seconds, however many amad.drift.detected events arrive in it
    drift_retrain_cooldown_s: float = Field(21600.0, gt=0)


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
