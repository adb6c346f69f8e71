"""``validate_telemetry``: validate and ingest incoming batches; rejected ones are quarantined.

Each batch is one task around the library's ingest (Great Expectations validation, append to the
versioned dataset, DVC commit and push, or quarantine with the report). A rejected batch is a
normal outcome, not a failure: the flow reports it and carries on with the next one. The result
is the data version after the last batch and one summary row per batch, also published as a
markdown artifact with links to each batch's Data Docs.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from amad import ingest
from flows import reports
from flows.runtime import STORAGE_RETRIES, load_run_config, route_library_logs


@task(name="ingest-batch", **STORAGE_RETRIES)
def ingest_batch(
    batch_uri: str, config_path: str | None, overrides: dict[str, Any] | None
) -> dict[str, Any]:
    """Validate one batch and append it, or quarantine it; returns the batch's summary row."""
    cfg = load_run_config(config_path, overrides)
    return dict(ingest.ingest_batch(batch_uri, cfg).summary())


@task(name="current-data-version", **STORAGE_RETRIES)
def current_data_version(config_path: str | None, overrides: dict[str, Any] | None) -> str | None:
    cfg = load_run_config(config_path, overrides)
    return ingest.data_version(cfg)


@flow(name="validate-telemetry")
def validate_telemetry(
    batches: list[str],
    config_path: str | None = "params.yaml",
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Ingest ``batches`` in order; returns ``{"data_version", "accepted", "batches"}``."""
    route_library_logs()
    before = current_data_version(config_path, overrides)
    rows = [ingest_batch(uri, config_path, overrides) for uri in batches]
    after = current_data_version(config_path, overrides)
    reports.report_validation(reports.validation_markdown(rows))
    return {
        "data_version": after,
        "previous_data_version": before,
        "accepted": sum(row.get("status") == "accepted" for row in rows),
        "quarantined": sum(row.get("status") == "quarantined" for row in rows),
        "batches": rows,
    }
