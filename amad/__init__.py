"""amad: AMAD anomaly detection for multivariate telemetry, plus the library code the retraining
pipeline calls (data contract, windows, training, scoring, bundles, registry).

This package never imports ``prefect`` or ``flows``; orchestration depends on it, not back.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("amad")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
