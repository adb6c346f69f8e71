"""Pooled windows read exactly what the concatenated window sets would, without copying them."""

from __future__ import annotations

import numpy as np
import pytest

from amad.errors import DataError
from amad.series.pooled import PooledWindows
from amad.series.windows import sliding_windows


def _parts() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [sliding_windows(rng.normal(size=(n, 3)).astype(np.float32), 5, 2) for n in (21, 9, 15)]


def test_indexing_matches_the_concatenation() -> None:
    parts = _parts()
    pooled, whole = PooledWindows(parts), np.concatenate(parts)
    assert pooled.shape == whole.shape and len(pooled) == len(whole) and pooled.ndim == 3
    idx = np.random.default_rng(1).permutation(len(whole))[:17]
    np.testing.assert_array_equal(pooled[idx], whole[idx])
    np.testing.assert_array_equal(pooled[3:14], whole[3:14])
    np.testing.assert_array_equal(pooled[np.array([-1, 0])], whole[np.array([-1, 0])])
    assert pooled[idx].flags.c_contiguous and pooled[idx].flags.writeable


def test_part_of_names_the_entity_of_each_index() -> None:
    parts = _parts()
    sizes = [p.shape[0] for p in parts]
    expected = np.repeat(np.arange(3), sizes)
    np.testing.assert_array_equal(PooledWindows(parts).part_of(np.arange(sum(sizes))), expected)


def test_out_of_range_and_mismatched_shapes_are_refused() -> None:
    parts = _parts()
    with pytest.raises(IndexError):
        PooledWindows(parts)[np.array([len(PooledWindows(parts))])]
    with pytest.raises(DataError, match="one \\(window length, channels\\) shape"):
        PooledWindows([parts[0], parts[1][:, :, :2]])
    with pytest.raises(DataError, match="no window sets"):
        PooledWindows([])
