"""Chronological split, train-only scaling and sliding windows (numpy only, no torch).

Legend: t = steps, c = channels, n = windows, l = window length.

The training period is split in time: the first ``1 - val_fraction`` is fitted on, the rest
(strictly later) validates; the ``Scaler`` sees the fitting part only and is then applied to
validation and test. Windows are read-only strided views over the scaled series; when the
stride does not land on the end, one final window is aligned to the end so every step is
covered. ``fold_window_scores`` maps (n, l) window scores back to (t,) by averaging overlaps
(optionally weighted per window position: a forecaster's warm-up positions weigh 0).
``save_prepared``/``load_prepared`` cache a ``PreparedData`` as .npy + JSON (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from amad.config import WindowConfig
from amad.errors import DataError
from amad.files import atomic_write_with, sha256_file
from amad.series.data import SeriesData

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_MIN_STD = 1e-8


# --- split and scaling -------------------------------------------------------------------------


def split_train_val(x: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(fit part, validation part) of a (t, c) training period; validation is the later part."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = round(len(x) * val_fraction)
    if n_val < 1 or n_val >= len(x):
        raise DataError(f"cannot split {len(x)} steps with val_fraction={val_fraction}")
    return x[: len(x) - n_val], x[len(x) - n_val :]


class Scaler:
    """Per-channel standard scaling; channels with (near) zero variance are only centred."""

    def __init__(self, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)

    @property
    def fitted(self) -> bool:
        return self.mean is not None and self.std is not None

    def fit(self, x: np.ndarray) -> Scaler:
        """Fit on (t, c) data and return self."""
        if x.ndim != 2 or len(x) == 0:
            raise DataError(f"scaler needs a non-empty (steps, channels) array, got {x.shape}")
        x64 = np.asarray(x, dtype=np.float64)
        self.mean = x64.mean(axis=0)
        std = x64.std(axis=0)
        self.std = np.where(std < _MIN_STD, 1.0, std)
        return self

    def _params(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None or self.std is None:
            raise RuntimeError("Scaler is not fitted")
        if x.ndim < 1 or x.shape[-1] != self.mean.shape[0]:
            raise DataError(
                f"data has shape {x.shape}, the scaler expects {len(self.mean)} channels"
            )
        return self.mean, self.std

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(..., c) -> scaled float32 (..., c)."""
        mean, std = self._params(x)
        return ((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """Scaled (..., c) -> original units, float32."""
        mean, std = self._params(x)
        return (np.asarray(x, dtype=np.float64) * std + mean).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        if self.mean is None or self.std is None:
            raise RuntimeError("Scaler is not fitted")
        return {"kind": "standard", "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaler:
        """Inverse of ``to_dict``; a malformed description is a ``ValueError``."""
        if data.get("kind") != "standard" or "mean" not in data or "std" not in data:
            raise ValueError(f"not a standard scaler description: keys {sorted(data)}")
        mean, std = np.asarray(data["mean"], float), np.asarray(data["std"], float)
        if mean.ndim != 1 or mean.shape != std.shape or not np.all(std > 0):
            raise ValueError("scaler mean/std must be equal-length vectors with std > 0")
        return cls(mean, std)


# --- windows -----------------------------------------------------------------------------------


def window_starts(n_steps: int, length: int, stride: int) -> np.ndarray:
    """Start indices of windows of ``length`` every ``stride`` steps, the last aligned to the end."""
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be >= 1, got {length}, {stride}")
    if n_steps < length:
        raise DataError(f"{n_steps} steps are fewer than one window of length {length}")
    starts = np.arange(0, n_steps - length + 1, stride, dtype=np.int64)
    if starts[-1] != n_steps - length:
        starts = np.append(starts, n_steps - length)
    return starts


def sliding_windows(x: np.ndarray, length: int, stride: int) -> np.ndarray:
    """(t, c) -> (n, l, c) windows at ``window_starts``; a read-only view when the stride lands
    on the end (always for stride 1), otherwise a copy that includes the end-aligned window."""
    if x.ndim != 2:
        raise ValueError(f"expected a (steps, channels) array, got shape {x.shape}")
    starts = window_starts(len(x), length, stride)
    view = np.lib.stride_tricks.sliding_window_view(x, length, axis=0)  # (t-l+1, c, l)
    view = view.transpose(0, 2, 1)  # (t-l+1, l, c)
    if (len(x) - length) % stride == 0:
        return view[::stride]
    return view[starts]


def scoring_windows(x: np.ndarray, cfg: WindowConfig) -> tuple[np.ndarray, np.ndarray]:
    """(windows (n, l, c), starts (n,)) for scoring: stride ``cfg.score_stride``."""
    starts = window_starts(len(x), cfg.length, cfg.score_stride)
    return sliding_windows(x, cfg.length, cfg.score_stride), starts


def smooth_steps(scores: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of a (T,) score over ``width`` steps (edges padded by repetition).

    ``width`` 1 returns the scores unchanged. Range metrics (VUS, affiliation) and operators
    both care about incidents, not single steps, and a per-step reconstruction error is noisy;
    averaging it over neighbouring steps is what the windowed AE baseline does implicitly.
    """
    s = np.asarray(scores, dtype=np.float64)
    if width < 1:
        raise ValueError(f"smoothing width must be >= 1, got {width}")
    if width == 1 or s.size == 0:
        return s
    left = width // 2
    padded = np.pad(s, (left, width - 1 - left), mode="edge")
    csum = np.concatenate(([0.0], np.cumsum(padded)))
    return (csum[width:] - csum[:-width]) / width


def fold_window_scores(
    window_scores: np.ndarray,
    starts: np.ndarray,
    n_steps: int,
    *,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """(n, l) per-window step scores -> (t,) float64, a weighted mean where windows overlap.

    ``weights`` (l,) per window position or (n, l), >= 0; None: all 1. A forecaster gives its
    warm-up positions weight 0, so a step is scored by the windows where it is a real target.
    Steps that lie in a window but only at weight-0 positions (the warm-up of the series' first
    window) take the score of the nearest step that has weight: every step still gets a score.
    """
    scores = np.asarray(window_scores, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.int64)
    if scores.ndim != 2 or scores.shape[0] != starts.shape[0]:
        raise ValueError(f"window scores {scores.shape} do not match {starts.shape[0]} starts")
    length = scores.shape[1]
    if starts.size and (starts.min() < 0 or starts.max() + length > n_steps):
        raise ValueError(f"windows of length {length} reach outside 0..{n_steps - 1}")
    w = np.ones_like(scores) if weights is None else np.broadcast_to(weights, scores.shape)
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("fold weights must be finite and >= 0")
    idx = (starts[:, None] + np.arange(length)).ravel()  # (n * l,)
    counts = np.bincount(idx, minlength=n_steps)
    if not counts.all():
        raise ValueError(f"{int((counts == 0).sum())} of {n_steps} steps are in no window")
    sums = np.bincount(idx, weights=(scores * w).ravel(), minlength=n_steps)
    mass = np.bincount(idx, weights=np.asarray(w, dtype=np.float64).ravel(), minlength=n_steps)
    scored = mass > 0
    if not scored.any():
        raise ValueError("every fold weight is 0: no step can be scored")
    out = np.divide(sums, mass, out=np.zeros(n_steps), where=scored)
    if not scored.all():  # nearest scored step (the series start of a forecaster)
        where = np.flatnonzero(scored)
        pos = np.clip(np.searchsorted(where, np.arange(n_steps)), 0, len(where) - 1)
        left = where[np.clip(pos - 1, 0, len(where) - 1)]
        right = where[pos]
        steps = np.arange(n_steps)
        nearest = np.where(np.abs(steps - left) <= np.abs(right - steps), left, right)
        out = np.where(scored, out, out[nearest])
    return out


# --- prepared data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedData:
    """Everything training and scoring need from one series, scaled by a train-only scaler.

    ``train_windows``/``val_windows`` are (n, l, c) float32 read-only views over
    ``train_scaled``/``val_scaled``; index them (``w[idx]``) to get contiguous batches.
    """

    name: str
    entity: str
    window_cfg: WindowConfig
    scaler: Scaler
    train_scaled: np.ndarray  # (t_fit, c)
    val_scaled: np.ndarray  # (t_val, c)
    test_scaled: np.ndarray  # (t_test, c)
    labels: np.ndarray | None  # (t_test,) int8
    train_windows: np.ndarray  # (n_train, l, c)
    val_windows: np.ndarray  # (n_val, l, c)
    data_fingerprint: str
    fingerprint: str

    @property
    def n_channels(self) -> int:
        return int(self.train_scaled.shape[1])


def _window_params(cfg: WindowConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


def windows_fingerprint(data_fp: str, cfg: WindowConfig) -> str:
    """Cache key of a window set: data fingerprint + window parameters + format version."""
    key = {"data": data_fp, "windows": _window_params(cfg), "format": FORMAT_VERSION}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _assemble(
    series_meta: tuple[str, str, str],
    cfg: WindowConfig,
    scaler: Scaler,
    scaled: tuple[np.ndarray, np.ndarray, np.ndarray],
    labels: np.ndarray | None,
) -> PreparedData:
    name, entity, data_fp = series_meta
    fit, val, test = scaled
    for part, arr in (("training", fit), ("validation", val), ("test", test)):
        if len(arr) < cfg.length:
            raise DataError(
                f"{name}/{entity}: {part} part has {len(arr)} steps, fewer than one window "
                f"({cfg.length}); use a shorter windows.length or more data"
            )
    return PreparedData(
        name=name,
        entity=entity,
        window_cfg=cfg,
        scaler=scaler,
        train_scaled=fit,
        val_scaled=val,
        test_scaled=test,
        labels=labels,
        train_windows=sliding_windows(fit, cfg.length, cfg.train_stride),
        val_windows=sliding_windows(val, cfg.length, cfg.train_stride),
        data_fingerprint=data_fp,
        fingerprint=windows_fingerprint(data_fp, cfg),
    )


def build_windows(series: SeriesData, cfg: WindowConfig) -> PreparedData:
    """Split the training period in time, fit the scaler on its first part, build windows."""
    fit_raw, val_raw = split_train_val(series.train, cfg.val_fraction)
    scaler = Scaler().fit(fit_raw)
    scaled = (scaler.transform(fit_raw), scaler.transform(val_raw), scaler.transform(series.test))
    prepared = _assemble(
        (series.name, series.entity, series.fingerprint()), cfg, scaler, scaled, series.labels
    )
    log.info(
        "windows for %s/%s: %d train, %d val (length %d, stride %d), %d test steps",
        series.name,
        series.entity,
        len(prepared.train_windows),
        len(prepared.val_windows),
        cfg.length,
        cfg.train_stride,
        len(series.test),
    )
    return prepared


# --- cache on disk -----------------------------------------------------------------------------

_ARRAYS = ("train_scaled", "val_scaled", "test_scaled", "labels")
_META = "prepared.json"
_META_KEYS = {"name", "entity", "window_cfg", "scaler", "data_fingerprint", "fingerprint", "files"}


def _write_atomic(path: Path, write: Any) -> None:
    atomic_write_with(path, write)


def save_prepared(prepared: PreparedData, directory: str | Path) -> Path:
    """Write the scaled series and a JSON manifest (written last) to ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / _META).unlink(missing_ok=True)  # an interrupted rewrite must not look complete
    files: dict[str, str] = {}
    for name in _ARRAYS:
        arr = getattr(prepared, name)
        if arr is None:
            continue
        _write_atomic(out / f"{name}.npy", lambda fh, a=arr: np.save(fh, a, allow_pickle=False))
        files[f"{name}.npy"] = sha256_file(out / f"{name}.npy")
    meta = {
        "format": FORMAT_VERSION,
        "name": prepared.name,
        "entity": prepared.entity,
        "window_cfg": _window_params(prepared.window_cfg),
        "scaler": prepared.scaler.to_dict(),
        "data_fingerprint": prepared.data_fingerprint,
        "fingerprint": prepared.fingerprint,
        "files": files,
    }
    text = json.dumps(meta, indent=2, sort_keys=True).encode()
    _write_atomic(out / _META, lambda fh: fh.write(text))
    return out


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / _META
    if not path.is_file():
        raise DataError(f"no prepared window set at {folder} ({_META} missing)")
    try:
        meta: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise DataError(f"{path}: not a format-{FORMAT_VERSION} prepared window set")
    missing = sorted(_META_KEYS - set(meta))
    if missing:
        raise DataError(f"{path}: missing keys {missing}")
    return meta


def load_prepared(directory: str | Path) -> PreparedData:
    """Read a window set written by ``save_prepared``; every file's sha256 is checked."""
    folder = Path(directory)
    meta = _read_meta(folder)
    arrays: dict[str, np.ndarray | None] = dict.fromkeys(_ARRAYS)
    for fname, digest in meta["files"].items():
        path = folder / fname
        if not path.is_file() or sha256_file(path) != digest:
            raise DataError(f"prepared window set at {folder}: {fname} is missing or changed")
        arrays[fname.removesuffix(".npy")] = np.load(path, allow_pickle=False)
    if any(arrays[k] is None for k in _ARRAYS[:3]):
        raise DataError(f"prepared window set at {folder} lacks a scaled series")
    try:
        cfg = WindowConfig.model_validate(meta["window_cfg"])
        scaler = Scaler.from_dict(meta["scaler"])
    except (TypeError, KeyError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise DataError(f"prepared window set at {folder}: bad parameters: {exc}") from exc
    scaled = (arrays["train_scaled"], arrays["val_scaled"], arrays["test_scaled"])
    prepared = _assemble(
        (meta["name"], meta["entity"], meta["data_fingerprint"]),
        cfg,
        scaler,
        scaled,  # type: ignore[arg-type]
        arrays["labels"],
    )
    if prepared.fingerprint != meta["fingerprint"]:
        raise DataError(f"prepared window set at {folder}: fingerprint does not match its params")
    return prepared
