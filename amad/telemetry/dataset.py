"""The versioned telemetry dataset on disk: append-only Parquet partitions and batch manifests.

Layout under the data directory (tracked as a whole by ``data.dvc``)::

    telemetry/entity=<entity>/date=<YYYY-MM-DD>/part-<batch sha256[:16]>.parquet
    batches/<batch sha256>.json     one manifest per accepted batch: the commit record
    compactions/<sha256>.json       one per compacted entity-day: the part that replaces the
                                    parts it lists under ``supersedes`` (``.compaction``)
    reference.json                  per-metric mean/std of the first accepted data (drift base),
                                    or of the rows ``refresh_reference`` was asked to use
                                    (``amad.telemetry.reference``)
    .staging/                       in-flight ingests (ignored by DVC and by readers)

A batch is written to ``.staging/<sha>/`` first (its parts, then its manifest, which marks the
staging complete), then each part is renamed into place and the manifest is renamed into
``batches/`` last. Readers only see parts listed by a committed manifest, so a crash at any
step leaves the old dataset visible, and ``recover`` rolls a completely staged batch forward
(or drops an incomplete staging, which holds only derived files). Only a committed compaction
deletes parts, after its manifest has superseded them; file contents are deterministic (no
wall-clock times), so the same batches give the same DVC version. ``entity_fingerprint`` names
one entity's rows by the batch manifests alone, so it is the same before and after compaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from amad.errors import DataError, DatasetNotFoundError
from amad.files import atomic_write, sha256_bytes, sha256_file, strict_json
from amad.series.data import SeriesData, make_series
from amad.telemetry.schema import Contract

log = logging.getLogger(__name__)

TELEMETRY = "telemetry"
BATCHES = "batches"
COMPACTIONS = "compactions"
REFERENCE = "reference.json"
STAGING = ".staging"
_DAY_NS = 86_400 * 10**9
_READ_ATTEMPTS = 3  # a reader that lost a race with a compaction lists the parts again


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write(path, data, fsync=True)


def _json_bytes(obj: Any) -> bytes:
    return strict_json(obj, default=str).encode()


# --------------------------------------------------------------------------- reading


def manifests(data_dir: str | Path) -> list[dict[str, Any]]:
    """Every committed batch manifest, in name order."""
    folder = Path(data_dir) / BATCHES
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def is_committed(data_dir: str | Path, sha: str) -> bool:
    return (Path(data_dir) / BATCHES / f"{sha}.json").is_file()


def _entity_prefix(entity: str) -> str:
    return f"{TELEMETRY}/entity={quote(entity, safe='')}/"


def committed_parts(data_dir: str | Path, entity: str | None = None) -> list[str]:
    """Relative paths of the live Parquet parts (of one entity): those the batch and compaction
    manifests list, less those a committed compaction superseded."""
    root = Path(data_dir)
    listed = {rel for m in manifests(root) for rel in m["files"]}
    superseded: set[str] = set()
    folder = root / COMPACTIONS
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        compaction = json.loads(path.read_text())
        listed.update(compaction["files"])
        superseded.update(compaction["supersedes"])
    prefix = "" if entity is None else _entity_prefix(entity)
    return sorted(rel for rel in listed - superseded if rel.startswith(prefix))


def entity_fingerprints(data_dir: str | Path) -> dict[str, str]:
    """Per entity, sha256 over the (path, sha256) of every part the batch manifests committed
    for it: its rows' content id. Another entity's batch leaves it unchanged, and so does
    compaction (which never edits a batch manifest)."""
    lines: dict[str, list[str]] = {}
    for manifest in manifests(data_dir):
        for rel, info in manifest["files"].items():
            if rel.startswith(f"{TELEMETRY}/entity="):
                folder = rel.split("/")[1].removeprefix("entity=")
                lines.setdefault(unquote(folder), []).append(f"{rel}\0{info['sha256']}\n")
    return {e: hashlib.sha256("".join(sorted(v)).encode()).hexdigest() for e, v in lines.items()}


def entity_fingerprint(data_dir: str | Path, entity: str) -> str | None:
    """One entity's content id (``entity_fingerprints``); None when it has no committed rows."""
    return entity_fingerprints(data_dir).get(entity)


