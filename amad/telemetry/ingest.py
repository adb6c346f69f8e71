"""Ingest telemetry batches: validate each against the contract, then append or quarantine it.

``ingest(sources, cfg, data_dir, quarantine_dir)`` takes local files, folders (their files, in
name order) and ``s3://bucket/prefix`` URIs. Each batch is keyed by the sha256 of its bytes:

- already committed (same bytes ingested before): nothing changes (``duplicate``);
- rejected by the pre-parse checks or an error-severity expectation: the bytes are copied,
  unchanged, to ``<quarantine_dir>/<sha>/original/<file name>`` next to ``report.json`` (and
  the GX result and Data Docs when the suite ran); see ``amad.telemetry.quarantine``;
- accepted: the rows are staged and committed into the dataset (see ``amad.telemetry.dataset``), and
  the first accepted batch also sets the reference statistics used for drift checks.

Every batch also gets ``<reports_dir>/<sha>/`` (report.json, gx_result.json, data_docs.html)
and a page on the Data Docs site ``<reports_dir>/site/`` (``amad.telemetry.docs_site``).
``quarantine_dir`` and ``reports_dir`` are local folders or ``s3://bucket/prefix`` URIs.
What happened comes back as an ``IngestReport`` (``amad.telemetry.outcomes``). Versioning the
new dataset with DVC is the caller's next step (``amad.telemetry.versioning``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amad.config import AmadConfig, ContractConfig
from amad.errors import DatasetNotFoundError, PermanentStorageError
from amad.files import sha256_bytes
from amad.telemetry import compaction, dataset, docs_site, schema, versioning
from amad.telemetry.expectations import ValidationReport, validate_bytes
from amad.telemetry.lock import dataset_lock
from amad.telemetry.outcomes import BatchOutcome, IngestReport
from amad.telemetry.quarantine import quarantine
from amad.telemetry.reference import compute_reference, read_reference, reference_bytes
from amad.telemetry.report import save_files
from amad.telemetry.schema import Contract

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One batch to read: a local path or an object in a store."""

    name: str  # what reports call it: a path or an s3:// URI
    path: Path | None = None
    store: Any = None  # amad.storage.store.Store for S3 sources
    key: str | None = None

    def read(self) -> bytes:
        if self.path is not None:
            return self.path.read_bytes()
        data, _etag = self.store.get_bytes(self.key)
        return bytes(data)


def _s3_sources(uri: str) -> list[Source]:
    from amad.storage.store import store_from_uri

    store = store_from_uri(uri)
    keys = sorted(k for k in store.list("") if not k.rsplit("/", 1)[-1].startswith("."))
    if keys:
        return [Source(name=f"{uri.rstrip('/')}/{k}", store=store, key=k) for k in keys]
    parent, _, key = uri.rstrip("/").rpartition("/")
    return [Source(name=uri, store=store_from_uri(parent), key=key)]


def expand_sources(items: Iterable[str | Path]) -> list[Source]:
    """Files, the files of folders (name order, hidden ones skipped), and S3 prefixes."""
    out: list[Source] = []
    for item in items:
        text = str(item)
        if text.startswith("s3://"):
            out += _s3_sources(text)
            continue
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            out += [Source(name=str(p), path=p) for p in files]
        elif path.is_file():
            out.append(Source(name=text, path=path))
        else:
            raise DatasetNotFoundError(f"batch not found: {text}")
    return out


# --------------------------------------------------------------------------- one batch


def _ingested_flags(
    prepared: pd.DataFrame, contract: Contract, data_dir: Path
) -> np.ndarray | None:
    """1 where a row is already in ``data_dir`` (same key, or not after its entity's last
    accepted row by a cadence step); None before the first batch or without the key columns."""
    ts, ent = contract.timestamp, contract.entity
    if ts not in prepared or ent not in prepared or not dataset.manifests(data_dir):
        return None
    known = dataset.known_keys(data_dir, contract, prepared)
    exact = schema.ingested_flags(prepared[ts], prepared[ent], known)
    cfg = contract.cfg
    covered = schema.covered_flags(prepared[ts], prepared[ent], dataset.last_accepted(data_dir),
                                   cfg.cadence_s, cfg.cadence_jitter_s)  # fmt: skip
    return exact | covered


