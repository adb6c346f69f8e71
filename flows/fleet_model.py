"""``fleet-model``: ``model.scope: fleet``, one pooled model for the whole fleet, decided per entity.

    for each entity: rebuild_windows -> train-fleet (one pooled fit, one bundle per entity)
        -> for each entity: register-version -> champion_challenger -> publish

The weights are trained once, on the training windows of every entity (each scaled by its own
scaler); each entity's bundle keeps its own score statistics and threshold
(``amad.detector.pooled``), and is registered, compared with that entity's champion on that
entity's evaluation window and promoted (or not) in that entity's registry, exactly as in the
``entity`` scope. One entity's failed decision or publish leaves every other entity's result
standing; a failed pooled fit fails every entity (their champions keep serving). The pooled fit
runs where the pipeline runs (no ``retrain_deployment`` in this scope yet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.runtime import flow_run

from amad import stages
from flows.champion_challenger import champion_challenger
from flows.limits import train_limited
from flows.publish import entity_outcome, publish
from flows.rebuild_windows import rebuild_windows
from flows.retrain import register_version
from flows.runtime import RunContext, model_lock, nested_runs, route_library_logs, run_config

FLEET_SLOT = "_fleet_"  # the retrain slot of the pooled model (model_lock)


@task(name="train-fleet")
def train_fleet(
    windows_uris: dict[str, str], work_dir: str, context: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """One pooled fit on every entity's window set; per entity its bundle path and metrics."""
    outcomes = stages.train_fleet(run_config(context), windows_uris, work_dir)
    return {e: {"bundle_dir": str(o.path), "metrics": dict(o.metrics)} for e, o in outcomes.items()}


def _decide(
    entity: str, trained: dict[str, Any], windows_uri: str, data_version: str, run_id: str,
    ctx: RunContext,
) -> dict[str, Any]:  # fmt: skip
    """Register one entity's bundle, compare it with that entity's champion, publish."""
    mine = ctx.for_entity(entity).to_dict()
    fingerprint = stages.window_entity_fingerprint(windows_uri)
    version = register_version(trained["bundle_dir"], trained["metrics"], data_version, run_id,
                               mine, fingerprint)  # fmt: skip
    decision = champion_challenger(version, windows_uri, context=mine)
    pointer = publish(version, decision, context=mine)
    return {**entity_outcome(entity, version, decision, pointer), "scope": "fleet"}


@flow(name="fleet-model")
def fleet_model(
    entities: list[str], data_version: str, context: dict[str, Any], work_dir: str = "runs/fleet"
) -> dict[str, Any]:
    """Train the fleet's pooled model and decide each entity; every entity's result or why not."""
    route_library_logs()
    with nested_runs():
        ctx = RunContext.from_dict(context)
        cfg = ctx.cfg()
        run_id = str(flow_run.get_id() or "local")
        windows: dict[str, str] = {}
        failed: dict[str, str] = {}
        for entity in entities:  # an entity without usable data is left out of the pooled fit
            try:
                windows[entity] = rebuild_windows(
                    data_version, context=ctx.for_entity(entity).to_dict()
                )
            except Exception as exc:
                failed[entity] = f"{type(exc).__name__}: {exc}"
        results: dict[str, Any] = {}
        if not windows:
            return {"entities": results, "failed": failed}
        with model_lock(cfg.publish.model_name, entity=FLEET_SLOT):
            trained = train_limited(train_fleet, cfg)(
                windows, str(Path(work_dir) / run_id), context
            )
        for entity in windows:
            try:
                results[entity] = _decide(entity, trained[entity], windows[entity], data_version,
                                          run_id, ctx)  # fmt: skip
            except Exception as exc:  # one entity's failure blocks no other's decision
                failed[entity] = f"{type(exc).__name__}: {exc}"
        return {"entities": results, "failed": failed}
