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

Throughput (``benchmarks/score_cadence.py``: 1,000 entities x 60 rows, each with its own bundle):
an entity costs a context read, a verified bundle load, a forward pass over a few windows and a
context write, about 30 ms of CPU in all. Torch runs on one intra-op thread meanwhile (a few
windows split over threads cost far more in synchronisation than they gain); ``workers`` threads
score entities at once, which pays where the context store is remote (S3 round trips).

Known limits: torch's thread setting is process-wide, so other torch work in the same process
(a training on another thread) also runs on one thread while a batch is scored; the centred
score smoothing (``score.smooth``) sees no future rows at the end of a batch, so the last
``smooth // 2`` scores can differ from those of one long series.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from amad.config import AmadConfig
from amad.detector.bundle import Bundle, load_bundle
from amad.errors import ConfigError, DataError, ObjectNotFoundError
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
    new = rows[kept]  # one column selection each for the rows and the context: the loop's cost
    before = context[kept] if use and context is not None else new.iloc[:0]
    length = bundle.config.windows.length
    n_keep = length - 1
    if len(new) >= n_keep:
        new_context = new.iloc[len(new) - n_keep :]
    else:
        new_context = pd.concat([before, new]).iloc[-n_keep:]
    if len(before) + len(new) < length:
        return None, new_context, f"warming up ({len(before) + len(new)} of {length} rows)"
    x = new.iloc[:, 1:].to_numpy(dtype=np.float32)  # (n, C), the model's column order
    if len(before):
        x = np.concatenate([before.iloc[:, 1:].to_numpy(dtype=np.float32), x])  # (T, C)
    scored = bundle.score(x)
    n = len(rows)
    out = pd.DataFrame({
        ts: new[ts].to_numpy(), "score": scored.scores[-n:], "flag": scored.flags[-n:],
    })  # fmt: skip
    return out, new_context, note


def _batch_frame(source: str, contract: Contract) -> pd.DataFrame:
    sources = ingest.expand_sources([source])
    if len(sources) != 1:
        raise DataError(f"{source}: expected one batch file, found {len(sources)}")
    raw = schema.read_batch(sources[0].read(), source, contract)
    return schema.prepare_frame(raw, contract)


@dataclass(frozen=True)
class _Scored:
    """One entity's outcome: its scored rows (None: unscored), the note, seconds per stage."""

    entity: str
    scored: pd.DataFrame | None
    note: str
    seconds: dict[str, float]


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the caller's setting.

    An entity's series is a few windows (60 new rows after ``length - 1`` kept ones); splitting
    that over threads only adds synchronisation (measured on 2 busy cores: 6 ms a forward pass
    on one thread, 250 ms on two), so a fleet is parallelised over entities instead (``workers``).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _score_one(
    group: tuple[str, pd.DataFrame],
    *,
    bundles: Mapping[str, str | Path],
    store: Store,
    contract: Contract,
    model_name: str,
) -> _Scored:
    """Score one entity (rows sorted by time) with its own bundle after its kept context, then
    move the context on (conditional write, only when its rows are newer)."""
    name, rows = group
    if name not in bundles:
        return _Scored(name, None, "no champion", {})
    t0 = time.perf_counter()
    key = context_key(model_name, name)
    read = read_context(store, key)
    t1 = time.perf_counter()
    bundle = load_bundle(bundles[name])  # verified: every file against its manifest sha256
    t2 = time.perf_counter()
    scored, keep, note = score_entity(bundle, rows, read.rows, contract)
    t3 = time.perf_counter()
    ts = contract.timestamp
    if read.rows is None or keep[ts].iloc[-1] > read.rows[ts].iloc[-1]:
        write_context(store, key, keep, read)
    seconds = {"context_read": t1 - t0, "load": t2 - t1, "score": t3 - t2,
               "context_write": time.perf_counter() - t3}  # fmt: skip
    return _Scored(name, scored, note, seconds)


def score_batch_by_entity(
    cfg: AmadConfig,
    bundles: Mapping[str, str | Path],
    source: str,
    *,
    context_store: Store,
    out_dir: str | Path,
    workers: int | None = None,
) -> dict[str, Any]:
    """Score one batch entity by entity, each with its own bundle and kept context.

    Writes ``scores.parquet`` (entity, timestamp, score, flag; scored rows only) and
    ``summary.json`` to ``out_dir``; entities without a bundle or still warming up are listed
    under ``unscored`` with the reason. ``workers`` (default ``fleet.threads``) entities are
    scored at once on a thread pool, each loading its own bundle; torch runs on one thread
    meanwhile. The returned summary adds ``stage_s``: seconds per stage summed over entities
    (not written to ``summary.json``).
    """
    workers = cfg.fleet.threads if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    contract = Contract(cfg.contract)
    t0 = time.perf_counter()
    frame = _batch_frame(source, contract)
    frame = frame.sort_values(contract.timestamp, kind="stable")  # groups keep this order
    groups = [(str(e), rows) for e, rows in frame.groupby(contract.entity, sort=True)]
    job = partial(_score_one, bundles=bundles, store=context_store, contract=contract,
                  model_name=cfg.publish.model_name)  # fmt: skip
    stages = {"read_batch": time.perf_counter() - t0}
    with _one_torch_thread():
        if workers == 1:
            results = [job(g) for g in groups]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="amad-score") as pool:
                results = list(pool.map(job, groups))
    parts: list[pd.DataFrame] = []
    entities: dict[str, Any] = {}
    unscored: dict[str, str] = {}
    for r in results:
        for stage, sec in r.seconds.items():
            stages[stage] = stages.get(stage, 0.0) + sec
        if r.scored is None:
            unscored[r.entity] = r.note
            continue
        parts.append(r.scored.assign(**{contract.entity: r.entity}))
        entities[r.entity] = {"rows": len(r.scored), "alerts": int(r.scored["flag"].sum()),
                              "note": r.note}  # fmt: skip
    t1 = time.perf_counter()
    out = _write_outputs(parts, entities, unscored, contract, Path(out_dir))
    stages["write_outputs"] = time.perf_counter() - t1
    return {**out, "stage_s": {k: round(v, 3) for k, v in stages.items()}}


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
