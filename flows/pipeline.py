"""``pipeline``: the one scheduled entry point, from new telemetry to a safely promoted model.

    validate_telemetry -> (no new data? end "NoNewData") -> rebuild_windows -> retrain
        -> champion_challenger -> publish

``retrain`` runs in-process as a subflow, or, with ``retrain_deployment`` (``"retrain/gpu"`` in
``infra/prefect.yaml``), as its own deployment on the GPU pool; the new version is then found in
the registry by the child run's id, so nothing large passes through Prefect results. Any failure
(training, NaN, a tampered bundle, storage) fails the run before ``publish``: the champion keeps
serving.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.states import State

from amad.errors import TrainingError
from amad.storage.registry import Registry
from amad.storage.store import store_from_config
from flows.champion_challenger import champion_challenger
from flows.publish import publish
from flows.rebuild_windows import rebuild_windows
from flows.retrain import retrain
from flows.runtime import (
    STORAGE_RETRIES,
    load_run_config,
    no_new_data,
    route_library_logs,
)
from flows.validate_telemetry import validate_telemetry


@task(name="trained-data-versions", **STORAGE_RETRIES)
def trained_data_versions(config_path: str | None, overrides: dict[str, Any] | None) -> list[str]:
    """Data versions some registered version (champion or rejected challenger) was trained on."""
    cfg = load_run_config(config_path, overrides)
    registry = Registry(store_from_config(cfg.publish), cfg.publish.model_name)
    return sorted({v.data_version for v in registry.list_versions() if v.data_version})


@task(name="find-version-by-run", **STORAGE_RETRIES)
def find_version_by_run(
    run_id: str, config_path: str | None, overrides: dict[str, Any] | None
) -> dict[str, Any]:
    """The registry version a (deployed) retrain run published."""
    cfg = load_run_config(config_path, overrides)
    registry = Registry(store_from_config(cfg.publish), cfg.publish.model_name)
    for info in reversed(registry.list_versions()):
        if info.run_id == run_id:
            return {"version": info.version, "metrics": info.metrics, "run_id": run_id}
    raise TrainingError(f"retrain run {run_id} completed but published no version")


def _train(
    data_version: str,
    windows_uri: str,
    retrain_deployment: str | None,
    config_path: str | None,
    overrides: dict[str, Any] | None,
) -> dict[str, Any]:
    if not retrain_deployment:
        return retrain(data_version, windows_uri, config_path=config_path, overrides=overrides)
    child: FlowRun = run_deployment(  # type: ignore[assignment]  # sync call returns FlowRun
        retrain_deployment,
        parameters={
            "data_version": data_version,
            "config_path": config_path,
            "overrides": overrides,
        },
        timeout=None,
    )
    if child.state is None or not child.state.is_completed():
        raise TrainingError(f"retrain deployment run {child.id} ended {child.state!r}")
    return find_version_by_run(str(child.id), config_path, overrides)


@flow(name="pipeline")
def pipeline(
    batches: list[str] | None = None,
    incoming: str | None = None,
    config_path: str | None = "params.yaml",
    overrides: dict[str, Any] | None = None,
    retrain_deployment: str | None = None,
    force: bool = False,
) -> dict[str, Any] | State[Any]:
    """Ingest, retrain when the data changed, compare with the champion, promote the winner."""
    route_library_logs()
    uris = [*(batches or []), *([incoming] if incoming else [])]  # folders, s3:// prefixes too
    validated = validate_telemetry(uris, config_path, overrides)
    data_version = validated["data_version"]
    if data_version is None:
        return no_new_data("no accepted telemetry yet")
    if data_version in trained_data_versions(config_path, overrides) and not force:
        return no_new_data(f"data version {data_version} was already trained on")
    windows_uri = rebuild_windows(data_version, config_path, overrides)
    candidate = _train(data_version, windows_uri, retrain_deployment, config_path, overrides)
    decision = champion_challenger(
        candidate["version"], windows_uri, config_path=config_path, overrides=overrides
    )
    pointer = publish(candidate["version"], decision, config_path, overrides)
    return {
        "data_version": data_version,
        "accepted": validated["accepted"],
        "quarantined": validated["quarantined"],
        "challenger": candidate["version"],
        "promoted": bool(pointer),
        "champion": pointer["version"] if pointer else None,
        "reason": decision.get("reason"),
        "numbers": decision.get("numbers", {}),
        "evaluation": decision.get("evaluation", {}),
    }
