"""The pipeline's stage functions, once: ``dvc.yaml`` (through ``amad stage``) and the Prefect
flows both call these.

- ``validate``: re-run the contract's suite on the whole committed dataset (report + Data Docs).
- ``fleet_entities``: which entities the pipeline trains (``fleet.entities``, else all).
- ``windows``: one entity's series (``data.entity``, required when there are several) from the dataset (last ``contract.eval_fraction`` held out
  for evaluation), split/scaled/windowed by ``amad.series.windows``; keyed by data version and window
  parameters, so an unchanged version reuses the folder without reading the data, and another
  version is checked out from DVC first (``amad.telemetry.versioning.checkout_version``).
- ``train``: fit AMAD on a window set and write a verified bundle (and, when asked, the run's
  provenance, outside the bundle: ``write_provenance``); ``train_fleet``: one pooled model on
  several entities' window sets, a bundle each (``model.scope: fleet``).
- ``evaluate``: score a bundle on the window set's evaluation period (raw values, the bundle's
  own scaler) and write metrics JSON plus the per-step scores, as an
  ``amad.evaluation.records.Evaluation``; ``evaluate_baseline`` scores the PCA baseline on the
  same window (attach it with ``Evaluation.with_baseline``: its metrics are the ``pca_*`` keys).
- ``amad.evaluation.stage_files``: the small, git-tracked files ``dvc metrics`` and ``dvc plots``
  read (``metrics/``) and the scores archive. Every file a stage declares to DVC holds only what its
  inputs determine (no clock, host or commit), so ``dvc repro`` on a clean clone reproduces
  ``dvc.lock`` exactly; timestamps and timings go to files DVC does not hash.
- ``score_batch``: score a raw telemetry batch with a bundle, per entity.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import pandas as pd

from amad.config import AmadConfig
from amad.errors import DataError, DataValidationError
from amad.evaluation.records import Evaluation
from amad.evaluation.stage_files import save_npz, write_score_plot
from amad.files import write_json
from amad.series.windows import PreparedData, build_windows, load_prepared, save_prepared
from amad.telemetry import dataset, ingest, schema, versioning
from amad.telemetry.reference import read_reference
from amad.telemetry.schema import Contract

if TYPE_CHECKING:
    from amad.detector.recipe import TrainOutcome

log = logging.getLogger(__name__)

WINDOWS_ROOT = Path("runs/windows")
_KEY_FILE = "window_key.json"


class ValidationSummary(TypedDict):
    """``validate``'s result, also written as ``summary.json``."""

    data_version: str | None
    rows: int
    entities: list[str]
    batches: int
    errors: int
    warnings: int
    success: bool


class BatchScores(TypedDict):
    """``score_batch``'s result: ``summary.json``'s counts plus the files written."""

    rows: int
    alerts: int
    alert_rate: float
    files: list[str]


def _write_json(path: Path, obj: Any) -> Path:
    return write_json(path, obj, default=str)


# --------------------------------------------------------------------------- validate


def validate(cfg: AmadConfig, *, out_dir: str | Path) -> ValidationSummary:
    """Validate the committed dataset as one batch; raises ``DataValidationError`` on errors."""
    from amad.telemetry.expectations import validate_frame

    contract = Contract(cfg.contract)
    data_dir = Path(cfg.contract.data_dir)
    frame = dataset.load_dataset(data_dir, contract)
    if frame.empty:
        raise DataError(f"no ingested telemetry under {data_dir}; run `amad ingest` first")
    prepared = schema.prepare_frame(frame, contract)
    report = validate_frame(
        prepared, contract, name=str(data_dir), reference=read_reference(data_dir)
    )
    report.write(out_dir)
    summary: ValidationSummary = {
        "data_version": ingest.data_version(cfg),
        "rows": len(frame),
        "entities": dataset.entities(data_dir),
        "batches": len(dataset.manifests(data_dir)),
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "success": report.success,
    }
    _write_json(Path(out_dir) / "summary.json", summary)
    if not report.success:
        raise DataValidationError(report.summary(), report.to_dict())
    return summary


# --------------------------------------------------------------------------- windows


