"""Several entities' window sets read as one, without copying (``model.scope: fleet``).

Legend: n = windows, l = window length, c = channels.

``PooledWindows([w_a, w_b, ...])`` presents window arrays ``(n_i, l, c)`` of the same ``(l, c)``
as one ``(sum n_i, l, c)`` set: ``shape``/``ndim``/``len`` and ``pooled[idx]`` (an index array
or a slice, returning a new contiguous ``(len(idx), l, c)`` array), which is everything the
training loop (``amad.detector.train.fit``) reads from its windows. The parts stay the
read-only strided views ``build_windows`` made, so pooling 19 SMD machines costs no memory
beyond one batch. An epoch's random sample therefore draws entities in proportion to their
number of windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from amad.errors import DataError


class PooledWindows:
    """Window arrays ``(n_i, l, c)`` of several entities as one ``(sum n_i, l, c)`` set."""

    def __init__(self, parts: Sequence[np.ndarray]) -> None:
        if not parts:
            raise DataError("no window sets to pool")
        shapes = {tuple(p.shape[1:]) for p in parts}
        if any(p.ndim != 3 for p in parts) or len(shapes) != 1:
            raise DataError(
                f"pooled windows need one (window length, channels) shape, got {sorted(shapes)}"
            )
        self._parts = list(parts)
        self._offsets = np.cumsum([0, *(p.shape[0] for p in parts)])  # (parts + 1,)
        self.dtype = np.result_type(*parts)

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self._offsets[-1]), *self._parts[0].shape[1:])

    @property
    def ndim(self) -> int:
        return 3

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def part_of(self, idx: np.ndarray) -> np.ndarray:
        """Which part (entity, in the order given) each pooled index belongs to."""
        return np.searchsorted(self._offsets, idx, side="right") - 1

    def __getitem__(self, key: Any) -> np.ndarray:
        n = len(self)
        if isinstance(key, slice):
            idx = np.arange(*key.indices(n))
        else:
            idx = np.asarray(key, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"pooled window index out of range for {n} windows")
        idx = np.where(idx < 0, idx + n, idx)
        out = np.empty((len(idx), *self.shape[1:]), dtype=self.dtype)  # (b, l, c)
        which = self.part_of(idx)
        for part in np.unique(which):
            mask = which == part
            out[mask] = self._parts[part][idx[mask] - self._offsets[part]]
        return out
