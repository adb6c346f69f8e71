"""Load multivariate series (train period, test period, optional test labels) from disk.

Three on-disk layouts are supported, plus the bundled synthetic generator:

* **SMD** (OmniAnomaly): ``train/<m>.npy``, ``test/<m>.npy``, ``test_label/<m>.txt`` per machine.
* **telemanom** (NASA SMAP/MSL): ``train/<chan>.npy``, ``test/<chan>.npy`` and
  ``labeled_anomalies.csv`` whose ``anomaly_sequences`` are ``[start, end]`` ranges into the test
  array, *inclusive at both ends*; rows are filtered by ``spacecraft`` (``msl`` = MSL). Column 0
  is the telemetry and the rest are command flags: the series declares ``score_channels=(0,)``.
* **generic**: ``train/<entity>``, ``test/<entity>`` and optional ``labels/<entity>``, each as
  ``.npy`` or ``.csv`` (numeric columns; an optional header row is skipped).

Every loader returns a validated ``SeriesData`` (float32 finite arrays with equal channel counts,
int8 0/1 labels as long as the test period) or raises ``DatasetNotFoundError`` (naming what does
exist) or ``DataError``. Files are read in place, never copied.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from amad.config import DATASETS_ENV, DataConfig
from amad.errors import ConfigError, DataError, DatasetNotFoundError
from amad.series.data import SeriesData, make_series

log = logging.getLogger(__name__)

_GENERIC_SUFFIXES = (".npy", ".csv")


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetNotFoundError(f"{what} not found at {path} (set data.root or ${DATASETS_ENV})")
    return path


def _stems(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted({p.stem for p in folder.iterdir() if p.suffix in suffixes and p.is_file()})


def _missing_entity(kind: str, entity: str, available: list[str]) -> DatasetNotFoundError:
    shown = ", ".join(available[:40]) + (" ..." if len(available) > 40 else "")
    return DatasetNotFoundError(
        f"{kind} entity {entity!r} not found; available: {shown or '(none)'}"
    )


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.asarray(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def _read_csv(path: Path) -> np.ndarray:
    """A numeric CSV as an array; a first row that is not numeric is taken as a header."""
    try:
        frame = pd.read_csv(path, header=None, dtype=str, skip_blank_lines=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if frame.empty:
        raise DataError(f"{path} is empty")
    first = pd.to_numeric(frame.iloc[0], errors="coerce")
    if first.isna().all():
        frame = frame.iloc[1:]
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & frame.notna()
    if bad.any().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise DataError(f"{path}: non-numeric value {frame.iat[row, col]!r} in column {col}")
    return numeric.to_numpy(dtype=np.float64)


def _read_any(path: Path) -> np.ndarray:
    return _read_npy(path) if path.suffix == ".npy" else _read_csv(path)


# --- SMD ---------------------------------------------------------------------------------------


def list_smd(root: str | Path) -> list[str]:
    """Machines with train, test and label files under an SMD root."""
    base = _require_dir(Path(root), "SMD root")
    train = set(_stems(base / "train", (".npy",)))
    test = set(_stems(base / "test", (".npy",)))
    labels = set(_stems(base / "test_label", (".txt",)))
    return sorted(train & test & labels)


def load_smd(root: str | Path, entity: str) -> SeriesData:
    """One SMD machine: ``train/<m>.npy``, ``test/<m>.npy``, ``test_label/<m>.txt``."""
    base = _require_dir(Path(root), "SMD root")
    paths = [base / "train" / f"{entity}.npy", base / "test" / f"{entity}.npy"]
    label_path = base / "test_label" / f"{entity}.txt"
    if not all(p.is_file() for p in [*paths, label_path]):
        raise _missing_entity("SMD", entity, list_smd(base))
    try:
        labels = np.loadtxt(label_path, delimiter=",", ndmin=1)
    except ValueError as exc:
        raise DataError(f"cannot read {label_path}: {exc}") from exc
    return make_series("smd", entity, _read_npy(paths[0]), _read_npy(paths[1]), labels)


# --- telemanom (MSL, SMAP) ---------------------------------------------------------------------


def _telemanom_meta(base: Path, spacecraft: str) -> pd.DataFrame:
    csv = base / "labeled_anomalies.csv"
    if not csv.is_file():
        raise DatasetNotFoundError(f"telemanom label file not found: {csv}")
    try:
        meta = pd.read_csv(csv)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {csv}: {exc}") from exc
    needed = {"chan_id", "spacecraft", "anomaly_sequences"}
    if not needed <= set(meta.columns):
        raise DataError(f"{csv}: missing columns {sorted(needed - set(meta.columns))}")
    return meta[meta["spacecraft"].astype(str).str.upper() == spacecraft.upper()]


def list_telemanom(root: str | Path, spacecraft: str = "MSL") -> list[str]:
    """Channels of ``spacecraft`` that have a label row and train/test arrays."""
    base = _require_dir(Path(root), "telemanom root")
    meta = _telemanom_meta(base, spacecraft)
    have = set(_stems(base / "train", (".npy",))) & set(_stems(base / "test", (".npy",)))
    return sorted(set(meta["chan_id"].astype(str)) & have)


def _parse_ranges(text: str, where: str) -> list[tuple[int, int]]:
    try:
        ranges = ast.literal_eval(str(text))
        pairs = [(int(s), int(e)) for s, e in ranges]
    except (ValueError, SyntaxError, TypeError) as exc:
        raise DataError(f"{where}: bad anomaly_sequences {text!r}") from exc
    return pairs


def telemanom_labels(ranges: list[tuple[int, int]], n_steps: int, where: str) -> np.ndarray:
    """0/1 labels from ``[start, end]`` ranges that include both ends."""
    labels = np.zeros(n_steps, dtype=np.int8)
    for start, end in ranges:
        if not 0 <= start <= end < n_steps:
            raise DataError(f"{where}: anomaly range [{start}, {end}] outside 0..{n_steps - 1}")
        labels[start : end + 1] = 1
    return labels


def load_telemanom(root: str | Path, entity: str, spacecraft: str = "MSL") -> SeriesData:
    """One telemanom channel (e.g. MSL ``C-1``), labels from ``labeled_anomalies.csv``."""
    base = _require_dir(Path(root), "telemanom root")
    meta = _telemanom_meta(base, spacecraft)
    rows = meta[meta["chan_id"].astype(str) == entity]
    train_path, test_path = base / "train" / f"{entity}.npy", base / "test" / f"{entity}.npy"
    if rows.empty or not (train_path.is_file() and test_path.is_file()):
        raise _missing_entity(f"telemanom {spacecraft}", entity, list_telemanom(base, spacecraft))
    test = _read_npy(test_path)
    where = f"{spacecraft}/{entity}"
    ranges = [r for text in rows["anomaly_sequences"] for r in _parse_ranges(text, where)]
    if "num_values" in rows.columns and int(rows["num_values"].iloc[0]) != len(test):
        raise DataError(
            f"{where}: label file says {int(rows['num_values'].iloc[0])} test steps, "
            f"array has {len(test)}"
        )
    labels = telemanom_labels(ranges, len(test), where)
    train = _read_npy(train_path)
    return make_series(
        spacecraft.lower(), entity, train, test, labels,
        channel_names=telemanom_channel_names(train.shape[1] if train.ndim == 2 else 1),
        score_channels=(0,),
    )  # fmt: skip


def telemanom_channel_names(n_channels: int) -> tuple[str, ...]:
    """Column 0 is the channel's telemetry value, columns 1.. are binary command flags.

    telemanom itself predicts column 0 only, so a telemanom series declares ``score_channels
    = (0,)``: detectors take every column as input and score the telemetry alone.
    """
    return ("telemetry", *(f"command_{i}" for i in range(1, n_channels)))


# --- generic -----------------------------------------------------------------------------------


def _find_generic(folder: Path, entity: str) -> Path | None:
    for suffix in _GENERIC_SUFFIXES:
        path = folder / f"{entity}{suffix}"
        if path.is_file():
            return path
    return None


def list_generic(root: str | Path) -> list[str]:
    """Entities with both a train and a test file under a generic root."""
    base = _require_dir(Path(root), "generic dataset root")
    train = set(_stems(base / "train", _GENERIC_SUFFIXES))
    return sorted(train & set(_stems(base / "test", _GENERIC_SUFFIXES)))


def load_generic(root: str | Path, entity: str) -> SeriesData:
    """``train/<entity>``, ``test/<entity>``, optional ``labels/<entity>`` (.npy or .csv)."""
    base = _require_dir(Path(root), "generic dataset root")
    train_path = _find_generic(base / "train", entity)
    test_path = _find_generic(base / "test", entity)
    if train_path is None or test_path is None:
        raise _missing_entity("generic", entity, list_generic(base))
    label_path = _find_generic(base / "labels", entity)
    labels = None if label_path is None else _read_any(label_path)
    return make_series("generic", entity, _read_any(train_path), _read_any(test_path), labels)


# --- dispatch ----------------------------------------------------------------------------------


def _root(cfg: DataConfig) -> Path:
    root = cfg.resolved_root()
    if root is None:
        raise DatasetNotFoundError(
            f"data source {cfg.source!r} needs a dataset root: set data.root or ${DATASETS_ENV}"
        )
    return root


def _spacecraft(cfg: DataConfig) -> str:
    return "MSL" if cfg.source == "msl" else cfg.spacecraft


def list_entities(cfg: DataConfig) -> list[str]:
    """The entities ``load_series`` can load for this config's source."""
    if cfg.source == "synthetic":
        return [cfg.entity or "synthetic"]
    if cfg.source == "smd":
        return list_smd(_root(cfg))
    if cfg.source in ("msl", "telemanom"):
        return list_telemanom(_root(cfg), _spacecraft(cfg))
    if cfg.source == "generic":
        return list_generic(_root(cfg))
    raise ConfigError(f"data.source {cfg.source!r} is not a file layout load_series can read")