def windows_key(cfg: AmadConfig, data_version: str) -> str:
    """Data version + window parameters + evaluation split + entity: the window set's id."""
    key = {
        "data_version": data_version,
        "windows": cfg.windows.model_dump(mode="json"),
        "eval_fraction": cfg.contract.eval_fraction,
        "entity": cfg.data.entity,
        "columns": [c.name for c in cfg.contract.columns],
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def _checked_out(cfg: AmadConfig, data_version: str | None, checkout: bool) -> str:
    """The dataset's version, after checking out ``data_version`` when another one is there."""
    current = ingest.data_version(cfg)
    if data_version is not None and data_version != current:
        if not checkout:
            raise DataError(
                f"data version {data_version} requested but {current or 'none'} is checked out "
                "(dvc checkout / dvc pull the wanted version first)"
            )
        versioning.checkout_version(data_version, cfg)
        current = ingest.data_version(cfg)
    if current is None:
        raise DataError(f"no ingested telemetry under {cfg.contract.data_dir}")
    return current


def fleet_entities(cfg: AmadConfig) -> list[str]:
    """The entities the pipeline trains: ``fleet.entities`` as listed, else every entity in the
    dataset, sorted. A listed entity with no data is kept: its retrain fails and says so."""
    if cfg.fleet.entities is not None:
        return list(cfg.fleet.entities)
    return dataset.entities(cfg.contract.data_dir)


def _entity(cfg: AmadConfig) -> str | None:
    """``data.entity``, or the dataset's only entity; never a guess among several."""
    if cfg.data.entity is not None:
        return cfg.data.entity
    available = dataset.entities(cfg.contract.data_dir)
    if len(available) > 1:
        raise DataError(
            f"{cfg.contract.data_dir} holds {len(available)} entities ({', '.join(available[:5])}"
            f"{', ...' if len(available) > 5 else ''}): set data.entity (the pipeline trains "
            "each entity of fleet.entities)"
        )
    return None


def _is_built(out: Path, key: str) -> bool:
    marker = out / _KEY_FILE
    return marker.is_file() and json.loads(marker.read_text()).get("key") == key


def windows(
    cfg: AmadConfig,
    *,
    data_version: str | None = None,
    out_dir: str | Path | None = None,
    checkout: bool = True,
) -> Path:
    """Build (or reuse) the window set of ``data_version`` (default: the current dataset's).

    A window set already built for that version is reused without touching the data. Otherwise
    a version other than the checked-out one is first checked out from DVC (``checkout=False``
    refuses instead), so a fresh worker needs only the version id.
    """
    if data_version is not None:
        key = windows_key(cfg, data_version)
        out = Path(out_dir) if out_dir is not None else WINDOWS_ROOT / key
        if _is_built(out, key):
            log.info("window set %s is up to date (data version %s)", out, data_version)
            return out
    current = _checked_out(cfg, data_version, checkout)
    key = windows_key(cfg, current)
    out = Path(out_dir) if out_dir is not None else WINDOWS_ROOT / key
    if _is_built(out, key):
        log.info("window set %s is up to date (data version %s)", out, current)
        return out
    (out / _KEY_FILE).unlink(missing_ok=True)
    data_dir = cfg.contract.data_dir
    fingerprints = dataset.entity_fingerprints(data_dir)  # before the read: a late batch retrains
    series = dataset.dataset_series(data_dir, Contract(cfg.contract), _entity(cfg))
    prepared = build_windows(series, cfg.windows)
    save_prepared(prepared, out)
    _write_json(out / _KEY_FILE, {"key": key, "data_version": current, "entity": series.entity,
                                  "entity_fingerprint": fingerprints.get(series.entity)})  # fmt: skip
    return out


def window_entity_fingerprint(windows_uri: str | Path) -> str | None:
    """The entity fingerprint (``dataset.entity_fingerprints``) a window set was built from."""
    marker = Path(windows_uri) / _KEY_FILE
    return json.loads(marker.read_text()).get("entity_fingerprint") if marker.is_file() else None


# --------------------------------------------------------------------------- train


def train(
    cfg: AmadConfig,
    windows_uri: str | Path,
    out_dir: str | Path,
    *,
    progress: bool = False,
    provenance_file: str | Path | None = None,
) -> TrainOutcome:
    """Fit AMAD on a window set and write a bundle to ``out_dir``; with ``provenance_file``,
    the run's provenance (``TrainOutcome.provenance``) is written there, outside the bundle."""
    from amad.detector.recipe import train_prepared

    prepared = load_prepared(windows_uri)
    channels = [c.name for c in cfg.contract.columns]  # the window set's columns, in order
    outcome = train_prepared(
        cfg, prepared, out_dir, progress=progress, overwrite=True, channels=channels
    )
    if provenance_file is not None:
        write_provenance(Path(provenance_file), outcome)
    return outcome


def train_fleet(
    cfg: AmadConfig, windows_uris: Mapping[str, str | Path], out_root: str | Path
) -> dict[str, TrainOutcome]:
    """``model.scope: fleet``: one model on every entity's window set, a bundle per entity
    under ``out_root`` (``amad.detector.pooled.train_fleet``)."""
    from amad.detector.pooled import train_fleet as pooled_fit

    prepared = {entity: load_prepared(uri) for entity, uri in windows_uris.items()}
    channels = [c.name for c in cfg.contract.columns]
    return pooled_fit(cfg, prepared, out_root, channels=channels, overwrite=True)


def write_provenance(path: Path, outcome: TrainOutcome) -> Path:
    """When, from which commit, on which device and how fast a bundle was trained (not hashed)."""
    return _write_json(path, {"bundle": str(outcome.path), **outcome.provenance})


def train_summary(outcome: TrainOutcome) -> dict[str, Any]:
    """The train stage's metrics for ``dvc metrics``: the bundle's metrics and epoch counts."""
    return {**outcome.metrics, "epochs": outcome.epochs, "best_epoch": outcome.best_epoch}


# --------------------------------------------------------------------------- evaluate


def eval_id(prepared: PreparedData) -> str:
    """The evaluation window's id: the window set's fingerprint (data + parameters)."""
    return f"{prepared.entity}:{prepared.fingerprint[:24]}"


def _raw(prepared: PreparedData, scaled: np.ndarray) -> np.ndarray:
    return np.asarray(prepared.scaler.inverse_transform(scaled), dtype=np.float32)


def _evaluation(scores: np.ndarray, val_scores: np.ndarray, prepared: PreparedData,
                threshold: float, val_recon_error: float) -> Evaluation:  # fmt: skip
    from amad.evaluation.metrics import evaluate as point_metrics
    from amad.evaluation.selection import population_stability_index

    labels = prepared.labels
    normal = scores if labels is None else scores[labels == 0]
    metrics: dict[str, float] = {}
    if labels is not None and 0 < labels.sum() < len(labels):
        metrics = {k: float(v) for k, v in point_metrics(scores, labels, threshold).items()}
    return Evaluation(
        eval_id=eval_id(prepared),
        nonfinite_scores=int((~np.isfinite(scores)).sum()),
        alert_rate=float((scores > threshold).mean()),
        alert_rate_normal=float((normal > threshold).mean()) if len(normal) else 0.0,
        score_psi=float(population_stability_index(val_scores, scores)),
        eval_steps=len(scores),
        metrics=metrics,
        val_recon_error=val_recon_error,
    )


def evaluate(
    cfg: AmadConfig,
    bundle_dir: str | Path,
    windows_uri: str | Path,
    *,
    out_dir: str | Path,
    plot_file: str | Path | None = None,
) -> Evaluation:
    """Score a bundle on the evaluation period; writes ``metrics.json`` and ``scores.npz``
    (and, with ``plot_file``, the score-vs-label table ``write_score_plot`` writes)."""
    from amad.detector.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    prepared = load_prepared(windows_uri)
    scored = bundle.score(_raw(prepared, prepared.test_scaled))
    val = bundle.score(_raw(prepared, prepared.val_scaled))
    recon = float(np.mean(val.steps.reconstruction))
    evaluation = _evaluation(scored.scores, val.scores, prepared, scored.threshold, recon)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scores_file = out / "scores.npz"
    arrays: dict[str, Any] = {"scores": scored.scores, "threshold": np.float64(scored.threshold)}
    if prepared.labels is not None:
        arrays["labels"] = prepared.labels
    save_npz(scores_file, arrays)
    if plot_file is not None:
        write_score_plot(plot_file, scored.scores, scored.threshold, prepared.labels)
    _write_json(out / "metrics.json", evaluation.to_dict())
    return replace(evaluation, scores_file=str(scores_file))


def evaluate_baseline(cfg: AmadConfig, windows_uri: str | Path) -> Evaluation:
    """The PCA baseline fitted on the same training part, scored on the same window."""
    from amad.bench.detectors import PCADetector, fit_with_threshold

    prepared = load_prepared(windows_uri)
    det = PCADetector()
    fitted = fit_with_threshold(det, prepared.train_scaled, prepared.val_scaled,
                                anomaly_ratio=cfg.score.anomaly_ratio)  # fmt: skip
    scores = np.asarray(det.score(prepared.test_scaled))
    recon = float(np.mean(fitted.val_scores))
    return _evaluation(scores, fitted.val_scores, prepared, fitted.threshold, recon)


# --------------------------------------------------------------------------- scoring


def _batch_bytes(source: str) -> bytes:
    sources = ingest.expand_sources([source])
    if len(sources) != 1:
        raise DataError(f"{source}: expected one batch file, found {len(sources)}")
    return sources[0].read()


def score_batch(
    cfg: AmadConfig, bundle_dir: str | Path, source: str, *, out_dir: str | Path
) -> BatchScores:
    """Score one raw batch, entity by entity; writes ``scores.parquet`` (one row per input row)."""
    from amad.detector.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    contract = Contract(cfg.contract)
    frame = schema.prepare_frame(
        schema.read_batch(_batch_bytes(source), source, contract), contract
    )
    parts = []
    for entity, rows in frame.groupby(contract.entity, sort=True):
        rows = rows.sort_values(contract.timestamp)
        scored = bundle.score(rows[contract.metric_names].to_numpy(dtype=np.float32))
        parts.append(pd.DataFrame({
            contract.timestamp: rows[contract.timestamp].to_numpy(),
            contract.entity: entity, "score": scored.scores, "flag": scored.flags,
        }))  # fmt: skip
    if not parts:
        raise DataError(f"{source}: no rows to score")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = pd.concat(parts, ignore_index=True)
    path = out / "scores.parquet"
    result.to_parquet(path, index=False)
    alerts = int(result["flag"].sum())
    summary = {"rows": len(result), "alerts": alerts, "alert_rate": alerts / len(result)}
    _write_json(out / "summary.json", summary)
    files = [str(path), str(out / "summary.json")]
    return BatchScores(
        rows=len(result), alerts=alerts, alert_rate=alerts / len(result), files=files
    )
