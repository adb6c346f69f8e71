"""``AmadConfig``: the whole configuration, one section per concern."""

from __future__ import annotations

from pydantic import model_validator

from amad.config.operations import (
    AlertConfig,
    ContractConfig,
    FleetConfig,
    PromoteConfig,
    PublishConfig,
    TimeoutConfig,
)
from amad.config.sections import (
    DataConfig,
    ModelConfig,
    ScoreConfig,
    TrainConfig,
    WindowConfig,
    _Section,
)


class AmadConfig(_Section):
    """The whole configuration."""

    # a shipped profile (amad/config/profiles/<name>.yaml) laid over the file: how a worker pool adapts
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