def validate_batch(
    data: bytes, name: str, contract: Contract, data_dir: str | Path
) -> tuple[ValidationReport, pd.DataFrame | None]:
    """Pre-parse, add helper columns (including rows already in ``data_dir``) and run the suite
    (``expectations.validate_bytes``)."""
    root = Path(data_dir)

    def ingested(prepared: pd.DataFrame) -> np.ndarray | None:
        return _ingested_flags(prepared, contract, root)

    reference = read_reference(root)
    return validate_bytes(data, contract, name=name, reference=reference, ingested=ingested)


def _record(
    name: str, frame: pd.DataFrame, contract: Contract, report: ValidationReport
) -> dict[str, Any]:
    groups = frame.groupby(contract.entity, sort=True)[contract.timestamp].agg(
        ["min", "max", "size"]
    )
    return {
        "source": Path(name).name,
        "entities": {
            str(e): {"rows": int(r["size"]), "first": str(r["min"]), "last": str(r["max"])}
            for e, r in groups.iterrows()
        },
        "warnings": sorted({w["check"] for w in report.warnings}),
        "contract_columns": contract.metric_names,
    }


def _accept(
    data_dir: Path,
    sha: str,
    name: str,
    stored: pd.DataFrame,
    contract: Contract,
    report: ValidationReport,
) -> None:
    """Stage and commit an accepted batch's ``schema.storage_frame``."""
    extra = None
    if read_reference(data_dir) is None and len(stored) >= 2:  # a std needs two rows
        ref = compute_reference(stored, contract, source=sha)
        extra = {dataset.REFERENCE: reference_bytes(ref)}
    dataset.stage_batch(
        data_dir, sha, stored, contract, _record(name, stored, contract, report), extra
    )
    dataset.commit_staged(data_dir, sha)


def _under(location: str | Path, name: str) -> str | Path:
    """``<location>/<name>`` for a folder or an ``s3://`` prefix."""
    text = str(location)
    return f"{text.rstrip('/')}/{name}" if text.startswith("s3://") else Path(text) / name


def _location(location: str | Path) -> str | Path:
    """A folder as a ``Path``; an ``s3://`` URI as it is (``Path`` would fold its ``//``)."""
    return str(location) if str(location).startswith("s3://") else Path(location)


def ingest_bytes(
    data: bytes,
    name: str,
    contract: Contract,
    *,
    data_dir: str | Path,
    quarantine_dir: str | Path,
    reports_dir: str | Path,
) -> BatchOutcome:
    """Validate one batch and append or quarantine it; its report and Data Docs page go to
    ``<reports_dir>/<sha>/`` and the site (``amad.telemetry.docs_site``)."""
    root = Path(data_dir)
    sha = sha256_bytes(data)
    if dataset.is_committed(root, sha):
        log.info("%s: already ingested as %s, nothing to do", name, sha[:12])
        return BatchOutcome(name, sha, "duplicate", 0, f"{name}: already ingested")
    report, prepared = validate_batch(data, name, contract, root)
    status = "accepted" if report.success and prepared is not None else "quarantined"
    summary = docs_site.batch_summary(report.to_dict(), report.gx_dict(), sha=sha, status=status)
    files = report.files(summary)
    report_dir = save_files(files, _under(reports_dir, sha))
    warnings = sorted({w["check"] for w in report.warnings})
    qdir = None
    if status == "quarantined" or prepared is None:
        qdir = quarantine(data, name, sha, files, quarantine_dir)
        log.warning("%s -> quarantined at %s", report.summary(), qdir)
    else:
        stored = schema.storage_frame(prepared, contract)
        del prepared  # from here on only what is stored: float32 metrics, no helper columns
        _accept(root, sha, name, stored, contract, report)
    docs = docs_site.publish(str(reports_dir), report.to_dict(), report.gx_dict(), summary)
    return BatchOutcome(
        name,
        sha,
        "quarantined" if qdir else "accepted",
        report.rows,
        report.summary(),
        report.failed_checks,
        warnings,
        report_dir,
        qdir,
        data_docs=docs,
    )


def _unreadable(source: Source, exc: Exception, reports_dir: str | Path) -> BatchOutcome:
    """A source that cannot be read at all (an invalid key, access denied): rejected with a
    report, no bytes to keep; the other sources go on."""
    key = sha256_bytes(f"unreadable-source:{source.name}".encode())
    error = {"check": "unreadable_source", "severity": "error", "column": None,
             "message": f"{source.name}: {exc}"}  # fmt: skip
    report = ValidationReport(
        batch=source.name, success=False, rows=0, stage="pre-parse", errors=[error]
    )
    summary = docs_site.batch_summary(report.to_dict(), None, sha=key, status="quarantined")
    report_dir = report.save(_under(reports_dir, key), summary)
    docs = docs_site.publish(str(reports_dir), report.to_dict(), None, summary)
    log.warning("%s", report.summary())
    return BatchOutcome(source.name, key, "quarantined", 0, report.summary(),
                        report.failed_checks, [], report_dir, data_docs=docs)  # fmt: skip


