"""``retrain``: train a challenger on one data version and register it as an immutable version.

Runs as its own deployment on the ``gpu`` pool when deployed (the parent starts it with
``run_deployment``) and locally as part of each entity's task (``pipeline.retrain_entity``), or
as a flow of its own when started alone; the library picks the device (CUDA when present); given
only ``data_version``, it builds the windows there, checking the dataset out from the DVC remote
when the pod does not hold it. One slot per model and entity (``runtime.retrain_lock``) keeps two
retrains of an entity's model apart; the fleet's run takes all its entities' slots at once
(``runtime.fleet_locks``). ``data.entity`` in the overrides picks the entity and its registry
(``models/<name>/entities/<entity>/``). The new version is written to the registry but not
promoted: promotion is ``publish``'s job after champion/challenger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task

from amad import stages
from flows.limits import train_limited
from flows.rebuild_windows import rebuild_windows
from flows.runtime import (
    STORAGE_RETRIES,
    current_run_id,
    registry_for,
    retrain_lock,
    route_library_logs,
    run_config,
    run_context,
)


@task(name="train-bundle")
def train_bundle(windows_uri: str, work_dir: str, context: dict[str, Any]) -> dict[str, Any]:
    """Fit AMAD on a window set; returns the local bundle path and its training metrics."""
    outcome = stages.train(run_config(context), windows_uri, Path(work_dir) / "bundle")
    return {"bundle_dir": str(outcome.path), "metrics": dict(outcome.metrics)}


@task(name="register-version", **STORAGE_RETRIES)
def register_version(
    bundle_dir: str,
    metrics: dict[str, Any],
    data_version: str,
    run_id: str,
    context: dict[str, Any],
    entity_fingerprint: str | None = None,
) -> str:
    """Upload the bundle as an immutable, verified registry version (not promoted), recording
    the data version and the entity fingerprint it was trained on."""
    registry = registry_for(run_config(context))
    return registry.publish_version(
        Path(bundle_dir), run_id=run_id, metrics=metrics, data_version=data_version,
        entity_fingerprint=entity_fingerprint,
    )  # fmt: skip


@flow(name="retrain", log_prints=False)
def retrain(
    data_version: str,
    windows_uri: str | None = None,
    work_dir: str = "runs/retrain",
    config_path: str | None = "params.yaml",
    overrides: dict[str, Any] | None = None,
    run_id: str | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and register a challenger; returns ``{"version", "metrics", "run_id"}``.

    ``context``: the parent run's (also through ``run_deployment``); without it the config is
    resolved here from ``config_path`` and ``overrides``.
    """
    route_library_logs()
    ctx = run_context(config_path, overrides, context)
    cfg, mine = ctx.cfg(), ctx.to_dict()
    run_id = run_id or current_run_id()
    run_dir = str(Path(work_dir) / run_id)
    if windows_uri is None:  # deployed on its own pool: build (or reuse) the windows here
        windows_uri = rebuild_windows(data_version, context=mine)
    with retrain_lock(ctx):
        trained = train_limited(train_bundle, cfg)(windows_uri, run_dir, mine)
        fingerprint = stages.window_entity_fingerprint(windows_uri)  # what the windows hold
        version = register_version(
            trained["bundle_dir"], trained["metrics"], data_version, run_id, mine, fingerprint
        )
    return {"version": version, "metrics": trained["metrics"], "run_id": run_id}
