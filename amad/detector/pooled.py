"""Fleet scope (``model.scope: fleet``): one set of weights for many entities, one bundle each.

A fleet of many similar units (servers sharing a metric set, plant units of one type) can share
one model instead of training one each. ``train_fleet(cfg, prepared, out_root)``:

1. ``fit`` once on the training windows of every entity, pooled without copying
   (``amad.series.pooled.PooledWindows``; each entity scaled by its own training-period
   scaler, so a unit's level never leaks into another's), early-stopping on the pooled
   validation windows;
2. per entity, a copy of the pooled model gets that entity's own score statistics (per-channel
   error scale, discrepancy mean/std: ``calibrate`` on the entity's validation windows), its
   own orientation check and threshold, and is written as an ordinary verified bundle by the
   recipe's ``finish_bundle``.

So scoring, the registry (one champion per entity) and recalibration see no difference between
scopes: only the weights are shared. Trade-off: one training for the whole fleet (cost roughly
that of one entity at the same step budget, not N times), at the price of a model that fits no
single unit as closely; ``amad bench`` measures both (``amad@fleet`` against ``amad``). All
entities must have the same channels and window length; there is no entity embedding.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

from amad.config import AmadConfig
from amad.detector.recipe import TrainOutcome, finish_bundle, resolve_score_channels
from amad.detector.scoring import calibrate
from amad.detector.train import TrainResult, fit, val_subset
from amad.errors import DataError
from amad.series.pooled import PooledWindows
from amad.series.windows import PreparedData

log = logging.getLogger(__name__)


def _check_fleet(prepared: Mapping[str, PreparedData]) -> PreparedData:
    if not prepared:
        raise DataError("a fleet model needs at least one entity")
    first = next(iter(prepared.values()))
    for entity, p in prepared.items():
        if p.n_channels != first.n_channels or p.window_cfg.length != first.window_cfg.length:
            raise DataError(
                f"entity {entity!r} has {p.n_channels} channels and windows of "
                f"{p.window_cfg.length}; the fleet's first has {first.n_channels} and "
                f"{first.window_cfg.length}: one pooled model needs them equal"
            )
    return first


def fit_pooled(
    cfg: AmadConfig,
    prepared: Mapping[str, PreparedData],
    *,
    checkpoint_dir: Path | None = None,
    progress: bool = False,
) -> TrainResult:
    """One ``fit`` on every entity's training windows; early stopping on their validation ones."""
    _check_fleet(prepared)
    train = PooledWindows([p.train_windows for p in prepared.values()])
    val = PooledWindows([p.val_windows for p in prepared.values()])
    log.info("fleet model: %d entities, %d training windows", len(prepared), len(train))
    return fit(cfg.model, cfg.train, train, val, checkpoint_dir=checkpoint_dir, progress=progress)


def for_entity(cfg: AmadConfig, pooled: TrainResult, prepared: PreparedData) -> TrainResult:
    """The pooled weights with ``prepared``'s own score statistics (validation period only)."""
    model = copy.deepcopy(pooled.model)
    calibrate(model, val_subset(prepared.val_windows, cfg.train), batch_size=cfg.train.batch_size)
    model.eval()
    return replace(pooled, model=model)


def train_fleet(
    cfg: AmadConfig,
    prepared: Mapping[str, PreparedData],
    out_root: str | Path,
    *,
    channels: list[str] | None = None,
    checkpoint_dir: Path | None = None,
    progress: bool = False,
    overwrite: bool = False,
    evaluate: bool = False,
) -> dict[str, TrainOutcome]:
    """Train one pooled model and write one bundle per entity under ``out_root/<entity>``
    (the id percent-encoded, as in the dataset's layout)."""
    first = _check_fleet(prepared)
    cfg = resolve_score_channels(cfg, first.n_channels, channels)
    started = time.perf_counter()
    pooled = fit_pooled(cfg, prepared, checkpoint_dir=checkpoint_dir, progress=progress)
    log.info("fleet model trained in %.1fs", time.perf_counter() - started)
    outcomes: dict[str, TrainOutcome] = {}
    for entity, prep in prepared.items():
        outcomes[entity] = finish_bundle(
            cfg, for_entity(cfg, pooled, prep), prep, Path(out_root) / quote(entity, safe=""),
            started=time.perf_counter(), overwrite=overwrite, evaluate=evaluate,
            channels=channels, progress=progress,
        )  # fmt: skip
    return outcomes
