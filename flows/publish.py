"""``publish``: move the champion pointer to a version the decision approved.

The registry verifies every file of the version before the pointer moves, and moves it with a
conditional write against the champion the decision was made against: if another run promoted
meanwhile, this one fails with ``ConflictError`` (never retried: a lost race is not transient).
With ``data.entity`` in the overrides it is that entity's champion that moves.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from amad.errors import ConflictError
from flows.runtime import (
    STORAGE_RETRIES,
    current_run_id,
    registry_for,
    route_library_logs,
    run_config,
    run_context,
    worker_name,
)


@task(name="promote-version", **STORAGE_RETRIES)
def promote_version(
    version: str,
    decision: dict[str, Any],
    run_id: str,
    context: dict[str, Any],
) -> dict[str, Any]:
    """Verify ``version`` and make it the champion; returns the new pointer as a dict."""
    registry = registry_for(run_config(context))
    current = registry.champion()
    expected_version = decision.get("champion_version")
    if (current.version if current else None) != expected_version:
        raise ConflictError(
            f"champion moved from {expected_version} to {current.version if current else None} "
            "since the decision was made"
        )
    pointer = registry.promote(
        version,
        run_id=run_id,
        reason=str(decision.get("reason", "")),
        expected=current,
        decision=decision,
    )
    return pointer.to_dict()


@flow(name="publish")
def publish(
    version: str,
    decision: dict[str, Any],
    config_path: str | None = "params.yaml",
    overrides: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Promote ``version`` when ``decision["promote"]``; returns the champion pointer or None.

    ``context``: the parent run's; without it the config is resolved from the other two.
    """
    route_library_logs()
    if not decision.get("promote"):
        return None
    run_id = current_run_id()
    ctx = run_context(config_path, overrides, context)
    return promote_version(version, decision, run_id, ctx.to_dict())


def entity_outcome(
    entity: str, version: str, decision: dict[str, Any], pointer: dict[str, Any] | None
) -> dict[str, Any]:
    """One entity's row of a pipeline run: its challenger, decision and champion afterwards."""
    return {
        "entity": entity,
        "worker": worker_name(),
        "challenger": version,
        "promoted": bool(pointer),
        "champion": pointer["version"] if pointer else decision.get("champion_version"),
        "reason": decision.get("reason"),
        "numbers": decision.get("numbers", {}),
        "evaluation": decision.get("evaluation", {}),
    }
