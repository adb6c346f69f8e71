"""Reference statistics of the dataset: the per-metric mean and std drift is measured against.

Stored as ``reference.json`` in the data directory (``amad.telemetry.dataset``), so part of
the data version: set from the first accepted batch (staged with it, ``reference_bytes``),
replaced only on request (``refresh_reference``, ``amad data refresh-reference``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amad.errors import DatasetNotFoundError
from amad.files import atomic_write, strict_json
from amad.telemetry import dataset
from amad.telemetry.schema import Contract

log = logging.getLogger(__name__)


def compute_reference(frame: pd.DataFrame, contract: Contract, *, source: str) -> dict[str, Any]:
    """Per-metric mean and std (float64) of accepted rows: the base drift is measured against."""
    stats = {}
    for name in contract.metric_names:
        col = frame[name].to_numpy(dtype=np.float64)
        stats[name] = {"mean": float(np.nanmean(col)), "std": float(np.nanstd(col, ddof=1))}
    return {"source": source, "rows": len(frame), "columns": stats}


def read_reference(data_dir: str | Path) -> dict[str, dict[str, float]] | None:
    """The reference stats per metric, or None before the first accepted batch."""
    path = Path(data_dir) / dataset.REFERENCE
    if not path.is_file():
        return None
    columns: dict[str, dict[str, float]] = json.loads(path.read_text())["columns"]
    return columns


def reference_bytes(reference: dict[str, Any]) -> bytes:
    """The serialised form of reference stats, staged with the batch that sets them."""
    return strict_json(reference, default=str).encode()


def refresh_reference(
    data_dir: str | Path, contract: Contract, *, last_rows: int | None = None
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Recompute the reference from the accepted rows (each entity's last ``last_rows``, or
    all) and replace ``reference.json`` atomically; returns (old record or None, new record).

    The caller holds the dataset lock and versions the change (the reference is part of the
    dataset, so of its data version). The new record's ``source`` names what it was computed
    from (the dataset fingerprint before the refresh, the rows per entity): no wall-clock time,
    so the same refresh of the same data writes the same bytes.
    """
    root = Path(data_dir)
    frame = dataset.load_dataset(root, contract)
    if last_rows is not None:
        frame = frame.groupby(contract.entity, sort=False, observed=True).tail(last_rows)
    if len(frame) < 2:
        raise DatasetNotFoundError(f"{root}: fewer than 2 accepted rows; nothing to refresh from")
    path = root / dataset.REFERENCE
    old = json.loads(path.read_text()) if path.is_file() else None
    rows = "all" if last_rows is None else f"last {last_rows}"
    source = f"refresh of {rows} rows per entity, dataset {dataset.dataset_fingerprint(root)[:16]}"
    new = compute_reference(frame, contract, source=source)
    atomic_write(path, reference_bytes(new))
    log.info("reference statistics refreshed from %d rows (%s)", len(frame), source)
    return old, new
