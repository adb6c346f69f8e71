"""The model bundle: one self-describing, verifiable directory per trained model.

Layout (every file but the manifest is listed in the manifest with its sha256 and size)::

    BUNDLE/
      weights.safetensors   model state (safetensors: no pickle, no code execution on load)
      config.yaml           the resolved AmadConfig the model was trained and is scored with
      scaler.json           the training-period scaler
      threshold.json        the alert threshold and how it was fitted
      history.json          per-epoch training history (losses, learning rate: no timings)
      metrics.json          validation (and, where labels existed, evaluation) metrics
      manifest.json         format, sha256 per file, package/torch version, data fingerprint,
                            n_channels, channel names when known

Every byte is determined by the model, its config, scaler, threshold, history and metrics:
no clock, host or commit. Two saves of the same inputs are byte-identical, so the bundle's hash
(DVC's ``runs/pipeline/bundle`` out, the registry's content id) changes only when the model
does. When and from which commit a bundle was trained, and how long it took, are the run's
provenance: ``amad.detector.recipe.TrainOutcome.provenance``, which the DVC stage writes next to
the bundle (``runs/pipeline/provenance.json``); the registry records when a version was
published in its ``version.json``.

``save_bundle`` writes into a hidden sibling temp directory and renames it into place, so a
crash never leaves a half-written bundle under the final name. ``load_bundle`` refuses a bundle
whose manifest lists a missing file, whose file hashes differ, or that holds files the manifest
does not list, raising ``ArtifactError`` that names the file. (The manifest itself is not hashed;
signing it is the registry's concern.)
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from pydantic import ValidationError
from safetensors.torch import load_model, save_model

from amad import __version__
from amad.config import AmadConfig, config_to_dict
from amad.detector.scoring import StepScores, score_series, validate_series
from amad.detector.thresholds import Threshold
from amad.errors import ArtifactError
from amad.files import sha256_file, strict_json
from amad.nn.model import AMAD
from amad.series.windows import Scaler

log = logging.getLogger(__name__)

FORMAT = "amad-bundle/1"
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it
FILES = (
    WEIGHTS,
    "config.yaml",
    "scaler.json",
    "threshold.json",
    "history.json",
    "metrics.json",
)


def _json(obj: Any) -> str:
    """Strict JSON: a metric undefined without labels (NaN) is written as null."""
    return strict_json(obj)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module behind a ``torch.compile`` wrapper."""
    return getattr(model, "_orig_mod", model)