def iter_ingest(
    sources: Iterable[Source], contract: Contract, **dirs: str | Path
) -> Iterator[BatchOutcome]:
    """One outcome per source; an unreadable one is rejected without stopping the others
    (transient storage errors still raise: the whole ingest is worth retrying)."""
    for source in sources:
        try:
            data = source.read()
        except (PermanentStorageError, ValueError, OSError) as exc:
            yield _unreadable(source, exc, dirs["reports_dir"])
            continue
        yield ingest_bytes(data, source.name, contract, **dirs)


def _compact_after(root: Path, contract: Contract, outcomes: list[BatchOutcome]) -> None:
    """Compact the entity-days past ``contract.compact_after_parts`` once a batch landed."""
    if any(o.status == "accepted" for o in outcomes):
        compaction.maybe_compact(root, contract)


def ingest(
    paths_or_s3_uris: Iterable[str | Path],
    cfg: ContractConfig,
    data_dir: str | Path,
    quarantine_dir: str | Path,
    *,
    reports_dir: str | Path | None = None,
) -> IngestReport:
    """Validate every batch and append the accepted ones to ``data_dir`` (see module doc).

    Holds the dataset lock (``amad.telemetry.lock``) throughout, so a staging folder that
    recovery finds belongs to a dead ingest, never to a live one.
    """
    contract = Contract(cfg)
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    sources = expand_sources(paths_or_s3_uris)
    dirs = {
        "data_dir": root,
        "quarantine_dir": _location(quarantine_dir),
        "reports_dir": _location(reports_dir or cfg.reports_dir),
    }
    with dataset_lock(root):
        recovered = dataset.recover(root)
        if recovered:
            log.warning("finished %d interrupted ingest(s) first", len(recovered))
        before = dataset.dataset_fingerprint(root)
        outcomes = list(iter_ingest(sources, contract, **dirs))
        _compact_after(root, contract, outcomes)
        report = IngestReport(outcomes, str(root), before, dataset.dataset_fingerprint(root))
    log.info(
        "ingest: %d accepted, %d rejected, %d duplicate",
        len(report.accepted),
        len(report.rejected),
        len(report.duplicates),
    )
    return report


# --------------------------------------------------------------------------- versioned entry points


def data_version(cfg: AmadConfig) -> str | None:
    """The current data version: the DVC md5 of the dataset folder when it sits in a DVC
    repository and is tracked, else its content fingerprint; None before any accepted batch."""
    data_dir = Path(cfg.contract.data_dir)
    if not dataset.manifests(data_dir):
        return None
    repo = versioning.find_repo(data_dir.resolve().parent)
    if repo is not None:
        version = versioning.data_version(repo, data_dir.resolve())
        if version is not None:
            return version
    return "fp-" + dataset.dataset_fingerprint(data_dir)[:32]


def record_version(cfg: AmadConfig, *, push: bool = True) -> str | None:
    """``dvc add`` the dataset (and push it) when it lives in a DVC repository, under the
    dataset lock (so concurrent ingests never race DVC's own repository lock)."""
    data_dir = Path(cfg.contract.data_dir).resolve()
    repo = versioning.find_repo(data_dir.parent)
    if repo is None:
        log.info("%s is not in a DVC repository; skipping dvc add", data_dir)
        return data_version(cfg)
    with dataset_lock(data_dir):
        version = versioning.commit(repo, data_dir)
        if push:
            versioning.push(repo, data_dir, remote=cfg.contract.dvc_remote)
    return version


def ingest_batch(uri: str | Path, cfg: AmadConfig, *, push: bool = True) -> BatchOutcome:
    """Ingest one batch with the config's paths, then version the dataset if it changed."""
    c = cfg.contract
    Path(c.data_dir).mkdir(parents=True, exist_ok=True)
    with dataset_lock(c.data_dir):  # one critical section: the batch and its data version
        report = ingest([uri], c, c.data_dir, c.quarantine_dir, reports_dir=c.reports_dir)
        outcome = report.outcomes[0]
        # also when unchanged: a retry finishes an earlier run's interrupted dvc add/push
        if report.changed or data_version(cfg) is not None:
            outcome.data_version = record_version(cfg, push=push)
        else:
            outcome.data_version = data_version(cfg)
    return outcome
