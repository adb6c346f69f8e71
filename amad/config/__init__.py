"""One validated configuration for the whole system, loaded from ``params.yaml``.

The package's public face; its modules by concern: ``sections`` (data, windows, model, train,
score), ``operations`` (contract, promote, alerts, timeouts, publish, fleet), ``schema``
(``AmadConfig``), ``loading`` (files, profiles in ``profiles/``, overrides).

``AmadConfig`` is a frozen pydantic model with one section per concern (data, windows, model,
train, score, contract, promote, publish, fleet). Every section forbids unknown keys, so a typo in
``params.yaml`` or in an override is a ``ConfigError`` that names the key. Callers slice the
config on the way down (the model gets ``cfg.model``, the trainer ``cfg.train``) and flows turn
their parameters into dotted-key overrides (``{"train.epochs": 3}``), never a second config.
"""

from __future__ import annotations

from amad.config.loading import (
    DEFAULT_PARAMS,
    ENTITY_KEYS,
    PROFILES_DIR,
    build_config,
    config_to_dict,
    load_config,
    load_profile,
    parse_override,
    profile_names,
    resolve_config,
)
from amad.config.operations import (
    AlertConfig,
    ColumnSpec,
    ContractConfig,
    FleetConfig,
    PromoteConfig,
    PublishConfig,
    TimeoutConfig,
)
from amad.config.schema import AmadConfig
from amad.config.sections import (
    ANOMALY_KINDS,
    DATASETS_ENV,
    AnomalyKind,
    DataConfig,
    ModelConfig,
    ScoreConfig,
    SyntheticConfig,
    TrainConfig,
    WindowConfig,
)

__all__ = [
    "ANOMALY_KINDS",
    "DATASETS_ENV",
    "DEFAULT_PARAMS",
    "ENTITY_KEYS",
    "PROFILES_DIR",
    "AlertConfig",
    "AmadConfig",
    "AnomalyKind",
    "ColumnSpec",
    "ContractConfig",
    "DataConfig",
    "FleetConfig",
    "ModelConfig",
    "PromoteConfig",
    "PublishConfig",
    "ScoreConfig",
    "SyntheticConfig",
    "TimeoutConfig",
    "TrainConfig",
    "WindowConfig",
    "build_config",
    "config_to_dict",
    "load_config",
    "load_profile",
    "parse_override",
    "profile_names",
    "resolve_config",
]