def _write_files(
    tmp: Path,
    *,
    model: torch.nn.Module,
    config: AmadConfig,
    scaler: Scaler,
    threshold: Threshold,
    history: list[dict[str, Any]],
    metrics: dict[str, Any],
) -> None:
    plain = _unwrap(model)
    if any(p.device.type != "cpu" for p in plain.parameters()):
        plain = copy.deepcopy(plain).cpu()  # leave the caller's model where it is
    save_model(plain, str(tmp / WEIGHTS), metadata={"format": FORMAT})
    (tmp / "config.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=True))
    (tmp / "scaler.json").write_text(_json(scaler.to_dict()))
    (tmp / "threshold.json").write_text(_json(threshold.to_dict()))
    (tmp / "history.json").write_text(_json(history))
    (tmp / "metrics.json").write_text(_json(metrics))


def save_bundle(
    out_dir: str | Path,
    *,
    model: torch.nn.Module,
    config: AmadConfig,
    scaler: Scaler,
    threshold: Threshold,
    history: list[dict[str, Any]],
    data_fingerprint: str,
    extra_metrics: dict[str, Any] | None = None,
    n_channels: int | None = None,
    channels: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a bundle to ``out_dir`` atomically (temp dir + rename) and return its path.

    ``channels`` names the input columns in model order (recorded so that a table is scored by
    column name, never by position); None when the training data had no names.
    """
    out = Path(out_dir)
    n_channels = n_channels if n_channels is not None else _model_channels(model)
    if channels is not None and (len(channels) != n_channels or len(set(channels)) != n_channels):
        raise ArtifactError(f"{len(channels)} channel name(s) given for {n_channels} channels")
    if out.exists() and not overwrite:
        raise ArtifactError(f"bundle directory already exists: {out} (pass overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _write_files(
            tmp,
            model=model,
            config=config,
            scaler=scaler,
            threshold=threshold,
            history=history,
            metrics=dict(extra_metrics or {}),
        )
        manifest = {
            "format": FORMAT,
            "package_version": __version__,
            "torch_version": torch.__version__,
            "data_fingerprint": data_fingerprint,
            "n_channels": int(n_channels),
            "channels": None if channels is None else [str(c) for c in channels],
            "files": {
                name: {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size}
                for name in FILES
            },
        }
        (tmp / MANIFEST).write_text(_json(manifest))
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("bundle written to %s", out)
    return out


def _model_channels(model: torch.nn.Module) -> int:
    n = getattr(_unwrap(model), "n_channels", None)
    if not isinstance(n, int):
        raise ArtifactError("save_bundle needs n_channels (the model does not expose it)")
    return n


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``; an existing ``out`` is moved aside first, then removed."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- loading


def read_manifest(bundle_dir: Path) -> dict[str, Any]:
    """The manifest of a bundle, checked for format; ``ArtifactError`` if absent or bad."""
    path = bundle_dir / MANIFEST
    if not bundle_dir.is_dir():
        raise ArtifactError(f"bundle directory not found: {bundle_dir}")
    if not path.is_file():
        raise ArtifactError(f"bundle {bundle_dir} has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: unknown bundle format (expected {FORMAT!r})")
    return manifest


def verify_bundle(bundle_dir: str | Path) -> dict[str, Any]:
    """Check every file against the manifest; return the manifest or raise ``ArtifactError``."""
    root = Path(bundle_dir)
    manifest = read_manifest(root)
    files: dict[str, dict[str, Any]] = manifest.get("files", {})
    missing_required = sorted(set(FILES) - set(files))
    if missing_required:
        raise ArtifactError(f"{root}: manifest does not list {', '.join(missing_required)}")
    if root.is_symlink() or any(p.is_symlink() for p in root.iterdir()):
        raise ArtifactError(f"{root}: a bundle may not hold symlinks")
    present = {p.name for p in root.iterdir()} - {MANIFEST}
    for name in sorted(present - set(files)):
        raise ArtifactError(f"{root}: unexpected file {name!r} not listed in the manifest")
    for name, meta in sorted(files.items()):
        if Path(name).name != name or name in ("", ".", ".."):  # a bundle is one flat folder
            raise ArtifactError(f"{root}: manifest path {name!r} points outside the bundle")
        path = root / name
        if not path.is_file():
            raise ArtifactError(f"{root}: file {name!r} listed in the manifest is missing")
        if sha256_file(path) != meta.get("sha256"):
            raise ArtifactError(f"{root}: file {name!r} does not match its sha256 (tampered?)")
    return manifest


@dataclass(frozen=True)
class ScoredSeries:
    """Per-step scores of a raw series, the alert flags and the threshold used."""

    scores: np.ndarray  # (T,) the configured score kind
    flags: np.ndarray  # (T,) bool, scores > threshold
    threshold: float
    steps: StepScores  # both score kinds and the discrepancy


@dataclass(frozen=True)
class Bundle:
    """A verified, loaded model bundle, ready to score raw series."""

    path: Path
    config: AmadConfig
    model: torch.nn.Module
    scaler: Scaler
    threshold: Threshold
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def n_channels(self) -> int:
        return int(self.manifest["n_channels"])

    @property
    def channels(self) -> list[str] | None:
        """The input column names in model order, or None for a bundle trained without names."""
        names = self.manifest.get("channels")
        if names is None:
            return None
        if not isinstance(names, list) or len(names) != self.n_channels:
            raise ArtifactError(f"{self.path}: manifest channels do not match n_channels")
        return [str(n) for n in names]

    def score(self, x_raw: np.ndarray, *, progress: bool = False) -> ScoredSeries:
        """Scale ``x_raw (T, C)`` with the bundle's scaler, score it, flag above threshold."""
        x = np.asarray(x_raw)
        validate_series(x, n_channels=self.n_channels, min_steps=self.config.windows.length)
        x_scaled = np.asarray(self.scaler.transform(x.astype(np.float32)), dtype=np.float32)
        steps = score_series(
            self.model, x_scaled, self.config.score, self.config.windows, progress=progress
        )
        scores = steps.of(self.threshold.kind)
        return ScoredSeries(
            scores=scores,
            flags=scores > self.threshold.value,
            threshold=self.threshold.value,
            steps=steps,
        )


def _load_json(root: Path, name: str) -> Any:
    try:
        return json.loads((root / name).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{root}: {name} is not readable JSON: {exc}") from exc


def _read_config(root: Path) -> AmadConfig:
    """The resolved config a bundle was trained with, validated as it was written.

    It is the *resolved* config (profile and overrides already applied), so it is validated as
    is, not re-resolved: laying its ``profile`` over it again could undo an override. libyaml's
    loader when present: scoring a fleet loads one bundle per entity, and the pure-Python parser
    and a re-resolve cost ~80 ms a bundle against ~3 ms.
    """
    try:
        raw = yaml.load((root / "config.yaml").read_text(), Loader=_YAML_LOADER)
        return AmadConfig.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ArtifactError(f"{root}: config.yaml is invalid: {exc}") from exc


def load_bundle(bundle_dir: str | Path, *, device: str | torch.device = "cpu") -> Bundle:
    """Verify and load a bundle; ``ArtifactError`` names the first bad file."""
    root = Path(bundle_dir)
    manifest = verify_bundle(root)
    config = _read_config(root)
    model = AMAD(config.model, n_channels=int(manifest["n_channels"]))
    try:
        load_model(model, str(root / WEIGHTS), strict=True)
    except (RuntimeError, OSError, ValueError) as exc:
        raise ArtifactError(f"{root}: {WEIGHTS} does not fit the configured model: {exc}") from exc
    model.to(device).eval()
    try:
        scaler = Scaler.from_dict(_load_json(root, "scaler.json"))
        threshold = Threshold.from_dict(_load_json(root, "threshold.json"))
    except (TypeError, KeyError, ValueError) as exc:
        raise ArtifactError(f"{root}: scaler.json or threshold.json is malformed: {exc}") from exc
    return Bundle(
        path=root,
        config=config,
        model=model,
        scaler=scaler,
        threshold=threshold,
        history=_load_json(root, "history.json"),
        metrics=_load_json(root, "metrics.json"),
        manifest=manifest,
    )
