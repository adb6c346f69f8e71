"""Compaction: merge an entity-day's many small parts into one, crash-safe like an ingest.

Hourly batches leave one part per batch in every entity-day they touch (1,000 entities ingested
hourly write ~24,000 files a day). ``compact(data_dir, contract, max_parts_per_day=k)`` rewrites
every entity-day holding more than ``k`` live parts as one part, so a day holds at most ``k``:

1. the merged rows (the day's parts in path order, sorted by time, stable) are written to
   ``.staging/<id>/files/telemetry/entity=<e>/date=<d>/part-c<id[:15]>.parquet``, then the
   staged manifest (``kind: compaction``; ``supersedes``: each replaced part and its sha256);
2. ``dataset.commit_staged`` moves the part into place (still invisible: no manifest lists it),
   renames the manifest into ``compactions/<id>.json`` (the one commit point: from then on
   readers list the new part instead of the old ones), deletes the superseded parts and drops
   the staging.

A crash before the rename leaves the old parts live; after it, the new one. ``dataset.recover``
rolls a completely staged compaction forward exactly as it does a batch. The id is the sha256 of
the superseded parts' paths and digests and the bytes carry no clock, so the same parts always
compact to the same bytes. Batch manifests are never edited, so the data's per-entity content id
(``dataset.entity_fingerprint``) is the same before and after. Everything runs under the dataset
lock; ``maybe_compact`` is the hook ingest calls with ``contract.compact_after_parts``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from amad.errors import DataError
from amad.files import atomic_write, sha256_file, strict_json
from amad.telemetry import dataset
from amad.telemetry.lock import dataset_lock
from amad.telemetry.schema import Contract

log = logging.getLogger(__name__)


def day_parts(data_dir: str | Path) -> dict[str, list[str]]:
    """The live parts per entity-day folder (``telemetry/entity=<e>/date=<d>``), path order."""
    days: dict[str, list[str]] = defaultdict(list)
    for rel in dataset.committed_parts(data_dir):
        days[rel.rsplit("/", 1)[0]].append(rel)
    return dict(days)


def _merged(root: Path, rels: list[str], contract: Contract) -> pa.Table:
    """The parts' rows as one table, sorted by time (stable, so ties keep path order); the parts'
    schema is kept when they share one, else the entity id is read as text (``load_dataset``)."""
    tables = [pq.read_table(root / rel) for rel in rels]
    if any(not t.schema.equals(tables[0].schema) for t in tables):
        tables = [dataset.entity_as_text(t, contract.entity) for t in tables]
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.sort_by([(contract.timestamp, "ascending")])


def stage_compaction(data_dir: str | Path, folder: str, rels: list[str], contract: Contract) -> str:
    """Stage the merge of ``rels`` (one entity-day ``folder``); returns the compaction id."""
    root = Path(data_dir)
    supersedes = {rel: sha256_file(root / rel) for rel in sorted(rels)}
    text = "".join(f"{rel}\0{digest}\n" for rel, digest in supersedes.items())
    cid = hashlib.sha256(text.encode()).hexdigest()
    staging = root / dataset.STAGING / cid
    if staging.exists():
        shutil.rmtree(staging)  # an earlier incomplete attempt: derived files only
    table = _merged(root, rels, contract)
    rel = f"{folder}/part-c{cid[:15]}.parquet"
    path = staging / "files" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy", use_dictionary=[contract.entity])
    manifest = {
        "kind": "compaction",
        "sha256": cid,
        "rows": table.num_rows,
        "files": {rel: {"rows": table.num_rows, "sha256": sha256_file(path)}},
        "supersedes": supersedes,
        "extra_files": {},
    }
    atomic_write(staging / "manifest.json", strict_json(manifest).encode(), fsync=True)
    return cid


def compact_day(
    data_dir: str | Path, folder: str, rels: list[str], contract: Contract
) -> dict[str, Any]:
    """Replace one entity-day's parts by one (stage, then commit); the caller holds the lock."""
    if len(rels) < 2:
        raise DataError(f"{folder}: {len(rels)} part(s), nothing to compact")
    cid = stage_compaction(data_dir, folder, rels, contract)
    manifest = dataset.commit_staged(data_dir, cid)
    log.info("compacted %s: %d parts -> 1 (%d rows)", folder, len(rels), manifest["rows"])
    return {"folder": folder, "parts": len(rels), "rows": manifest["rows"], "id": cid}


def compact(
    data_dir: str | Path, contract: Contract, *, max_parts_per_day: int = 1
) -> list[dict[str, Any]]:
    """Compact every entity-day with more than ``max_parts_per_day`` live parts, under the
    dataset lock (finishing interrupted ingests and compactions first); one record per day."""
    if max_parts_per_day < 1:
        raise ValueError("max_parts_per_day must be at least 1")
    root = Path(data_dir)
    with dataset_lock(root):
        dataset.recover(root)
        due = {f: r for f, r in sorted(day_parts(root).items()) if len(r) > max_parts_per_day}
        return [compact_day(root, folder, rels, contract) for folder, rels in due.items()]


def maybe_compact(data_dir: str | Path, contract: Contract) -> list[dict[str, Any]]:
    """Ingest's hook: compact the days past ``contract.compact_after_parts`` (None: never)."""
    limit = contract.cfg.compact_after_parts
    return [] if limit is None else compact(data_dir, contract, max_parts_per_day=limit)
