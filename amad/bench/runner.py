"""The benchmark: every detector on every entity of a dataset, under one honest protocol.

Per entity (an SMD machine, an MSL channel, a generic file, a synthetic seed): load it, split the
training period in time (the later ``val_fraction`` is held out), fit the scaler on the fitting
part, fit each detector there, set its threshold at the ``(100 - r)``-th percentile of its scores on
the held-out part (AMAD: the training recipe's ``score.threshold``; ``r`` and ``val_fraction`` go
into its config, ``amad_overrides``), score the test split and compute every metric of
``amad.evaluation.metrics``. Test labels are used only by the metrics. ``legacy_point_adjusted_f1_leaky`` (threshold from held-out and test
scores pooled, the Anomaly Transformer convention) is there for comparison with papers only.
The channels that enter the score (``score.channels``, else what the dataset declares: telemanom
scores column 0) are the same for every detector that has a per-channel score.

Outputs under ``out``: ``results.json`` (per entity and detector, means, resolved configs, package
versions, seeds, timings), ``results.md`` (tables), ``scores/<detector>/<entity>.npy`` (float64,
one score per test step, aligned with the test file) and ``plots/*.png`` (scores against labels
for each detector's best and worst entity by VUS-PR). Both result files are rewritten after every
(entity, detector) pair, so an interrupted run keeps what finished; ``resume`` skips finished pairs.
A pair that fails is logged and recorded with its error; the others go on.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from amad.bench.detectors import (
    AMADDetector,
    Detector,
    detector_config,
    entity_seed,
    fit_with_threshold,
    is_fleet,
    make_detector,
    restrict_score,
)
from amad.bench.fleet import PooledFit, adopt_pooled, fit_pooled_detectors
from amad.bench.report import RESULTS_JSON, write_plots, write_results
from amad.config import DataConfig, build_config
from amad.detector.thresholds import percentile_threshold
from amad.errors import ConfigError, DataError, DatasetNotFoundError
from amad.evaluation import metrics
from amad.series.data import SeriesData, resolve_score_channels
from amad.series.loaders import list_entities, load_series
from amad.series.windows import Scaler, split_train_val

log = logging.getLogger(__name__)

DATASETS = ("smd", "msl", "telemanom", "generic", "synthetic")
DEFAULT_ANOMALY_RATIO = {"smd": 0.5, "msl": 1.0}  # percent; BASELINES.md's r
_PACKAGES = ("numpy", "torch", "scikit-learn", "scipy", "amad")


@dataclass(frozen=True)
class BenchSpec:
    """What to run; ``overrides`` are dotted keys (``data.*`` for the data, others for AMAD)."""

    dataset: str
    out: Path
    detectors: tuple[str, ...] = ("random", "pca", "iforest", "ae", "amad")
    root: str | None = None
    entities: tuple[str, ...] | None = None  # None = all
    profile: str = "cpu"
    seed: int = 0
    anomaly_ratio: float | None = None  # percent; None = per-dataset default
    val_fraction: float = 0.2
    max_buffer: int = 100
    overrides: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    progress: bool = False

    def ratio(self) -> float:
        return self.anomaly_ratio or DEFAULT_ANOMALY_RATIO.get(self.dataset, 1.0)


def _split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    data = {k[len("data.") :]: v for k, v in overrides.items() if k.startswith("data.")}
    model = {k: v for k, v in overrides.items() if not k.startswith("data.")}
    return data, model


def amad_overrides(spec: BenchSpec) -> dict[str, Any]:
    """The non-``data.*`` overrides plus the protocol's ratio and split, for AMAD's config.

    AMAD thresholds and early-stops through the training recipe, which reads
    ``score.anomaly_ratio`` and ``windows.val_fraction`` from its config: both are set to what
    the protocol uses for every detector, so the recorded config reproduces the result with
    ``amad train``. A ``--set`` of either that disagrees is an error (use ``--anomaly-ratio``).
    """
    _, model_over = _split_overrides(spec.overrides)
    protocol = {"score.anomaly_ratio": spec.ratio(), "windows.val_fraction": spec.val_fraction}
    for key, value in protocol.items():
        given = model_over.get(key, value)
        if not isinstance(given, int | float) or float(given) != value:
            raise ConfigError(
                f"{key}={given!r} contradicts the benchmark protocol's {value} "
                "(every detector shares it: use --anomaly-ratio / BenchSpec.val_fraction)"
            )
    return {**model_over, **protocol}


def data_config(spec: BenchSpec, entity: str | None = None) -> DataConfig:
    """The ``DataConfig`` for one entity (synthetic entities are ``seed-N``)."""
    if spec.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {spec.dataset!r}; one of {', '.join(DATASETS)}")
    data_over, _ = _split_overrides(spec.overrides)
    over = {f"data.{k}": v for k, v in data_over.items()}
    over["data.source"] = spec.dataset
    if spec.root:
        over["data.root"] = spec.root
    if spec.dataset == "synthetic" and entity:
        if not entity.startswith("seed-") or not entity[5:].isdigit():
            raise ConfigError(f"synthetic entities are named seed-N, got {entity!r}")
        over["data.synthetic.seed"] = int(entity[5:])
    elif entity:
        over["data.entity"] = entity
    return build_config({}, over).data


def resolve_entities(spec: BenchSpec) -> list[str]:
    """``spec.entities`` or every entity of the dataset."""
    if spec.entities:
        return list(spec.entities)
    if spec.dataset == "synthetic":
        return ["seed-0"]
    cfg = data_config(spec)
    found = list_entities(cfg)
    if not found:  # e.g. a telemanom root whose channels belong to another spacecraft
        where = f" of spacecraft {cfg.spacecraft!r}" if cfg.source == "telemanom" else ""
        raise DatasetNotFoundError(f"no entities{where} under {cfg.root}: nothing to benchmark")
    return found


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _host() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


@dataclass(frozen=True)
class EntityData:
    """One entity's scaled parts."""

    fit: np.ndarray  # (T_fit, C)
    val: np.ndarray  # (T_val, C)
    test: np.ndarray  # (T_test, C)
    labels: np.ndarray  # (T_test,) int8
    score_channels: tuple[int, ...] | None = None  # scored channels, for every detector


