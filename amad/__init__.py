"""amad: AMAD anomaly detection for multivariate telemetry, plus the library code the retraining
pipeline calls (data contract, windows, training, scoring, bundles, registry).

The front door: the names in ``__all__`` are the public API, imported lazily so that
``import amad.config`` does not pull in torch. The layers behind it (see ARCHITECTURE.md)::

    config, errors, files            every layer may import these
    series      numpy series, loaders, windows           -> config, errors, files
    nn          the PyTorch model and losses             -> torch, config
    evaluation  metrics, VUS, champion/challenger        -> series
    telemetry   contract, GX, ingest, dataset, DVC       -> series, storage
    storage     Store (local, S3), registry
    detector    fit, score, thresholds, bundle, recipe   -> nn, series, evaluation
    bench       detectors, baselines, benchmark runner   -> detector
    devstack    local SeaweedFS and Prefect server       -> storage
    stages, cli the seams dvc.yaml, flows and the command line call

This package never imports ``prefect`` or ``flows``; orchestration depends on it, not back.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("amad")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

# public name -> the module that defines it
_EXPORTS = {
    "AmadConfig": "amad.config",
    "load_config": "amad.config",
    "resolve_config": "amad.config",
    "AmadError": "amad.errors",
    "AMAD": "amad.nn.model",
    "fit": "amad.detector.train",
    "train_bundle": "amad.detector.recipe",
    "load_bundle": "amad.detector.bundle",
    "Registry": "amad.storage.registry",
}

__all__ = [
    "AMAD",
    "AmadConfig",
    "AmadError",
    "Registry",
    "__version__",
    "fit",
    "load_bundle",
    "load_config",
    "resolve_config",
    "train_bundle",
]

if TYPE_CHECKING:
    from amad.config import AmadConfig, load_config, resolve_config
    from amad.detector.bundle import load_bundle
    from amad.detector.recipe import train_bundle
    from amad.detector.train import fit
    from amad.errors import AmadError
    from amad.nn.model import AMAD
    from amad.storage.registry import Registry


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'amad' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
