"""Scoring at the telemetry's cadence: each entity's rows scored after the rows it kept last time.

A model scores windows of ``windows.length`` steps, so an hourly batch of 60 rows at a 60 s
cadence cannot be scored alone. Per entity, the last ``length - 1`` rows seen are kept as one
small Parquet object in a store (``context_key``); the entity's next rows are scored after them
and only the new rows get scores, so a batch down to one row is scored with full context. The
context is used only when it directly precedes the new rows (its last timestamp earlier than
their first, by at most ``contract.max_gap_s``); otherwise it is dropped and that is reported.
Until an entity has ``length`` rows in all it is "warming up": its rows become context, unscored.
The context object is replaced with a conditional write against the ETag it was read with, so
two runs scoring the same entity at once cannot both move it (``ConflictError``). Each entity is
scored by its own bundle (``bundles``: entity -> bundle folder, each entity's champion).

Known limit: the centred score smoothing (``score.smooth``) sees no future rows at the end of a
batch, so the last ``smooth // 2`` scores can differ from those of one long series.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amad.config import AmadConfig
from amad.detector.bundle import Bundle, load_bundle
from amad.errors import DataError, ObjectNotFoundError
from amad.storage.store import Store
from amad.telemetry import ingest, schema
from amad.telemetry.schema import Contract

log = logging.getLogger(__name__)


def context_key(model_name: str, entity: str) -> str:
    """Where one entity's context rows live in the context store."""
    return f"context/{model_name}/{entity}.parquet"


@dataclass(frozen=True)
class Context:
    """An entity's kept rows (timestamp + metric columns) and the ETag they were read with."""

    rows: pd.DataFrame | None
    etag: str | None


def read_context(store: Store, key: str) -> Context:
    """The kept rows under ``key``; empty when there are none yet."""
    try:
        data, etag = store.get_bytes(key)
    except ObjectNotFoundError:
        return Context(None, None)
    return Context(pd.read_parquet(io.BytesIO(data)), etag)


def write_context(store: Store, key: str, rows: pd.DataFrame, read: Context) -> None:
    """Replace the kept rows, only if nobody replaced them since ``read``."""
    buf = io.BytesIO()
    rows.reset_index(drop=True).to_parquet(buf, index=False)
    if read.etag is None:
        store.put_bytes(key, buf.getvalue(), if_none_match=True)
    else:
        store.put_bytes(key, buf.getvalue(), if_match=read.etag)


def _preceding(context: pd.DataFrame | None, rows: pd.DataFrame, ts: str, max_gap_s: int) -> bool:
    """True when ``context`` ends just before ``rows`` start (same series, no long gap)."""
    if context is None or context.empty:
        return False
    gap = (rows[ts].iloc[0] - context[ts].iloc[-1]).total_seconds()
    return 0 < gap <= max_gap_s


def score_entity(
    bundle: Bundle, rows: pd.DataFrame, context: pd.DataFrame | None, contract: Contract
) -> tuple[pd.DataFrame | None, pd.DataFrame, str]:
    """Score one entity's new ``rows`` (sorted) after ``context``.

    Returns (the rows' scores and flags, or None while warming up; the context to keep; a note).
    """
    ts = contract.timestamp
    columns = bundle.channels or contract.metric_names
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise DataError(f"batch lacks the model's columns {missing}")
    kept = [ts, *columns]
    use = _preceding(context, rows, ts, contract.cfg.max_gap_s)
    note = "context used" if use else "no preceding context"
    series = pd.concat([context[kept], rows[kept]]) if use and context is not None else rows[kept]
    length = bundle.config.windows.length
    new_context = series.iloc[-(length - 1) :] if length > 1 else series.iloc[:0]
    if len(series) < length:
        return None, new_context, f"warming up ({len(series)} of {length} rows)"
    scored = bundle.score(series[columns].to_numpy(dtype=np.float32))
    n = len(rows)
    out = pd.DataFrame({
        ts: rows[ts].to_numpy(), "score": scored.scores[-n:], "flag": scored.flags[-n:],
    })  # fmt: skip
    return out, new_context, note


def _batch_frame(source: str, contract: Contract) -> pd.DataFrame:
    sources = ingest.expand_sources([source])
    if len(sources) != 1:
        raise DataError(f"{source}: expected one batch file, found {len(sources)}")
    raw = schema.read_batch(sources[0].read(), source, contract)
    return schema.prepare_frame(raw, contract)


def score_batch_by_entity(
    cfg: AmadConfig,
    bundles: Mapping[str, str | Path],
    source: str,
    *,
    context_store: Store,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Score one batch entity by entity, each with its own bundle and kept context.

    Writes ``scores.parquet`` (entity, timestamp, score, flag; scored rows only) and
    ``summary.json`` to ``out_dir``; entities without a bundle or still warming up are listed
    under ``unscored`` with the reason.
    """
    contract = Contract(cfg.contract)
    frame = _batch_frame(source, contract)
    parts: list[pd.DataFrame] = []
    entities: dict[str, Any] = {}
    unscored: dict[str, str] = {}
    for entity, rows in frame.groupby(contract.entity, sort=True):
        name = str(entity)
        if name not in bundles:
            unscored[name] = "no champion"
            continue
        rows = rows.sort_values(contract.timestamp)
        key = context_key(cfg.publish.model_name, name)
        read = read_context(context_store, key)
        scored, keep, note = score_entity(load_bundle(bundles[name]), rows, read.rows, contract)
        if (
            read.rows is None
            or keep[contract.timestamp].iloc[-1] > read.rows[contract.timestamp].iloc[-1]
        ):
            write_context(context_store, key, keep, read)
        if scored is None:
            unscored[name] = note
            continue
        parts.append(scored.assign(**{contract.entity: name}))
        entities[name] = {"rows": len(scored), "alerts": int(scored["flag"].sum()), "note": note}
    return _write_outputs(parts, entities, unscored, contract, Path(out_dir))


def _write_outputs(
    parts: list[pd.DataFrame],
    entities: dict[str, Any],
    unscored: dict[str, str],
    contract: Contract,
    out: Path,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    columns = [contract.timestamp, contract.entity, "score", "flag"]
    result = (
        pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    )
    path = out / "scores.parquet"
    result.to_parquet(path, index=False)
    alerts = int(result["flag"].sum()) if len(result) else 0
    summary = {
        "rows": len(result),
        "alerts": alerts,
        "alert_rate": alerts / len(result) if len(result) else 0.0,
        "entities": entities,
        "unscored": unscored,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    log.info(
        "scored %d rows of %d entities (%d unscored)", len(result), len(entities), len(unscored)
    )
    return {**summary, "files": [str(path), str(out / "summary.json")]}
