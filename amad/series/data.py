"""``SeriesData``: one entity's training period, test period and optional test labels.

The one record every loader (``amad.series.loaders``) and the synthetic generator
(``amad.series.synthetic``) return, with ``make_series`` to build a validated one and
``data_fingerprint`` to identify its arrays, ``resolve_score_channels`` for the channels to score.
Numpy only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from amad.errors import ConfigError, DataError


@dataclass(frozen=True)
class SeriesData:
    """One entity's training period, test period and (optional) per-step test labels.

    ``train`` is (T_train, C) float32, ``test`` is (T_test, C) float32 and ``labels`` is
    (T_test,) int8 of 0/1, or None when the dataset has no labels. Two optional declarations
    of the dataset travel with the arrays (neither enters the fingerprint): ``channel_names``
    (C names) and ``score_channels``, the indices of the channels whose errors a detector
    should score (None = all; every channel stays a model input), e.g. telemanom's column 0.
    """

    name: str
    entity: str
    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray | None
    channel_names: tuple[str, ...] | None = None
    score_channels: tuple[int, ...] | None = None

    @property
    def n_channels(self) -> int:
        return int(self.train.shape[1])

    def fingerprint(self) -> str:
        """sha256 over the train, test and label arrays (see ``data_fingerprint``)."""
        return data_fingerprint(self.train, self.test, self.labels)


def data_fingerprint(*arrays: np.ndarray | None) -> str:
    """sha256 hex over each array's dtype, shape and C-order bytes (None hashes as a marker)."""
    digest = hashlib.sha256()
    for arr in arrays:
        if arr is None:
            digest.update(b"none;")
            continue
        a = np.ascontiguousarray(arr)
        digest.update(f"{a.dtype.str};{a.shape};".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


# --- validation --------------------------------------------------------------------------------


def _as_matrix(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{what}: expected a (steps, channels) array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{what}: empty array, shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != np.bool_:
        raise DataError(f"{what}: expected numbers, got dtype {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise DataError(
            f"{what}: {int(bad.sum())} NaN/inf values (first at step {rows[0]}, channel {cols[0]})"
        )
    return out


def _as_labels(labels: np.ndarray, n_test: int, what: str) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.ndim != 1:
        raise DataError(f"{what}: labels must be one column, got shape {lab.shape}")
    if lab.shape[0] != n_test:
        raise DataError(f"{what}: {lab.shape[0]} labels for {n_test} test steps")
    if not np.all(np.isin(lab, (0, 1))):
        raise DataError(f"{what}: labels must be 0/1, got values {np.unique(lab)[:5].tolist()}")
    return lab.astype(np.int8)


def make_series(
    name: str,
    entity: str,
    train: np.ndarray,
    test: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    channel_names: tuple[str, ...] | None = None,
    score_channels: tuple[int, ...] | None = None,
) -> SeriesData:
    """Validate and normalise arrays into a ``SeriesData`` (float32, int8 labels)."""
    what = f"{name}/{entity}"
    tr = _as_matrix(np.asarray(train), f"{what} train")
    te = _as_matrix(np.asarray(test), f"{what} test")
    if tr.shape[1] != te.shape[1]:
        raise DataError(f"{what}: train has {tr.shape[1]} channels but test has {te.shape[1]}")
    lab = None if labels is None else _as_labels(labels, te.shape[0], what)
    n_ch = tr.shape[1]
    if channel_names is not None and len(channel_names) != n_ch:
        raise DataError(f"{what}: {len(channel_names)} channel names for {n_ch} channels")
    if score_channels is not None and (
        not score_channels or not all(0 <= c < n_ch for c in score_channels)
    ):
        raise DataError(f"{what}: score channels {score_channels} not within 0..{n_ch - 1}")
    return SeriesData(
        name=name, entity=entity, train=tr, test=te, labels=lab,
        channel_names=channel_names, score_channels=score_channels,
    )  # fmt: skip


def resolve_score_channels(
    series: SeriesData, requested: list[int | str] | None = None
) -> tuple[int, ...] | None:
    """The channel indices to score: ``requested`` (``score.channels``: 0-based indices or names
    from ``channel_names``) when given, else what the series declares; None means all."""
    if requested is None:
        return series.score_channels
    what = f"{series.name}/{series.entity}"
    return channel_indices(requested, series.n_channels, series.channel_names, what=what)


def channel_indices(
    requested: Sequence[int | str], n_channels: int, names: Sequence[str] | None, *, what: str
) -> tuple[int, ...]:
    """``requested`` channels (0-based indices or names in ``names``) as unique indices, in
    order; ``ConfigError`` naming ``what`` for an index out of range or an unknown name."""
    out: list[int] = []
    for item in requested:
        if isinstance(item, int):
            if not 0 <= item < n_channels:
                raise ConfigError(f"{what}: score channel {item} not within 0..{n_channels - 1}")
            out.append(item)
        elif names is not None and item in names:
            out.append(list(names).index(item))
        else:
            known = ", ".join(list(names)[:10]) if names else "none (use indices)"
            raise ConfigError(f"{what}: no channel named {item!r}; names: {known}")
    return tuple(dict.fromkeys(out))


# --- file helpers ------------------------------------------------------------------------------