def load_series(cfg: DataConfig) -> SeriesData:
    """Load the series ``cfg`` names: synthetic, smd, msl, telemanom or generic."""
    if cfg.source == "synthetic":
        from amad.series.synthetic import synthetic_series_data

        series = synthetic_series_data(cfg.synthetic)
        return replace(series, entity=cfg.entity) if cfg.entity else series
    loaders: dict[str, Callable[[Path, str], SeriesData]] = {
        "smd": load_smd,
        "msl": lambda root, entity: load_telemanom(root, entity, "MSL"),
        "telemanom": lambda root, entity: load_telemanom(root, entity, cfg.spacecraft),
        "generic": load_generic,
    }
    if cfg.source not in loaders:
        raise ConfigError(
            f"data.source {cfg.source!r} is not a file layout load_series can read "
            f"(one of synthetic, {', '.join(loaders)})"
        )
    root = _root(cfg)
    if not cfg.entity:
        available = list_entities(cfg)
        raise DatasetNotFoundError(
            f"data.entity is required for source {cfg.source!r}; available: "
            + ", ".join(available[:40])
        )
    series = loaders[cfg.source](root, cfg.entity)
    log.info(
        "loaded %s/%s: train %s, test %s, labels %s",
        series.name,
        series.entity,
        series.train.shape,
        series.test.shape,
        "none" if series.labels is None else f"{float(series.labels.mean()):.2%} anomalous",
    )
    return series