def prepare(
    series: SeriesData, val_fraction: float, channels: list[int | str] | None = None
) -> EntityData:
    """Chronological split of the training period; scaler fitted on the fitting part only.

    ``channels`` (``score.channels``) overrides the channels the series declares for scoring."""
    if series.labels is None:
        raise DataError(f"{series.name}/{series.entity} has no test labels to evaluate against")
    fit_raw, val_raw = split_train_val(series.train, val_fraction)
    scaler = Scaler().fit(fit_raw)
    return EntityData(
        fit=scaler.transform(fit_raw).astype(np.float32),
        val=scaler.transform(val_raw).astype(np.float32),
        test=scaler.transform(series.test).astype(np.float32),
        labels=np.asarray(series.labels, dtype=np.int8),
        score_channels=resolve_score_channels(series, channels),
    )


def run_pair(
    spec: BenchSpec,
    name: str,
    entity: str,
    data: EntityData,
    trained: dict[str, AMADDetector] | None = None,
    pooled: Mapping[str, PooledFit] | None = None,
) -> dict[str, Any]:
    """Fit, threshold, score and evaluate one detector on one entity; writes its scores.

    ``trained`` (one dict per entity) maps an AMAD ``training_key`` to a fitted detector: a
    variant that differs only in its ``score`` settings reuses that model instead of training
    the same weights again (training is deterministic on CPU; on CUDA this saves a retrain that
    would differ only by nondeterminism). ``pooled`` holds the fleet detectors' shared models
    (``amad.bench.fleet``): such a detector only calibrates and thresholds on this entity.
    """
    seed = spec.seed if is_fleet(name) else entity_seed(spec.seed, entity)
    det = make_detector(
        name, seed=seed, profile=spec.profile, overrides=amad_overrides(spec),
        progress=spec.progress,
    )  # fmt: skip
    channels = data.score_channels
    applied = restrict_score(det, None if channels is None else np.asarray(channels))
    started = time.perf_counter()
    fleet = adopt_pooled(det, data.fit, data.val, pooled)
    shared = None if fleet else _shared_model(det, trained)
    fitted = fit_with_threshold(det, data.fit, data.val, anomaly_ratio=spec.ratio(),
                                prefitted=shared is not None or fleet is not None)  # fmt: skip
    fit_s = time.perf_counter() - started + (fleet.share_s if fleet else 0.0)
    if isinstance(det, AMADDetector) and trained is not None and shared is None:
        trained[det.training_key()] = det
    started = time.perf_counter()
    scores = np.asarray(det.score(data.test), dtype=np.float64)
    score_s = time.perf_counter() - started
    if scores.shape != data.labels.shape or not np.isfinite(scores).all():
        raise DataError(f"{name} on {entity}: test scores are not one finite value per step")
    path = _save_scores(spec.out, "scores", name, entity, scores)
    val_path = _save_scores(spec.out, "val_scores", name, entity, fitted.val_scores)  # threshold's
    return {
        "status": "ok",
        "seed": seed,
        "metrics": _pair_metrics(spec, scores, fitted.val_scores, data.labels, fitted.threshold),
        "fit_s": fit_s,
        "score_s": score_s,
        "n_fit": len(data.fit),
        "n_val": len(data.val),
        "n_test": len(data.test),
        "scores_file": str(path.relative_to(spec.out)),
        "val_scores_file": str(val_path.relative_to(spec.out)),
        "threshold": fitted.threshold,
        "score_channels": None if channels is None else list(channels),
        "score_channels_applied": applied,
        "info": {k: v for k, v in getattr(det, "info", {}).items() if k != "history"},
        "history": getattr(det, "info", {}).get("history"),
        "config": detector_config(det),
    }


