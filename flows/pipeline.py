"""``pipeline``: the one scheduled entry point, from new telemetry to safely promoted models.

    validate_telemetry -> (no new data? end "NoNewData") -> for each entity, in parallel:
        rebuild_windows -> retrain -> champion_challenger -> publish

``model.scope: entity``: every entity of ``fleet.entities`` (else every entity in the dataset)
gets its own windows, model, decision and registry champion. ``model.scope: fleet``: one pooled
model for all of them (``flows.fleet_model``), still decided and promoted per entity. The entities
fan out as one ``retrain-entity`` task each on the task runner ``fleet.runner`` names
(``runtime.task_runner``: Prefect's thread pool, ``fleet.threads`` entities at a time, or a Dask
cluster). The task runs that entity's whole chain on one worker, so its local files stay
there; the stages' tasks nest under it, and no flow run is created per entity (each costs
several API round trips). ``fleet-retrain`` takes every entity's retrain slot in one
call for the fan-out (``runtime.fleet_locks``). One entity's failure never stops another's
promotion: the run ends Failed, naming the entities that failed and why, with every other
entity's result in its data.

``retrain`` runs in-process (its body, in the entity's task), or, with ``retrain_deployment``
(``"retrain/gpu"`` in ``infra/prefect.yaml``), as its own deployment on the GPU pool; the new
version is then found in the registry by the child run's id, so nothing large passes through
Prefect results. Any failure of an entity (training, NaN, a tampered bundle, storage) fails it
before ``publish``: its champion keeps serving.

The config is resolved once, by ``pipeline``; every subflow and task below it gets the same
``RunContext`` (``runtime.RunContext.to_dict()``, each entity's with its ``data.entity``), the
``retrain`` deployment run too, so no task reads ``params.yaml`` again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.futures import PrefectFuture
from prefect.states import Failed, State

from amad import stages
from amad.errors import TrainingError
from amad.storage.store import store_uri_from_config
from amad.telemetry import dataset
from flows import reports
from flows.champion_challenger import champion_challenger
from flows.fleet_model import fleet_model
from flows.limits import run_deployment_within
from flows.publish import entity_outcome, publish
from flows.rebuild_windows import rebuild_windows
from flows.retrain import retrain
from flows.runtime import (
    STORAGE_RETRIES,
    RunContext,
    fleet_locks,
    nested_runs,
    no_new_data,
    registry_for,
    route_library_logs,
    run_config,
    task_runner,
)
from flows.validate_telemetry import validate_telemetry


@task(name="trained-data-versions", **STORAGE_RETRIES)
def trained_data_versions(context: dict[str, Any]) -> dict[str, list[str]]:
    """Data versions and entity fingerprints already compared and decided (a version trained on
    them met the champion); a challenger whose run failed before its decision does not count."""
    decided = registry_for(run_config(context)).decided_versions()
    return {
        "data_versions": sorted({i.data_version for i in decided if i.data_version}),
        "fingerprints": sorted({i.entity_fingerprint for i in decided if i.entity_fingerprint}),
    }


@task(name="entity-fingerprints")
def entity_fingerprints(context: dict[str, Any]) -> dict[str, str]:
    """Each entity's data content id now (``dataset.entity_fingerprints``)."""
    return dataset.entity_fingerprints(run_config(context).contract.data_dir)


@task(name="find-version-by-run", **STORAGE_RETRIES)
def find_version_by_run(run_id: str, context: dict[str, Any]) -> dict[str, Any]:
    """The registry version a (deployed) retrain run published."""
    registry = registry_for(run_config(context))
    for info in reversed(registry.list_versions()):
        if info.run_id == run_id:
            return {"version": info.version, "metrics": info.metrics, "run_id": run_id}
    raise TrainingError(f"retrain run {run_id} completed but published no version")


def _train(
    data_version: str, windows_uri: str, retrain_deployment: str | None, ctx: RunContext
) -> dict[str, Any]:
    if not retrain_deployment:  # in this entity's run: its tasks, no flow run of its own
        return retrain.fn(data_version, windows_uri, context=ctx.to_dict())
    child = run_deployment_within(
        retrain_deployment,
        {"data_version": data_version, "context": ctx.to_dict()},
        ctx.cfg().timeouts.deployment_s,
    )
    if child.state is None or not child.state.is_completed():
        raise TrainingError(f"retrain deployment run {child.id} ended {child.state!r}")
    return find_version_by_run(str(child.id), ctx.to_dict())


@task(name="fleet-entities", **STORAGE_RETRIES)
def fleet_entities(context: dict[str, Any]) -> list[str]:
    """The entities this run trains (``fleet.entities``, else every entity in the dataset)."""
    return stages.fleet_entities(run_config(context))


