"""Threshold recalibration without retraining: the same weights, a threshold re-fitted on recent
accepted normal data, published as a new immutable registry version.

:func:`recalibrate_bundle` scores recent data (raw ``(T, C)`` rows of one entity, in time order)
with a bundle, drops the steps that must not shape a normal threshold (labelled anomalies, and
with ``exclude_flagged`` the steps the bundle's current threshold flags), re-fits the threshold by
the bundle's own rule (``amad.detector.thresholds.fit_threshold`` with the bundle's
``score`` config) and writes a new bundle: weights, config, scaler, history and channels
unchanged (the weights are checked byte-identical), ``threshold.json`` new, and the
recalibration record in ``metrics.json`` under ``"recalibration"``:

    {"recalibrated_from": <source version>, "threshold_old": .., "threshold_new": ..,
     "method": .., "kind": .., "n_fit": .., "excluded_labelled": .., "excluded_flagged": ..,
     "window": {<what the caller says the data was: entity, data version, rows, first, last>}}

:func:`recalibrate` does the registry round: fetch the champion (or a named version, every file
verified), recalibrate, publish the result as a *new* version whose ``version.json`` metrics carry
``recalibrated_from``, ``threshold_old`` and ``threshold_new``. The champion pointer is never
touched: the new version becomes champion only through the normal guarded path
(``Registry.promote``, ``amad registry promote``). The data loading is the caller's (this
package never imports ``telemetry``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from amad.detector.bundle import WEIGHTS, load_bundle, save_bundle
from amad.detector.thresholds import fit_threshold
from amad.errors import ArtifactError, DataError
from amad.files import sha256_file
from amad.storage.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recalibration:
    """What one recalibration did (stored in the new bundle's ``metrics.json``)."""

    recalibrated_from: str
    threshold_old: float
    threshold_new: float
    method: str
    kind: str
    n_fit: int
    excluded_labelled: int
    excluded_flagged: int
    window: dict[str, Any] = field(default_factory=dict)
    version: str | None = None  # the published version, once published

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kept(scores: np.ndarray, labels: np.ndarray | None, flagged: np.ndarray | None) -> np.ndarray:
    keep = np.ones(len(scores), dtype=bool)
    if labels is not None:
        keep &= np.asarray(labels).ravel() == 0
    if flagged is not None:
        keep &= ~flagged
    return keep


def recalibrate_bundle(
    bundle_dir: str | Path,
    x_raw: np.ndarray,
    out_dir: str | Path,
    *,
    source_version: str,
    labels: np.ndarray | None = None,
    exclude_flagged: bool = False,
    window: Mapping[str, Any] | None = None,
) -> Recalibration:
    """Write to ``out_dir`` the bundle at ``bundle_dir`` with a threshold re-fitted on ``x_raw``
    (``(T, C)`` raw rows; ``labels (T,)`` 0/1 when known); see the module docstring."""
    bundle = load_bundle(bundle_dir)
    x = np.asarray(x_raw, dtype=np.float32)
    if labels is not None and len(labels) != len(x):
        raise DataError(f"{len(labels)} labels for {len(x)} rows")
    scored = bundle.score(x)
    keep = _kept(scored.scores, labels, scored.flags if exclude_flagged else None)
    if not keep.any():
        raise DataError("no normal steps left to fit a threshold on")
    threshold = fit_threshold(scored.scores[keep], bundle.config.score)
    n_labelled = 0 if labels is None else int((np.asarray(labels) != 0).sum())
    record = Recalibration(
        recalibrated_from=source_version,
        threshold_old=float(bundle.threshold.value),
        threshold_new=float(threshold.value),
        method=threshold.method,
        kind=threshold.kind,
        n_fit=threshold.n_fit,
        excluded_labelled=n_labelled,
        excluded_flagged=int((~keep).sum()) - n_labelled if exclude_flagged else 0,
        window=dict(window or {}),
    )
    out = save_bundle(
        out_dir,
        model=bundle.model,
        config=bundle.config,
        scaler=bundle.scaler,
        threshold=threshold,
        history=bundle.history,
        data_fingerprint=str(bundle.manifest.get("data_fingerprint")),
        extra_metrics={**bundle.metrics, "recalibration": record.to_dict()},
        n_channels=bundle.n_channels,
        channels=bundle.channels,
        overwrite=True,
    )
    if sha256_file(out / WEIGHTS) != bundle.manifest["files"][WEIGHTS]["sha256"]:
        raise ArtifactError(f"{out}: recalibration changed the weights' bytes")
    log.info("recalibrated %s: threshold %.6g -> %.6g on %d steps", source_version,
             record.threshold_old, record.threshold_new, record.n_fit)  # fmt: skip
    return record


def recalibrate(
    registry: Registry,
    x_raw: np.ndarray,
    work_dir: str | Path,
    *,
    run_id: str,
    version: str | None = None,
    labels: np.ndarray | None = None,
    exclude_flagged: bool = False,
    window: Mapping[str, Any] | None = None,
) -> Recalibration:
    """Recalibrate the champion (or ``version``) on ``x_raw`` and publish a new version; the
    champion pointer stays where it is. Returns the record with the new ``version``.

    The new version keeps the source's ``data_version`` (its weights were trained on it); the
    data the threshold was fitted on is described by ``window``."""
    if version is None:
        pointer = registry.champion()
        if pointer is None:
            raise ArtifactError(f"{registry!r} has no champion to recalibrate")
        version = pointer.version
    work = Path(work_dir)
    source = registry.fetch(version, work / "source" / version)
    record = recalibrate_bundle(
        source, x_raw, work / "recalibrated", source_version=version, labels=labels,
        exclude_flagged=exclude_flagged, window=window,
    )  # fmt: skip
    info = registry.show(version)
    metrics = {**info.metrics, "recalibrated_from": version,
               "threshold_old": record.threshold_old, "threshold_new": record.threshold_new}  # fmt: skip
    new = registry.publish_version(
        work / "recalibrated", run_id=run_id, metrics=metrics,
        data_version=info.data_version, check=load_bundle,
    )  # fmt: skip
    return Recalibration(**{**record.to_dict(), "version": new})