def _save_scores(out: Path, kind: str, name: str, entity: str, scores: np.ndarray) -> Path:
    """``out/<kind>/<detector>/<entity>.npy``; the path."""
    path = out / kind / name / f"{entity}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, scores)
    return path


def _pair_metrics(
    spec: BenchSpec, scores: np.ndarray, val_scores: np.ndarray, labels: np.ndarray,
    threshold: float,
) -> dict[str, Any]:  # fmt: skip
    """The honest metrics at ``threshold``, plus the leaky legacy F1 (pooled test scores) that
    papers report, kept apart by name."""
    result = metrics.evaluate(scores, labels, threshold, max_buffer=spec.max_buffer)
    leaky = percentile_threshold(np.concatenate([val_scores, scores]), spec.ratio())
    result["legacy_point_adjusted_f1_leaky"] = metrics.legacy_point_adjusted_f1(
        scores >= leaky, labels
    )
    return result


def _shared_model(det: Detector, trained: dict[str, AMADDetector] | None) -> AMADDetector | None:
    """The already fitted detector ``det`` can reuse (and adopt it), or None."""
    if not isinstance(det, AMADDetector) or not trained:
        return None
    source = trained.get(det.training_key())
    if source is not None:
        det.adopt(source)
    return source


def _load_previous(spec: BenchSpec) -> dict[str, dict[str, dict[str, Any]]]:
    path = spec.out / RESULTS_JSON
    if not (spec.resume and path.is_file()):
        return {}
    previous: dict[str, dict[str, dict[str, Any]]] = json.loads(path.read_text())["entities"]
    return previous


