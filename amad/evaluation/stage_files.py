"""The evaluate and train stages' small output files (``amad.stages``): what ``dvc metrics``
and ``dvc plots`` read from ``metrics/``, and the per-step scores archive.

Each holds only what its inputs determine (no clock, host or commit; fixed zip member times),
so ``dvc repro`` on a clean clone reproduces ``dvc.lock`` exactly.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from amad.files import atomic_write, write_json

PLOT_ROWS = 500  # a longer evaluation period is max-pooled to at most this many plot rows
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # a fixed member time: the same arrays, the same npz bytes


def write_metrics(path: str | Path, metrics: Mapping[str, Any]) -> Path:
    """A small metrics JSON (sorted keys, NaN as null) for ``dvc metrics``; file paths dropped."""
    clean = {k: v for k, v in metrics.items() if k != "scores_file"}
    return write_json(Path(path), clean, default=str)


def write_score_plot(
    path: str | Path,
    scores: np.ndarray,
    threshold: float,
    labels: np.ndarray | None = None,
    *,
    max_rows: int = PLOT_ROWS,
) -> Path:
    """``step,score,threshold,label`` for ``dvc plots``: one row per step of the evaluation
    period, or, when it is longer than ``max_rows``, per block of consecutive steps (the block's
    first step, its highest score and label, so spikes and anomalies stay visible)."""
    scores = np.asarray(scores, dtype=np.float64)
    marks = np.zeros(len(scores)) if labels is None else np.asarray(labels, dtype=np.float64)
    block = max(1, math.ceil(len(scores) / max_rows))
    lines = ["step,score,threshold,label"]
    for lo in range(0, len(scores), block):
        chunk = scores[lo : lo + block]
        finite = chunk[np.isfinite(chunk)]
        top = float(finite.max()) if finite.size else float("nan")
        label = int(marks[lo : lo + block].max()) if labels is not None else ""
        lines.append(f"{lo},{top:.6g},{threshold:.6g},{label}")
    return atomic_write(Path(path), "\n".join(lines) + "\n")


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez`` with fixed member times, so that the same arrays give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH), member.getvalue())
    path.write_bytes(buffer.getvalue())
