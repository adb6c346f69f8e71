"""``validate_telemetry``: validate and ingest incoming batches; rejected ones are quarantined.

One task per batch around the library's ``amad.telemetry.ingest.ingest`` (pre-parse checks and the Great
Expectations suite, then an append to the dataset or the quarantine with the report). A rejected
batch is a normal outcome, not a failure: the flow reports it and goes on. When anything was
accepted the dataset is recorded as a new DVC data version (``amad.telemetry.versioning.commit``) and
pushed to the DVC remote when the repository has one (without a DVC repository the version
is the dataset's content fingerprint). The summary, with a link to each batch's
Data Docs page (``data_docs``: a presigned URL when the reports are on S3, None for a local
path; ``data_docs_uri``: where the page is), is published as a markdown artifact.

Drift acts: every batch whose ``drift_mean`` / ``drift_std`` checks failed (warnings by default)
yields one finding per drifted metric (``amad.evaluation.drift.metric_drift``: z of the mean,
ratio of the std, against the reference statistics), logged once and announced once as a
Prefect event ``amad.drift.detected`` (``flows.drift``); ``retrain_follows`` (set by
``pipeline``, which retrains on the same data next) keeps the retrain automation from acting
on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, task

from amad.evaluation.drift import DRIFT_CHECKS, metric_drift
from amad.storage.links import browser_link
from amad.telemetry import dataset, ingest, versioning
from amad.telemetry.reference import read_reference
from amad.telemetry.report import read_report
from flows import reports
from flows.drift import act_on_drift
from flows.runtime import STORAGE_RETRIES, route_library_logs, run_config, run_context


@task(name="list-batches", **STORAGE_RETRIES)
def list_batches(items: list[str]) -> list[str]:
    """Files, the files of folders (name order) and the objects under S3 prefixes."""
    return [source.name for source in ingest.expand_sources(items)]


@task(name="ingest-batch", **STORAGE_RETRIES)
def ingest_batch(batch: str, context: dict[str, Any]) -> dict[str, Any]:
    """Validate one batch and append or quarantine it; returns its summary row."""
    c = run_config(context).contract
    outcome = ingest.ingest([batch], c, c.data_dir, c.quarantine_dir, reports_dir=c.reports_dir)
    row = outcome.outcomes[0]
    return {
        "batch": Path(row.source).name,
        "sha256": row.sha256,
        "status": row.status,
        "rows": row.rows,
        "failed": list(row.failed_checks),
        "warnings": list(row.warnings),
        "summary": row.message,
        "data_docs": browser_link(row.data_docs),  # presigned for s3://; None for local paths
        "data_docs_uri": row.data_docs,
        "quarantine": row.quarantine_dir,
        "report_dir": row.report_dir,
    }


def _drifted(row: dict[str, Any]) -> bool:
    return bool(set(DRIFT_CHECKS) & {*row["warnings"], *row["failed"]}) and bool(row["report_dir"])


@task(name="find-drift")
def find_drift(
    rows: list[dict[str, Any]], data_version: str | None, context: dict[str, Any]
) -> list[dict[str, Any]]:
    """The drifted metrics of the batches' reports (one finding per metric per batch)."""
    c = run_config(context).contract
    reference = read_reference(c.data_dir)
    found = []
    for row in rows:
        report = read_report(row["report_dir"])
        manifest = Path(c.data_dir) / dataset.BATCHES / f"{row['sha256']}.json"
        entities = (
            json.loads(manifest.read_text()).get("entities", {}) if manifest.is_file() else {}
        )
        found += metric_drift(report, reference, c, batch=row["sha256"],
                              data_version=data_version, entities=entities)  # fmt: skip
    return [f.to_dict() for f in found]


@task(name="data-version")
def current_data_version(context: dict[str, Any]) -> str | None:
    """The current data version (None before the first accepted batch)."""
    return ingest.data_version(run_config(context))


@task(name="record-data-version")
def record_data_version(context: dict[str, Any]) -> str | None:
    """``dvc add`` the dataset when it sits in a DVC repository: the new data version."""
    return ingest.record_version(run_config(context), push=False)


@task(name="push-data-version", **STORAGE_RETRIES)
def push_data_version(context: dict[str, Any]) -> bool:
    """Push the recorded version to the DVC remote; False without a repository or remote."""
    cfg = run_config(context)
    data_dir = Path(cfg.contract.data_dir).resolve()
    root = versioning.find_repo(data_dir.parent)
    if root is None:
        return False
    if not cfg.contract.dvc_remote and not versioning.run_dvc(["remote", "list"], root).strip():
        return False
    versioning.push(root, data_dir, remote=cfg.contract.dvc_remote)
    return True


@flow(name="validate-telemetry")
def validate_telemetry(
    batches: list[str],
    config_path: str | None = "params.yaml",
    overrides: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    retrain_follows: bool = False,
) -> dict[str, Any]:
    """Ingest ``batches`` in order; returns the data version and one row per batch.

    ``context``: the parent run's; without it the config is resolved from the other two.
    ``retrain_follows``: the caller retrains on this data next (marks the drift events so).
    """
    route_library_logs()
    mine = run_context(config_path, overrides, context).to_dict()
    names = list_batches(batches) if batches else []
    rows = [ingest_batch(name, mine) for name in names]
    accepted = sum(row["status"] == "accepted" for row in rows)
    if accepted:
        version = record_data_version(mine)
        pushed = push_data_version(mine)
    else:
        version, pushed = current_data_version(mine), False
    drifted = [row for row in rows if _drifted(row)]
    findings = find_drift(drifted, version, mine) if drifted else []
    announced = act_on_drift(findings, mine, retrain_follows)
    if rows:
        reports.report_validation(reports.validation_markdown(rows))
    return {
        "data_version": version,
        "drift": announced,
        "accepted": accepted,
        "quarantined": sum(row["status"] == "quarantined" for row in rows),
        "pushed": pushed,
        "batches": rows,
    }