def dataset_fingerprint(data_dir: str | Path) -> str:
    """sha256 over the committed manifests and reference stats: the dataset's content id."""
    root = Path(data_dir)
    digest = hashlib.sha256()
    paths = sorted((root / BATCHES).glob("*.json")) if (root / BATCHES).is_dir() else []
    if (root / REFERENCE).is_file():
        paths.append(root / REFERENCE)
    for p in paths:
        digest.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return digest.hexdigest()


def tree_digest(data_dir: str | Path) -> str:
    """sha256 over every file's path and bytes except in-flight staging: 'nothing changed'."""
    root = Path(data_dir)
    digest = hashlib.sha256()
    if root.is_dir():
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root).as_posix()
            if p.is_file() and not rel.startswith(STAGING):
                digest.update(rel.encode() + b"\0" + sha256_file(p).encode())
    return digest.hexdigest()


def entity_as_text(table: pa.Table, entity: str) -> pa.Table:
    """The entity column as plain strings: a part written before ids were read as text (an id
    inferred as a number or date) must not make the whole append-only dataset unreadable."""
    if entity not in table.column_names:
        return table
    column = table.column(entity)
    if pa.types.is_string(column.type):
        return table
    index = table.column_names.index(entity)
    return table.set_column(index, entity, column.cast(pa.string()))


def load_dataset(
    data_dir: str | Path, contract: Contract, *, entities: list[str] | None = None
) -> pd.DataFrame:
    """All committed rows (optionally of some entities), sorted by entity and timestamp."""
    root = Path(data_dir)
    for attempt in range(_READ_ATTEMPTS):
        rels = (
            committed_parts(root)
            if entities is None
            else sorted(rel for e in set(entities) for rel in committed_parts(root, e))
        )
        if not rels:
            return pd.DataFrame(columns=contract.expected_columns(with_label=False))
        try:
            tables = [entity_as_text(pq.read_table(root / r), contract.entity) for r in rels]
            break
        except FileNotFoundError:  # a compaction committed meanwhile: list the parts again
            if attempt + 1 == _READ_ATTEMPTS:
                raise
    frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    return frame.sort_values([contract.entity, contract.timestamp], kind="stable").reset_index(
        drop=True
    )


def last_accepted(data_dir: str | Path) -> dict[str, pd.Timestamp]:
    """Per entity, the latest timestamp of any committed batch (from the manifests alone)."""
    last: dict[str, pd.Timestamp] = {}
    for manifest in manifests(data_dir):
        for entity, info in manifest.get("entities", {}).items():
            stamp = pd.Timestamp(info["last"])
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            if entity not in last or stamp > last[entity]:
                last[entity] = stamp
    return last


def known_keys(data_dir: str | Path, contract: Contract, frame: pd.DataFrame) -> pd.MultiIndex:
    """``(entity, timestamp)`` pairs already committed in the partitions ``frame`` touches."""
    root = Path(data_dir)
    if contract.timestamp not in frame or contract.entity not in frame:
        return pd.MultiIndex.from_arrays([[], []])
    parts = set(committed_parts(root))
    tables = []
    for entity, day in sorted(_touched(frame, contract)):
        folder = _partition_dir(entity, day)
        for rel in sorted(p for p in parts if p.startswith(folder + "/")):
            table = pq.read_table(root / rel, columns=[contract.entity, contract.timestamp])
            tables.append(entity_as_text(table, contract.entity))
    if not tables:
        return pd.MultiIndex.from_arrays([[], []])
    known = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    ts = pd.to_datetime(known[contract.timestamp], utc=True).dt.as_unit("ns")
    return pd.MultiIndex.from_arrays([known[contract.entity].astype("string"), ts])


