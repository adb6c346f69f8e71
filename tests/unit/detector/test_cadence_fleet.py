"""A fleet batch: every entity is scored by its own bundle, never by another entity's.

Three real bundles (different weights and thresholds) score one batch of three entities through
``score_batch_by_entity``; each entity's scores and flags must equal what its own bundle gives
when it scores that entity's rows alone, serially and on a thread pool, and for the second
batch, after the kept context. Swapping two bundles must break the comparison, so the check
can tell one bundle from another.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from amad.config import build_config
from amad.detector.bundle import load_bundle, save_bundle
from amad.detector.cadence import score_batch_by_entity
from amad.detector.thresholds import Threshold
from amad.nn.model import AMAD
from amad.series.windows import Scaler
from amad.storage.store import LocalStore

COLUMNS = ["m00", "m01", "m02"]
LENGTH = 16
CFG = build_config(
    {
        "windows": {"length": LENGTH, "score_stride": 8},
        "model": {"d_model": 8, "n_heads": 2, "n_layers": 1, "d_ff": 8},
        "score": {"orientation": "paper", "smooth": 3},
        "contract": {"columns": [{"name": c} for c in COLUMNS], "label_column": None},
    }
)
ENTITIES = ["e0", "e1", "e2"]
# e0 flags every step, e1 none, e2 those above 1.0 (scores of the scaled series are around 1)
THRESHOLDS = {"e0": -1.0, "e1": 1e9, "e2": 1.0}
ROWS = 40


def _values(entity: int, start: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(100 * entity + start)
    return 5.0 + np.sin(np.arange(start, start + n)[:, None] / 5.0) + rng.normal(size=(n, 3))


def _batch(path: Path, start: int) -> Path:
    frames = []
    for i, entity in enumerate(ENTITIES):
        ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
            np.arange(start, start + ROWS) * CFG.contract.cadence_s, "s"
        )
        frame = pd.DataFrame(_values(i, start, ROWS), columns=COLUMNS)
        frames.append(frame.assign(timestamp=ts, entity=entity))
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bundles")
    scaler = Scaler().fit(_values(9, 0, 200).astype(np.float32))
    out = {}
    for i, entity in enumerate(ENTITIES):
        torch.manual_seed(i)  # different weights per entity
        threshold = Threshold(value=THRESHOLDS[entity], method="fixed", kind=CFG.score.kind,
                              anomaly_ratio=1.0, n_fit=0)  # fmt: skip
        out[entity] = str(save_bundle(root / entity,
                                      model=AMAD(CFG.model, n_channels=3).eval(), config=CFG,
                                      scaler=scaler, threshold=threshold, history=[],
                                      data_fingerprint="ab" * 32, channels=COLUMNS))  # fmt: skip
    return out


def _alone(bundle_dir: str, entity: int, start: int, with_context: bool) -> tuple[np.ndarray, ...]:
    """Scores and flags of one entity's batch rows, scored by one bundle on its own."""
    x = _values(entity, start, ROWS)
    if with_context:  # the rows kept from the previous batch come first
        x = np.concatenate([_values(entity, start - ROWS, ROWS)[-(LENGTH - 1) :], x])
    scored = load_bundle(bundle_dir).score(x.astype(np.float32))
    return scored.scores[-ROWS:], scored.flags[-ROWS:]


def _mismatches(result: pd.DataFrame, bundles: dict[str, str], start: int, ctx: bool) -> list[str]:
    """Entities whose scores or flags differ from their own bundle's, scored alone."""
    bad = []
    for i, entity in enumerate(ENTITIES):
        mine = result[result["entity"] == entity].sort_values("timestamp")
        scores, flags = _alone(bundles[entity], i, start, ctx)
        if len(mine) != ROWS or not (
            np.allclose(mine["score"], scores, rtol=1e-5, atol=1e-7)
            and (mine["flag"].to_numpy() == flags).all()
        ):
            bad.append(entity)
    return bad


@pytest.mark.parametrize("workers", [1, 2])
def test_each_entity_is_scored_by_its_own_bundle(
    bundles: dict[str, str], tmp_path: Path, workers: int
) -> None:
    store = LocalStore(tmp_path / "context")
    first = score_batch_by_entity(CFG, bundles, str(_batch(tmp_path / "h0.csv", 0)),
                                  context_store=store, out_dir=tmp_path / "o0",
                                  workers=workers)  # fmt: skip
    assert first["unscored"] == {}
    alerts = {e: first["entities"][e]["alerts"] for e in ENTITIES}
    assert alerts["e0"] == ROWS and alerts["e1"] == 0 and 0 < alerts["e2"] < ROWS
    assert _mismatches(pd.read_parquet(tmp_path / "o0" / "scores.parquet"), bundles, 0, False) == []
    second = score_batch_by_entity(CFG, bundles, str(_batch(tmp_path / "h1.csv", ROWS)),
                                   context_store=store, out_dir=tmp_path / "o1",
                                   workers=workers)  # fmt: skip
    assert {second["entities"][e]["note"] for e in ENTITIES} == {"context used"}
    scored = pd.read_parquet(tmp_path / "o1" / "scores.parquet")
    assert _mismatches(scored, bundles, ROWS, True) == []


def test_swapped_bundles_are_caught(bundles: dict[str, str], tmp_path: Path) -> None:
    swapped = {**bundles, "e0": bundles["e2"], "e2": bundles["e0"]}
    score_batch_by_entity(CFG, swapped, str(_batch(tmp_path / "h0.csv", 0)),
                          context_store=LocalStore(tmp_path / "context"),
                          out_dir=tmp_path / "o0")  # fmt: skip
    result = pd.read_parquet(tmp_path / "o0" / "scores.parquet")
    assert _mismatches(result, bundles, 0, False) == ["e0", "e2"]
