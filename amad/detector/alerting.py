"""A scored batch's alerts: flags from ``scores.parquet`` plus the channels that drove them.

:func:`batch_alerts` is the library call behind the score flow's alert step. It reads the batch
``stages.score_batch`` scored (the same file, parsed the same way) and its ``scores.parquet``,
recomputes per-channel errors on the flagged steps only (``amad.detector.attribution``) with the
bundle that scored each entity (a fleet has one per entity) and merges flags into alerts
(``amad.evaluation.alerts``). An entity's rows shorter than one window (a small batch scored
after kept context rows) get alerts without channel attribution. The data version of an alert is the
sha256 of the batch's bytes (first 16 hex digits), so the same file gives the same alert ids.
Writes ``alerts.json`` next to the scores.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amad.config import AmadConfig
from amad.detector.attribution import channel_errors
from amad.detector.bundle import Bundle, load_bundle
from amad.errors import DataError
from amad.evaluation.alerts import Alert, find_alerts
from amad.files import sha256_bytes, write_json
from amad.telemetry import ingest, schema
from amad.telemetry.schema import Contract

log = logging.getLogger(__name__)

ALERTS_FILE = "alerts.json"


def _read_source(source: str) -> bytes:
    sources = ingest.expand_sources([source])
    if len(sources) != 1:
        raise DataError(f"{source}: expected one batch file, found {len(sources)}")
    return sources[0].read()


def _entity_alerts(
    cfg: AmadConfig,
    bundle: Bundle,
    rows: pd.DataFrame,
    scored: pd.DataFrame,
    *,
    entity: str,
    versions: tuple[str, str],
) -> list[Alert]:
    """Alerts of one entity: ``rows`` its raw batch rows, ``scored`` its scores, both by time."""
    contract = Contract(cfg.contract)
    rows = rows[rows[contract.timestamp].isin(scored[contract.timestamp])]  # the scored rows
    flags = scored["flag"].to_numpy(dtype=bool)
    errors = None  # fewer rows than one window (scored after kept context): no attribution
    if len(rows) != len(scored):
        log.warning("entity %s: %d batch rows for %d scores; alerts without channels",
                    entity, len(rows), len(scored))  # fmt: skip
    elif len(rows) >= bundle.config.windows.length:
        x = bundle.scaler.transform(rows[contract.metric_names].to_numpy(dtype=np.float32))
        errors = channel_errors(
            bundle.model,
            np.asarray(x, dtype=np.float32),
            bundle.config.windows,
            flags,
            batch_size=bundle.config.score.batch_size,
            channel_floor=bundle.config.score.channel_floor,
        )
    return find_alerts(
        entity=entity,
        timestamps=list(scored[contract.timestamp]),
        scores=scored["score"].to_numpy(),
        flags=flags,
        threshold=bundle.threshold.value,
        model_version=versions[0],
        data_version=versions[1],
        channel_errors=errors,
        channel_names=bundle.channels or contract.metric_names,
        top_k=cfg.alerts.top_k,
        merge_gap=cfg.alerts.merge_gap,
    )


def batch_alerts(
    cfg: AmadConfig,
    champions: Mapping[str, Mapping[str, str]],
    source: str,
    scores_path: str | Path,
    *,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Alerts of one scored batch; writes ``out_dir/alerts.json`` and returns its content.

    ``champions`` maps an entity to the ``{"bundle_dir", "version"}`` that scored it; the key
    ``"*"`` is the model-wide champion for every other entity.
    """
    contract = Contract(cfg.contract)
    raw = _read_source(source)
    data_version = sha256_bytes(raw)[:16]
    scores = pd.read_parquet(scores_path)
    flagged = sorted(scores.loc[scores["flag"].astype(bool), contract.entity].astype(str).unique())
    alerts: list[Alert] = []
    frame = (
        schema.prepare_frame(schema.read_batch(raw, source, contract=contract), contract)
        if flagged
        else None
    )
    bundles: dict[str, Bundle] = {}
    for entity in flagged:
        champion = champions.get(entity) or champions.get("*")
        if champion is None or frame is None:
            raise DataError(f"{source}: entity {entity} was flagged but no champion is given")
        if champion["bundle_dir"] not in bundles:
            bundles[champion["bundle_dir"]] = load_bundle(champion["bundle_dir"])
        rows = frame[frame[contract.entity].astype(str) == entity]
        scored = scores[scores[contract.entity].astype(str) == entity]
        alerts += _entity_alerts(
            cfg,
            bundles[champion["bundle_dir"]],
            rows.sort_values(contract.timestamp, kind="stable"),
            scored.sort_values(contract.timestamp, kind="stable"),
            entity=entity,
            versions=(champion["version"], data_version),
        )
    out = {"data_version": data_version, "source": source,
           "alerts": [a.to_dict() for a in alerts]}  # fmt: skip
    path = write_json(Path(out_dir) / ALERTS_FILE, out)
    log.info("%s: %d alerts on %d entities", source, len(alerts), len(flagged))
    return {**out, "file": str(path)}