def _pending(entities: list[str], data_version: str, ctx: RunContext) -> list[str]:
    """Entities whose data changed: no decided version of theirs was trained on
    ``data_version`` or on the entity's rows as they are now (its fingerprint), so a batch for
    one entity (or a compaction, which changes no rows) retrains no other."""
    now = entity_fingerprints(ctx.to_dict())
    trained = {e: trained_data_versions.submit(ctx.for_entity(e).to_dict()) for e in entities}
    done = {e: fut.result() for e, fut in trained.items()}
    return [
        e for e in entities
        if data_version not in done[e]["data_versions"] and now.get(e) not in done[e]["fingerprints"]
    ]  # fmt: skip


@task(name="retrain-entity")
def retrain_entity(
    entity: str, data_version: str, context: dict[str, Any], retrain_deployment: str | None
) -> dict[str, Any]:
    """One entity where the task runner placed this task (a Dask worker): windows, a
    challenger, champion/challenger on its own window, publish.

    The stage flows run as plain calls (``flow.fn``), so their tasks nest under this task run
    and no flow run is created per entity (each costs several API round trips;
    ``benchmarks/FLEET.md``).
    """
    ctx = RunContext.from_dict(context).for_entity(entity)
    mine = ctx.to_dict()
    windows_uri = rebuild_windows.fn(data_version, context=mine)
    candidate = _train(data_version, windows_uri, retrain_deployment, ctx)
    decision = champion_challenger.fn(candidate["version"], windows_uri, context=mine)
    pointer = publish.fn(candidate["version"], decision, context=mine)
    return entity_outcome(entity, candidate["version"], decision, pointer)


def _why(future: PrefectFuture[Any]) -> str:
    """``ErrorType: message`` of a failed entity (the state's message when no exception)."""
    state = future.state
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {exc}"
    return state.message or state.name or "failed"


@flow(name="fleet-retrain")
def fleet_retrain(
    entities: list[str],
    data_version: str,
    context: dict[str, Any],
    retrain_deployment: str | None = None,
) -> dict[str, Any]:
    """Fan ``retrain-entity`` out over ``entities``; every entity's result or failure reason.

    The entities' retrain slots are taken together for the whole fan-out (``fleet_locks``), so
    the entities need none of their own; a slot busy in another run falls back to one by one.
    """
    ctx = RunContext.from_dict(context)
    with fleet_locks(ctx.cfg().publish.model_name, entities) as held:
        mine = replace(ctx, slots_held=held).to_dict()
        futures = {
            e: retrain_entity.submit(e, data_version, mine, retrain_deployment) for e in entities
        }
        results: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for entity, future in futures.items():
            future.wait()
            if future.state.is_completed():
                results[entity] = future.result()
            else:
                failed[entity] = _why(future)
    return {"entities": results, "failed": failed}


@flow(name="pipeline")
def pipeline(
    batches: list[str] | None = None,
    incoming: str | None = None,
    config_path: str | None = "params.yaml",
    overrides: dict[str, Any] | None = None,
    retrain_deployment: str | None = None,
    force: bool = False,
) -> dict[str, Any] | State[Any]:
    """Ingest, retrain each entity whose data changed, compare with its champion, promote."""
    route_library_logs()
    ctx = RunContext.resolve(config_path, overrides)  # the run's one config resolution
    cfg, context = ctx.cfg(), ctx.to_dict()
    uris = [*(batches or []), *([incoming] if incoming else [])]  # folders, s3:// prefixes too
    with nested_runs():
        validated = validate_telemetry(uris, context=context, retrain_follows=True)
    data_version = validated["data_version"]
    if data_version is None:
        return no_new_data("no accepted telemetry yet")
    entities = fleet_entities(context)
    todo = entities if force else _pending(entities, data_version, ctx)
    if not todo:
        return no_new_data(f"data version {data_version}: no entity's data changed")
    if cfg.model.scope == "fleet":  # one pooled model: any entity's new data retrains them all
        todo = entities
        if retrain_deployment:
            get_run_logger().warning(
                "model.scope fleet trains in this run; retrain_deployment %s is not used",
                retrain_deployment,
            )
        with nested_runs():
            fleet = fleet_model(todo, data_version, context)
    else:
        fan_out = fleet_retrain.with_options(task_runner=task_runner(cfg))
        with nested_runs():
            fleet = fan_out(todo, data_version, context, retrain_deployment)
    summary = {
        "data_version": data_version,
        "accepted": validated["accepted"],
        "quarantined": validated["quarantined"],
        "runner": cfg.fleet.runner,
        "unchanged": sorted(set(entities) - set(todo)),  # already decided on these rows
        **fleet,
        "promoted": sorted(e for e, r in fleet["entities"].items() if r["promoted"]),
    }
    create_markdown_artifact(
        key="pipeline-summary",
        markdown=reports.pipeline_markdown(
            {**summary, "batches": validated["batches"]},
            registry=f"{store_uri_from_config(cfg.publish)}/models/{cfg.publish.model_name}",
            metric=cfg.promote.primary_metric,
        ),
        description="What this run accepted, decided and promoted, per entity",
    )
    if fleet["failed"]:
        names = ", ".join(f"{e} ({why})" for e, why in sorted(fleet["failed"].items()))
        return Failed(
            message=f"{len(fleet['failed'])} of {len(todo)} failed: {names}", data=summary
        )
    return summary