# --------------------------------------------------------------------------- partitions


def _partition_keys(frame: pd.DataFrame, contract: Contract) -> tuple[np.ndarray, Any, np.ndarray]:
    """Per row: entity code into the sorted ids (no str per row), the ids, and the UTC day."""
    ts, ids = frame[contract.timestamp].to_numpy(dtype="datetime64[ns]"), frame[contract.entity]
    codes, uniques = pd.factorize(ids.astype(str), sort=True, use_na_sentinel=False)
    return codes, uniques, ts.view(np.int64) // _DAY_NS


def _day_text(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _partition_dir(entity: str, day: int) -> str:
    return f"{TELEMETRY}/entity={quote(entity, safe='')}/date={_day_text(day)}"


def _touched(frame: pd.DataFrame, contract: Contract) -> set[tuple[str, int]]:
    codes, uniques, days = _partition_keys(frame, contract)
    pairs = pd.DataFrame({"e": codes, "d": days}).drop_duplicates()
    return {(str(uniques[e]), int(d)) for e, d in pairs.itertuples(index=False)}


def partition(frame: pd.DataFrame, contract: Contract, sha: str) -> list[tuple[str, pa.Table]]:
    """``(relative path, rows)`` per entity and UTC day, rows sorted by entity and time."""
    codes, uniques, days = _partition_keys(frame, contract)
    ts = frame[contract.timestamp].to_numpy(dtype="datetime64[ns]").view(np.int64)
    order = np.lexsort((ts, codes))
    is_sorted = bool(np.all(order == np.arange(len(order))))
    table = pa.Table.from_pandas(frame if is_sorted else frame.iloc[order], preserve_index=False)
    codes, days = codes[order], days[order]
    change = (np.diff(codes) != 0) | (np.diff(days) != 0)
    starts = np.concatenate([[0], np.flatnonzero(change) + 1]).astype(int)
    ends = np.concatenate([starts[1:], [len(order)]]).astype(int)
    name = f"part-{sha[:16]}.parquet"
    return [
        (f"{_partition_dir(str(uniques[codes[s]]), int(days[s]))}/{name}", table.slice(s, e - s))
        for s, e in zip(starts, ends, strict=True)
    ]


# --------------------------------------------------------------------------- writing


def _staging(data_dir: str | Path, sha: str) -> Path:
    return Path(data_dir) / STAGING / sha


def stage_batch(
    data_dir: str | Path,
    sha: str,
    frame: pd.DataFrame,
    contract: Contract,
    record: dict[str, Any],
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a batch's parts (and extra files such as the first ``reference.json``) under
    ``.staging/<sha>/``; the staged manifest, written last, marks the staging complete."""
    staging = _staging(data_dir, sha)
    if staging.exists():
        shutil.rmtree(staging)  # an earlier incomplete attempt: derived files only
    files: dict[str, dict[str, Any]] = {}
    for rel, table in partition(frame, contract, sha):
        path = staging / "files" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # dictionary-encode only the entity id: on float metrics it costs time and saves nothing
        pq.write_table(table, path, compression="snappy", use_dictionary=[contract.entity])
        files[rel] = {"rows": table.num_rows, "sha256": sha256_file(path)}
    extra: dict[str, str] = {}
    for rel, data in (extra_files or {}).items():
        _write_atomic(staging / "files" / rel, data)
        extra[rel] = sha256_bytes(data)
    manifest = {**record, "sha256": sha, "rows": len(frame), "files": files, "extra_files": extra}
    _write_atomic(staging / "manifest.json", _json_bytes(manifest))
    return staging


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def commit_staged(data_dir: str | Path, sha: str) -> dict[str, Any]:
    """Move a completely staged batch (or compaction) into place; its manifest in ``batches/``
    (``compactions/``) commits it, and only then are the parts a compaction supersedes deleted."""
    root = Path(data_dir)
    staging = _staging(root, sha)
    manifest = json.loads((staging / "manifest.json").read_text())
    wanted = {rel: info["sha256"] for rel, info in manifest["files"].items()}
    wanted.update(manifest.get("extra_files", {}))
    for rel, digest in wanted.items():
        src, dst = staging / "files" / rel, root / rel
        if src.is_file():
            _move(src, dst)
        elif not (dst.is_file() and sha256_file(dst) == digest):
            raise DataError(f"staged batch {sha[:12]}: {rel} is missing")
    folder = COMPACTIONS if manifest.get("kind") == "compaction" else BATCHES
    _write_atomic(root / folder / f"{sha}.json", _json_bytes(manifest))  # the commit point
    for rel in sorted(manifest.get("supersedes", {})):  # a compaction's replaced parts
        (root / rel).unlink(missing_ok=True)
    shutil.rmtree(staging)
    log.info("committed %s %s: %d rows in %d parts", folder, sha[:12], manifest["rows"],
             len(manifest["files"]))  # fmt: skip
    return dict(manifest)


def recover(data_dir: str | Path) -> list[str]:
    """Finish interrupted ingests and compactions: commit complete stagings, drop the rest.

    Call it holding the dataset lock (``amad.telemetry.lock``): every staging folder is then a
    dead ingest's. One whose files are gone (a half-deleted folder) is dropped, not fatal: it
    was never committed, and its batch is simply ingested again.
    """
    root = Path(data_dir) / STAGING
    done: list[str] = []
    if not root.is_dir():
        return done
    for staging in sorted(p for p in root.iterdir() if p.is_dir()):
        if (staging / "manifest.json").is_file():
            try:
                commit_staged(data_dir, staging.name)
            except (DataError, OSError, ValueError) as exc:
                shutil.rmtree(staging, ignore_errors=True)
                log.warning("dropped unrecoverable staging of %s: %s", staging.name[:12], exc)
                continue
            done.append(staging.name)
            log.warning("recovered interrupted ingest or compaction %s", staging.name[:12])
        else:
            shutil.rmtree(staging, ignore_errors=True)
            log.warning("dropped incomplete staging of batch %s", staging.name[:12])
    return done


# --------------------------------------------------------------------------- series


def entities(data_dir: str | Path) -> list[str]:
    """Entity ids with committed rows."""
    return sorted({e for m in manifests(data_dir) for e in m.get("entities", {})})


def dataset_series(
    data_dir: str | Path, contract: Contract, entity: str | None = None
) -> SeriesData:
    """One entity's rows as a ``SeriesData``: the last ``eval_fraction`` is the test period.

    ``entity=None`` means the dataset's only entity; with several it is an error, never a guess.
    """
    available = entities(data_dir)
    if not available:
        raise DatasetNotFoundError(f"no ingested telemetry under {data_dir}; run `amad ingest`")
    if entity is None and len(available) > 1:
        raise DataError(f"{data_dir} holds {len(available)} entities: name one (data.entity)")
    chosen = available[0] if entity is None else entity
    if chosen not in available:
        raise DatasetNotFoundError(f"entity {chosen!r} not in {data_dir} (have {available})")
    frame = load_dataset(data_dir, contract, entities=[chosen])
    metrics = frame[contract.metric_names].ffill().bfill()  # nulls within the contract's tolerance
    values = metrics.to_numpy(dtype=np.float32)
    n_test = round(len(frame) * contract.cfg.eval_fraction)
    if n_test < 1 or n_test >= len(frame):
        raise DataError(f"{chosen}: {len(frame)} rows cannot be split with eval_fraction")
    labels = None
    if contract.label and contract.label in frame:
        labels = frame[contract.label].to_numpy()[-n_test:].astype(np.int8)
    return make_series("dataset", chosen, values[:-n_test], values[-n_test:], labels)