def _header(spec: BenchSpec, entities: list[str]) -> dict[str, Any]:
    spec_dict = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()}
    return {
        "spec": spec_dict,
        "entities_requested": entities,
        "anomaly_ratio_percent": spec.ratio(),
        "threshold_protocol": (
            f"percentile {100 - spec.ratio():g} of held-out (last {spec.val_fraction:.0%}) "
            "training-period scores; scaler fitted on the fitting part only; AMAD variants: "
            "the training recipe's score.threshold (default percentile, same r) on that part"
        ),
        "versions": _versions(),
        "host": _host(),
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _load_entity(spec: BenchSpec, entity: str) -> EntityData:
    return prepare(load_series(data_config(spec, entity)), spec.val_fraction, _channels(spec))


def _fit_fleets(spec: BenchSpec, entities: list[str]) -> dict[str, PooledFit]:
    """The fleet detectors' pooled models, on every entity that loads (others fail later)."""
    names = [n for n in spec.detectors if is_fleet(n)]
    if not names:
        return {}
    parts = {}
    for entity in entities:
        try:
            data = _load_entity(spec, entity)
        except Exception:  # reported by _run_entity with the rest of that entity's pairs
            continue
        parts[entity] = (data.fit, data.val)
    over = amad_overrides(spec)
    dets = {
        n: make_detector(n, seed=spec.seed, profile=spec.profile, overrides=over) for n in names
    }
    fleet = {n: d for n, d in dets.items() if isinstance(d, AMADDetector)}
    return fit_pooled_detectors(fleet, parts, progress=spec.progress)


def _run_entity(
    spec: BenchSpec, entity: str, doc: dict[str, Any], pooled: Mapping[str, PooledFit]
) -> None:
    row = doc["entities"].setdefault(entity, {})
    todo = [d for d in spec.detectors if row.get(d, {}).get("status") != "ok"]
    if not todo:
        log.info("%s: already done, skipped", entity)
        return
    try:
        data = _load_entity(spec, entity)
    except Exception as exc:  # a broken entity is reported, the others go on
        log.exception("%s: cannot load", entity)
        for name in todo:
            row[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        write_results(spec.out, list(spec.detectors), doc)
        return
    trained: dict[str, AMADDetector] = {}
    for name in todo:
        log.info("%s: %s ...", entity, name)
        try:
            row[name] = run_pair(spec, name, entity, data, trained, pooled)
        except Exception as exc:  # recorded in results.json and logged with its traceback
            log.exception("%s: %s failed", entity, name)
            row[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        else:
            m = row[name]["metrics"]
            log.info(
                "%s: %s AUC-ROC %.3f VUS-PR %.3f aff-F1 %.3f (fit %.1fs, score %.1fs)",
                entity, name, m["auc_roc"], m["vus_pr"], m["affiliation_f1"],
                row[name]["fit_s"], row[name]["score_s"],
            )  # fmt: skip
        write_results(spec.out, list(spec.detectors), doc)


def _channels(spec: BenchSpec) -> list[int | str] | None:
    """``score.channels`` from the overrides (validated), None when not set."""
    _, model_over = _split_overrides(spec.overrides)
    over = {k: v for k, v in model_over.items() if k == "score.channels"}
    return build_config({}, over).score.channels


def run_bench(spec: BenchSpec) -> dict[str, Any]:
    """Run the benchmark; returns the results document also written to ``spec.out``."""
    model_over = amad_overrides(spec)
    for name in spec.detectors:  # fail fast on unknown names and invalid overrides
        make_detector(name, profile=spec.profile, overrides=model_over)
    entities = resolve_entities(spec)
    spec.out.mkdir(parents=True, exist_ok=True)
    doc = {**_header(spec, entities), "entities": _load_previous(spec)}
    started = time.perf_counter()
    pooled = _fit_fleets(spec, entities)
    doc["fleet_fit_s"] = {name: fit.fit_s for name, fit in pooled.items()}
    for i, entity in enumerate(entities, 1):
        log.info("[%d/%d] %s", i, len(entities), entity)
        _run_entity(spec, entity, doc, pooled)
    doc["wall_s"] = time.perf_counter() - started
    write_results(spec.out, list(spec.detectors), doc)
    write_plots(spec.out, doc, list(spec.detectors), data_loader=lambda e: _labels(spec, e))
    return doc


def _labels(spec: BenchSpec, entity: str) -> np.ndarray:
    series = load_series(data_config(spec, entity))
    if series.labels is None:
        raise DataError(f"{entity} has no labels")
    return np.asarray(series.labels)
